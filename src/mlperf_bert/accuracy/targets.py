"""Benchmarks ``bert-99`` / ``bert-99.9`` and their F1 targets, and the models whose fp32 F1 we know.

MLPerf's target is a fraction of the fp32 reference F1 (docs/workload.md#accuracy-targets; v1.0 submission checker:
``90.874 * 0.99`` and ``90.874 * 0.999``): 89.96526 and 90.783126 for the official BERT-Large. A model
that is not the official one gets the same fraction of *its own* fp32 F1, given by the user
(``--reference-f1``) or taken from ``KNOWN_MODELS`` (measured with the unmodified reference scorer).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlperf_bert.errors import ConfigError
from mlperf_bert.models.registry import FP32_F1, OFFICIAL_MODELS

#: Benchmark folder names of a submission (docs/submission.md#benchmarks); the LoadGen model key stays ``bert``.
BENCHMARKS = ("bert-99", "bert-99.9")
#: Share of the fp32 reference F1 each benchmark must reach (v1.0 checker ``accuracy-target``).
ACCURACY_FRACTION = {"bert-99": 0.99, "bert-99.9": 0.999}
#: TEST01 fallback: largest F1 change between accuracy-mode and performance-mode outputs of the same
#: samples, relative to the baseline F1 (compliance TEST01 README: 1% for 99%, 0.1% for 99.9%).
TEST01_F1_TOLERANCE = {"bert-99": 0.01, "bert-99.9": 0.001}


@dataclass(frozen=True)
class KnownModel:
    """A model whose fp32 SQuAD v1.1 dev F1 we know.

    Attributes:
        name: folder name it is recognised by (e.g. ``minilm-l6-squad``).
        reference_f1: fp32 F1 in percent with the reference scorer.
        official: True for the MLPerf BERT-Large weights (closed division).
        source: where ``reference_f1`` comes from.
        weights_sha256: sha256 of its weight file, also used to recognise it ("" = by name only).
    """

    name: str
    reference_f1: float
    official: bool
    source: str
    weights_sha256: str = ""


#: Models recognised by folder name or weights sha256. The official files are recognised by file name
#: (``models.registry.OFFICIAL_MODELS``) and all share the fp32 F1 90.874.
KNOWN_MODELS: dict[str, KnownModel] = {
    "minilm-l6-squad": KnownModel(
        name="minilm-l6-squad", reference_f1=78.91206147893796, official=False,
        source="docs/models.md#small-model (PyTorch fp32, reference accuracy-squad.py)",
        weights_sha256="4e183240ab0ae99b7c513c346440db9743a98154dbd734952a03cd4f8da5058d"),
}
OFFICIAL_BERT_LARGE = KnownModel(name="bert-large", reference_f1=FP32_F1, official=True,
                                 source="docs/workload.md#accuracy-targets (official BERT-Large fp32)")
_OFFICIAL_FILES = {a.filename for m in OFFICIAL_MODELS for a in m.files if a.name != "vocab"}


@dataclass(frozen=True)
class AccuracyTarget:
    """The F1 a run must reach.

    Attributes:
        benchmark: ``bert-99`` or ``bert-99.9``.
        reference_f1: fp32 F1 the target is a fraction of (percent).
        fraction: 0.99 or 0.999.
        target_f1: ``reference_f1 * fraction`` (percent).
        model: name of the model the reference F1 belongs to (``bert-large`` for the official one).
        official: whether the model is the official BERT-Large (required in the closed division).
        source: where ``reference_f1`` comes from.
    """

    benchmark: str
    reference_f1: float
    fraction: float
    target_f1: float
    model: str
    official: bool
    source: str

    def met(self, f1: float) -> bool:
        """True when ``f1`` (percent) reaches the target."""
        return f1 >= self.target_f1

    def describe(self) -> str:
        """e.g. ``F1 >= 78.123 (bert-99: 99% of 78.912, minilm-l6-squad)``."""
        return (f"F1 >= {self.target_f1:.3f} ({self.benchmark}: {self.fraction * 100:g}% of "
                f"{self.reference_f1:.3f}, {self.model})")


def check_benchmark(name: str) -> str:
    if name not in BENCHMARKS:
        raise ConfigError(f"unknown benchmark {name!r}; choose one of: {', '.join(BENCHMARKS)}")
    return name


def identify_model(model: Path | str | None) -> KnownModel | None:
    """The known model a path points at, or None.

    An artifact (export, optimized graph, int8 model) is identified by the original model at the end of its
    manifests' source chain (``models.artifact.source_chain``): an int8 model's target is a fraction of its
    fp32 source's F1. The original is recognised as a folder (or a file inside a folder) named like a
    ``KNOWN_MODELS`` entry, or by an official artifact file name (``model.onnx``, ``model.pytorch``,
    ``model.pb``, ``model.ckpt-5474.*``, ``bert_large_v1_1_fake_quant.onnx``). File names are not proof:
    the md5 check of ``mlperf-bert models`` is.
    """
    if model is None:
        return None
    from mlperf_bert.models.artifact import source_chain

    original = source_chain(Path(model))[-1]  # artifacts carry the target of the model they were made from
    for cand in (original.name, original.parent.name):
        if cand in KNOWN_MODELS:
            return KNOWN_MODELS[cand]
    if original.name in _OFFICIAL_FILES or original.name.startswith("model.ckpt-5474"):
        return OFFICIAL_BERT_LARGE
    return None


def accuracy_target(benchmark: str, *, model: Path | str | None = None,
                    reference_f1: float | None = None) -> AccuracyTarget | None:
    """The F1 target of ``benchmark`` for ``model``.

    Args:
        benchmark: ``bert-99`` or ``bert-99.9``.
        model: model path (file or folder) used to look up a known reference F1.
        reference_f1: the model's fp32 F1 (percent) given by the user; wins over the lookup.

    Returns:
        The target, or None when the model is unknown and no ``reference_f1`` was given.

    Raises:
        ConfigError: unknown benchmark or a reference F1 outside (0, 100].
    """
    check_benchmark(benchmark)
    fraction = ACCURACY_FRACTION[benchmark]
    known = identify_model(model)
    if reference_f1 is not None:
        if not 0.0 < reference_f1 <= 100.0:
            raise ConfigError(f"--reference-f1 must be an F1 in percent (0, 100], got {reference_f1}")
        name = known.name if known else (Path(model).name if model else "user model")
        return AccuracyTarget(benchmark, float(reference_f1), fraction, float(reference_f1) * fraction, name,
                              bool(known and known.official and reference_f1 == known.reference_f1),
                              "given with --reference-f1")
    if known is None:
        return None
    return AccuracyTarget(benchmark, known.reference_f1, fraction, known.reference_f1 * fraction, known.name,
                          known.official, known.source)
