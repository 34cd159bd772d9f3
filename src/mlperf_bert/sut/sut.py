"""One LoadGen SUT for every backend: queries -> batches -> ``Backend.predict`` -> QuerySamplesComplete.

Scenario paths:
- Offline: the single query is split by ``plan_batches`` (sorted by length, token budget) and the batches
  go to the worker threads.
- Server: samples go to a queue; a worker collects up to ``max_batch_size`` samples or until the first one
  has waited ``server_max_wait_ms``, then runs them (dynamic batching).
- SingleStream / MultiStream: the query runs in LoadGen's issue thread (no queue hop; LoadGen waits for
  each query anyway).

Responses: per sample, row-major float32 [n, 2] start/end logits, n = the real length (``"trimmed"``) or 384
(``"full"``); ``sut.responses`` packs them (docs/responses.md#response-format).

Every sample handed to the SUT is completed exactly once, in a ``finally``: if the backend raises, the
samples get empty responses, LoadGen finishes, and ``SUT.error`` carries the cause for the runner to raise.
No exception ever leaves a LoadGen callback (an exception thrown through LoadGen's C++ ends the process).

``interrupt()`` puts the SUT into drain mode (Ctrl-C): it stops calling the backend and completes every
sample in flight, queued or issued later at once with an empty response, so a run whose samples are all
issued up front (Offline, accuracy mode) ends within moments; the session (``loadgen.session``) decides
how long to wait for the rest.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field

import mlperf_loadgen as lg
import numpy as np

from mlperf_bert.backends.base import Backend
from mlperf_bert.errors import BackendFailure, ConfigError
from mlperf_bert.qsl.qsl import SquadQSL
from mlperf_bert.sut.batcher import BatcherConfig, padded_length, plan_batches
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
        workers: backend-calling threads for Offline/Server (1 keeps all cores for one intra-op pool); a
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


class BertSUT:
    """The SUT. Use as a context manager: it constructs the LoadGen SUT and starts/stops the workers.

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
        self._queue: queue.Queue = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._draining = False
        self._inflight: dict[int, np.ndarray] = {}  # batch token -> uint64 [B] response ids not yet completed
        self._next_token = 0

    # -- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> "BertSUT":
        self.handle = lg.ConstructSUT(self.issue_queries, self.flush_queries)
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
            lg.DestroySUT(self.handle)
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
                elif self.config.scenario == "Server":
                    self._complete_empty(np.array([item[0]], dtype=np.uint64))
                else:
                    self._complete_empty(item[0])
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
    def issue_queries(self, query_samples: list) -> None:
        """LoadGen callback: ``query_samples`` is a list of ``QuerySample`` (``.id``, ``.index``).

        Never raises: an exception thrown through LoadGen's C++ ends the process. The batches are planned
        before any sample is handed on, so on an error there every sample of the query is completed empty
        and ``error`` keeps the cause."""
        try:
            ids = np.fromiter((q.id for q in query_samples), dtype=np.uint64, count=len(query_samples))
        except BaseException as exc:  # noqa: BLE001 - recorded; nothing can be completed without ids
            self._record(exc)
            return
        try:
            handoff = self._plan(ids, query_samples)
        except BaseException as exc:  # noqa: BLE001 - recorded and re-raised by the runner
            self._record(exc)
            handoff = None
        if handoff is None:
            self._safe_complete_empty(ids)
            return
        handoff()

    def _plan(self, ids: np.ndarray, query_samples: list):
        """What to do with a query, as a function that cannot raise; None = complete it empty (draining)."""
        if self._draining:
            return None
        scenario = self.config.scenario
        if scenario == "Server":
            now = time.monotonic()
            items = [(q.id, q.index, now) for q in query_samples]
            return lambda: [self._queue.put(item) for item in items]
        idx = np.fromiter((q.index for q in query_samples), dtype=np.int64, count=len(query_samples))
        batches = [(ids[b], idx[b]) for b in plan_batches(self.qsl.lengths[idx], self.config.batcher, self.cap)]
        if scenario == "Offline":
            return lambda: [self._queue.put(b) for b in batches]
        return lambda: [self.run_batch(*b) for b in batches]  # SingleStream / MultiStream: run right here

    def flush_queries(self) -> None:
        """LoadGen callback at the end of a run; queued samples are already being served. Never raises."""

    # -- workers ---------------------------------------------------------------------------------
    def _offline_worker(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            self.run_batch(*item)

    def _server_worker(self) -> None:
        max_batch = self.config.batcher.max_batch_size
        max_wait = self.config.batcher.server_max_wait_ms / 1000.0
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            pending = [item]
            deadline = item[2] + max_wait
            stop = False
            while len(pending) < max_batch:
                timeout = deadline - time.monotonic()
                try:
                    nxt = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                pending.append(nxt)
            ids = np.array([p[0] for p in pending], dtype=np.uint64)
            try:
                idx = np.array([p[1] for p in pending], dtype=np.int64)
                batches = [(ids[b], idx[b]) for b in plan_batches(self.qsl.lengths[idx], self.config.batcher,
                                                                   self.cap)]
            except BaseException as exc:  # noqa: BLE001 - recorded; the samples must still complete
                self._record(exc)
                self._safe_complete_empty(ids)
                batches = []
            for b in batches:
                self.run_batch(*b)
            if stop:
                return

    # -- the work --------------------------------------------------------------------------------
    def run_batch(self, sample_ids: np.ndarray, sample_indices: np.ndarray) -> None:
        """Run one batch through the backend and complete its samples (always, even on error; never
        raises). In drain mode the backend is not called and the samples are completed empty.

        Args:
            sample_ids: uint64 [B] LoadGen response ids.
            sample_indices: int64 [B] QSL indices.
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
            lengths = self.qsl.lengths[sample_indices]
            seq = padded_length(int(lengths.max()), self.config.batcher.pad_to_multiple, self.cap)
            if self.error is None:
                logits = self.backend.predict(
                    self.qsl.input_ids[sample_indices, :seq],
                    self.qsl.input_mask[sample_indices, :seq],
                    self.qsl.segment_ids[sample_indices, :seq],
                )
                if logits.shape != (len(sample_ids), seq, 2):
                    raise BackendFailure(f"backend {self.backend.name!r} returned logits of shape "
                                         f"{tuple(logits.shape)}, expected {(len(sample_ids), seq, 2)}")
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

    def _safe_complete_empty(self, sample_ids: np.ndarray) -> None:
        try:
            self._complete_empty(sample_ids)
        except BaseException as exc:  # noqa: BLE001 - never into LoadGen's C++
            self._record(exc)

    def _complete_empty(self, sample_ids: np.ndarray) -> None:
        """Complete ``sample_ids`` (uint64 [B]) with empty responses (no bytes)."""
        if len(sample_ids) == 0:
            return
        lg.QuerySamplesComplete([lg.QuerySampleResponse(int(i), 0, 0) for i in sample_ids])
        with self._lock:
            self.samples_completed += len(sample_ids)

    def _complete(self, sample_ids: np.ndarray, lengths: np.ndarray, seq: int, logits: np.ndarray) -> None:
        b = len(sample_ids)
        buf, stride, nbytes = pack_batch(logits, lengths, self.config.response_rows, self.cap)  # (B, rows, 2)
        base = buf.ctypes.data
        responses = [lg.QuerySampleResponse(int(sample_ids[k]), base + k * stride, int(nbytes[k])) for k in range(b)]
        # ``buf`` is referenced here until QuerySamplesComplete has copied the bytes.
        lg.QuerySamplesComplete(responses)
        del buf
        with self._lock:
            self.samples_completed += b
            self.batches_run += 1
