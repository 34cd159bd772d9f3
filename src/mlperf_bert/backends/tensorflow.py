"""TensorFlow 2.x backend: an official-style frozen graph (``model.pb``) or a SavedModel folder.

Both are run through a ``tf.compat.v1.Session`` on their own ``tf.Graph``, as the MLPerf reference
``tf_SUT.py`` runs ``model.pb``: feeds ``input_ids:0``, ``input_mask:0``, ``segment_ids:0``, fetch ``logits:0``.
A session (unlike ``tf.config.threading``, which is process-wide and frozen after TF starts) takes its own
thread counts (``use_per_session_threads``), so two backends in one process do not fight over one setting.
Only TF 2.x (``tensorflow-cpu`` from PyPI, extra ``[tensorflow]``) is needed; the graph is parsed with the
protobuf TF ships with, so there is no TF1 install and no protobuf pin.

Accepted models (``BackendConfig.model``):
  * ``*.pb``: frozen GraphDef with Placeholders ``input_ids``/``input_mask``/``segment_ids`` (aliases
    ``attention_mask``/``token_type_ids`` accepted) and a ``logits`` node [B, L, 2] (or ``start_logits`` +
    ``end_logits`` [B, L]). Fixed input shapes (the official file is [1, 384]) are handled: batches are split
    into chunks of the fixed batch and padded (ids/mask/segments 0) to the fixed length; padding is cut off.
  * a SavedModel folder (has ``saved_model.pb``) with signature ``serving_default``, same names;
  * an ``mlperf-bert export-tf`` folder (has ``saved_model/``): its SavedModel is used.

Options (``BackendConfig.options``): ``graph_optimizations`` (bool, default True: TF's Grappler rewrites,
which cost a few seconds on the first batch; False skips them).
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import numpy as np

from mlperf_bert.backends.base import BackendConfig, BackendOption, BackendSpec, model_path, predict_fixed_shape
from mlperf_bert.errors import BackendFailure, ConfigError, ModelError

#: Canonical input names (official model.pb, docs/models.md#tensor-names) and accepted aliases (HF naming), in feed
#: order.
INPUT_ALIASES = {
    "input_ids": ("input_ids",),
    "input_mask": ("input_mask", "attention_mask"),
    "segment_ids": ("segment_ids", "token_type_ids"),
}


def import_tensorflow():
    """Import TF with its C++ INFO lines hidden (``TF_CPP_MIN_LOG_LEVEL=1`` unless the user set it)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    import tensorflow as tf

    return tf


@contextlib.contextmanager
def _quiet_tf_logger(tf):
    """Hide the deprecation notices ``tf.compat.v1`` loaders print, then restore the logger level."""
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _match_inputs(available: dict[str, object], where: str) -> dict[str, str]:
    """Canonical input name -> the model's name, or ModelError listing what the model has."""
    found = {}
    for canon, aliases in INPUT_ALIASES.items():
        hit = next((a for a in aliases if a in available), None)
        if hit is not None:
            found[canon] = hit
    missing = [c for c in INPUT_ALIASES if c not in found]
    extra = sorted(set(available) - set(found.values()))
    if missing or extra:
        raise ModelError(
            f"{where} has inputs {sorted(available)}; expected exactly input_ids, input_mask, segment_ids "
            f"(or attention_mask/token_type_ids){'; missing ' + ', '.join(missing) if missing else ''}"
            f"{'; unknown ' + ', '.join(extra) if extra else ''}"
        )
    return found


