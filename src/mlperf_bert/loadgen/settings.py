"""LoadGen ``TestSettings``/``LogSettings`` from our run configuration, and where every value came from.

Layers, lowest first; a later layer overrides an earlier one:

1. ``mlperf.conf``: LoadGen 6.x's built-in conf for model ``bert`` (seeds, 600 s, performance_sample_count
   10,833, Server 130 ms, Offline min 10,833 samples, early stopping), read with one
   ``TestSettings.FromConfig("", "bert", scenario, 0)`` call per LoadGen test.
2. ``rules:<preset>``: ``current`` changes nothing; ``v1.0`` sets the MLPerf Inference v1.0 seeds and
   minimums (600 s; Offline >= 24,576 samples, Server >= 270,336 queries, SingleStream >= 1,024
   queries); ``quick`` (development only, NOT valid for submission) sets ``quick_duration_s`` (10 s) as
   minimum duration, minimum query count 1 (Offline: one query sized by the expected QPS), capped at
   4x that duration.
3. ``user.conf:<path>:<line>``: the user's conf file, in LoadGen's syntax.
4. ``flag:--<name>``: a command-line flag (``--target-qps``, ``--min-duration``, ...).
5. ``probe``: the runner's throughput probe fills the expected QPS / latency, and only when neither the
   user.conf nor a flag set it (``LoadGenConfig.sets``).

``profile:<path>`` is reserved for tuned profiles.

user.conf is parsed here, with LoadGen's own syntax and lookup rules, and applied as TestSettings
attributes; it is never handed to LoadGen. LoadGen 6.0.17 loads its built-in mlperf.conf only at the
first ``FromConfig(user_conf, ..., 1)`` call of a process: a second such call (the performance test
after the accuracy test of one ``run``) gets no mlperf.conf (seeds 0, 10 s) and logs "Multiple conf files
are used", an ERROR the submission checker rejects. Reading the file ourselves also lets every bad line
be refused before any work, naming the file, the line and the key. ``tests/unit/test_loadgen_settings.py``
checks the result against LoadGen's own ``FromConfig`` on user.conf files in fresh processes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlperf_loadgen as lg

from mlperf_bert.errors import ConfigError

RULES = ("current", "v1.0", "quick")
MODES = ("accuracy", "performance")
SCENARIOS = ("Offline", "Server", "SingleStream", "MultiStream")
#: LoadGen model key for both bert-99 and bert-99.9 (MLPerf Inference rules: benchmark "bert").
LOADGEN_MODEL = "bert"

#: MLPerf Inference v1.0 seeds (v1.0 mlperf.conf): qsl, sample_index, schedule.
V1_0_SEEDS = (7322528924094909334, 1570999273408051088, 3507442325620259414)
#: MLPerf Inference v1.0 minimum query counts (Offline: samples in its one query), v1.0 inference rules.
V1_0_MIN_QUERY_COUNT = {"Offline": 24_576, "Server": 270_336, "SingleStream": 1_024, "MultiStream": 270_336}
#: MLPerf Inference v1.0 minimum duration, every scenario (ms).
V1_0_MIN_DURATION_MS = 600_000
#: Server latency bound for BERT, MLPerf v1.0 and current rules (ns).
SERVER_TARGET_LATENCY_NS = 130_000_000
#: MultiStream samples per query used by LoadGen 6.x (8).
MULTISTREAM_SAMPLES_PER_QUERY = 8

#: Source of a value LoadGen's built-in mlperf.conf (or LoadGen's own default) gave.
SOURCE_MLPERF_CONF = "mlperf.conf"
#: Source of the expected QPS / latency measured by the runner's probe.
SOURCE_PROBE = "probe"

#: LoadGen's trace costs about 3 us per Offline sample and 11 us per SingleStream query (measured with
#: the null backend, 2 shared cores; Server at 20,000 QPS showed no change). 20 us per sample leaves a
#: margin for slower CPUs.
TRACE_COST_S_PER_SAMPLE = 20e-6
#: A performance run writes the trace by default when it costs under this fraction of the throughput.
TRACE_MAX_COST = 0.01


def rules_source(preset: str) -> str:
    """Source label of a value set by a rules preset: ``rules:<preset>``."""
    return f"rules:{preset}"


def user_conf_source(path: Path | str, line: int) -> str:
    """Source label of a value from a user.conf line: ``user.conf:<path>:<line>``."""
    return f"user.conf:{path}:{line}"


def flag_source(flag: str) -> str:
    """Source label of a value from a command-line flag: ``flag:--<name>``."""
    return f"flag:--{flag.lstrip('-')}"


def profile_source(path: Path | str) -> str:
    """Source label of a value from a tuned profile: ``profile:<path>`` (reserved)."""
    return f"profile:{path}"


def check_rules(name: str) -> str:
    if name not in RULES:
        raise ConfigError(f"unknown rules preset {name!r}; choose one of: {', '.join(RULES)}")
    return name


def check_mode(name: str) -> str:
    if name not in MODES:
        raise ConfigError(f"unknown mode {name!r}; choose one of: {', '.join(MODES)}")
    return name


# -- user.conf ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Key:
    """How LoadGen 6.0.17 reads one user.conf key into one TestSettings attribute.

    ``scenario`` None: looked up under the run's scenario (keys for every scenario); else LoadGen looks the
    key up under this fixed scenario, whatever the run's. ``kind``: ``int`` (strtoull), ``float`` (strtod)
    or ``bool`` (an int, true when not 0). The value is multiplied by ``multiplier``.
    """

    attr: str
    kind: str
    scenario: str | None = None
    multiplier: float = 1


#: Every key LoadGen 6.0.17 reads from a user.conf (found by setting each key in a fresh process and
#: comparing all TestSettings attributes; kept in step by tests/unit/test_loadgen_settings.py).
USER_CONF_KEYS: dict[str, tuple[_Key, ...]] = {
    "min_duration": (_Key("min_duration_ms", "int"),),
    "max_duration": (_Key("max_duration_ms", "int"),),
    "min_query_count": (_Key("min_query_count", "int"),),
    "max_query_count": (_Key("max_query_count", "int"),),
    "accuracy_log_rng_seed": (_Key("accuracy_log_rng_seed", "int"),),
    "accuracy_log_sampling_target": (_Key("accuracy_log_sampling_target", "int"),),
    "print_timestamps": (_Key("print_timestamps", "bool"),),
    "performance_issue_unique": (_Key("performance_issue_unique", "bool"),),
    "performance_issue_same": (_Key("performance_issue_same", "bool"),),
    "performance_issue_same_index": (_Key("performance_issue_same_index", "int"),),
    "performance_sample_count_override": (_Key("performance_sample_count_override", "int"),),
    "accuracy_sample_count_override": (_Key("accuracy_sample_count_override", "int"),),
    "target_latency_percentile": (
        _Key("single_stream_target_latency_percentile", "float", "SingleStream", 0.01),
        _Key("multi_stream_target_latency_percentile", "float", "MultiStream", 0.01),
        _Key("server_target_latency_percentile", "float", "Server", 0.01),
    ),
    "target_latency": (  # ms
        _Key("single_stream_expected_latency_ns", "float", "SingleStream", 1_000_000),
        _Key("multi_stream_expected_latency_ns", "float", "MultiStream", 1_000_000),
        _Key("server_target_latency_ns", "int", "Server", 1_000_000),
    ),
    "samples_per_query": (_Key("multi_stream_samples_per_query", "int", "MultiStream"),),
    "target_qps": (
        _Key("offline_expected_qps", "float", "Offline"),
        _Key("server_target_qps", "float", "Server"),
    ),
    "coalesce_queries": (_Key("server_coalesce_queries", "bool", "Server"),),
    "max_async_queries": (_Key("server_max_async_queries", "int", "Server"),),
}

#: Float keys whose value must be > 0: LoadGen replaces 0 or a negative target_qps by 1 sample/s and a
#: latency by its default, so the run would not be the one the file describes (found with target_qps = -5).
_POSITIVE = frozenset({"target_qps", "target_latency"})

#: Keys LoadGen knows but does not take from a user.conf (or that the harness sets), with the reason.
USER_CONF_REFUSED = {
    **{k: "LoadGen reads seeds only from its built-in mlperf.conf (use --rules v1.0 for the v1.0 seeds)"
       for k in ("qsl_rng_seed", "sample_index_rng_seed", "schedule_rng_seed", "test05",
                 "test05_qsl_rng_seed", "test05_sample_index_rng_seed", "test05_schedule_rng_seed")},
    "mode": "the test mode comes from --mode (accuracy, performance or both), not from user.conf",
    "accuracy_log_probability": "LoadGen does not read it from a user.conf (audit.config only)",
}

_INT = re.compile(r"\+?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


@dataclass(frozen=True)
class UserConfLine:
    """One setting line of a user.conf.

    Attributes:
        line: 1-based line number.
        key: the full key as written, e.g. ``bert.Offline.target_qps``.
        model / scenario / name: its three parts (``*`` = any model / scenario).
        value: the value text as written.
    """

    line: int
    key: str
    model: str
    scenario: str
    name: str
    value: str


@dataclass(frozen=True)
class UserConf:
    """A validated user.conf for one model and scenario.

    Attributes:
        path: the file.
        scenario: the run's scenario the file was checked against.
        lines: its setting lines in file order.
    """

    path: Path
    scenario: str
    lines: tuple[UserConfLine, ...]

    def resolve(self) -> dict[str, tuple[Any, UserConfLine]]:
        """TestSettings attribute -> (value, the line it came from), with LoadGen's lookup rules.

        LoadGen keeps the last line of each exact key and looks a key up as ``bert.<S>.key``, then
        ``*.<S>.key``, ``bert.*.key``, ``*.*.key``, where S is the run's scenario (or the key's own
        scenario for scenario keys such as ``target_qps``). Values are converted as LoadGen converts them
        (int keys: integer x multiplier; float keys: float x multiplier, e.g. ``target_latency`` ms -> ns).
        """
        last: dict[str, UserConfLine] = {}
        for entry in self.lines:
            last[entry.key] = entry
        out: dict[str, tuple[Any, UserConfLine]] = {}
        for name, keys in USER_CONF_KEYS.items():
            for k in keys:
                scenario = k.scenario or self.scenario
                for cand in (f"{LOADGEN_MODEL}.{scenario}.{name}", f"*.{scenario}.{name}",
                             f"{LOADGEN_MODEL}.*.{name}", f"*.*.{name}"):
                    if cand in last:
                        entry = last[cand]
                        out[k.attr] = (_convert(entry.value, k), entry)
                        break
        return out


def _convert(text: str, key: _Key) -> Any:
    if key.kind == "float":
        return float(text) * key.multiplier
    value = int(text)
    if key.kind == "bool":
        return value != 0
    return value * int(key.multiplier)


def read_user_conf(path: Path | str, scenario: str) -> UserConf:
    """Parse and check a user.conf in LoadGen's syntax for model ``bert`` and ``scenario``.

    Syntax (LoadGen's ``TestSettings::FromConfig``): one ``model.scenario.key = value`` per line, tokens
    separated by spaces, ``*`` for any model or scenario, ``#`` starts a comment line. Refused, each with
    one line naming the file, the line number and the key: a malformed line (no spaces around ``=``,
    which LoadGen silently skips; a missing value; two values; a comment after the value, which LoadGen
    rejects); a key LoadGen does not read from a user.conf; a key for another model or another scenario
    (or one that does not apply to this scenario, e.g. ``target_qps`` in SingleStream); a value that is
    not a finite decimal number; a fraction, a sign or an exponent where LoadGen reads a whole number
    (``min_duration = 1.5`` would silently become 1).

    Raises:
        ConfigError: the file is missing or unreadable, or a line is refused.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"--user-conf {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--user-conf {path}: cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    lines: list[UserConfLine] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        tokens = raw.split()
        if not tokens or tokens[0].startswith("#"):
            continue

        def bad(problem: str, key: str = tokens[0]) -> ConfigError:
            return ConfigError(f"--user-conf {path} line {n}: {key}: {problem}")

        key = tokens[0]
        if "=" in key:
            raise bad("write 'key = value' with spaces around '=' (LoadGen ignores this line otherwise)",
                      key.split("=", 1)[0])
        if len(tokens) < 3 or tokens[1] != "=":
            raise bad("expected 'key = value'" if len(tokens) > 1 and tokens[1] != "=" else "no value")
        if len(tokens) > 3:
            extra = "a comment after the value (LoadGen rejects it; put it on its own line)" \
                if tokens[3].startswith("#") else f"more than one value ({' '.join(tokens[2:])})"
            raise bad(extra)
        parts = key.split(".")
        if len(parts) != 3 or not all(parts):
            raise bad("expected model.scenario.key, e.g. bert.Offline.target_qps")
        model, scen, name = parts
        if model not in (LOADGEN_MODEL, "*"):
            raise bad(f"a key for model {model!r}; this run is model {LOADGEN_MODEL!r} (use bert or *)")
        if scen not in (scenario, "*"):
            known = f"scenario {scen!r}" if scen in SCENARIOS else f"unknown scenario {scen!r}"
            raise bad(f"a key for {known}; this run is {scenario}")
        if name in USER_CONF_REFUSED:
            raise bad(USER_CONF_REFUSED[name])
        keys = USER_CONF_KEYS.get(name)
        if keys is None:
            raise bad(f"unknown key {name!r}; LoadGen reads: {', '.join(sorted(USER_CONF_KEYS))}")
        own = [k for k in keys if k.scenario in (None, scenario)]
        if not own:
            where = "/".join(k.scenario for k in keys)
            raise bad(f"{name} applies to {where}, not to {scenario}")
        value = tokens[2]
        kind = own[0].kind
        if kind == "float":
            if not _FLOAT.fullmatch(value) or not math.isfinite(float(value)):
                raise bad(f"value {value!r} is not a number")
            if name in _POSITIVE and not float(value) > 0:
                raise bad(f"value {value!r}: {name} must be > 0 (LoadGen would run with another value)")
            if name == "target_latency_percentile" and not 0 < float(value) <= 100:
                raise bad(f"value {value!r}: a percentile in (0, 100]")
        elif not _INT.fullmatch(value):
            if _FLOAT.fullmatch(value):
                raise bad(f"value {value!r}: LoadGen reads {name} as a whole number >= 0 "
                          "(a sign, fraction or exponent would be cut off)")
            raise bad(f"value {value!r} is not a number")
        elif int(value) >= 2**64:
            raise bad(f"value {value!r} is too large")
        lines.append(UserConfLine(n, key, model, scen, name, value))
    return UserConf(path, scenario, tuple(lines))


# -- the run's LoadGen configuration -----------------------------------------------------------------
#: LoadGenConfig field -> the ``run`` flag that sets it (the default source label of an explicit value).
FIELD_FLAGS = {
    "expected_qps": "target-qps",
    "expected_latency_ms": "expected-latency-ms",
    "min_duration_s": "min-duration",
    "max_duration_s": "max-duration",
    "min_query_count": "min-query-count",
    "performance_sample_count": "performance-sample-count",
    "seeds": "seeds",
}


@dataclass(frozen=True)
class LoadGenConfig:
    """What LoadGen is asked to do.

    Attributes:
        scenario: Offline, Server, SingleStream or MultiStream.
        mode: ``accuracy`` (every sample once, responses logged) or ``performance``.
        rules: ``current``, ``v1.0`` or ``quick`` (see module docstring).
        user_conf: optional user.conf (e.g. ``bert.Offline.target_qps = 120``); at most one. Checked when
            the config is built (``read_user_conf``).
        expected_qps: Offline/Server expected or target samples/s (None = leave the conf's value).
        expected_latency_ms: SingleStream/MultiStream expected query latency in ms (None = conf's value).
        quick_duration_s: minimum duration of a ``quick`` run, seconds.
        min_duration_s / min_query_count / max_duration_s: explicit overrides (None = preset).
        performance_sample_count: QSL samples used in performance mode (None = 10,833 from mlperf.conf).
        seeds: explicit (qsl, sample_index, schedule) seeds, e.g. TEST05's; None = preset.
        audit_conf: an audit.config for compliance tests (TEST01/TEST05), or None.
        trace: write LoadGen's ``mlperf_log_trace.json`` (per-sample issue/complete times; the HTML report
            draws its latency histogram and throughput-over-time plots from it). None = a performance run
            writes it when it costs under 1% of the planned throughput (``trace_by_default``).
        origins: field name -> source label for explicit fields not set by their ``run`` flag (e.g.
            ``{"expected_qps": "probe"}``, ``{"seeds": "rules:TEST05"}``); see ``FIELD_FLAGS``.
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
    trace: bool | None = None
    origins: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_rules(self.rules)
        check_mode(self.mode)
        if self.scenario not in SCENARIOS:
            raise ConfigError(f"unknown scenario {self.scenario!r}; choose one of: {', '.join(SCENARIOS)}")
        if self.user_conf is not None:
            read_user_conf(self.user_conf, self.scenario)  # every line checked before any work
        if self.audit_conf is not None and not Path(self.audit_conf).is_file():
            raise ConfigError(f"audit.config not found: {self.audit_conf}")

    def user_settings(self) -> dict[str, tuple[Any, UserConfLine]]:
        """TestSettings attribute -> (value, line) of what the user.conf sets (empty without one)."""
        return read_user_conf(self.user_conf, self.scenario).resolve() if self.user_conf else {}

    def sets_expected(self) -> bool:
        """True when the user.conf or a field sets the expected QPS (Offline/Server) or latency
        (SingleStream/MultiStream) of this scenario: then the probe must not change it."""
        attr = EXPECTED_ATTR[self.scenario]
        own = self.expected_qps if self.scenario in ("Offline", "Server") else self.expected_latency_ms
        return own is not None or attr in self.user_settings()

    def source_of(self, field_name: str) -> str:
        """Source label of an explicit field value (``origins`` or the field's ``run`` flag)."""
        return self.origins.get(field_name) or flag_source(FIELD_FLAGS.get(field_name, field_name))


#: The TestSettings attribute holding the expected QPS / latency of each scenario (what the probe fills).
EXPECTED_ATTR = {
    "Offline": "offline_expected_qps",
    "Server": "server_target_qps",
    "SingleStream": "single_stream_expected_latency_ns",
    "MultiStream": "multi_stream_expected_latency_ns",
}


@dataclass(frozen=True)
class Setting:
    """One effective LoadGen setting and where its value came from.

    Attributes:
        key: the ``mlperf_loadgen.TestSettings`` attribute, e.g. ``offline_expected_qps``.
        value: its value after every layer (int, float, bool; enums as their name, e.g. ``Offline``).
        source: ``mlperf.conf``, ``rules:<preset>``, ``user.conf:<path>:<line>``, ``flag:--<name>``,
            ``probe`` or ``profile:<path>``.
    """

    key: str
    value: Any
    source: str


#: Every TestSettings attribute of LoadGen 6.0.17, in listing order.
TEST_SETTINGS_ATTRS = tuple(a for a in dir(lg.TestSettings()) if not a.startswith("_") and a != "FromConfig")

#: The settings the summary always shows, per scenario (others only when not from mlperf.conf).
HEADLINE_SETTINGS = {
    "Offline": ("offline_expected_qps", "min_duration_ms", "min_query_count"),
    "Server": ("server_target_qps", "server_target_latency_ns", "min_duration_ms", "min_query_count"),
    "SingleStream": ("single_stream_expected_latency_ns", "min_duration_ms", "min_query_count"),
    "MultiStream": ("multi_stream_expected_latency_ns", "min_duration_ms", "min_query_count"),
}


@dataclass(frozen=True)
class LoadGenSettings:
    """The TestSettings of one LoadGen test and every effective value with its source.

    Attributes:
        test_settings: what ``StartTestWithLogSettings`` gets.
        effective: one ``Setting`` per TestSettings attribute, read back after every layer.
    """

    test_settings: Any
    effective: tuple[Setting, ...]

    def get(self, key: str) -> Setting:
        for s in self.effective:
            if s.key == key:
                return s
        raise KeyError(key)

    def changed(self, scenario: str) -> tuple[Setting, ...]:
        """The scenario's headline settings and every setting not from mlperf.conf (for the summary)."""
        head = HEADLINE_SETTINGS[scenario]
        return tuple(s for s in self.effective if s.key in head or s.source != SOURCE_MLPERF_CONF)

    def expected_samples_per_second(self, scenario: str) -> float:
        """Samples per second the settings plan for: Offline/Server expected QPS; SingleStream one sample
        per expected latency; MultiStream ``samples_per_query`` per expected latency."""
        if scenario in ("Offline", "Server"):
            return float(self.get(EXPECTED_ATTR[scenario]).value)
        ns = float(self.get(EXPECTED_ATTR[scenario]).value)
        per_query = 1 if scenario == "SingleStream" else int(self.get("multi_stream_samples_per_query").value)
        return per_query * 1e9 / ns if ns > 0 else float("inf")


class _Recorder:
    """Sets TestSettings attributes and remembers the source of each."""

    def __init__(self, ts) -> None:
        self.ts = ts
        self.sources = {a: SOURCE_MLPERF_CONF for a in TEST_SETTINGS_ATTRS}

    def set(self, attr: str, value: Any, source: str) -> None:
        setattr(self.ts, attr, value)
        self.sources[attr] = source


def _plain(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str)):
        return value
    return getattr(value, "name", str(value))  # LoadGen enums


def build_test_settings(cfg: LoadGenConfig) -> LoadGenSettings:
    """Turn ``cfg`` into LoadGen TestSettings (one ``FromConfig`` call for the built-in mlperf.conf, then
    the layers of the module docstring as attribute assignments), with the source of every value.

    Raises:
        ConfigError: LoadGen could not read its built-in conf, or the user.conf is refused.
    """
    ts = lg.TestSettings()
    rc = ts.FromConfig("", LOADGEN_MODEL, cfg.scenario, 0)  # built-in mlperf.conf only
    if rc != 0:
        raise ConfigError(f"LoadGen could not read its built-in mlperf.conf (code {rc})")
    r = _Recorder(ts)
    r.set("scenario", getattr(lg.TestScenario, cfg.scenario), flag_source("scenario"))
    r.set("mode", lg.TestMode.AccuracyOnly if cfg.mode == "accuracy" else lg.TestMode.PerformanceOnly,
          flag_source("mode"))

    rules = rules_source(cfg.rules)
    if cfg.rules == "v1.0":
        for attr, seed in zip(("qsl_rng_seed", "sample_index_rng_seed", "schedule_rng_seed"), V1_0_SEEDS):
            r.set(attr, seed, rules)
        r.set("min_duration_ms", V1_0_MIN_DURATION_MS, rules)
        r.set("min_query_count", V1_0_MIN_QUERY_COUNT[cfg.scenario], rules)
        r.set("server_target_latency_ns", SERVER_TARGET_LATENCY_NS, rules)
    elif cfg.rules == "quick":
        r.set("min_duration_ms", int(cfg.quick_duration_s * 1000), rules)
        r.set("max_duration_ms", int(cfg.quick_duration_s * 4000), rules)
        r.set("min_query_count", 1, rules)

    for attr, (value, line) in cfg.user_settings().items():
        r.set(attr, value, user_conf_source(cfg.user_conf, line.line))

    if cfg.expected_qps is not None and cfg.scenario in ("Offline", "Server"):
        r.set(EXPECTED_ATTR[cfg.scenario], float(cfg.expected_qps), cfg.source_of("expected_qps"))
    if cfg.expected_latency_ms is not None and cfg.scenario in ("SingleStream", "MultiStream"):
        ns = max(1, int(cfg.expected_latency_ms * 1e6))
        r.set(EXPECTED_ATTR[cfg.scenario], ns, cfg.source_of("expected_latency_ms"))
    if cfg.min_duration_s is not None:
        r.set("min_duration_ms", int(cfg.min_duration_s * 1000), cfg.source_of("min_duration_s"))
    if cfg.max_duration_s is not None:
        r.set("max_duration_ms", int(cfg.max_duration_s * 1000), cfg.source_of("max_duration_s"))
    if cfg.min_query_count is not None:
        r.set("min_query_count", int(cfg.min_query_count), cfg.source_of("min_query_count"))
    if cfg.performance_sample_count is not None:
        r.set("performance_sample_count_override", int(cfg.performance_sample_count),
              cfg.source_of("performance_sample_count"))
    if cfg.seeds is not None:
        for attr, seed in zip(("qsl_rng_seed", "sample_index_rng_seed", "schedule_rng_seed"), cfg.seeds):
            r.set(attr, int(seed), cfg.source_of("seeds"))
    effective = tuple(Setting(a, _plain(getattr(ts, a)), r.sources[a]) for a in TEST_SETTINGS_ATTRS)
    return LoadGenSettings(ts, effective)


def trace_by_default(cfg: LoadGenConfig, settings: LoadGenSettings) -> tuple[bool, str]:
    """Whether this test writes LoadGen's trace, and why (one phrase for run.json).

    ``cfg.trace`` True/False decides. Otherwise (None) only a performance test writes it, and only when
    ``TRACE_COST_S_PER_SAMPLE`` x the planned samples/s is under ``TRACE_MAX_COST`` (1%): at most 500
    samples/s (a SingleStream latency of 2 ms or more).
    """
    if cfg.trace is not None:
        return cfg.trace, "--trace" if cfg.trace else "--no-trace"
    if cfg.mode != "performance":
        return False, "accuracy mode"
    rate = settings.expected_samples_per_second(cfg.scenario)
    cost = rate * TRACE_COST_S_PER_SAMPLE
    verdict = cost < TRACE_MAX_COST
    return verdict, (f"{rate:,.1f} planned samples/s: trace costs about {cost:.2%} of the throughput "
                     f"({'under' if verdict else 'not under'} {TRACE_MAX_COST:.0%}; --trace/--no-trace decide)")


def build_log_settings(outdir: Path, trace: bool = False) -> lg.LogSettings:
    """LogSettings writing mlperf_log_{summary,detail,accuracy}.txt/json (and the trace if asked) to ``outdir``."""
    ls = lg.LogSettings()
    ls.log_output.outdir = str(outdir)
    ls.log_output.copy_summary_to_stdout = False
    ls.enable_trace = trace
    return ls
