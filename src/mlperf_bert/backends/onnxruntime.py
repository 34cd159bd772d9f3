"""ONNX Runtime backend for BERT QA ONNX files (official fp32 and int8 conventions, docs/models.md#tensor-names).

Input names are read from the model:
- official fp32 (``model.onnx``): ``input_ids``, ``input_mask``, ``segment_ids``;
- official int8 (``bert_large_v1_1_fake_quant.onnx``): ``input_ids``, ``attention_mask``, ``token_type_ids``;
int32 or int64 each. Outputs: one ``[B, L, 2]`` tensor, or two ``[B, L]`` tensors (start, end) identified by
name (``start``/``end`` in the name) or else by session order, start first (the int8 file's convention).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from mlperf_bert.backends.base import BackendConfig, BackendOption, BackendSpec, model_path
from mlperf_bert.errors import BackendFailure, BackendUnavailable, ConfigError, ModelError
from mlperf_bert.machine import physical_cores

#: Accepted input-name conventions: ours (ids, mask, segments) -> the model's names.
INPUT_CONVENTIONS = (
    ("input_ids", "input_mask", "segment_ids"),  # official fp32 ONNX / TF graph
    ("input_ids", "attention_mask", "token_type_ids"),  # official int8 ONNX / Hugging Face
)
_ORT_INT_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}
#: ``--ort-graph-optimization`` values -> ORT's GraphOptimizationLevel names.
GRAPH_OPTIMIZATION_LEVELS = {"all": "ORT_ENABLE_ALL", "extended": "ORT_ENABLE_EXTENDED", "basic": "ORT_ENABLE_BASIC",
                             "disable": "ORT_DISABLE_ALL"}


class OnnxRuntimeBackend:
    """One ``InferenceSession`` over an ONNX file; ``predict`` casts the int arrays to the model's dtypes.

    The file is loaded as it is: export and ORT's transformer fusions happen before, in ``prepare``.

    Args:
        model_path: an ``.onnx`` file.
        device: ``cpu``, ``cuda`` or ``auto`` (CUDA when the CUDA execution provider is installed).
        threads: intra-op threads (default: physical cores).
        graph_optimization: ORT's own level at session start: ``all`` (default) | ``extended`` | ``basic``
            | ``disable``.

    Raises:
        ModelError: missing/truncated file, or inputs/outputs that match no known convention.
        BackendUnavailable: onnxruntime is not installed.
    """

    name = "onnxruntime"

    def __init__(self, model_path: Path, device: str = "auto", threads: int | None = None,
                 graph_optimization: str = "all") -> None:
        try:
            import onnxruntime as ort
        except ModuleNotFoundError as exc:
            raise BackendUnavailable("onnxruntime is not installed; pip install 'mlperf-bert[onnxruntime]'") from exc
        model_path = Path(model_path)
        if not model_path.is_file():
            raise ModelError(f"ONNX model not found: {model_path}")
        if graph_optimization not in GRAPH_OPTIMIZATION_LEVELS:
            raise ConfigError(f"--ort-graph-optimization must be one of {', '.join(GRAPH_OPTIMIZATION_LEVELS)}, "
                              f"got {graph_optimization!r}")
        so = ort.SessionOptions()
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, GRAPH_OPTIMIZATION_LEVELS[graph_optimization])
        so.intra_op_num_threads = int(threads or physical_cores())
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        available = ort.get_available_providers()
        if device == "cuda" and "CUDAExecutionProvider" not in available:
            raise ConfigError("device cuda requested but onnxruntime has no CUDAExecutionProvider "
                              "(install onnxruntime-gpu)")
        use_cuda = device in ("cuda", "auto") and "CUDAExecutionProvider" in available
        providers = (["CUDAExecutionProvider"] if use_cuda else []) + ["CPUExecutionProvider"]
        try:
            self.session = ort.InferenceSession(str(model_path), so, providers=providers)
        except Exception as exc:  # noqa: BLE001 - ORT raises several types for bad files
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"onnxruntime cannot load {model_path} (truncated or not an ONNX model?): {first}") from exc
        self.model_path = model_path
        inputs = self.session.get_inputs()
        names = {i.name: i for i in inputs}
        self.input_names = input_convention(set(names), model_path)
        self.input_dtypes = []
        for n in self.input_names:
            t = names[n].type
            if t not in _ORT_INT_TYPES:
                raise ModelError(f"{model_path} input {n!r} has type {t}; expected int32 or int64")
            self.input_dtypes.append(_ORT_INT_TYPES[t])
        outputs = self.session.get_outputs()
        self.output_names = [o.name for o in outputs]
        if len(outputs) == 1:
            self._two_outputs = False
        elif len(outputs) == 2:
            self._two_outputs = True
            lowered = [n.lower() for n in self.output_names]
            if "end" in lowered[0] and "start" in lowered[1]:
                self.output_names.reverse()
        else:
            raise ModelError(f"{model_path} has {len(outputs)} outputs {self.output_names}; expected logits "
                             "[B, L, 2] or start and end logits [B, L]")
        self.providers = self.session.get_providers()

    @classmethod
    def from_config(cls, config: BackendConfig) -> "OnnxRuntimeBackend":
        """Build from a prepared ``BackendConfig`` (``config.model`` is the .onnx file to load)."""
        from mlperf_bert.models.formats import model_file

        return cls(model_file(model_path(config)), device=config.device, threads=config.threads,
                   graph_optimization=config.option("graph_optimization", "all"))

    def predict(self, input_ids: np.ndarray, input_mask: np.ndarray, segment_ids: np.ndarray) -> np.ndarray:
        """int [B, L] x3 -> float32 [B, L, 2] (start, end)."""
        feeds = {name: np.asarray(arr, dtype=dt) for name, arr, dt in
                 zip(self.input_names, (input_ids, input_mask, segment_ids), self.input_dtypes)}
        try:
            outs = self.session.run(self.output_names, feeds)
        except Exception as exc:  # noqa: BLE001
            raise BackendFailure(f"onnxruntime failed on a batch of shape {input_ids.shape}: {exc}") from exc
        if self._two_outputs:
            return np.stack(outs, axis=-1).astype(np.float32, copy=False)  # (B, L, 2)
        return np.ascontiguousarray(outs[0], dtype=np.float32)

    def describe(self) -> dict:
        """What run.json records of this backend: the execution providers and input names it runs with."""
        return {"providers": list(self.providers), "input_names": list(self.input_names),
                "model_file": str(self.model_path)}

    def close(self) -> None:
        self.session = None


def input_convention(names: set[str], model_path: Path) -> tuple[str, ...]:
    """The ``INPUT_CONVENTIONS`` entry whose names are exactly the model's inputs.

    Raises:
        ModelError: no convention matches (the message lists the model's inputs and the accepted sets).
    """
    for convention in INPUT_CONVENTIONS:
        if set(convention) == names:
            return convention
    raise ModelError(f"{model_path} has inputs {sorted(names)}; expected one of "
                     + " or ".join("/".join(c) for c in INPUT_CONVENTIONS))


def prepare(model: Path, config: BackendConfig, say: Callable[[str], None]) -> Path:
    """The ONNX file this backend loads, made from ``model`` once when needed (``BackendSpec.prepare``).

    A Hugging Face folder or PyTorch state_dict is exported to ONNX (``convert.to_onnx.exported_onnx``);
    with the ``transformer_optimize`` option (default on) the ONNX file then goes through ORT's transformer
    optimizer (``convert.ort_optimize.ort_optimized``). Both are cached artifacts, so this is slow once.

    Raises:
        ConfigError: a model format ONNX Runtime cannot run (e.g. a TF graph), or no cache folder.
        ModelError: raised by the export or the optimizer.
    """
    from mlperf_bert.models.formats import detect_format, model_file

    fmt = detect_format(model)
    if fmt in ("hf", "pytorch"):
        if config.cache_dir is None:
            raise ConfigError(f"exporting {model} to ONNX needs a cache folder (--cache-dir)")
        from mlperf_bert.convert.to_onnx import exported_onnx

        model = exported_onnx(model, Path(config.cache_dir), say=say)
    elif fmt != "onnx":
        raise ConfigError(f"backend 'onnxruntime' runs ONNX files (or exports a Hugging Face/PyTorch model); "
                          f"{model} is {fmt}")
    model = model_file(model)
    if config.option("transformer_optimize", True):
        if config.cache_dir is None:
            raise ConfigError("ORT's transformer optimizer needs a cache folder (--cache-dir) or --no-ort-optimize")
        from mlperf_bert.convert.ort_optimize import ort_optimized

        model = ort_optimized(model, Path(config.cache_dir), say=say)
    return model


SPEC = BackendSpec(
    name="onnxruntime",
    target="mlperf_bert.backends.onnxruntime:OnnxRuntimeBackend",
    extra="onnxruntime",
    summary="ONNX Runtime (fp32 or int8 ONNX files; Hugging Face/PyTorch models are exported once)",
    framework="ONNX Runtime",
    packages=("onnxruntime", "onnxruntime-gpu", "onnx"),
    model_formats=("onnx",),
    options=(
        BackendOption("transformer_optimize", bool, True, stage="prepare", flag="--ort-optimize",
                      tune=(True, False),
                      help="onnxruntime: apply ORT's transformer optimizer (fused attention, layernorm, gelu) "
                           "once and cache the result (default: on)"),
        BackendOption("graph_optimization", str, "all", choices=tuple(GRAPH_OPTIMIZATION_LEVELS),
                      flag="--ort-graph-optimization", tune=("all", "basic"),
                      help="onnxruntime: ORT's own graph optimization level at session start (default all)"),
    ),
    prepare="mlperf_bert.backends.onnxruntime:prepare",
    speed_configs={
        "ort-fp32": ({"transformer_optimize": True}, "ort-fp32"),
        "ort-fp32-unfused": ({"transformer_optimize": False}, "ort-fp32"),
        "ort-int8": ({}, "ort-int8"),
    },
)
