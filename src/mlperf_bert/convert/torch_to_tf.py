"""Hugging Face ``BertForQuestionAnswering`` folder -> TF checkpoint with the Google / NVIDIA DLE names.

The inverse of ``tf_to_torch``: it lets tests build a DLE-named checkpoint from real weights, and gives TF users
a checkpoint of any HF BERT QA model. The checkpoint is a TF1 name-based one (``<prefix>.index`` +
``<prefix>.data-00000-of-00001``, written by the ``SaveV2`` op), read by ``tf.train.load_checkpoint`` and
TF1 ``Saver.restore`` alike; a Google ``bert_config.json`` and a TF ``checkpoint`` state file are written
beside it.

``read_hf_dir`` (no torch needed: safetensors + numpy) is also what the TF graph export reads.

Example:
    >>> prefix = export_tf_checkpoint(Path("minilm-l6-squad"), Path("ckpt"))
    >>> prefix.name
    'model.ckpt'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from mlperf_bert.convert import atomic_output_dir, check_output_dir
from mlperf_bert.convert.names import HF_IGNORE_RULES, BertShape, check_names, hf_shapes, weight_names
from mlperf_bert.errors import DataError, ModelError


@dataclass(frozen=True)
class HFBert:
    """A checked Hugging Face BERT QA model held as numpy arrays.

    Attributes:
        path: the folder read.
        shape: architecture sizes from ``config.json``.
        state: HF key -> float32 array (torch layout, Linear weights [out, in]); exactly
            ``names.weight_names(shape.num_layers, pooler=pooler)``.
        pooler: whether the folder had ``bert.pooler.*`` (kept).
        ignored: skipped key -> reason (``names.HF_IGNORE_RULES``).
    """

    path: Path
    shape: BertShape
    state: dict[str, np.ndarray]
    pooler: bool
    ignored: dict[str, str]


def read_hf_dir(hf_dir: Path) -> HFBert:
    """Read ``config.json`` + ``model.safetensors`` of a BERT QA model, checking every key and shape.

    Raises:
        ModelError: missing/corrupt files, a non-BERT or non-GELU config, or missing/unexpected/mis-shaped
            tensors (all listed in one line).
    """
    hf_dir = Path(hf_dir)
    cfg_path, st_path = hf_dir / "config.json", hf_dir / "model.safetensors"
    if not hf_dir.is_dir():
        raise ModelError(
            f"model folder {hf_dir} not found; pass a Hugging Face folder with config.json and model.safetensors"
        )
    try:
        cfg = json.loads(cfg_path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{cfg_path} not found; the model folder needs a Hugging Face BERT config.json") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{cfg_path} is not valid JSON ({exc}); restore the model's config.json") from None
    if not st_path.is_file():
        raise ModelError(f"{st_path} not found; the model folder needs its weights as a single model.safetensors")
    if cfg.get("model_type", "bert") != "bert" or cfg.get("hidden_act", "gelu") != "gelu" \
            or cfg.get("position_embedding_type", "absolute") != "absolute":
        raise ModelError(
            f"{cfg_path}: only BERT with hidden_act 'gelu' and absolute positions is supported "
            f"(found model_type={cfg.get('model_type')!r}, hidden_act={cfg.get('hidden_act')!r})"
        )
    try:
        shape = BertShape(
            cfg["num_hidden_layers"], cfg["hidden_size"], cfg["num_attention_heads"], cfg["intermediate_size"],
            cfg["vocab_size"], cfg["max_position_embeddings"], cfg["type_vocab_size"],
        )
    except KeyError as exc:
        raise ModelError(f"{cfg_path} lacks {exc.args[0]}; it is not a complete BERT config") from None
    if abs(float(cfg.get("layer_norm_eps", 1e-12)) - 1e-12) > 1e-15:
        raise ModelError(f"{cfg_path}: layer_norm_eps {cfg['layer_norm_eps']} is not BERT's 1e-12; not supported")

    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        raw = load_file(str(st_path))
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        raise ModelError(
            f"cannot read {st_path} ({exc}); the file is truncated or corrupt, convert or download it again"
        ) from None
    found = {k: tuple(v.shape) for k, v in raw.items()}
    pooler = "bert.pooler.dense.weight" in raw
    check = check_names(found, hf_shapes(shape, pooler=pooler), HF_IGNORE_RULES)
    if not check.ok:
        raise ModelError(f"{st_path} does not match its config.json: {check.problems()}")
    state = {}
    for n in weight_names(shape.num_layers, pooler=pooler):
        arr = raw[n.hf]
        if not np.issubdtype(arr.dtype, np.floating):
            raise ModelError(f"{st_path}: {n.hf} has dtype {arr.dtype}, expected a float type")
        state[n.hf] = arr.astype(np.float32, copy=False)
    return HFBert(hf_dir, shape, state, pooler, check.ignored)


def hf_to_tf_tensors(model: HFBert) -> dict[str, np.ndarray]:
    """HF state_dict -> TF names and layout (Linear weights transposed to kernels [in, out]), float32."""
    out = {}
    for n in weight_names(model.shape.num_layers, pooler=model.pooler):
        arr = model.state[n.hf]
        out[n.tf] = np.ascontiguousarray(arr.T if n.transpose else arr)
    return out


def write_tf_checkpoint(tensors: Mapping[str, np.ndarray], prefix: Path) -> Path:
    """Write arrays as a TF1 name-based checkpoint (``<prefix>.index``, ``<prefix>.data-00000-of-00001``).

    Args:
        tensors: variable name -> array (any dtype TF knows; scalars allowed, e.g. ``global_step`` int64).
        prefix: checkpoint prefix; its folder must exist.

    Returns:
        ``prefix``.
    """
    import tensorflow as tf

    names = list(tensors)
    tf.raw_ops.SaveV2(
        prefix=str(prefix),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[np.asarray(tensors[n]) for n in names],
    )
    return Path(prefix)


def export_tf_checkpoint(
    hf_dir: Path,
    out_dir: Path,
    *,
    name: str = "model.ckpt",
    extra_variables: Mapping[str, np.ndarray] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a HF BERT QA folder as a DLE-named TF checkpoint folder.

    Args:
        hf_dir: Hugging Face folder (``config.json`` + ``model.safetensors``).
        out_dir: folder to create: ``<name>.index``, ``<name>.data-00000-of-00001``, ``checkpoint``,
            ``bert_config.json``.
        name: checkpoint prefix inside ``out_dir``.
        extra_variables: more variables to store as-is (tests add optimizer slots, ``global_step``).
        overwrite: replace an existing ``out_dir``.

    Returns:
        The checkpoint prefix ``out_dir / name``.

    Raises:
        ModelError: the HF folder is bad (see ``read_hf_dir``); DataError: an extra name clashes with a weight.
    """
    check_output_dir(Path(out_dir), overwrite=overwrite)
    model = read_hf_dir(hf_dir)
    tensors = hf_to_tf_tensors(model)
    clash = sorted(set(extra_variables or {}) & set(tensors))
    if clash:
        raise DataError(f"extra_variables repeat weight names: {', '.join(clash)}")
    tensors.update(extra_variables or {})
    with atomic_output_dir(Path(out_dir), overwrite=overwrite) as tmp:
        write_tf_checkpoint(tensors, tmp / name)
        (tmp / "checkpoint").write_text(f'model_checkpoint_path: "{name}"\nall_model_checkpoint_paths: "{name}"\n')
        (tmp / "bert_config.json").write_text(json.dumps(model.shape.google_config(), indent=2) + "\n")
    return Path(out_dir) / name
