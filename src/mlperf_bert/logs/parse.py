"""Parse LoadGen logs: ``mlperf_log_detail.txt`` (one ``:::MLLOG {json}`` per line) into results."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from mlperf_bert.errors import DataError

MLLOG_PREFIX = ":::MLLOG "


@dataclass(frozen=True)
class DetailLog:
    """A parsed detail log.

    Attributes:
        values: key -> value of the last entry with that key.
        errors: values of entries whose metadata says ``is_error`` (what the checker rejects).
        warnings: values of entries whose metadata says ``is_warning``.
    """

    values: dict
    errors: list = field(default_factory=list)
    warnings: list = field(default_factory=list)

    def get(self, key: str, default=None):
        return self.values.get(key, default)

    @classmethod
    def from_entries(cls, entries) -> "DetailLog":
        """A ``DetailLog`` from parsed ``:::MLLOG`` JSON objects (dicts) in log order; entries without a
        ``key`` are skipped, a later entry of a key wins."""
        values: dict = {}
        errors: list = []
        warnings: list = []
        for entry in entries:
            if not isinstance(entry, dict) or "key" not in entry:
                continue
            values[entry["key"]] = entry.get("value")
            meta = entry.get("metadata") or {}
            if meta.get("is_error"):
                errors.append(entry.get("value"))
            if meta.get("is_warning"):
                warnings.append(entry.get("value"))
        return cls(values, errors, warnings)


def read_detail_log(path: Path) -> DetailLog:
    """Read ``mlperf_log_detail.txt``.

    Raises:
        DataError: missing file, or no MLLOG line in it.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"LoadGen detail log not found: {path}")
    with path.open(encoding="utf-8", errors="replace") as fh:
        log = DetailLog.from_entries(_entries(fh))
    if not log.values:
        raise DataError(f"{path} holds no ':::MLLOG' lines; is it a LoadGen detail log?")
    return log


def _entries(lines):
    """The JSON objects of the ``:::MLLOG`` lines; a line cut by a crash is skipped (the rest still counts)."""
    for line in lines:
        if line.startswith(MLLOG_PREFIX):
            try:
                yield json.loads(line[len(MLLOG_PREFIX):])
            except json.JSONDecodeError:
                continue


@dataclass(frozen=True)
class PerfResult:
    """The headline of a LoadGen performance run.

    Attributes:
        scenario, mode: as LoadGen ran them.
        valid: LoadGen's ``result_validity == "VALID"``.
        metric_name / metric_value / metric_unit: the scenario's metric (Offline and Server: samples/s;
            SingleStream / MultiStream: the target-percentile latency in ms).
        samples_per_second: completed samples / s (every scenario).
        latency_ms: percentile -> latency in ms (50, 90, 95, 97, 99, 99.9).
        invalid_reasons: why LoadGen said INVALID (empty when valid).
        errors: ERROR entries of the detail log.
        query_count: queries LoadGen issued.
        duration_s: the minimum duration the run was held to (``effective_min_duration_ms``), seconds.
        scheduled_s: how long LoadGen's query schedule ran (``generated_query_duration``), seconds; longer
            than ``duration_s`` when a minimum query count set the length.
    """

    scenario: str
    mode: str
    valid: bool
    metric_name: str
    metric_value: float
    metric_unit: str
    samples_per_second: float
    latency_ms: dict
    invalid_reasons: list
    errors: list
    query_count: int
    duration_s: float
    scheduled_s: float = 0.0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def perf_result(detail: DetailLog) -> PerfResult:
    """Extract the performance headline from a detail log (LoadGen 6.x keys)."""
    v = detail.values
    scenario = v.get("effective_scenario", "?")
    lat = {}
    for p in ("50.00", "90.00", "95.00", "97.00", "99.00", "99.90"):
        ns = v.get(f"result_{p}_percentile_latency_ns")
        if ns is not None:
            lat[float(p)] = ns / 1e6
    qps = v.get("result_samples_per_second")
    if qps is None:
        qps = v.get("result_completed_samples_per_sec", v.get("result_scheduled_samples_per_sec"))
    if qps is None and scenario == "MultiStream":  # queries run back to back: samples per busy second
        mean_ns = v.get("result_mean_query_latency_ns") or v.get("result_mean_latency_ns")
        qps = v.get("effective_samples_per_query", 8) * 1e9 / mean_ns if mean_ns else 0.0
    if qps is None:
        qps = v.get("result_qps_with_loadgen_overhead", 0.0)
    qps = float(qps or 0.0)
    if scenario in ("Offline", "Server"):
        name, value, unit = ("Samples per second" if scenario == "Offline" else "Completed samples per second",
                             qps, "samples/s")
    else:
        pct = 90.0 if scenario == "SingleStream" else 99.0
        key = "early_stopping_latency_ss" if scenario == "SingleStream" else "early_stopping_latency_ms"
        es = v.get(key)
        value = (es / 1e6) if es else lat.get(pct, 0.0)
        name, unit = f"{pct:g}th percentile latency", "ms"
    reasons = [str(v[k]) for k in ("result_invalid_reason",) if v.get(k)]
    for key, label in (("result_min_duration_met", "minimum duration not met"),
                       ("result_min_queries_met", "minimum query count not met"),
                       ("result_perf_constraints_met", "latency constraint not met")):
        if v.get(key) is False:
            reasons.append(label)
    if scenario in ("Server", "SingleStream") and v.get("early_stopping_met") is False:
        reasons.append("early stopping not met")
    return PerfResult(
        scenario=scenario,
        mode=str(v.get("effective_test_mode", "?")),
        valid=v.get("result_validity") == "VALID",
        metric_name=name,
        metric_value=float(value),
        metric_unit=unit,
        samples_per_second=qps,
        latency_ms=lat,
        invalid_reasons=reasons,
        errors=[str(e) for e in detail.errors],
        query_count=int(v.get("result_query_count", 0) or 0),
        duration_s=float(v.get("effective_min_duration_ms", 0)) / 1000.0,
        scheduled_s=float(v.get("generated_query_duration", 0) or 0) / 1e9,
    )
