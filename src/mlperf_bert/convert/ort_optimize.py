"""ONNX Runtime's transformer optimizer as an offline step: a BERT ONNX file -> a fused artifact, made once.

fp32 graphs get every fusion (Attention, SkipLayerNormalization, EmbedLayerNormalization, BiasGelu).
Quantized (QDQ) graphs get the fusions that do not cross a Quantize/Dequantize pair (SkipLayerNormalization,
BiasGelu; ``opt_level`` 0, so ORT's own passes do not fold the QDQ pairs first); measured on the small int8
model with benchmarks/bench_int8.py at batch 1: 30.07 vs 28.10 samples/s, F1 78.298 vs 78.280.

The optimizer needs the head count and hidden size. They come from the model's manifest chain
(``models.artifact``: our export records them) or a config.json of the source, else from the graph itself
(the word-embedding table gives the hidden size, the attention Reshape's last dimension the head size);
never from a guess. When they cannot be read, or a fusion does not apply, ``say`` gets one line and the
model runs as it is.
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Callable

import numpy as np

from mlperf_bert.errors import ModelError
from mlperf_bert.fileio import atomic_path, file_sha256
from mlperf_bert.models.artifact import (ModelArchitecture, manifest_for, new_manifest, source_chain,
                                         write_manifest)

QUANT_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearMatMul", "MatMulInteger", "DynamicQuantizeLinear"}
#: A broken fusion moves logits by whole units. Correct int8 fusions move them too, because fused fp32 ops
#: round differently before the next quantize step: by up to 0.41 on the random-token probe batch (default
#: small int8 model), while its F1 on all of dev went from 78.280 to 78.298.
QDQ_PARITY_ATOL = 1.0
#: Manifest step name of this optimization.
OPTIMIZE_STEP = "ort-transformer-optimizer"
#: Largest |optimized - original| logit difference accepted for fp32 graphs on the probe batch.
FP32_PARITY_ATOL = 1e-3


def _constant(graph_inits: dict, consts: dict, name: str):
    return graph_inits.get(name, consts.get(name))


def graph_architecture(model) -> ModelArchitecture | None:
    """Heads and hidden size read from an ONNX BERT graph, or None.

    Hidden size: the word-embedding initializer ``[vocab >= 30000, hidden]``. Head size: the last
    dimension of the 4-D Reshape that splits hidden states into heads (``[batch, seq, heads, head_size]``,
    with heads often written as -1); heads = hidden / head size.
    """
    from onnx import numpy_helper

    g = model.graph
    hidden = 0
    for init in g.initializer:
        if len(init.dims) == 2 and init.dims[0] >= 30000:
            hidden = int(init.dims[1])
            break
    if not hidden:
        return None
    inits = {i.name: i for i in g.initializer}
    consts = {n.output[0]: a.t for n in g.node if n.op_type == "Constant" for a in n.attribute if a.name == "value"}
    producer = {o: n for n in g.node for o in n.output}
    head_sizes: collections.Counter = collections.Counter()
    for node in g.node:
        if node.op_type != "Reshape" or len(node.input) < 2:
            continue
        shape = _constant(inits, consts, node.input[1])
        if shape is not None:
            dims = numpy_helper.to_array(shape).reshape(-1).tolist()
        elif node.input[1] in producer and producer[node.input[1]].op_type == "Concat":
            parts = [_constant(inits, consts, i) for i in producer[node.input[1]].input]
            dims = [int(numpy_helper.to_array(p).reshape(-1)[0]) if p is not None else None for p in parts]
        else:
            continue
        if len(dims) == 4 and dims[-1] and dims[-1] > 0 and hidden % dims[-1] == 0 and dims[-1] < hidden:
            if dims[-2] in (-1, None) or dims[-2] * dims[-1] == hidden:
                head_sizes[dims[-1]] += 1
    if not head_sizes:
        return None
    head_size = head_sizes.most_common(1)[0][0]
    return ModelArchitecture(hidden // head_size, hidden)


def model_architecture(model_path: Path, model=None) -> tuple[ModelArchitecture | None, str]:
    """The architecture of an ONNX model and where it was read: its manifest chain, a config.json of a
    model in that chain, or the graph (``model``, an ``onnx.ModelProto``). ``(None, "")`` when none tells."""
    import json

    for path in source_chain(Path(model_path)):
        manifest = manifest_for(path)
        if manifest is not None and manifest.architecture is not None:
            return manifest.architecture, f"manifest of {path}"
        folder = path if path.is_dir() else path.parent
        for name in ("config.json", "bert_config.json"):
            cfg = folder / name
            if cfg.is_file():
                try:
                    arch = ModelArchitecture.from_config(json.loads(cfg.read_text()))
                except (OSError, ValueError):
                    arch = None
                if arch is not None:
                    return arch, str(cfg)
    if model is not None:
        arch = graph_architecture(model)
        if arch is not None:
            return arch, "the graph"
    return None, ""


def _probe_logits(path: Path, ids, mask, seg) -> np.ndarray:
    from mlperf_bert.backends.onnxruntime import OnnxRuntimeBackend

    backend = OnnxRuntimeBackend(path, device="cpu", threads=1)
    try:
        return backend.predict(ids, mask, seg)
    finally:
        backend.close()


def derived_onnx(model_path: Path, cache_dir: Path, kind: str) -> Path:
    """Where an ONNX file derived from ``model_path`` by ONNX Runtime's tools is cached:
    ``cache_dir/artifacts/<kind>-<sha256[:16]>-ort<version>/model.onnx`` (keyed by the source's content and
    the onnxruntime version that made it). ``kind``: ``ort-optimized`` or ``ort-fp16``.

    Raises:
        ModelError: ``model_path`` cannot be read.
    """
    import onnxruntime as ort

    digest = file_sha256(model_path, "ONNX model")
    return Path(cache_dir) / "artifacts" / f"{kind}-{digest[:16]}-ort{ort.__version__}" / "model.onnx"


def load_onnx_graph(model_path: Path):
    """``(onnx.ModelProto, input_names)`` of an ONNX file, its input names read as one of the BERT input
    conventions (``backends.onnxruntime.input_convention``).

    Raises:
        ModelError: not an ONNX file (truncated, say) or inputs of no known convention; one line.
    """
    from mlperf_bert.backends.onnxruntime import input_convention
    from mlperf_bert.models.formats import read_onnx

    model, inputs = read_onnx(model_path)
    return model, input_convention(set(inputs), model_path)


def ort_optimized(model_path: Path, cache_dir: Path, say: Callable[[str], None] = lambda m: None,
                  parity_atol: float = FP32_PARITY_ATOL, qdq_parity_atol: float = QDQ_PARITY_ATOL) -> Path:
    """ORT's transformer optimizer applied once to a BERT ONNX file, as a cached artifact.

    Returns ``cache_dir/artifacts/ort-optimized-<sha256[:16]>-ort<version>/model.onnx`` (with manifest.json),
    or ``model_path`` itself when the architecture cannot be read (``say`` is told why). The optimized graph
    is checked against the original on a probe batch before it is kept: within ``parity_atol`` for fp32
    and ``qdq_parity_atol`` (``QDQ_PARITY_ATOL``, 1.0) for QDQ graphs.

    Raises:
        ModelError: the file cannot be read as ONNX, or the optimized graph differs from the original by more
            than the tolerance.
    """
    import onnxruntime as ort
    from onnxruntime.transformers import optimizer

    model_path = Path(model_path)
    own = manifest_for(model_path)
    if own is not None and any(st.get("step") == OPTIMIZE_STEP for st in own.steps):
        return model_path  # already optimized (prepare is idempotent)
    out = derived_onnx(model_path, cache_dir, "ort-optimized")
    if out.is_file() and manifest_for(out) is not None:
        return out
    model, names = load_onnx_graph(model_path)
    arch, where = model_architecture(model_path, model)
    if arch is None:
        say(f"ORT transformer fusions skipped for {model_path}: its head count is not in a manifest, a "
            "config.json or the graph; running it unfused (export it with 'mlperf-bert export-onnx' to fuse)")
        return model_path
    quantized = any(n.op_type in QUANT_OPS for n in model.graph.node)
    say(f"optimizing {model_path} with ORT's transformer fusions once ({arch.num_attention_heads} heads, "
        f"hidden {arch.hidden_size} from {where}{'; QDQ graph' if quantized else ''}) ...")
    if quantized:
        parity_atol = qdq_parity_atol
        opt = optimizer.optimize_model(str(model_path), model_type="bert", num_heads=arch.num_attention_heads,
                                       hidden_size=arch.hidden_size, opt_level=0)
    else:
        opt = optimizer.optimize_model(model, model_type="bert", num_heads=arch.num_attention_heads,
                                       hidden_size=arch.hidden_size)
    fused = {k: int(v) for k, v in opt.get_fused_operator_statistics().items() if v}
    if not quantized and not fused.get("Attention") and not fused.get("MultiHeadAttention"):
        say(f"ORT's Attention fusion did not apply to {model_path}; attention runs unfused")
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 30000, size=(3, 77))
    ids[:, 0] = 101
    mask = np.ones_like(ids)
    mask[2, 40:] = 0
    seg = np.zeros_like(ids)
    seg[:, 20:] = 1
    with atomic_path(out) as tmp:
        opt.save_model_to_file(str(tmp))
        diff = float(np.abs(_probe_logits(model_path, ids, mask, seg) - _probe_logits(tmp, ids, mask, seg)).max())
        if not diff <= parity_atol:
            raise ModelError(f"ORT's transformer optimizer changed the logits of {model_path} by {diff:.2e} "
                             f"(with {arch.num_attention_heads} heads, hidden {arch.hidden_size} from {where}); "
                             "run with --no-ort-optimize")
    source_manifest = own
    write_manifest(out.parent, new_manifest(
        format="onnx", model_file=out.name, precision=source_manifest.precision if source_manifest else
        ("int8" if quantized else "fp32"), source=model_path, architecture=arch, input_names=names,
        steps=({"step": OPTIMIZE_STEP, "onnxruntime": ort.__version__, "qdq": quantized,
                "fused": fused, "parity_max_abs_diff": diff},), source_manifest=source_manifest))
    return out
