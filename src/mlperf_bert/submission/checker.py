"""Our submission checker: the official MLPerf checker's BERT rules for one version, each finding with its file.

Two versions are mirrored (docs/submission.md, path by path): ``v1.0`` (``submission-checker.py`` at tag
v1.0.1, with the v1.0 layout) and ``current`` (``submission_checker/`` at HEAD, version key v6.1, with the
current layout). Each finding has the level the official checker gives it:

- ``fail``: the official checker marks the result NoResults (or crashes) and exits 1;
- ``log``: it prints an ERROR line but the exit code does not change;
- ``note``: not an official rule (our extra remarks, or what the official checker silently ignores).

Checks beyond the official ones, kept because they catch a broken tree: the ``hash=`` line against the full
accuracy log (when ``<tree>.accuracy-logs`` is at hand), the truncated log being the head and tail of the
full one, test modes, the TEST01 audit settings. They are marked "(mlperf-bert)" in their messages.

``quick`` checks a tree of ``--rules quick`` development runs in its own layout with that version's rules,
but what only a short run on a small model cannot meet (duration, counts, performance_sample_count, the
dataset size, early stopping, LoadGen's VALID, the compliance performance bound on a shared host, the
system fields a human must fill in, the official model) is ``waived`` instead of ``fail``; the accuracy
target is the model's own (99% / 99.9% of its fp32 F1). Everything else still fails.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from mlperf_bert.errors import ConfigError, DataError
from mlperf_bert.fileio import read_json
from mlperf_bert.logs.parse import DetailLog, perf_result
from mlperf_bert.loadgen.settings import check_rules
from mlperf_bert.logs.truncate import MAX_ACCURACY_LOG_SIZE, read_hash, verify_truncated
from mlperf_bert.accuracy.targets import (ACCURACY_FRACTION, BENCHMARKS, OFFICIAL_BERT_LARGE,
                                              TEST01_F1_TOLERANCE, AccuracyTarget, accuracy_target)
from mlperf_bert.submission.system import (IMPLEMENTATION_FIELDS, INT_FIELDS, MEANINGFUL_FIELDS, SYSTEM_FIELDS,
                                           V6_1_EXTRA_FIELDS, VALID_STATUS, VALID_SYSTEM_TYPES)
from mlperf_bert.submission.versions import (ACCURACY_SAMPLE_COUNT, CHECKER_VERSION, COMPLIANCE_TESTS,
                                             F1_PATTERN, HASH_PATTERN, INFERRED_ALLOWED, LAYOUTS, MIN_DURATION_MS,
                                             MIN_QUERY_COUNT, OFFLINE_MIN_SPQ, PERFORMANCE_SAMPLE_COUNT, SEEDS,
                                             SERVER_P99_NS, TEST01_ACCURACY_FILES, TEST01_PERFORMANCE_EXTRAS,
                                             TEST01_PERFORMANCE_FILES, TEST01_TOLERATED_EXTRAS, layout_of_runs,
                                             optional_scenarios, required_scenarios)

#: LoadGen 6.x built-in mlperf.conf seeds (qsl, sample_index, schedule): ``current`` and ``quick`` runs.
LOADGEN_BUILTIN_SEEDS = SEEDS["current"]
#: TEST05 seeds (MLPerf compliance TEST05 audit.config).
TEST05_SEEDS = (313588358309856706, 471397156132239067, 413914573387865862)
#: TEST01 audit settings (MLPerf compliance TEST01 audit.config).
TEST01_SAMPLING_TARGET = 4096
TEST01_RNG_SEED = 720381539243781796
SEED_KEYS = ("effective_qsl_rng_seed", "effective_sample_index_rng_seed", "effective_schedule_rng_seed")
MLLOG_PREFIX = ":::MLLOG"
#: Rule families, one per kind of check (tests and summaries group findings by them).
FAMILIES = ("layout", "system", "scenarios", "benchmark", "measurements", "log-format", "seeds", "duration",
            "counts", "early-stopping", "validity", "latency", "error", "accuracy-target", "accuracy-format",
            "hash", "truncation", "dataset", "compliance", "compliance-performance", "model")


@dataclass(frozen=True)
class Finding:
    """One check result.

    Attributes:
        level: ``fail``, ``log``, ``waived`` (a ``fail`` accepted under ``--rules quick``) or ``note``.
        path: the file or folder concerned, relative to the submission root.
        message: what is wrong and, where it helps, how to fix it.
        family: the rule family (``FAMILIES``).
    """

    level: str
    path: str
    message: str
    family: str = ""

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
        rules: rules applied (``v1.0``, ``current``, ``quick``).
        layout: the layout / official checker version mirrored (``v1.0`` or ``current``).
        findings: every finding, in check order.
        results: one row per results/<system>/<benchmark>/<scenario>.
    """

    root: Path
    rules: str
    layout: str = "current"
    findings: list[Finding] = field(default_factory=list)
    results: list[ResultRow] = field(default_factory=list)

    def _level(self, level: str) -> list[Finding]:
        return [f for f in self.findings if f.level == level]

    @property
    def failures(self) -> list[Finding]:
        return self._level("fail")

    @property
    def logs(self) -> list[Finding]:
        return self._level("log")

    @property
    def waived(self) -> list[Finding]:
        return self._level("waived")

    @property
    def notes(self) -> list[Finding]:
        return self._level("note")

    @property
    def passed(self) -> bool:
        return not self.failures and bool(self.results)


