"""Truncate ``mlperf_log_accuracy.json`` for a submission and record the full log's sha256.

Rules (MLPerf v1.0 ``tools/submission/truncate_accuracy_log.py`` and ``submission-checker.py``): a
submitted accuracy log must be at most 10 KiB; it keeps the first and the last 4,096 bytes of the full
log joined by ``"\\n\\n...\\n\\n"``, and ``accuracy.txt`` gets a line ``hash=<sha256 hex of the full log>``,
which the checker reads with ``^hash=([\\w\\d]+)$``. The full log (20-66 MB for the dev set) is kept
outside the submission so the hash can be checked later (``verify_truncated``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mlperf_bert.errors import DataError
from mlperf_bert.fileio import file_sha256, write_atomic

#: Largest submitted accuracy log, bytes (v1.0 ``MAX_ACCURACY_LOG_SIZE``).
MAX_ACCURACY_LOG_SIZE = 10 * 1024
#: Bytes kept from each end of the full log (v1.0 ``VIEWABLE_SIZE``).
VIEWABLE_SIZE = 4096
#: What joins the kept head and tail.
ELLIPSIS = b"\n\n...\n\n"
#: The line the checker looks for in accuracy.txt.
HASH_RE = re.compile(r"^hash=([\w\d]+)$")


@dataclass(frozen=True)
class Truncation:
    """What ``truncate_accuracy_log`` did.

    Attributes:
        sha256: hex sha256 of the full log.
        full_size: bytes of the full log.
        size: bytes of the written (truncated) log, <= 10 KiB.
        truncated: False when the full log was already small enough and was copied unchanged.
    """

    sha256: str
    full_size: int
    size: int
    truncated: bool


def truncate_accuracy_log(src: Path, dst: Path) -> Truncation:
    """Write the submission form of accuracy log ``src`` to ``dst`` (which may be ``src`` itself).

    A log of at most 10 KiB is copied unchanged; a larger one becomes its first 4,096 bytes, ``ELLIPSIS``
    and its last 4,096 bytes (8,199 bytes).

    Raises:
        DataError: ``src`` is missing or unreadable.
    """
    src, dst = Path(src), Path(dst)
    try:
        full_size = src.stat().st_size
        digest = file_sha256(src, "accuracy log")
        with src.open("rb") as fh:
            if full_size <= MAX_ACCURACY_LOG_SIZE:
                body, truncated = fh.read(), False
            else:
                head = fh.read(VIEWABLE_SIZE)
                fh.seek(full_size - VIEWABLE_SIZE)
                body, truncated = head + ELLIPSIS + fh.read(VIEWABLE_SIZE), True
    except OSError as exc:
        raise DataError(f"accuracy log {src} cannot be read: {exc.strerror or exc}") from None
    write_atomic(dst, body)
    return Truncation(sha256=digest, full_size=full_size, size=len(body), truncated=truncated)


def read_hash(accuracy_txt: Path) -> str | None:
    """The ``hash=`` value of an accuracy.txt, or None when it has no such line (or is missing)."""
    try:
        lines = Path(accuracy_txt).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        m = HASH_RE.match(line)
        if m:
            return m.group(1)
    return None


def write_accuracy_txt(path: Path, evaluator_line: str, sha256: str) -> None:
    """accuracy.txt of a submission: the evaluator's JSON line, then ``hash=<sha256>``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(evaluator_line.rstrip("\n") + "\n" + f"hash={sha256}\n", encoding="utf-8")


def verify_truncated(truncated: Path, full: Path, expected_hash: str | None) -> list[str]:
    """Problems linking a submitted (truncated) log to the full log; empty when they match.

    Checks: the full log's sha256 equals ``expected_hash``; the truncated file is exactly what
    ``truncate_accuracy_log`` makes from the full log.
    """
    problems = []
    digest = file_sha256(full, "accuracy log")
    if expected_hash is None:
        problems.append("accuracy.txt has no hash= line")
    elif digest != expected_hash:
        problems.append(f"hash={expected_hash[:16]}... in accuracy.txt but the full log {full} has sha256 "
                        f"{digest[:16]}...")
    size = full.stat().st_size
    with full.open("rb") as fh:
        if size <= MAX_ACCURACY_LOG_SIZE:
            want = fh.read()
        else:
            head = fh.read(VIEWABLE_SIZE)
            fh.seek(size - VIEWABLE_SIZE)
            want = head + ELLIPSIS + fh.read(VIEWABLE_SIZE)
    if Path(truncated).read_bytes() != want:
        problems.append(f"{truncated.name} is not the head and tail of the full log {full}")
    return problems
