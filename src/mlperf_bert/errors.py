"""Typed errors. The CLI turns every ``HarnessError`` into one line on stderr and exit code 2."""


class HarnessError(Exception):
    """Base class: a user-facing problem whose message is one line naming the file/flag and the fix."""


class ConfigError(HarnessError):
    """A flag, setting or combination of settings is invalid (e.g. unknown scenario)."""


class DataError(HarnessError):
    """An input data file is missing or malformed (dataset JSON, vocab, accuracy log, calibration list)."""


class ModelError(HarnessError):
    """A model file is missing, corrupt, or has unexpected inputs/outputs/weights."""


class BackendUnavailable(HarnessError):
    """The runtime a backend needs is not installed (names the pip extra to install)."""


class BackendFailure(HarnessError):
    """A backend raised while the SUT was serving LoadGen queries; the run is marked failed."""


class ChecksumError(HarnessError):
    """A downloaded or given file does not have the expected md5/sha256."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a run (not a ``HarnessError``: the CLI exits 130, not 2).

    Attributes:
        phase: what the run was doing (``features``, ``backend``, ``accuracy``, ``probe``, ``performance``,
            ``scoring``), set by the runner; None when raised outside a run.
        run_dir: the run folder as left (``<name>.interrupted``), or None when none was made yet.
        outcome: the interrupted LoadGen test (``loadgen.session.TestOutcome``), or None.
        loadgen_finished: LoadGen's StartTest returned after the SUT drained (its logs are complete).
        threads_running: LoadGen's thread or a SUT worker still runs; the process must leave with
            ``os._exit`` instead of running C++ static destructors under it.
    """

    def __init__(self, *, phase: str | None = None, run_dir=None, outcome=None, loadgen_finished: bool = True,
                 threads_running: bool = False) -> None:
        super().__init__(phase)
        self.phase = phase
        self.run_dir = run_dir
        self.outcome = outcome
        self.loadgen_finished = loadgen_finished
        self.threads_running = threads_running

    def __str__(self) -> str:
        where = f" during the {self.phase} phase" if self.phase else ""
        kept = f"; run folder kept as {self.run_dir}" if self.run_dir else "; no run folder was made"
        return f"interrupted{where}{kept}"


def json_error_text(exc, where: str) -> str:
    """``json.JSONDecodeError`` message plus where it happened, e.g. ``Unterminated string starting at char
    42`` (the json module's own message for that case already ends with "at", which would read "at at")."""
    return f"{exc.msg.removesuffix(' at')} at {where}"


class UnwritableFolder(HarnessError):
    """A file could not be created in a folder (missing permission, a file where the folder should be).

    Attributes:
        folder: the folder.
        reason: the OS's words, e.g. ``Permission denied``.
    """

    def __init__(self, folder, reason: str) -> None:
        super().__init__(f"cannot write in {folder}: {reason}")
        self.folder, self.reason = folder, reason