class _Collector:
    """Adds findings with paths relative to the root; ``short`` failures are waived under quick."""

    def __init__(self, report: CheckReport, quick: bool) -> None:
        self.report = report
        self.quick = quick
        self.v = report.layout

    def rel(self, path: Path) -> str:
        try:
            return str(Path(path).relative_to(self.report.root))
        except ValueError:
            return str(path)

    def add(self, path: Path, message: str, family: str, *, fail: bool = True, short: bool = False) -> None:
        """An official rule: FAIL when ``fail`` else LOG; ``short`` FAILs (what a quick run cannot meet) are
        waived under quick."""
        level = "fail" if fail else "log"
        if fail and short and self.quick:
            level = "waived"
        self.report.findings.append(Finding(level, self.rel(path), message, family))

    def note(self, path: Path, message: str, family: str = "") -> None:
        self.report.findings.append(Finding("note", self.rel(path), message, family))

    def failed_since(self, n: int) -> bool:
        return len(self.report.failures) > n


def _list_dirs(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_dir()) if path.is_dir() else []


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.is_file()} if folder.is_dir() else set()


def detect_layout(root: Path) -> str:
    """``v1.0`` when the tree has ``measurements/`` or ``compliance/`` folders, else ``current``."""
    for sub in Path(root).glob("*/*"):
        if (sub / "measurements").is_dir() or (sub / "compliance").is_dir() or (sub / "code").is_dir():
            if not (sub / "src").is_dir() and not list((sub / "results").glob("*/*/*/measurements.json")):
                return "v1.0"
    return "current"


# -- logs ------------------------------------------------------------------------------------------
def parse_mllog(c: _Collector, path: Path) -> DetailLog | None:
    """Parse a LoadGen detail log the way the layout's checker does.

    v6.1 requires the first line to start with ``:::MLLOG`` and crashes on a line that is not JSON (FAIL);
    v1.0 skips such lines (note). ERROR entries are those with ``metadata.is_error``.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        c.add(path, "required file is missing", "layout")
        return None
    if c.v == "current" and (not lines or not lines[0].startswith(MLLOG_PREFIX)):
        c.add(path, "first line does not start with :::MLLOG (the v6.1 parser rejects the log)", "log-format")
        return None
    entries = []
    for n, line in enumerate(lines, 1):
        if not line.startswith(MLLOG_PREFIX):
            continue
        try:
            entries.append(json.loads(line[len(MLLOG_PREFIX):]))
        except ValueError:
            if c.v == "current":
                c.add(path, f"line {n} is not valid JSON (the v6.1 parser crashes on it)", "log-format")
                return None
            c.note(path, f"line {n} is not valid JSON; skipped", "log-format")
    log = DetailLog.from_entries(entries)
    if not log.values:
        c.add(path, "holds no :::MLLOG entries; is it a LoadGen detail log?", "log-format")
        return None
    return log


def _seed_check(c: _Collector, path: Path, d: DetailLog, expected: tuple | None, what: str = "") -> None:
    seeds = tuple(d.get(k) for k in SEED_KEYS)
    want = tuple(expected) if expected is not None else SEEDS[c.v]
    if seeds != want:
        hint = "" if expected is not None else f" (run with --rules {c.v}" + (
            ", or --rules quick with the seeds of that layout)" if c.quick else ")")
        c.add(path, f"{what}seeds (qsl, sample_index, schedule) are {seeds}, {CHECKER_VERSION[c.v]} needs {want}"
                    + hint, "seeds", fail=c.v == "current")


def _performance_checks(c: _Collector, path: Path, d: DetailLog, division: str = "closed",
                        seeds: tuple | None = None, what: str = "") -> None:
    """The rules of docs/submission.md#performance-checks on one performance detail log."""
    v = c.v
    scenario = d.get("effective_scenario", "?")
    if d.get("effective_test_mode") not in (None, "PerformanceOnly"):
        c.add(path, f"test mode is {d.get('effective_test_mode')}, must be PerformanceOnly (mlperf-bert)", "validity")
    if d.errors:
        first = str(d.errors[0])[:200]
        if v == "v1.0":
            c.add(path, f"LoadGen logged {len(d.errors)} ERROR(s): {first}", "error")
        else:
            c.note(path, f"LoadGen logged {len(d.errors)} ERROR(s): {first} (v6.1 flags them only with "
                         "--submission-exceptions; aim for zero)", "error")
    _seed_check(c, path, d, seeds, what)
    psc = d.get("effective_performance_sample_count")
    if psc is None or psc < PERFORMANCE_SAMPLE_COUNT:
        c.add(path, f"performance_sample_count is {psc}, must be >= {PERFORMANCE_SAMPLE_COUNT:,}", "counts",
              short=True)
    dur = d.get("effective_min_duration_ms") or 0
    if dur < MIN_DURATION_MS:
        c.add(path, f"min duration is {dur / 1000:g} s, must be >= {MIN_DURATION_MS / 1000:g} s", "duration",
              fail=v == "current", short=True)
    need = MIN_QUERY_COUNT[v].get(scenario, 0)
    mqc = d.get("effective_min_query_count") or 0
    if need and mqc < need:
        c.add(path, f"min query count is {mqc:,}, {CHECKER_VERSION[v]} needs >= {need:,} for {scenario}", "counts",
              fail=v == "current", short=True)
    if scenario == "Offline" and (v == "v1.0" or division == "closed"):
        spq = d.get("effective_samples_per_query") or 0
        if spq < OFFLINE_MIN_SPQ[v]:
            c.add(path, f"Offline query has {spq:,} samples, {CHECKER_VERSION[v]} needs >= {OFFLINE_MIN_SPQ[v]:,}",
                  "counts", fail=v == "current", short=True)
    if scenario == "SingleStream" and v == "current" and d.get("early_stopping_met") is not True:
        c.add(path, f"early stopping not met ({d.get('early_stopping_result', 'no early_stopping_result')})",
              "early-stopping", short=True)
    if scenario == "Server":
        p99 = d.get("result_99.00_percentile_latency_ns")
        if p99 is None:
            c.add(path, "no 99th percentile latency in the detail log", "latency", fail=v == "current")
        elif p99 > SERVER_P99_NS:
            c.add(path, f"Server 99th percentile latency {p99 / 1e6:.1f} ms > {SERVER_P99_NS / 1e6:g} ms", "latency",
                  fail=v == "current")
        if (d.get("effective_target_latency_ns") or 0) > SERVER_P99_NS:
            c.add(path, f"Server target latency {d.get('effective_target_latency_ns') / 1e6:g} ms is above "
                        f"{SERVER_P99_NS / 1e6:g} ms", "latency", fail=v == "current")
    if d.get("result_validity") != "VALID":
        reasons = "; ".join(perf_result(d).invalid_reasons) or "no reason logged"
        msg = f"LoadGen result is {d.get('result_validity', 'missing')} ({reasons})"
        if v == "v1.0":
            c.add(path, msg, "validity", short=True)
        else:
            c.note(path, msg + "; v6.1 reads result_validity but never fails on it", "validity")


