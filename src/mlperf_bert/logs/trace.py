"""Per-sample timing from LoadGen's trace (``mlperf_log_trace.json``, written when a run has ``--trace``).

Each ``Sample`` begin event carries the sample's scheduled time (``ts``, microseconds from the test
start) and ``complete_ns`` (scheduled -> completed, what LoadGen's latency statistics use), so
completion time = ``ts + complete_ns``. The trace is not strict JSON as a whole (LogDetail arguments are
double-quoted twice), so only the Sample lines are parsed. Used by the HTML report (latency histogram,
throughput over time) and by find-peak (service times for its queueing model).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mlperf_bert.errors import DataError

SAMPLE_BEGIN = '{"name":"Sample","cat":"default","ph":"b"'


@dataclass(frozen=True)
class TraceSamples:
    """Per-sample timing from a LoadGen trace, in trace order.

    Attributes:
        scheduled_s: float64 [N] scheduled time of each sample, seconds from the test start.
        latency_ms: float64 [N] scheduled -> completed, milliseconds.
        sample_idx: int64 [N] QSL index of each sample (None when not given).
    """

    scheduled_s: np.ndarray
    latency_ms: np.ndarray
    sample_idx: np.ndarray | None = None

    @property
    def completed_s(self) -> np.ndarray:
        """float64 [N] completion time, seconds from the test start."""
        return self.scheduled_s + self.latency_ms / 1000.0

    def __len__(self) -> int:
        return int(self.latency_ms.shape[0])


def read_trace(path: Path) -> TraceSamples:
    """Parse the Sample events of ``mlperf_log_trace.json``.

    Raises:
        DataError: the file is missing or has no Sample events.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"LoadGen trace not found: {path}; run with --trace")
    ts, lat, idx = [], [], []
    with path.open(encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.startswith(SAMPLE_BEGIN):
                continue
            try:
                ev = json.loads(line.rstrip().rstrip(","))
            except ValueError:
                continue  # a line cut short at the end of a crashed run
            ts.append(ev["ts"])
            lat.append(ev["args"]["complete_ns"])
            idx.append(ev["args"].get("sample_idx", -1))
    if not ts:
        raise DataError(f"{path} holds no Sample events; is it a LoadGen trace?")
    return TraceSamples(np.asarray(ts, dtype=np.float64) / 1e6, np.asarray(lat, dtype=np.float64) / 1e6,
                        np.asarray(idx, dtype=np.int64))


def fifo_service_times_ms(trace: TraceSamples) -> np.ndarray:
    """Service time of each sample of a run served one at a time in arrival order (a Server SUT with one
    worker and batches of one), float64 [N] in ms, in trace order: ``completed - max(scheduled, previous
    completed)`` with samples taken in scheduled order, i.e. the time the sample held the server, queueing
    removed. For other SUT shapes the values are not service times; callers must check the shape.
    """
    order = np.argsort(trace.scheduled_s, kind="stable")
    start = trace.scheduled_s[order] * 1000.0
    done = trace.completed_s[order] * 1000.0
    prev_done = np.maximum.accumulate(np.concatenate(([-np.inf], done[:-1])))
    out = np.empty_like(start)
    out[order] = np.maximum(done - np.maximum(start, prev_done), 0.0)
    return out
