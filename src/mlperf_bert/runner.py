"""The one orchestrator: features -> QSL -> backend -> SUT -> LoadGen -> accuracy -> run folder.

Every run writes into its own folder ``<output_dir>/<name>``: it is built as ``<name>.partial`` and renamed
when the run ends (``<name>.failed`` if it raised), so a finished folder is always complete and a failed
run's logs are kept. The folder holds one sub-folder per LoadGen test (``accuracy/``, ``performance/``)
with LoadGen's logs, accuracy.txt and predictions.json, and ``run.json`` with the resolved settings,
versions, machine and headline results.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import mlperf_loadgen as lg
import numpy as np

from mlperf_bert import machine
from mlperf_bert.backends.registry import BackendConfig, BackendRegistry
from mlperf_bert.config import DataPaths, SquadConfig
from mlperf_bert.errors import BackendFailure, ConfigError
from mlperf_bert.logs.parse import PerfResult, perf_result, read_detail_log
from mlperf_bert.logs.settings import LoadGenConfig, build_log_settings, build_test_settings
from mlperf_bert.qsl.qsl import SquadQSL
from mlperf_bert.squad.types import Example, Features
from mlperf_bert.sut.batcher import plan_batches
from mlperf_bert.sut.sut import BertSUT, SUTConfig


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs, resolved by the CLI.

    Attributes:
        data: dataset, vocab and cache paths.
        squad: pre/postprocessing constants.
        backend: which runtime and model.
        sut: scenario and batching.
        loadgen: mode, rules and LoadGen overrides (its scenario must equal ``sut.scenario``).
        modes: LoadGen tests to run in order, e.g. ``("accuracy", "performance")``.
        output_dir: parent folder of run folders.
        run_name: folder name (default: ``<utc time>-<backend>-<scenario>``).
        max_examples: use only the first N questions (and their features); None = all.
        probe: size the performance run from a short probe when no expected QPS/latency is given.
        accuracy_dtype: dtype of the responses in the accuracy log (``float32``).
        accuracy_target: the benchmark's F1 target (``submission.benchmark.AccuracyTarget``), or None;
            recorded in run.json and shown in the summary.
    """

    data: DataPaths
    backend: BackendConfig
    sut: SUTConfig = field(default_factory=SUTConfig)
    loadgen: LoadGenConfig = field(default_factory=LoadGenConfig)
    squad: SquadConfig = field(default_factory=SquadConfig)
    modes: tuple[str, ...] = ("accuracy", "performance")
    output_dir: Path = Path("runs")
    run_name: str | None = None
    max_examples: int | None = None
    probe: bool = True
    accuracy_target: Any = None

    def __post_init__(self) -> None:
        if self.loadgen.scenario != self.sut.scenario:
            raise ConfigError(f"LoadGen scenario {self.loadgen.scenario} != SUT scenario {self.sut.scenario}")
        if self.max_examples is not None and self.max_examples < 1:
            raise ConfigError(f"--max-examples must be >= 1, got {self.max_examples}")
        if self.run_name is not None and (self.run_name in ("", ".", "..") or "/" in self.run_name
                                          or "\\" in self.run_name):
            raise ConfigError(f"--run-name must be a plain folder name (no '/' or '..'), got {self.run_name!r}")
        out = Path(self.output_dir)
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--output-dir {out} is a file, not a folder")


@dataclass
class RunResult:
    """What a run produced: the folder and a headline per LoadGen test."""

    run_dir: Path
    accuracy: Any | None = None  # accuracy.evaluate.AccuracyResult
    performance: PerfResult | None = None
    probe: dict | None = None
    info: dict = field(default_factory=dict)


def subset_features(examples: list[Example], features: Features, max_examples: int | None
                    ) -> tuple[list[Example], Features]:
    """The first ``max_examples`` questions and their features (a prefix: features are in example order)."""
    if max_examples is None or max_examples >= len(examples):
        return examples, features
    n = int(np.searchsorted(features.example_index, max_examples, side="left"))
    arrays = {f.name: getattr(features, f.name)[:n] for f in dataclasses.fields(features)}
    return examples[:max_examples], Features(**arrays)


OFFLINE_PROBE_POOL = 1024