def performance_findings(detail: DetailLog, rules: str, path: Path, root: Path | None = None,
                         seeds: tuple | None = None, layout: str | None = None) -> list[Finding]:
    """Findings for one performance detail log (also used by find-peak and the HTML report).

    Args:
        detail: the parsed ``mlperf_log_detail.txt``.
        rules: ``v1.0``, ``current`` or ``quick``.
        path: the log's path (for messages).
        root: paths are reported relative to this folder.
        seeds: required seeds instead of the version's (TEST05).
        layout: the version for quick (default: v1.0 when the log has the v1.0 seeds, else current).
    """
    check_rules(rules)
    if layout is None:
        layout = rules if rules in LAYOUTS else layout_of_runs("quick", tuple(detail.get(k) for k in SEED_KEYS))
    report = CheckReport(root=Path(root) if root else Path(path).parent, rules=rules, layout=layout)
    _performance_checks(_Collector(report, rules == "quick"), Path(path), detail, seeds=seeds)
    return report.findings


# -- system description ----------------------------------------------------------------------------
def _load_json(c: _Collector, path: Path, family: str) -> dict | None:
    crash = " (the v6.1 checker crashes)" if c.v == "current" else ""
    if not Path(path).is_file():
        c.add(path, "required file is missing" + crash, family)
        return None
    try:
        data = read_json(path, "JSON file")
    except DataError as exc:
        c.add(path, str(exc).removeprefix(f"{path}: JSON file ") + crash, family)
        return None
    if not isinstance(data, dict):
        c.add(path, "must hold a JSON object", family)
        return None
    return data


def _check_system(c: _Collector, path: Path, submitter: str, division: str) -> dict | None:
    desc = _load_json(c, path, "system")
    if desc is None:
        return None
    v = c.v
    for k in SYSTEM_FIELDS[v]:
        if k not in desc:
            c.add(path, f"field {k!r} is missing (add it with --system-json)", "system")
        elif v == "current" and k in MEANINGFUL_FIELDS and not desc[k]:
            c.add(path, f"field {k!r} is empty; v6.1 needs a meaningful value (add it with --system-json)", "system",
                  short=True)
    if v == "v1.0":
        for k in V6_1_EXTRA_FIELDS:
            if k in desc:
                c.note(path, f"field {k!r} is unknown to v1.0 (the checker warns)", "system")
    else:
        for k in INT_FIELDS:
            if k in desc:
                try:
                    int(desc[k])
                except (TypeError, ValueError):
                    c.add(path, f"field {k!r} is {desc[k]!r}; v6.1's results.py applies int() to it and crashes",
                          "system")
        if "is_network" in desc:
            c.add(path, f"is_network is {desc['is_network']!r}: a boolean breaks v6.1's .lower() and any string makes "
                        "13 network fields required (closed needs it absent); leave it out", "system")
    if str(desc.get("submitter", "")).lower() != submitter.lower():
        c.add(path, f"submitter is {desc.get('submitter')!r}, the folder says {submitter!r}", "system")
    got_div = str(desc.get("division", ""))
    if (got_div.lower() if v == "current" else got_div) != (division.lower() if v == "current" else division):
        c.add(path, f"division is {desc.get('division')!r}, the folder says {division!r}", "system")
    if str(desc.get("status", "")).lower() not in VALID_STATUS:
        c.add(path, f"status {desc.get('status')!r} is not one of {', '.join(VALID_STATUS)}", "system")
    st = desc.get("system_type")
    if st not in VALID_SYSTEM_TYPES:
        c.add(path, f"system_type {st!r} is not one of {', '.join(VALID_SYSTEM_TYPES)}", "system")
    return desc


