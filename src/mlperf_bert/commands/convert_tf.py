"""``mlperf-bert convert-tf CKPT --out DIR``: TF BERT checkpoint (Google / NVIDIA DLE names) -> HF folder.

Also the inverse, ``--to-tf``: a Hugging Face folder -> DLE-named TF checkpoint folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers, registry) -> None:
    """Add the ``convert-tf`` subcommand."""
    p = subparsers.add_parser(
        "convert-tf",
        help="convert a TF BERT checkpoint (e.g. official model.ckpt-5474) to a Hugging Face folder",
        description="Convert a TensorFlow BERT SQuAD checkpoint with Google/NVIDIA DLE variable names into a "
                    "Hugging Face BertForQuestionAnswering folder (config.json + model.safetensors), checking "
                    "every name and shape. Optimizer state is skipped and reported. With --to-tf, convert a "
                    "Hugging Face folder into a DLE-named TF checkpoint instead.",
    )
    p.add_argument("source", type=Path, metavar="CKPT",
                   help="checkpoint prefix (model.ckpt-5474), its .index file, or its folder; with --to-tf a HF folder")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder (must not exist)")
    p.add_argument("--num-heads", type=int, metavar="N",
                   help="attention heads (16 for BERT-Large); default: from --bert-config or bert_config.json "
                        "beside the checkpoint")
    p.add_argument("--bert-config", type=Path, metavar="JSON", help="Google bert_config.json of the checkpoint")
    p.add_argument("--keep-pooler", action="store_true",
                   help="also convert bert/pooler/dense (not used by SQuAD; skipped and reported by default)")
    p.add_argument("--to-tf", action="store_true", help="reverse direction: HF folder -> TF checkpoint")
    p.add_argument("--force", action="store_true", help="replace an existing output folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Convert; print what was written and what was skipped. 0 on success."""
    from mlperf_bert.backends.tensorflow import import_tensorflow

    import_tensorflow()  # quiet TF's C++ INFO lines before the converters import it
    if args.to_tf:
        from mlperf_bert.convert.torch_to_tf import export_tf_checkpoint

        prefix = export_tf_checkpoint(args.source, args.out, overwrite=args.force)
        print(f"wrote TF checkpoint {prefix} (+ bert_config.json)")
        return 0

    from mlperf_bert.convert.tf_to_torch import convert_tf_checkpoint

    report = convert_tf_checkpoint(args.source, args.out, num_heads=args.num_heads, bert_config=args.bert_config,
                                   keep_pooler=args.keep_pooler, overwrite=args.force)
    s = report.shape
    print(f"wrote {report.out_dir}: {report.converted} tensors, {report.parameters:,} parameters "
          f"({s.num_layers} layers, hidden {s.hidden}, {s.heads} heads, intermediate {s.intermediate}, "
          f"vocab {s.vocab})")
    for reason, count in sorted(report.ignored_counts().items()):
        print(f"skipped {count}: {reason}")
    if report.widened:
        print(f"widened to float32: {len(report.widened)} tensors")
    return 0
