"""The null backend: zero logits, no model. Measures what the harness and LoadGen cost on their own."""

from __future__ import annotations

import numpy as np

from mlperf_bert.backends.base import BackendConfig, BackendSpec


class NullBackend:
    """Returns float32 zeros [B, L, 2] for any batch. Used by overhead benchmarks and LoadGen tests."""

    name = "null"

    @classmethod
    def from_config(cls, config: BackendConfig) -> "NullBackend":
        return cls()

    def predict(self, input_ids: np.ndarray, input_mask: np.ndarray, segment_ids: np.ndarray) -> np.ndarray:
        b, length = input_ids.shape
        return np.zeros((b, length, 2), dtype=np.float32)

    def close(self) -> None:
        pass


SPEC = BackendSpec(
    name="null",
    target="mlperf_bert.backends.null:NullBackend",
    summary="returns zero logits; measures harness and LoadGen overhead",
    framework="none (null backend)",
)