# -- accuracy --------------------------------------------------------------------------------------
def _official_target(benchmark: str) -> AccuracyTarget:
    fr = ACCURACY_FRACTION[benchmark]
    return AccuracyTarget(benchmark, OFFICIAL_BERT_LARGE.reference_f1, fr, OFFICIAL_BERT_LARGE.reference_f1 * fr,
                          OFFICIAL_BERT_LARGE.name, True, OFFICIAL_BERT_LARGE.source)


def _target_for(c: _Collector, benchmark: str, impl: dict | None, reference_f1: float | None) -> AccuracyTarget:
    """The official target (v1.0/current), or under quick the model's own (its fp32 F1 x 0.99/0.999)."""
    if not c.quick:
        return _official_target(benchmark)
    label = (impl or {}).get("starting_weights_filename")
    tgt = accuracy_target(benchmark, model=label, reference_f1=reference_f1) if label or reference_f1 else None
    return tgt or _official_target(benchmark)


def read_f1(text: str, layout: str) -> float | None:
    """The first F1 of an accuracy.txt under ``layout``'s pattern, or None."""
    for line in text.splitlines():
        m = F1_PATTERN[layout].match(line)
        if m:
            return float(m.group(1))
    return None


def _accuracy_txt(c: _Collector, acc_txt: Path, target: AccuracyTarget, division: str) -> float | None:
    """F1 and hash lines of accuracy.txt, read as the layout's checker reads them."""
    lines = acc_txt.read_text(encoding="utf-8", errors="replace").splitlines()
    pattern, closed = F1_PATTERN[c.v], division == "closed"
    f1 = hash_val = None
    below = []
    for line in lines:
        m = pattern.match(line)
        if m:
            val = float(m.group(1))
            if f1 is None:
                f1 = val
            if not target.met(val):
                below.append(val)
        m = HASH_PATTERN.match(line)
        if m:
            hash_val = m.group(1)
        if f1 is not None and hash_val:
            break  # both checkers stop reading here
    if c.v == "v1.0" and division != "closed":
        return f1  # v1.0 open: accuracy.txt only has to exist
    quote = "double-quoted " if c.v == "v1.0" else ""
    if f1 is None:
        c.add(acc_txt, f"no {quote}evaluator line {{\"exact_match\": ..., \"f1\": ...}} that "
                       f"{CHECKER_VERSION[c.v]}'s pattern matches", "accuracy-format")
    elif closed and below:
        c.add(acc_txt, f"F1 {below[0]:.3f} is below the target {target.describe()}", "accuracy-target")
    if closed and hash_val is None:
        c.add(acc_txt, "no hash= line on its own line (truncate the log with 'mlperf-bert submission')", "hash")
    return f1


def _check_accuracy(c: _Collector, folder: Path, target: AccuracyTarget, full_log: Path | None,
                    division: str) -> float | None:
    if not folder.is_dir():
        c.add(folder, "accuracy folder is missing", "layout")
        return None
    present = _files(folder)
    f1 = None
    acc_txt = folder / "accuracy.txt"
    if "accuracy.txt" not in present:
        c.add(acc_txt, "required file is missing", "layout")
    else:
        f1 = _accuracy_txt(c, acc_txt, target, division)
    if "mlperf_log_summary.txt" not in present:
        if c.v == "v1.0":
            c.add(folder / "mlperf_log_summary.txt", "file is missing", "layout", fail=False)
        else:
            c.note(folder / "mlperf_log_summary.txt", "file is missing (v6.1 does not read it)", "layout")
    log = folder / "mlperf_log_accuracy.json"
    if "mlperf_log_accuracy.json" not in present:
        c.add(log, "required file is missing", "layout")
    else:
        size = log.stat().st_size
        if size > MAX_ACCURACY_LOG_SIZE:
            c.add(log, f"is not truncated ({size:,} bytes > {MAX_ACCURACY_LOG_SIZE:,})", "truncation")
        if full_log is not None and full_log.is_file():
            hash_val = read_hash(acc_txt)
            for problem in verify_truncated(log, full_log, hash_val):
                if hash_val is None and "no hash" in problem:
                    continue  # already reported
                c.add(log, problem + " (mlperf-bert)", "hash" if "sha256" in problem else "truncation")
        else:
            c.note(log, "hash not verified: the full accuracy log is not at hand (pass --full-logs)", "hash")
    detail_path = folder / "mlperf_log_detail.txt"
    if "mlperf_log_detail.txt" not in present:
        c.add(detail_path, "required file is missing" + (" (the v6.1 checker crashes)" if c.v == "current" else ""),
              "layout")
        return f1
    d = parse_mllog(c, detail_path)
    if d is None:
        return f1
    if d.errors:
        c.add(detail_path, f"LoadGen logged {len(d.errors)} ERROR(s): {str(d.errors[0])[:200]}", "error")
    if d.get("effective_test_mode") not in (None, "AccuracyOnly"):
        c.add(detail_path, f"test mode is {d.get('effective_test_mode')}, must be AccuracyOnly (mlperf-bert)",
              "validity")
    total = d.get("effective_accuracy_sample_count", d.get("qsl_reported_total_count"))
    if total != ACCURACY_SAMPLE_COUNT:
        msg = f"accuracy run covers {total} samples, not the whole dev set ({ACCURACY_SAMPLE_COUNT:,})"
        if c.v == "current":
            c.add(detail_path, msg, "dataset", short=True)
        else:
            c.note(detail_path, msg + "; v1.0 does not check it", "dataset")
    return f1


