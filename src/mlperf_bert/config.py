"""Configuration dataclasses, passed down explicitly (no globals, no environment lookups below the CLI).

Constants come from the MLPerf Inference v1.0 BERT reference (``language/bert``), see docs/workload.md and
docs/preprocessing.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

#: unique_id of the first feature (reference ``convert_examples_to_features``).
FIRST_UNIQUE_ID = 1_000_000_000
#: Number of features of SQuAD v1.1 dev at 384/128/64 (= LoadGen QSL size, docs/workload.md#features).
DEV_FEATURE_COUNT = 10_833
#: Number of questions of SQuAD v1.1 dev.
DEV_QUESTION_COUNT = 10_570


@dataclass(frozen=True)
class SquadConfig:
    """Preprocessing and postprocessing constants (MLPerf v1.0 reference, docs/preprocessing.md, docs/scoring.md).

    Attributes:
        max_seq_length: tokens per feature window (384).
        doc_stride: stride between context windows, in word pieces (128).
        max_query_length: question pieces kept (64).
        n_best_size: start/end candidates per feature in postprocessing (20).
        max_answer_length: longest answer span in word pieces (30).
        do_lower_case: uncased model (True).
    """

    max_seq_length: int = 384
    doc_stride: int = 128
    max_query_length: int = 64
    n_best_size: int = 20
    max_answer_length: int = 30
    do_lower_case: bool = True


def default_shared_dir() -> Path:
    """The ``shared`` folder beside the repository (``../shared`` of the checkout), where the real data lives.

    Resolution order: ``$MLPERF_BERT_SHARED`` if set, else ``<repo>/../shared`` found from this file,
    else ``./../shared`` of the working directory. Only the CLI calls this.
    """
    env = os.environ.get("MLPERF_BERT_SHARED")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        cand = parent.parent / "shared"
        if (parent / "pyproject.toml").exists() and cand.is_dir():
            return cand
    return Path.cwd().parent / "shared"


def default_cache_dir() -> Path:
    """Cache for features and optimized models: ``$MLPERF_BERT_CACHE`` or ``~/.cache/mlperf-bert``.

    Never beside the inputs (``../shared`` is read-only in CI). Only the CLI calls this.
    """
    env = os.environ.get("MLPERF_BERT_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "mlperf-bert"


@dataclass(frozen=True)
class DataPaths:
    """Where the SQuAD dev set and vocabulary are, and where caches go.

    Attributes:
        dataset: SQuAD v1.1 JSON (``dev-v1.1.json``).
        vocab: BERT uncased WordPiece vocabulary (``vocab.txt``, 30,522 lines).
        cache_dir: folder for the feature cache (npz), created on demand.
    """

    dataset: Path
    vocab: Path
    cache_dir: Path = field(default_factory=default_cache_dir)

    @classmethod
    def defaults(cls, shared: Path | None = None, cache_dir: Path | None = None) -> "DataPaths":
        """Default real data from ``shared/data``."""
        shared = shared or default_shared_dir()
        return cls(
            dataset=shared / "data" / "dev-v1.1.json",
            vocab=shared / "data" / "vocab.txt",
            cache_dir=cache_dir or default_cache_dir(),
        )
