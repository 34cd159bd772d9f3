"""SmoothQuant for BERT ONNX models: move activation outliers into the weights before per-tensor int8.

A per-tensor symmetric int8 quantizer gives every channel of a tensor the same step ``amax / 127``. BERT's
LayerNorm outputs and GELU outputs have a few channels whose values are 10-50x larger than the rest, so
the step that covers them rounds most channels to a handful of levels. SmoothQuant (Xiao et al. 2022,
"SmoothQuant: Accurate and Efficient Post-Training Quantization for Large Language Models", eq. 4)
rescales channel ``k`` of the activation ``X`` by ``1 / s_k`` and row ``k`` of the following weight
``W`` by ``s_k``, which leaves ``X @ W`` unchanged in exact arithmetic::

    s_k = max|X_k| ** alpha / max|W_k| ** (1 - alpha)

``alpha`` (0.5 in the paper) balances how hard the activations and the weights are to quantize. The
quantization itself stays symmetric and per-tensor (docs/workload.md#int8-reference): only the fp32 graph changes.

In a post-LN BERT the LayerNorm output also feeds the residual Add, so ``1 / s`` cannot be folded into
the LayerNorm's gamma/beta; it becomes an explicit ``Mul`` between the activation and the MatMuls it
feeds (one per distinct activation: Q, K and V share one), a cheap elementwise op next to the GEMMs.
Only MatMuls with a 2-D weight initializer (the dense layers) are smoothed; the attention matmuls
(both inputs activations) and the excluded ones (the QA head) are left as they are.

The per-channel ranges ``max|X_k|`` come from the calibration features only (MLPerf closed division:
the 100 listed examples, docs/workload.md#calibration-list), read by running the fp32 model in ONNX Runtime with the
activations added as extra outputs.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from mlperf_bert.errors import ConfigError, ModelError

#: Name suffix of the inserted Mul's output and its scale initializer.
SMOOTH_SUFFIX = "_smoothquant"


@dataclass(frozen=True)
class SmoothedTensor:
    """One smoothed activation: its name, the MatMuls it feeds, and its range before/after.

    Attributes:
        activation: the activation tensor's name in the fp32 graph.
        matmuls: names of the MatMul nodes that now read ``activation * (1 / s)``.
        channels: K, the activation's last dimension.
        act_amax: max |X| over the calibration inputs before smoothing (the per-tensor range).
        act_amax_after: max |X / s| after smoothing.
        weight_amax / weight_amax_after: max |W| over the group's weights before / after.
    """

    activation: str
    matmuls: tuple[str, ...]
    channels: int
    act_amax: float
    act_amax_after: float
    weight_amax: float
    weight_amax_after: float


def dense_matmul_groups(model, exclude: set[str]) -> dict[str, list]:
    """MatMul nodes whose second input is a 2-D float initializer [K, N], grouped by their activation
    input (first input). Nodes named in ``exclude`` are left out."""
    inits = {i.name: i for i in model.graph.initializer}
    groups: dict[str, list] = defaultdict(list)
    for node in model.graph.node:
        if node.op_type != "MatMul" or node.name in exclude:
            continue
        a, b = node.input[0], node.input[1]
        if a in inits or b not in inits or len(inits[b].dims) != 2:
            continue
        groups[a].append(node)
    return dict(groups)


def activation_channel_amax(model, names: list[str], inputs: list[dict[str, np.ndarray]],
                            threads: int | None = None) -> dict[str, np.ndarray]:
    """max |x| per channel (last axis) of the named tensors over the given inputs.

    Args:
        model: fp32 ``onnx.ModelProto`` (not modified).
        names: intermediate tensor names.
        inputs: feeds (e.g. one calibration feature per dict, int64 [1, L_i] each).

    Returns:
        name -> float32 [K].
    """
    import copy

    import onnx
    import onnxruntime as ort

    probe = copy.deepcopy(model)
    have = {o.name for o in probe.graph.output}
    for name in names:
        if name not in have:
            probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep the tensors by name
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = threads
    sess = ort.InferenceSession(probe.SerializeToString(), so, providers=["CPUExecutionProvider"])
    amax: dict[str, np.ndarray] = {}
    for feed in inputs:
        outs = sess.run(names, feed)
        for name, x in zip(names, outs):
            m = np.abs(x.reshape(-1, x.shape[-1])).max(axis=0).astype(np.float32)
            amax[name] = m if name not in amax else np.maximum(amax[name], m)
    return amax


def smooth_model(model, inputs: list[dict[str, np.ndarray]], alpha: float = 0.5,
                 exclude: set[str] = frozenset(), threads: int | None = None) -> list[SmoothedTensor]:
    """Apply SmoothQuant to every dense MatMul of ``model`` in place (see the module docstring).

    Args:
        model: fp32 BERT ``onnx.ModelProto``; modified in place (Mul nodes added, weights rescaled).
        inputs: calibration feeds for the per-channel activation ranges.
        alpha: migration strength in [0, 1]: the larger, the more of each activation channel's range
            moves into the weight row (the paper uses 0.5; ``ptq`` defaults to 0.4).
        exclude: MatMul node names to leave alone (e.g. the QA head).

    Returns:
        one ``SmoothedTensor`` per smoothed activation, in graph order.

    Raises:
        ConfigError: alpha outside [0, 1] or no calibration inputs. ModelError: no dense MatMul found.
    """
    import onnx
    from onnx import numpy_helper

    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"--smooth-alpha must be in [0, 1], got {alpha}")
    if not inputs:
        raise ConfigError("SmoothQuant needs at least one calibration input")
    groups = dense_matmul_groups(model, set(exclude))
    if not groups:
        raise ModelError("no MatMul with a 2-D weight initializer to smooth; is this a BERT ONNX model?")
    act = activation_channel_amax(model, list(groups), inputs, threads)
    inits = {i.name: i for i in model.graph.initializer}
    first_use: dict[str, int] = {}
    uses: dict[str, int] = defaultdict(int)
    for pos, node in enumerate(model.graph.node):
        for name in node.input:
            first_use.setdefault(name, pos)
            uses[name] += 1
    report: list[SmoothedTensor] = []
    inserts: list[tuple[int, object]] = []
    for name, nodes in groups.items():
        weights = [numpy_helper.to_array(inits[n.input[1]]).astype(np.float32) for n in nodes]
        k = weights[0].shape[0]
        if any(w.shape[0] != k for w in weights) or act[name].shape[0] != k:
            continue  # not a [.., K] x [K, N] product we understand
        w_max = np.max([np.abs(w).max(axis=1) for w in weights], axis=0)
        a_max = act[name]
        s = np.power(np.maximum(a_max, 1e-5), alpha) / np.power(np.maximum(w_max, 1e-5), 1.0 - alpha)
        s = np.where((a_max > 0) & (w_max > 0), s, 1.0).astype(np.float32)
        for node, w in zip(nodes, weights):
            shared = uses[node.input[1]] > 1
            w_name = node.input[1] + (SMOOTH_SUFFIX if shared else "")
            scaled = numpy_helper.from_array((w * s[:, None]).astype(np.float32), w_name)
            if shared:  # a weight used elsewhere too gets its own scaled copy
                model.graph.initializer.append(scaled)
                node.input[1] = w_name
            else:
                inits[w_name].CopyFrom(scaled)
        scale_name = name + SMOOTH_SUFFIX + "_inv_scale"
        out_name = name + SMOOTH_SUFFIX
        model.graph.initializer.append(numpy_helper.from_array((1.0 / s).astype(np.float32), scale_name))
        mul = onnx.helper.make_node("Mul", [name, scale_name], [out_name], name=out_name + "/Mul")
        for node in nodes:
            node.input[0] = out_name
        inserts.append((first_use[name], mul))  # after the producer, before every consumer
        report.append(SmoothedTensor(name, tuple(n.name for n in nodes), k, float(a_max.max()),
                                     float((a_max / s).max()), float(w_max.max()), float((w_max * s).max())))
    for pos, mul in sorted(inserts, key=lambda t: -t[0]):  # from the back, so positions stay valid
        model.graph.node.insert(pos, mul)
    return report
