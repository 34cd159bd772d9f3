"""Export a quantization-aware BERT to ONNX: the official fake-quant form and a fast QDQ form.

Official form (like MLPerf's ``bert_large_v1_1_fake_quant.onnx``, docs/models.md#int8-model): int64 inputs
``input_ids``, ``attention_mask``, ``token_type_ids`` [batch, seq]; outputs ``start_logits``,
``end_logits`` [batch, seq] in that order; fp32 weights, each quantized tensor passing through a
QuantizeLinear/DequantizeLinear pair with a per-tensor scale (zero point 0, int8).

Fast form (what ONNX Runtime runs with integer kernels): the same graph with every weight's
``QuantizeLinear(fp32 initializer)`` replaced by its int8 result as an initializer feeding the
DequantizeLinear directly, so ORT's QDQ fusions see ``DequantizeLinear(int8 constant) -> MatMul`` and
pick QLinearMatMul / MatMulIntegerToFloat. Values are identical (the weight is quantized once instead of
at every run).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from mlperf_bert.errors import ModelError
from mlperf_bert.fileio import atomic_path

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAMES = ("start_logits", "end_logits")
#: Opset 13: per-tensor QuantizeLinear/DequantizeLinear with int8 and the ops BERT needs.
QAT_OPSET = 13


def _probe(vocab_size: int, batch: int, seq: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, vocab_size, size=(batch, seq), dtype=np.int64)
    ids[:, 0] = 101
    mask = np.ones((batch, seq), dtype=np.int64)
    mask[-1, seq // 2 :] = 0
    seg = np.zeros((batch, seq), dtype=np.int64)
    seg[:, seq // 4 :] = 1
    return ids, mask, seg


def export_fake_quant_onnx(model, out_path: Path, parity_rtol: float = 0.05) -> dict:
    """Export a ``quant.qat.QuantBertForQA`` in the official fake-quant form.

    Weight ranges are frozen first (max |w| of the current weights). The file is checked in ONNX Runtime
    (no graph optimizations, so Q/DQ run as written) against the PyTorch fake-quant forward on a probe
    batch of another shape than the traced one. The two cannot agree bit for bit: ORT and PyTorch sum
    matmuls in different orders, a value within float error of a rounding boundary lands on the other
    int8 level, and every later quantizer amplifies that (on the small model about 1% of the mean |logit|
    with quantizers on, 1e-5 with them off). So the check bounds the mean difference relative to the
    mean |logit|.

    Args:
        model: the quantization-aware model (all activation quantizers calibrated).
        out_path: the .onnx to write (atomically).
        parity_rtol: largest allowed mean |ORT - PyTorch| / mean |PyTorch| over the probe logits.

    Returns:
        facts for the manifest: opset, names, counts of Q/DQ nodes, parity difference.

    Raises:
        ModelError: the export disagrees with PyTorch.
    """
    import onnx
    import torch

    model.eval()
    model.prepare_export()
    out_path = Path(out_path)
    vocab = model.config.vocab_size
    with atomic_path(out_path) as tmp_path:
        tmp = str(tmp_path)
        ids, mask, seg = _probe(vocab, 2, 48, 0)
        dyn = {n: {0: "batch", 1: "seq"} for n in INPUT_NAMES + OUTPUT_NAMES}
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(seg)), tmp,
                              input_names=list(INPUT_NAMES), output_names=list(OUTPUT_NAMES), dynamic_axes=dyn,
                              opset_version=QAT_OPSET, do_constant_folding=False, dynamo=False)
            ids, mask, seg = _probe(vocab, 3, 77, 1)
            ref = model(torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(seg))
        ref = np.stack([r.numpy() for r in ref], axis=-1)
        proto = onnx.load(tmp)
        _fold_weight_transposes(proto)
        _constants_to_initializers(proto)
        onnx.checker.check_model(proto)
        onnx.save(proto, tmp)
        from mlperf_bert.backends.onnxruntime import OnnxRuntimeBackend

        got = OnnxRuntimeBackend(tmp_path, device="cpu", graph_optimization="disable").predict(ids, mask, seg)
        diff = float(np.abs(got - ref).max())
        rel = float(np.abs(got - ref).mean() / max(np.abs(ref).mean(), 1e-6))
        if not rel <= parity_rtol:
            raise ModelError(f"fake-quant ONNX differs from PyTorch by {rel:.1%} of the mean |logit| "
                             f"(> {parity_rtol:.0%}; max {diff:.3f}); not written")
    counts = qdq_counts(onnx.load(out_path))
    return {"opset": QAT_OPSET, "inputs": list(INPUT_NAMES), "outputs": list(OUTPUT_NAMES),
            "parity_max_abs_diff_vs_pytorch": diff, "parity_mean_rel_diff_vs_pytorch": rel, **counts}


def _constants_to_initializers(model) -> None:
    """Turn ``Constant`` nodes into initializers and fold ``Cast`` of an initializer, so every Q/DQ scale
    and zero point is a stored tensor (the exporter writes buffers as Constant + Cast)."""
    import onnx
    from onnx import helper, numpy_helper

    g = model.graph
    inits = {i.name: i for i in g.initializer}
    keep = []
    for n in g.node:
        if n.op_type == "Constant" and len(n.attribute) == 1 and n.attribute[0].name == "value":
            t = onnx.TensorProto()
            t.CopyFrom(n.attribute[0].t)
            t.name = n.output[0]
            g.initializer.append(t)
            inits[t.name] = t
            continue
        if n.op_type == "Cast" and n.input[0] in inits:
            to = next(a.i for a in n.attribute if a.name == "to")
            arr = numpy_helper.to_array(inits[n.input[0]]).astype(helper.tensor_dtype_to_np_dtype(to))
            t = numpy_helper.from_array(arr, n.output[0])
            g.initializer.append(t)
            inits[t.name] = t
            continue
        keep.append(n)
    del g.node[:]
    g.node.extend(keep)
    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    for name in [i.name for i in g.initializer if i.name not in used]:
        g.initializer.remove(inits[name])


def _fold_weight_transposes(model) -> None:
    """Replace ``Transpose(initializer)`` by the transposed initializer (the exporter leaves ``W.t()``
    unfolded when constant folding is off), so weights reach QuantizeLinear as stored initializers."""
    from onnx import numpy_helper

    g = model.graph
    inits = {i.name: i for i in g.initializer}
    used = {}
    for n in g.node:
        for i in n.input:
            used[i] = used.get(i, 0) + 1
    keep = []
    for n in g.node:
        if n.op_type == "Transpose" and n.input[0] in inits and used.get(n.input[0]) == 1:
            perm = next((list(a.ints) for a in n.attribute if a.name == "perm"), None)
            arr = numpy_helper.to_array(inits[n.input[0]])
            new = numpy_helper.from_array(np.ascontiguousarray(np.transpose(arr, perm)), n.output[0])
            g.initializer.remove(inits[n.input[0]])
            g.initializer.append(new)
            continue
        keep.append(n)
    del g.node[:]
    g.node.extend(keep)


def qdq_counts(model) -> dict:
    """Q/DQ statistics of an ONNX model: node counts, quantized weights, and that every scale is a scalar."""
    from onnx import numpy_helper

    g = model.graph
    inits = {i.name: i for i in g.initializer}
    q = [n for n in g.node if n.op_type == "QuantizeLinear"]
    dq = [n for n in g.node if n.op_type == "DequantizeLinear"]
    per_tensor = all(n.input[1] in inits and numpy_helper.to_array(inits[n.input[1]]).size == 1 for n in q + dq)
    weights = sum(1 for n in q if n.input[0] in inits) + sum(
        1 for n in dq if n.input[0] in inits and inits[n.input[0]].data_type == 3)  # int8 initializers
    return {"quantize_linear": len(q), "dequantize_linear": len(dq), "quantized_weights": weights,
            "per_tensor_scales": bool(per_tensor)}


def fake_quant_to_qdq(in_path: Path, out_path: Path, uint8_activations: bool = True) -> dict:
    """Write the fast form of a fake-quant ONNX file.

    1. Weights: every ``QuantizeLinear`` of an initializer (constant scale, int8 zero point) is replaced
       by its int8 result, ``clip(round_half_even(w / scale) + zp, -128, 127)`` (ONNX QuantizeLinear
       semantics), stored as an initializer that its DequantizeLinear consumers read.
    2. Activations (``uint8_activations``): each int8 Q/DQ pair with zero point 0 becomes uint8 with zero
       point 128: the same grid of values (q_u8 = q_s8 + 128), in the form ONNX Runtime's x86 integer
       kernels take. ORT converts such pairs itself only when the Q has a single DequantizeLinear; a
       tensor that feeds both a MatMul and a residual Add (here: every layer input) would otherwise keep
       fp32 MatMuls.

    Returns:
        ``{"folded_weights": n, "uint8_activations": m}`` plus ``qdq_counts`` of the result.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(in_path))
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    keep, folded, drop = [], 0, set()
    for n in g.node:
        if n.op_type == "QuantizeLinear" and all(i in inits for i in n.input[:3] if i):
            w = numpy_helper.to_array(inits[n.input[0]]).astype(np.float32)
            scale = numpy_helper.to_array(inits[n.input[1]]).astype(np.float32)
            zp = numpy_helper.to_array(inits[n.input[2]]) if len(n.input) > 2 and n.input[2] else np.int8(0)
            if zp.dtype != np.int8:
                keep.append(n)
                continue
            q = np.clip(np.rint(w / scale) + zp.astype(np.int32), -128, 127).astype(np.int8)
            g.initializer.append(numpy_helper.from_array(q, n.output[0]))
            drop.add(n.input[0])
            folded += 1
            continue
        keep.append(n)
    del g.node[:]
    g.node.extend(keep)
    converted = 0
    if uint8_activations:
        consumers: dict[str, list] = {}
        for n in g.node:
            for i in n.input:
                consumers.setdefault(i, []).append(n)
        u8_zero = {}
        for n in g.node:
            if n.op_type != "QuantizeLinear" or len(n.input) < 3 or n.input[2] not in inits:
                continue
            zp = numpy_helper.to_array(inits[n.input[2]])
            if zp.dtype != np.int8 or zp.size != 1 or int(zp.reshape(-1)[0]) != 0:
                continue
            dqs = consumers.get(n.output[0], [])
            if not dqs or any(c.op_type != "DequantizeLinear" or c.input[2:3] != n.input[2:3] for c in dqs):
                continue
            name = n.input[2] + "_u8"
            if name not in u8_zero:
                u8_zero[name] = numpy_helper.from_array(np.array(128, dtype=np.uint8).reshape(zp.shape), name)
                g.initializer.append(u8_zero[name])
            for node in [n, *dqs]:
                node.input[2] = name
            converted += 1
    still_used = {i for n in g.node for i in n.input}
    for name in sorted(drop - still_used):
        g.initializer.remove(inits[name])
    for i in [i for i in g.initializer if i.name not in still_used]:
        g.initializer.remove(i)
    onnx.checker.check_model(model)
    with atomic_path(Path(out_path)) as tmp:
        onnx.save(model, str(tmp))
    return {"folded_weights": folded, "uint8_activations": converted, **qdq_counts(model)}
