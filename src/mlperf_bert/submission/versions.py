"""What the official MLPerf Inference submission checker requires of BERT, for the two versions we write.

``v1.0``: ``tools/submission/submission-checker.py`` at tag v1.0.1 of mlcommons/inference.
``current``: ``tools/submission/submission_checker/`` at its HEAD (version key v6.1).
Rules and their FAIL/LOG levels are described path by path in docs/submission.md; the tables here
are the numbers and names those rules use, shared by the tree writer (``tree.py``), the checker
(``checker.py``) and ``submit``.
"""

from __future__ import annotations

import re

from mlperf_bert.config import DEV_FEATURE_COUNT
from mlperf_bert.errors import ConfigError
# Rules a submission can be made under (the two versions, or quick development runs): the run's own presets.
from mlperf_bert.loadgen.settings import RULES, V1_0_SEEDS, check_rules  # noqa: F401 - re-exported
from mlperf_bert.logs.truncate import HASH_RE

#: Layouts (= official checker versions) a tree can be written in.
LAYOUTS = ("v1.0", "current")
#: Version key of the official checker each layout follows.
CHECKER_VERSION = {"v1.0": "v1.0.1", "current": "v6.1"}
#: LoadGen 6.x built-in mlperf.conf seeds (qsl, sample_index, schedule): what the v6.1 checker wants.
CURRENT_SEEDS = (2085463073848966840, 2747215439041700203, 16159082839903944936)
SEEDS = {"v1.0": tuple(V1_0_SEEDS), "current": CURRENT_SEEDS}

#: Required / optional scenarios per layout, system type and benchmark. A benchmark missing from a system
#: type's table is not allowed there (v1.0: bert-99.9 on edge is an "invalid model"; v6.1: bert is not in
#: the datacenter lists at all, and the official checker crashes on it).
REQUIRED_SCENARIOS = {
    "v1.0": {
        "datacenter": {"bert-99": ("Offline",), "bert-99.9": ("Offline",)},
        "edge": {"bert-99": ("SingleStream", "Offline")},
        "datacenter,edge": {"bert-99": ("SingleStream", "Offline"), "bert-99.9": ("Offline",)},
    },
    "current": {
        "edge": {"bert-99": ("SingleStream", "Offline"), "bert-99.9": ("SingleStream", "Offline")},
        "datacenter,edge": {"bert-99": ("SingleStream", "Offline"), "bert-99.9": ("SingleStream", "Offline")},
    },
}
OPTIONAL_SCENARIOS = {
    "v1.0": {
        "datacenter": {"bert-99": ("Server",), "bert-99.9": ("Server",)},
        "edge": {"bert-99": ()},
        "datacenter,edge": {"bert-99": ("Server",), "bert-99.9": ("Server",)},
    },
    "current": {"edge": {"bert-99": (), "bert-99.9": ()}, "datacenter,edge": {"bert-99": (), "bert-99.9": ()}},
}
#: Compliance tests each version looks at (v6.1: TEST01 only; TEST05 appears nowhere in it).
COMPLIANCE_TESTS = {"v1.0": ("TEST01", "TEST05"), "current": ("TEST01",)}

