"""Run one LoadGen test: the SUT around the backend, ``StartTestWithLogSettings``, and Ctrl-C.

``run_test`` is the only place that starts LoadGen (the runner, the peak finder through the runner, and
``bench`` call it).

Interrupts. Python runs signal handlers only in the main thread, between bytecodes; a main thread blocked
inside ``StartTest`` (C++) never sees Ctrl-C, and a KeyboardInterrupt raised inside a LoadGen callback is
thrown through LoadGen's C++ and ends the process (``terminate called ... std::bad_function_call``). So
LoadGen runs in its own thread while the main thread waits, and the SUT's callbacks never raise.

- First Ctrl-C: the SUT drains (``BertSUT.interrupt``: no more backend calls, every sample completed at
  once with an empty response), so a test whose samples are all issued up front (Offline, accuracy mode)
  ends within moments. LoadGen has no abort: a Server, SingleStream or MultiStream performance test keeps
  issuing until its minimum duration, so after ``grace_s`` seconds the session stops waiting.
- A second Ctrl-C stops the waiting at once.
- Either way ``RunInterrupted`` is raised. When LoadGen's thread (or a worker stuck in the backend) still
  runs, its ``threads_running`` is True: the SUT and QSL are left alive for that thread, and the process
  must leave with ``os._exit`` (the CLI does) rather than run C++ static destructors under it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import mlperf_loadgen as lg

from mlperf_bert.errors import RunInterrupted
from mlperf_bert.loadgen.settings import LoadGenConfig, LoadGenSettings, build_log_settings, build_test_settings, \
    trace_by_default
from mlperf_bert.sut.sut import BertSUT, SUTConfig

#: Seconds to wait for LoadGen after the first Ctrl-C has drained the SUT.
INTERRUPT_GRACE_S = 5.0
#: Poll interval of the waiting main thread (a Ctrl-C is seen within this).
_POLL_S = 0.1


@dataclass
class TestOutcome:
    """What one LoadGen test did.

    Attributes:
        sut: the SUT after the test (``error``, ``samples_completed``; its LoadGen handle is destroyed).
        settings: the TestSettings used and every effective value with its source.
        trace: whether LoadGen wrote ``mlperf_log_trace.json``, and why (``trace_by_default``).
        seconds: wall time of ``StartTestWithLogSettings``.
    """

    __test__ = False  # not a pytest class

    sut: BertSUT
    settings: LoadGenSettings
    trace: tuple[bool, str]
    seconds: float = 0.0


def run_test(backend, qsl, sut_config: SUTConfig, lg_config: LoadGenConfig, outdir: Path, *,
             sut_class: type = BertSUT, grace_s: float = INTERRUPT_GRACE_S, progress: bool = False) -> TestOutcome:
    """Run one LoadGen test of ``lg_config`` with ``backend`` behind a ``sut_class`` SUT.

    Args:
        backend: a loaded ``Backend``.
        qsl: an entered ``SquadQSL``.
        sut_config: scenario and batching of the SUT.
        lg_config: the LoadGen configuration (mode, rules, user.conf, overrides, audit.config, trace).
        outdir: folder for LoadGen's logs (created).
        sut_class: ``BertSUT`` or a subclass (``bench`` records the issued samples).
        grace_s: seconds to wait for LoadGen after the first Ctrl-C.
        progress: show samples done, samples/s and elapsed time while LoadGen runs (``LiveProgress``; only
            when stderr is a terminal).

    Returns:
        ``TestOutcome``. A backend error is in ``outcome.sut.error`` (the caller decides).

    Raises:
        RunInterrupted: Ctrl-C (``outcome`` attached; ``threads_running`` says whether LoadGen's thread or a
            SUT worker still runs).
        ConfigError: the settings could not be built.
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    settings = build_test_settings(lg_config)
    trace = trace_by_default(lg_config, settings)
    log_settings = build_log_settings(outdir, trace=trace[0])
    audit = str(lg_config.audit_conf) if lg_config.audit_conf else str(outdir / "audit.config")
    sut = sut_class(backend, qsl, sut_config)
    outcome = TestOutcome(sut, settings, trace)
    failure: list[BaseException] = []

    done = threading.Event()

    def start() -> None:
        try:
            lg.StartTestWithLogSettings(sut.handle, qsl.handle, settings.test_settings, log_settings, audit)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            failure.append(exc)
        finally:
            done.set()

    sut.__enter__()
    thread = threading.Thread(target=start, name="loadgen", daemon=True)
    live = LiveProgress(f"{lg_config.scenario} {lg_config.mode}",
                        qsl.count if lg_config.mode == "accuracy" else None) if progress else None
    t0 = time.perf_counter()
    try:
        thread.start()
        # Poll with sleep, not Thread.join: a join cut by KeyboardInterrupt can leave is_alive() False
        # while the thread still runs (seen with CPython 3.11), and the SUT would be destroyed under it.
        with live if live is not None else contextlib.nullcontext():
            while not done.is_set():
                time.sleep(_POLL_S)
                if live is not None:
                    live.update(sut.samples_completed)
    except KeyboardInterrupt:
        sut.interrupt()
        started = thread.ident is not None
        if started:
            _wait(done, grace_s)
        outcome.seconds = time.perf_counter() - t0
        loadgen_done = done.is_set() or not started
        workers_done = sut.close(wait_s=0.5 if loadgen_done else 0.0, destroy=loadgen_done)
        if not loadgen_done:
            qsl.detach()  # LoadGen's thread still holds the QSL
        raise RunInterrupted(outcome=outcome, threads_running=not (loadgen_done and workers_done),
                             loadgen_finished=loadgen_done) from None
    outcome.seconds = time.perf_counter() - t0
    sut.close()
    if failure:
        raise failure[0]
    _drop_empty_trace(outdir)
    return outcome