# -- compliance ------------------------------------------------------------------------------------
def _verify_lines(path: Path) -> list[str] | None:
    try:
        return path.read_text(errors="replace").splitlines()
    except OSError:
        return None


def _test01_f1_fallback(c: _Collector, acc: Path, benchmark: str, fail: bool) -> None:
    f1s = []
    for name in ("baseline_accuracy.txt", "compliance_accuracy.txt"):
        text = (acc / name).read_text(errors="replace") if (acc / name).is_file() else ""
        f1s.append(read_f1(text, c.v))
    base, comp = f1s
    if base is None or comp is None:
        c.add(acc, "baseline_accuracy.txt / compliance_accuracy.txt lack an F1 line", "compliance", fail=fail)
        return
    tol = TEST01_F1_TOLERANCE[benchmark]
    delta = abs(1 - base / comp) * 100 if comp else float("inf")
    if delta > tol * 100:
        c.add(acc, f"TEST01 outputs differ and F1 moved {comp - base:+.4f} (|1 - baseline/compliance| = {delta:.3f}%, "
                   f"allowed {tol * 100:g}% for {benchmark})", "compliance", fail=fail)
    else:
        c.note(acc, f"TEST01 outputs differ from accuracy mode but F1 is within {tol * 100:g}% ({base:.4f} -> "
                    f"{comp:.4f})", "compliance")


def _check_test01_current(c: _Collector, tdir: Path, benchmark: str, division: str) -> None:
    """v6.1 ``compliance_check.py`` on results/SYS/B/SC/TEST01 (all FAIL)."""
    if not tdir.is_dir():
        c.add(tdir, "TEST01 folder is missing (run 'mlperf-bert compliance TEST01')", "compliance")
        return
    va, vp = _verify_lines(tdir / "verify_accuracy.txt"), _verify_lines(tdir / "verify_performance.txt")
    perf = tdir / "performance" / "run_1"
    for name, lines in (("verify_accuracy.txt", va), ("verify_performance.txt", vp)):
        if lines is None:
            c.add(tdir / name, "required file is missing", "compliance")
    if not (perf / "mlperf_log_detail.txt").is_file():
        c.add(perf / "mlperf_log_detail.txt", "required file is missing", "compliance")
    if va is not None and not any(line.strip() == "TEST PASS" for line in va):
        acc = tdir / "accuracy"
        present = _files(acc)
        missing = [f for f in TEST01_ACCURACY_FILES if f not in present]
        extra = sorted(present - set(TEST01_ACCURACY_FILES) - set(TEST01_TOLERATED_EXTRAS))
        if missing or extra:
            c.add(acc, "verify_accuracy.txt has no 'TEST PASS' line, so TEST01/accuracy must hold exactly "
                       f"{', '.join(TEST01_ACCURACY_FILES)}" + (f"; missing {', '.join(missing)}" if missing else "")
                  + (f"; extra {', '.join(extra)}" if extra else ""), "compliance")
        else:
            _test01_f1_fallback(c, acc, benchmark, fail=True)
    if vp is not None and not any("TEST PASS" in line for line in vp):
        dev = next((line for line in vp if line.startswith("deviation")), "")
        c.add(tdir / "verify_performance.txt", f"TEST01 performance check did not pass{' (' + dev + ')' if dev else ''}",
              "compliance-performance", short=True)
    if perf.is_dir():
        present = _files(perf)
        missing = [f for f in TEST01_PERFORMANCE_FILES if f not in present]
        extra = sorted(present - set(TEST01_PERFORMANCE_FILES) - set(TEST01_PERFORMANCE_EXTRAS))
        if missing or extra:
            c.add(perf, f"must hold exactly {', '.join(TEST01_PERFORMANCE_FILES)}"
                        + (f"; missing {', '.join(missing)}" if missing else "")
                        + (f"; extra {', '.join(extra)}" if extra else ""), "compliance")
        if "mlperf_log_detail.txt" in present:
            d = parse_mllog(c, perf / "mlperf_log_detail.txt")
            if d is not None:
                _performance_checks(c, perf / "mlperf_log_detail.txt", d, division, what="TEST01 ")
                _test01_audit(c, perf / "mlperf_log_detail.txt", d, fail=True)


