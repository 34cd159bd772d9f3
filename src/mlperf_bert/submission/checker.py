"""Our submission checker: the MLPerf v1.0 checker's rules for BERT, every failure reported with its file.

What is checked (docs/submission.md; MLPerf v1.0 ``tools/submission/submission-checker.py`` and
``truncate_accuracy_log.py``):

- layout: ``<division>/<submitter>/{systems,measurements,results,compliance,code}``; systems JSON with
  every v1.0 field, matching submitter and division, valid status and system type; the scenarios the
  system type requires; measurements (mlperf.conf, user.conf, README.md, implementation JSON with five
  fields) and a code folder.
- accuracy: summary, detail, accuracy.txt and mlperf_log_accuracy.json present; F1 line >= target;
  ``hash=`` line; log <= 10 KiB; with the full log at hand, its sha256 equals the hash and the submitted
  file is its head and tail; no ERROR in the detail log; the whole dev set (10,833 samples) was run.
- performance (``run_1``): VALID; the rules' seeds; min duration 600 s; min query count (v1.0: Server
  270,336, SingleStream 1,024) and Offline samples per query (v1.0: 24,576); performance_sample_count
  >= 10,833; Server 99th percentile <= 130 ms; no ERROR lines.
- compliance TEST01 (audit settings, verify_accuracy/verify_performance "TEST PASS", or the F1 fallback
  within tolerance) and TEST05 (its seeds, "TEST PASS").

Rules: ``v1.0`` (default) and ``current`` (LoadGen 6.x built-in seeds and minimums) reject on any
violation. ``quick`` accepts the short development runs of ``--rules quick``: everything that is only
wrong because the run was short (duration, counts, VALID, v1.0 seeds, a partial data set, a model other
than the official one) is reported as *waived*, everything else still fails - a seed that is neither
LoadGen's built-in nor the v1.0 one, a missing file, an untruncated log, a hash mismatch, an ERROR line,
F1 below target.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from mlperf_bert.config import DEV_FEATURE_COUNT
from mlperf_bert.errors import DataError
from mlperf_bert.logs.parse import DetailLog, perf_result, read_detail_log
from mlperf_bert.loadgen.settings import SERVER_TARGET_LATENCY_NS, V1_0_SEEDS
from mlperf_bert.logs.truncate import MAX_ACCURACY_LOG_SIZE, read_hash, verify_truncated
from mlperf_bert.submission.benchmark import (ACCURACY_FRACTION, BENCHMARKS, OFFICIAL_BERT_LARGE,
                                              TEST01_F1_TOLERANCE, AccuracyTarget)
from mlperf_bert.submission.system import (ALL_SYSTEM_FIELDS, DIVISIONS, IMPLEMENTATION_FIELDS, VALID_STATUS,
                                           VALID_SYSTEM_TYPES)

CHECK_RULES = ("v1.0", "current", "quick")
#: LoadGen 6.x built-in mlperf.conf seeds (qsl, sample_index, schedule), docs/loadgen.md#built-in-settings; ``quick``
#: and ``current`` runs use them.
LOADGEN_BUILTIN_SEEDS = (2085463073848966840, 2747215439041700203, 16159082839903944936)
#: TEST05 seeds (docs/submission.md#test05).
TEST05_SEEDS = (313588358309856706, 471397156132239067, 413914573387865862)
#: TEST01 audit settings (docs/submission.md#test01).
TEST01_SAMPLING_TARGET = 4096
TEST01_RNG_SEED = 720381539243781796
SEED_KEYS = ("effective_qsl_rng_seed", "effective_sample_index_rng_seed", "effective_schedule_rng_seed")

REQUIRED_ACC_FILES = ("mlperf_log_summary.txt", "mlperf_log_detail.txt", "accuracy.txt", "mlperf_log_accuracy.json")
REQUIRED_PERF_FILES = ("mlperf_log_summary.txt", "mlperf_log_detail.txt")
OPTIONAL_PERF_FILES = ("mlperf_log_trace.json", "mlperf_log_accuracy.json")
REQUIRED_MEASURE_FILES = ("mlperf.conf", "user.conf", "README.md")
#: v1.0 checker: F1 line of accuracy.txt.
F1_PATTERN = re.compile(r'^{"exact_match":\s*[\d.]+,\s*"f1":\s*([\d.]+)}')
#: Scenarios each system type requires / allows for bert-99 and bert-99.9 (v1.0 checker tables).
REQUIRED_SCENARIOS = {
    "datacenter": {"bert-99": {"Offline"}, "bert-99.9": {"Offline"}},
    "edge": {"bert-99": {"SingleStream", "Offline"}},
    "datacenter,edge": {"bert-99": {"SingleStream", "Offline"}, "bert-99.9": {"Offline"}},
}
OPTIONAL_SCENARIOS = {
    "datacenter": {"bert-99": {"Server"}, "bert-99.9": {"Server"}},
    "edge": {"bert-99": set()},
    "datacenter,edge": {"bert-99": {"Server"}, "bert-99.9": {"Server"}},
}


@dataclass(frozen=True)
class RuleSet:
    """Numbers a performance run must meet.

    Attributes:
        name: ``v1.0`` or ``current``.
        seeds: (qsl, sample_index, schedule).
        min_duration_ms: minimum duration, every scenario.
        min_query_count: scenario -> LoadGen ``effective_min_query_count`` at least this (0 = no rule).
        offline_min_samples: Offline ``effective_samples_per_query`` at least this.
        performance_sample_count: ``effective_performance_sample_count`` at least this.
        server_latency_ns: Server 99th percentile bound.
    """

    name: str
    seeds: tuple[int, int, int]
    min_duration_ms: int
    min_query_count: dict
    offline_min_samples: int
    performance_sample_count: int = DEV_FEATURE_COUNT
    server_latency_ns: int = SERVER_TARGET_LATENCY_NS


#: MLPerf Inference v1.0 (docs/submission.md#performance-checks; v1.0 checker ``min-queries``, ``OFFLINE_MIN_SPQ``).
V1_0_RULES = RuleSet("v1.0", V1_0_SEEDS, 600_000,
                     {"Offline": 1, "Server": 270_336, "SingleStream": 1_024, "MultiStream": 270_336}, 24_576)
#: LoadGen 6.x built-in mlperf.conf for bert (docs/loadgen.md#built-in-settings): early stopping instead of Server
#: counts.
CURRENT_RULES = RuleSet("current", LOADGEN_BUILTIN_SEEDS, 600_000,
                        {"Offline": 1, "Server": 0, "SingleStream": 0, "MultiStream": 662}, DEV_FEATURE_COUNT)


@dataclass(frozen=True)
class Finding:
    """One check result.

    Attributes:
        level: ``fail`` (rejects the tree), ``waived`` (would fail a real submission; accepted under
            ``--rules quick``) or ``note``.
        path: the file or folder concerned, relative to the submission root.
        message: what is wrong and, where it helps, how to fix it.
    """

    level: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass
class ResultRow:
    """One benchmark/scenario of the tree: its metric, F1 and whether it passed."""

    system: str
    benchmark: str
    scenario: str
    metric: str = ""
    f1: float | None = None
    target: str = ""
    ok: bool = True


@dataclass
class CheckReport:
    """Everything the checker found.

    Attributes:
        root: the submission folder.
        rules: rules applied.
        findings: every finding, in check order.
        results: one row per results/<system>/<benchmark>/<scenario>.
    """

    root: Path
    rules: str
    findings: list[Finding] = field(default_factory=list)
    results: list[ResultRow] = field(default_factory=list)

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "fail"]

    @property
    def waived(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "waived"]

    @property
    def notes(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "note"]

    @property
    def passed(self) -> bool:
        return not self.failures and bool(self.results)


class _Collector:
    """Adds findings with paths relative to the root; ``rule`` violations are waived under quick."""

    def __init__(self, report: CheckReport) -> None:
        self.report = report
        self.quick = report.rules == "quick"

    def rel(self, path: Path) -> str:
        try:
            return str(Path(path).relative_to(self.report.root))
        except ValueError:
            return str(path)

    def fail(self, path: Path, message: str) -> None:
        self.report.findings.append(Finding("fail", self.rel(path), message))

    def rule(self, path: Path, message: str) -> None:
        """A real-submission rule a quick run cannot meet."""
        self.report.findings.append(Finding("waived" if self.quick else "fail", self.rel(path), message))

    def note(self, path: Path, message: str) -> None:
        self.report.findings.append(Finding("note", self.rel(path), message))


def check_rules(name: str) -> str:
    from mlperf_bert.errors import ConfigError

    if name not in CHECK_RULES:
        raise ConfigError(f"unknown rules {name!r} for check; choose one of: {', '.join(CHECK_RULES)}")
    return name


def _list_dirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir()) if path.is_dir() else []


def _detail(c: _Collector, path: Path) -> DetailLog | None:
    try:
        return read_detail_log(path)
    except DataError as exc:
        c.fail(path, str(exc).replace(str(path), "").strip(" :;") or "unreadable detail log")
        return None


def _check_errors(c: _Collector, path: Path, detail: DetailLog) -> None:
    for err in detail.errors:
        c.fail(path, f"LoadGen logged an ERROR: {str(err)[:200]}")


def _check_seeds(c: _Collector, path: Path, detail: DetailLog, rules: str, expected: tuple | None = None,
                 what: str = "") -> None:
    seeds = tuple(detail.get(k) for k in SEED_KEYS)
    if expected is not None:
        if seeds != tuple(expected):
            c.fail(path, f"{what} seeds (qsl, sample_index, schedule) are {seeds}, must be {tuple(expected)}")
        return
    if rules == "quick":
        if seeds == V1_0_SEEDS:
            return
        if seeds == LOADGEN_BUILTIN_SEEDS:
            c.rule(path, f"seeds are LoadGen's built-in ones; v1.0 needs {V1_0_SEEDS} (--rules v1.0)")
            return
        c.fail(path, f"seeds {seeds} are neither LoadGen's built-in {LOADGEN_BUILTIN_SEEDS} nor the v1.0 "
                     f"{V1_0_SEEDS}; the run's settings were changed by hand")
        return
    want = V1_0_RULES.seeds if rules == "v1.0" else CURRENT_RULES.seeds
    if seeds != want:
        c.fail(path, f"seeds (qsl, sample_index, schedule) are {seeds}, {rules} rules need {want} "
                     f"(run with --rules {rules})")


def performance_findings(detail: DetailLog, rules: str, path: Path, root: Path | None = None,
                         seeds: tuple | None = None) -> list[Finding]:
    """Validity findings for one performance detail log (also used by find-peak on its confirming run).

    Args:
        detail: the parsed ``mlperf_log_detail.txt``.
        rules: ``v1.0``, ``current`` or ``quick`` (quick: checked against v1.0, short-run items waived).
        path: the log's path (for messages).
        root: paths are reported relative to this folder.
        seeds: required seeds instead of the rules' (TEST05).
    """
    report = CheckReport(root=Path(root) if root else Path(path).parent, rules=rules)
    c = _Collector(report)
    _performance_checks(c, path, detail, rules, seeds)
    return report.findings


def _performance_checks(c: _Collector, path: Path, d: DetailLog, rules: str, seeds: tuple | None = None) -> None:
    rs = CURRENT_RULES if rules == "current" else V1_0_RULES
    scenario = d.get("effective_scenario", "?")
    if d.get("effective_test_mode") not in (None, "PerformanceOnly"):
        c.fail(path, f"test mode is {d.get('effective_test_mode')}, must be PerformanceOnly")
    _check_errors(c, path, d)
    if d.get("result_validity") != "VALID":
        reasons = "; ".join(perf_result(d).invalid_reasons) or "no reason logged"
        c.rule(path, f"LoadGen result is {d.get('result_validity', 'missing')} ({reasons})")
    _check_seeds(c, path, d, rules, expected=seeds, what="TEST05" if seeds else "")
    psc = d.get("effective_performance_sample_count")
    if psc is None or psc < rs.performance_sample_count:
        c.rule(path, f"performance_sample_count is {psc}, must be >= {rs.performance_sample_count:,}")
    dur = d.get("effective_min_duration_ms") or 0
    if dur < rs.min_duration_ms:
        c.rule(path, f"min duration is {dur / 1000:g} s, must be >= {rs.min_duration_ms / 1000:g} s")
    need = rs.min_query_count.get(scenario, 0)
    mqc = d.get("effective_min_query_count") or 0
    if need and mqc < need:
        c.rule(path, f"min query count is {mqc:,}, {rs.name} rules need >= {need:,} for {scenario}")
    if scenario == "Offline":
        spq = d.get("effective_samples_per_query") or 0
        if spq < rs.offline_min_samples:
            c.rule(path, f"Offline query has {spq:,} samples, {rs.name} rules need >= {rs.offline_min_samples:,}")
    if scenario == "Server":
        p99 = d.get("result_99.00_percentile_latency_ns")
        if p99 is None:
            c.fail(path, "no 99th percentile latency in the detail log")
        elif p99 > rs.server_latency_ns:
            c.fail(path, f"Server 99th percentile latency {p99 / 1e6:.1f} ms > {rs.server_latency_ns / 1e6:g} ms")
        if (d.get("effective_target_latency_ns") or 0) > rs.server_latency_ns:
            c.fail(path, f"Server target latency {d.get('effective_target_latency_ns') / 1e6:g} ms is above "
                         f"{rs.server_latency_ns / 1e6:g} ms")


def _check_files(c: _Collector, folder: Path, required: tuple, optional: tuple = ()) -> bool:
    ok = True
    present = {p.name for p in folder.iterdir() if p.is_file()} if folder.is_dir() else set()
    for name in required:
        if name not in present:
            c.fail(folder / name, "required file is missing")
            ok = False
    extra = present - set(required) - set(optional)
    if extra:
        c.note(folder, f"unexpected files: {', '.join(sorted(extra))}")
    return ok


def _load_json(c: _Collector, path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        c.fail(path, "required file is missing")
        return None
    except (OSError, ValueError) as exc:
        c.fail(path, f"not valid JSON ({exc})")
        return None
    if not isinstance(data, dict):
        c.fail(path, "must hold a JSON object")
        return None
    return data


def _check_system(c: _Collector, path: Path, submitter: str, division: str) -> dict | None:
    desc = _load_json(c, path)
    if desc is None:
        return None
    for k in ALL_SYSTEM_FIELDS:
        if k not in desc:
            c.fail(path, f"field {k!r} is missing (add it with --system-json)")
    if str(desc.get("submitter", "")).lower() != submitter.lower():
        c.fail(path, f"submitter is {desc.get('submitter')!r}, the folder says {submitter!r}")
    if desc.get("division") != division:
        c.fail(path, f"division is {desc.get('division')!r}, the folder says {division!r}")
    if str(desc.get("status", "")).lower() not in VALID_STATUS:
        c.fail(path, f"status {desc.get('status')!r} is not one of {', '.join(VALID_STATUS)}")
    if desc.get("system_type") not in VALID_SYSTEM_TYPES:
        c.fail(path, f"system_type {desc.get('system_type')!r} is not one of {', '.join(VALID_SYSTEM_TYPES)}")
    return desc


def _check_measurements(c: _Collector, folder: Path, system: str, scenario: str, code_root: Path,
                        benchmark: str) -> dict | None:
    if not folder.is_dir():
        c.fail(folder, "measurements folder is missing")
        return None
    impls = sorted(p for p in folder.glob(f"{system}_*_{scenario}.json"))
    _check_files(c, folder, REQUIRED_MEASURE_FILES, tuple(p.name for p in impls))
    if not impls:
        c.fail(folder / f"{system}_<implementation>_{scenario}.json", "implementation JSON is missing")
        return None
    impl = _load_json(c, impls[0])
    if impl is None:
        return None
    for k in IMPLEMENTATION_FIELDS:
        if k not in impl:
            c.fail(impls[0], f"field {k!r} is missing")
    impl_name = impls[0].name[len(system) + 1:-len(f"_{scenario}.json")]
    if not (code_root / benchmark / impl_name).is_dir() and not (code_root / benchmark).is_dir():
        c.fail(code_root / benchmark / impl_name, "code folder is missing")
    return impl


def _target_for(benchmark: str, impl: dict | None, reference_f1: float | None) -> AccuracyTarget:
    from mlperf_bert.submission.benchmark import accuracy_target

    label = (impl or {}).get("starting_weights_filename")
    tgt = accuracy_target(benchmark, model=label, reference_f1=reference_f1) if label or reference_f1 else None
    if tgt is None:
        fr = ACCURACY_FRACTION[benchmark]
        tgt = AccuracyTarget(benchmark, OFFICIAL_BERT_LARGE.reference_f1, fr, OFFICIAL_BERT_LARGE.reference_f1 * fr,
                             OFFICIAL_BERT_LARGE.name, True, OFFICIAL_BERT_LARGE.source)
    return tgt


def _check_accuracy(c: _Collector, folder: Path, target: AccuracyTarget, full_log: Path | None) -> float | None:
    if not folder.is_dir():
        c.fail(folder, "accuracy folder is missing")
        return None
    _check_files(c, folder, REQUIRED_ACC_FILES, ())
    acc_txt = folder / "accuracy.txt"
    f1 = None
    if acc_txt.is_file():
        for line in acc_txt.read_text(encoding="utf-8", errors="replace").splitlines():
            m = F1_PATTERN.match(line)
            if m:
                f1 = float(m.group(1))
                break
        if f1 is None:
            c.fail(acc_txt, 'no evaluator line {"exact_match": ..., "f1": ...}')
        elif not target.met(f1):
            c.fail(acc_txt, f"F1 {f1:.3f} is below the target {target.describe()}")
    hash_val = read_hash(acc_txt)
    if acc_txt.is_file() and hash_val is None:
        c.fail(acc_txt, "no hash= line for mlperf_log_accuracy.json (truncate the log with 'mlperf-bert submission')")
    log = folder / "mlperf_log_accuracy.json"
    if log.is_file():
        size = log.stat().st_size
        if size > MAX_ACCURACY_LOG_SIZE:
            c.fail(log, f"is not truncated ({size:,} bytes > {MAX_ACCURACY_LOG_SIZE:,})")
        if full_log is not None and full_log.is_file():
            for problem in verify_truncated(log, full_log, hash_val):
                c.fail(log, problem)
        else:
            c.note(log, "hash not verified: the full accuracy log is not at hand (pass --full-logs)")
    detail_path = folder / "mlperf_log_detail.txt"
    if detail_path.is_file():
        d = _detail(c, detail_path)
        if d is not None:
            _check_errors(c, detail_path, d)
            if d.get("effective_test_mode") not in (None, "AccuracyOnly"):
                c.fail(detail_path, f"test mode is {d.get('effective_test_mode')}, must be AccuracyOnly")
            total = d.get("qsl_reported_total_count")
            if total is not None and total != DEV_FEATURE_COUNT:
                c.rule(detail_path, f"accuracy run covers {total:,} samples, not the whole dev set "
                                    f"({DEV_FEATURE_COUNT:,}); F1 is for a subset")
    return f1


def _verify_passed(path: Path) -> bool | None:
    if not path.is_file():
        return None
    return any("TEST PASS" in line for line in path.read_text(errors="replace").splitlines())


def _check_compliance(c: _Collector, folder: Path, rules: str, benchmark: str) -> bool:
    ok_before = len(c.report.failures)
    if not folder.is_dir():
        c.fail(folder, "compliance folder is missing (run 'mlperf-bert compliance TEST01' and 'TEST05')")
        return False
    for test in ("TEST01", "TEST05"):
        tdir = folder / test
        if not tdir.is_dir():
            c.fail(tdir, f"{test} folder is missing (run 'mlperf-bert compliance {test}')")
            continue
        vp = _verify_passed(tdir / "verify_performance.txt")
        if vp is None:
            c.fail(tdir / "verify_performance.txt", "required file is missing")
        elif not vp:
            c.fail(tdir / "verify_performance.txt", f"{test} performance check did not pass")
        perf = tdir / "performance" / "run_1"
        if not perf.is_dir():
            c.fail(perf, "performance/run_1 folder is missing")
        elif _check_files(c, perf, REQUIRED_PERF_FILES, OPTIONAL_PERF_FILES):
            dpath = perf / "mlperf_log_detail.txt"
            d = _detail(c, dpath)
            if d is not None:
                _check_errors(c, dpath, d)
                if test == "TEST05":
                    _check_seeds(c, dpath, d, rules, expected=TEST05_SEEDS, what="TEST05")
                else:
                    if d.get("effective_accuracy_log_sampling_target") != TEST01_SAMPLING_TARGET or \
                            d.get("effective_accuracy_log_rng_seed") != TEST01_RNG_SEED:
                        c.fail(dpath, f"TEST01 audit settings not applied: accuracy_log_sampling_target "
                                      f"{d.get('effective_accuracy_log_sampling_target')} (need "
                                      f"{TEST01_SAMPLING_TARGET}), accuracy_log_rng_seed "
                                      f"{d.get('effective_accuracy_log_rng_seed')} (need {TEST01_RNG_SEED})")
                if d.get("result_validity") != "VALID":
                    c.rule(dpath, f"{test} run is {d.get('result_validity')} under LoadGen's own checks")
        if test == "TEST01":
            _check_test01_accuracy(c, tdir, benchmark)
    return len(c.report.failures) == ok_before


def _check_test01_accuracy(c: _Collector, tdir: Path, benchmark: str) -> None:
    va = tdir / "verify_accuracy.txt"
    passed = _verify_passed(va)
    acc = tdir / "accuracy"
    if passed is None:
        c.fail(va, "required file is missing")
        return
    required = ("mlperf_log_accuracy.json", "accuracy.txt")
    if not passed:
        required += ("baseline_accuracy.txt", "compliance_accuracy.txt")
    if not _check_files(c, acc, required, ()):
        return
    if passed:
        return
    f1s = []
    for name in ("baseline_accuracy.txt", "compliance_accuracy.txt"):
        m = next((F1_PATTERN.match(line) for line in (acc / name).read_text().splitlines()
                  if F1_PATTERN.match(line)), None)
        f1s.append(float(m.group(1)) if m else None)
    base, comp = f1s
    if base is None or comp is None:
        c.fail(acc, "baseline/compliance accuracy.txt lack an F1 line")
        return
    tol = TEST01_F1_TOLERANCE[benchmark]
    if abs(comp - base) > tol * base:
        c.fail(acc, f"TEST01 outputs differ and F1 moved {comp - base:+.4f} (baseline {base:.4f}); allowed "
                    f"{tol * 100:g}% of the baseline for {benchmark}")
    else:
        c.note(acc, f"TEST01 outputs differ from accuracy mode but F1 is within {tol * 100:g}% "
                    f"({base:.4f} -> {comp:.4f})")


def check_submission(root: Path, rules: str = "v1.0", *, reference_f1: float | None = None,
                     full_logs: Path | None = None, skip_compliance: bool = False) -> CheckReport:
    """Check a submission tree.

    Args:
        root: the folder holding ``closed/`` and/or ``open/``.
        rules: ``v1.0`` (default), ``current`` or ``quick`` (see the module docstring).
        reference_f1: fp32 F1 of the model when it is not a known one (sets the accuracy target).
        full_logs: folder holding the untruncated accuracy logs at the same relative paths as the tree's
            accuracy folders (``mlperf-bert submission`` writes ``<root>.accuracy-logs``, the default).
        skip_compliance: do not require compliance folders.

    Returns:
        ``CheckReport``; ``passed`` is False when any finding has level ``fail`` or no result was found.
    """
    check_rules(rules)
    root = Path(root)
    report = CheckReport(root=root, rules=rules)
    c = _Collector(report)
    if full_logs is None:
        cand = root.with_name(root.name + ".accuracy-logs")
        full_logs = cand if cand.is_dir() else None
    divisions = [p for p in _list_dirs(root) if not p.name.startswith(".")]
    if not any(d.name in DIVISIONS for d in divisions):  # one line, not one per unrelated folder
        c.fail(root, "no division folder (closed/ or open/); is this a submission tree?")
        return report
    for div in divisions:
        if div.name not in DIVISIONS:
            c.fail(div, f"invalid division {div.name!r}; must be one of {', '.join(DIVISIONS)}")
            continue
        for sub in _list_dirs(div):
            _check_submitter(c, sub, div.name, rules, reference_f1, full_logs, skip_compliance)
    return report


def _check_submitter(c: _Collector, sub: Path, division: str, rules: str, reference_f1: float | None,
                     full_logs: Path | None, skip_compliance: bool) -> None:
    results = sub / "results"
    if not results.is_dir():
        c.fail(results, "results folder is missing")
        return
    for sys_dir in _list_dirs(results):
        system = sys_dir.name
        desc = _check_system(c, sub / "systems" / f"{system}.json", sub.name, division)
        system_type = (desc or {}).get("system_type")
        for bm_dir in _list_dirs(sys_dir):
            benchmark = bm_dir.name
            if benchmark not in BENCHMARKS:
                (c.fail if division == "closed" else c.note)(bm_dir, f"benchmark {benchmark!r} is not one of "
                                                                     f"{', '.join(BENCHMARKS)}")
                continue
            scenarios = {p.name for p in _list_dirs(bm_dir)}
            if system_type in REQUIRED_SCENARIOS and division == "closed":
                required = REQUIRED_SCENARIOS[system_type].get(benchmark)
                if required is None:
                    c.fail(bm_dir, f"{benchmark} is not a {system_type} benchmark")
                else:
                    for missing in sorted(required - scenarios):
                        c.fail(bm_dir / missing, f"scenario {missing} is required for a {system_type} system")
                    allowed = required | OPTIONAL_SCENARIOS[system_type].get(benchmark, set())
                    for extra in sorted(scenarios - allowed):
                        c.note(bm_dir / extra, f"scenario {extra} is neither required nor optional for "
                                               f"{system_type}; ignored by MLPerf")
            for sc_dir in _list_dirs(bm_dir):
                _check_scenario(c, sub, system, benchmark, sc_dir, rules, reference_f1, full_logs,
                                skip_compliance, division)


def _check_scenario(c: _Collector, sub: Path, system: str, benchmark: str, sc_dir: Path, rules: str,
                    reference_f1: float | None, full_logs: Path | None, skip_compliance: bool,
                    division: str) -> None:
    scenario = sc_dir.name
    n_fail = len(c.report.failures)
    row = ResultRow(system, benchmark, scenario)
    impl = _check_measurements(c, sub / "measurements" / system / benchmark / scenario, system, scenario,
                               sub / "code", benchmark)
    target = _target_for(benchmark, impl, reference_f1)
    row.target = target.describe()
    if division == "closed" and not target.official:
        label = (impl or {}).get("starting_weights_filename", "?")
        c.rule(sub / "measurements" / system / benchmark / scenario,
               f"closed division needs the official BERT-Large weights; starting weights are {label} "
               f"(target from {target.source})")
    acc_dir = sc_dir / "accuracy"
    full_log = None
    if full_logs is not None:
        full_log = Path(full_logs) / acc_dir.relative_to(c.report.root) / "mlperf_log_accuracy.json"
    row.f1 = _check_accuracy(c, acc_dir, target, full_log)
    perf = sc_dir / "performance" / "run_1"
    if not perf.is_dir():
        c.fail(perf, "performance/run_1 folder is missing")
    elif _check_files(c, perf, REQUIRED_PERF_FILES, OPTIONAL_PERF_FILES):
        dpath = perf / "mlperf_log_detail.txt"
        d = _detail(c, dpath)
        if d is not None:
            if d.get("effective_scenario") != scenario:
                c.fail(dpath, f"log is for scenario {d.get('effective_scenario')}, folder says {scenario}")
            _performance_checks(c, dpath, d, rules)
            p = perf_result(d)
            row.metric = f"{p.metric_value:,.2f} {p.metric_unit}"
    if not skip_compliance and division == "closed":
        _check_compliance(c, sub / "compliance" / system / benchmark / scenario, rules, benchmark)
    row.ok = len(c.report.failures) == n_fail
    c.report.results.append(row)
