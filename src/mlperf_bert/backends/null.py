"""The null backend: zero logits, no model. Measures what the harness and LoadGen cost on their own.

Option ``delay_ms`` (``BackendConfig.options``; ``--null-delay-ms`` on the command line) makes every
``predict`` call sleep that long first, whatever the batch size: a stand-in for a slow model in harness
benchmarks and in tests that need a run to last (e.g. interrupting one). The sleep releases the GIL, as a
runtime's kernels do.
"""

from __future__ import annotations

import time

import numpy as np

from mlperf_bert.backends.base import BackendConfig, BackendOption, BackendSpec
from mlperf_bert.errors import ConfigError


class NullBackend:
    """Returns float32 zeros [B, L, 2] for any batch, after ``delay_ms`` milliseconds per call.

    Args:
        delay_ms: sleep per ``predict`` call (per batch, not per sample), ms, >= 0.

    Raises:
        ConfigError: negative ``delay_ms``.
    """

    name = "null"

    def __init__(self, delay_ms: float = 0.0) -> None:
        if not delay_ms >= 0:
            raise ConfigError(f"null backend: delay_ms must be >= 0, got {delay_ms}")
        self.delay_s = float(delay_ms) / 1000.0

    @classmethod
    def from_config(cls, config: BackendConfig) -> "NullBackend":
        return cls(delay_ms=config.option("delay_ms", 0.0))

    def predict(self, input_ids: np.ndarray, input_mask: np.ndarray, segment_ids: np.ndarray) -> np.ndarray:
        if self.delay_s:
            time.sleep(self.delay_s)
        b, length = input_ids.shape
        return np.zeros((b, length, 2), dtype=np.float32)

    def close(self) -> None:
        pass


SPEC = BackendSpec(
    name="null",
    target="mlperf_bert.backends.null:NullBackend",
    summary="returns zero logits; measures harness and LoadGen overhead",
    framework="none (null backend)",
    options=(BackendOption("delay_ms", float, 0.0, flag="--null-delay-ms", minimum=0.0,
                           help="null: sleep this many ms per batch (a stand-in for a slow model; default 0)"),),
)
