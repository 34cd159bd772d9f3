"""Peak finders: the highest Server target QPS that meets the latency bound, and expected-QPS / latency
probes for Offline and SingleStream.

Server (``find_peak_server``): the backend's Offline-style throughput (``runner.probe_throughput`` with
the run's batching) bounds what a Server run can sustain. Short LoadGen Server runs then bisect the
target QPS: a trial passes when its 99th percentile latency is within 130 ms (docs/loadgen.md#server-latency-bound) and
LoadGen's latency constraint holds. The best passing QPS gets a confirming run (>= 60 s for a real
measurement) under the ``current`` rules with the minimum duration shortened, which is checked with the
checker's rules; if it misses the bound the QPS steps down (``_step_down``: in proportion to how far
its p99 was over the bound, at least ``tolerance``) and confirms again. Short trials see few queries, so
their p99 is close to their maximum and noisy; under Poisson arrivals a longer run sees more of the
queueing tail, which is why a passing trial can fail its confirmation.

With one worker and batches of one (the fastest Server shape on a small CPU) the SUT is a single FIFO
server, so the confirming QPS is planned instead of guessed: each trial's LoadGen trace gives the
service time of every query (``logs.trace.fifo_service_times_ms``), a quadratic in the feature's length
times the measured relative noise models it over all QSL features (``ServiceTimeModel``), and a
simulation of Poisson arrivals over it (``predict_server_qps``) picks the highest QPS whose run of
``confirm_queries`` queries passes LoadGen's early stopping (``logs.early_stopping``) with probability
``pass_probability``, capped at the best passing trial (at the lowest failed one when none passed). A failed confirmation adds its own
service times and re-plans below the failed QPS. The model only chooses where to measure; the verdict
is always the confirming LoadGen run.

Offline / SingleStream (``probe_expected``): one short LoadGen run gives the samples/s or 90th percentile
latency to put in user.conf (``bert.Offline.target_qps``, ``bert.SingleStream.target_latency``).

Every LoadGen run is a normal run folder under ``<output_dir>/<name>/`` (``probe``, ``trial-NN-...``,
``confirm-N-...``), next to ``find_peak.json`` and ``user.conf``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from mlperf_bert.errors import ConfigError
from mlperf_bert.logs.early_stopping import max_overlatency, min_queries
from mlperf_bert.logs.parse import PerfResult, read_detail_log
from mlperf_bert.loadgen.settings import SERVER_TARGET_LATENCY_NS
from mlperf_bert.logs.trace import fifo_service_times_ms, read_trace

FIND_PEAK_SCENARIOS = ("Server", "Offline", "SingleStream")


@dataclass(frozen=True)
class FinderConfig:
    """Search settings.

    Attributes:
        trial_s: minimum duration of each search run, seconds.
        confirm_s: minimum duration of the confirming run (>= 60 s for a real measurement).
        tolerance: stop when the bracket (lo, hi) is narrower than ``tolerance * hi``; also the smallest
            step down after a failed confirmation.
        max_trials: most search runs.
        max_confirms: most confirming runs.
        confirm_queries: the confirming run also issues at least this many queries, so that LoadGen's
            early-stopping estimate of the 99th percentile can pass: with no late query it needs 459
            (0.99^n <= 0.01, the least allowed); 1,000 allow 2 late ones, 2,000 allow 9 (0.45%), so longer
            runs can run closer to the bound. At 2 QPS 2,000 queries take 1,000 s. A confirmation within
            the bound that misses only early stopping is repeated at the same QPS with twice the queries.
        latency_bound_ms: Server 99th percentile bound (130 ms for BERT).
        probe_s: seconds of the throughput probe that bounds the search.
        start_fraction: first trial at this fraction of the probed throughput.
        pass_probability: with one worker and batches of one, the confirming QPS is the highest one whose
            simulated run passes early stopping with this probability (``predict_server_qps``).
    """

    trial_s: float = 10.0
    confirm_s: float = 60.0
    tolerance: float = 0.05
    max_trials: int = 8
    max_confirms: int = 4
    confirm_queries: int = 2000
    latency_bound_ms: float = SERVER_TARGET_LATENCY_NS / 1e6
    probe_s: float = 3.0
    start_fraction: float = 0.7
    pass_probability: float = 0.9

    def __post_init__(self) -> None:
        if not 0 < self.tolerance < 0.5:
            raise ConfigError(f"--tolerance must be in (0, 0.5), got {self.tolerance}")
        if self.max_trials < 1 or self.max_confirms < 1:
            raise ConfigError(f"--max-trials and --max-confirms must be >= 1, got {self.max_trials} and "
                              f"{self.max_confirms}")
        if self.confirm_queries < min_queries(0):
            raise ConfigError(f"--confirm-queries must be >= {min_queries(0)} (LoadGen's early stopping needs "
                              f"that many Server queries even with none late), got {self.confirm_queries}")
        if not 0 < self.pass_probability < 1:
            raise ConfigError(f"--pass-probability must be in (0, 1), got {self.pass_probability}")
        if self.trial_s <= 0 or self.confirm_s <= 0:
            raise ConfigError("--trial-duration and --confirm-duration must be > 0")


@dataclass
class Trial:
    """One LoadGen run of the search: target QPS, what LoadGen measured, and the verdict."""

    target_qps: float
    passed: bool
    p99_ms: float
    completed_qps: float
    run_dir: str
    reason: str = ""


@dataclass
class PeakResult:
    """What a finder found.

    Attributes:
        scenario: Server, Offline or SingleStream.
        value: Server: the confirmed target QPS; Offline: samples/s; SingleStream: 90th percentile ms.
        unit: ``samples/s`` or ``ms``.
        user_conf: the user.conf lines to use (Server: the target QPS and the confirming run's query count,
            so that the submission run's early stopping sees as many queries as the confirmation did).
        folder: where the runs, find_peak.json and user.conf are.
        probe_qps: throughput of the probe (Server: the search's upper bound).
        trials / confirms: the search runs and the confirming runs.
        confirmed: a confirming run met every rule checked (see ``rule_failures``).
        rule_failures: validity rules the final run does not meet (short duration expected).
        performance: the final run's headline.
        model: the queueing model's inputs and predictions (empty when it does not apply).
        reason: why nothing was confirmed (empty when confirmed).
    """

    scenario: str
    value: float
    unit: str
    user_conf: str
    folder: Path
    probe_qps: float = 0.0
    trials: list = field(default_factory=list)
    confirms: list = field(default_factory=list)
    confirmed: bool = False
    rule_failures: list = field(default_factory=list)
    performance: PerfResult | None = None
    model: dict = field(default_factory=dict)
    reason: str = ""

    @property
    def only_duration_short(self) -> bool:
        """True when the final run meets every checked rule except the 600 s minimum duration."""
        rest = [r for r in self.rule_failures if "min duration" not in r]
        return self.confirmed and not rest


def _model_applies(sut, distributed=None) -> bool:
    """The queueing model assumes one server taking queries one at a time in arrival order (not Ray
    replicas, which serve several at once)."""
    return sut.workers == 1 and sut.batcher.max_batch_size == 1 and distributed is None


@dataclass(frozen=True)
class ServiceTimeModel:
    """Service time of one query (one feature, batch of one) as a function of its length, for the Server
    queueing model: ``ms = (c2 * L^2 + c1 * L + c0) * (1 + relative_residual)``, with ``L`` drawn from the
    QSL's feature lengths and the residual from the measured ones. Measured queries in short trials repeat
    LoadGen's first samples (same seeds), so the length fit spreads them over every feature LoadGen can
    pick. The noise is relative because it grows with length: on 2 AVX2 cores (int8, 3,000 queries) the
    99th percentile of the absolute residual rose from 8 ms under 100 tokens to 27 ms at 370-384.

    Attributes:
        coef: (c2, c1, c0), ms per token^2, ms per token, ms.
        relative_residual: float64 [M] measured service time / fit - 1.
        lengths: int [K] real token counts of the QSL's features (what LoadGen samples from).
    """

    coef: tuple[float, float, float]
    relative_residual: np.ndarray
    lengths: np.ndarray

    @classmethod
    def fit(cls, measured_lengths: np.ndarray, service_ms: np.ndarray, lengths: np.ndarray) -> "ServiceTimeModel":
        """Least-squares fit over measured (length, service ms) pairs (M >= 1): a quadratic in length; a
        line when the quadratic falls anywhere over ``lengths`` (few or clustered measurements make it
        bend); the mean when the line falls too. Longer features never get a shorter service time."""
        x = np.asarray(measured_lengths, dtype=np.float64)
        y = np.asarray(service_ms, dtype=np.float64)
        span = (float(np.min(lengths)), float(np.max(lengths)))
        coef = np.linalg.lstsq(np.stack([x * x, x, np.ones_like(x)], axis=1), y, rcond=None)[0]
        if min(2 * coef[0] * span[0] + coef[1], 2 * coef[0] * span[1] + coef[1]) < 0:  # slope at both ends
            line = np.linalg.lstsq(np.stack([x, np.ones_like(x)], axis=1), y, rcond=None)[0]
            coef = np.array([0.0, *line]) if line[0] >= 0 else np.array([0.0, 0.0, y.mean()])
        fitted = np.maximum(np.polyval(coef, x), 1e-9)
        return cls(tuple(float(c) for c in coef), y / fitted - 1.0, np.asarray(lengths))

    @classmethod
    def empirical(cls, service_ms: np.ndarray) -> "ServiceTimeModel":
        """Service times drawn as measured, ignoring length (mean times measured / mean)."""
        y = np.asarray(service_ms, dtype=np.float64)
        return cls((0.0, 0.0, float(y.mean())), y / y.mean() - 1.0, np.zeros(1))

    def mean_ms(self, length: float) -> float:
        """Fitted service time of a feature of ``length`` tokens, ms."""
        return float(np.polyval(self.coef, length))

    def draw(self, rng: np.random.Generator, shape: tuple) -> np.ndarray:
        """float64 ``shape`` random service times, ms (>= 0)."""
        length = self.lengths[rng.integers(0, len(self.lengths), size=shape)].astype(np.float64)
        noise = self.relative_residual[rng.integers(0, len(self.relative_residual), size=shape)]
        return np.maximum(np.polyval(self.coef, length) * (1.0 + noise), 0.0)


def server_pass_probability(service: ServiceTimeModel, qps: float, queries: int, bound_ms: float,
                            reps: int = 200, seed: int = 0) -> float:
    """Probability that a Server run passes LoadGen's early stopping, by simulation.

    Model: Poisson arrivals at ``qps`` (LoadGen's Server schedule), one FIFO server with service times
    from ``service``; latency = queueing + service (Lindley's recursion). A simulated run of ``queries``
    queries passes when its count of latencies over ``bound_ms`` is at most
    ``logs.early_stopping.max_overlatency(queries)``, which also keeps its 99th percentile within the
    bound. Common random numbers (fixed ``seed``) make the result non-increasing in ``qps``.

    Args:
        service: service-time model (``ServiceTimeModel.fit`` or ``.empirical``).
        qps: target queries per second (> 0).
        queries: queries per simulated run.
        reps: simulated runs.

    Returns:
        Fraction of the simulated runs that pass, in [0, 1].
    """
    allowed = max_overlatency(queries)
    if allowed < 0 or qps <= 0:
        return 0.0
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1000.0 / qps, size=(queries, reps))
    times = service.draw(rng, (queries, reps))
    wait = np.zeros(reps)
    late = np.zeros(reps, dtype=np.int64)
    for i in range(queries):
        latency = wait + times[i]
        late += latency > bound_ms
        if i + 1 < queries:
            wait = np.maximum(latency - gaps[i + 1], 0.0)
    return float(np.mean(late <= allowed))


def predict_server_qps(service: ServiceTimeModel, queries: int, bound_ms: float, upper: float,
                       pass_probability: float = 0.9, reps: int = 200, seed: int = 0) -> float:
    """Highest target QPS in (0, ``upper``] whose simulated Server run of ``queries`` queries passes early
    stopping with at least ``pass_probability`` (``server_pass_probability``), by bisection to 1%.
    Returns 0.0 when none does (e.g. service times alone exceed the bound too often, or fewer than 459
    queries)."""
    reps = max(20, min(reps, 400_000 // max(queries, 1)))
    ok = lambda q: server_pass_probability(service, q, queries, bound_ms, reps, seed) >= pass_probability  # noqa: E731
    if ok(upper):
        return upper
    lo, hi = 0.0, upper
    while hi - lo > 0.01 * hi:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo


def _memo(load_data: Callable | None) -> Callable:
    if load_data is None:
        from mlperf_bert.squad.cache import load_features as load_data
    cache: dict = {}

    def load(paths, squad, progress):
        if "v" not in cache:
            cache["v"] = load_data(paths, squad, progress)
        return cache["v"]

    return load


def _trial_ok(perf: PerfResult, detail, bound_ms: float) -> tuple[bool, str]:
    p99 = perf.latency_ms.get(99.0)
    if p99 is None:
        return False, "no 99th percentile in the log"
    if p99 > bound_ms:
        return False, f"p99 {p99:.1f} ms > {bound_ms:g} ms"
    if detail.get("result_perf_constraints_met") is False:
        return False, "LoadGen: latency constraint not met"
    return True, f"p99 {p99:.1f} ms"


def _step_down(p99_ms: float, finder: FinderConfig) -> float:
    """Factor for the next confirming QPS after a failed one: ``bound / p99`` clamped to
    [0.5, 1 - tolerance] (a p99 of 260 ms against 130 ms halves the QPS; a near miss, or a failure
    other than latency, steps down by ``tolerance``)."""
    if not p99_ms > 0:  # NaN or missing
        return 1 - finder.tolerance
    return min(1 - finder.tolerance, max(0.5, finder.latency_bound_ms / p99_ms))


def find_peak_server(base, finder: FinderConfig = FinderConfig(), *, name: str | None = None,
                     registry=None, load_data: Callable | None = None, progress: bool = True,
                     on_event: Callable[[str], None] | None = None) -> PeakResult:
    """Search the highest Server target QPS whose p99 latency is within the bound, then confirm it.

    Args:
        base: ``runner.RunConfig`` for a Server run (backend, batching, data; its loadgen expected QPS,
            modes and run name are replaced).
        finder: search settings.
        name: folder name under ``base.output_dir`` (default ``find-peak-<utc time>``).
        registry / load_data / progress / on_event: as ``runner.run``.

    Returns:
        ``PeakResult`` with the confirmed QPS (0 when nothing was confirmed; ``reason`` says why).
    """
    from mlperf_bert.backends.registry import BackendRegistry
    from mlperf_bert.loadgen.settings import LoadGenConfig
    from mlperf_bert.qsl.qsl import SquadQSL
    from mlperf_bert.runner import probe_throughput, run, subset_features
    from mlperf_bert.submission.checker import performance_findings

    if base.sut.scenario != "Server":
        raise ConfigError(f"find_peak_server needs a Server run config, got {base.sut.scenario}")
    say = on_event or (lambda m: None)
    registry = registry or BackendRegistry.from_entry_points()
    base = dataclasses.replace(base, backend=registry.prepare(base.backend, say))  # once, before the trials
    load = _memo(load_data)
    folder = Path(base.output_dir) / (name or time.strftime("find-peak-%Y%m%d-%H%M%S", time.gmtime()))
    if folder.exists():
        raise ConfigError(f"find-peak folder already exists: {folder}; pick another --run-name")
    folder.mkdir(parents=True)

    examples, features = subset_features(*load(base.data, base.squad, progress), base.max_examples)
    backend = registry.load(base.backend)
    try:
        with SquadQSL(features) as qsl:
            probe = probe_throughput(backend, qsl, base.sut, seconds=finder.probe_s)
    finally:
        backend.close()
    upper = probe["samples_per_second"]
    say(f"probe: {upper:.1f} samples/s with the Server batching; searching below that")
    result = PeakResult("Server", 0.0, "samples/s", "", folder, probe_qps=upper)

    def trial(qps: float, seconds: float, run_name: str, rules: str, trace: bool, queries: int | None = None):
        lg = LoadGenConfig(scenario="Server", mode="performance", rules=rules, expected_qps=qps,
                           quick_duration_s=seconds, min_duration_s=seconds if rules != "quick" else None,
                           min_query_count=queries,
                           user_conf=base.loadgen.user_conf, trace=trace,
                           performance_sample_count=base.loadgen.performance_sample_count)
        cfg = dataclasses.replace(base, loadgen=lg, modes=("performance",), output_dir=folder,
                                  run_name=run_name, probe=False)
        res = run(cfg, registry=registry, load_data=lambda *a: (examples, features), progress=False)
        detail = read_detail_log(res.run_dir / "performance" / "mlperf_log_detail.txt")
        return res, detail

    modelled = _model_applies(base.sut, base.distributed)
    measured: list[tuple[np.ndarray, np.ndarray]] = []  # (lengths, service ms) per run, for the model
    qsl_lengths = features.input_mask.sum(axis=1)

    def measure(run_dir: Path) -> None:
        trace = read_trace(run_dir / "performance" / "mlperf_log_trace.json")
        measured.append((qsl_lengths[trace.sample_idx], fifo_service_times_ms(trace)))

    def predict(queries: int, cap: float, why: str) -> float:
        lengths = np.concatenate([m[0] for m in measured])
        times = np.concatenate([m[1] for m in measured])
        model = ServiceTimeModel.fit(lengths, times, qsl_lengths)
        q = predict_server_qps(model, queries, finder.latency_bound_ms, cap, finder.pass_probability)
        longest = int(qsl_lengths.max())
        resid = np.percentile(model.relative_residual, [1, 99])
        result.model = {"service_samples": int(times.size), "coef_ms": list(model.coef),
                        "service_ms_at_128": model.mean_ms(128), f"service_ms_at_{longest}": model.mean_ms(longest),
                        "relative_residual_p1_p99": [float(r) for r in resid],
                        "predicted_qps": [*result.model.get("predicted_qps", []), q]}
        verdict = (f"{q:.2f} QPS passes early stopping over {queries:,} queries with probability >= "
                   f"{finder.pass_probability:g}{why}" if q > 0 else
                   f"no QPS up to {cap:.2f} passes early stopping over {queries:,} queries with probability >= "
                   f"{finder.pass_probability:g} (service times alone are too often over "
                   f"{finder.latency_bound_ms:g} ms); not confirming")
        say(f"queueing model ({times.size:,} measured queries; service {model.mean_ms(128):.1f} ms at 128 tokens, "
            f"{model.mean_ms(longest):.1f} ms at {longest}, noise p99 {resid[1]:+.0%}): {verdict}")
        return q

    lo, hi = 0.0, upper * 1.05
    qps = upper * finder.start_fraction
    bar = _progress(progress, finder.max_trials, "find-peak trials")
    for i in range(finder.max_trials):
        res, detail = trial(qps, finder.trial_s, f"trial-{i + 1:02d}-{qps:.2f}qps", "quick", modelled)
        if modelled:
            measure(res.run_dir)
        ok, why = _trial_ok(res.performance, detail, finder.latency_bound_ms)
        result.trials.append(Trial(qps, ok, res.performance.latency_ms.get(99.0, float("nan")),
                                   res.performance.samples_per_second, res.run_dir.name, why))
        say(f"trial {i + 1}: {qps:.2f} QPS -> {'ok' if ok else 'too slow'} ({why})")
        if bar:
            bar.update(1)
        lo, hi = (qps, hi) if ok else (lo, qps)
        if hi - lo <= finder.tolerance * hi:
            break
        qps = (lo + hi) / 2
    if bar:
        bar.close()

    target, queries = lo, finder.confirm_queries
    if modelled and measured:
        target = predict(queries, lo if lo > 0 else hi,
                         f" (capped at the best trial, {lo:.2f} QPS)" if lo > 0 else
                         f" (no trial passed; capped at the lowest tried, {hi:.2f} QPS)")
    for k in range(finder.max_confirms):
        if target <= 0:
            break
        seconds = max(finder.confirm_s, queries / target)
        say(f"confirming {target:.2f} QPS for {seconds:.0f} s (at least {queries:,} queries) ...")
        res, detail = trial(target, finder.confirm_s, f"confirm-{k + 1}-{target:.2f}qps", "current", True, queries)
        ok, why = _trial_ok(res.performance, detail, finder.latency_bound_ms)
        findings = performance_findings(detail, "current", res.run_dir / "performance" / "mlperf_log_detail.txt",
                                        root=folder)
        failures = [f.message for f in findings if f.level == "fail"]
        result.confirms.append(Trial(target, ok, res.performance.latency_ms.get(99.0, float("nan")),
                                     res.performance.samples_per_second, res.run_dir.name, why))
        result.performance = res.performance
        result.rule_failures = failures
        if ok and all("min duration" in f or "LoadGen result is" in f for f in failures) and \
                _valid_but_duration(detail):
            result.confirmed = True
            break
        if ok and detail.get("early_stopping_met") is False:
            # p99 within the bound but too few queries for LoadGen's early-stopping estimate: the same
            # QPS with twice the queries, not a lower QPS (which would give fewer queries per second).
            queries *= 2
            say(f"confirming run at {target:.2f} QPS met the bound ({why}) but not LoadGen's early stopping; "
                f"again with {queries:,} queries")
            continue
        if modelled:
            measure(res.run_dir)
            say(f"confirming run at {target:.2f} QPS failed ({why}); re-planning with its service times")
            target = predict(queries, target * (1 - finder.tolerance), " (capped below the failed QPS)")
            continue
        factor = _step_down(result.confirms[-1].p99_ms, finder)
        say(f"confirming run at {target:.2f} QPS failed ({why}); stepping down {(1 - factor) * 100:.0f}%")
        target *= factor
    result.value = result.confirms[-1].target_qps if result.confirmed else 0.0
    # the confirmed QPS held over this many queries; a 600 s run at that QPS issues fewer, and early
    # stopping then allows fewer late ones, so the submission run keeps the confirmation's query count
    result.user_conf = (f"bert.Server.target_qps = {result.value:.2f}\n"
                        f"bert.Server.min_query_count = {queries}") if result.confirmed else ""
    if not result.confirmed:
        result.reason = _why_not_confirmed(result, finder, modelled)
    _write(result, finder)
    return result


def _why_not_confirmed(result: PeakResult, finder: FinderConfig, modelled: bool) -> str:
    """One line: why the search ended without a confirmed QPS, and what to try."""
    if result.confirms:
        last = result.confirms[-1]
        return (f"{len(result.confirms)} confirming run(s) failed, the last at {last.target_qps:.2f} QPS "
                f"({last.reason}); allow more with --max-confirms")
    if modelled:
        return (f"the queueing model found no QPS whose {finder.confirm_queries:,}-query run would pass LoadGen's "
                f"early stopping (see its line above); more --confirm-queries allow more late queries")
    lowest = min(result.trials, key=lambda t: t.target_qps)
    return (f"every trial missed the {finder.latency_bound_ms:g} ms bound, down to {lowest.target_qps:.2f} QPS "
            f"({lowest.reason}); on a CPU try --batch-size 1 --server-max-wait-ms 0")


def _valid_but_duration(detail) -> bool:
    """LoadGen's own verdict, ignoring only a minimum duration we shortened on purpose."""
    if detail.get("result_validity") == "VALID":
        return True
    return (detail.get("result_perf_constraints_met") is not False and detail.get("early_stopping_met") is not False
            and detail.get("result_min_queries_met") is not False)


def probe_expected(base, seconds: float = 10.0, *, name: str | None = None, registry=None,
                   load_data: Callable | None = None, progress: bool = True,
                   on_event: Callable[[str], None] | None = None) -> PeakResult:
    """Offline samples/s or SingleStream 90th percentile latency from one short LoadGen run.

    Args:
        base: ``runner.RunConfig`` with scenario Offline or SingleStream.
        seconds: minimum duration of the run.
    """
    from mlperf_bert.runner import run

    scenario = base.sut.scenario
    if scenario not in ("Offline", "SingleStream"):
        raise ConfigError(f"probe_expected supports Offline and SingleStream, got {scenario}")
    folder = Path(base.output_dir) / (name or time.strftime(f"find-{scenario.lower()}-%Y%m%d-%H%M%S", time.gmtime()))
    if folder.exists():
        raise ConfigError(f"folder already exists: {folder}; pick another --run-name")
    folder.mkdir(parents=True)
    lg = dataclasses.replace(base.loadgen, mode="performance", rules="quick", quick_duration_s=seconds)
    cfg = dataclasses.replace(base, loadgen=lg, modes=("performance",), output_dir=folder, run_name="probe",
                              probe=True)
    res = run(cfg, registry=registry, load_data=load_data, progress=progress, on_event=on_event)
    p = res.performance
    if scenario == "Offline":
        out = PeakResult("Offline", p.samples_per_second, "samples/s",
                         f"bert.Offline.target_qps = {p.samples_per_second:.2f}", folder)
    else:
        lat = p.latency_ms.get(90.0, p.metric_value)
        out = PeakResult("SingleStream", lat, "ms", f"bert.SingleStream.target_latency = {lat:.2f}", folder)
    out.performance = p
    out.confirmed = True
    out.probe_qps = (res.probe or {}).get("samples_per_second", 0.0)
    _write(out, None)
    return out


def _progress(enabled: bool, total: int, desc: str):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="run")


def _write(result: PeakResult, finder: FinderConfig | None) -> None:
    data = {
        "scenario": result.scenario, "value": result.value, "unit": result.unit, "user_conf": result.user_conf,
        "probe_qps": result.probe_qps, "confirmed": result.confirmed, "reason": result.reason,
        "only_duration_short": result.only_duration_short, "rule_failures": result.rule_failures,
        "trials": [dataclasses.asdict(t) for t in result.trials],
        "confirms": [dataclasses.asdict(t) for t in result.confirms],
        "finder": dataclasses.asdict(finder) if finder else None, "model": result.model,
        "performance": result.performance.to_dict() if result.performance else None,
    }
    (result.folder / "find_peak.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    if result.user_conf:  # nothing to put in a user.conf when no value was confirmed
        (result.folder / "user.conf").write_text(f"# found by mlperf-bert find-peak\n{result.user_conf}\n")