#: Minimum ``effective_min_duration_ms`` (both versions).
MIN_DURATION_MS = 600_000
#: Minimum ``effective_performance_sample_count`` (both versions).
PERFORMANCE_SAMPLE_COUNT = DEV_FEATURE_COUNT
#: Offline ``effective_samples_per_query`` minimum (v1.0 ``OFFLINE_MIN_SPQ``; v6.1
#: ``OFFLINE_MIN_SPQ_SINCE_V4``, closed division only).
OFFLINE_MIN_SPQ = {"v1.0": 24_576, "current": DEV_FEATURE_COUNT}
#: ``effective_min_query_count`` minimums (v1.0 ``min-queries``; v6.1: Offline 1, SingleStream uses early
#: stopping instead).
MIN_QUERY_COUNT = {"v1.0": {"SingleStream": 1_024, "Server": 270_336}, "current": {"Offline": 1}}
#: v1.0 Server latency bound (``result_99.00_percentile_latency_ns``).
SERVER_P99_NS = 130_000_000
#: v6.1 dataset check: ``effective_accuracy_sample_count`` (or ``qsl_reported_total_count``).
ACCURACY_SAMPLE_COUNT = DEV_FEATURE_COUNT
#: F1 line of accuracy.txt (v6.1 ``ACC_PATTERN["F1"]`` accepts single quotes; v1.0 double quotes only).
F1_PATTERN = {
    "v1.0": re.compile(r'^{"exact_match":\s*[\d\.]+,\s*"f1":\s*([\d\.]+)}'),
    "current": re.compile(r"^{[\"\']exact_match[\"\']\:\s*[\d\.]+,\s*[\"\']f1[\"\']\:\s*([\d\.]+)}"),
}
#: Hash line of accuracy.txt (both versions): the one the truncation writes and reads.
HASH_PATTERN = HASH_RE
#: v6.1 TEST01: files of ``TEST01/accuracy`` when verify_accuracy.txt does not say TEST PASS, and the
#: extras tolerated there and in ``TEST01/performance/run_1``.
TEST01_ACCURACY_FILES = ("mlperf_log_accuracy.json", "accuracy.txt", "baseline_accuracy.txt",
                         "compliance_accuracy.txt")
TEST01_TOLERATED_EXTRAS = ("mlperf_log_trace.json", "results.json", ".gitkeep")
TEST01_PERFORMANCE_FILES = ("mlperf_log_summary.txt", "mlperf_log_detail.txt")
TEST01_PERFORMANCE_EXTRAS = ("mlperf_log_accuracy.json",) + TEST01_TOLERATED_EXTRAS
#: v6.1 inferred results allowed for edge systems: (log scenario, folder scenario).
INFERRED_ALLOWED = {("SingleStream", "MultiStream"), ("MultiStream", "Offline"), ("SingleStream", "Offline")}


def check_layout(name: str, flag: str = "--layout") -> str:
    if name not in LAYOUTS:
        raise ConfigError(f"{flag} must be one of {', '.join(LAYOUTS)}, got {name!r}")
    return name


def canonical_system_type(system_type: str) -> str:
    """``edge,datacenter`` -> ``datacenter,edge``; others unchanged."""
    return "datacenter,edge" if system_type == "edge,datacenter" else system_type


def default_system_type(layout: str, scenarios=()) -> str:
    """The system type a tree gets when none is given.

    ``current``: ``edge`` (BERT is an edge benchmark under v6.1; there is no datacenter entry for it).
    ``v1.0``: from the scenarios present: ``datacenter,edge`` with Server and SingleStream, ``edge`` with
    SingleStream, else ``datacenter``.
    """
    if layout == "current":
        return "edge"
    scenarios = set(scenarios)
    if "Server" in scenarios and "SingleStream" in scenarios:
        return "datacenter,edge"
    if "SingleStream" in scenarios:
        return "edge"
    return "datacenter"


def required_scenarios(layout: str, system_type: str, benchmark: str) -> tuple[str, ...] | None:
    """Scenarios ``benchmark`` must have on a ``system_type`` system; None when it is not allowed there."""
    return REQUIRED_SCENARIOS[layout].get(canonical_system_type(system_type), {}).get(benchmark)


def optional_scenarios(layout: str, system_type: str, benchmark: str) -> tuple[str, ...]:
    return OPTIONAL_SCENARIOS[layout].get(canonical_system_type(system_type), {}).get(benchmark, ())


def layout_of_runs(rules: str, seeds) -> str:
    """The layout for runs made under ``rules``: the version itself, or for ``quick`` runs ``v1.0`` when
    they used the v1.0 seeds and ``current`` otherwise."""
    if rules in LAYOUTS:
        return rules
    return "v1.0" if seeds is not None and tuple(seeds) == SEEDS["v1.0"] else "current"
