"""PyTorch (Hugging Face folder) or TF checkpoint -> TensorFlow SavedModel + official-style frozen graph.

The BERT SQuAD forward pass is written here in plain TF ops with the exact math of Google's ``modeling.py``
and HF ``BertForQuestionAnswering`` (eval mode): embeddings word + position + token type, LayerNorm eps 1e-12,
attention scores ``q k^T / sqrt(head_size)`` plus ``(1 - mask) * -10000``, erf GELU, and the SQuAD head
``logits = x W^T + b``. Weights are looked up by the DLE checkpoint names of ``convert.names``, so the same graph
serves a converted HF model and an original TF checkpoint.

Outputs (``export_tf``):
  * ``saved_model/``: signature ``serving_default``: int32 ``input_ids``, ``input_mask``, ``segment_ids``
    [batch, seq] -> ``{"logits": float32 [batch, seq, 2]}`` (start logits in ``[..., 0]``, end in ``[..., 1]``).
  * ``model.pb``: a frozen GraphDef like the official MLPerf ``model.pb`` (docs/models.md#tensor-names): Placeholders
    ``input_ids``, ``input_mask``, ``segment_ids`` (int32) and the node ``logits`` (float32 [batch, seq, 2]);
    shapes [None, None] by default, or fixed (the official file is [1, 384]) with ``static_shape``.
  * ``export.json``: source, sizes, names, TF version and the parity check result.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from mlperf_bert.convert import atomic_output_dir, check_output_dir
from mlperf_bert.convert.names import ATTENTION_MASK_VALUE, LAYER_NORM_EPS, BertShape, weight_names
from mlperf_bert.errors import ConfigError, ModelError

#: Input names of the official frozen graph and of our SavedModel signature (docs/models.md#tensor-names).
INPUT_NAMES = ("input_ids", "input_mask", "segment_ids")
#: Output node / signature key: float32 [batch, seq, 2].
OUTPUT_NAME = "logits"


def load_tf_named_weights(
    source: Path, *, num_heads: int | None = None, bert_config: Path | None = None
) -> tuple[BertShape, dict[str, np.ndarray]]:
    """Weights under DLE TF names and TF layout (kernels [in, out]), float32, from any supported format.

    Args:
        source: a Hugging Face folder with ``model.safetensors`` (read without torch); a PyTorch state_dict
            file such as the official ``model.pytorch`` with ``bert_config.json`` beside it, or a folder with
            ``pytorch_model.bin`` (read by the PyTorch backend's strict loader, needs torch); or a TF
            checkpoint prefix/folder.
        num_heads, bert_config: for a TF checkpoint only (see ``tf_to_torch.read_tf_checkpoint``).

    Returns:
        (sizes, name -> array) with exactly ``names.weight_names(sizes.num_layers)`` (no pooler).
    """
    from mlperf_bert.convert.torch_to_tf import HFBert, hf_to_tf_tensors, read_hf_dir

    source = Path(source)
    if not source.exists() and not Path(f"{source}.index").is_file():
        raise ModelError(f"model {source} not found; pass a Hugging Face folder (config.json + model.safetensors), "
                         "a model.pytorch state_dict or a TF checkpoint prefix (model.ckpt-5474)")
    torch_file = source.is_file() and source.suffix in (".pytorch", ".bin", ".pt", ".pth")
    torch_dir = (source.is_dir() and (source / "pytorch_model.bin").is_file()
                 and not (source / "model.safetensors").is_file())
    if torch_file or torch_dir:
        from mlperf_bert.backends.pytorch import build_model

        cfg = (model := build_model(source)).config
        if cfg.hidden_act != "gelu":
            raise ModelError(f"{source}: hidden_act {cfg.hidden_act!r} is not supported; BERT uses 'gelu'")
        shape = BertShape(cfg.num_hidden_layers, cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size,
                          cfg.vocab_size, cfg.max_position_embeddings, cfg.type_vocab_size)
        state = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
        tensors = hf_to_tf_tensors(HFBert(source, shape, state, pooler=False, ignored={}))
    elif source.is_dir() and ((source / "config.json").is_file() or (source / "model.safetensors").is_file()):
        model = read_hf_dir(source)
        tensors, shape = hf_to_tf_tensors(model), model.shape
    else:
        from mlperf_bert.convert.tf_to_torch import read_tf_checkpoint

        ckpt = read_tf_checkpoint(source, num_heads=num_heads, bert_config=bert_config)
        tensors, shape = ckpt.tensors, ckpt.shape
    keep = {n.tf for n in weight_names(shape.num_layers)}
    return shape, {k: v for k, v in tensors.items() if k in keep}


def bert_squad_logits(w, shape: BertShape, input_ids, input_mask, segment_ids):
    """The BERT SQuAD forward pass in TF ops (traced in a ``tf.function`` or built in a ``tf.Graph``).

    Args:
        w: DLE TF name -> tensor or variable (kernels [in, out]).
        shape: architecture sizes.
        input_ids, input_mask, segment_ids: int [B, L].

    Returns:
        float32 [B, L, 2] logits.
    """
    import tensorflow as tf

    ids = tf.cast(input_ids, tf.int32)
    seg = tf.cast(segment_ids, tf.int32)
    b, length = tf.shape(ids)[0], tf.shape(ids)[1]
    h, nh, dh = shape.hidden, shape.heads, shape.head_size

    def layer_norm(x, scope):
        mean, var = tf.nn.moments(x, axes=[-1], keepdims=True)  # biased variance, as torch LayerNorm
        return (x - mean) * tf.math.rsqrt(var + LAYER_NORM_EPS) * w[f"{scope}/gamma"] + w[f"{scope}/beta"]

    def dense(x, scope):  # x [B*L, in] -> [B*L, out]
        return tf.matmul(x, w[f"{scope}/kernel"]) + w[f"{scope}/bias"]

    def heads(x):  # [B*L, H] -> [B, nh, L, dh]
        return tf.transpose(tf.reshape(x, [b, length, nh, dh]), [0, 2, 1, 3])

    x = (tf.gather(w["bert/embeddings/word_embeddings"], ids)
         + tf.gather(w["bert/embeddings/position_embeddings"], tf.range(length))[tf.newaxis]
         + tf.gather(w["bert/embeddings/token_type_embeddings"], seg))  # [B, L, H]
    x = tf.reshape(layer_norm(x, "bert/embeddings/LayerNorm"), [-1, h])  # [B*L, H]
    # [B, 1, 1, L]: 0 for real keys, -10000 for padding (Google modeling.py create_attention_mask + bias)
    mask_bias = (1.0 - tf.cast(input_mask, tf.float32))[:, tf.newaxis, tf.newaxis, :] * ATTENTION_MASK_VALUE
    scale = 1.0 / math.sqrt(dh)
    for i in range(shape.num_layers):
        p = f"bert/encoder/layer_{i}"
        q, k, v = (heads(dense(x, f"{p}/attention/self/{part}")) for part in ("query", "key", "value"))
        scores = tf.matmul(q, k, transpose_b=True) * scale + mask_bias  # [B, nh, L, L]
        ctx = tf.matmul(tf.nn.softmax(scores, axis=-1), v)  # [B, nh, L, dh]
        ctx = tf.reshape(tf.transpose(ctx, [0, 2, 1, 3]), [-1, h])  # [B*L, H]
        x = layer_norm(dense(ctx, f"{p}/attention/output/dense") + x, f"{p}/attention/output/LayerNorm")
        inter = dense(x, f"{p}/intermediate/dense")
        inter = 0.5 * inter * (1.0 + tf.math.erf(inter / math.sqrt(2.0)))  # exact (erf) GELU
        x = layer_norm(dense(inter, f"{p}/output/dense") + x, f"{p}/output/LayerNorm")
    logits = tf.matmul(x, w["cls/squad/output_weights"], transpose_b=True) + w["cls/squad/output_bias"]
    return tf.reshape(logits, [b, length, 2])  # [B, L, 2]


def _build_module(shape: BertShape, tensors: dict[str, np.ndarray]):
    """A ``tf.Module`` holding the weights as variables (named like the checkpoint) with a ``serve`` function."""
    import tensorflow as tf

    order = [n.tf for n in weight_names(shape.num_layers)]

    class BertSquad(tf.Module):
        def __init__(self):
            super().__init__(name="bert_squad")
            self.weights = [tf.Variable(tensors[n], name=n, trainable=False) for n in order]

        def forward(self, input_ids, input_mask, segment_ids):
            w = dict(zip(order, self.weights))
            logits = bert_squad_logits(w, shape, input_ids, input_mask, segment_ids)
            return {OUTPUT_NAME: tf.identity(logits, name=OUTPUT_NAME)}

    module = BertSquad()
    # The SavedModel signature: dynamic [batch, seq] int32 inputs.
    module.serve = tf.function(
        module.forward, input_signature=[tf.TensorSpec([None, None], tf.int32, name=n) for n in INPUT_NAMES]
    )
    return module


def _frozen_graph_def(shape: BertShape, tensors: dict[str, np.ndarray], static_shape: tuple[int, int] | None):
    """The frozen GraphDef, built directly in graph mode: Placeholders ``input_ids``/``input_mask``/``segment_ids``,
    one Const per weight named like the checkpoint variable, output node ``logits``.

    Building it from constants (rather than freezing the SavedModel function with
    ``convert_variables_to_constants_v2``) is faster and keeps the official node names; the parity check then
    compares two independently built graphs.
    """
    import tensorflow as tf

    dims = list(static_shape) if static_shape else [None, None]
    graph = tf.Graph()
    with graph.as_default():
        inputs = [tf.compat.v1.placeholder(tf.int32, dims, name=n) for n in INPUT_NAMES]
        w = {n.tf: tf.constant(tensors[n.tf], name=n.tf) for n in weight_names(shape.num_layers)}
        tf.identity(bert_squad_logits(w, shape, *inputs), name=OUTPUT_NAME)
    graph_def = graph.as_graph_def()
    if graph_def.ByteSize() >= 2**31:  # protobuf's hard limit for one message
        raise ModelError(f"frozen graph would be {graph_def.ByteSize() / 2**30:.1f} GiB, over protobuf's 2 GiB limit; "
                         "use the SavedModel instead")
    return graph_def


def _probe_batch(vocab: int, batch: int = 2, seq: int = 48, seed: int = 0) -> tuple[np.ndarray, ...]:
    """int32 [batch, seq] ids/mask/segments with a padded row, for the parity check."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, vocab, size=(batch, seq)).astype(np.int32)
    ids[:, 0] = 101
    mask = np.ones((batch, seq), np.int32)
    mask[-1, seq // 2:] = 0
    ids[mask == 0] = 0
    seg = np.zeros((batch, seq), np.int32)
    seg[:, seq // 4:] = 1
    seg[mask == 0] = 0
    return ids, mask, seg


def _torch_logits(shape: BertShape, tensors: dict[str, np.ndarray], batch) -> np.ndarray | None:
    """PyTorch ``BertForQuestionAnswering`` logits [B, L, 2] from the same weights; None without torch."""
    try:
        import torch
        from transformers import BertConfig, BertForQuestionAnswering
    except ImportError:
        return None
    from mlperf_bert.convert.tf_to_torch import TFCheckpoint, tf_to_hf_tensors

    state = tf_to_hf_tensors(TFCheckpoint(Path(), shape, tensors, pooler=False))
    model = BertForQuestionAnswering(BertConfig(**shape.hf_config())).eval()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    ids, mask, seg = (torch.from_numpy(a.astype(np.int64)) for a in batch)
    with torch.inference_mode():
        out = model(input_ids=ids, attention_mask=mask, token_type_ids=seg)
    return torch.stack([out.start_logits, out.end_logits], dim=-1).numpy()


def export_tf(
    source: Path,
    out_dir: Path,
    *,
    static_shape: tuple[int, int] | None = None,
    num_heads: int | None = None,
    bert_config: Path | None = None,
    parity_atol: float | None = 1e-4,
    overwrite: bool = False,
) -> dict:
    """Write ``out_dir/saved_model/``, ``out_dir/model.pb`` and ``out_dir/export.json``.

    Args:
        source: Hugging Face folder or TF checkpoint (see ``load_tf_named_weights``).
        out_dir: folder to create (atomically: nothing appears unless everything was written).
        static_shape: (batch, seq) to fix the frozen graph's input shape, e.g. (1, 384) like the official
            ``model.pb``; None keeps [None, None]. The SavedModel is always dynamic.
        num_heads, bert_config: for a TF checkpoint source.
        parity_atol: check the SavedModel and the frozen graph against each other, and against PyTorch when
            torch + transformers are installed, on a probe batch; fail if any |difference| exceeds this.
            None skips the check.
        overwrite: replace an existing ``out_dir``.

    Returns:
        The manifest written to ``export.json``.

    Raises:
        ModelError: bad source, or the parity check failed. ConfigError: bad ``static_shape``.
    """
    import tensorflow as tf

    if static_shape is not None and (len(static_shape) != 2 or min(static_shape) < 1):
        raise ConfigError(f"static shape {static_shape} must be two positive ints (batch, seq), e.g. 1,384")
    check_output_dir(Path(out_dir), overwrite=overwrite)
    shape, tensors = load_tf_named_weights(source, num_heads=num_heads, bert_config=bert_config)
    if static_shape is not None and static_shape[1] > shape.max_positions:
        raise ConfigError(
            f"static sequence length {static_shape[1]} exceeds the model's {shape.max_positions} positions"
        )
    manifest: dict = {
        "source": str(source),
        "tensorflow": tf.__version__,
        "config": shape.hf_config(),
        "inputs": {n: "int32 [batch, seq]" for n in INPUT_NAMES},
        "output": {OUTPUT_NAME: "float32 [batch, seq, 2] (start, end)"},
        "frozen_graph_shape": list(static_shape) if static_shape else None,
        "parity": None,
    }
    batch = _probe_batch(shape.vocab, *(static_shape or (2, 48)))
    logits: dict[str, np.ndarray] = {}
    # One copy of the weights at a time beside the numpy arrays (BERT-Large: 1.3 GB each): frozen graph,
    # then SavedModel variables, then the parity runs.
    with atomic_output_dir(Path(out_dir), overwrite=overwrite) as tmp:
        graph_def = _frozen_graph_def(shape, tensors, static_shape)
        (tmp / "model.pb").write_bytes(graph_def.SerializeToString())
        del graph_def
        module = _build_module(shape, tensors)
        tf.saved_model.save(module, str(tmp / "saved_model"), signatures={"serving_default": module.serve})
        if parity_atol is not None:
            logits["saved_model_function"] = module.serve(*batch)[OUTPUT_NAME].numpy()
        del module
        if parity_atol is not None:
            logits["frozen_graph"] = _run_frozen_graph(tmp / "model.pb", batch)
            ref = _torch_logits(shape, tensors, batch)
            if ref is not None:
                logits["pytorch"] = ref
            manifest["parity"] = _parity(logits, parity_atol)
        (tmp / "export.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _run_frozen_graph(path: Path, batch) -> np.ndarray:
    """Logits of a frozen graph file on ``batch`` (Grappler off: this checks the graph's math)."""
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(path.read_bytes())
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
    del graph_def
    config = tf.compat.v1.ConfigProto()
    config.graph_options.rewrite_options.disable_meta_optimizer = True
    with tf.compat.v1.Session(graph=graph, config=config) as sess:
        return sess.run(f"{OUTPUT_NAME}:0", {f"{n}:0": a for n, a in zip(INPUT_NAMES, batch)})


def _parity(logits: dict[str, np.ndarray], atol: float) -> dict:
    """Max |difference| of frozen graph and PyTorch (when present) vs the SavedModel function."""
    base = logits["saved_model_function"]
    result: dict = {"probe_batch": list(base.shape[:2])}
    result["frozen_vs_function"] = float(np.abs(logits["frozen_graph"] - base).max())
    result["function_vs_pytorch"] = float(np.abs(logits["pytorch"] - base).max()) if "pytorch" in logits else None
    worst = max(v for k, v in result.items() if k != "probe_batch" and v is not None)
    if not worst <= atol:  # also catches NaN
        raise ModelError(f"TF export parity failed: max |difference| {result} exceeds {atol}; nothing was written")
    return result
