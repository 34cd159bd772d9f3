"""PyTorch BERT QA -> ONNX with the official fp32 file's names (docs/models.md#tensor-names).

Inputs ``input_ids``, ``input_mask``, ``segment_ids`` (int64 [batch, seq]); outputs ``output_start_logits``,
``output_end_logits`` (float32 [batch, seq]); batch and sequence axes dynamic. After export the file is run
in ONNX Runtime against PyTorch on a probe batch and rejected if they differ by more than ``parity_atol``.
The file is written to a temporary name and renamed into place, so a failed export leaves nothing behind;
``manifest.json`` beside it records the source and the model's architecture (``models.artifact``).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from mlperf_bert.errors import ModelError
from mlperf_bert.fileio import atomic_path, fingerprint
from mlperf_bert.models.artifact import Manifest, ModelArchitecture, manifest_for, new_manifest, write_manifest

INPUT_NAMES = ("input_ids", "input_mask", "segment_ids")
OUTPUT_NAMES = ("output_start_logits", "output_end_logits")
#: Opset of the export (the official file uses 11; >= 14 gives ORT's fused attention patterns).
DEFAULT_OPSET = 17


def _probe_batch(vocab_size: int, batch: int = 2, seq: int = 64, seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, vocab_size, size=(batch, seq), dtype=np.int64)
    ids[:, 0] = 101
    mask = np.ones((batch, seq), dtype=np.int64)
    mask[-1, seq // 2:] = 0  # a padded row, so the mask path is exercised
    seg = np.zeros((batch, seq), dtype=np.int64)
    seg[:, seq // 4:] = 1
    return ids, mask, seg


def export_onnx(model_path: Path, out_path: Path, opset: int = DEFAULT_OPSET, parity_atol: float = 1e-4) -> Manifest:
    """Export a PyTorch BERT QA model (HF dir or model.pytorch + bert_config.json) to ONNX.

    Args:
        model_path: what the pytorch backend loads (see ``backends.pytorch.build_model``).
        out_path: the .onnx file to write (parent folders are created).
        opset: ONNX opset (>= 11).
        parity_atol: largest allowed |ORT - PyTorch| logit difference on the probe batch.

    Returns:
        The artifact manifest (source, architecture, input names, the export step with its opset and parity
        max abs diff), also written as ``manifest.json`` beside the file (``models.artifact``).

    Raises:
        ModelError: the model cannot be loaded, or ORT and PyTorch disagree beyond ``parity_atol``.
    """
    import torch

    from mlperf_bert.backends.pytorch import build_model

    if opset < 11:
        raise ModelError(f"opset {opset} is too old; use >= 11")
    model = build_model(Path(model_path), attn_implementation="eager")

    class _QA(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, input_mask, segment_ids):
            out = self.inner(input_ids=input_ids, attention_mask=input_mask, token_type_ids=segment_ids)
            return out.start_logits, out.end_logits

    wrapper = _QA(model).eval()
    ids, mask, seg = _probe_batch(model.config.vocab_size)
    out_path = Path(out_path)
    with atomic_path(out_path) as tmp:
        dyn = {n: {0: "batch", 1: "seq"} for n in INPUT_NAMES + OUTPUT_NAMES}
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer chatter; correctness is checked below
            torch.onnx.export(
                wrapper,
                (torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(seg)),
                str(tmp),
                input_names=list(INPUT_NAMES),
                output_names=list(OUTPUT_NAMES),
                dynamic_axes=dyn,
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
            # Check at a shape other than the traced one, so shape-specialised graphs are caught.
            ids, mask, seg = _probe_batch(model.config.vocab_size, batch=3, seq=97, seed=1)
            ref = wrapper(torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(seg))
        ref = np.stack([r.numpy() for r in ref], axis=-1)
        from mlperf_bert.backends.onnxruntime import OnnxRuntimeBackend

        got = OnnxRuntimeBackend(tmp, device="cpu").predict(ids, mask, seg)
        diff = float(np.abs(got - ref).max())
        if not diff <= parity_atol:
            raise ModelError(f"exported ONNX differs from PyTorch by {diff:.2e} (> {parity_atol:g}); not written")
    arch = ModelArchitecture(int(model.config.num_attention_heads), int(model.config.hidden_size),
                             int(model.config.num_hidden_layers))
    manifest = new_manifest(format="onnx", model_file=out_path.name, precision="fp32", source=Path(model_path),
                            architecture=arch, input_names=INPUT_NAMES,
                            steps=({"step": "export-onnx", "opset": opset, "outputs": list(OUTPUT_NAMES),
                                    "dynamic_axes": ["batch", "seq"], "parity_max_abs_diff_vs_pytorch": diff},))
    write_manifest(out_path.parent, manifest)
    return manifest


def exported_onnx(model_path: Path, cache_dir: Path, opset: int = DEFAULT_OPSET,
                  say: Callable[[str], None] = lambda m: None) -> Path:
    """The ONNX export of a PyTorch model as a cached artifact:
    ``cache_dir/artifacts/onnx-export-<fingerprint[:16]>-opset<N>/model.onnx`` (+ manifest.json), made once.

    Lets ``run --backend onnxruntime --model <HF dir>`` work without a separate export step; ``say`` is
    told when the export is made.
    """
    out = Path(cache_dir) / "artifacts" / f"onnx-export-{fingerprint(model_path)[:16]}-opset{opset}" / "model.onnx"
    if not (out.is_file() and manifest_for(out) is not None):
        say(f"exporting {model_path} to ONNX once (opset {opset}; cached in {out.parent}) ...")
        export_onnx(model_path, out, opset=opset)
    return out
