"""The one name map between TensorFlow BERT checkpoints and Hugging Face ``BertForQuestionAnswering``.

Pure Python (no TensorFlow, no torch): the TF -> PyTorch converter, the PyTorch -> TF writer, the TF graph
builder and the PyTorch backend all use these names, shapes and ignore rules.

TF names are those of the Google BERT ``modeling.py`` / NVIDIA DeepLearningExamples (DLE) ``run_squad.py``
checkpoints, e.g. the official MLPerf ``model.ckpt-5474`` (docs/models.md#tf-checkpoint):
``bert/embeddings/word_embeddings``, ``bert/encoder/layer_N/attention/self/query/kernel``, ...,
``cls/squad/output_weights`` [2, hidden] and ``cls/squad/output_bias`` [2].
TF dense kernels are stored [in, out]; torch ``nn.Linear.weight`` is [out, in], so they are transposed.
``cls/squad/output_weights`` is already [2, hidden] (run_squad.py multiplies with ``transpose_b=True``),
equal to ``qa_outputs.weight``.

Example:
    >>> [n.hf for n in weight_names(1) if n.tf.endswith("query/kernel")]
    ['bert.encoder.layer.0.attention.self.query.weight']
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

#: LayerNorm epsilon of BERT (Google ``modeling.py`` ``layer_norm`` and HF ``BertConfig.layer_norm_eps``).
LAYER_NORM_EPS = 1e-12
#: Additive attention-mask value for padded keys (Google ``modeling.py``: ``(1 - mask) * -10000.0``).
ATTENTION_MASK_VALUE = -10000.0


@dataclass(frozen=True)
class BertShape:
    """Architecture sizes of a BERT encoder with a SQuAD head.

    Attributes:
        num_layers: transformer layers (BERT-Large 24).
        hidden: hidden size (BERT-Large 1024).
        heads: attention heads (BERT-Large 16); ``hidden % heads == 0``.
        intermediate: feed-forward size (BERT-Large 4096).
        vocab: WordPiece vocabulary size (30522 for uncased BERT).
        max_positions: position-embedding rows (512).
        type_vocab: token-type (segment) rows (2).
    """

    num_layers: int
    hidden: int
    heads: int
    intermediate: int
    vocab: int = 30522
    max_positions: int = 512
    type_vocab: int = 2

    @property
    def head_size(self) -> int:
        """Per-head width, ``hidden // heads`` (64 for BERT-Large)."""
        return self.hidden // self.heads

    def hf_config(self) -> dict:
        """A Hugging Face ``BertConfig`` dict (``config.json``) for ``BertForQuestionAnswering``.

        Fixed fields follow BERT: GELU (erf), LayerNorm eps 1e-12, absolute positions, pad id 0.
        Dropout probabilities are BERT's training values; inference runs in eval mode, where they do nothing.
        """
        return {
            "architectures": ["BertForQuestionAnswering"],
            "model_type": "bert",
            "vocab_size": self.vocab,
            "hidden_size": self.hidden,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.heads,
            "intermediate_size": self.intermediate,
            "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": self.max_positions,
            "type_vocab_size": self.type_vocab,
            "initializer_range": 0.02,
            "layer_norm_eps": LAYER_NORM_EPS,
            "pad_token_id": 0,
            "position_embedding_type": "absolute",
        }

    def google_config(self) -> dict:
        """The Google BERT ``bert_config.json`` dict (the format shipped beside TF checkpoints)."""
        return {
            "attention_probs_dropout_prob": 0.1,
            "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1,
            "hidden_size": self.hidden,
            "initializer_range": 0.02,
            "intermediate_size": self.intermediate,
            "max_position_embeddings": self.max_positions,
            "num_attention_heads": self.heads,
            "num_hidden_layers": self.num_layers,
            "type_vocab_size": self.type_vocab,
            "vocab_size": self.vocab,
        }


#: The MLPerf model (docs/workload.md#model): BERT-Large uncased, 24 x 1024, 16 heads, 4096, vocab 30522.
BERT_LARGE = BertShape(num_layers=24, hidden=1024, heads=16, intermediate=4096)


