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


#: Batching defaults by the kind of device the backend runs on (``--batch-size``, ``--token-budget``,
#: ``--pad-to-multiple`` when not given). CPU: the values every CPU run has used. CUDA: batches large
#: enough to fill a GPU with BERT-Large (256 samples, 65,536 tokens = 170 full-length samples), padded to
#: multiples of 64 tokens, the pytorch backend's CUDA graph buckets (six lengths: 64 ... 384). Not yet
#: measured on a GPU (issue 14); ``find-peak``/``bench`` can size them.
DEVICE_DEFAULTS: dict[str, dict[str, int]] = {
    "cpu": {"max_batch_size": 32, "token_budget": 8192, "pad_to_multiple": 1},
    "cuda": {"max_batch_size": 256, "token_budget": 65536, "pad_to_multiple": 64},
}


def device_kind(device: str) -> str:
    """``"cuda"`` for ``--device cuda`` / ``cuda:N``, else ``"cpu"`` (``auto`` keeps the CPU defaults: the
    backend picks its device only when it loads, so a GPU run passes ``--device cuda``)."""
    return "cuda" if str(device).startswith("cuda") else "cpu"


def batcher_for_device(kind: str, *, max_batch_size: int | None = None, token_budget: int | None = None,
                       pad_to_multiple: int | None = None, **settings) -> BatcherConfig:
    """A ``BatcherConfig`` whose unset sizes come from ``DEVICE_DEFAULTS[kind]``.

    Args:
        kind: ``"cpu"`` or ``"cuda"`` (see ``device_kind``).
        max_batch_size, token_budget, pad_to_multiple: the user's values, None = the device's default;
            ``token_budget`` 0 = no limit.
        settings: the other ``BatcherConfig`` fields (``sort_by_length``, ``server_max_wait_ms``).

    Raises:
        ConfigError: unknown ``kind`` or a bad value.
    """
    if kind not in DEVICE_DEFAULTS:
        raise ConfigError(f"unknown device kind {kind!r}; one of {', '.join(DEVICE_DEFAULTS)}")
    d = DEVICE_DEFAULTS[kind]
    budget = d["token_budget"] if token_budget is None else (token_budget or None)
    return BatcherConfig(max_batch_size=d["max_batch_size"] if max_batch_size is None else max_batch_size,
                         token_budget=budget,
                         pad_to_multiple=d["pad_to_multiple"] if pad_to_multiple is None else pad_to_multiple,
                         **settings)
