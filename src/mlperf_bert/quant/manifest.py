"""The manifest of a quantized model: the artifact manifest (``models.artifact``) with the quantization
record in it.

The mode lives in the manifest, not in the file name (docs/architecture.md#artifacts). Besides the
artifact fields (format, model file, precision ``int8``, architecture, input names, source fingerprint,
steps), a quantized model's manifest holds the method and its settings, the quantization scheme, the
calibration list (path, sha256, whether it is MLPerf's official one, count) and method-specific results
(node counts, training steps, parity checks), under the keys ``method``, ``quantization``,
``calibration``, ``settings`` and ``results``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlperf_bert.models.artifact import Manifest, manifest_for, new_manifest, read_manifest, write_manifest

__all__ = ["build_manifest", "read_manifest", "write_manifest"]

#: The scheme of every int8 model ``quantize`` writes (MLPerf's int8 BERT: symmetric per-tensor, bias in
#: fp32; docs/workload.md#int8-reference).
QUANTIZATION_SCHEME = {"scheme": "symmetric", "granularity": "per-tensor", "weights": "int8",
                       "activations": "int8", "bias": "fp32 (not quantized)"}


def build_manifest(method: str, source: Path, calibration: Any, settings: dict, results: dict, *,
                   model_file: str, input_names: tuple[str, ...]) -> Manifest:
    """The manifest of a model made by ``quantize``.

    Args:
        method: ``ptq`` or ``qat``.
        source: the model quantized (fingerprinted; its manifest's steps and architecture carry over).
        calibration: a ``calibration.CalibrationList``.
        settings: the method's settings (JSON-able).
        results: what the method produced (JSON-able): counts, checks, training facts.
        model_file: the file in the output folder that runs (the QDQ ONNX file).
        input_names: its input names in (ids, mask, segments) order.
    """
    from mlperf_bert.convert.ort_optimize import model_architecture

    source = Path(source)
    arch, _ = model_architecture(source)
    extra = {
        "method": method,
        "quantization": QUANTIZATION_SCHEME,
        "calibration": {"file": str(Path(calibration.path).resolve()), "sha256": calibration.sha256,
                        "official_mlperf_list": calibration.official, "samples": len(calibration),
                        "indexes": "SQuAD v1.1 dev features (QSL sample indices)"},
        "settings": settings,
        "results": results,
    }
    extra = json.loads(json.dumps(extra, default=str))  # plain JSON types, as read back
    return new_manifest(format="onnx", model_file=model_file, precision="int8", source=source, architecture=arch,
                        input_names=input_names, steps=({"step": f"quantize-{method}"},), extra=extra,
                        source_manifest=manifest_for(source))