def _test01_audit(c: _Collector, path: Path, d: DetailLog, fail: bool) -> None:
    if d.get("effective_accuracy_log_sampling_target") != TEST01_SAMPLING_TARGET or \
            d.get("effective_accuracy_log_rng_seed") != TEST01_RNG_SEED:
        c.add(path, f"TEST01 audit settings not applied: accuracy_log_sampling_target "
                    f"{d.get('effective_accuracy_log_sampling_target')} (need {TEST01_SAMPLING_TARGET}), "
                    f"accuracy_log_rng_seed {d.get('effective_accuracy_log_rng_seed')} (need {TEST01_RNG_SEED}) "
                    "(mlperf-bert)", "compliance", fail=fail)


def _check_compliance_v10(c: _Collector, folder: Path, benchmark: str) -> None:
    """v1.0 compliance/SYS/B/SC/{TEST01,TEST05}: every outcome is LOG only."""
    for test in COMPLIANCE_TESTS["v1.0"]:
        tdir = folder / test
        if not tdir.is_dir():
            c.add(tdir, f"{test} folder is missing (run 'mlperf-bert compliance {test}')", "compliance", fail=False)
            continue
        vp = _verify_lines(tdir / "verify_performance.txt")
        if vp is None:
            c.add(tdir / "verify_performance.txt", "required file is missing", "compliance", fail=False)
        elif not any("TEST PASS" in line for line in vp):
            c.add(tdir / "verify_performance.txt", f"{test} performance check did not pass", "compliance-performance",
                  fail=False)
        perf = tdir / "performance" / "run_1"
        if not perf.is_dir():
            c.add(perf, "performance/run_1 folder is missing", "compliance", fail=False)
        elif test == "TEST05":  # v1.0 never parses TEST05 logs; our seed check is a note
            d = parse_mllog(c, perf / "mlperf_log_detail.txt") if (perf / "mlperf_log_detail.txt").is_file() else None
            if d is not None and tuple(d.get(k) for k in SEED_KEYS) != TEST05_SEEDS:
                c.add(perf / "mlperf_log_detail.txt", f"TEST05 seeds (qsl, sample_index, schedule) are "
                      f"{tuple(d.get(k) for k in SEED_KEYS)}, must be {TEST05_SEEDS} (mlperf-bert)", "seeds",
                      fail=False)
        elif (perf / "mlperf_log_detail.txt").is_file():
            d = parse_mllog(c, perf / "mlperf_log_detail.txt")
            if d is not None:
                _test01_audit(c, perf / "mlperf_log_detail.txt", d, fail=False)
        if test == "TEST01":
            va = _verify_lines(tdir / "verify_accuracy.txt")
            if va is None:
                c.add(tdir / "verify_accuracy.txt", "required file is missing", "compliance", fail=False)
            if not (tdir / "accuracy").is_dir():
                c.add(tdir / "accuracy", "accuracy folder is missing", "compliance", fail=False)
            elif va is not None and not any("TEST PASS" in line for line in va):
                _test01_f1_fallback(c, tdir / "accuracy", benchmark, fail=False)


# -- walk ------------------------------------------------------------------------------------------
def check_submission(root: Path, rules: str | None = None, *, layout: str | None = None,
                     reference_f1: float | None = None, full_logs: Path | None = None,
                     skip_compliance: bool = False) -> CheckReport:
    """Check a submission tree as the official checker of its version does (see the module docstring).

    Args:
        root: the folder holding ``closed/`` and/or ``open/``.
        rules: ``v1.0``, ``current``, ``quick``; None = the tree's layout (``detect_layout``).
        layout: for quick: the layout to check against (default: detected).
        reference_f1: fp32 F1 of a model mlperf-bert does not know (quick: sets the accuracy target).
        full_logs: folder holding the untruncated accuracy logs at the same relative paths as the tree
            (``mlperf-bert submission`` writes ``<root>.accuracy-logs``, the default).
        skip_compliance: do not look at compliance folders.

    Returns:
        ``CheckReport``; ``passed`` is False when any finding has level ``fail`` or no result was found.

    Raises:
        ConfigError: unknown rules, or a layout that contradicts the rules.
    """
    root = Path(root)
    detected = detect_layout(root)
    if rules is None:
        rules = detected
    check_rules(rules)
    if rules in LAYOUTS:
        if layout is not None and layout != rules:
            raise ConfigError(f"--layout {layout} contradicts --rules {rules}; --layout is for --rules quick")
        layout = rules
    layout = layout or detected
    report = CheckReport(root=root, rules=rules, layout=layout)
    c = _Collector(report, rules == "quick")
    if full_logs is None:
        cand = root.with_name(root.name + ".accuracy-logs")
        full_logs = cand if cand.is_dir() else None
    divisions = [p for p in _list_dirs(root) if not p.name.startswith(".")]
    if not any(d.name in ("closed", "open") for d in divisions):  # one line, not one per unrelated folder
        c.add(root, "no division folder (closed/ or open/); is this a submission tree?", "layout")
        return report
    if detected != layout:
        c.add(root, f"this tree has the {detected} layout, checked against {layout}: pass --rules {detected}"
                    + (f" (or --layout {detected})" if c.quick else ""), "layout")
    for div in divisions:
        if div.name not in ("closed", "open"):
            if layout == "v1.0":
                c.add(div, f"invalid division {div.name!r}; must be closed or open", "layout", fail=False)
            else:
                c.note(div, f"folder {div.name!r} is not a division; v6.1 ignores it", "layout")
            continue
        for sub in _list_dirs(div):
            _check_submitter(c, sub, div.name, reference_f1, full_logs, skip_compliance)
    return report