def _drop_empty_trace(outdir: Path) -> None:
    """LoadGen creates ``mlperf_log_trace.json`` even when tracing is off; an empty one is removed so that a
    run folder holds only what was written (a trace, when there is one, is kept)."""
    path = outdir / "mlperf_log_trace.json"
    try:
        if path.stat().st_size == 0:
            path.unlink()
    except FileNotFoundError:
        pass


class LiveProgress:
    """Samples done, samples/s and elapsed time of a running LoadGen test on stderr (rich), refreshed from the
    main thread's wait loop; a no-op when stderr is not a terminal. Reads only ``BertSUT.samples_completed``,
    so it costs the SUT nothing.

    Args:
        label: e.g. ``"Offline accuracy"``.
        total: samples the test will complete (accuracy mode: the QSL size), or None when LoadGen decides
            (performance mode).
    """

    def __init__(self, label: str, total: int | None) -> None:
        import sys

        self.enabled = sys.stderr.isatty()
        self.label, self.total = label, total
        self._progress = None
        self._task = None

    def __enter__(self) -> "LiveProgress":
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TextColumn("{task.fields[rate]:>10}"), TimeElapsedColumn(),
                                      console=Console(stderr=True), transient=True)
            self._progress.__enter__()
            self._task = self._progress.add_task(f"LoadGen {self.label}", total=self.total, rate="")
            self._t0 = time.perf_counter()
        return self

    def update(self, completed: int) -> None:
        if self._progress is not None:
            dt = time.perf_counter() - self._t0
            rate = f"{completed / dt:,.1f}/s" if dt > 0 else ""
            self._progress.update(self._task, completed=completed, rate=rate)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
            self._progress = None


def _wait(done: threading.Event, seconds: float) -> None:
    """Wait up to ``seconds`` for ``done``; a second Ctrl-C ends the wait at once."""
    deadline = time.monotonic() + seconds
    try:
        while not done.is_set() and time.monotonic() < deadline:
            time.sleep(min(_POLL_S, max(0.0, deadline - time.monotonic())))
    except KeyboardInterrupt:
        pass


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Ignore Ctrl-C inside the block (finalizing a run folder takes milliseconds and must not be cut in
    half); in a thread other than the main thread this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
