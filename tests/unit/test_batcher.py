"""Batch planning rules: token budget, batch size, every sample exactly once, length sorting."""

from __future__ import annotations

import numpy as np
import pytest

from mlperf_bert.errors import ConfigError
from mlperf_bert.sut.batcher import BatcherConfig, padded_length, plan_batches


@pytest.mark.parametrize("budget", [None, 384, 2048, 8192])
@pytest.mark.parametrize("max_bs", [1, 7, 64])
@pytest.mark.parametrize("multiple", [1, 16])
def test_budget_size_and_coverage(budget, max_bs, multiple):
    rng = np.random.default_rng(budget or 0)
    lengths = rng.integers(41, 385, size=1000)
    cfg = BatcherConfig(max_batch_size=max_bs, token_budget=budget, pad_to_multiple=multiple)
    batches = plan_batches(lengths, cfg)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))  # every sample exactly once
    for b in batches:
        assert 1 <= len(b) <= max_bs
        padded = padded_length(int(lengths[b].max()), multiple, 384)
        assert padded <= 384 and padded % multiple == 0 or padded == 384
        if budget is not None and len(b) > 1:
            assert len(b) * padded <= budget


def test_sorted_batches_pad_little():
    """Sorting by length: padding overhead on dev-like lengths is small (padding-free batching)."""
    rng = np.random.default_rng(1)
    lengths = rng.integers(41, 385, size=2000)
    batches = plan_batches(lengths, BatcherConfig(max_batch_size=32, token_budget=8192))
    padded = sum(len(b) * int(lengths[b].max()) for b in batches)
    assert padded / lengths.sum() < 1.02
    unsorted = plan_batches(lengths, BatcherConfig(max_batch_size=32, token_budget=None, sort_by_length=False))
    assert [b.tolist() for b in unsorted] == [list(range(i, min(i + 32, 2000))) for i in range(0, 2000, 32)]


def test_sample_longer_than_budget_runs_alone():
    batches = plan_batches(np.array([384, 384, 10]), BatcherConfig(max_batch_size=8, token_budget=100))
    assert [b.tolist() for b in batches] == [[0], [1], [2]]


def test_empty_query_and_bad_config():
    assert plan_batches(np.array([], dtype=int), BatcherConfig()) == []
    with pytest.raises(ConfigError, match="max_batch_size must be >= 1"):
        BatcherConfig(max_batch_size=0)
    with pytest.raises(ConfigError, match="token_budget"):
        BatcherConfig(token_budget=0)


def test_padded_length():
    assert padded_length(41, 1, 384) == 41
    assert padded_length(41, 16, 384) == 48
    assert padded_length(380, 16, 384) == 384


def _per_sample_plan(lengths, cfg, cap=384):
    """The per-sample loop plan_batches used before batch_bounds (longest first, grow while it fits)."""
    order = np.argsort(-lengths, kind="stable") if cfg.sort_by_length else np.arange(len(lengths))
    out, start, n = [], 0, len(lengths)
    while start < n:
        end, longest = start + 1, int(lengths[order[start]])
        while end < n and end - start < cfg.max_batch_size:
            cand = max(longest, int(lengths[order[end]]))
            if cfg.token_budget is not None and (end - start + 1) * padded_length(
                    cand, cfg.pad_to_multiple, cap) > cfg.token_budget:
                break
            longest, end = cand, end + 1
        out.append(order[start:end].tolist())
        start = end
    return out


@pytest.mark.parametrize("sort", [True, False])
@pytest.mark.parametrize("budget", [None, 300, 2048, 8192])
@pytest.mark.parametrize("max_bs", [1, 3, 32, 256])
@pytest.mark.parametrize("multiple", [1, 8, 64])
def test_batch_bounds_plans_exactly_as_the_per_sample_loop(sort, budget, max_bs, multiple):
    """One Python step per batch (batch_bounds) gives the very batches of the per-sample loop."""
    lengths = np.random.default_rng(max_bs + (budget or 1)).integers(41, 385, size=777)
    cfg = BatcherConfig(max_batch_size=max_bs, token_budget=budget, sort_by_length=sort, pad_to_multiple=multiple)
    assert [b.tolist() for b in plan_batches(lengths, cfg)] == _per_sample_plan(lengths, cfg)
