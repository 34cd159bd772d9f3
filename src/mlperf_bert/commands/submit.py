"""``mlperf-bert submit``: every required run, the compliance tests, the tree and its check, in one command."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlperf_bert.commands.run import add_run_args


def register(sub: argparse._SubParsersAction, registry) -> None:
    p = sub.add_parser(
        "submit", help="run every required scenario and compliance test, assemble the tree and check it",
        description="From nothing to a checked submission tree: for --benchmark under --rules, run every required "
                    "scenario (accuracy + performance), TEST01 (and TEST05 for the v1.0 layout), assemble the tree "
                    "in that version's layout and check it with the same rules. Resumable: run it again after an "
                    "interruption and finished runs are reused (state in OUTPUT_DIR/submit-state.json). Exit 0 = "
                    "the tree passes, 1 = it fails the check.")
    p.add_argument("--rules", required=True, choices=("v1.0", "current", "quick"),
                   help="v1.0 / current: the runs, layout and checker of that version; quick: short development "
                        "runs (NOT valid for submission) in the --layout tree")
    p.add_argument("--layout", choices=("v1.0", "current"),
                   help="with --rules quick: the tree layout (default current; v1.0 runs quick with the v1.0 seeds)")
    p.add_argument("--system", required=True, help="system description id, e.g. epyc-2c-ort")
    p.add_argument("--submitter", default="dev", help="organisation name (default 'dev'; set it for a real submission)")
    p.add_argument("--division", default="closed", choices=("closed", "open"))
    p.add_argument("--system-type", choices=("datacenter", "edge", "datacenter,edge"), metavar="TYPE",
                   help="datacenter, edge or datacenter,edge (default: edge under the current rules, datacenter under v1.0)")
    p.add_argument("--system-json", type=Path, help="JSON object of systems fields this machine cannot tell "
                                                    "(e.g. host_memory_configuration, cooling)")
    p.add_argument("--implementation-json", type=Path, help="JSON object of measurements fields to set")
    p.add_argument("--quiet-wait", type=float, default=120.0, metavar="S",
                   help="compliance: when a performance comparison fails, wait up to S seconds for a quiet host and "
                        "rerun once (default 120; -1 = no rerun)")
    add_run_args(p, registry, scenario=False, mode=False, sizing=False)
    p.set_defaults(func=main, output_dir=None)


def main(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from mlperf_bert.commands.check import print_report
    from mlperf_bert.commands.run import build_run_config
    from mlperf_bert.commands.submission import json_arg, print_missing_fields
    from mlperf_bert.errors import ConfigError
    from mlperf_bert.machine import package_versions, read_machine
    from mlperf_bert.submission.submit import SubmitJob, run_submit
    from mlperf_bert.submission.system import missing_fields, system_description

    if args.run_name:
        raise ConfigError("--run-name: submit names its run folders itself (<benchmark>-<scenario>)")
    out = args.output_dir or Path("submit") / f"{args.system}-{args.benchmark}-{args.rules}"
    say = lambda m: print(f"mlperf-bert: {m}", flush=True)  # noqa: E731
    cfg = build_run_config(args, scenario="Offline", modes=("accuracy", "performance"))
    facts = read_machine()
    job = SubmitJob(base=cfg, rules=args.rules, layout=args.layout, benchmark=args.benchmark, output_dir=out,
                    submitter=args.submitter, system=args.system, division=args.division,
                    system_type=args.system_type, system_overrides=json_arg(args.system_json, "--system-json"),
                    implementation_overrides=json_arg(args.implementation_json, "--implementation-json"),
                    reference_f1=args.reference_f1, quiet_wait_s=None if args.quiet_wait < 0 else args.quiet_wait,
                    facts=facts)
    desc = system_description(facts=facts, submitter=job.submitter, division=job.division, system_name=job.system,
                              framework=args.registry.framework(args.backend), versions=package_versions(),
                              system_type=job.tree_system_type,
                              layout=job.tree_layout, overrides=job.system_overrides)
    missing = missing_fields(desc, job.tree_layout)
    print_missing_fields(missing, job.tree_layout, say)
    if args.rules != "quick" and any(fails for _, fails in missing):
        raise ConfigError(f"{sum(f for _, f in missing)} systems field(s) the {job.tree_layout} checker rejects are "
                          "empty (listed above); give them with --system-json FILE before hours of runs")
    say(f"{job.benchmark} under {job.rules} rules, {job.tree_layout} layout, system type {job.tree_system_type}: "
        f"scenarios {', '.join(job.scenarios)}; compliance {', '.join(job.tests)}; folder {out}")

    from mlperf_bert.accuracy.evaluate import evaluate_accuracy_log
    from mlperf_bert.runner import subset_features
    from mlperf_bert.squad.cache import load_features
    from mlperf_bert.squad.tokenization import load_vocab

    all_examples, all_features = load_features(cfg.data, cfg.squad, not args.no_progress)
    examples, features = subset_features(all_examples, all_features, cfg.max_examples)
    vocab = load_vocab(cfg.data.vocab)

    def scorer(log, out_dir):
        return evaluate_accuracy_log(log, examples, features, vocab, cfg.squad, out_dir)

    res = run_submit(job, registry=args.registry, load_data=lambda *_: (all_examples, all_features), scorer=scorer,
                     progress=not args.no_progress, on_event=say)
    console = Console(highlight=False)
    t = Table(title=f"mlperf-bert submit: {job.benchmark}, {job.rules} rules, {job.tree_layout} layout")
    for col in ("scenario", "step", "result", "s", "done"):
        t.add_column(col)
    for s in res.steps:
        t.add_row(s.scenario, "accuracy + performance" if s.kind == "run" else s.kind, s.summary,
                  f"{s.seconds:.0f}", s.status)
    console.print(t)
    for s in res.steps:
        for note in s.notes:
            console.print(f"note {s.name}: {note}", soft_wrap=True)
    if res.host_was_busy:
        console.print("[yellow]the host was busy during some runs (other processes used the CPUs); their "
                      "performance numbers were measured under load[/yellow]")
    a = res.assembled
    print_missing_fields(a.missing_system_fields, a.layout, say)
    for w in a.warnings:
        say(f"warning: {w}")
    print_report(res.report, console)
    say(f"tree: {a.root} (full accuracy logs: {a.full_logs}); check again with: mlperf-bert check {a.root} "
        f"--rules {job.rules}" + (f" --layout {job.tree_layout}" if job.rules == "quick" else ""))
    return 0 if res.report.passed else 1
