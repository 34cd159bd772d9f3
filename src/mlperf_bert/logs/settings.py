"""LoadGen ``TestSettings``/``LogSettings`` from our run configuration.

Rules presets (docs/loadgen.md#rules-presets):
- ``current``: LoadGen 6.x's built-in mlperf.conf for model ``bert`` (seeds, 600 s, performance_sample_count
  10,833, Server 130 ms, Offline min 10,833 samples, early stopping).
- ``v1.0``: MLPerf Inference v1.0 rules: the v1.0 seeds and minimums (600 s; Offline >= 24,576 samples,
  Server >= 270,336 queries, SingleStream >= 1,024 queries), set as TestSettings attributes.
- ``quick``: development only, NOT valid for submission: ``quick_duration_s`` (10 s) minimum duration,
  minimum query count 1 (Offline: one query sized by the expected QPS), capped at 4x that duration.

Exactly one ``TestSettings.FromConfig`` call is made per run (the built-in mlperf.conf plus at most one
user.conf), because a second conf file logs an ERROR that the submission checker rejects.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mlperf_loadgen as lg

from mlperf_bert.errors import ConfigError

RULES = ("current", "v1.0", "quick")
MODES = ("accuracy", "performance")
#: LoadGen model key for both bert-99 and bert-99.9 (docs/submission.md#benchmarks).
LOADGEN_MODEL = "bert"

#: MLPerf Inference v1.0 seeds (docs/loadgen.md#rules-presets): qsl, sample_index, schedule.
V1_0_SEEDS = (7322528924094909334, 1570999273408051088, 3507442325620259414)
#: MLPerf Inference v1.0 minimum query counts (Offline: samples in its one query), docs/loadgen.md#rules-presets.
V1_0_MIN_QUERY_COUNT = {"Offline": 24_576, "Server": 270_336, "SingleStream": 1_024, "MultiStream": 270_336}
#: MLPerf Inference v1.0 minimum duration, every scenario (ms).
V1_0_MIN_DURATION_MS = 600_000
#: Server latency bound for BERT, MLPerf v1.0 and current rules (ns).
SERVER_TARGET_LATENCY_NS = 130_000_000
#: MultiStream samples per query used by LoadGen 6.x (8).
MULTISTREAM_SAMPLES_PER_QUERY = 8


def check_rules(name: str) -> str:
    if name not in RULES:
        raise ConfigError(f"unknown rules preset {name!r}; choose one of: {', '.join(RULES)}")
    return name


def check_mode(name: str) -> str:
    if name not in MODES:
        raise ConfigError(f"unknown mode {name!r}; choose one of: {', '.join(MODES)}")
    return name


@dataclass(frozen=True)
class LoadGenConfig:
    """What LoadGen is asked to do.

    Attributes:
        scenario: Offline, Server, SingleStream or MultiStream.
        mode: ``accuracy`` (every sample once, responses logged) or ``performance``.
        rules: ``current``, ``v1.0`` or ``quick`` (see module docstring).
        user_conf: optional user.conf (e.g. ``bert.Offline.target_qps = 120``); at most one.
        expected_qps: Offline/Server expected or target samples/s (None = leave the conf's value).
        expected_latency_ms: SingleStream/MultiStream expected query latency in ms (None = conf's value).
        quick_duration_s: minimum duration of a ``quick`` run, seconds.
        min_duration_s / min_query_count / max_duration_s: explicit overrides (None = preset).
        performance_sample_count: QSL samples used in performance mode (None = 10,833 from mlperf.conf).
        seeds: explicit (qsl, sample_index, schedule) seeds, e.g. TEST05's; None = preset.
        audit_conf: an audit.config for compliance tests (TEST01/TEST05), or None.
        trace: also write LoadGen's ``mlperf_log_trace.json`` (per-sample issue/complete times; the HTML
            report draws its latency histogram and throughput-over-time plots from it).
    """

    scenario: str = "Offline"
    mode: str = "performance"
    rules: str = "current"
    user_conf: Path | None = None
    expected_qps: float | None = None
    expected_latency_ms: float | None = None
    quick_duration_s: float = 10.0
    min_duration_s: float | None = None
    min_query_count: int | None = None
    max_duration_s: float | None = None
    performance_sample_count: int | None = None
    seeds: tuple[int, int, int] | None = None
    audit_conf: Path | None = None
    trace: bool = False

    def __post_init__(self) -> None:
        check_rules(self.rules)
        check_mode(self.mode)
        if self.user_conf is not None and not Path(self.user_conf).is_file():
            raise ConfigError(f"user.conf not found: {self.user_conf}")
        if self.audit_conf is not None and not Path(self.audit_conf).is_file():
            raise ConfigError(f"audit.config not found: {self.audit_conf}")


def build_test_settings(cfg: LoadGenConfig) -> lg.TestSettings:
    """Turn ``cfg`` into LoadGen TestSettings (one FromConfig call, then attribute overrides).

    Raises:
        ConfigError: LoadGen rejected the user.conf.
    """
    ts = lg.TestSettings()
    if cfg.user_conf is not None:
        rc = ts.FromConfig(str(cfg.user_conf), LOADGEN_MODEL, cfg.scenario, 1)
    else:
        rc = ts.FromConfig("", LOADGEN_MODEL, cfg.scenario, 0)  # built-in mlperf.conf only
    if rc != 0:
        raise ConfigError(f"LoadGen could not read {cfg.user_conf or 'the built-in mlperf.conf'} (code {rc})")
    ts.scenario = getattr(lg.TestScenario, cfg.scenario)
    ts.mode = lg.TestMode.AccuracyOnly if cfg.mode == "accuracy" else lg.TestMode.PerformanceOnly

    if cfg.rules == "v1.0":
        ts.qsl_rng_seed, ts.sample_index_rng_seed, ts.schedule_rng_seed = V1_0_SEEDS
        ts.min_duration_ms = V1_0_MIN_DURATION_MS
        ts.min_query_count = V1_0_MIN_QUERY_COUNT[cfg.scenario]
        ts.server_target_latency_ns = SERVER_TARGET_LATENCY_NS
    elif cfg.rules == "quick":
        ts.min_duration_ms = int(cfg.quick_duration_s * 1000)
        ts.max_duration_ms = int(cfg.quick_duration_s * 4000)
        ts.min_query_count = 1

    if cfg.expected_qps is not None:
        if cfg.scenario == "Offline":
            ts.offline_expected_qps = float(cfg.expected_qps)
        elif cfg.scenario == "Server":
            ts.server_target_qps = float(cfg.expected_qps)
    if cfg.expected_latency_ms is not None:
        ns = max(1, int(cfg.expected_latency_ms * 1e6))
        if cfg.scenario == "SingleStream":
            ts.single_stream_expected_latency_ns = ns
        elif cfg.scenario == "MultiStream":
            ts.multi_stream_expected_latency_ns = ns
    if cfg.min_duration_s is not None:
        ts.min_duration_ms = int(cfg.min_duration_s * 1000)
    if cfg.max_duration_s is not None:
        ts.max_duration_ms = int(cfg.max_duration_s * 1000)
    if cfg.min_query_count is not None:
        ts.min_query_count = int(cfg.min_query_count)
    if cfg.performance_sample_count is not None:
        ts.performance_sample_count_override = int(cfg.performance_sample_count)
    if cfg.seeds is not None:
        ts.qsl_rng_seed, ts.sample_index_rng_seed, ts.schedule_rng_seed = cfg.seeds
    return ts


def build_log_settings(outdir: Path, trace: bool = False) -> lg.LogSettings:
    """LogSettings writing mlperf_log_{summary,detail,accuracy}.txt/json (and the trace if asked) to ``outdir``."""
    ls = lg.LogSettings()
    ls.log_output.outdir = str(outdir)
    ls.log_output.copy_summary_to_stdout = False
    ls.enable_trace = trace
    return ls
