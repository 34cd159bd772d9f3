"""The one orchestrator: features -> QSL -> backend -> SUT -> LoadGen -> accuracy -> run folder.

Every run writes into its own folder ``<output_dir>/<name>``: it is built as ``<name>.partial`` and renamed
when the run ends: ``<name>`` when it completed, ``<name>.failed`` if it raised, ``<name>.interrupted`` after
Ctrl-C, so a finished folder is always complete and the logs of a failed or interrupted run are kept (as
far as LoadGen got). The folder holds one sub-folder per LoadGen test (``accuracy/``, ``performance/``)
with LoadGen's logs, accuracy.txt and predictions.json, and ``run.json`` with the resolved settings (each
LoadGen setting with its source), versions, machine, headline results, ``status`` (``complete``,
``failed``, ``interrupted``) and, when not complete, the ``phase`` it stopped in. No folder is made
before the features and the backend are ready, so a run stopped while they load leaves nothing behind.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from mlperf_bert import machine
from mlperf_bert.backends.base import BackendConfig
from mlperf_bert.backends.registry import BackendRegistry
from mlperf_bert.config import DataPaths, SquadConfig
from mlperf_bert.distributed.ray_pool import DistributedConfig
from mlperf_bert.errors import BackendFailure, ConfigError, RunInterrupted
from mlperf_bert.fileio import write_json_atomic
from mlperf_bert.loadgen.session import interrupts_deferred, run_test
from mlperf_bert.loadgen.settings import SOURCE_PROBE, LoadGenConfig
from mlperf_bert.logs.parse import PerfResult, perf_result, read_detail_log
from mlperf_bert.qsl.qsl import SquadQSL
from mlperf_bert.squad.types import Example, Features
from mlperf_bert.sut.batcher import plan_batches
from mlperf_bert.sut.sut import SUTConfig, concurrent_calls, threads_per_worker, worker_count
from mlperf_bert.tune import SOURCE_THREADS_RULE


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
        accuracy_target: the benchmark's F1 target (``accuracy.targets.AccuracyTarget``), or None;
            recorded in run.json and shown in the summary.
        distributed: backend replicas on Ray (``--replicas``; ``distributed.ray_pool``), or None for one
            backend in this process.
        harness: where the batching, workers, threads and tuned backend options came from
            (``tune.Harness``: flag, tuned profile or device default), or None; recorded in run.json and shown
            in the summary. Not part of equality: the same effective settings make the same run.
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
    distributed: DistributedConfig | None = None
    harness: Any = field(default=None, compare=False)

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
    Offline and Server run the batches over as many threads as the SUT will (``worker_count``: a replica
    pool's ``slots``), so a pool of replicas is measured as a whole.
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
    threads = 1 if per_query else worker_count(backend, sut_cfg)
    if sut_cfg.scenario == "Offline":
        pool = planned(rng.choice(qsl.count, size=min(OFFLINE_PROBE_POOL, qsl.count), replace=False))
        order = rng.permutation(len(pool))
        queries_of = lambda k: [pool[order[(k * threads + j) % len(order)]] for j in range(threads)]  # noqa: E731
    else:
        queries_of = lambda k: [b for _ in range(threads)  # noqa: E731
                                for b in planned(rng.choice(qsl.count, size=min(size, qsl.count), replace=False))]
    executor = ThreadPoolExecutor(threads) if threads > 1 else None
    run_all = (lambda bs: list(executor.map(run, bs))) if executor else (lambda bs: [run(b) for b in bs])  # noqa: E731
    try:
        run_all(queries_of(0))  # warm-up
        done, t0 = 0, time.perf_counter()
        queries = 0
        while time.perf_counter() - t0 < seconds or queries == 0:
            batches = queries_of(queries + 1)
            run_all(batches)
            done += sum(len(b) for b in batches)
            queries += 1
        dt = time.perf_counter() - t0
    finally:
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
    return {"samples_per_second": done / dt, "query_latency_ms": 1000.0 * dt / queries,
            "samples": done, "seconds": dt}


def backend_record(registry: BackendRegistry, config: BackendConfig, backend) -> dict:
    """What run.json says about the backend: name, framework and its versions, every option (given or
    default), the prepared model it loaded, and what the backend reports of itself (``describe()``)."""
    spec = registry.spec(config.name)
    record = {"name": spec.name, "framework": registry.framework(spec.name), "versions": registry.versions(spec.name),
              "options": spec.resolved_options(config.options), "model": config.model}
    describe = getattr(backend, "describe", None)
    if callable(describe):
        record["detail"] = describe()
    return record


#: Suffixes of a run folder's states (``<name>`` itself = complete).
FOLDER_STATES = (".partial", ".failed", ".interrupted")


def check_output_dir(out: Path) -> None:
    """Refuse an output folder that cannot be written, before any work and without creating anything.

    The folder itself (or, when it does not exist yet, its nearest existing parent) must accept a new
    file: one is created and removed there.

    Raises:
        ConfigError: one line naming the folder.
    """
    out = Path(out)
    probe_dir = out
    while not probe_dir.exists() and probe_dir != probe_dir.parent:
        probe_dir = probe_dir.parent
    if not probe_dir.is_dir():
        raise ConfigError(f"--output-dir {out}: {probe_dir} is a file, not a folder")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".mlperf-bert-write-test-", dir=probe_dir)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise ConfigError(f"--output-dir {out}: cannot write in {probe_dir} ({exc.strerror or exc}); "
                          "pass a writable --output-dir") from None


def _taken(out: Path, name: str) -> Path | None:
    for suffix in ("", *FOLDER_STATES):
        p = out / (name + suffix)
        if p.exists():
            return p
    return None


def check_run_name(out: Path, name: str | None) -> None:
    """Refuse a chosen run name whose folder exists in any state (auto-generated names get a suffix later).

    Raises:
        ConfigError: one line naming the folder.
    """
    if name is not None and (taken := _taken(Path(out), name)) is not None:
        raise _clash(taken)


def _clash(path: Path) -> ConfigError:
    if path.name.endswith(".partial"):
        why = "a run with this --run-name is running, or one was killed"
    else:
        why = "a run with this name exists"
    return ConfigError(f"run folder {path} already exists ({why}); pick another --run-name or remove it")


def make_run_dir(out: Path, name: str, *, auto: bool) -> tuple[str, Path]:
    """Create ``<out>/<name>.partial`` exclusively and return (name, that folder).

    A name whose folder exists in any state (complete, ``.partial``, ``.failed``, ``.interrupted``) is
    taken: an auto-generated name then gets the next free suffix (``-2``, ``-3``, ...); a name the user
    chose is refused. ``mkdir`` without ``exist_ok`` is the lock, so two runs started at once with the
    same name cannot share a folder.

    Raises:
        ConfigError: the chosen name is taken, or the folder cannot be created (one line each).
    """
    out = Path(out)
    base = name
    for k in range(1, 1000):
        name = base if k == 1 else f"{base}-{k}"
        taken = _taken(out, name)
        if taken is None:
            work = out / (name + ".partial")
            try:
                out.mkdir(parents=True, exist_ok=True)
                work.mkdir()
                return name, work
            except FileExistsError:
                taken = work
            except OSError as exc:
                raise ConfigError(f"--output-dir {out}: cannot create the run folder {work.name} "
                                  f"({exc.strerror or exc}); pass a writable --output-dir") from None
        if not auto:
            raise _clash(taken)
    raise ConfigError(f"no free run folder name {base}-N under {out}; pass --run-name")


def _finish_dir(work_dir: Path, final_dir: Path, status: str) -> Path:
    """Rename the ``.partial`` folder to its final state; a target that appeared meanwhile gets a suffix."""
    target = final_dir if status == "complete" else final_dir.with_name(f"{final_dir.name}.{status}")
    k = 2
    while True:
        try:
            os.rename(work_dir, target)  # never replaces an existing (non-empty) folder
            return target
        except OSError:
            if not target.exists() or k > 99:
                raise
            stem = final_dir.name + f"-{k}"
            target = final_dir.with_name(stem if status == "complete" else f"{stem}.{status}")
            k += 1


def run(cfg: RunConfig, *, registry: BackendRegistry | None = None,
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
        HarnessError subclasses: bad data/model/config (before LoadGen starts; an unwritable output folder
        or a run name in use among them), or BackendFailure when the backend raised during the test (the
        run folder is then kept as ``<name>.failed``).
        RunInterrupted: Ctrl-C (the folder, if one was made, is kept as ``<name>.interrupted``).
    """
    say = on_event or (lambda msg: None)
    registry = registry or BackendRegistry.from_entry_points()
    if load_data is None:
        from mlperf_bert.squad.cache import load_features as load_data
    t_start = time.time()
    out = Path(cfg.output_dir)
    check_output_dir(out)
    check_run_name(out, cfg.run_name)
    auto = cfg.run_name is None
    name = cfg.run_name or time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + f"-{cfg.backend.name}-{cfg.sut.scenario}"

    phase = "features"
    backend = None
    try:
        say(f"reading {cfg.data.dataset} into features (cached by content in {cfg.data.cache_dir}) ...")
        examples, features = load_data(cfg.data, cfg.squad, progress)
        examples, features = subset_features(examples, features, cfg.max_examples)
        say(f"{len(features):,} features from {len(examples):,} questions ({cfg.data.dataset})")
        phase = "backend"
        backend_cfg = cfg.backend
        if cfg.distributed is not None:
            if cfg.harness is not None and cfg.harness.sources.get("threads") == SOURCE_THREADS_RULE:
                # cores // workers is this process's rule; a replica's threads default to its Ray CPUs
                backend_cfg = dataclasses.replace(backend_cfg, threads=None)
        elif backend_cfg.threads is None:
            # never oversubscribe: concurrent calls x threads <= physical cores
            backend_cfg = dataclasses.replace(backend_cfg, threads=threads_per_worker(
                concurrent_calls(cfg.sut.scenario, cfg.sut.workers), machine.physical_cores()))
        backend_cfg = registry.prepare(backend_cfg, say)  # export / graph optimization, once (cached)
        if cfg.distributed is None:
            backend = registry.load(backend_cfg)
        else:  # replicas on Ray, each loading the prepared artifact; warmed up on the first batch the SUT sends
            from mlperf_bert.distributed.ray_pool import RayReplicaPool, warmup_batch

            backend = RayReplicaPool.start(registry.spec(backend_cfg.name), backend_cfg, cfg.distributed, say=say,
                                           warmup=warmup_batch(features, cfg.sut.batcher))
    except KeyboardInterrupt as exc:
        if backend is not None:
            backend.close()
        raise _interrupted(exc, phase, None) from None

    try:
        name, work_dir = make_run_dir(out, name, auto=auto)
    except BaseException:
        backend.close()
        raise
    final_dir = out / name
    result = RunResult(run_dir=final_dir)
    info: dict[str, Any] = {
        "config": cfg, "versions": machine.package_versions(), "machine": machine.machine_summary(),
        "backend": backend_record(registry, backend_cfg, backend),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t_start)),
        "features": len(features), "questions": len(examples),
    }
    if cfg.harness is not None:
        info["harness"] = cfg.harness.record()
    failed: BaseException | None = None
    keep_backend = False
    try:
        with SquadQSL(features, cfg.loadgen.performance_sample_count) as qsl:
            for mode in cfg.modes:
                lg_cfg = dataclasses.replace(cfg.loadgen, mode=mode)
                if mode == "performance":
                    info["host_load"] = machine.sample_host_load().to_dict()  # before the probe and the run
                if mode == "performance" and cfg.probe and not lg_cfg.sets_expected():
                    phase = "probe"
                    say("probing throughput to size the performance run (nothing in user.conf or the flags "
                        "sets the expected load) ...")
                    result.probe = probe_throughput(backend, qsl, cfg.sut)
                    lg_cfg = _apply_probe(lg_cfg, result.probe)
                    info["probe"] = result.probe
                phase = mode
                say(f"LoadGen {cfg.sut.scenario} {mode} run ({lg_cfg.rules} rules) ...")
                info[f"{mode}_loadgen"] = lg_cfg
                try:
                    outcome = run_test(backend, qsl, cfg.sut, lg_cfg, work_dir / mode, progress=progress)
                except RunInterrupted as exc:
                    if exc.outcome is not None:
                        _record_settings(info, mode, exc.outcome)
                    keep_backend = exc.threads_running
                    raise
                _record_settings(info, mode, outcome)
                sut = outcome.sut
                if sut.error is not None:
                    raise BackendFailure(f"backend {cfg.backend.name!r} failed during the {mode} run: "
                                         f"{str(sut.error).splitlines()[0] if str(sut.error) else type(sut.error).__name__}"
                                         f" (logs kept in {final_dir.name}.failed)") from sut.error
                if mode == "accuracy":
                    from mlperf_bert.accuracy.evaluate import evaluate_accuracy_log
                    from mlperf_bert.squad.tokenization import load_vocab

                    phase = "scoring"
                    say("scoring the accuracy log ...")
                    result.accuracy = evaluate_accuracy_log(
                        work_dir / mode / "mlperf_log_accuracy.json", examples, features,
                        load_vocab(cfg.data.vocab), cfg.squad, work_dir / mode)
                    info["accuracy"] = result.accuracy.to_dict()
                else:
                    result.performance = perf_result(read_detail_log(work_dir / mode / "mlperf_log_detail.txt"))
                    info["performance"] = result.performance.to_dict()
    except BaseException as exc:
        failed = exc
        if isinstance(exc, KeyboardInterrupt):
            failed = _interrupted(exc, phase, None)
            keep_backend = keep_backend or failed.threads_running
            if failed is not exc:
                raise failed from None
        raise
    finally:
        with interrupts_deferred():
            if cfg.distributed is not None:  # the replicas and the Ray they run on, as the run left them
                info["cluster"] = backend.cluster_record()
            # A worker may still be inside a local backend; the process exits anyway. A replica pool is
            # closed under its waiting workers (they get BackendFailure), so its actors and Ray stop.
            if not keep_backend or cfg.distributed is not None:
                backend.close()
            status = "complete" if failed is None else (
                "interrupted" if isinstance(failed, KeyboardInterrupt) else "failed")
            info["status"] = status
            if failed is not None:
                info["phase"] = phase
            info["finished_utc"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            info["wall_seconds"] = round(time.time() - t_start, 3)
            if failed is not None and status == "failed":
                info["error"] = f"{type(failed).__name__}: {failed}"
            write_json_atomic(work_dir / "run.json", info)
            result.run_dir = _finish_dir(work_dir, final_dir, status)
            if isinstance(failed, RunInterrupted):
                failed.run_dir = result.run_dir
    result.info = info
    return result


def _interrupted(exc: BaseException, phase: str, run_dir: Path | None) -> RunInterrupted:
    """A ``RunInterrupted`` for ``phase`` from a Ctrl-C (plain KeyboardInterrupt or the session's)."""
    if isinstance(exc, RunInterrupted):
        exc.phase = exc.phase or phase
        exc.run_dir = exc.run_dir or run_dir
        return exc
    return RunInterrupted(phase=phase, run_dir=run_dir)


def _record_settings(info: dict, mode: str, outcome) -> None:
    """Each effective LoadGen setting with its source, and the trace decision, into run.json."""
    info[f"{mode}_settings"] = [dataclasses.asdict(s) for s in outcome.settings.effective]
    info[f"{mode}_trace"] = {"enabled": outcome.trace[0], "why": outcome.trace[1]}


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
        return dataclasses.replace(c, expected_qps=OFFLINE_PROBE_MARGIN * probe["samples_per_second"],
                                   origins={**c.origins, "expected_qps": SOURCE_PROBE})
    if c.scenario == "Server":
        return dataclasses.replace(c, expected_qps=0.5 * probe["samples_per_second"],
                                   origins={**c.origins, "expected_qps": SOURCE_PROBE})
    return dataclasses.replace(c, expected_latency_ms=probe["query_latency_ms"],
                               origins={**c.origins, "expected_latency_ms": SOURCE_PROBE})
