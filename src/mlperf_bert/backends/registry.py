"""Backend registry: name -> ``"module:Class"``, imported only when that backend is used.

Built-in backends register exactly like a plugin would (``register_backend``); a missing runtime
(e.g. onnxruntime not installed) fails only when its backend is asked for, with the pip extra to install.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlperf_bert.backends.base import Backend
from mlperf_bert.errors import BackendUnavailable, ConfigError


@dataclass(frozen=True)
class BackendConfig:
    """How to load a backend.

    Attributes:
        name: registry name (``onnxruntime``, ``pytorch``, ``tensorflow``, ``null``).
        model: path to the model file or directory (None only for ``null``).
        device: ``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when present).
        threads: intra-op threads; None = the runtime's default (physical cores).
        options: backend-specific options (e.g. ``{"precision": "bf16"}``), validated by the backend.
        cache_dir: where a backend may keep derived files (e.g. ORT's optimized model); None = no caching.
    """

    name: str
    model: Path | None = None
    device: str = "auto"
    threads: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    cache_dir: Path | None = None


@dataclass(frozen=True)
class BackendSpec:
    """A registered backend: where its class lives and which pip extra brings its runtime."""

    target: str  # "package.module:ClassName"
    extra: str  # pip extra, e.g. "onnxruntime"
    summary: str


BUILTIN_BACKENDS: dict[str, BackendSpec] = {
    "onnxruntime": BackendSpec("mlperf_bert.backends.onnxruntime:OnnxRuntimeBackend", "onnxruntime",
                               "ONNX Runtime (fp32 or int8 ONNX files)"),
    "pytorch": BackendSpec("mlperf_bert.backends.pytorch:PyTorchBackend", "torch",
                           "PyTorch (HF BertForQuestionAnswering dir or official model.pytorch)"),
    "tensorflow": BackendSpec("mlperf_bert.backends.tensorflow:TensorFlowBackend", "tensorflow",
                              "TensorFlow 2.x (frozen graph .pb or SavedModel dir)"),
    "null": BackendSpec("mlperf_bert.backends.null:NullBackend", "",
                        "returns zero logits; measures harness and LoadGen overhead"),
}


class BackendRegistry:
    """Maps backend names to lazily imported classes. Instances are independent (no global state)."""

    def __init__(self, specs: dict[str, BackendSpec] | None = None) -> None:
        self._specs = dict(BUILTIN_BACKENDS if specs is None else specs)

    def register(self, name: str, spec: BackendSpec) -> None:
        """Add or replace a backend (plugins and test fakes use this)."""
        self._specs[name] = spec

    def names(self) -> list[str]:
        return sorted(self._specs)

    def spec(self, name: str) -> BackendSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise ConfigError(f"unknown backend {name!r}; choose one of: {', '.join(self.names())}") from None

    def load(self, config: BackendConfig) -> Backend:
        """Import the backend's module and build it from ``config``.

        Raises:
            ConfigError: unknown backend name.
            BackendUnavailable: its runtime is not installed (names the missing module and the extra).
            ModelError: raised by the backend for a bad model file.
        """
        spec = self.spec(config.name)
        module_name, _, class_name = spec.target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and not exc.name.startswith("mlperf_bert"):
                hint = f"pip install 'mlperf-bert[{spec.extra}]'" if spec.extra else "reinstall mlperf-bert"
                raise BackendUnavailable(
                    f"backend {config.name!r} needs the Python module {exc.name!r}, which is not installed; {hint}"
                ) from exc
            raise
        cls = getattr(module, class_name)
        return cls.from_config(config)
