"""One LoadGen SUT for every backend: queries -> batches -> ``Backend.predict`` -> QuerySamplesComplete.

Scenario paths:
- Offline: the single query is split by ``batch_bounds`` (sorted by length, token budget) and the batches
  go to the worker threads.
- Server: samples go to a queue; a worker collects up to ``max_batch_size`` samples or until the first one
  has waited ``server_max_wait_ms``, then runs them (dynamic batching).
- SingleStream / MultiStream: the query runs in LoadGen's issue thread (no queue hop; LoadGen waits for
  each query anyway).

Responses: per sample, row-major float32 [n, 2] start/end logits, n = the real length (``"trimmed"``) or 384
(``"full"``); ``sut.responses`` packs them (docs/responses.md#response-format).

Per-sample cost (docs in ``BertSUT``): LoadGen hands queries over through ``ConstructFastSUT`` (two lists of
ints instead of one ``QuerySample`` object per sample), a query is planned with one sort and one gather
(``batcher.batch_bounds``), the hand-off queue is the C ``queue.SimpleQueue``, and each batch is completed
with one ``QuerySamplesComplete`` call whose ``QuerySampleResponse`` objects are built by ``map`` over
plain ints (the one Python object per sample LoadGen's bindings require).

Every sample handed to the SUT is completed exactly once, in a ``finally``: if the backend raises, the
samples get empty responses, LoadGen finishes, and ``SUT.error`` carries the cause for the runner to raise.
No exception ever leaves a LoadGen callback (an exception thrown through LoadGen's C++ ends the process).

``interrupt()`` puts the SUT into drain mode (Ctrl-C): it stops calling the backend and completes every
sample in flight, queued or issued later at once with an empty response, so a run whose samples are all
issued up front (Offline, accuracy mode) ends within moments; the session (``loadgen.session``) decides
how long to wait for the rest.
"""

from __future__ import annotations

import ctypes
import queue
import threading
import time
from dataclasses import dataclass, field

import mlperf_loadgen as lg
import numpy as np

from mlperf_bert.backends.base import Backend
from mlperf_bert.errors import BackendFailure, ConfigError
from mlperf_bert.qsl.qsl import SquadQSL
from mlperf_bert.sut.batcher import BatcherConfig, batch_bounds, padded_length
from mlperf_bert.sut.responses import RESPONSE_ROWS, pack_batch

SCENARIOS = ("Offline", "Server", "SingleStream", "MultiStream")


def check_scenario(name: str) -> str:
    """Return the canonical scenario name (case-insensitive) or raise ConfigError listing the valid ones."""
    for s in SCENARIOS:
        if s.lower() == name.lower():
            return s
    raise ConfigError(f"unknown scenario {name!r}; choose one of: {', '.join(SCENARIOS)}")


@dataclass(frozen=True)
class SUTConfig:
    """SUT settings.

    Attributes:
        scenario: Offline, Server, SingleStream or MultiStream.
        batcher: batch formation (see ``BatcherConfig``).
        workers: backend-calling threads for Offline/Server. Each gets ``threads_per_worker`` intra-op
            threads unless ``--threads`` says otherwise, so workers x threads never exceeds the cores. A
            backend with ``slots`` (a replica pool) sets the count instead (``worker_count``).
        response_rows: ``"trimmed"`` (real length) or ``"full"`` (384 rows); see the module docstring.
    """

    scenario: str = "Offline"
    batcher: BatcherConfig = field(default_factory=BatcherConfig)
    workers: int = 1
    response_rows: str = "trimmed"

    def __post_init__(self) -> None:
        object.__setattr__(self, "scenario", check_scenario(self.scenario))
        if self.workers < 1:
            raise ConfigError(f"workers must be >= 1, got {self.workers}")
        if self.response_rows not in RESPONSE_ROWS:
            raise ConfigError(f"response_rows must be one of {RESPONSE_ROWS}, got {self.response_rows!r}")


def worker_count(backend: Backend, config: SUTConfig) -> int:
    """Offline/Server worker threads: the backend's ``slots`` when it has them (a pool of replicas,
    ``distributed.ray_pool``: replicas x batches in flight each), else ``config.workers``."""
    slots = getattr(backend, "slots", None)
    return int(slots) if slots else config.workers


_STOP = object()