@dataclass(frozen=True)
class WeightName:
    """One tensor under its two names.

    Attributes:
        tf: TF checkpoint variable name (DLE / Google BERT).
        hf: Hugging Face ``BertForQuestionAnswering`` state_dict key.
        transpose: True for dense kernels: TF [in, out] <-> torch [out, in].
    """

    tf: str
    hf: str
    transpose: bool = False


#: Pooler of the pre-training head. Present in the official TF checkpoint; HF's QA model has no pooler
#: (``add_pooling_layer=False``) and SQuAD logits never use it.
POOLER_NAMES = (
    WeightName("bert/pooler/dense/kernel", "bert.pooler.dense.weight", True),
    WeightName("bert/pooler/dense/bias", "bert.pooler.dense.bias"),
)


def _dense(tf_scope: str, hf_scope: str) -> list[WeightName]:
    return [WeightName(f"{tf_scope}/kernel", f"{hf_scope}.weight", True),
            WeightName(f"{tf_scope}/bias", f"{hf_scope}.bias")]


def _layer_norm(tf_scope: str, hf_scope: str) -> list[WeightName]:
    return [WeightName(f"{tf_scope}/gamma", f"{hf_scope}.weight"), WeightName(f"{tf_scope}/beta", f"{hf_scope}.bias")]


def weight_names(num_layers: int, *, pooler: bool = False) -> list[WeightName]:
    """Every weight of BERT + SQuAD head, in a fixed order (embeddings, layers 0..N-1, [pooler], head).

    Args:
        num_layers: transformer layers.
        pooler: include ``bert/pooler/dense/{kernel,bias}`` <-> ``bert.pooler.dense.{weight,bias}``.

    Returns:
        ``16 * num_layers + 7`` names (``+ 2`` with the pooler): 391 / 393 for BERT-Large.
    """
    names = [
        WeightName("bert/embeddings/word_embeddings", "bert.embeddings.word_embeddings.weight"),
        WeightName("bert/embeddings/position_embeddings", "bert.embeddings.position_embeddings.weight"),
        WeightName("bert/embeddings/token_type_embeddings", "bert.embeddings.token_type_embeddings.weight"),
        *_layer_norm("bert/embeddings/LayerNorm", "bert.embeddings.LayerNorm"),
    ]
    for i in range(num_layers):
        t, h = f"bert/encoder/layer_{i}", f"bert.encoder.layer.{i}"
        for part in ("query", "key", "value"):
            names += _dense(f"{t}/attention/self/{part}", f"{h}.attention.self.{part}")
        names += _dense(f"{t}/attention/output/dense", f"{h}.attention.output.dense")
        names += _layer_norm(f"{t}/attention/output/LayerNorm", f"{h}.attention.output.LayerNorm")
        names += _dense(f"{t}/intermediate/dense", f"{h}.intermediate.dense")
        names += _dense(f"{t}/output/dense", f"{h}.output.dense")
        names += _layer_norm(f"{t}/output/LayerNorm", f"{h}.output.LayerNorm")
    if pooler:
        names += list(POOLER_NAMES)
    names += [
        WeightName("cls/squad/output_weights", "qa_outputs.weight"),
        WeightName("cls/squad/output_bias", "qa_outputs.bias"),
    ]
    return names


def tf_shapes(shape: BertShape, *, pooler: bool = False) -> dict[str, tuple[int, ...]]:
    """TF checkpoint name -> shape for a model of ``shape`` (kernels [in, out]), in ``weight_names`` order."""
    h, i = shape.hidden, shape.intermediate
    fixed: dict[str, tuple[int, ...]] = {
        "bert/embeddings/word_embeddings": (shape.vocab, h),
        "bert/embeddings/position_embeddings": (shape.max_positions, h),
        "bert/embeddings/token_type_embeddings": (shape.type_vocab, h),
        "cls/squad/output_weights": (2, h),
        "cls/squad/output_bias": (2,),
    }
    out: dict[str, tuple[int, ...]] = {}
    for n in weight_names(shape.num_layers, pooler=pooler):
        leaf = n.tf.rsplit("/", 1)[1]
        if n.tf in fixed:
            out[n.tf] = fixed[n.tf]
        elif leaf in ("gamma", "beta"):
            out[n.tf] = (h,)
        elif "/intermediate/dense/" in n.tf:
            out[n.tf] = (h, i) if leaf == "kernel" else (i,)
        elif re.search(r"/layer_\d+/output/dense/", n.tf):
            out[n.tf] = (i, h) if leaf == "kernel" else (h,)
        else:  # query/key/value, attention output, pooler: hidden -> hidden
            out[n.tf] = (h, h) if leaf == "kernel" else (h,)
    return out


