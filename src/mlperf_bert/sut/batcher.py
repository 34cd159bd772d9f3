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
    order, bounds = batch_bounds(lengths, config, cap)
    return [order[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def batch_bounds(lengths: np.ndarray, config: BatcherConfig, cap: int = 384) -> tuple[np.ndarray, list[int]]:
    """``plan_batches`` as one order and boundaries: batch k is ``order[bounds[k]:bounds[k + 1]]``.

    The SUT uses this form: one gather per query instead of one per batch. Sorted (longest first), a
    batch's first sample fixes its padded length, so each batch size is ``budget // padded length`` (capped
    by ``max_batch_size``, at least 1): one Python step per batch, not per sample.

    Args:
        lengths: int [n] real token counts (issue order).
        config, cap: as in ``plan_batches``.

    Returns:
        ``(order, bounds)``: int64 [n] positions into ``lengths`` and ``len(batches) + 1`` ints from 0 to n.
    """
    n = int(len(lengths))
    if n == 0:
        return np.zeros(0, dtype=np.int64), [0]
    lengths = np.asarray(lengths)
    mbs, budget, multiple = config.max_batch_size, config.token_budget, config.pad_to_multiple
    if not config.sort_by_length:
        return np.arange(n, dtype=np.int64), _unsorted_bounds(lengths, config, cap)
    # Longest first: the first sample of a batch fixes its padded length.
    order = np.argsort(-lengths, kind="stable").astype(np.int64, copy=False)
    if mbs == 1:
        return order, list(range(n + 1))
    if budget is None:
        return order, list(range(0, n, mbs)) + [n]
    first = lengths[order].tolist()  # longest first
    bounds = [0]
    start = 0
    while start < n:
        size = budget // padded_length(first[start], multiple, cap)
        start += max(1, min(mbs, size, n - start))
        bounds.append(start)
    return order, bounds


def _unsorted_bounds(lengths: np.ndarray, config: BatcherConfig, cap: int) -> list[int]:
    """Batch boundaries in issue order: a batch grows while it holds under ``max_batch_size`` samples and
    its padded size (count x padded longest) fits the token budget."""
    n = len(lengths)
    budget = config.token_budget
    values = lengths.tolist()
    bounds = [0]
    start = 0
    while start < n:
        end = start + 1
        longest = values[start]
        while end < n and end - start < config.max_batch_size:
            cand = max(longest, values[end])
            if budget is not None and (end - start + 1) * padded_length(cand, config.pad_to_multiple, cap) > budget:
                break
            longest = cand
            end += 1
        bounds.append(end)
        start = end
    return bounds


#: Built-in harness defaults by the kind of device the backend runs on, used for every setting neither a
#: flag nor a tuned profile gives (``tune.resolve_harness``). CPU (measured on 2 Xeon cores, issue 16: ORT,
#: small model, real dev lengths): batch 1 with one worker per physical core at one intra-op thread each
#: beat batch 32 on one worker with both threads by 9-30% in Offline; Server on a small CPU is bound by
#: single-query latency, so one worker with every core and no batching wait (``sut.default_workers``). CUDA:
#: batches large enough to fill a GPU with BERT-Large (256 samples, 65,536 tokens), padded to multiples of
#: 64 tokens; not measured on a GPU yet (issue 14). ``token_budget`` None = no limit.
DEVICE_DEFAULTS: dict[str, dict] = {
    "cpu": {"max_batch_size": 1, "token_budget": 8192, "pad_to_multiple": 1, "server_max_wait_ms": 0.0},
    "cuda": {"max_batch_size": 256, "token_budget": 65536, "pad_to_multiple": 64, "server_max_wait_ms": 5.0},
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
        settings: the other ``BatcherConfig`` fields (``sort_by_length``; ``server_max_wait_ms``, default the
            device's).

    Raises:
        ConfigError: unknown ``kind`` or a bad value.
    """
    if kind not in DEVICE_DEFAULTS:
        raise ConfigError(f"unknown device kind {kind!r}; one of {', '.join(DEVICE_DEFAULTS)}")
    d = DEVICE_DEFAULTS[kind]
    budget = d["token_budget"] if token_budget is None else (token_budget or None)
    settings.setdefault("server_max_wait_ms", d["server_max_wait_ms"])
    return BatcherConfig(max_batch_size=d["max_batch_size"] if max_batch_size is None else max_batch_size,
                         token_budget=budget,
                         pad_to_multiple=d["pad_to_multiple"] if pad_to_multiple is None else pad_to_multiple,
                         **settings)
