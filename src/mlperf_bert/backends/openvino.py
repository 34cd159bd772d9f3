"""OpenVINO backend: BERT QA ONNX files (our export, ``quantize --method ptq`` int8 QDQ files) on the CPU.

OpenVINO Runtime (``openvino.Core``) reads the ONNX file with its ONNX frontend and compiles it for the
``CPU`` plugin. ``openvino`` is imported only when a backend is built, so this module imports without it
(extra ``[openvino]``).

Inputs are matched by name, as in the onnxruntime backend (``INPUT_CONVENTIONS``): ``input_ids``,
``input_mask``, ``segment_ids`` (official fp32 file, our export) or ``input_ids``, ``attention_mask``,
``token_type_ids`` (official int8 file, Hugging Face); int32 or int64 each, cast to the model's type.
Outputs: one ``[B, L, 2]`` tensor, or two ``[B, L]`` tensors, start first (by ``start``/``end`` in the name,
else in model order).

Shapes: batches arrive trimmed to their longest sample, so batch and length vary from call to call. Our
exports declare both axes dynamic and are compiled as they are (one compilation serves every shape).
A file declaring a fixed length (the official files say ``[B, 384]``) is reshaped to dynamic axes and
checked on a probe batch: a shorter, larger batch must give its real tokens the logits the file's own shape
gives them. If that fails (a length baked into a Reshape constant), the fixed shape is kept: batches are
padded to it (ids, mask and segments 0, which leaves real tokens' logits unchanged) and split into chunks
of a fixed batch size, and the padding is cut from the logits.

Options (``BackendConfig.options``, see ``SPEC``):
  * ``precision``: ``fp32`` (default; OpenVINO's CPU plugin otherwise picks bf16 by itself on CPUs with
    AVX-512 BF16 or AMX, so fp32 is requested explicitly) or ``bf16`` (``INFERENCE_PRECISION_HINT``; only
    where the CPU reports ``BF16`` in ``OPTIMIZATION_CAPABILITIES``). ``f16`` is not offered: it runs on
    AVX-512 FP16 CPUs but was slower than fp32 here (docs/backends-openvino.md).
  * ``performance_hint``: ``LATENCY`` (default: one stream, all threads on each request) or ``THROUGHPUT``
    (several streams; pays only when the SUT calls ``predict`` from several worker threads).

Every thread that calls ``predict`` gets its own infer request (a request is not safe to share), so the
SUT's worker threads can run batches at the same time.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

import numpy as np

from mlperf_bert.backends.base import BackendConfig, BackendOption, BackendSpec, model_path, predict_fixed_shape
from mlperf_bert.backends.onnxruntime import INPUT_CONVENTIONS, input_convention
from mlperf_bert.errors import BackendFailure, BackendUnavailable, ConfigError, ModelError
from mlperf_bert.machine import physical_cores

#: ``precision`` option -> OpenVINO ``INFERENCE_PRECISION_HINT`` (and the CPU capability it needs).
PRECISIONS = {"fp32": ("f32", None), "bf16": ("bf16", "BF16")}
#: OpenVINO's own spellings, accepted as aliases.
_PRECISION_ALIASES = {"f32": "fp32", "float32": "fp32", "bfloat16": "bf16"}
PERFORMANCE_HINTS = ("LATENCY", "THROUGHPUT")
MODEL_SUFFIXES = (".onnx", ".xml")  # ONNX, or OpenVINO IR (model.xml + model.bin)


def _one_line(exc: BaseException) -> str:
    """The message of an OpenVINO exception: its last line (the first ones name C++ source locations)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip() and not ln.startswith("Exception from ")]
    return (lines[-1] if lines else type(exc).__name__)[:200]


def _read_model(ov, core, model_path: Path):
    """``ov.Model`` from an ONNX file (through the ONNX frontend only, so a bad file is not offered to the
    other frontends, which print their own parse errors) or an IR ``.xml``.

    Raises:
        ModelError: the file cannot be read (one line).
    """
    try:
        if model_path.suffix == ".onnx":
            frontend = ov.frontend.FrontEndManager().load_by_framework("onnx")
            return frontend.convert(frontend.load(str(model_path)))
        return core.read_model(str(model_path))
    except Exception as exc:  # noqa: BLE001 - the frontends raise several types for bad files
        kind = "an ONNX model" if model_path.suffix == ".onnx" else "an OpenVINO IR (.xml + .bin)"
        raise ModelError(f"openvino cannot read {model_path} (truncated or not {kind}?): {_one_line(exc)}") from exc