def hf_shapes(shape: BertShape, *, pooler: bool = False) -> dict[str, tuple[int, ...]]:
    """Hugging Face state_dict key -> shape (Linear weights [out, in])."""
    tfs = tf_shapes(shape, pooler=pooler)
    names = weight_names(shape.num_layers, pooler=pooler)
    return {n.hf: (tfs[n.tf][::-1] if n.transpose else tfs[n.tf]) for n in names}


@dataclass(frozen=True)
class IgnoreRule:
    """A checkpoint entry that is not a model weight and is skipped on purpose (and reported).

    Attributes:
        pattern: regular expression matched against the whole name (``re.fullmatch``).
        reason: why it is safe to skip, with its source.
    """

    pattern: str
    reason: str

    def matches(self, name: str) -> bool:
        return re.fullmatch(self.pattern, name) is not None


#: TF checkpoint entries that are training state, not weights. Sources: Google BERT / DLE ``optimization.py``
#: (AdamWeightDecayOptimizer slots ``<var>/adam_m``, ``<var>/adam_v``, fp16 ``<var>/shadow`` copies,
#: ``global_step``), TF1 ``ExponentialUpdateLossScaleManager`` (``loss_scale``, ``good_steps``, ``bad_steps``)
#: and TF2 dynamic loss scaling (``current_loss_scale``), the optimizer scopes HF's
#: ``load_tf_weights_in_bert`` also skips.
TF_IGNORE_RULES = (
    IgnoreRule(r".+/(adam_m|adam_v)", "Adam optimizer moment slot (optimization.py)"),
    IgnoreRule(r".+/(lamb_m|lamb_v)", "LAMB optimizer moment slot"),
    IgnoreRule(r".+/shadow", "fp32 shadow copy of an fp16 weight (DLE optimization.py, use_fp16)"),
    IgnoreRule(r"global_step", "training step counter"),
    IgnoreRule(r"(.+/)?(loss_scale|current_loss_scale|good_steps|bad_steps)", "mixed-precision loss-scale state"),
    IgnoreRule(r"(AdamWeightDecayOptimizer|AdamWeightDecayOptimizer_1|LAMBOptimizer)(/.*)?", "optimizer scope"),
    IgnoreRule(r"_CHECKPOINTABLE_OBJECT_GRAPH", "TF2 object-graph metadata"),
)

#: Reason reported when the pooler is present but not converted.
POOLER_IGNORE_REASON = "pooler of the pre-training head; BertForQuestionAnswering has none (pass keep_pooler to map it)"

#: Hugging Face state_dict keys a QA model may carry and that are not weights of ``weight_names``:
#: ``bert.embeddings.position_ids`` (a buffer of old transformers versions) and the pooler (when the
#: state_dict came from ``BertModel``/a TF conversion that kept it). Loaders may drop these, and say so.
HF_IGNORE_RULES = (
    IgnoreRule(r"bert\.embeddings\.position_ids", "position-id buffer (arange), not a weight"),
    IgnoreRule(r"bert\.pooler\.dense\.(weight|bias)", "pooler; BertForQuestionAnswering does not use it"),
)


def ignore_reason(name: str, rules: tuple[IgnoreRule, ...] = TF_IGNORE_RULES) -> str | None:
    """The reason ``name`` is skipped under ``rules``, or None when it must be a weight."""
    for rule in rules:
        if rule.matches(name):
            return rule.reason
    return None


def count_layers(names: list[str] | set[str], prefix: str = "bert/encoder/layer_") -> int:
    """Number of encoder layers: 1 + the highest N in ``<prefix>N/...`` (0 when there is none).

    Works for TF names (default prefix) and HF names (``prefix="bert.encoder.layer."``).
    """
    pat = re.compile(re.escape(prefix) + r"(\d+)[/.]")
    found = [int(m.group(1)) for n in names if (m := pat.match(n))]
    return max(found) + 1 if found else 0


