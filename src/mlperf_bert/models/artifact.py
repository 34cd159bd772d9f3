"""Model artifacts: what offline work (export, graph optimization, quantization) writes, with one manifest.

An artifact is a folder holding the model file and ``manifest.json``. The manifest says what the model is
(format, precision, architecture: heads/hidden/layers, input names), where it came from (the source model's
path and fingerprint, the steps applied, e.g. ``export`` -> ``ort-optimize``), and what made it (versions).
Runs only load artifacts; a backend whose ``prepare`` finds the artifact missing makes it through the same
functions ``export-onnx`` / ``quantize`` use (content-addressed under the cache folder, so it is made once).

The manifest lives in the mode-free folder, never in the file name (docs/architecture.md#artifacts).
Manifests written by ``quantize`` before this format (keys ``method``, ``source_model``, no ``format``) are
read as int8 ONNX artifacts whose model file is ``model.onnx``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlperf_bert.errors import DataError
from mlperf_bert.fileio import fingerprint, read_json, write_json_atomic
from mlperf_bert.machine import package_versions

MANIFEST_FILE = "manifest.json"
#: Version 2: one format for exports, optimized graphs and quantized models (1 was quantize's own).
MANIFEST_VERSION = 2
#: Packages whose versions shape an artifact, recorded in its manifest.
MANIFEST_PACKAGES = ("onnxruntime", "onnx", "torch", "transformers", "numpy")


@dataclass(frozen=True)
class ModelArchitecture:
    """The encoder's shape (BERT-Large: 24 layers, hidden 1024, 16 heads; docs/workload.md).

    Attributes:
        num_attention_heads, hidden_size, num_hidden_layers: as in a Hugging Face ``config.json``.
    """

    num_attention_heads: int
    hidden_size: int
    num_hidden_layers: int | None = None

    @classmethod
    def from_config(cls, config: dict) -> "ModelArchitecture | None":
        """From a config.json dict, or None when it lacks heads or hidden size."""
        try:
            layers = config.get("num_hidden_layers")
            return cls(int(config["num_attention_heads"]), int(config["hidden_size"]),
                       None if layers is None else int(layers))
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True)
class Manifest:
    """``manifest.json`` of an artifact folder.

    Attributes:
        format: ``models.formats`` name of the model file (``onnx``, ...).
        model_file: the model's file name inside the folder (e.g. ``model.onnx``).
        precision: ``fp32``, ``int8``, ``bf16`` or ``fp16``.
        architecture: heads, hidden size, layers (None when unknown).
        input_names: the model's input names in (ids, mask, segments) order.
        source: ``{"path": str, "sha256": hex}`` of the model this was made from (None for an original).
        steps: what was done to the source, in order, each ``{"step": name, ...settings/results}``.
        extra: step-specific records kept as they are (quantization scheme, calibration list, settings,
            results of ``quantize``).
        created_utc, versions: when and with which packages.
    """

    format: str
    model_file: str
    precision: str = "fp32"
    architecture: ModelArchitecture | None = None
    input_names: tuple[str, ...] = ()
    source: dict | None = None
    steps: tuple[dict, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    created_utc: str = ""
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def source_path(self) -> Path | None:
        """The source model's path, or None."""
        path = (self.source or {}).get("path")
        return Path(path) if path else None

    def to_json(self) -> dict:
        out = {"manifest_version": MANIFEST_VERSION, "format": self.format, "model_file": self.model_file,
               "precision": self.precision,
               "architecture": None if self.architecture is None else {
                   "num_attention_heads": self.architecture.num_attention_heads,
                   "hidden_size": self.architecture.hidden_size,
                   "num_hidden_layers": self.architecture.num_hidden_layers},
               "input_names": list(self.input_names), "source": self.source, "steps": list(self.steps),
               "created_utc": self.created_utc, "versions": self.versions}
        out.update(self.extra)
        return out

    @classmethod
    def from_json(cls, data: dict, where: Path) -> "Manifest":
        """Parse a manifest dict (this format or quantize's version 1).

        Raises:
            DataError: not a manifest (names the file).
        """
        if not isinstance(data, dict):
            raise DataError(f"{where}: manifest is not a JSON object")
        if data.get("manifest_version", 1) == 1 and "method" in data:  # quantize, before version 2
            extra = {k: v for k, v in data.items() if k not in ("manifest_version", "source_model",
                                                                 "created_utc", "versions", "precision")}
            return cls(format="onnx", model_file="model.onnx", precision=data.get("precision", "int8"),
                       source=data.get("source_model"), steps=({"step": f"quantize-{data['method']}"},),
                       extra=extra, created_utc=data.get("created_utc", ""), versions=data.get("versions", {}))
        try:
            arch = data.get("architecture")
            known = {"manifest_version", "format", "model_file", "precision", "architecture", "input_names",
                     "source", "steps", "created_utc", "versions"}
            return cls(format=str(data["format"]), model_file=str(data["model_file"]),
                       precision=str(data.get("precision", "fp32")),
                       architecture=ModelArchitecture.from_config(arch) if arch else None,
                       input_names=tuple(data.get("input_names") or ()), source=data.get("source"),
                       steps=tuple(data.get("steps") or ()), extra={k: v for k, v in data.items() if k not in known},
                       created_utc=str(data.get("created_utc", "")), versions=dict(data.get("versions") or {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{where}: not an mlperf-bert manifest ({type(exc).__name__}: {exc})") from None


def source_record(path: Path) -> dict:
    """``{"path": absolute path, "sha256": fingerprint}`` of a source model."""
    return {"path": str(Path(path).resolve()), "sha256": fingerprint(path)}


def new_manifest(*, format: str, model_file: str, precision: str, source: Path | None,
                 architecture: ModelArchitecture | None, input_names: tuple[str, ...], steps: tuple[dict, ...],
                 extra: dict | None = None, source_manifest: "Manifest | None" = None) -> Manifest:
    """A manifest stamped with the time and versions. When the source is itself an artifact
    (``source_manifest``), its steps come first and its architecture is inherited when none is given."""
    if source_manifest is not None:
        steps = tuple(source_manifest.steps) + tuple(steps)
        architecture = architecture or source_manifest.architecture
    return Manifest(format=format, model_file=model_file, precision=precision, architecture=architecture,
                    input_names=tuple(input_names), source=source_record(source) if source else None,
                    steps=tuple(steps), extra=dict(extra or {}),
                    created_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    versions=package_versions(MANIFEST_PACKAGES))


def write_manifest(folder: Path, manifest: Manifest) -> Path:
    """Write ``<folder>/manifest.json`` atomically; returns its path."""
    return write_json_atomic(Path(folder) / MANIFEST_FILE, manifest.to_json())


def read_manifest(folder: Path) -> Manifest | None:
    """The manifest of an artifact folder, or None when it has none.

    Raises:
        DataError: a manifest.json that is not valid JSON or not a manifest.
    """
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        return None
    return Manifest.from_json(read_json(path, "model manifest"), path)


def manifest_for(model: Path) -> Manifest | None:
    """The manifest describing ``model``: a folder's own, or for a file the manifest beside it when that
    manifest names this very file (``model_file``); None otherwise."""
    model = Path(model)
    if model.is_dir():
        return read_manifest(model)
    manifest = read_manifest(model.parent)
    return manifest if manifest is not None and manifest.model_file == model.name else None


def source_chain(model: Path, limit: int = 8) -> list[Path]:
    """``model`` and then each source its manifests name, nearest first (e.g. optimized ONNX -> export ->
    Hugging Face folder). Stops at a model without a manifest or after ``limit`` hops."""
    chain = [Path(model)]
    for _ in range(limit):
        try:
            manifest = manifest_for(chain[-1])
        except DataError:
            break
        nxt = manifest.source_path if manifest else None
        if nxt is None or nxt in chain:
            break
        chain.append(nxt)
    return chain