def _check_submitter(c: _Collector, sub: Path, division: str, reference_f1: float | None,
                     full_logs: Path | None, skip_compliance: bool) -> None:
    v = c.v
    results = sub / "results"
    if not results.is_dir():
        c.add(results, "results folder is missing" + (" (the v6.1 checker crashes)" if v == "current" else ""),
              "layout")
        return
    if v == "current":
        if not (sub / "src").is_dir():
            c.add(sub / "src", "src/ folder is missing; v6.1 needs it (code/ was v5.x)", "layout")
        for old in ("measurements", "compliance", "code"):
            if (sub / old).is_dir():
                c.note(sub / old, f"{old}/ is not part of the v6.1 layout; ignored", "layout")
        if not ((sub / "calibration.md").is_file() or (sub / "documentation" / "calibration.md").is_file()) \
                and division == "closed":
            c.note(sub / "documentation" / "calibration.md", "missing; the legacy checker wants it for closed",
                   "layout")
    for sys_dir in _list_dirs(results):
        system = sys_dir.name
        desc = _check_system(c, sub / "systems" / f"{system}.json", sub.name, division)
        system_type = (desc or {}).get("system_type")
        for bm_dir in _list_dirs(sys_dir):
            benchmark = bm_dir.name
            if not _check_benchmark_name(c, bm_dir, division):
                continue
            scenarios = {p.name for p in _list_dirs(bm_dir)}
            if system_type in VALID_SYSTEM_TYPES and division == "closed":
                _check_scenario_set(c, bm_dir, benchmark, system_type, scenarios)
            for sc_dir in _list_dirs(bm_dir):
                _check_scenario(c, sub, system, benchmark, sc_dir, reference_f1, full_logs, skip_compliance,
                                division, system_type)


def _check_benchmark_name(c: _Collector, bm_dir: Path, division: str) -> bool:
    name = bm_dir.name
    if name in BENCHMARKS:
        return True
    if c.v == "current" and ("bert-99.9" in name or "bert-99" in name):
        c.note(bm_dir, f"benchmark folder {name!r} is mapped to {'bert-99.9' if 'bert-99.9' in name else 'bert-99'} "
                       "by name; use the exact name", "benchmark")
        return False
    c.add(bm_dir, f"benchmark {name!r} is not one of {', '.join(BENCHMARKS)}"
                  + (" (the v6.1 checker crashes on it)" if c.v == "current" and division == "closed" else ""),
          "benchmark")
    return False


def _check_scenario_set(c: _Collector, bm_dir: Path, benchmark: str, system_type: str, scenarios: set) -> None:
    v = c.v
    required = required_scenarios(v, system_type, benchmark)
    if required is None:
        why = ("bert is not in v6.1's datacenter lists (the checker crashes); use system_type edge"
               if v == "current" else "invalid model for this system type")
        c.add(bm_dir, f"{benchmark} is not a {system_type} benchmark: {why}", "scenarios")
        return
    lower = {s.lower(): s for s in scenarios}
    for missing in required:
        if missing.lower() not in lower:
            c.add(bm_dir / missing, f"scenario {missing} is required for a {system_type} system", "scenarios")
        elif lower[missing.lower()] != missing:
            c.note(bm_dir / lower[missing.lower()], f"use the canonical spelling {missing}", "scenarios")
    allowed = {s.lower() for s in set(required) | set(optional_scenarios(v, system_type, benchmark))}
    for extra in sorted(s for s in scenarios if s.lower() not in allowed):
        c.add(bm_dir / extra, f"scenario {extra} is neither required nor optional for {system_type}"
                              + (" (v6.1 then fails every scenario of the benchmark)" if v == "current" else ""),
              "scenarios")


