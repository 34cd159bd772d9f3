"""Assemble run folders and compliance folders into an MLPerf submission tree (docs/submission.md#layout-v10).

Layout written under ``<output>/<division>/<submitter>/``::

    systems/<system>.json
    code/<benchmark>/<implementation>/README.md
    measurements/<system>/<benchmark>/<scenario>/{mlperf.conf, user.conf, README.md,
                                                  <system>_<implementation>_<scenario>.json}
    results/<system>/<benchmark>/<scenario>/accuracy/{mlperf_log_summary.txt, mlperf_log_detail.txt,
                                                      mlperf_log_accuracy.json (truncated), accuracy.txt}
    results/<system>/<benchmark>/<scenario>/performance/run_1/{mlperf_log_summary.txt, mlperf_log_detail.txt}
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
from mlperf_bert.errors import ConfigError, DataError
from mlperf_bert.logs.parse import read_detail_log
from mlperf_bert.logs.truncate import truncate_accuracy_log, write_accuracy_txt
from mlperf_bert.submission.benchmark import accuracy_target, check_benchmark, identify_model
from mlperf_bert.submission.compliance import read_run_info
from mlperf_bert.submission.system import DIVISIONS, implementation_json, system_description

#: Folder-name-safe characters for system / submitter / implementation names.
_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


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
        implementation: implementation name in the measurements JSON file name.
        benchmark: ``bert-99``/``bert-99.9`` for runs that recorded none.
        system_overrides / implementation_overrides: user-given JSON fields.
        system_type: ``datacenter``, ``edge``, ``datacenter,edge``; None = from the scenarios present.
        reference_f1: fp32 F1 of a model we do not know (sets the target of runs lacking one).
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
        entries: (benchmark, scenario) pairs written.
        warnings: things the user should know (missing compliance, missing accuracy run ...).
    """

    root: Path
    full_logs: Path
    entries: list = field(default_factory=list)
    warnings: list = field(default_factory=list)


def _benchmark_of(info: dict, spec: SubmissionSpec) -> str:
    tgt = info.get("config", {}).get("accuracy_target")
    return spec.benchmark or (tgt or {}).get("benchmark") or "bert-99"


def _group(spec: SubmissionSpec) -> dict[tuple[str, str], _Entry]:
    groups: dict[tuple[str, str], _Entry] = {}
    for run in spec.runs:
        run = Path(run)
        info = read_run_info(run)
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
            meta = json.loads((comp / "compliance.json").read_text())
        except (OSError, ValueError):
            raise DataError(f"{comp} is not a compliance folder (no readable compliance.json); pass a folder "
                            "made by 'mlperf-bert compliance'") from None
        key = (spec.benchmark or meta["benchmark"], meta["scenario"])
        if key not in groups:
            raise ConfigError(f"compliance folder {comp} is for {key[0]}/{key[1]}, but no run of that was given")
        if meta["test"] in groups[key].compliance:
            raise ConfigError(f"two {meta['test']} folders for {key[0]}/{key[1]}; pass only one")
        groups[key].compliance[meta["test"]] = comp
    return groups


def _system_type(scenarios: set[str]) -> str:
    if "Server" in scenarios and "SingleStream" in scenarios:
        return "datacenter,edge"
    if "SingleStream" in scenarios:
        return "edge"
    return "datacenter"


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
    source = path
    manifest = path.with_name(path.name + ".json")
    if path.suffix == ".onnx" and manifest.is_file():  # an export made by convert.to_onnx
        source = Path(json.loads(manifest.read_text()).get("source", path))
    folder = source if source.is_dir() else source.parent
    weights = next((n for n in ("model.safetensors", "pytorch_model.bin", "model.pytorch", "model.onnx")
                    if (folder / n).is_file()), source.name)
    return f"{known.name}/{weights}"


def _command_line(info: dict) -> str:
    c = info["config"]
    lg, sut, be = c["loadgen"], c["sut"], c["backend"]
    parts = ["mlperf-bert run", f"--backend {be['name']}", f"--scenario {sut['scenario']}", f"--rules {lg['rules']}"]
    if be.get("model"):
        model = Path(be["model"])
        manifest = model.with_name(model.name + ".json")
        if model.suffix == ".onnx" and manifest.is_file():  # a cached export: name what it was made from
            model = Path(json.loads(manifest.read_text()).get("source", model))
        parts.append(f"--model {model}")
    b = sut["batcher"]
    parts += [f"--batch-size {b['max_batch_size']}", f"--token-budget {b['token_budget'] or 0}",
              f"--workers {sut['workers']}", f"--response-rows {sut['response_rows']}"]
    if lg["rules"] == "quick":
        parts.append(f"--duration {lg['quick_duration_s']:g}")
    if c.get("max_examples"):
        parts.append(f"--max-examples {c['max_examples']}")
    if c.get("accuracy_target"):
        parts.append(f"--benchmark {c['accuracy_target']['benchmark']}")
    return " ".join(parts)


