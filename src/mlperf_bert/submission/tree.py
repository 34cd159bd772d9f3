"""Assemble run folders and compliance folders into an MLPerf submission tree, in the layout of one
official checker version (docs/submission.md).

``current`` (v6.1 checker), under ``<output>/<division>/<submitter>/``::

    systems/<system>.json
    src/README.md                                   (must exist; contents not checked)
    documentation/calibration.md
    results/<system>/<benchmark>/<scenario>/{measurements.json, user.conf, README.md, mlperf.conf}
    results/<system>/<benchmark>/<scenario>/accuracy/{mlperf_log_summary.txt, mlperf_log_detail.txt,
                                                      mlperf_log_accuracy.json (truncated), accuracy.txt}
    results/<system>/<benchmark>/<scenario>/performance/run_1/{mlperf_log_summary.txt, mlperf_log_detail.txt}
    results/<system>/<benchmark>/<scenario>/TEST01/...

``v1.0`` (v1.0.1 checker)::

    systems/<system>.json
    code/<benchmark>/<implementation>/README.md
    measurements/<system>/<benchmark>/<scenario>/{mlperf.conf, user.conf, README.md,
                                                  <system>_<implementation>_<scenario>.json}
    results/<system>/<benchmark>/<scenario>/{accuracy, performance/run_1}/  (as above)
    compliance/<system>/<benchmark>/<scenario>/TEST01|TEST05/...

The untruncated accuracy logs go to ``<output>.accuracy-logs/`` at the same relative paths (MLPerf asks
submitters to keep them; ``check`` uses them to verify the ``hash=`` lines).

LoadGen 6.x has its mlperf.conf built in, so ``mlperf.conf`` is written as used: the settings LoadGen
applied to this benchmark and scenario (the ``effective_*`` entries of the performance detail log) in
conf syntax. ``user.conf`` holds the run's user.conf (if one was given) and the expected QPS / latency
the run asked for.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from mlperf_bert import __version__
from mlperf_bert.accuracy.targets import (
    accuracy_target,
    check_benchmark,
    identify_model,
)
from mlperf_bert.errors import ConfigError, DataError
from mlperf_bert.logs.parse import read_detail_log
from mlperf_bert.logs.truncate import truncate_accuracy_log, write_accuracy_txt
from mlperf_bert.machine import MachineFacts, read_machine
from mlperf_bert.models.artifact import source_chain
from mlperf_bert.submission.compliance import read_run_info
from mlperf_bert.submission.system import (
    DIVISIONS,
    implementation_json,
    missing_fields,
    system_description,
)
from mlperf_bert.submission.versions import (
    COMPLIANCE_TESTS,
    LAYOUTS,
    check_layout,
    check_rules,
    default_system_type,
    layout_of_runs,
    optional_scenarios,
    required_scenarios,
)

#: Folder-name-safe characters for system / submitter / implementation names.
_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


class MissingScenarios(ConfigError):
    """Required scenarios have no runs; ``lines`` has one line per missing scenario with its command."""

    def __init__(self, message: str, lines: list[str]) -> None:
        super().__init__(message)
        self.lines = lines


@dataclass(frozen=True)
class SubmissionSpec:
    """What to assemble.

    Attributes:
        output: the submission root to create (must not exist).
        submitter: organisation name (folder and systems JSON).
        system: system description id (folder and JSON name), e.g. ``epyc-2c-ort``.
        runs: run folders from ``mlperf-bert run`` (accuracy and/or performance, any scenarios).
        compliance: compliance folders from ``mlperf-bert compliance``.
        division: ``closed`` or ``open``.
        implementation: implementation name (v1.0 measurements JSON file name and code folder).
        benchmark: ``bert-99``/``bert-99.9`` for runs that recorded none.
        system_overrides / implementation_overrides: user-given JSON fields.
        system_type: ``datacenter``, ``edge``, ``datacenter,edge``; None = the layout's default
            (``versions.default_system_type``).
        reference_f1: fp32 F1 of a model we do not know (sets the target of runs lacking one).
        rules: ``v1.0``, ``current`` or ``quick``; None = what the runs were made under (they must agree).
        layout: ``v1.0`` or ``current``; only for quick runs (default: v1.0 when they used the v1.0 seeds).
        facts: machine facts for the system description (None = read this machine).
    """

    output: Path
    submitter: str
    system: str
    runs: tuple[Path, ...]
    compliance: tuple[Path, ...] = ()
    division: str = "closed"
    implementation: str = "mlperf-bert"
    benchmark: str | None = None
    system_overrides: dict = field(default_factory=dict)
    implementation_overrides: dict = field(default_factory=dict)
    system_type: str | None = None
    reference_f1: float | None = None
    rules: str | None = None
    layout: str | None = None
    facts: MachineFacts | None = None

    def __post_init__(self) -> None:
        for label, value in (("--submitter", self.submitter), ("--system", self.system),
                             ("--implementation", self.implementation)):
            if not value or not set(value) <= _SAFE:
                raise ConfigError(f"{label} {value!r} must be a non-empty folder name of letters, digits, - _ .")
        if self.division not in DIVISIONS:
            raise ConfigError(f"--division must be one of {', '.join(DIVISIONS)}, got {self.division!r}")
        if not self.runs:
            raise ConfigError("give at least one run folder (--run)")
        if self.benchmark is not None:
            check_benchmark(self.benchmark)
        if self.rules is not None:
            check_rules(self.rules)
        if self.layout is not None:
            check_layout(self.layout)


@dataclass
class _Entry:
    benchmark: str
    scenario: str
    accuracy: Path | None = None
    performance: Path | None = None
    info_acc: dict | None = None
    info_perf: dict | None = None
    compliance: dict = field(default_factory=dict)


@dataclass
class Assembled:
    """What ``assemble_submission`` wrote.

    Attributes:
        root: the submission root.
        full_logs: folder with the untruncated accuracy logs.
        rules / layout / system_type: what the tree was written for.
        entries: (benchmark, scenario) pairs written.
        missing_system_fields: ``(field, fails)`` for each systems field still empty (``fails``: the
            layout's checker rejects it).
        warnings: things the user should know (missing compliance ...).
    """

    root: Path
    full_logs: Path
    rules: str = ""
    layout: str = ""
    system_type: str = ""
    entries: list = field(default_factory=list)
    missing_system_fields: list = field(default_factory=list)
    warnings: list = field(default_factory=list)


def _benchmark_of(info: dict, spec: SubmissionSpec) -> str:
    tgt = info.get("config", {}).get("accuracy_target")
    return spec.benchmark or (tgt or {}).get("benchmark") or "bert-99"


def _group(spec: SubmissionSpec) -> tuple[dict[tuple[str, str], _Entry], dict[Path, dict], dict[Path, dict]]:
    groups: dict[tuple[str, str], _Entry] = {}
    infos: dict[Path, dict] = {}
    metas: dict[Path, dict] = {}
    for run in spec.runs:
        run = Path(run)
        info = infos[run] = read_run_info(run)
        status = info.get("status", "complete")  # run.json of runs before statuses were recorded: complete
        if status != "complete":
            why = f": {info['error']}" if info.get("error") else ""
            raise ConfigError(f"{run} is a run that did not complete (status {status} in the {info.get('phase', '?')} "
                              f"phase{why}); submit complete runs only")
        scenario = info["config"]["sut"]["scenario"]
        key = (_benchmark_of(info, spec), scenario)
        entry = groups.setdefault(key, _Entry(*key))
        for mode in ("accuracy", "performance"):
            if (run / mode / "mlperf_log_detail.txt").is_file():
                if getattr(entry, mode) is not None:
                    raise ConfigError(f"two {mode} runs for {key[0]}/{scenario}: {getattr(entry, mode)} and {run}; "
                                      "pass only one")
                setattr(entry, mode, run)
                setattr(entry, "info_acc" if mode == "accuracy" else "info_perf", info)
    for comp in spec.compliance:
        comp = Path(comp)
        try:
            meta = metas[comp] = json.loads((comp / "compliance.json").read_text())
        except (OSError, ValueError):
            raise DataError(f"{comp} is not a compliance folder (no readable compliance.json); pass a folder "
                            "made by 'mlperf-bert compliance'") from None
        key = (spec.benchmark or meta["benchmark"], meta["scenario"])
        if key not in groups:
            raise ConfigError(f"compliance folder {comp} is for {key[0]}/{key[1]}, but no run of that was given")
        if meta["test"] in groups[key].compliance:
            raise ConfigError(f"two {meta['test']} folders for {key[0]}/{key[1]}; pass only one")
        groups[key].compliance[meta["test"]] = comp
    return groups, infos, metas


def resolve_rules(spec: SubmissionSpec, infos: dict[Path, dict], metas: dict[Path, dict]) -> tuple[str, str]:
    """(rules, layout) of a submission: read from the runs' run.json, which must agree with each other,
    with the compliance folders and with ``spec.rules`` / ``spec.layout`` when given.

    Raises:
        ConfigError: one line naming the disagreeing runs or flag.
    """
    kinds: dict[tuple[str, str], list[str]] = {}
    for path, info in infos.items():
        lg = info["config"]["loadgen"]
        kinds.setdefault((lg["rules"], layout_of_runs(lg["rules"], lg.get("seeds"))), []).append(Path(path).name)
    if len(kinds) > 1:
        parts = "; ".join(f"{r} rules{' with the v1.0 seeds' if r == 'quick' and lay == 'v1.0' else ''}: "
                          f"{', '.join(names)}" for (r, lay), names in sorted(kinds.items()))
        raise ConfigError(f"the runs were made under different rules ({parts}); pass runs of one kind")
    (rules, layout), names = next(iter(kinds.items()))
    for path, meta in metas.items():
        if meta.get("rules") not in (None, rules):
            raise ConfigError(f"compliance folder {Path(path).name} was run under {meta['rules']} rules, the runs "
                              f"under {rules}; redo it with 'mlperf-bert compliance'")
    if spec.rules is not None and spec.rules != rules:
        raise ConfigError(f"--rules {spec.rules}, but the runs ({', '.join(names)}) were made with --rules {rules}; "
                          "leave --rules out or pass runs made under it")
    if spec.layout is not None and spec.layout != layout:
        if rules in LAYOUTS:
            raise ConfigError(f"--layout {spec.layout} does not fit runs made under {rules} rules (their layout is "
                              f"{rules})")
        layout = spec.layout
    return rules, layout


def _conf_lines(detail, scenario: str) -> tuple[list[str], list[str]]:
    """(mlperf.conf lines, user.conf lines) describing what LoadGen applied, from a performance detail log."""
    v = detail.values
    m = ["*.*.qsl_rng_seed = %d" % v.get("effective_qsl_rng_seed", 0),
         "*.*.sample_index_rng_seed = %d" % v.get("effective_sample_index_rng_seed", 0),
         "*.*.schedule_rng_seed = %d" % v.get("effective_schedule_rng_seed", 0),
         f"bert.*.performance_sample_count_override = {v.get('effective_performance_sample_count')}",
         f"bert.{scenario}.min_duration = {v.get('effective_min_duration_ms')}",
         f"bert.{scenario}.min_query_count = {v.get('effective_min_query_count')}"]
    if v.get("effective_max_duration_ms"):
        m.append(f"bert.{scenario}.max_duration = {v.get('effective_max_duration_ms')}")
    if scenario in ("Server", "SingleStream", "MultiStream"):
        pct = v.get("effective_target_latency_percentile")
        if pct:
            m.append(f"bert.{scenario}.target_latency_percentile = {pct * 100:g}")
    if scenario == "Server":
        m.append(f"bert.Server.target_latency = {v.get('effective_target_latency_ns', 0) / 1e6:g}")
    if scenario == "MultiStream":
        m.append(f"bert.MultiStream.samples_per_query = {v.get('effective_samples_per_query')}")
    u = []
    if scenario == "Offline" and v.get("requested_offline_expected_qps") is not None:
        u.append(f"bert.Offline.target_qps = {v['requested_offline_expected_qps']}")
    if scenario == "Server" and v.get("requested_server_target_qps") is not None:
        u.append(f"bert.Server.target_qps = {v['requested_server_target_qps']}")
    for key, sc in (("requested_single_stream_expected_latency_ns", "SingleStream"),
                    ("requested_multi_stream_expected_latency_ns", "MultiStream")):
        if scenario == sc and v.get(key) is not None:
            u.append(f"bert.{sc}.target_latency = {v[key] / 1e6:g}")
    return m, u


def _model_label(info: dict) -> str:
    """``starting_weights_filename``: the official file name, or ``<known model>/<weights file>``."""
    model = info["config"]["backend"].get("model")
    if model is None:
        return "none"
    path, known = Path(model), identify_model(model)
    if known is None or known.official:
        return path.name
    source = source_chain(path)[-1]  # an artifact (export, int8 model): the model it was made from
    folder = source if source.is_dir() else source.parent
    weights = next((n for n in ("model.safetensors", "pytorch_model.bin", "model.pytorch", "model.onnx")
                    if (folder / n).is_file()), source.name)
    return f"{known.name}/{weights}"


def command_line(info: dict, scenario: str | None = None) -> str:
    """The ``mlperf-bert run`` command that makes a run like ``info`` (run.json), for ``scenario``."""
    c = info["config"]
    lg, sut, be = c["loadgen"], c["sut"], c["backend"]
    parts = ["mlperf-bert run", f"--backend {be['name']}", f"--scenario {scenario or sut['scenario']}",
             f"--rules {lg['rules']}"]
    if be.get("model"):
        parts.append(f"--model {Path(be['model'])}")  # run.json keeps the model as given, not its artifact
    b = sut["batcher"]
    parts += [f"--batch-size {b['max_batch_size']}", f"--token-budget {b['token_budget'] or 0}",
              f"--workers {sut['workers']}", f"--response-rows {sut['response_rows']}"]
    if lg["rules"] == "quick":
        parts.append(f"--duration {lg['quick_duration_s']:g}")
    if c.get("max_examples"):
        parts.append(f"--max-examples {c['max_examples']}")
    if c.get("accuracy_target"):
        parts.append(f"--benchmark {c['accuracy_target']['benchmark']}")
    if c.get("distributed"):  # Ray replicas
        d = c["distributed"]
        parts.append(f"--replicas {d['replicas']} --replica-inflight {d['inflight_per_replica']}")
        parts += [f"--{flag} {d[key]:g}" for key, flag in (("replica_cpus", "replica-cpus"),
                                                           ("replica_gpus", "replica-gpus")) if d.get(key) is not None]
        if d.get("address"):
            parts.append(f"--ray-address {d['address']}")
    return " ".join(parts)


def _framework(info: dict) -> str:
    """The framework a run used, as its run.json records it (``backend.framework``, from the backend's spec)."""
    backend = info.get("backend") or {}
    return backend.get("framework") or str(info["config"]["backend"]["name"])


def _accelerator_used(infos) -> bool:
    """True when a run's backend reports a GPU device or execution provider (run.json ``backend.detail``)."""
    for info in infos:
        detail = (info.get("backend") or {}).get("detail") or {}
        if "cuda" in str(detail.get("device", "")).lower() or any(
                p in str(detail.get("providers", "")) for p in ("CUDA", "Tensorrt")):
            return True
    return False


def _copy_accuracy(src: Path, dst: Path, root: Path, full_logs: Path, line: str | None = None) -> None:
    """Copy an accuracy folder's logs, keep its full accuracy log under ``full_logs`` and write the
    truncated log and accuracy.txt (evaluator line + ``hash=``)."""
    dst.mkdir(parents=True, exist_ok=True)
    for fname in ("mlperf_log_summary.txt", "mlperf_log_detail.txt"):
        if (src / fname).is_file():
            shutil.copy2(src / fname, dst / fname)
    full = full_logs / dst.relative_to(root) / "mlperf_log_accuracy.json"
    full.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src / "mlperf_log_accuracy.json", full)
    trunc = truncate_accuracy_log(full, dst / "mlperf_log_accuracy.json")
    if line is None:
        try:
            line = (src / "accuracy.txt").read_text().splitlines()[0]
        except (OSError, IndexError):
            raise DataError(f"{src / 'accuracy.txt'} is missing or empty; was the accuracy run scored?") from None
    write_accuracy_txt(dst / "accuracy.txt", line, trunc.sha256)


def _check_scenarios(groups, layout: str, system_type: str, division: str) -> None:
    """Refuse a tree whose scenario set the layout's checker rejects (closed division)."""
    if division != "closed":
        return
    missing, by_bm = [], {}
    for bm, sc in groups:
        by_bm.setdefault(bm, []).append(sc)
    for bm, scs in sorted(by_bm.items()):
        required = required_scenarios(layout, system_type, bm)
        if required is None:
            raise ConfigError(f"{bm} is not allowed on a {system_type} system under the {layout} rules; pick "
                              "another --system-type" + (" (BERT is an edge benchmark there)" if layout == "current"
                                                         else ""))
        allowed = set(required) | set(optional_scenarios(layout, system_type, bm))
        for sc in sorted(set(scs) - allowed):
            raise ConfigError(f"{bm}/{sc} is not a {system_type} scenario under the {layout} rules (the checker "
                              f"fails the whole benchmark); leave that run out")
        sample = next(e for (b, _), e in groups.items() if b == bm)
        info = sample.info_perf or sample.info_acc
        for sc in required:
            if sc not in scs:
                article = "an" if system_type[:1] in "aeiou" else "a"
                missing.append(f"{bm}/{sc} is required for {article} {system_type} system under the {layout} rules; "
                               f"make it with: {command_line(info, sc)} --mode both")
    if missing:
        raise MissingScenarios(f"{len(missing)} required scenario(s) have no runs (listed above); add them with "
                               "--run", missing)


def assemble_submission(spec: SubmissionSpec) -> Assembled:
    """Write the submission tree described by ``spec`` in its layout (see the module docstring).

    Raises:
        ConfigError: the output exists, two runs claim the same slot, a compliance folder has no run, the
            runs disagree on their rules, a scenario is not allowed.
        MissingScenarios: a required scenario has no run (``lines`` names the commands that make them).
        DataError: a run folder lacks run.json or its logs.
    """
    root = Path(spec.output)
    if root.exists():
        raise ConfigError(f"submission folder already exists: {root}; pick another --output")
    full_logs = root.with_name(root.name + ".accuracy-logs")
    if full_logs.exists():
        raise ConfigError(f"{full_logs} already exists; remove it or pick another --output")
    groups, infos, metas = _group(spec)
    rules, layout = resolve_rules(spec, infos, metas)
    sys_type = spec.system_type or default_system_type(layout, {sc for _, sc in groups})
    for (bm, sc), e in sorted(groups.items()):
        if e.performance is None:
            raise ConfigError(f"{bm}/{sc} has an accuracy run but no performance run; add one with --run")
        if e.accuracy is None:
            raise ConfigError(f"{bm}/{sc} has a performance run but no accuracy run; add one with --run")
    _check_scenarios(groups, layout, sys_type, spec.division)

    out = Assembled(root=root, full_logs=full_logs, rules=rules, layout=layout, system_type=sys_type)
    base = root / spec.division / spec.submitter
    first_info = next(e.info_perf or e.info_acc for e in groups.values())
    desc = system_description(facts=spec.facts or read_machine(), submitter=spec.submitter, division=spec.division,
                              system_name=spec.system, framework=_framework(first_info),
                              versions=first_info.get("versions", {}), system_type=sys_type, layout=layout,
                              accelerator_used=_accelerator_used(infos.values()), cluster=first_info.get("cluster"),
                              overrides=spec.system_overrides)
    out.missing_system_fields = missing_fields(desc, layout)
    (base / "systems").mkdir(parents=True)
    (base / "systems" / f"{spec.system}.json").write_text(json.dumps(desc, indent=2) + "\n")
    if layout == "current":
        (base / "src").mkdir()
        (base / "src" / "README.md").write_text(_code_readme(spec.implementation, sorted({b for b, _ in groups})))
        (base / "documentation").mkdir()
        (base / "documentation" / "calibration.md").write_text(_calibration_text(infos.values()))

    for (bm, sc), e in sorted(groups.items()):
        res = base / "results" / spec.system / bm / sc
        _copy_accuracy(e.accuracy / "accuracy", res / "accuracy", root, full_logs)
        acc_info = (e.info_acc or {}).get("accuracy") or {}
        if acc_info.get("full_dev") is False:  # run.json of a subset run (--max-examples, a small dataset)
            out.warnings.append(f"{bm}/{sc}: the accuracy run {e.accuracy.name} scored {acc_info.get('questions_total')} "
                                "questions, not all 10,570 of SQuAD v1.1 dev; its F1 does not count for a submission")
        perf_dst = res / "performance" / "run_1"
        perf_dst.mkdir(parents=True)
        for fname in ("mlperf_log_summary.txt", "mlperf_log_detail.txt"):
            shutil.copy2(e.performance / "performance" / fname, perf_dst / fname)
        info = e.info_perf
        detail = read_detail_log(e.performance / "performance" / "mlperf_log_detail.txt")
        m_lines, u_lines = _conf_lines(detail, sc)
        lgc = info["config"]["loadgen"]
        mlperf_conf = (f"# mlperf.conf as used: MLPerf LoadGen {detail.get('loadgen_version', '?')}, rules preset "
                       f"{lgc['rules']!r} of mlperf-bert {__version__}.\n# LoadGen 6.x builds its mlperf.conf in; "
                       f"these are the settings it applied to bert/{sc} (effective_* of mlperf_log_detail.txt).\n"
                       + "\n".join(m_lines) + "\n")
        user_text = ""
        if lgc.get("user_conf"):
            try:
                user_text = Path(lgc["user_conf"]).read_text().rstrip("\n") + "\n"
            except OSError:
                out.warnings.append(f"user.conf {lgc['user_conf']} of the run is gone; wrote the requested values only")
        user_conf = "# user.conf: what the run asked LoadGen for\n" + user_text + "\n".join(u_lines) + "\n"
        be = info["config"]["backend"]
        precision = (be.get("options") or {}).get("precision") or "fp32"
        impl = implementation_json(model_label=_model_label(info), precision=precision, backend=be["name"],
                                   overrides=spec.implementation_overrides)
        tgt = info["config"].get("accuracy_target") or (e.info_acc or {}).get("config", {}).get("accuracy_target")
        if tgt is None:
            t = accuracy_target(bm, model=be.get("model"), reference_f1=spec.reference_f1)
            tgt = dataclasses.asdict(t) if t else None
        readme = _measurement_readme(bm, sc, e, tgt)
        if layout == "v1.0":
            meas = base / "measurements" / spec.system / bm / sc
            meas.mkdir(parents=True)
            (meas / "mlperf.conf").write_text(mlperf_conf)
            (meas / "user.conf").write_text(user_conf)
            (meas / "README.md").write_text(readme)
            (meas / f"{spec.system}_{spec.implementation}_{sc}.json").write_text(json.dumps(impl, indent=2) + "\n")
            code = base / "code" / bm / spec.implementation
            if not code.is_dir():
                code.mkdir(parents=True)
                (code / "README.md").write_text(_code_readme(spec.implementation, [bm]))
        else:
            (res / "measurements.json").write_text(json.dumps(impl, indent=2) + "\n")
            (res / "mlperf.conf").write_text(mlperf_conf)
            (res / "user.conf").write_text(user_conf)
            (res / "README.md").write_text(readme)
        _write_compliance(spec, e, layout, base, res, root, full_logs, out)
        out.entries.append((bm, sc))
    return out


def _write_compliance(spec: SubmissionSpec, e: _Entry, layout: str, base: Path, res: Path, root: Path,
                      full_logs: Path, out: Assembled) -> None:
    bm, sc = e.benchmark, e.scenario
    for test in sorted(set(e.compliance) - set(COMPLIANCE_TESTS[layout])):
        out.warnings.append(f"{bm}/{sc}: {test} is not part of the {layout} rules; left out")
    for test in COMPLIANCE_TESTS[layout]:
        src = e.compliance.get(test)
        if src is None:
            out.warnings.append(f"{bm}/{sc}: no {test} folder given; make it with: mlperf-bert compliance {test} "
                                f"--results {e.performance}")
            continue
        if layout == "v1.0":
            shutil.copytree(src / test, base / "compliance" / spec.system / bm / sc / test)
            continue
        dst = res / test
        shutil.copytree(src / test, dst, ignore=shutil.ignore_patterns("mlperf_log_accuracy.json"))
        acc = src / test / "accuracy"
        if (acc / "mlperf_log_accuracy.json").is_file():  # what the truncation tool does to TEST01/accuracy
            lines = (acc / "accuracy.txt").read_text().splitlines() if (acc / "accuracy.txt").is_file() else []
            _copy_accuracy(acc, dst / "accuracy", root, full_logs, line=lines[0] if lines else "")
        for extra in ("mlperf_log_accuracy.json",):
            if (src / test / "performance" / "run_1" / extra).is_file():
                shutil.copy2(src / test / "performance" / "run_1" / extra, dst / "performance" / "run_1" / extra)


def _code_readme(implementation: str, benchmarks) -> str:
    return (f"# {implementation} for {', '.join(benchmarks)}\n\nThe harness is the `mlperf-bert` Python package, "
            f"version {__version__} (`pip install mlperf-bert=={__version__}`); its source is the project repository "
            "at that version. Nothing was changed for this submission.\n")


def _calibration_text(infos) -> str:
    precisions = sorted({((i["config"]["backend"].get("options") or {}).get("precision") or "fp32") for i in infos})
    return ("# Calibration\n\nWeights are used as given (" + ", ".join(precisions) + "); "
            "no calibration was done for these runs.\n" if precisions == ["fp32"] else
            "# Calibration\n\nSee the model's manifest.json (mlperf-bert quantize) for the calibration set and "
            "method.\n")


def _measurement_readme(bm: str, sc: str, e: _Entry, target: dict | None) -> str:
    info = e.info_perf
    v = info.get("versions", {})
    m = info.get("machine", {})
    lines = [f"# {bm} / {sc}", "",
             "Produced with mlperf-bert. To reproduce, run from the project checkout:", "",
             "```", command_line(e.info_acc) + " --mode accuracy", command_line(info) + " --mode performance", "```",
             "", f"- accuracy run: `{e.accuracy.name}`, performance run: `{e.performance.name}`",
             "- versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
             f"- machine: {m.get('cpu', '?')}, {m.get('logical_cpus', '?')} logical CPUs, "
             f"{m.get('memory_gib', '?')} GiB, {m.get('os', '?')}"]
    if target:
        lines.append(f"- accuracy target: F1 >= {target['target_f1']:.3f} ({target['fraction'] * 100:g}% of "
                     f"{target['reference_f1']:.3f}, {target['model']}; {target['source']})")
    if info["config"]["loadgen"]["rules"] == "quick":
        lines.append("- **rules preset `quick`: a development run, not valid for submission**")
    return "\n".join(lines) + "\n"
