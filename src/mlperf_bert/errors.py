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
