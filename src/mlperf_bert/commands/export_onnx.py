"""``mlperf-bert export-onnx``: PyTorch BERT QA -> ONNX with the official fp32 names and dynamic axes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction, registry) -> None:
    p = sub.add_parser("export-onnx", help="export a PyTorch BERT QA model to ONNX (official fp32 names)",
                       description="Export an HF BertForQuestionAnswering dir or an official model.pytorch "
                                   "(+ bert_config.json) to ONNX: int64 input_ids/input_mask/segment_ids -> "
                                   "output_start_logits/output_end_logits, dynamic batch and sequence axes, "
                                   "checked against PyTorch after export.")
    p.add_argument("model", type=Path, help="HF model dir or model.pytorch")
    p.add_argument("--out", type=Path, required=True, help="output .onnx file")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 11, default 17)")
    p.add_argument("--parity-atol", type=float, default=1e-4, help="largest allowed |ORT - PyTorch| (default 1e-4)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from mlperf_bert.convert.to_onnx import export_onnx

    manifest = export_onnx(args.model, args.out, opset=args.opset, parity_atol=args.parity_atol)
    print(json.dumps(manifest.to_json(), indent=2))
    print(f"wrote {args.out}")
    return 0
