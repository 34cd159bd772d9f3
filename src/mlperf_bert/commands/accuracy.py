"""``mlperf-bert accuracy --log-file F``: score a LoadGen accuracy log with the official SQuAD v1.1 metric.

The harness's version of the reference ``accuracy-squad.py``: reads ``mlperf_log_accuracy.json``,
answers every question (n_best 20, max_answer_length 30; "empty" where the log holds none of its
features), prints the reference's EM/F1 line over all questions and, for a partial log (TEST01), also the
score over the questions it covers; with ``--output-dir`` it writes ``predictions.json`` and
``accuracy.txt``. Features come from
the feature cache (built on first use). Exit 0 on success, 2 on a bad or empty log.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers, registry) -> None:
    """Add the ``accuracy`` subcommand."""
    p = subparsers.add_parser(
        "accuracy",
        help="score a LoadGen accuracy log (SQuAD v1.1 EM/F1)",
        description="Turn mlperf_log_accuracy.json into answers and score them with the official "
                    "SQuAD v1.1 metric, exactly as the MLPerf reference accuracy-squad.py.",
    )
    p.add_argument("--log-file", type=Path, required=True, metavar="F",
                   help="LoadGen accuracy log (mlperf_log_accuracy.json), complete or partial (TEST01)")
    p.add_argument("--dataset", type=Path, metavar="F",
                   help="SQuAD v1.1 dev JSON (default: <shared>/data/dev-v1.1.json)")
    p.add_argument("--vocab", type=Path, metavar="F", help="vocab.txt (default: <shared>/data/vocab.txt)")
    p.add_argument("--cache-dir", type=Path, metavar="D",
                   help="feature cache folder (default: $MLPERF_BERT_CACHE or ~/.cache/mlperf-bert)")
    p.add_argument("--output-dtype", choices=("float32", "float16"), default="float32",
                   help="element type of the SUT responses (default float32)")
    p.add_argument("--layout", choices=("rows", "transposed"), default="rows",
                   help="response layout: rows = [n, 2] start/end per position (default), "
                        "transposed = [2, n]")
    p.add_argument("--output-dir", type=Path, metavar="D",
                   help="write predictions.json and accuracy.txt here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Score the log and print the result; returns 0."""
    from dataclasses import replace

    from mlperf_bert.accuracy.evaluate import evaluate_accuracy_log
    from mlperf_bert.config import DataPaths, SquadConfig
    from mlperf_bert.errors import DataError
    from mlperf_bert.squad.cache import load_features
    from mlperf_bert.squad.tokenization import load_vocab

    if not args.log_file.is_file():  # before the features load, which takes seconds
        raise DataError(
            f"accuracy log {args.log_file} not found; pass --log-file <run>/accuracy/mlperf_log_accuracy.json"
        )
    paths = DataPaths.defaults(cache_dir=args.cache_dir)
    if args.dataset is not None:
        paths = replace(paths, dataset=args.dataset)
    if args.vocab is not None:
        paths = replace(paths, vocab=args.vocab)
    cfg = SquadConfig()
    examples, features = load_features(paths, cfg, progress=True)
    vocab = load_vocab(paths.vocab)
    result = evaluate_accuracy_log(
        args.log_file, examples, features, vocab, cfg,
        out_dir=args.output_dir, dtype=args.output_dtype, layout=args.layout,
    )
    from mlperf_bert.accuracy.evaluate import describe

    print(result.line)  # the reference evaluator's line, over every question
    for line in describe(result):
        print(line)
    if result.duplicates:
        print(f"{result.duplicates} repeated samples ignored (first kept), "
              f"{result.differing_duplicates} with different outputs")
    if args.output_dir is not None:
        print(f"wrote {args.output_dir / 'predictions.json'} and {args.output_dir / 'accuracy.txt'}")
    return 0