def assemble_submission(spec: SubmissionSpec) -> Assembled:
    """Write the submission tree described by ``spec``.

    Raises:
        ConfigError: the output exists, two runs claim the same slot, a compliance folder has no run.
        DataError: a run folder lacks run.json or its logs.
    """
    root = Path(spec.output)
    if root.exists():
        raise ConfigError(f"submission folder already exists: {root}; pick another --output")
    full_logs = root.with_name(root.name + ".accuracy-logs")
    if full_logs.exists():
        raise ConfigError(f"{full_logs} already exists; remove it or pick another --output")
    groups = _group(spec)
    out = Assembled(root=root, full_logs=full_logs)
    base = root / spec.division / spec.submitter
    sys_type = spec.system_type or _system_type({sc for _, sc in groups})
    first_info = next(e.info_perf or e.info_acc for e in groups.values())
    desc = system_description(submitter=spec.submitter, division=spec.division, system_name=spec.system,
                              backend=first_info["config"]["backend"]["name"],
                              versions=first_info.get("versions", {}), system_type=sys_type,
                              overrides=spec.system_overrides)
    (base / "systems").mkdir(parents=True)
    (base / "systems" / f"{spec.system}.json").write_text(json.dumps(desc, indent=2) + "\n")

    for (bm, sc), e in sorted(groups.items()):
        if e.performance is None:
            raise ConfigError(f"{bm}/{sc} has an accuracy run but no performance run; add one with --run")
        if e.accuracy is None:
            raise ConfigError(f"{bm}/{sc} has a performance run but no accuracy run; add one with --run")
        res = base / "results" / spec.system / bm / sc
        meas = base / "measurements" / spec.system / bm / sc
        # accuracy: logs, truncated log, accuracy.txt with hash
        acc_src, acc_dst = e.accuracy / "accuracy", res / "accuracy"
        acc_dst.mkdir(parents=True)
        for fname in ("mlperf_log_summary.txt", "mlperf_log_detail.txt"):
            shutil.copy2(acc_src / fname, acc_dst / fname)
        full = full_logs / acc_dst.relative_to(root) / "mlperf_log_accuracy.json"
        full.parent.mkdir(parents=True)
        shutil.copy2(acc_src / "mlperf_log_accuracy.json", full)
        trunc = truncate_accuracy_log(full, acc_dst / "mlperf_log_accuracy.json")
        try:
            line = (acc_src / "accuracy.txt").read_text().splitlines()[0]
        except (OSError, IndexError):
            raise DataError(f"{acc_src / 'accuracy.txt'} is missing or empty; was the accuracy run scored?") from None
        write_accuracy_txt(acc_dst / "accuracy.txt", line, trunc.sha256)
        acc_info = (e.info_acc or {}).get("accuracy") or {}
        if acc_info.get("full_dev") is False:  # run.json of a subset run (--max-examples, a small dataset)
            out.warnings.append(f"{bm}/{sc}: the accuracy run {e.accuracy.name} scored {acc_info.get('questions_total')} "
                                "questions, not all 10,570 of SQuAD v1.1 dev; its F1 does not count for a submission")
        # performance run_1
        perf_dst = res / "performance" / "run_1"
        perf_dst.mkdir(parents=True)
        for fname in ("mlperf_log_summary.txt", "mlperf_log_detail.txt"):
            shutil.copy2(e.performance / "performance" / fname, perf_dst / fname)
        # measurements
        meas.mkdir(parents=True)
        info = e.info_perf
        detail = read_detail_log(e.performance / "performance" / "mlperf_log_detail.txt")
        m_lines, u_lines = _conf_lines(detail, sc)
        lgc = info["config"]["loadgen"]
        (meas / "mlperf.conf").write_text(
            f"# mlperf.conf as used: MLPerf LoadGen {detail.get('loadgen_version', '?')}, rules preset "
            f"{lgc['rules']!r} of mlperf-bert {__version__}.\n# LoadGen 6.x builds its mlperf.conf in; these are "
            f"the settings it applied to bert/{sc} (effective_* of mlperf_log_detail.txt).\n"
            + "\n".join(m_lines) + "\n")
        user_text = ""
        if lgc.get("user_conf"):
            try:
                user_text = Path(lgc["user_conf"]).read_text().rstrip("\n") + "\n"
            except OSError:
                out.warnings.append(f"user.conf {lgc['user_conf']} of the run is gone; wrote the requested values only")
        (meas / "user.conf").write_text("# user.conf: what the run asked LoadGen for\n" + user_text
                                        + "\n".join(u_lines) + "\n")
        label = _model_label(info)
        be = info["config"]["backend"]
        precision = (be.get("options") or {}).get("precision") or "fp32"
        impl = implementation_json(model_label=label, precision=precision, backend=be["name"],
                                   overrides=spec.implementation_overrides)
        (meas / f"{spec.system}_{spec.implementation}_{sc}.json").write_text(json.dumps(impl, indent=2) + "\n")
        tgt = info["config"].get("accuracy_target") or (e.info_acc or {}).get("config", {}).get("accuracy_target")
        if tgt is None:
            t = accuracy_target(bm, model=be.get("model"), reference_f1=spec.reference_f1)
            tgt = dataclasses.asdict(t) if t else None
        (meas / "README.md").write_text(_measurement_readme(bm, sc, e, tgt))
        code = base / "code" / bm / spec.implementation
        if not code.is_dir():
            code.mkdir(parents=True)
            (code / "README.md").write_text(
                f"# {spec.implementation} for {bm}\n\nThe harness is the `mlperf-bert` Python package, version "
                f"{__version__} (`pip install mlperf-bert=={__version__}`); its source is the project "
                "repository at that version. Nothing was changed for this submission.\n")
        # compliance
        for test in ("TEST01", "TEST05"):
            src = e.compliance.get(test)
            if src is None:
                out.warnings.append(f"{bm}/{sc}: no {test} folder given (run 'mlperf-bert compliance {test}')")
                continue
            shutil.copytree(src / test, base / "compliance" / spec.system / bm / sc / test)
        out.entries.append((bm, sc))
    return out


def _measurement_readme(bm: str, sc: str, e: _Entry, target: dict | None) -> str:
    info = e.info_perf
    v = info.get("versions", {})
    m = info.get("machine", {})
    lines = [f"# {bm} / {sc}", "",
             "Produced with mlperf-bert. To reproduce, run from the project checkout:", "",
             "```", _command_line(e.info_acc) + " --mode accuracy", _command_line(info) + " --mode performance", "```",
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
