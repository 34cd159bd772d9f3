"""``submit``: from nothing to a checked submission tree in one resumable job.

For one benchmark under one set of rules: every required scenario (accuracy + performance run through
``runner.run``), its compliance tests (TEST01; and TEST05 for the v1.0 layout) through
``compliance.run_compliance``, the tree (``tree.assemble_submission``) and its check
(``checker.check_submission``). Folder written (``job.output_dir``)::

    runs/<benchmark>-<scenario>/                 run folders
    compliance/<benchmark>-<scenario>-TEST0x/    compliance folders
    submission/, submission.accuracy-logs/       the tree (rebuilt every time) and its full accuracy logs
    submit-state.json                            what is finished (steps, folders, times)

Resuming: a finished run folder whose run.json holds the same settings is reused, not redone; a compliance
folder is reused when it passed against the same run (``run.json`` ``started_utc``). Anything else is moved
aside (``<name>.old-N``) and redone; an interrupted ``<name>.partial`` is removed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from mlperf_bert.errors import ConfigError
from mlperf_bert.fileio import write_json_atomic
from mlperf_bert.accuracy.targets import check_benchmark
from mlperf_bert.submission.compliance import read_run_info, run_compliance, run_config_from_json
from mlperf_bert.submission.versions import (COMPLIANCE_TESTS, SEEDS, check_layout, check_rules,
                                             default_system_type, required_scenarios)

STATE_FILE = "submit-state.json"


@dataclass(frozen=True)
class SubmitJob:
    """What ``run_submit`` does.

    Attributes:
        base: run settings (data, backend, batching, accuracy target, max_examples); scenario, modes, rules,
            seeds, output folder and run name are set per step.
        rules: ``v1.0``, ``current`` or ``quick``.
        layout: tree layout for quick (``v1.0`` quick runs use the v1.0 seeds); for v1.0/current it is the
            rules themselves.
        benchmark: ``bert-99`` or ``bert-99.9``.
        output_dir: the job folder (see the module docstring).
        submitter / system / division / system_type: as ``tree.SubmissionSpec`` (system_type None = the
            layout's default).
        system_overrides / implementation_overrides: ``--system-json`` / ``--implementation-json``.
        reference_f1: fp32 F1 of a model mlperf-bert does not know.
        quiet_wait_s: compliance reruns wait up to this long for a quiet host (None = no rerun).
        perf_tolerance: compliance performance bound instead of 10% / 5% (tests only).
        facts: machine facts for the system description (None = read this machine).
    """

    base: Any
    rules: str
    benchmark: str
    output_dir: Path
    submitter: str
    system: str
    layout: str | None = None
    division: str = "closed"
    system_type: str | None = None
    system_overrides: dict = field(default_factory=dict)
    implementation_overrides: dict = field(default_factory=dict)
    reference_f1: float | None = None
    quiet_wait_s: float | None = 120.0
    perf_tolerance: float | None = None
    facts: Any = None

    def __post_init__(self) -> None:
        check_rules(self.rules)
        check_benchmark(self.benchmark)
        if self.layout is not None:
            check_layout(self.layout)
            if self.rules != "quick" and self.layout != self.rules:
                raise ConfigError(f"--layout {self.layout} contradicts --rules {self.rules}; --layout is for "
                                  "--rules quick")

    @property
    def tree_layout(self) -> str:
        return self.rules if self.rules != "quick" else (self.layout or "current")

    @property
    def tree_system_type(self) -> str:
        return self.system_type or default_system_type(self.tree_layout, self.scenarios)

    @property
    def scenarios(self) -> tuple[str, ...]:
        """Required scenarios, Offline first (for v1.0 datacenter: Offline only)."""
        layout = self.tree_layout
        st = self.system_type or default_system_type(layout, ("SingleStream", "Offline") if layout == "current"
                                                     else ("Offline",))
        req = required_scenarios(layout, st, self.benchmark)
        if req is None:
            raise ConfigError(f"{self.benchmark} is not allowed on a {st} system under the {layout} rules; pick "
                              "another --system-type")
        return tuple(sorted(req, key=lambda s: (s != "Offline", s)))

    @property
    def tests(self) -> tuple[str, ...]:
        return COMPLIANCE_TESTS[self.tree_layout]


@dataclass
class StepResult:
    """One step of the job: a run or a compliance test, what it gave and whether it was reused."""

    name: str
    kind: str
    scenario: str
    folder: Path
    status: str  # ran | reused
    seconds: float = 0.0
    summary: str = ""
    passed: bool = True
    notes: list = field(default_factory=list)


@dataclass
class SubmitResult:
    """What ``run_submit`` produced: steps, the assembled tree and its check report."""

    output_dir: Path
    steps: list = field(default_factory=list)
    assembled: Any = None
    report: Any = None

    @property
    def host_was_busy(self) -> bool:
        return any("host busy" in n or "stayed busy" in n for s in self.steps for n in s.notes)


# -- state -----------------------------------------------------------------------------------------
def _read_state(out: Path) -> dict:
    try:
        state = json.loads((out / STATE_FILE).read_text())
        return state if isinstance(state, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_state(out: Path, state: dict) -> None:
    write_json_atomic(out / STATE_FILE, state)


def _move_aside(path: Path) -> Path:
    n = 1
    while path.with_name(f"{path.name}.old-{n}").exists():
        n += 1
    dst = path.with_name(f"{path.name}.old-{n}")
    os.replace(path, dst)
    return dst


def run_config_for(job: SubmitJob, scenario: str):
    """The ``RunConfig`` of ``scenario``'s accuracy + performance run (harness settings re-resolved for the
    scenario: its own tuned profile and defaults; the flags given still win)."""
    from mlperf_bert.runner import RunConfig
    from mlperf_bert.tune import retarget_run_config

    base: RunConfig = retarget_run_config(job.base, scenario)
    lg = dataclasses.replace(base.loadgen, scenario=scenario, rules=job.rules,
                             seeds=SEEDS["v1.0"] if job.rules == "quick" and job.tree_layout == "v1.0" else None)
    return dataclasses.replace(base, loadgen=lg, modes=("accuracy", "performance"),
                               output_dir=Path(job.output_dir) / "runs", run_name=f"{job.benchmark}-{scenario}")


def _reusable_run(folder: Path, cfg) -> tuple[bool, str]:
    if not (folder / "run.json").is_file():
        return False, "no run.json"
    try:
        info = read_run_info(folder)  # the job folder may have moved: its own paths do not count
        same = dataclasses.replace(run_config_from_json(info), output_dir=cfg.output_dir,
                                   run_name=cfg.run_name) == cfg
    except Exception as exc:  # noqa: BLE001 - an unreadable or old run.json is simply not reusable
        return False, f"run.json unreadable ({type(exc).__name__})"
    if info.get("error"):
        return False, "it failed"
    if not same:
        return False, "its settings differ"
    for mode in ("accuracy", "performance"):
        if not (folder / mode / "mlperf_log_detail.txt").is_file():
            return False, f"no {mode} log"
    return True, ""


def _run_summary(info: dict) -> str:
    acc, perf = info.get("accuracy") or {}, info.get("performance") or {}
    parts = []
    if acc.get("f1") is not None:
        parts.append(f"F1 {acc['f1']:.3f}")
    if perf:
        parts.append(f"{perf.get('metric_value', 0):,.3f} {perf.get('metric_unit', '')}".strip())
        parts.append("VALID" if perf.get("valid") else "INVALID")
    return ", ".join(parts)


def run_submit(job: SubmitJob, *, registry=None, load_data: Callable | None = None,
               scorer: Callable | None = None, progress: bool = True,
               on_event: Callable[[str], None] | None = None) -> SubmitResult:
    """Run every step of ``job`` (reusing finished ones), assemble the tree and check it.

    Args:
        job: what to do.
        registry / load_data / progress: as ``runner.run``.
        scorer: TEST01 scorer ``(log, out_dir) -> AccuracyResult`` (see ``compliance.run_compliance``).
        on_event: progress lines.

    Returns:
        ``SubmitResult``; ``report.passed`` says whether the tree passes ``job.rules``.

    Raises:
        HarnessError subclasses from the runs, the compliance tests or the assembly.
    """
    from mlperf_bert.runner import run
    from mlperf_bert.submission.checker import check_submission
    from mlperf_bert.submission.tree import SubmissionSpec, assemble_submission

    say = on_event or (lambda m: None)
    out = Path(job.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = _read_state(out)
    key = {"rules": job.rules, "layout": job.tree_layout, "benchmark": job.benchmark}
    if state.get("job") not in (None, key):
        raise ConfigError(f"{out} holds a submit job for {state['job']}, not {key}; pick another --output-dir")
    state = {"job": key, "steps": state.get("steps", {})}
    result = SubmitResult(output_dir=out)
    scenarios, tests = job.scenarios, job.tests
    total = len(scenarios) * (1 + len(tests))
    n = 0
    for sc in scenarios:
        n += 1
        cfg = run_config_for(job, sc)
        name = cfg.run_name
        folder = Path(cfg.output_dir) / name
        tag = f"[{n}/{total}] {job.benchmark} {sc} accuracy + performance"
        ok, why = _reusable_run(folder, cfg)
        if ok:
            info = read_run_info(folder)
            say(f"{tag}: reused {folder} (finished {info.get('finished_utc', '?')})")
            step = StepResult(name, "run", sc, folder, "reused", info.get("wall_seconds", 0.0), _run_summary(info))
        else:
            if folder.exists():
                say(f"{tag}: {folder} is not reusable ({why}); moved to {_move_aside(folder).name}")
            for stale in (folder.with_name(name + ".partial"), folder.with_name(name + ".failed")):
                if stale.exists():
                    if stale.name.endswith(".partial"):
                        shutil.rmtree(stale)
                        say(f"{tag}: removed the interrupted {stale.name}")
                    else:
                        _move_aside(stale)
            say(f"{tag} ({job.rules} rules) ...")
            t0 = time.time()
            res = run(cfg, registry=registry, load_data=load_data, progress=progress,
                                on_event=lambda m, t=tag: say(f"{t}: {m}"))
            info = res.info
            step = StepResult(name, "run", sc, folder, "ran", time.time() - t0, _run_summary(read_run_info(folder)))
        load = (info.get("host_load") or {})
        if load.get("busy"):
            from mlperf_bert.machine import HostLoad

            step.notes.append(f"host busy before the performance run: {HostLoad.from_dict(load).text()}")
        say(f"{tag}: {step.summary}")
        result.steps.append(step)
        run_started = read_run_info(folder).get("started_utc")
        state["steps"][name] = {"kind": "run", "folder": str(folder), "started_utc": run_started,
                                "status": "done", "summary": step.summary}
        _write_state(out, state)
        for test in tests:
            n += 1
            result.steps.append(_compliance_step(job, test, sc, folder, run_started, state, out,
                                                 f"[{n}/{total}] {job.benchmark} {sc} {test}", say, registry, load_data,
                                                 scorer, progress))
            _write_state(out, state)

    tree = out / "submission"
    for old in (tree, tree.with_name(tree.name + ".accuracy-logs")):
        if old.exists():
            shutil.rmtree(old)
    say(f"assembling the {job.tree_layout} layout in {tree} ...")
    spec = SubmissionSpec(output=tree, submitter=job.submitter, system=job.system,
                          runs=tuple(s.folder for s in result.steps if s.kind == "run"),
                          compliance=tuple(s.folder for s in result.steps if s.kind != "run"), division=job.division,
                          benchmark=job.benchmark, system_overrides=job.system_overrides,
                          implementation_overrides=job.implementation_overrides, system_type=job.system_type,
                          reference_f1=job.reference_f1, rules=job.rules,
                          layout=job.tree_layout if job.rules == "quick" else None, facts=job.facts)
    result.assembled = assemble_submission(spec)
    say(f"checking it under the {job.rules} rules ...")
    result.report = check_submission(tree, job.rules, layout=job.tree_layout, reference_f1=job.reference_f1)
    state["checked"] = {"passed": result.report.passed, "failures": len(result.report.failures),
                        "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    _write_state(out, state)
    return result


def _compliance_step(job: SubmitJob, test: str, sc: str, run_folder: Path, run_started: str | None, state: dict,
                     out: Path, tag: str, say, registry, load_data, scorer, progress) -> StepResult:
    name = f"{job.benchmark}-{sc}-{test}"
    folder = out / "compliance" / name
    rec = state["steps"].get(name) or {}
    meta = None
    try:
        meta = json.loads((folder / "compliance.json").read_text())
    except (OSError, ValueError):
        pass
    if meta and meta.get("passed") and rec.get("run_started") == run_started and rec.get("status") == "done":
        say(f"{tag}: reused {folder} ({test} passed)")
        return StepResult(name, test, sc, folder, "reused", rec.get("seconds", 0.0), rec.get("summary", ""),
                          True, list(meta.get("notes") or []))
    if folder.exists():
        why = "it failed" if meta and not meta.get("passed") else "it was made against another run"
        say(f"{tag}: redoing {folder.name} ({why}); the old one moved to {_move_aside(folder).name}")
    say(f"{tag} ...")
    t0 = time.time()
    res = run_compliance(test, run_folder, folder.parent, name=name, registry=registry, load_data=load_data,
                         scorer=scorer if test == "TEST01" else None, progress=progress,
                         on_event=lambda m: say(f"{tag}: {m}"), benchmark=job.benchmark,
                         perf_tolerance=job.perf_tolerance, quiet_wait_s=job.quiet_wait_s)
    p = res.performance
    summary = (f"{p.metric} {p.test:,.3f} vs {p.reference:,.3f} {p.unit} ({p.deviation * 100:+.2f}%, allowed "
               f"{p.tolerance * 100:g}%) {'PASS' if res.passed else 'FAIL'}")
    say(f"{tag}: {summary}")
    for note in res.notes:
        say(f"{tag}: {note}")
    seconds = time.time() - t0
    state["steps"][name] = {"kind": test, "folder": str(folder), "run_started": run_started,
                            "status": "done", "passed": res.passed, "summary": summary, "seconds": seconds}
    return StepResult(name, test, sc, folder, "ran", seconds, summary, res.passed, list(res.notes))