def threads_per_worker(workers: int, cores: int) -> int:
    """Intra-op threads per backend call when the user gives no ``--threads``: ``cores // workers``, at
    least 1, so ``workers`` concurrent calls never ask for more threads than there are physical cores.

    Oversubscription is costly: two workers whose sessions each took both cores of a 2-core machine ran
    22% slower than with one thread each (issue 16's measurement, ONNX Runtime, small model).

    Args:
        workers: concurrent backend calls (``SUTConfig.workers``), >= 1.
        cores: physical cores (``machine.physical_cores()``), >= 1.
    """
    return max(1, int(cores) // max(1, int(workers)))


def concurrent_calls(scenario: str, workers: int) -> int:
    """Backend calls that run at once: the workers in Offline/Server; one in SingleStream/MultiStream (the
    query runs in LoadGen's issue thread)."""
    return workers if scenario in ("Offline", "Server") else 1


def default_workers(kind: str, scenario: str, cores: int) -> int:
    """Workers when neither ``--workers`` nor a profile sets them: on a CPU in Offline one per physical core
    (each then runs one intra-op thread, see ``batcher.DEVICE_DEFAULTS``); otherwise 1.

    Args:
        kind: ``"cpu"`` or ``"cuda"`` (``batcher.device_kind``).
        scenario: the run's scenario.
        cores: physical cores (``machine.physical_cores()``).
    """
    return max(1, int(cores)) if kind == "cpu" and scenario == "Offline" else 1


class BertSUT:
    """The SUT. Use as a context manager: it constructs the LoadGen SUT and starts/stops the workers.

    Where the per-sample time goes (null backend through LoadGen, measured with py-spy; see
    ``benchmarks/harness.py``): LoadGen's bindings need one ``QuerySampleResponse`` object per completed
    sample (about 0.4-0.7 us each, built by ``map`` over plain ints) and convert the issued samples into
    Python objects (two int lists with ``ConstructFastSUT``, not one ``QuerySample`` object per sample).
    Everything else is per query (one argsort and one gather) or per batch (a queue hop, one backend call,
    one ``QuerySamplesComplete``). In Server a query crosses two thread wake-ups (LoadGen's issue thread
    sleeps until each query's scheduled time, then a worker wakes from the queue), so on a host whose
    cores other processes keep busy the latency tail is the scheduler's (milliseconds), not the SUT's.

    Attributes:
        handle: the LoadGen SUT handle (valid inside the ``with`` block).
        error: the first exception a backend raised, or None.
        samples_completed: samples completed so far (int).
        batches_run: backend calls made so far (int).
    """

    def __init__(self, backend: Backend, qsl: SquadQSL, config: SUTConfig) -> None:
        self.backend = backend
        self.qsl = qsl
        self.config = config
        self.cap = int(qsl.input_ids.shape[1])
        self.handle: object | None = None
        self.error: BaseException | None = None
        self.samples_completed = 0
        self.batches_run = 0
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._draining = False
        self._inflight: dict[int, list] = {}  # batch token -> response ids (ints) not yet completed
        self._next_token = 0
        self._lengths = qsl.lengths.tolist()  # per-sample real lengths as ints (scalar look-ups)
        self._server = config.scenario == "Server"

    # -- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> "BertSUT":
        self.handle = lg.ConstructFastSUT(self.issue_fast, self.flush_queries)
        if self.config.scenario in ("Offline", "Server"):
            target = self._server_worker if self.config.scenario == "Server" else self._offline_worker
            for i in range(worker_count(self.backend, self.config)):
                t = threading.Thread(target=target, name=f"sut-worker-{i}", daemon=True)
                t.start()
                self._threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self, wait_s: float | None = None, destroy: bool = True) -> bool:
        """Stop the workers and destroy the LoadGen SUT.

        Args:
            wait_s: longest wait for each worker (None = until it ends). After ``interrupt()`` a worker
                may be inside a long backend call; it is a daemon thread and is left to finish.
            destroy: False keeps the LoadGen SUT alive (LoadGen's thread still uses it; the process is
                about to exit).

        Returns:
            True when every worker has ended.
        """
        for _ in self._threads:
            self._queue.put(_STOP)
        for t in self._threads:
            t.join(wait_s)
        alive = [t for t in self._threads if t.is_alive()]
        self._threads = alive
        if destroy and self.handle is not None:
            lg.DestroyFastSUT(self.handle)
            self.handle = None
        return not alive

    def interrupt(self) -> None:
        """Drain mode (first Ctrl-C): no more backend calls; every sample in flight, queued or issued from
        now on is completed at once with an empty response. Idempotent; never raises."""
        try:
            with self._lock:
                self._draining = True
                pending = list(self._inflight.values())
                self._inflight.clear()
            for ids in pending:
                self._complete_empty(ids)
            stops = 0
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stops += 1
                else:
                    self._complete_empty(item[0])  # every queued item starts with its response ids
            for _ in range(stops):
                self._queue.put(_STOP)
        except BaseException as exc:  # noqa: BLE001 - called on Ctrl-C; keep the cause
            if not isinstance(exc, KeyboardInterrupt):
                self._record(exc)

    @property
    def draining(self) -> bool:
        """True after ``interrupt()``."""
        return self._draining

    # -- LoadGen callbacks -----------------------------------------------------------------------
    def issue_fast(self, ids: list, indices: list) -> None:
        """LoadGen callback (``ConstructFastSUT``): one query as its response ids and QSL indices (lists of
        ints, same length).

        Never raises: an exception thrown through LoadGen's C++ ends the process. The batches are planned
        before any sample is handed on, so on an error there every sample of the query is completed empty
        and ``error`` keeps the cause."""
        if self._server and not self._draining:  # the hot path: one sample, one queue item
            try:
                self._queue.put((ids, indices, time.monotonic()))
                return
            except BaseException as exc:  # noqa: BLE001 - nothing was queued: complete it below
                self._record(exc)
                self._safe_complete_empty(ids)
                return
        try:
            handoff = self._plan(ids, indices)
        except BaseException as exc:  # noqa: BLE001 - recorded and re-raised by the runner
            self._record(exc)
            handoff = None
        if handoff is None:
            self._safe_complete_empty(ids)
            return
        handoff()

    def issue_queries(self, query_samples: list) -> None:
        """The same for a list of ``QuerySample`` (``.id``, ``.index``), as ``ConstructSUT`` hands them."""
        try:
            ids = [q.id for q in query_samples]
            indices = [q.index for q in query_samples]
        except BaseException as exc:  # noqa: BLE001 - recorded; nothing can be completed without ids
            self._record(exc)
            return
        self.issue_fast(ids, indices)

    def _plan(self, ids: list, indices: list):
        """What to do with a query, as a function that cannot raise; None = complete it empty (draining)."""
        if self._draining:
            return None
        scenario = self.config.scenario  # Server never gets here: issue_fast queues its samples directly
        batches = self._batches(ids, indices)
        if scenario == "Offline":
            put = self._queue.put
            return lambda: [put(b) for b in batches]
        return lambda: [self.run_batch(*b) for b in batches]  # SingleStream / MultiStream: run right here

    def _batches(self, ids: list, indices: list) -> list[tuple[list, object]]:
        """A query's batches as (response ids, QSL indices) pairs, planned by ``batch_bounds``; the indices
        are an int64 array, or the query's own list when it holds one sample."""
        if len(ids) == 1:
            return [(ids, indices)]
        idx = np.array(indices, dtype=np.int64)
        order, bounds = batch_bounds(self.qsl.lengths[idx], self.config.batcher, self.cap)
        ids_sorted = np.array(ids, dtype=np.uint64)[order].tolist()
        idx_sorted = idx[order]
        return [(ids_sorted[a:b], idx_sorted[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]

    def flush_queries(self) -> None:
        """LoadGen callback at the end of a run; queued samples are already being served. Never raises."""

    # -- workers ---------------------------------------------------------------------------------
    def _offline_worker(self) -> None:
        get, run = self._queue.get, self.run_batch
        while True:
            item = get()
            if item is _STOP:
                return
            run(*item)

    def _server_worker(self) -> None:
        max_batch = self.config.batcher.max_batch_size
        max_wait = self.config.batcher.server_max_wait_ms / 1000.0
        get = self._queue.get
        while True:
            item = get()
            if item is _STOP:
                return
            ids, indices, t0 = item
            stop = False
            if len(ids) < max_batch:  # dynamic batching: wait up to max_wait for more queries
                ids, indices = list(ids), list(indices)
                deadline = t0 + max_wait
                while len(ids) < max_batch:
                    timeout = deadline - time.monotonic()
                    try:
                        nxt = get(timeout=timeout) if timeout > 0 else get(block=False)
                    except queue.Empty:
                        break
                    if nxt is _STOP:
                        stop = True
                        break
                    ids.extend(nxt[0])
                    indices.extend(nxt[1])
            try:
                batches = self._batches(ids, indices)
            except BaseException as exc:  # noqa: BLE001 - recorded; the samples must still complete
                self._record(exc)
                self._safe_complete_empty(ids)
                batches = []
            for b in batches:
                self.run_batch(*b)
            if stop:
                return

    # -- the work --------------------------------------------------------------------------------
    def run_batch(self, sample_ids, sample_indices) -> None:
        """Run one batch through the backend and complete its samples (always, even on error; never
        raises). In drain mode the backend is not called and the samples are completed empty.

        Args:
            sample_ids: the B LoadGen response ids (list of ints or uint64 array).
            sample_indices: int64 [B] QSL indices (array or list).
        """
        with self._lock:
            draining = self._draining
            if not draining:
                token = self._next_token
                self._next_token += 1
                self._inflight[token] = sample_ids
        if draining:
            self._safe_complete_empty(sample_ids)
            return
        logits = None
        try:
            b = len(sample_ids)
            qsl = self.qsl
            if b == 1:  # a slice (a view) instead of a gather
                i = int(sample_indices[0])
                longest = self._lengths[i]
                lengths = (longest,)
                rows = slice(i, i + 1)
            else:
                rows = sample_indices
                lengths = qsl.lengths[rows]
                longest = int(lengths.max())
            seq = padded_length(longest, self.config.batcher.pad_to_multiple, self.cap)
            if self.error is None:
                logits = self.backend.predict(qsl.input_ids[rows, :seq], qsl.input_mask[rows, :seq],
                                              qsl.segment_ids[rows, :seq])
                if logits.shape != (b, seq, 2):
                    raise BackendFailure(f"backend {self.backend.name!r} returned logits of shape "
                                         f"{tuple(logits.shape)}, expected {(b, seq, 2)}")
        except BaseException as exc:  # noqa: BLE001 - recorded and re-raised by the runner
            self._record(exc)
            logits = None
        finally:
            with self._lock:  # interrupt() may have completed this batch already
                mine = self._inflight.pop(token, None) is not None
            if mine:
                try:
                    if logits is None:
                        self._complete_empty(sample_ids)
                    else:
                        self._complete(sample_ids, lengths, seq, logits)
                except BaseException as exc:  # noqa: BLE001 - never into LoadGen's C++
                    self._record(exc)

    def _record(self, exc: BaseException) -> None:
        with self._lock:
            if self.error is None:
                self.error = exc

    def _safe_complete_empty(self, sample_ids) -> None:
        try:
            self._complete_empty(sample_ids)
        except BaseException as exc:  # noqa: BLE001 - never into LoadGen's C++
            self._record(exc)

    def _complete_empty(self, sample_ids) -> None:
        """Complete ``sample_ids`` (ints, or a uint64 array) with empty responses (no bytes)."""
        b = len(sample_ids)
        if b == 0:
            return
        ids = sample_ids.tolist() if isinstance(sample_ids, np.ndarray) else sample_ids
        zeros = [0] * b
        lg.QuerySamplesComplete(list(map(lg.QuerySampleResponse, ids, zeros, zeros)))
        with self._lock:
            self.samples_completed += b

    def _complete(self, sample_ids, lengths, seq: int, logits: np.ndarray) -> None:
        """Complete a batch: its responses point into one packed buffer (``responses.pack_batch``) that is
        referenced here until ``QuerySamplesComplete`` returns (LoadGen copies the bytes it logs inside
        that call and keeps no pointer)."""
        b = len(sample_ids)
        ids = sample_ids.tolist() if isinstance(sample_ids, np.ndarray) else sample_ids
        buf, stride, nbytes = pack_batch(logits, lengths, self.config.response_rows, self.cap)  # (B, rows, 2)
        base = _address(buf)
        if b == 1:
            responses = [lg.QuerySampleResponse(ids[0], base, nbytes[0])]
        else:
            responses = list(map(lg.QuerySampleResponse, ids, range(base, base + b * stride, stride), nbytes))
        lg.QuerySamplesComplete(responses)
        del buf
        with self._lock:
            self.samples_completed += b
            self.batches_run += 1


def _address(buf: np.ndarray) -> int:
    """The address of ``buf``'s first byte. ``ctypes.addressof`` of a ``from_buffer`` view costs about a
    quarter of ``ndarray.ctypes.data`` (0.5 against 2 us, measured); read-only arrays take the slow path."""
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(buf))
    except (TypeError, ValueError, BufferError):
        return int(buf.ctypes.data)
