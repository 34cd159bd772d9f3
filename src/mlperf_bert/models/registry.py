"""The official MLPerf Inference BERT artifacts: where to download them, their md5 and their interfaces.

Every URL, md5, input/output name, dtype and F1 below comes from docs/models.md (zenodo records
used by the MLPerf Inference v1.0 reference and MLCommons' automation recipes). The per-file URLs of the
TF checkpoint record (zenodo 3733868, which the reference links only as a record) follow zenodo's
``https://zenodo.org/record/<id>/files/<filename>`` scheme.

This module is pure data: no I/O, no imports beyond the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mlperf_bert.errors import ConfigError

ModelFormat = Literal["tf-checkpoint", "tf-frozen-graph", "pytorch", "onnx"]
Precision = Literal["fp32", "int8"]

#: F1 of the official fp32 BERT-Large on SQuAD v1.1 dev (docs/workload.md#accuracy-targets).
FP32_F1 = 90.874
#: F1 of the official int8 (fake-quantized, QAT) BERT-Large (docs/workload.md#int8-reference).
INT8_F1 = 90.067


@dataclass(frozen=True)
class Artifact:
    """One downloadable file.

    Attributes:
        name: short role of the file inside its entry (``"model"``, ``"index"``, ``"vocab"``, ...).
        url: official download URL.
        md5: expected md5 of the whole file, 32 lower-case hex digits.
        filename: the name the file gets on disk (also the name looked up on a mirror:
            ``<mirror>/<filename>``).
        size_hint: size in bytes when known (progress bar total when the server sends no
            Content-Length); None when not recorded.
    """

    name: str
    url: str
    md5: str
    filename: str
    size_hint: int | None = None


@dataclass(frozen=True)
class OfficialModel:
    """An official BERT-Large model in one format.

    Attributes:
        name: registry name, e.g. ``"bert-large-onnx"``.
        format: ``"tf-checkpoint"``, ``"tf-frozen-graph"``, ``"pytorch"`` or ``"onnx"``.
        files: the files that make up the model (all are downloaded).
        input_names: graph input names in feed order (ids, mask, segment/token type); empty for a
            checkpoint, which holds variables, not a graph.
        output_names: graph output names; empty when the file's outputs are read by position
            (start logits first, then end logits).
        input_dtype: ``"int32"`` or ``"int64"``; every input is ``[B, 384]``.
        precision: ``"fp32"`` or ``"int8"``.
        f1: SQuAD v1.1 dev F1 of this model with the reference harness (percent).
        summary: one line for listings.
    """

    name: str
    format: ModelFormat
    files: tuple[Artifact, ...]
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    input_dtype: str
    precision: Precision
    f1: float
    summary: str


@dataclass(frozen=True)
class OfficialDataset:
    """An official data set (downloaded the same way as a model).

    Attributes:
        name: registry name, e.g. ``"squad-dev"``.
        files: the files of the data set.
        summary: one line for listings.
    """

    name: str
    files: tuple[Artifact, ...]
    summary: str


Entry = OfficialModel | OfficialDataset

_ZENODO_CKPT = "https://zenodo.org/record/3733868/files/"
_BERT_INPUTS = ("input_ids", "input_mask", "segment_ids")  # Google BERT / TF / fp32 ONNX names
_HF_INPUTS = ("input_ids", "attention_mask", "token_type_ids")  # Hugging Face / int8 ONNX names

#: The official BERT-Large models (docs/models.md#official-artifacts), in listing order.
OFFICIAL_MODELS: tuple[OfficialModel, ...] = (
    OfficialModel(
        name="bert-large-tf",
        format="tf-checkpoint",
        files=(
            Artifact("data", _ZENODO_CKPT + "model.ckpt-5474.data-00000-of-00001",
                     "3089b27c559906a868878741d992ade7", "model.ckpt-5474.data-00000-of-00001"),
            Artifact("index", _ZENODO_CKPT + "model.ckpt-5474.index",
                     "d23d61572d9404da4dac3363b5bc735b", "model.ckpt-5474.index"),
            Artifact("meta", _ZENODO_CKPT + "model.ckpt-5474.meta",
                     "83e11e57eea14c9e9a246af74af40d66", "model.ckpt-5474.meta"),
            Artifact("vocab", _ZENODO_CKPT + "vocab.txt",
                     "64800d5d8528ce344256daf115d4965e", "vocab.txt", size_hint=231_508),
        ),
        input_names=(),
        output_names=(),
        input_dtype="int32",
        precision="fp32",
        f1=FP32_F1,
        summary="TF checkpoint model.ckpt-5474 (DLE variable names) + vocab.txt",
    ),
    OfficialModel(
        name="bert-large-tf-pb",
        format="tf-frozen-graph",
        files=(
            Artifact("model", "https://zenodo.org/record/3939747/files/model.pb",
                     "dd72de12e8226f25f0128a1a864b97ad", "model.pb"),
        ),
        input_names=_BERT_INPUTS,
        output_names=("logits",),  # [1, 384, 2]
        input_dtype="int32",
        precision="fp32",
        f1=FP32_F1,
        summary="TF frozen graph, inputs [1,384] -> logits [1,384,2]",
    ),
    OfficialModel(
        name="bert-large-pytorch",
        format="pytorch",
        files=(
            Artifact("model", "https://zenodo.org/record/3733896/files/model.pytorch",
                     "00fbcbfaebfa20d87ac9885120a6e9b4", "model.pytorch"),
        ),
        input_names=_HF_INPUTS,
        output_names=("start_logits", "end_logits"),  # each [B, 384]
        input_dtype="int64",
        precision="fp32",
        f1=FP32_F1,
        summary="HF BertForQuestionAnswering state_dict",
    ),
    OfficialModel(
        name="bert-large-onnx",
        format="onnx",
        files=(
            Artifact("model", "https://zenodo.org/record/3733910/files/model.onnx",
                     "819b25b19cd8e59080c10892689750ca", "model.onnx"),
        ),
        input_names=_BERT_INPUTS,
        output_names=("output_start_logits", "output_end_logits"),  # each [B, 384]
        input_dtype="int64",
        precision="fp32",
        f1=FP32_F1,
        summary="ONNX opset 11, about 1.3 GB",
    ),
    OfficialModel(
        name="bert-large-onnx-int8",
        format="onnx",
        files=(
            Artifact("model", "https://zenodo.org/record/3750364/files/bert_large_v1_1_fake_quant.onnx",
                     "45f88ffb2915362242703c85c38ec2d4", "bert_large_v1_1_fake_quant.onnx"),
        ),
        input_names=_HF_INPUTS,
        output_names=(),  # two outputs, read by position: start first
        input_dtype="int64",
        precision="int8",
        f1=INT8_F1,
        summary="fake-quantized ONNX (fp32 weights + per-tensor int8 ranges)",
    ),
)

#: Official data sets (docs/models.md#official-artifacts).
OFFICIAL_DATASETS: tuple[OfficialDataset, ...] = (
    OfficialDataset(
        name="squad-dev",
        files=(
            Artifact("dataset", "https://rajpurkar.github.io/SQuAD-explorer/dataset/dev-v1.1.json",
                     "3e85deb501d4e538b6bc56f786231552", "dev-v1.1.json", size_hint=4_854_279),
        ),
        summary="SQuAD v1.1 dev set (10,570 questions)",
    ),
)

#: Every entry, models first.
OFFICIAL: tuple[Entry, ...] = OFFICIAL_MODELS + OFFICIAL_DATASETS


def names() -> tuple[str, ...]:
    """Registry names of every official model and data set, in listing order."""
    return tuple(entry.name for entry in OFFICIAL)


def get(name: str) -> Entry:
    """The official model or data set called ``name``.

    Raises:
        ConfigError: unknown name; the message lists the valid names.
    """
    for entry in OFFICIAL:
        if entry.name == name:
            return entry
    raise ConfigError(f"unknown artifact {name!r}; choose one of: {', '.join(names())}")
