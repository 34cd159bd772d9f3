"""``manifest.json``: how a quantized model was made, written next to it.

The mode lives in the manifest, not in the file name. A manifest holds
the method and its settings, the calibration list (path, sha256, whether it is MLPerf's official one,
count), the source model's fingerprint, the library versions, and method-specific results (node counts,
training steps, parity checks).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any


MANIFEST_FILE = "manifest.json"
#: Bump when the manifest's keys change meaning.
MANIFEST_VERSION = 1


def fingerprint(path: Path) -> dict:
    """sha256 of a model: the file itself, or for a folder every config/weight file in it (name + bytes).

    Returns:
        ``{"path": str, "sha256": hex}``.
    """
    path = Path(path)
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in (".json", ".safetensors", ".bin",
                                                                              ".pytorch", ".onnx", ".txt")
                   ) if path.is_dir() else [path]
    h = hashlib.sha256()
    for p in files:
        if path.is_dir():
            h.update(p.name.encode())
        with p.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return {"path": str(path.resolve()), "sha256": h.hexdigest()}


def versions() -> dict:
    """Versions of the libraries that shape a quantized model."""
    from mlperf_bert.machine import package_versions

    return package_versions(("onnxruntime", "onnx", "torch", "transformers", "numpy"))


def build_manifest(method: str, source: Path, calibration: Any, settings: dict, results: dict) -> dict:
    """Assemble a manifest.

    Args:
        method: ``ptq`` or ``qat``.
        source: the model quantized (fingerprinted).
        calibration: a ``calibration.CalibrationList``.
        settings: the method's settings (JSON-able).
        results: what the method produced (JSON-able): counts, checks, training facts.

    Returns:
        the manifest as plain JSON types (equal to what ``read_manifest`` reads back).
    """
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "method": method,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "precision": "int8",
        "quantization": {"scheme": "symmetric", "granularity": "per-tensor", "weights": "int8",
                         "activations": "int8", "bias": "fp32 (not quantized)"},
        "source_model": fingerprint(source),
        "calibration": {"file": str(Path(calibration.path).resolve()), "sha256": calibration.sha256,
                        "official_mlperf_list": calibration.official, "samples": len(calibration),
                        "indexes": "SQuAD v1.1 dev features (QSL sample indices)"},
        "settings": settings,
        "results": results,
        "versions": versions(),
    }
    return json.loads(json.dumps(manifest, default=str))  # plain JSON types, as read back


def write_manifest(out_dir: Path, manifest: dict) -> Path:
    """Write ``<out_dir>/manifest.json`` atomically; returns its path."""
    path = Path(out_dir) / MANIFEST_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    os.replace(tmp, path)
    return path


def read_manifest(out_dir: Path) -> dict:
    """The manifest of a quantized model folder (``{}`` when there is none)."""
    path = Path(out_dir) / MANIFEST_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def source_model_path(model_file: Path) -> Path | None:
    """The fp32 source of a model written by ``mlperf-bert quantize``: ``source_model.path`` of the
    ``manifest.json`` beside ``model_file``; None when there is no readable manifest naming one."""
    try:
        source = (json.loads((Path(model_file).parent / MANIFEST_FILE).read_text()).get("source_model") or {})["path"]
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        return None
    return Path(source) if source else None
