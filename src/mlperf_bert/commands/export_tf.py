"""``mlperf-bert export-tf MODEL --out DIR``: a TF SavedModel and an official-style frozen graph ``model.pb``."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlperf_bert.errors import ConfigError


def _static_shape(text: str) -> tuple[int, int]:
    try:
        b, s = (int(x) for x in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected BATCH,SEQ such as 1,384; got {text!r}") from None
    return b, s


def register(subparsers, registry) -> None:
    """Add the ``export-tf`` subcommand."""
    p = subparsers.add_parser(
        "export-tf",
        help="export a PyTorch/HF model (or TF checkpoint) to a TF SavedModel and frozen graph model.pb",
        description="Build the BERT SQuAD graph in TensorFlow from a Hugging Face folder (or a DLE-named TF "
                    "checkpoint) and write DIR/saved_model/ (signature serving_default) and DIR/model.pb "
                    "(frozen graph: int32 input_ids, input_mask, segment_ids -> logits [B, L, 2], like the "
                    "official MLPerf model.pb). Both are checked against each other and, when torch is "
                    "installed, against PyTorch.",
    )
    p.add_argument("source", type=Path, metavar="MODEL", help="Hugging Face folder or TF checkpoint prefix")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder (must not exist)")
    p.add_argument("--static-shape", type=_static_shape, metavar="B,L",
                   help="fix the frozen graph's input shape, e.g. 1,384 like the official model.pb "
                        "(default: dynamic batch and length)")
    p.add_argument("--num-heads", type=int, metavar="N",
                   help="attention heads, for a TF checkpoint without bert_config.json")
    p.add_argument("--bert-config", type=Path, metavar="JSON", help="bert_config.json, for a TF checkpoint")
    p.add_argument("--parity-atol", type=float, default=1e-4,
                   help="largest allowed logit difference in the export check (default 1e-4)")
    p.add_argument("--no-parity", action="store_true", help="skip the export check")
    p.add_argument("--force", action="store_true", help="replace an existing output folder")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Export; print the files and the parity result. 0 on success."""
    from mlperf_bert.backends.tensorflow import import_tensorflow

    if args.parity_atol <= 0:
        raise ConfigError(f"--parity-atol must be > 0 (got {args.parity_atol})")
    import_tensorflow()  # quiet TF's C++ INFO lines before the export imports it
    from mlperf_bert.convert.export_tf import export_tf

    manifest = export_tf(args.source, args.out, static_shape=args.static_shape, num_heads=args.num_heads,
                         bert_config=args.bert_config, parity_atol=None if args.no_parity else args.parity_atol,
                         overwrite=args.force)
    print(f"wrote {args.out / 'saved_model'} and {args.out / 'model.pb'} (TensorFlow {manifest['tensorflow']})")
    parity = manifest["parity"]
    if parity:
        torch_diff = parity["function_vs_pytorch"]
        vs_torch = "not checked (torch not installed)" if torch_diff is None else f"{torch_diff:.2e}"
        print(f"parity on a {parity['probe_batch']} probe batch: frozen graph vs SavedModel "
              f"{parity['frozen_vs_function']:.2e}, vs PyTorch {vs_torch}")
    return 0