def _check_measurements_v10(c: _Collector, folder: Path, system: str, scenario: str, code_root: Path,
                            benchmark: str) -> dict | None:
    """v1.0 measurements/SYS/B/SC: the folder is FAIL, its files and keys LOG."""
    if not folder.is_dir():
        c.add(folder, "measurements folder is missing", "measurements")
        return None
    present = _files(folder)
    for name in ("mlperf.conf", "user.conf", "README.md"):
        if name not in present:
            c.add(folder / name, "required file is missing", "measurements", fail=False)
    impls = sorted(p for p in folder.glob(f"{system}*_{scenario}.json")) or sorted(folder.glob(f"{system}*.json"))
    if not impls:
        c.add(folder / f"{system}_<implementation>_{scenario}.json", "measurement JSON is missing", "measurements",
              fail=False)
        impl = None
    else:
        impl = _load_json(c, impls[0], "measurements")
        for k in IMPLEMENTATION_FIELDS:
            if impl is not None and k not in impl:
                c.add(impls[0], f"field {k!r} is missing", "measurements", fail=False)
    if not (code_root / benchmark).is_dir():
        c.add(code_root / benchmark, "code folder is missing", "layout", fail=False)
    return impl


def _check_measurements_current(c: _Collector, sc_dir: Path) -> dict | None:
    """v6.1 MeasurementsCheck: measurements.json with five truthy fields, non-empty user.conf and README.md."""
    path = sc_dir / "measurements.json"
    impl = None
    if not path.is_file():
        c.add(path, "measurements json file not found", "measurements")
    else:
        impl = _load_json(c, path, "measurements")
        for k in IMPLEMENTATION_FIELDS:
            if impl is not None and k not in impl:
                c.add(path, f"field {k!r} is missing", "measurements")
            elif impl is not None and not impl[k]:
                c.add(path, f"field {k!r} is missing a meaningful value", "measurements")
    for name in ("user.conf", "README.md"):
        p = sc_dir / name
        if not p.is_file():
            c.add(p, "required file is missing", "measurements")
        elif p.stat().st_size == 0:
            c.add(p, "is empty", "measurements")
    return impl


def _check_scenario(c: _Collector, sub: Path, system: str, benchmark: str, sc_dir: Path,
                    reference_f1: float | None, full_logs: Path | None, skip_compliance: bool, division: str,
                    system_type: str | None) -> None:
    v = c.v
    scenario = sc_dir.name
    n_fail = len(c.report.failures)
    row = ResultRow(system, benchmark, scenario)
    if v == "v1.0":
        impl = _check_measurements_v10(c, sub / "measurements" / system / benchmark / scenario, system, scenario,
                                       sub / "code", benchmark)
    else:
        impl = _check_measurements_current(c, sc_dir)
    target = _target_for(c, benchmark, impl, reference_f1)
    row.target = target.describe()
    if division == "closed" and not target.official and c.quick:
        label = (impl or {}).get("starting_weights_filename", "?")
        c.add(sc_dir, f"closed division needs the official BERT-Large weights; starting weights are {label} "
                      f"(quick: target from {target.source})", "model", short=True)
    acc_dir = sc_dir / "accuracy"
    perf = sc_dir / "performance" / "run_1"
    if v == "current" and not (perf / "mlperf_log_detail.txt").is_file() and \
            not (acc_dir / "mlperf_log_detail.txt").is_file():
        c.add(sc_dir, "no performance or accuracy detail log: v6.1 takes this for an endpoints submission, which "
                      "bert is not allowed", "layout")
    full_log = None
    if full_logs is not None:
        full_log = Path(full_logs) / acc_dir.relative_to(c.report.root) / "mlperf_log_accuracy.json"
    row.f1 = _check_accuracy(c, acc_dir, target, full_log, division)
    if not perf.is_dir():
        c.add(perf, "performance/run_1 folder is missing", "layout")
    else:
        present = _files(perf)
        if "mlperf_log_summary.txt" not in present:
            c.add(perf / "mlperf_log_summary.txt", "file is missing", "layout", fail=False)
        extra = present - {"mlperf_log_summary.txt", "mlperf_log_detail.txt", "mlperf_log_trace.json",
                           "mlperf_log_accuracy.json"}
        if extra:
            c.add(perf, f"unexpected files: {', '.join(sorted(extra))}", "layout", fail=False)
        dpath = perf / "mlperf_log_detail.txt"
        if "mlperf_log_detail.txt" not in present:
            c.add(dpath, "required file is missing", "layout")
        else:
            d = parse_mllog(c, dpath)
            if d is not None:
                logged = d.get("effective_scenario")
                if logged != scenario:
                    if v == "current" and "edge" in str(system_type) and (logged, scenario) in INFERRED_ALLOWED:
                        c.note(dpath, f"result inferred from a {logged} run", "scenarios")
                    else:
                        c.add(dpath, f"log is for scenario {logged}, folder says {scenario}", "scenarios")
                _performance_checks(c, dpath, d, division)
                p = perf_result(d)
                if v == "v1.0" and scenario == "SingleStream":
                    ns = d.get("result_90.00_percentile_latency_ns")
                    row.metric = f"{ns / 1e6:,.3f} ms (p90)" if ns else ""
                else:
                    row.metric = f"{p.metric_value:,.3f} {p.metric_unit}"
    if not skip_compliance and division == "closed":
        if v == "current":
            _check_test01_current(c, sc_dir / "TEST01", benchmark, division)
        else:
            _check_compliance_v10(c, sub / "compliance" / system / benchmark / scenario, benchmark)
    row.ok = not c.failed_since(n_fail)
    c.report.results.append(row)
