"""Pure batching policy: which samples go together and how far each batch is padded.

No LoadGen, no threads, no model: just lengths in, index groups out, so the rules (token budget, every
sample exactly once) are tested directly. Sorting inside a query, dynamic batching and padding removal are
allowed in the closed division (MLPerf v1.0 rules, docs/workload.md#closed-division).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlperf_bert.errors import ConfigError


@dataclass(frozen=True)
class BatcherConfig:
    """Batch formation settings.

    Attributes:
        max_batch_size: most samples in one batch (>= 1).
        token_budget: most tokens in one batch, counted as batch size x padded length; None = no limit.
            A single sample longer than the budget still forms a batch of one.
        sort_by_length: Offline only: sort the query's samples by real length (longest first) before
            grouping, so each batch pads to a length close to all its members'.
        pad_to_multiple: pad each batch to a multiple of this many tokens (1 = to its longest sample),
            capped at the feature length (384). 8 or 16 can help GEMM kernels.
        server_max_wait_ms: Server only: the longest a sample waits for others to join its batch (ms).
    """

    max_batch_size: int = 32
    token_budget: int | None = 8192
    sort_by_length: bool = True
    pad_to_multiple: int = 1
    server_max_wait_ms: float = 5.0

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ConfigError(f"max_batch_size must be >= 1, got {self.max_batch_size}")
        if self.token_budget is not None and self.token_budget < 1:
            raise ConfigError(f"token_budget must be >= 1 or None, got {self.token_budget}")
        if self.pad_to_multiple < 1:
            raise ConfigError(f"pad_to_multiple must be >= 1, got {self.pad_to_multiple}")
        if self.server_max_wait_ms < 0:
            raise ConfigError(f"server_max_wait_ms must be >= 0, got {self.server_max_wait_ms}")


def padded_length(max_len: int, multiple: int, cap: int) -> int:
    """Length a batch is padded to: ``max_len`` rounded up to ``multiple``, at most ``cap`` tokens."""
    return min(cap, -(-max_len // multiple) * multiple)


def plan_batches(lengths: np.ndarray, config: BatcherConfig, cap: int = 384) -> list[np.ndarray]:
    """Group samples into batches under ``config``.

    Args:
        lengths: int [n] real token count of each sample of one query (in issue order).
        config: batch size, token budget, sorting and padding rules.
        cap: the feature length (384); no batch pads beyond it.

    Returns:
        A list of int64 arrays of positions into ``lengths``; together they hold every position exactly
        once. For each batch, ``len(batch) * padded_length(max(lengths[batch]))`` <= token_budget unless the
        batch is a single sample.
    """
    n = int(len(lengths))
    if n == 0:
        return []
    lengths = np.asarray(lengths)
    # Longest first: the first sample of a batch fixes its padded length.
    order = np.argsort(-lengths, kind="stable") if config.sort_by_length else np.arange(n)
    budget = config.token_budget
    batches: list[np.ndarray] = []
    start = 0
    while start < n:
        end = start + 1
        longest = int(lengths[order[start]])
        while end < n and end - start < config.max_batch_size:
            cand = max(longest, int(lengths[order[end]]))
            if budget is not None and (end - start + 1) * padded_length(cand, config.pad_to_multiple, cap) > budget:
                break
            longest = cand
            end += 1
        batches.append(order[start:end].astype(np.int64))
        start = end
    return batches
