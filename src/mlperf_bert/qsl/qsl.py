"""LoadGen QSL over in-memory features: one LoadGen *sample* is one feature (one 384-token window)."""

from __future__ import annotations

import mlperf_loadgen as lg
import numpy as np

from mlperf_bert.config import DEV_FEATURE_COUNT
from mlperf_bert.squad.types import Features


class SquadQSL:
    """Owns the feature arrays LoadGen's sample indices point into; knows nothing about the model.

    All features (about 50 MB as int32 for the dev set) stay resident, so load/unload are no-ops.

    Args:
        features: the preprocessed features (N samples).
        performance_sample_count: samples LoadGen may use in performance mode; defaults to
            min(N, 10,833) (the built-in bert entry of mlperf.conf, docs/loadgen.md#built-in-settings).

    Attributes:
        input_ids, input_mask, segment_ids: int32 [N, 384] views of ``features``.
        lengths: int32 [N] real tokens per sample (the batcher sorts and trims by it).
    """

    def __init__(self, features: Features, performance_sample_count: int | None = None) -> None:
        self.features = features
        self.input_ids = np.ascontiguousarray(features.input_ids, dtype=np.int32)
        self.input_mask = np.ascontiguousarray(features.input_mask, dtype=np.int32)
        self.segment_ids = np.ascontiguousarray(features.segment_ids, dtype=np.int32)
        self.lengths = features.lengths
        self.count = len(features)
        self.performance_sample_count = min(self.count, performance_sample_count or DEV_FEATURE_COUNT)
        self.handle: object | None = None

    def __enter__(self) -> "SquadQSL":
        self.handle = lg.ConstructQSL(self.count, self.performance_sample_count,
                                      self._load_samples, self._unload_samples)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.handle is not None:
            lg.DestroyQSL(self.handle)
            self.handle = None

    def detach(self) -> None:
        """Forget the LoadGen handle without destroying it: an interrupted LoadGen thread still uses it and
        the process is about to exit (``loadgen.session``)."""
        self.handle = None

    def _load_samples(self, indices: list[int]) -> None:  # all features are resident
        pass

    def _unload_samples(self, indices: list[int]) -> None:
        pass