def probe_throughput(backend, qsl: SquadQSL, sut_cfg: SUTConfig, seconds: float = 3.0, seed: int = 0) -> dict:
    """Measure the backend on random dev samples with the run's batching, before LoadGen starts.

    Offline: ``OFFLINE_PROBE_POOL`` (1,024) random samples planned together, as the SUT plans one large
    Offline query (sorted by length, so batches pad little), timed over those batches in random order
    until ``seconds`` pass. Server: random batches of ``max_batch_size`` samples (what a busy Server queue
    holds). Both give samples/s; the first batch is warm-up, untimed.
    SingleStream/MultiStream: mean latency of one query (1 or 8 samples) in ms.
    Returns a dict with ``samples_per_second`` and ``query_latency_ms`` (the one the scenario uses).
    """
    rng = np.random.default_rng(seed)
    per_query = {"SingleStream": 1, "MultiStream": 8}.get(sut_cfg.scenario)
    cap = qsl.input_ids.shape[1]

    def planned(idx: np.ndarray) -> list[np.ndarray]:
        return [idx[b] for b in plan_batches(qsl.lengths[idx], sut_cfg.batcher, cap)]

    def run(batch: np.ndarray) -> None:
        seq = int(qsl.lengths[batch].max())
        backend.predict(qsl.input_ids[batch, :seq], qsl.input_mask[batch, :seq], qsl.segment_ids[batch, :seq])

    size = per_query or sut_cfg.batcher.max_batch_size
    if sut_cfg.scenario == "Offline":
        pool = planned(rng.choice(qsl.count, size=min(OFFLINE_PROBE_POOL, qsl.count), replace=False))
        order = rng.permutation(len(pool))
        queries_of = lambda k: [pool[order[k % len(order)]]]  # noqa: E731 - one batch at a time
    else:
        queries_of = lambda k: planned(rng.choice(qsl.count, size=min(size, qsl.count), replace=False))  # noqa: E731
    for b in queries_of(0):  # warm-up
        run(b)
    done, t0 = 0, time.perf_counter()
    queries = 0
    while time.perf_counter() - t0 < seconds or queries == 0:
        for b in queries_of(queries + 1):
            run(b)
            done += len(b)
        queries += 1
    dt = time.perf_counter() - t0
    return {"samples_per_second": done / dt, "query_latency_ms": 1000.0 * dt / queries,
            "samples": done, "seconds": dt}


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(obj).items()}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    return obj


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` via a temporary file and ``os.replace``."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_jsonable(data), indent=2) + "\n")
    os.replace(tmp, path)


def _run_loadgen(backend, qsl: SquadQSL, sut_cfg: SUTConfig, lg_cfg: LoadGenConfig, outdir: Path,
                 sut_class: type = BertSUT) -> BertSUT:
    outdir.mkdir(parents=True, exist_ok=True)
    settings = build_test_settings(lg_cfg)
    log_settings = build_log_settings(outdir, trace=lg_cfg.trace)
    audit = str(lg_cfg.audit_conf) if lg_cfg.audit_conf else str(outdir / "audit.config")
    with sut_class(backend, qsl, sut_cfg) as sut:
        lg.StartTestWithLogSettings(sut.handle, qsl.handle, settings, log_settings, audit)
    return sut


def run_benchmark(cfg: RunConfig, *, registry: BackendRegistry | None = None,
                  load_data: Callable | None = None, progress: bool = True,
                  on_event: Callable[[str], None] | None = None) -> RunResult:
    """Run the configured LoadGen tests and return their headlines.

    Args:
        cfg: the run configuration.
        registry: backend registry (tests register fakes); default: the built-ins.
        load_data: ``(DataPaths, SquadConfig, progress) -> (examples, features)``; default
            ``squad.cache.load_features``.
        progress: show progress bars.
        on_event: called with one-line status messages (the CLI prints them).

    Raises:
        HarnessError subclasses: bad data/model/config (before LoadGen starts), or BackendFailure when the
        backend raised during the test (the run folder is then kept as ``<name>.failed``).
    """
    say = on_event or (lambda msg: None)
    registry = registry or BackendRegistry()
    if load_data is None:
        from mlperf_bert.squad.cache import load_features as load_data
    t_start = time.time()
    examples, features = load_data(cfg.data, cfg.squad, progress)
    examples, features = subset_features(examples, features, cfg.max_examples)
    say(f"{len(features):,} features from {len(examples):,} questions ({cfg.data.dataset})")

    backend = registry.load(cfg.backend)
    name = cfg.run_name or time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + f"-{cfg.backend.name}-{cfg.sut.scenario}"
    final_dir = Path(cfg.output_dir) / name
    if final_dir.exists():
        raise ConfigError(f"run folder already exists: {final_dir}; pick another --run-name")
    work_dir = final_dir.with_name(name + ".partial")
    work_dir.mkdir(parents=True, exist_ok=False)
    result = RunResult(run_dir=final_dir)
    info: dict[str, Any] = {
        "config": cfg, "versions": machine.package_versions(), "machine": machine.machine_summary(),
        "backend_detail": {k: str(getattr(backend, k)) for k in ("providers", "input_names", "precision", "device")
                           if hasattr(backend, k)},
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t_start)),
        "features": len(features), "questions": len(examples),
    }
    failed: BaseException | None = None
    try:
        with SquadQSL(features, cfg.loadgen.performance_sample_count) as qsl:
            for mode in cfg.modes:
                lg_cfg = dataclasses.replace(cfg.loadgen, mode=mode)
                if mode == "performance":
                    info["host_load"] = machine.sample_host_load().to_dict()  # before the probe and the run
                if mode == "performance" and cfg.probe and _needs_probe(lg_cfg):
                    say("probing throughput to size the performance run ...")
                    result.probe = probe_throughput(backend, qsl, cfg.sut)
                    lg_cfg = _apply_probe(lg_cfg, result.probe)
                    info["probe"] = result.probe
                say(f"LoadGen {cfg.sut.scenario} {mode} run ({lg_cfg.rules} rules) ...")
                sut = _run_loadgen(backend, qsl, cfg.sut, lg_cfg, work_dir / mode)
                info[f"{mode}_loadgen"] = lg_cfg
                if sut.error is not None:
                    raise BackendFailure(f"backend {cfg.backend.name!r} failed during the {mode} run: "
                                         f"{str(sut.error).splitlines()[0] if str(sut.error) else type(sut.error).__name__}"
                                         f" (logs kept in {final_dir.name}.failed)") from sut.error
                if mode == "accuracy":
                    from mlperf_bert.accuracy.evaluate import evaluate_accuracy_log
                    from mlperf_bert.squad.tokenization import load_vocab

                    say("scoring the accuracy log ...")
                    result.accuracy = evaluate_accuracy_log(
                        work_dir / mode / "mlperf_log_accuracy.json", examples, features,
                        load_vocab(cfg.data.vocab), cfg.squad, work_dir / mode)
                    info["accuracy"] = {k: v for k, v in dataclasses.asdict(result.accuracy).items()
                                        if k != "predictions"}  # predictions.json holds those
                else:
                    result.performance = perf_result(read_detail_log(work_dir / mode / "mlperf_log_detail.txt"))
                    info["performance"] = result.performance.to_dict()
    except BaseException as exc:
        failed = exc
        raise
    finally:
        backend.close()
        info["finished_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        info["wall_seconds"] = round(time.time() - t_start, 3)
        if failed is not None:
            info["error"] = f"{type(failed).__name__}: {failed}"
        write_json_atomic(work_dir / "run.json", info)
        target = final_dir if failed is None else final_dir.with_name(name + ".failed")
        os.replace(work_dir, target)
        result.run_dir = target
    result.info = info
    return result


def _needs_probe(c: LoadGenConfig) -> bool:
    if c.scenario in ("Offline", "Server"):
        return c.expected_qps is None
    return c.expected_latency_ms is None


OFFLINE_PROBE_MARGIN = 1.25


def _apply_probe(c: LoadGenConfig, probe: dict) -> LoadGenConfig:
    """Expected QPS/latency from the probe.

    Offline: ``OFFLINE_PROBE_MARGIN`` (1.25) x the probe. LoadGen issues about 1.1 x expected QPS x
    minimum duration samples in one query; when the run is faster than the probe it ends before the
    minimum duration and is INVALID, while a slower run only lasts longer. The probe plans its batches
    like one Offline query (``probe_throughput``); the margin covers the rest (noise, a larger query
    packing tighter). Server: half the measured throughput (a safe start;
    ``find-peak`` searches the real limit)."""
    if c.scenario == "Offline":
        return dataclasses.replace(c, expected_qps=OFFLINE_PROBE_MARGIN * probe["samples_per_second"])
    if c.scenario == "Server":
        return dataclasses.replace(c, expected_qps=0.5 * probe["samples_per_second"])
    return dataclasses.replace(c, expected_latency_ms=probe["query_latency_ms"])
