"""The project's one file hash: sha256 of a file's bytes, with a one-line error naming the file."""

from __future__ import annotations

import hashlib
from pathlib import Path

from mlperf_bert.errors import DataError


def file_sha256(path: Path, what: str = "file", hint: str = "check the path") -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks.

    Args:
        path: the file.
        what, hint: for the error message, e.g. ``"dataset file"``, ``"pass --dataset ..."``.

    Raises:
        DataError: the file is missing or unreadable (message names it).
    """
    path = Path(path)
    h = hashlib.sha256()
    try:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found; {hint}") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read {what} ({exc.strerror}); {hint}") from None
    return h.hexdigest()
