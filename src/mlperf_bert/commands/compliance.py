"""``mlperf-bert compliance TEST01|TEST05 --results RUN_DIR``: run a compliance test and verify it."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction, registry) -> None:
    p = sub.add_parser(
        "compliance", help="run compliance TEST01 or TEST05 against a run and verify it",
        description="Rerun the performance test of RUN_DIR with the compliance settings (TEST01: audit.config "
                    "logging 4096 sampled responses, which must equal the accuracy-mode ones or keep F1 within "
                    "1%%/0.1%%, performance within 10%%; TEST05: the TEST05 seeds, performance within 5%%) and "
                    "write the compliance folder for 'mlperf-bert submission'. Exit 0 = passed, 1 = failed.")
    p.add_argument("test", choices=("TEST01", "TEST05"), type=str.upper)
    p.add_argument("--results", type=Path, required=True, metavar="RUN_DIR",
                   help="the submission run (from 'mlperf-bert run --mode both'); its settings are reused")
    p.add_argument("--output-dir", type=Path, default=Path("runs"), help="parent folder (default ./runs)")
    p.add_argument("--name", help="folder name (default <run name>-<test>)")
    p.add_argument("--benchmark", choices=("bert-99", "bert-99.9"), help="default: the run's benchmark")
    p.add_argument("--duration", type=float, help="quick rules: minimum duration of the test run (s)")
    p.add_argument("--quiet-wait", type=float, default=120.0, metavar="S",
                   help="when the performance comparison fails, wait up to S seconds for other processes to leave "
                        "the CPUs and rerun once (default 120; -1 = no rerun)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from mlperf_bert.submission.compliance import read_run_info, run_compliance, run_config_from_json

    cfg = run_config_from_json(read_run_info(args.results))
    scorer = None
    if args.test == "TEST01":
        from mlperf_bert.accuracy.evaluate import evaluate_accuracy_log
        from mlperf_bert.runner import subset_features
        from mlperf_bert.squad.cache import load_features
        from mlperf_bert.squad.tokenization import load_vocab

        examples, features = subset_features(*load_features(cfg.data, cfg.squad, not args.no_progress),
                                             cfg.max_examples)
        vocab = load_vocab(cfg.data.vocab)

        def scorer(log, out_dir):
            return evaluate_accuracy_log(log, examples, features, vocab, cfg.squad, out_dir)

        def load_data(*_):
            return examples, features
    else:
        load_data = None
    overrides = {"quick_duration_s": args.duration} if args.duration else None
    res = run_compliance(args.test, args.results, args.output_dir, name=args.name, registry=args.registry,
                         load_data=load_data,
                         scorer=scorer, progress=not args.no_progress, benchmark=args.benchmark,
                         performance_overrides=overrides, quiet_wait_s=None if args.quiet_wait < 0 else args.quiet_wait,
                         on_event=lambda m: print(f"mlperf-bert: {m}", flush=True))
    p = res.performance
    print(f"mlperf-bert: {args.test} performance: {p.metric} {p.test:,.3f} vs {p.reference:,.3f} "
          f"{p.unit} ({p.deviation * 100:+.2f}%, allowed {p.tolerance * 100:g}%)")
    for note in res.notes:
        print(f"mlperf-bert: {note}")
    print(f"mlperf-bert: {args.test} {'PASSED' if res.passed else 'FAILED'}; folder {res.folder}")
    return 0 if res.passed else 1