def _import_openvino():
    try:
        import openvino
    except ModuleNotFoundError as exc:
        raise BackendUnavailable("the openvino backend needs the Python module 'openvino', which is not "
                                 "installed; pip install 'mlperf-bert[openvino]'") from exc
    return openvino


def _int_dtype(element_type, where: str) -> type:
    name = str(element_type.get_type_name()) if hasattr(element_type, "get_type_name") else str(element_type)
    if name in ("i64", "int64_t"):
        return np.int64
    if name in ("i32", "int32_t"):
        return np.int32
    raise ModelError(f"{where} has type {name}; expected int32 or int64")


class OpenVinoBackend:
    """One compiled OpenVINO model for the CPU; ``predict`` casts the int arrays to the model's dtypes.

    Args:
        model_path: an ``.onnx`` file (or OpenVINO IR ``.xml`` with its ``.bin`` beside it).
        threads: ``INFERENCE_NUM_THREADS`` (default: physical cores available to this process).
        precision: ``fp32`` (default) or ``bf16`` (``PRECISIONS``).
        performance_hint: ``LATENCY`` (default) or ``THROUGHPUT``.
        device: ``cpu`` or ``auto`` (both the CPU plugin); anything else is a ConfigError.

    Attributes:
        input_names: the model's input names in (ids, mask, segments) order.
        input_dtypes: numpy int dtype of each input.
        precision: the requested precision; ``device``: ``"CPU"``.
        static_batch, static_length: fixed input dims the graph could not drop (None = dynamic).

    Raises:
        ModelError: missing/unreadable file, or inputs/outputs that match no known convention.
        ConfigError: unknown option value, bf16 on a CPU without BF16 support, or a non-CPU device.
        BackendUnavailable: openvino is not installed.
    """

    name = "openvino"

    def __init__(self, model_path: Path, threads: int | None = None, precision: str = "fp32",
                 performance_hint: str = "LATENCY", device: str = "cpu") -> None:
        precision = _PRECISION_ALIASES.get(str(precision).lower(), str(precision).lower())
        if precision not in PRECISIONS:
            raise ConfigError(f"openvino precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        hint = str(performance_hint).upper()
        if hint not in PERFORMANCE_HINTS:
            raise ConfigError(f"openvino performance_hint must be one of {', '.join(PERFORMANCE_HINTS)}, "
                              f"got {performance_hint!r}")
        if device not in ("cpu", "auto"):
            raise ConfigError(f"the openvino backend runs on the CPU only; got device {device!r}")
        ov = _import_openvino()
        model_path = Path(model_path)
        if not model_path.is_file():
            raise ModelError(f"model not found: {model_path}")
        if model_path.suffix not in MODEL_SUFFIXES:
            raise ModelError(f"{model_path}: the openvino backend loads .onnx or OpenVINO IR .xml files")
        core = ov.Core()
        ov_precision, capability = PRECISIONS[precision]
        if capability and capability not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            raise ConfigError(f"--precision {precision}: this CPU has no {capability} support in OpenVINO "
                              "(needs AVX-512 BF16 or AMX); use fp32")
        model = _read_model(ov, core, model_path)

        ports = {p.get_any_name(): p for p in model.inputs}
        self.input_names = input_convention(set(ports), model_path)
        self.input_dtypes = [_int_dtype(ports[n].get_element_type(), f"{model_path} input {n!r}")
                             for n in self.input_names]
        outputs = list(model.outputs)
        names = [o.get_any_name() if o.get_names() else str(i) for i, o in enumerate(outputs)]
        if len(outputs) == 1:
            self._output_order = [0]
        elif len(outputs) == 2:
            lowered = [n.lower() for n in names]
            self._output_order = [1, 0] if "end" in lowered[0] and "start" in lowered[1] else [0, 1]
        else:
            raise ModelError(f"{model_path} has {len(outputs)} outputs {names}; expected logits [B, L, 2] "
                             "or start and end logits [B, L]")
        self.output_names = [names[i] for i in self._output_order]
        shapes = [ports[n].get_partial_shape() for n in self.input_names]
        if any(sh.rank.is_dynamic or sh.rank.get_length() != 2 for sh in shapes):
            raise ModelError(f"{model_path} inputs have shapes {[str(sh) for sh in shapes]}; expected [batch, length]")
        fixed = tuple(None if d.is_dynamic else d.get_length() for d in (shapes[0][0], shapes[0][1]))

        self.threads = int(threads or physical_cores())
        self.precision = precision
        self.performance_hint = hint
        self.device = "CPU"
        self.model_path = model_path
        self._local = threading.local()
        self._closed = False
        config = {"INFERENCE_PRECISION_HINT": ov_precision, "PERFORMANCE_HINT": hint,
                  "INFERENCE_NUM_THREADS": self.threads}
        self.static_batch = self.static_length = None
        if fixed != (None, None):
            try:  # a declared fixed shape (official files: [B, 384]) is often not baked into the graph
                model.reshape({n: ov.PartialShape([-1, -1]) for n in self.input_names})
                self.compiled = self._compile(core, model, config)
                if self._dynamic_shapes_hold(fixed):
                    return
            except Exception:  # noqa: BLE001 - reshape, compile or probe refused: keep the fixed shape
                pass
            self._local = threading.local()
            model = _read_model(ov, core, model_path)  # the file's own shapes; batches are padded to them
            self.static_batch, self.static_length = fixed
        self.compiled = self._compile(core, model, config)

    def _compile(self, core, model, config: dict):
        try:
            return core.compile_model(model, "CPU", config)
        except Exception as exc:  # noqa: BLE001
            raise ModelError(f"openvino cannot compile {self.model_path} for the CPU: {_one_line(exc)}") from exc

    def _dynamic_shapes_hold(self, fixed: tuple[int | None, int | None]) -> bool:
        """After reshaping a fixed-shape file to dynamic axes: do a shorter, larger batch's real tokens get
        the logits that the file's own shape gives them? (A length baked into a Reshape raises or differs.)"""
        batch, length = fixed[0] or 1, fixed[1] or 64
        short = max(2, length // 2)
        ids = 1000 + np.arange(length, dtype=np.int64)[None, :].repeat(batch, 0) % 20000
        ids[:, 0] = 101
        mask = (np.arange(length)[None, :] < short).astype(np.int64).repeat(batch, 0)
        seg = ((np.arange(length)[None, :] >= short // 2) & (mask == 1)).astype(np.int64)
        full = [(a * mask if k == 0 else a).astype(dt) for k, (a, dt) in enumerate(zip((ids, mask, seg), self.input_dtypes))]
        ref = self._infer(full)
        got = self._infer([np.concatenate([a[:, :short]] * 2) for a in full])
        if got.shape != (2 * batch, short, 2) or ref.shape != (batch, length, 2):
            return False
        tol = 1e-2 + 1e-2 * float(np.abs(ref[:, :short]).max())
        return bool(np.abs(got[:batch] - ref[:, :short]).max() <= tol)

    @classmethod
    def from_config(cls, config: BackendConfig) -> "OpenVinoBackend":
        """Build from a ``BackendConfig`` (options: ``precision``, ``performance_hint``)."""
        from mlperf_bert.models.formats import model_file

        return cls(model_file(model_path(config)), threads=config.threads,
                   precision=config.option("precision", "fp32"),
                   performance_hint=config.option("performance_hint", "LATENCY"), device=config.device)

    def _request(self):
        req = getattr(self._local, "request", None)
        if req is None:
            req = self._local.request = self.compiled.create_infer_request()
        return req

    def _infer(self, arrays: list[np.ndarray]) -> np.ndarray:
        req = self._request()
        out = req.infer({n: a for n, a in zip(self.input_names, arrays)})
        logits = [out[self.compiled.outputs[i]] for i in self._output_order]
        if len(logits) == 2:
            return np.stack(logits, axis=-1).astype(np.float32, copy=False)
        return np.ascontiguousarray(logits[0], dtype=np.float32)

    def predict(self, input_ids: np.ndarray, input_mask: np.ndarray, segment_ids: np.ndarray) -> np.ndarray:
        """int32/int64 [B, L] x3 -> float32 [B, L, 2] (start, end), C-contiguous.

        Raises:
            BackendFailure: OpenVINO failed on this batch, or the backend is closed.
        """
        if self._closed:
            raise BackendFailure("the openvino backend is closed")
        arrays = [np.ascontiguousarray(a, dtype=dt)
                  for a, dt in zip((input_ids, input_mask, segment_ids), self.input_dtypes)]
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1 or arrays[0].ndim != 2:  # OpenVINO's CPU plugin does not check this itself
            raise BackendFailure(f"openvino backend got inputs of shapes {[a.shape for a in arrays]}; "
                                 "expected three equal [B, L] arrays")
        b, n = arrays[0].shape
        try:
            if self.static_batch is None and self.static_length is None:
                return self._infer(arrays)
            return predict_fixed_shape(self._infer, arrays, self.static_batch, self.static_length)
        except BackendFailure:
            raise
        except Exception as exc:  # noqa: BLE001
            raise BackendFailure(f"openvino failed on a batch of shape {(b, n)}: {_one_line(exc)}") from exc

    def close(self) -> None:
        """Drop the compiled model and this thread's request. Idempotent."""
        self._closed = True
        self._local = threading.local()
        self.compiled = None


def prepare(model: Path, config: BackendConfig, say: Callable[[str], None]) -> Path:
    """The file this backend loads for ``model`` (``BackendSpec.prepare``): an ``.onnx`` file (or a model
    folder whose manifest names one) or an OpenVINO IR ``.xml`` as it is; a Hugging Face folder or PyTorch
    state_dict exported to ONNX once, the same cached export the onnxruntime backend uses
    (``convert.to_onnx.exported_onnx``).

    Raises:
        ModelError / ConfigError: a path that is no model this backend can use (names what it loads).
    """
    from mlperf_bert.models.formats import detect_format, model_file

    model = Path(model)
    if model.is_file() and model.suffix == ".xml":
        return model
    fmt = detect_format(model)
    if fmt == "onnx":
        return model_file(model)
    if fmt in ("hf", "pytorch"):
        if config.cache_dir is None:
            raise ConfigError(f"exporting {model} to ONNX needs a cache folder (--cache-dir)")
        from mlperf_bert.convert.to_onnx import exported_onnx

        return exported_onnx(model, Path(config.cache_dir), say=say)
    raise ConfigError(f"backend 'openvino' runs ONNX files or OpenVINO IR (or exports a Hugging Face/PyTorch "
                      f"model to ONNX); {model} is {fmt}")


#: The plugin declaration (registered through the mlperf_bert.backends entry point in pyproject.toml).
SPEC = BackendSpec(
    name="openvino",
    target="mlperf_bert.backends.openvino:OpenVinoBackend",
    extra="openvino",
    summary="OpenVINO Runtime on the CPU (fp32/bf16; ONNX files incl. int8 QDQ, or OpenVINO IR)",
    framework="OpenVINO",
    packages=("openvino",),
    model_formats=("onnx",),
    options=(
        BackendOption(name="precision", type=str, default="fp32", choices=tuple(PRECISIONS), flag="--precision",
                      help="openvino: inference precision hint, fp32 (default) or bf16 (AVX-512 BF16/AMX CPUs)"),
        BackendOption(name="performance_hint", type=str, default="LATENCY", choices=PERFORMANCE_HINTS,
                      flag="--ov-hint",
                      help="openvino: LATENCY (default, one stream) or THROUGHPUT (streams for several "
                           "SUT workers)"),
    ),
    prepare="mlperf_bert.backends.openvino:prepare",
    speed_configs={"ov-fp32": ({"precision": "fp32"}, "ort-fp32"), "ov-bf16": ({"precision": "bf16"}, "torch-bf16"),
                   "ov-int8": ({}, "ort-int8")},
)

__all__ = ["INPUT_CONVENTIONS", "OpenVinoBackend", "PRECISIONS", "PERFORMANCE_HINTS", "SPEC", "prepare"]
