"""Compliance tests TEST01 and TEST05: run them with the audit settings of a submission run, verify, and
write the compliance folder of the submission tree.

TEST01 (docs/submission.md#test01; MLPerf compliance TEST01 README): a performance run with an audit.config
(``accuracy_log_sampling_target`` 4096, ``accuracy_log_rng_seed`` 720381539243781796) makes LoadGen log
the responses of a random subset of samples. They must equal the accuracy-mode responses of the same
``qsl_idx`` (compared here as whole byte strings, stricter than the reference script, which looks at one
byte); if any differ, the F1 of those samples from the test log must be within 1% (bert-99) / 0.1%
(bert-99.9) of the F1 of the same samples from the accuracy log (``baseline_accuracy.txt`` /
``compliance_accuracy.txt``). Performance must be within 10% of the submission run. An empty test log
fails; a partial one is scored as it is.

TEST05: a performance run with the TEST05 seeds (set as TestSettings attributes: LoadGen 6.x ignores
seeds in an audit.config) must be within 5% of the submission run.

Both compare the scenario's metric (Offline samples/s, Server completed samples/s, SingleStream /
MultiStream percentile latency) from the detail logs.

Folder written (``<out>/<name>/``): ``run/`` (the LoadGen run, a normal run folder), ``TEST0x/`` shaped as
the submission wants it (verify_*.txt, ``accuracy/``, ``performance/run_1/``) and ``compliance.json``.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from mlperf_bert.backends.base import BackendConfig
from mlperf_bert.backends.registry import BackendRegistry
from mlperf_bert.config import DataPaths, SquadConfig
from mlperf_bert.distributed.ray_pool import DistributedConfig
from mlperf_bert.errors import ConfigError, DataError
from mlperf_bert.fileio import read_json
from mlperf_bert.logs.parse import perf_result, read_detail_log
from mlperf_bert.loadgen.settings import LoadGenConfig
from mlperf_bert.accuracy.targets import TEST01_F1_TOLERANCE, AccuracyTarget, check_benchmark
from mlperf_bert.submission.checker import TEST01_RNG_SEED, TEST01_SAMPLING_TARGET, TEST05_SEEDS
from mlperf_bert.sut.batcher import BatcherConfig
from mlperf_bert.sut.sut import SUTConfig

TESTS = ("TEST01", "TEST05")
#: Largest relative change of the scenario metric against the submission run.
PERF_TOLERANCE = {"TEST01": 0.10, "TEST05": 0.05}
#: The TEST01 audit.config (LoadGen conf syntax; mode 2 = performance).
TEST01_AUDIT_CONFIG = (
    "# MLPerf compliance TEST01: log a sample of performance-mode responses\n"
    "*.*.mode = 2\n"
    f"*.*.accuracy_log_rng_seed = {TEST01_RNG_SEED}\n"
    f"*.*.accuracy_log_sampling_target = {TEST01_SAMPLING_TARGET}\n"
)


def check_test(name: str) -> str:
    up = name.upper()
    if up not in TESTS:
        raise ConfigError(f"unknown compliance test {name!r}; choose one of: {', '.join(TESTS)}")
    return up


# -- verification (pure: files in, verdicts out) ---------------------------------------------------
@dataclass
class LogComparison:
    """Performance-mode (TEST01) responses against accuracy-mode ones, by qsl_idx.

    Attributes:
        acc_entries / acc_duplicates / acc_mismatched_duplicates: accuracy log entries, repeated
            qsl_idx, and repeats with different bytes.
        test_entries: entries of the TEST01 log.
        matched: test entries whose qsl_idx is in the accuracy log and whose bytes are equal.
        mismatched: ... whose bytes differ.
        missing: test entries whose qsl_idx is not in the accuracy log.
        differing: sorted qsl_idx whose bytes differ.
        test_indices: sorted distinct qsl_idx of the test log.
    """

    acc_entries: int = 0
    acc_duplicates: int = 0
    acc_mismatched_duplicates: int = 0
    test_entries: int = 0
    matched: int = 0
    mismatched: int = 0
    missing: int = 0
    differing: list = field(default_factory=list)
    test_indices: list = field(default_factory=list)

    @property
    def identical(self) -> bool:
        """Every logged response equals its accuracy-mode response, and there is at least one."""
        return self.mismatched == 0 and self.missing == 0 and self.matched > 0


def _load_log(path: Path) -> list:
    data = read_json(path, "accuracy log", "was the run interrupted? rerun it")
    if not isinstance(data, list):
        raise DataError(f"accuracy log {path} is not a JSON list of LoadGen entries")
    return data


def compare_accuracy_logs(accuracy_log: Path, test_log: Path) -> LogComparison:
    """Compare a TEST01 log with the accuracy-mode log of the submission run, byte for byte per qsl_idx."""
    out = LogComparison()
    ref: dict[int, str] = {}
    for e in _load_log(accuracy_log):
        out.acc_entries += 1
        i, data = e["qsl_idx"], e["data"]
        if i in ref:
            out.acc_duplicates += 1
            out.acc_mismatched_duplicates += ref[i] != data
        else:
            ref[i] = data
    differing, seen = set(), set()
    for e in _load_log(test_log):
        out.test_entries += 1
        i = e["qsl_idx"]
        seen.add(i)
        if i not in ref:
            out.missing += 1
        elif ref[i] == e["data"]:
            out.matched += 1
        else:
            out.mismatched += 1
            differing.add(i)
    out.differing = sorted(differing)
    out.test_indices = sorted(seen)
    return out


def write_baseline_log(accuracy_log: Path, indices, out: Path) -> int:
    """Write the accuracy-mode entries of ``indices`` (first per qsl_idx) to ``out``; returns the count.

    The counterpart of the reference ``create_accuracy_baseline.py``: the same samples as the TEST01
    log, from accuracy mode, so both can be scored on equal terms.
    """
    want, kept, done = set(int(i) for i in indices), [], set()
    for e in _load_log(accuracy_log):
        if e["qsl_idx"] in want and e["qsl_idx"] not in done:
            kept.append(e)
            done.add(e["qsl_idx"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(kept))
    return len(kept)


@dataclass(frozen=True)
class PerfComparison:
    """The scenario metric of a compliance run against the submission run.

    Attributes:
        scenario / metric / unit: what was compared.
        reference / test: the two values.
        tolerance: allowed relative deviation (0.10 TEST01, 0.05 TEST05).
        reference_valid / test_valid: LoadGen's VALID for each run.
        passed: ``|test - reference| <= tolerance * reference`` and (unless ``allow_invalid``) both VALID.
    """

    scenario: str
    metric: str
    unit: str
    reference: float
    test: float
    tolerance: float
    reference_valid: bool
    test_valid: bool
    passed: bool

    @property
    def deviation(self) -> float:
        return (self.test - self.reference) / self.reference if self.reference else float("inf")

    def text(self) -> str:
        """verify_performance.txt contents."""
        lines = [f"scenario = {self.scenario}", f"metric = {self.metric} ({self.unit})",
                 f"reference score = {self.reference}", f"test score = {self.test}",
                 f"deviation = {self.deviation * 100:+.2f}% (allowed {self.tolerance * 100:g}%)"]
        for name, ok in (("reference", self.reference_valid), ("test", self.test_valid)):
            if not ok:
                lines.append(f"WARNING: {name} results are INVALID")
        lines.append("TEST PASS" if self.passed else "TEST FAIL")
        return "\n".join(lines) + "\n"


def compare_performance(reference_detail: Path, test_detail: Path, tolerance: float,
                        allow_invalid: bool = False) -> PerfComparison:
    """Compare the metric of two performance detail logs (same scenario required).

    Raises:
        DataError: unreadable logs or different scenarios.
    """
    ref, test = perf_result(read_detail_log(reference_detail)), perf_result(read_detail_log(test_detail))
    if ref.scenario != test.scenario:
        raise DataError(f"scenario mismatch: {reference_detail} is {ref.scenario}, {test_detail} is {test.scenario}")
    within = ref.metric_value > 0 and abs(test.metric_value - ref.metric_value) <= tolerance * ref.metric_value
    passed = within and (allow_invalid or (ref.valid and test.valid))
    return PerfComparison(ref.scenario, ref.metric_name, ref.metric_unit, ref.metric_value, test.metric_value,
                          tolerance, ref.valid, test.valid, passed)


def accuracy_text(cmp: LogComparison, accuracy_log: Path, test_log: Path) -> str:
    """verify_accuracy.txt contents (byte comparison counts, then TEST PASS / TEST FAIL)."""
    lines = [
        f"reference accuracy log = {accuracy_log}",
        f"test accuracy log = {test_log}",
        f"num_acc_log_entries = {cmp.acc_entries}",
        f"num_acc_log_duplicate_keys = {cmp.acc_duplicates}",
        f"num_acc_log_data_mismatch = {cmp.acc_mismatched_duplicates}",
        f"num_perf_log_entries = {cmp.test_entries}",
        f"num_perf_log_qsl_idx_match = {cmp.matched + cmp.mismatched}",
        f"num_perf_log_data_mismatch = {cmp.mismatched}",
        f"num_missing_qsl_idxs = {cmp.missing}",
    ]
    if cmp.test_entries == 0:
        lines.append("TEST FAIL: the performance-mode accuracy log is empty")
    else:
        lines.append("TEST PASS" if cmp.identical else "TEST FAIL")
    return "\n".join(lines) + "\n"


# -- running ---------------------------------------------------------------------------------------
def _build(cls, data: dict, **nested):
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in data.items() if k in names}
    kwargs.update(nested)
    return cls(**kwargs)


def _path(v: Any) -> Path | None:
    return Path(v) if v not in (None, "") else None


def loadgen_config_from_dict(d: dict) -> LoadGenConfig:
    """``LoadGenConfig`` from its run.json form."""
    d = dict(d)
    for k in ("user_conf", "audit_conf"):
        d[k] = _path(d.get(k))
    if d.get("seeds") is not None:
        d["seeds"] = tuple(d["seeds"])
    return _build(LoadGenConfig, d)


def run_config_from_json(info: dict):
    """Rebuild the ``runner.RunConfig`` of a finished run from its run.json (``info``)."""
    from mlperf_bert.runner import RunConfig

    c = info["config"]
    data = DataPaths(dataset=Path(c["data"]["dataset"]), vocab=Path(c["data"]["vocab"]),
                     cache_dir=Path(c["data"]["cache_dir"]))
    backend = _build(BackendConfig, c["backend"], model=_path(c["backend"].get("model")),
                     cache_dir=_path(c["backend"].get("cache_dir")))
    sut = _build(SUTConfig, c["sut"], batcher=_build(BatcherConfig, c["sut"]["batcher"]))
    target = AccuracyTarget(**c["accuracy_target"]) if c.get("accuracy_target") else None
    distributed = _build(DistributedConfig, c["distributed"]) if c.get("distributed") else None  # Ray replicas
    return RunConfig(data=data, backend=backend, sut=sut, loadgen=loadgen_config_from_dict(c["loadgen"]),
                     squad=_build(SquadConfig, c.get("squad", {})), modes=tuple(c.get("modes", ())),
                     output_dir=Path(c.get("output_dir", "runs")), run_name=c.get("run_name"),
                     max_examples=c.get("max_examples"), probe=c.get("probe", True), accuracy_target=target,
                     distributed=distributed)


def read_run_info(run_dir: Path) -> dict:
    """run.json of a run folder.

    Raises:
        DataError: no run.json (not a run folder) or unreadable.
    """
    path = Path(run_dir) / "run.json"
    if not path.is_file():
        raise DataError(f"{run_dir} is not a run folder (no run.json); pass a folder made by 'mlperf-bert run'")
    return read_json(path, "run record")


@dataclass
class ComplianceResult:
    """The outcome of one compliance test.

    Attributes:
        test: TEST01 or TEST05.
        folder: ``<out>/<name>`` holding ``run/``, ``<test>/`` and ``compliance.json``.
        passed: the test passed (TEST01: bytes equal or F1 within tolerance, and performance).
        performance: the metric comparison.
        log: TEST01 byte comparison (None for TEST05).
        f1_baseline / f1_compliance: TEST01 F1 from accuracy mode / the test log of the logged samples,
            over every dev question as the reference scores a partial log (the others count as "empty"), as
            written to baseline_accuracy.txt / compliance_accuracy.txt (None when not scored).
        f1_covered_baseline / f1_covered_compliance: the same over only the questions the logged samples
            cover (None when not scored).
        notes: one-line remarks for the summary.
    """

    test: str
    folder: Path
    passed: bool
    performance: PerfComparison
    log: LogComparison | None = None
    f1_baseline: float | None = None
    f1_compliance: float | None = None
    f1_covered_baseline: float | None = None
    f1_covered_compliance: float | None = None
    notes: list = field(default_factory=list)


def run_compliance(test: str, results_run: Path, output_dir: Path, *, name: str | None = None,
                   registry: BackendRegistry | None = None, load_data: Callable | None = None,
                   scorer: Callable[[Path, Path | None], Any] | None = None, progress: bool = True,
                   on_event: Callable[[str], None] | None = None, benchmark: str | None = None,
                   performance_overrides: dict | None = None,
                   perf_tolerance: float | None = None, quiet_wait_s: float | None = 120.0,
                   load_sampler: Callable[[], Any] | None = None,
                   sleep: Callable[[float], None] | None = None) -> ComplianceResult:
    """Run TEST01 or TEST05 against a finished submission run and write its compliance folder.

    Args:
        test: ``TEST01`` or ``TEST05``.
        results_run: run folder with ``performance/`` (TEST01 also needs ``accuracy/``) and run.json;
            the test reuses its backend, batching and LoadGen settings (after the probe).
        output_dir: parent of the compliance folder.
        name: compliance folder name (default ``<results run name>-<test>``).
        registry / load_data / progress / on_event: as ``runner.run``.
        scorer: ``(log_path, out_dir_or_None) -> AccuracyResult`` for partial logs (TEST01 F1 scoring);
            required for TEST01.
        benchmark: ``bert-99``/``bert-99.9`` (default: the run's accuracy target, else bert-99).
        performance_overrides: LoadGenConfig fields to change for the test run (e.g. a shorter
            ``quick_duration_s`` in tests).
        perf_tolerance: allowed relative metric change instead of the rule's 10% / 5% (tests whose
            sub-second runs are too noisy for the real bound; never for a submission).
        quiet_wait_s: when the performance comparison fails, wait up to this long for the host to be quiet
            (``machine.wait_until_quiet``) and rerun the test once (``run-2/``); the second run decides.
        load_sampler / sleep: host-load sampler and sleep function (tests pass fakes).

    The host load before each test run (and the submission run's, from its run.json) is kept in
    compliance.json ``attempts``; ``notes`` says when the host was busy.

    Raises:
        DataError: the results run lacks what the test needs.
        BackendFailure / ConfigError: as ``run``.
    """
    from mlperf_bert.runner import run

    test = check_test(test)
    results_run = Path(results_run)
    info = read_run_info(results_run)
    cfg = run_config_from_json(info)
    bm = check_benchmark(benchmark or (cfg.accuracy_target.benchmark if cfg.accuracy_target else "bert-99"))
    ref_detail = results_run / "performance" / "mlperf_log_detail.txt"
    if not ref_detail.is_file():
        raise DataError(f"{results_run} has no performance run (performance/mlperf_log_detail.txt); "
                        "run 'mlperf-bert run --mode both' first")
    acc_log = results_run / "accuracy" / "mlperf_log_accuracy.json"
    if test == "TEST01":
        if not acc_log.is_file():
            raise DataError(f"{results_run} has no accuracy run (accuracy/mlperf_log_accuracy.json); TEST01 "
                            "compares against it: run 'mlperf-bert run --mode both'")
        if scorer is None:
            raise ConfigError("TEST01 needs a scorer for the logged samples")
    folder = Path(output_dir) / (name or f"{results_run.name}-{test}")
    if folder.exists():
        raise ConfigError(f"compliance folder already exists: {folder}; pick another --name")
    folder.mkdir(parents=True)

    perf_lg = loadgen_config_from_dict(info["performance_loadgen"]) if info.get("performance_loadgen") \
        else cfg.loadgen
    lg = dataclasses.replace(perf_lg, mode="performance", **(performance_overrides or {}))
    if test == "TEST01":
        audit = folder / "audit.config"
        audit.write_text(TEST01_AUDIT_CONFIG)
        lg = dataclasses.replace(lg, audit_conf=audit)
    else:
        lg = dataclasses.replace(lg, seeds=TEST05_SEEDS, audit_conf=None,
                                 origins={**lg.origins, "seeds": "rules:TEST05"})
    from mlperf_bert.machine import HostLoad, sample_host_load, wait_until_quiet

    sampler = load_sampler or sample_host_load
    say = on_event or (lambda m: None)
    quick = lg.rules == "quick"
    tol = PERF_TOLERANCE[test] if perf_tolerance is None else perf_tolerance
    attempts: list[dict] = []
    notes: list[str] = []
    ref_load = HostLoad.from_dict(info.get("host_load"))
    if ref_load.busy:
        notes.append(f"host busy before the submission run's performance test: {ref_load.text()}")

    def attempt(run_name: str) -> tuple[Path, PerfComparison]:
        run_cfg = dataclasses.replace(cfg, loadgen=lg, modes=("performance",), output_dir=folder, run_name=run_name,
                                      probe=False)
        res = run(run_cfg, registry=registry, load_data=load_data, progress=progress, on_event=on_event)
        cmp = compare_performance(ref_detail, res.run_dir / "performance" / "mlperf_log_detail.txt", tol,
                                  allow_invalid=quick)
        load = HostLoad.from_dict(res.info.get("host_load"))  # the runner samples it before the test
        attempts.append({"run": run_name, "host_load": load.to_dict(), "deviation": cmp.deviation,
                         "passed": cmp.passed})
        if load.busy:
            notes.append(f"host busy before the {test} performance run ({run_name}/): {load.text()}")
        return res.run_dir, cmp

    run_dir, perf = attempt("run")
    if not perf.passed and quiet_wait_s is not None and quiet_wait_s >= 0:
        say(f"{test} performance {perf.deviation * 100:+.1f}% is outside {tol * 100:g}%; waiting up to "
            f"{quiet_wait_s:g} s for a quiet host, then rerunning once ...")
        wait = wait_until_quiet(quiet_wait_s, sample=sampler, **({"sleep": sleep} if sleep else {}))
        first = perf.deviation
        run_dir, perf = attempt("run-2")
        notes.append(f"{test} performance {first * 100:+.1f}% failed; "
                     + (f"after {wait.waited_s:.0f} s the host was quiet ({wait.load.text()})" if wait.quiet else
                        f"the host stayed busy for {wait.waited_s:.0f} s ({wait.load.text()})")
                     + f"; reran once: {perf.deviation * 100:+.1f}% ({'pass' if perf.passed else 'fail'})")
    out = folder / test
    perf_out = out / "performance" / "run_1"
    perf_out.mkdir(parents=True)
    for fname in ("mlperf_log_summary.txt", "mlperf_log_detail.txt"):
        shutil.copy2(run_dir / "performance" / fname, perf_out / fname)
    (out / "verify_performance.txt").write_text(perf.text())
    result = ComplianceResult(test=test, folder=folder, passed=perf.passed, performance=perf, notes=notes)
    if quick and not (perf.reference_valid and perf.test_valid):
        result.notes.append("a run is INVALID under LoadGen's checks (waived: quick rules)")
    if test == "TEST01":
        _finish_test01(result, acc_log, run_dir / "performance" / "mlperf_log_accuracy.json", out, bm, scorer)
    summary = {
        "test": test, "benchmark": bm, "scenario": perf.scenario, "results_run": str(results_run.resolve()),
        "rules": lg.rules, "passed": result.passed, "performance": dataclasses.asdict(perf),
        "log_comparison": None if result.log is None else {
            k: v for k, v in dataclasses.asdict(result.log).items() if k not in ("test_indices",)},
        "f1_baseline": result.f1_baseline, "f1_compliance": result.f1_compliance,
        "f1_covered_baseline": result.f1_covered_baseline, "f1_covered_compliance": result.f1_covered_compliance,
        "notes": result.notes, "attempts": attempts, "run": run_dir.name,
    }
    (folder / "compliance.json").write_text(json.dumps(summary, indent=2) + "\n")
    return result


def _finish_test01(result: ComplianceResult, acc_log: Path, test_log: Path, out: Path, benchmark: str,
                   scorer: Callable) -> None:
    acc_out = out / "accuracy"
    acc_out.mkdir(parents=True)
    if not test_log.is_file():
        test_log.write_text("[]\n")
    cmp = compare_accuracy_logs(acc_log, test_log)
    result.log = cmp
    shutil.copy2(test_log, acc_out / "mlperf_log_accuracy.json")
    (out / "verify_accuracy.txt").write_text(accuracy_text(cmp, acc_log, test_log))
    if cmp.test_entries == 0:
        result.passed = False
        result.notes.append("TEST01: the performance run logged no responses")
        (acc_out / "accuracy.txt").write_text("no responses logged\n")
        return
    compliance_score = scorer(test_log, None)
    (acc_out / "accuracy.txt").write_text(compliance_score.line + "\n")
    if cmp.identical:
        result.notes.append(f"TEST01: {cmp.matched} logged responses are byte-identical to accuracy mode")
        return
    baseline_log = test_log.parent.parent / "mlperf_log_accuracy_baseline.json"
    write_baseline_log(acc_log, cmp.test_indices, baseline_log)
    baseline_score = scorer(baseline_log, None)
    (acc_out / "baseline_accuracy.txt").write_text(baseline_score.line + "\n")
    (acc_out / "compliance_accuracy.txt").write_text(compliance_score.line + "\n")
    result.f1_baseline, result.f1_compliance = baseline_score.f1, compliance_score.f1
    covered = [getattr(sc.covered, "f1", sc.f1) for sc in (baseline_score, compliance_score)]
    result.f1_covered_baseline, result.f1_covered_compliance = covered
    tol = TEST01_F1_TOLERANCE[benchmark]
    # The rule compares the two accuracy.txt lines, which the reference scores over every question:
    # those without a logged sample are "empty" in both files and add the same to both sums.
    f1_ok = abs(compliance_score.f1 - baseline_score.f1) <= tol * baseline_score.f1
    result.passed = result.passed and f1_ok and cmp.missing == 0
    result.notes.append(
        f"TEST01: {cmp.mismatched} of {cmp.test_entries} logged responses differ from accuracy mode; F1 "
        f"{baseline_score.f1:.4f} -> {compliance_score.f1:.4f} over all {baseline_score.questions_total:,} "
        f"questions ({'within' if f1_ok else 'outside'} {tol * 100:g}% for {benchmark}); over the "
        f"{getattr(baseline_score.covered, 'questions', baseline_score.questions_total):,} questions the "
        f"logged samples cover: {covered[0]:.4f} -> {covered[1]:.4f}")
