"""TensorFlow BERT checkpoint (Google / NVIDIA DLE names) -> Hugging Face ``BertForQuestionAnswering`` folder.

The official MLPerf checkpoint ``model.ckpt-5474`` (docs/models.md#tf-checkpoint) is a TF1 name-based checkpoint:
``<prefix>.index`` + ``<prefix>.data-00000-of-00001``. Every variable is matched against the explicit map in
``convert.names``: weights are converted (dense kernels transposed [in, out] -> [out, in]), training state is
skipped by a named rule (``names.TF_IGNORE_RULES``) and reported, and anything else (a missing weight, an
unknown variable, a wrong shape or dtype, an unreadable tensor) fails the whole conversion with one line that
lists all problems. The output folder (``config.json`` + ``model.safetensors`` + ``conversion.json``) appears
only when complete.

Needs ``tensorflow`` (to read the checkpoint) and ``safetensors``; not torch.

Example:
    >>> report = convert_tf_checkpoint(Path("model.ckpt-5474"), Path("bert-large-hf"), num_heads=16)
    >>> report.shape == BERT_LARGE
    True
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mlperf_bert.convert import atomic_output_dir, check_output_dir
from mlperf_bert.convert.names import (
    POOLER_IGNORE_REASON,
    POOLER_NAMES,
    TF_IGNORE_RULES,
    BertShape,
    check_names,
    infer_shape,
    tf_shapes,
    weight_names,
)
from mlperf_bert.errors import ConfigError, DataError, ModelError

_DATA_SUFFIX = re.compile(r"\.data-\d{5}-of-\d{5}$")
#: Float dtypes accepted for weights; float16/bfloat16 are widened to float32 (and reported).
_FLOAT_DTYPES = ("float32", "float16", "bfloat16", "float64")


@dataclass(frozen=True)
class TFCheckpoint:
    """A checked TF BERT checkpoint held in memory.

    Attributes:
        prefix: the checkpoint prefix read (``.../model.ckpt-5474``).
        shape: architecture sizes.
        tensors: TF name -> float32 array in TF layout (kernels [in, out]); exactly the names of
            ``names.weight_names(shape.num_layers, pooler=pooler)``.
        pooler: whether the pooler was kept.
        ignored: skipped name -> reason.
        widened: names whose dtype was widened to float32 (float16/bfloat16/float64 in the file).
    """

    prefix: Path
    shape: BertShape
    tensors: dict[str, np.ndarray]
    pooler: bool
    ignored: dict[str, str] = field(default_factory=dict)
    widened: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConversionReport:
    """What ``convert_tf_checkpoint`` wrote.

    Attributes:
        out_dir: the Hugging Face folder (``config.json``, ``model.safetensors``, ``conversion.json``).
        shape: architecture sizes written to ``config.json``.
        converted: number of tensors written.
        parameters: number of parameters written.
        ignored: skipped checkpoint name -> reason.
        widened: names widened to float32.
    """

    out_dir: Path
    shape: BertShape
    converted: int
    parameters: int
    ignored: dict[str, str]
    widened: tuple[str, ...]

    def ignored_counts(self) -> dict[str, int]:
        """Reason -> how many names were skipped for it."""
        return dict(Counter(self.ignored.values()))


def resolve_checkpoint_prefix(path: Path) -> Path:
    """Turn what a user passes (prefix, ``.index``/``.data-*``/``.meta`` file, or folder) into a prefix.

    A folder must hold a TF ``checkpoint`` state file or exactly one ``*.index``.

    Raises:
        ModelError: nothing that looks like a TF checkpoint is there (names the file and the fix).
    """
    path = Path(path)
    if path.is_dir():
        state = path / "checkpoint"
        if state.is_file():
            m = re.search(r'^model_checkpoint_path:\s*"([^"]+)"', state.read_text(errors="replace"), re.M)
            if m:
                cand = Path(m.group(1))
                return cand if cand.is_absolute() else path / cand
        indexes = sorted(path.glob("*.index"))
        if len(indexes) != 1:
            found = f"{len(indexes)} *.index files" if indexes else "no *.index file"
            raise ModelError(f"{path} has {found}; pass the checkpoint prefix, e.g. {path}/model.ckpt-5474")
        return indexes[0].with_suffix("")
    name = path.name
    if name.endswith(".index") or name.endswith(".meta"):
        path = path.with_suffix("")
    elif _DATA_SUFFIX.search(name):
        path = path.with_name(_DATA_SUFFIX.sub("", name))
    if not Path(f"{path}.index").is_file():
        raise ModelError(
            f"TF checkpoint index {path}.index not found; pass the checkpoint prefix (model.ckpt-5474, "
            "without .index/.data-*) of a folder that holds its .index and .data-00000-of-00001 files"
        )
    if not list(path.parent.glob(f"{path.name}.data-*-of-*")):
        raise ModelError(f"TF checkpoint data {path}.data-00000-of-00001 not found beside {path}.index; copy it there")
    return path


def load_bert_config(path: Path) -> dict:
    """Read a Google ``bert_config.json`` or HF ``config.json`` (both use the same field names).

    Raises:
        DataError: missing file, invalid JSON, or no ``num_attention_heads``.
    """
    path = Path(path)
    try:
        cfg = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"BERT config {path} not found; pass --bert-config PATH or --num-heads N") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(
            f"BERT config {path} is not valid JSON ({exc}); pass a bert_config.json or --num-heads N"
        ) from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("num_attention_heads"), int):
        raise DataError(
            f"BERT config {path} has no integer num_attention_heads; pass a bert_config.json or --num-heads N"
        )
    act = cfg.get("hidden_act", "gelu")
    if act != "gelu":
        raise ModelError(f"BERT config {path} has hidden_act={act!r}; only 'gelu' (erf GELU, as BERT) is supported")
    return cfg


def _shape_from_config(cfg: dict, path: Path) -> BertShape:
    keys = ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size", "vocab_size",
            "max_position_embeddings", "type_vocab_size")
    missing = [k for k in keys if not isinstance(cfg.get(k), int)]
    if missing:
        raise DataError(f"BERT config {path} lacks integer fields {', '.join(missing)}")
    return BertShape(*(cfg[k] for k in keys))


def _heads_and_config(prefix: Path, num_heads: int | None, bert_config: Path | None) -> tuple[int, BertShape | None]:
    """Number of heads, and the full shape when a config file gives it (explicit, else beside the checkpoint)."""
    cfg_path = Path(bert_config) if bert_config else None
    if cfg_path is None and (prefix.parent / "bert_config.json").is_file():
        cfg_path = prefix.parent / "bert_config.json"
    shape = None
    if cfg_path is not None:
        shape = _shape_from_config(load_bert_config(cfg_path), cfg_path)
        if num_heads is not None and num_heads != shape.heads:
            raise ConfigError(f"--num-heads {num_heads} disagrees with num_attention_heads={shape.heads} in {cfg_path}")
        return shape.heads, shape
    if num_heads is None:
        raise ConfigError(
            f"the number of attention heads is not stored in the checkpoint and there is no bert_config.json "
            f"beside {prefix}; pass --num-heads N (16 for the official BERT-Large) or --bert-config PATH"
        )
    return num_heads, None


def _tf_error_line(exc: Exception) -> str:
    msg = str(getattr(exc, "message", "") or exc).strip().splitlines()
    return msg[0] if msg else type(exc).__name__


def read_tf_checkpoint(
    ckpt: Path,
    *,
    num_heads: int | None = None,
    bert_config: Path | None = None,
    keep_pooler: bool = False,
) -> TFCheckpoint:
    """Read and check every variable of a TF BERT SQuAD checkpoint.

    Args:
        ckpt: checkpoint prefix (or its ``.index`` file, or a folder with one checkpoint).
        num_heads: attention heads; else taken from ``bert_config`` or ``bert_config.json`` beside the
            checkpoint. With a config file, its sizes (layers included) are the expected shapes.
        bert_config: Google ``bert_config.json`` (or HF ``config.json``).
        keep_pooler: convert ``bert/pooler/dense/*`` too (then it must be present); otherwise it is skipped
            and reported under ``names.POOLER_IGNORE_REASON``.

    Returns:
        The checked checkpoint (float32 tensors in TF layout).

    Raises:
        ModelError: unreadable or truncated files, or any missing/unexpected/mis-shaped/non-float variable;
            one line listing all of them.
        ConfigError: heads unknown or contradictory.
    """
    prefix = resolve_checkpoint_prefix(Path(ckpt))
    heads, cfg_shape = _heads_and_config(prefix, num_heads, bert_config)
    import tensorflow as tf  # heavy; imported only when converting

    try:
        reader = tf.train.load_checkpoint(str(prefix))
        found = {k: tuple(v) for k, v in reader.get_variable_to_shape_map().items()}
        dtypes = {k: v.name for k, v in reader.get_variable_to_dtype_map().items()}
    except Exception as exc:  # tf.errors.DataLossError, NotFoundError, ... on a damaged index
        raise ModelError(
            f"cannot read TF checkpoint {prefix}.index ({_tf_error_line(exc)}); the file is truncated or not a TF "
            "checkpoint, download it again"
        ) from None

    if cfg_shape is not None:
        shape = cfg_shape
    else:
        try:
            shape = infer_shape(found, heads)
        except KeyError as exc:
            raise ModelError(
                f"TF checkpoint {prefix} is not a BERT checkpoint: {exc.args[0]} is missing (found {len(found)} "
                "variables); expected Google/NVIDIA DLE names such as bert/embeddings/word_embeddings"
            ) from None
    if shape.heads <= 0 or shape.hidden % shape.heads:
        raise ConfigError(f"hidden size {shape.hidden} is not divisible by {shape.heads} heads; check --num-heads")

    pooler_names = {n.tf: POOLER_IGNORE_REASON for n in POOLER_NAMES}
    check = check_names(
        found,
        tf_shapes(shape, pooler=keep_pooler),
        TF_IGNORE_RULES,
        extra_ignored=None if keep_pooler else pooler_names,
    )
    names = weight_names(shape.num_layers, pooler=keep_pooler)
    bad_dtype = [f"{n.tf} {dtypes[n.tf]}" for n in names if n.tf in dtypes and dtypes[n.tf] not in _FLOAT_DTYPES]
    problems = [check.problems()] if not check.ok else []
    if bad_dtype:
        problems.append(f"{len(bad_dtype)} not float ({', '.join(bad_dtype[:6])})")
    if problems:
        raise ModelError(f"TF checkpoint {prefix} does not match BERT {_describe(shape)}: {'; '.join(problems)}")

    tensors: dict[str, np.ndarray] = {}
    unreadable: list[str] = []
    first_error = ""
    widened: list[str] = []
    for n in names:
        try:
            arr = np.asarray(reader.get_tensor(n.tf))
        except Exception as exc:  # truncated .data file: DataLossError / OutOfRangeError per tensor
            unreadable.append(n.tf)
            first_error = first_error or _tf_error_line(exc)
            continue
        if arr.dtype != np.float32:
            widened.append(n.tf)
            arr = arr.astype(np.float32)
        tensors[n.tf] = arr
    if unreadable:
        shown = ", ".join(unreadable[:4]) + (f", ... (+{len(unreadable) - 4} more)" if len(unreadable) > 4 else "")
        raise ModelError(
            f"TF checkpoint data for {prefix} is damaged: {len(unreadable)} of {len(names)} tensors unreadable "
            f"({shown}; {first_error}); the .data file is truncated or corrupt, download it again"
        )
    return TFCheckpoint(prefix, shape, tensors, keep_pooler, check.ignored, tuple(widened))


def _describe(shape: BertShape) -> str:
    return f"({shape.num_layers} layers, hidden {shape.hidden}, intermediate {shape.intermediate}, vocab {shape.vocab})"


def tf_to_hf_tensors(ckpt: TFCheckpoint) -> dict[str, np.ndarray]:
    """TF-named tensors -> HF state_dict (numpy, float32, C-contiguous; kernels transposed to [out, in])."""
    out = {}
    for n in weight_names(ckpt.shape.num_layers, pooler=ckpt.pooler):
        arr = ckpt.tensors[n.tf]
        out[n.hf] = np.ascontiguousarray(arr.T if n.transpose else arr)
    return out


def write_hf_dir(tmp_dir: Path, shape: BertShape, state: dict[str, np.ndarray], manifest: dict) -> None:
    """Write ``config.json``, ``model.safetensors`` (torch format metadata) and ``conversion.json`` into a folder."""
    from safetensors.numpy import save_file

    save_file(state, str(tmp_dir / "model.safetensors"), metadata={"format": "pt"})
    os.chmod(tmp_dir / "model.safetensors", 0o644)  # safetensors writes 0600; this is a shareable artifact
    (tmp_dir / "config.json").write_text(json.dumps(shape.hf_config(), indent=2) + "\n")
    (tmp_dir / "conversion.json").write_text(json.dumps(manifest, indent=2) + "\n")


def convert_tf_checkpoint(
    ckpt: Path,
    out_dir: Path,
    *,
    num_heads: int | None = None,
    bert_config: Path | None = None,
    keep_pooler: bool = False,
    overwrite: bool = False,
) -> ConversionReport:
    """Convert a TF BERT SQuAD checkpoint into a Hugging Face ``BertForQuestionAnswering`` folder.

    Args:
        ckpt: checkpoint prefix, e.g. ``model.ckpt-5474`` (see ``read_tf_checkpoint``).
        out_dir: folder to create with ``config.json``, ``model.safetensors``, ``conversion.json``.
        num_heads, bert_config, keep_pooler: see ``read_tf_checkpoint``.
        overwrite: replace an existing ``out_dir``.

    Returns:
        A report of what was converted and skipped.

    Raises:
        ModelError, ConfigError, DataError: one line; nothing is written.
    """
    check_output_dir(Path(out_dir), overwrite=overwrite)  # fail before the slow read
    ckpt_data = read_tf_checkpoint(ckpt, num_heads=num_heads, bert_config=bert_config, keep_pooler=keep_pooler)
    state = tf_to_hf_tensors(ckpt_data)
    params = int(sum(a.size for a in state.values()))
    manifest = {
        "source": str(ckpt_data.prefix),
        "source_format": "tensorflow checkpoint (Google/NVIDIA DLE names)",
        "converted_tensors": len(state),
        "parameters": params,
        "pooler_kept": keep_pooler,
        "ignored": dict(sorted(ckpt_data.ignored.items())),
        "widened_to_float32": list(ckpt_data.widened),
    }
    with atomic_output_dir(out_dir, overwrite=overwrite) as tmp:
        write_hf_dir(tmp, ckpt_data.shape, state, manifest)
    return ConversionReport(out_dir, ckpt_data.shape, len(state), params, ckpt_data.ignored, ckpt_data.widened)
