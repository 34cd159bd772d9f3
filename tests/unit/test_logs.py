"""logs.early_stopping (LoadGen's Server early-stopping rule) and logs.trace service times."""

from __future__ import annotations

import numpy as np
import pytest

from mlperf_bert.logs.early_stopping import max_overlatency, min_queries
from mlperf_bert.logs.trace import TraceSamples, fifo_service_times_ms

# (queries over 130 ms, queries processed + "Would need to run at least X more queries") read from the
# early_stopping_result lines of LoadGen 5.x Server runs on this project's CPU (find-peak confirmations).
LOADGEN_EARLY_STOPPING = [(4, 218 + 939), (4, 1000 + 157), (5, 1000 + 307), (8, 206 + 1530), (8, 1000 + 736),
                          (10, 1000 + 1010), (15, 1000 + 1669), (16, 1000 + 1798), (25, 2000 + 1924),
                          (30, 1000 + 3533), (32, 1000 + 3774)]


@pytest.mark.parametrize("late,needed", LOADGEN_EARLY_STOPPING)
def test_min_queries_matches_loadgen(late, needed):
    assert min_queries(late) == needed


def test_min_queries_with_no_late_query_and_max_overlatency():
    assert min_queries(0) == 459  # 0.99^459 <= 0.01 < 0.99^458
    assert [max_overlatency(n) for n in (458, 459, 1000, 1156, 1157, 2000, 2010)] == [-1, 0, 2, 3, 4, 9, 10]
    with pytest.raises(ValueError):
        min_queries(-1)


def test_fifo_service_times_remove_queueing():
    # scheduled at 0, 10, 15 ms (given out of order), completed at 20, 35, 45 ms: the second query waited
    # 10 ms for the first and held the server 15 ms; the third waited 20 ms and held it 10 ms
    trace = TraceSamples(np.array([0.010, 0.0, 0.015]), np.array([25.0, 20.0, 30.0]))
    np.testing.assert_allclose(fifo_service_times_ms(trace), [15.0, 20.0, 10.0])  # in trace order
    idle = TraceSamples(np.array([0.0, 1.0]), np.array([5.0, 7.0]))  # no overlap: service = latency
    np.testing.assert_allclose(fifo_service_times_ms(idle), [5.0, 7.0])


def test_max_overlatency_for_a_v1_0_server_run_is_fast_and_exact():
    # 2,583 for 270,336 queries (MLPerf v1.0's Server minimum) was found by stepping t up one at a time
    assert max_overlatency(270_336) == 2583
    assert min_queries(2583) <= 270_336 < min_queries(2584)
