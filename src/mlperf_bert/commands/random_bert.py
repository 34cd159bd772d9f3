"""``mlperf-bert random-bert OUT``: a random-weight BERT QA folder (default BERT-Large shapes) for speed runs.

``run``/``bench`` over the real dev features with this folder measure the official model's speed (its
shapes and the real lengths) without its weights; its F1 is meaningless. See ``convert.random_bert``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers, registry) -> None:
    """Add the ``random-bert`` subcommand."""
    from mlperf_bert.convert.names import BERT_LARGE

    p = subparsers.add_parser(
        "random-bert",
        help="write a random-weight BERT-Large-shaped Hugging Face folder (speed measurements only)",
        description="Write a Hugging Face BertForQuestionAnswering folder with BERT-initialised random "
                    "weights (fixed seed; default BERT-Large: 24 layers, hidden 1024, 16 heads, intermediate "
                    "4096, vocab 30522; 1.34 GB) through the converter's strict path. Its speed over the real "
                    "SQuAD lengths is the real model's; its F1 is meaningless.",
    )
    p.add_argument("out", type=Path, metavar="DIR", help="output folder (must not exist, or pass --force)")
    p.add_argument("--layers", type=int, default=BERT_LARGE.num_layers, help="default 24")
    p.add_argument("--hidden", type=int, default=BERT_LARGE.hidden, help="default 1024")
    p.add_argument("--heads", type=int, default=BERT_LARGE.heads, help="default 16")
    p.add_argument("--intermediate", type=int, default=BERT_LARGE.intermediate, help="default 4096")
    p.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    p.add_argument("--force", action="store_true", help="replace an existing output folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the folder and print its size; 0 on success."""
    from mlperf_bert.convert.names import BertShape
    from mlperf_bert.convert.random_bert import build_random_bert

    shape = BertShape(num_layers=args.layers, hidden=args.hidden, heads=args.heads, intermediate=args.intermediate)
    report = build_random_bert(args.out, shape, seed=args.seed, overwrite=args.force)
    print(f"wrote {report.out_dir}: random weights (seed {report.seed}), {report.tensors} tensors, "
          f"{report.parameters:,} parameters ({shape.num_layers} layers, hidden {shape.hidden}, {shape.heads} "
          f"heads, intermediate {shape.intermediate}); for speed runs only, its F1 is meaningless")
    return 0
