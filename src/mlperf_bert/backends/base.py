"""The backend protocol: the only thing a model runtime has to implement.

A backend maps a batch of int token arrays to float32 start/end logits. It knows nothing about LoadGen,
queries or batching policy; the SUT (``mlperf_bert.sut``) owns those.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Backend(Protocol):
    """A loaded model that computes SQuAD logits.

    Attributes:
        name: registry name, e.g. ``"onnxruntime"``.
    """

    name: str

    def predict(self, input_ids: np.ndarray, input_mask: np.ndarray, segment_ids: np.ndarray) -> np.ndarray:
        """Run the model on one batch.

        Args:
            input_ids, input_mask, segment_ids: int32 or int64 arrays [B, L] (L <= 384; batches may be
                trimmed to their longest sample).

        Returns:
            float32 array [B, L, 2], C-contiguous: [..., 0] start logits, [..., 1] end logits.

        Raises:
            BackendFailure: the runtime failed on this batch.
        """
        ...

    def close(self) -> None:
        """Release runtime resources (sessions, GPU memory). Idempotent."""
        ...