class TensorFlowBackend:
    """Runs a BERT SQuAD TF graph; ``predict`` returns float32 [B, L, 2].

    Attributes:
        name: ``"tensorflow"``.
        model_path: the file or folder loaded.
        kind: ``"frozen_graph"`` or ``"saved_model"``.
        input_dtype: numpy dtype the model takes (int32 for official/exported graphs).
        static_batch, static_length: fixed input dims of the model, or None when dynamic.
    """

    name = "tensorflow"

    def __init__(self, model_path: Path, *, threads: int | None = None, graph_optimizations: bool = True,
                 device: str = "auto") -> None:
        tf = import_tensorflow()
        self._tf = tf
        self.model_path = Path(model_path)
        path = self.model_path
        if path.is_dir() and not (path / "saved_model.pb").is_file() and (path / "saved_model").is_dir():
            path = path / "saved_model"
        if not path.exists():
            raise ModelError(f"TensorFlow model {path} not found; pass a frozen graph .pb or a SavedModel folder")

        config = tf.compat.v1.ConfigProto(use_per_session_threads=True, allow_soft_placement=True)
        if threads is not None:
            if threads < 1:
                raise ConfigError(f"threads must be >= 1 (got {threads})")
            config.intra_op_parallelism_threads = threads
            config.inter_op_parallelism_threads = 1  # BERT is a chain of big ops; parallel ops only oversubscribe
        if not graph_optimizations:
            config.graph_options.rewrite_options.disable_meta_optimizer = True
        if device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"unknown device {device!r} for the tensorflow backend; use cpu, cuda or auto")
        if device == "cpu":
            config.device_count["GPU"] = 0
        elif device == "cuda" and not tf.config.list_physical_devices("GPU"):
            raise ConfigError("device 'cuda' requested but TensorFlow sees no GPU (tensorflow-cpu); use --device cpu")

        self._graph = tf.Graph()
        self._session = None
        if path.is_dir():
            self.kind = "saved_model"
            feeds, fetches = self._load_saved_model(path, config)
        else:
            self.kind = "frozen_graph"
            feeds, fetches = self._load_frozen_graph(path, config)
        self._feeds = feeds  # canonical name -> tf.Tensor, in INPUT_ALIASES order
        self._fetches = fetches  # [logits] or [start_logits, end_logits]
        ids = feeds["input_ids"]
        self.input_dtype = np.dtype(ids.dtype.as_numpy_dtype)
        dims = ids.shape.as_list() if ids.shape.rank is not None else [None, None]
        if len(dims) != 2:
            self.close()
            raise ModelError(f"{path}: input_ids has shape {dims}; expected [batch, seq]")
        self.static_batch, self.static_length = dims

    # -- loading ---------------------------------------------------------------------------------------------

    def _load_frozen_graph(self, path: Path, config):
        tf = self._tf
        from google.protobuf.message import DecodeError

        graph_def = tf.compat.v1.GraphDef()
        try:
            data = path.read_bytes()
            graph_def.ParseFromString(data)
            del data  # BERT-Large: 1.3 GB; keep one copy of the weights in Python at a time
        except (DecodeError, RuntimeError, ValueError) as exc:
            raise ModelError(
                f"frozen graph {path} cannot be parsed ({exc}); the file is truncated or not a TF GraphDef, "
                "download or export it again"
            ) from None
        if not graph_def.node:
            raise ModelError(f"frozen graph {path} has no nodes; the file is empty or not a TF GraphDef")
        nodes = {n.name: n for n in graph_def.node}
        placeholders = {n.name: n for n in graph_def.node if n.op == "Placeholder"}
        names = _match_inputs(placeholders, f"frozen graph {path}")
        if "logits" in nodes:
            out_names = ["logits"]
        elif "start_logits" in nodes and "end_logits" in nodes:
            out_names = ["start_logits", "end_logits"]
        else:
            raise ModelError(f"frozen graph {path} has no 'logits' node (nor start_logits/end_logits); "
                             "export it with mlperf-bert export-tf or use the official model.pb")
        try:
            with self._graph.as_default():
                tf.compat.v1.import_graph_def(graph_def, name="")
        except (ValueError, tf.errors.OpError) as exc:
            raise ModelError(f"frozen graph {path} cannot be imported: {str(exc).splitlines()[0]}") from None
        del graph_def, nodes, placeholders  # the tf.Graph holds its own copy
        self._session = tf.compat.v1.Session(graph=self._graph, config=config)
        g = self._graph
        feeds = {c: g.get_tensor_by_name(f"{n}:0") for c, n in names.items()}
        return feeds, [g.get_tensor_by_name(f"{n}:0") for n in out_names]

    def _load_saved_model(self, path: Path, config):
        tf = self._tf
        if not (path / "saved_model.pb").is_file():
            raise ModelError(
                f"{path} is a folder without saved_model.pb; pass a SavedModel folder or a .pb frozen graph"
            )
        self._session = tf.compat.v1.Session(graph=self._graph, config=config)
        try:
            with self._graph.as_default(), _quiet_tf_logger(tf):
                meta = tf.compat.v1.saved_model.loader.load(self._session, ["serve"], str(path))
        except Exception as exc:  # DecodeError, OpError (truncated variables), RuntimeError (no 'serve' tag)
            self.close()
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(
                f"SavedModel {path} cannot be loaded ({first}); it is truncated or incomplete, export it again"
            ) from None
        sig = meta.signature_def.get("serving_default")
        if sig is None:
            self.close()
            raise ModelError(f"SavedModel {path} has no 'serving_default' signature (has {sorted(meta.signature_def)})")
        names = _match_inputs(dict(sig.inputs), f"SavedModel {path} (serving_default)")
        outputs = dict(sig.outputs)
        if "logits" in outputs:
            out_keys = ["logits"]
        elif "start_logits" in outputs and "end_logits" in outputs:
            out_keys = ["start_logits", "end_logits"]
        else:
            self.close()
            raise ModelError(
                f"SavedModel {path} outputs {sorted(outputs)}; expected 'logits' or start_logits/end_logits"
            )
        g = self._graph
        feeds = {c: g.get_tensor_by_name(sig.inputs[n].name) for c, n in names.items()}
        return feeds, [g.get_tensor_by_name(outputs[k].name) for k in out_keys]

    @classmethod
    def from_config(cls, config: BackendConfig) -> "TensorFlowBackend":
        """Build from a ``BackendConfig`` (model path, threads, device, options).

        Raises:
            ConfigError: no model path, or an unavailable device.
            ModelError: missing, truncated or unrecognised model.
        """
        return cls(model_path(config), threads=config.threads, device=config.device,
                   graph_optimizations=bool(config.option("graph_optimizations", True)))

    # -- inference -------------------------------------------------------------------------------------------

    def predict(self, input_ids: np.ndarray, input_mask: np.ndarray, segment_ids: np.ndarray) -> np.ndarray:
        """Logits for one batch.

        Args:
            input_ids, input_mask, segment_ids: int32/int64 [B, L].

        Returns:
            float32 [B, L, 2], C-contiguous ([..., 0] start, [..., 1] end).

        Raises:
            BackendFailure: bad shapes, a sequence longer than a fixed-shape graph allows, or a TF error.
        """
        if self._session is None:
            raise BackendFailure("tensorflow backend is closed")
        arrays = [np.asarray(a) for a in (input_ids, input_mask, segment_ids)]
        if any(a.ndim != 2 or a.shape != arrays[0].shape for a in arrays):
            raise BackendFailure(f"inputs must be three [B, L] arrays of one shape; got {[a.shape for a in arrays]}")
        arrays = [a.astype(self.input_dtype, copy=False) for a in arrays]
        if self.static_batch is None and self.static_length is None:
            return np.ascontiguousarray(self._run(arrays))
        return predict_fixed_shape(self._run, arrays, self.static_batch, self.static_length)

    def _run(self, chunk: list[np.ndarray]) -> np.ndarray:
        feed = {t: a for t, a in zip(self._feeds.values(), chunk)}
        try:
            res = self._session.run(self._fetches, feed)
        except self._tf.errors.OpError as exc:
            first = (exc.message or type(exc).__name__).splitlines()[0]
            raise BackendFailure(f"TensorFlow failed on a batch of shape {chunk[0].shape}: {first}") from None
        logits = res[0] if len(res) == 1 else np.stack(res, axis=-1)  # [B, L, 2]
        if logits.ndim != 3 or logits.shape[-1] != 2:
            raise BackendFailure(f"model returned logits of shape {logits.shape}; expected [B, L, 2]")
        return logits.astype(np.float32, copy=False)

    def describe(self) -> dict:
        """What run.json records of this backend: the graph kind, input dtype and any fixed input shape."""
        return {"kind": self.kind, "input_dtype": str(self.input_dtype),
                "static_shape": [self.static_batch, self.static_length]}

    def close(self) -> None:
        """Close the session (idempotent)."""
        if self._session is not None:
            self._session.close()
            self._session = None


SPEC = BackendSpec(
    name="tensorflow",
    target="mlperf_bert.backends.tensorflow:TensorFlowBackend",
    extra="tensorflow",
    summary="TensorFlow 2.x (frozen graph .pb or SavedModel folder; 'mlperf-bert export-tf' makes both)",
    framework="TensorFlow",
    packages=("tensorflow-cpu", "tensorflow"),
    model_formats=("tf-frozen", "tf-saved-model"),
    options=(
        BackendOption("graph_optimizations", bool, True, flag="--tf-graph-optimizations", tune=(True, False),
                      help="tensorflow: Grappler graph rewrites (a few seconds on the first batch; default on)"),
    ),
)
