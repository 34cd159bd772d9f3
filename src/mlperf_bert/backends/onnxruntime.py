"""ONNX Runtime backend for BERT QA ONNX files (official fp32 and int8 conventions, docs/models.md#tensor-names).

Input names are read from the model:
- official fp32 (``model.onnx``): ``input_ids``, ``input_mask``, ``segment_ids``;
- official int8 (``bert_large_v1_1_fake_quant.onnx``): ``input_ids``, ``attention_mask``, ``token_type_ids``;
int32 or int64 each. Outputs: one ``[B, L, 2]`` tensor, or two ``[B, L]`` tensors (start, end) identified by
name (``start``/``end`` in the name) or else by session order, start first (the int8 file's convention).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mlperf_bert.backends.registry import BackendConfig
from mlperf_bert.errors import BackendFailure, BackendUnavailable, ConfigError, ModelError
from mlperf_bert.machine import physical_cores

#: Accepted input-name conventions: ours (ids, mask, segments) -> the model's names.
INPUT_CONVENTIONS = (
    ("input_ids", "input_mask", "segment_ids"),  # official fp32 ONNX / TF graph
    ("input_ids", "attention_mask", "token_type_ids"),  # official int8 ONNX / Hugging Face
)
_ORT_INT_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}


class OnnxRuntimeBackend:
    """One ``InferenceSession``; ``predict`` casts the int arrays to the model's dtypes.

    Args:
        model_path: an ``.onnx`` file.
        device: ``cpu``, ``cuda`` or ``auto`` (CUDA when the CUDA execution provider is installed).
        threads: intra-op threads (default: physical cores).
        graph_optimization: ORT's own level: ``all`` (default) | ``extended`` | ``basic`` | ``disable``.
        transformer_optimize: first rewrite the fp32 graph with ``onnxruntime.transformers.optimizer``
            (fused Attention, SkipLayerNormalization, EmbedLayerNormalization, BiasGelu), once, cached in
            ``cache_dir`` (see ``transformer_optimized``; QDQ graphs get the fusions that keep their QDQ pairs).
        cache_dir: folder for the optimized model (required when ``transformer_optimize``).

    Raises:
        ModelError: missing/truncated file, or inputs/outputs that match no known convention.
        BackendUnavailable: onnxruntime is not installed.
    """

    name = "onnxruntime"

    def __init__(self, model_path: Path, device: str = "auto", threads: int | None = None,
                 graph_optimization: str = "all", transformer_optimize: bool = False,
                 cache_dir: Path | None = None) -> None:
        try:
            import onnxruntime as ort
        except ModuleNotFoundError as exc:
            raise BackendUnavailable("onnxruntime is not installed; pip install 'mlperf-bert[onnxruntime]'") from exc
        model_path = Path(model_path)
        if not model_path.is_file():
            raise ModelError(f"ONNX model not found: {model_path}")
        self.source_path = model_path
        if transformer_optimize:
            if cache_dir is None:
                raise ConfigError("transformer_optimize needs a cache_dir for the optimized model")
            model_path = transformer_optimized(model_path, Path(cache_dir))
        levels = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
                  "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                  "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
                  "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL}
        if graph_optimization not in levels:
            raise ConfigError(f"graph_optimization must be one of {', '.join(levels)}, got {graph_optimization!r}")
        so = ort.SessionOptions()
        so.graph_optimization_level = levels[graph_optimization]
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
        self.input_names = _input_convention(set(names), model_path)
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
        if config.model is None:
            raise ConfigError("the onnxruntime backend needs --model (an .onnx file)")
        opts = dict(config.options)
        unknown = set(opts) - {"graph_optimization", "transformer_optimize"}
        if unknown:
            raise ConfigError(f"unknown onnxruntime backend options: {', '.join(sorted(unknown))}")
        return cls(config.model, device=config.device, threads=config.threads,
                   graph_optimization=opts.get("graph_optimization", "all"),
                   transformer_optimize=bool(opts.get("transformer_optimize", False)),
                   cache_dir=config.cache_dir)

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

    def close(self) -> None:
        self.session = None


_QUANT_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearMatMul", "MatMulInteger", "DynamicQuantizeLinear"}
# A broken fusion moves logits by whole units. Correct int8 fusions move them too, because fused fp32 ops
# round differently before the next quantize step: by up to 0.41 on the random-token probe batch (default
# small int8 model), while its F1 on all of dev went from 78.280 to 78.298.
QDQ_PARITY_ATOL = 1.0


def _input_convention(names: set[str], model_path: Path) -> tuple[str, ...]:
    """The ``INPUT_CONVENTIONS`` entry whose names are exactly the model's inputs.

    Raises:
        ModelError: no convention matches (the message lists the model's inputs and the accepted sets).
    """
    for convention in INPUT_CONVENTIONS:
        if set(convention) == names:
            return convention
    raise ModelError(f"{model_path} has inputs {sorted(names)}; expected one of "
                     + " or ".join("/".join(c) for c in INPUT_CONVENTIONS))


def _heads_and_hidden(model, model_path: Path) -> tuple[int, int]:
    """Attention heads and hidden size: from our export manifest (``<file>.json``), a config.json beside
    the file, or the config.json of an int8 model's fp32 source (its quantize ``manifest.json``); else
    hidden from the word-embedding table and heads = hidden / 64 (BERT-Base/Large)."""
    import json

    from mlperf_bert.quant.manifest import source_model_path

    source = source_model_path(model_path)
    for cand in (model_path.with_suffix(model_path.suffix + ".json"), model_path.parent / "config.json",
                 model_path.parent / "bert_config.json", model_path.parent / "manifest.json",
                 *([source / "config.json"] if source else [])):
        if cand.is_file():
            try:
                meta = json.loads(cand.read_text())
            except (OSError, ValueError):
                continue
            if "num_attention_heads" in meta and "hidden_size" in meta:
                return int(meta["num_attention_heads"]), int(meta["hidden_size"])
    hidden = 0
    for init in model.graph.initializer:
        if len(init.dims) == 2 and init.dims[0] >= 30000:  # word embeddings [vocab, hidden]
            hidden = int(init.dims[1])
            break
    if not hidden:
        raise ModelError(f"cannot tell the hidden size of {model_path}; run with --no-ort-optimize")
    return max(1, hidden // 64), hidden


def transformer_optimized(model_path: Path, cache_dir: Path, parity_atol: float = 1e-3,
                          qdq_parity_atol: float = QDQ_PARITY_ATOL) -> Path:
    """ORT's transformer optimizer applied once to a BERT ONNX file, cached by the file's sha256.

    Returns ``cache_dir/onnx-optimized/<sha256[:16]>-ort<version>/model.onnx``. fp32 graphs get every fusion
    (Attention, SkipLayerNormalization, EmbedLayerNormalization, BiasGelu). Quantized (QDQ) graphs get the
    fusions that do not cross a Quantize/Dequantize pair (SkipLayerNormalization, BiasGelu; ``opt_level``
    0, so ORT's own passes do not fold the QDQ pairs first); measured on the small int8 model with
    benchmarks/bench_int8.py at batch 1: 30.07 vs 28.10 samples/s, F1 78.298 vs 78.280. The optimized graph
    is checked against the original on a probe batch before it is used, within ``parity_atol`` for fp32
    and ``qdq_parity_atol`` (``QDQ_PARITY_ATOL``, 1.0) for QDQ graphs.

    Raises:
        ModelError: the optimized graph differs from the original by more than the tolerance.
    """
    import onnx
    import onnxruntime as ort
    from onnxruntime.transformers import optimizer

    from mlperf_bert.hashing import file_sha256

    model_path = Path(model_path)
    digest = file_sha256(model_path, "ONNX model")
    out = Path(cache_dir) / "onnx-optimized" / f"{digest[:16]}-ort{ort.__version__}" / "model.onnx"
    if out.is_file():
        return out
    try:
        model = onnx.load(str(model_path))
    except Exception as exc:  # protobuf DecodeError, onnx's own errors: one line, not a traceback
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ModelError(f"onnx cannot load {model_path} (truncated or not an ONNX model?): {first}") from exc
    weights = {i.name for i in model.graph.initializer}
    _input_convention({i.name for i in model.graph.input if i.name not in weights}, model_path)  # before rewriting
    quantized = any(n.op_type in _QUANT_OPS for n in model.graph.node)
    heads, hidden = _heads_and_hidden(model, model_path)
    if quantized:
        parity_atol = qdq_parity_atol
        opt = optimizer.optimize_model(str(model_path), model_type="bert", num_heads=heads, hidden_size=hidden,
                                       opt_level=0)
    else:
        opt = optimizer.optimize_model(model, model_type="bert", num_heads=heads, hidden_size=hidden)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"model.{os.getpid()}.tmp")
    try:
        opt.save_model_to_file(str(tmp))
        rng = np.random.default_rng(0)
        ids = rng.integers(1000, 30000, size=(3, 77))
        ids[:, 0] = 101
        mask = np.ones_like(ids)
        mask[2, 40:] = 0
        seg = np.zeros_like(ids)
        seg[:, 20:] = 1
        ref = OnnxRuntimeBackend(model_path, device="cpu", threads=1).predict(ids, mask, seg)
        got = OnnxRuntimeBackend(tmp, device="cpu", threads=1).predict(ids, mask, seg)
        diff = float(np.abs(ref - got).max())
        if not diff <= parity_atol:
            raise ModelError(f"ORT's transformer optimizer changed the logits of {model_path} by {diff:.2e} "
                             f"(assumed {heads} heads, hidden {hidden}); run with --no-ort-optimize")
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return out
