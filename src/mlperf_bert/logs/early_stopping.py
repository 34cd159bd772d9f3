"""LoadGen's early-stopping rule for the Server 99th percentile, so find-peak can plan runs with it.

LoadGen (results.cc) accepts a Server run's tail latency only when, with ``t`` queries over the target
latency, it processed at least ``n(t)`` queries: the smallest ``n`` for which observing ``t`` or fewer
late queries out of ``n`` has probability <= 1 - confidence if the true late fraction were
1 - percentile (a one-sided binomial test; confidence 0.99, percentile 0.99, tolerance 0 for Server).
``min_queries(0) == 459`` (0.99^459 <= 0.01). Values checked against LoadGen's own
``early_stopping_result`` lines ("Would need to run at least X more queries") in tests.
"""

from __future__ import annotations

import math

SERVER_PERCENTILE = 0.99
SERVER_CONFIDENCE = 0.99


def _binom_cdf(t: int, n: int, p: float) -> float:
    """P(X <= t) for X ~ Binomial(n, p), summed in log space (n up to millions)."""
    if t >= n:
        return 1.0
    lp, lq = math.log(p), math.log1p(-p)
    lg_n = math.lgamma(n + 1)
    return min(1.0, sum(math.exp(lg_n - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * lp + (n - k) * lq)
                        for k in range(t + 1)))


def min_queries(overlatency: int, percentile: float = SERVER_PERCENTILE,
                confidence: float = SERVER_CONFIDENCE) -> int:
    """Fewest processed queries with which ``overlatency`` late queries still pass early stopping.

    Args:
        overlatency: queries over the target latency (>= 0).
        percentile / confidence: LoadGen's Server values 0.99 / 0.99.

    Raises:
        ValueError: ``overlatency`` < 0 or percentile/confidence outside (0, 1).
    """
    if overlatency < 0 or not 0 < percentile < 1 or not 0 < confidence < 1:
        raise ValueError(f"bad early-stopping arguments: {overlatency}, {percentile}, {confidence}")
    p, alpha = 1.0 - percentile, 1.0 - confidence
    lo, hi = overlatency + 1, max(2 * (overlatency + 1), 64)
    while _binom_cdf(overlatency, hi, p) > alpha:  # the CDF falls as n grows
        lo, hi = hi, hi * 2
    while lo < hi:
        mid = (lo + hi) // 2
        if _binom_cdf(overlatency, mid, p) <= alpha:
            hi = mid
        else:
            lo = mid + 1
    return lo


def max_overlatency(queries: int, percentile: float = SERVER_PERCENTILE,
                    confidence: float = SERVER_CONFIDENCE) -> int:
    """Most late queries a Server run of ``queries`` queries may have and still pass early stopping;
    -1 when even none would do (fewer than ``min_queries(0)`` = 459 queries). Bisection over the late
    count (``min_queries`` grows with it): about 12 calls for LoadGen v1.0's 270,336 queries."""
    lo, hi = -1, max(int(queries * (1.0 - percentile)), 0)  # never more late than the percentile allows
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if min_queries(mid, percentile, confidence) <= queries:
            lo = mid
        else:
            hi = mid - 1
    return lo