def infer_shape(shapes: Mapping[str, tuple[int, ...]], heads: int, *, hf: bool = False) -> BertShape:
    """Architecture sizes read off tensor shapes (TF names by default, HF names with ``hf=True``).

    Args:
        shapes: name -> shape of the checkpoint's tensors.
        heads: attention heads (not visible in any shape).
        hf: the names are HF state_dict keys.

    Raises:
        KeyError: the word/position/token-type embeddings or the first intermediate dense are missing
            (the caller turns this into a ModelError listing every missing name).
    """
    if hf:
        vocab, hidden = shapes["bert.embeddings.word_embeddings.weight"]
        max_pos = shapes["bert.embeddings.position_embeddings.weight"][0]
        type_vocab = shapes["bert.embeddings.token_type_embeddings.weight"][0]
        intermediate = shapes["bert.encoder.layer.0.intermediate.dense.weight"][0]
        layers = count_layers(list(shapes), "bert.encoder.layer.")
    else:
        vocab, hidden = shapes["bert/embeddings/word_embeddings"]
        max_pos = shapes["bert/embeddings/position_embeddings"][0]
        type_vocab = shapes["bert/embeddings/token_type_embeddings"][0]
        intermediate = shapes["bert/encoder/layer_0/intermediate/dense/kernel"][1]
        layers = count_layers(list(shapes))
    return BertShape(layers, int(hidden), int(heads), int(intermediate), int(vocab), int(max_pos), int(type_vocab))


@dataclass(frozen=True)
class NameCheck:
    """Result of matching a checkpoint's names and shapes against the expected map.

    Attributes:
        missing: expected names absent from the checkpoint.
        unexpected: names that are neither expected nor covered by an ignore rule.
        misshaped: ``(name, found, expected)`` for every wrong shape.
        ignored: name -> reason for every skipped entry.
    """

    missing: tuple[str, ...]
    unexpected: tuple[str, ...]
    misshaped: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...]
    ignored: dict[str, str]

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.misshaped)

    def problems(self, limit: int = 6) -> str:
        """All problems in one line: counts plus up to ``limit`` names of each kind."""

        def show(items: list[str]) -> str:
            more = f", ... (+{len(items) - limit} more)" if len(items) > limit else ""
            return ", ".join(items[:limit]) + more

        parts = []
        if self.missing:
            parts.append(f"{len(self.missing)} missing ({show(list(self.missing))})")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} unexpected ({show(list(self.unexpected))})")
        if self.misshaped:
            items = [f"{n} {list(f)} != expected {list(e)}" for n, f, e in self.misshaped]
            parts.append(f"{len(self.misshaped)} mis-shaped ({show(items)})")
        return "; ".join(parts)


def check_names(
    found: Mapping[str, tuple[int, ...]],
    expected: Mapping[str, tuple[int, ...]],
    rules: tuple[IgnoreRule, ...] = (),
    extra_ignored: Mapping[str, str] | None = None,
) -> NameCheck:
    """Compare found names/shapes with the expected ones; collect every problem (nothing raised).

    Args:
        found: name -> shape in the checkpoint.
        expected: name -> shape the model needs.
        rules: ignore rules for non-weight entries.
        extra_ignored: specific names to skip, name -> reason (e.g. the pooler when not kept).
    """
    extra_ignored = dict(extra_ignored or {})
    missing = tuple(n for n in expected if n not in found)
    ignored: dict[str, str] = {}
    unexpected: list[str] = []
    misshaped = []
    for name, shp in found.items():
        if name in expected:
            if tuple(shp) != tuple(expected[name]):
                misshaped.append((name, tuple(shp), tuple(expected[name])))
        elif name in extra_ignored:
            ignored[name] = extra_ignored[name]
        elif (reason := ignore_reason(name, rules)) is not None:
            ignored[name] = reason
        else:
            unexpected.append(name)
    return NameCheck(missing, tuple(sorted(unexpected)), tuple(misshaped), ignored)
