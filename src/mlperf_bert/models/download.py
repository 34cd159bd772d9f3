"""Download official artifacts: streamed, resumable (HTTP Range), md5-checked, moved into place atomically.

For a file ``F`` in ``dest_dir``:

* ``F`` already there with the registry md5 -> nothing is fetched (the md5 is cached by size+mtime).
  ``F`` there with another md5 -> it is moved aside to ``F.bad-md5`` and fetched again.
* Bytes are written to ``F.part``. A ``F.part`` left by an earlier attempt is resumed with
  ``Range: bytes=N-``: ``206`` appends, ``200`` (server without Range support) restarts from zero,
  ``416`` means nothing is left to fetch and the part is verified as it is.
* A connection cut mid-file keeps ``F.part`` and retries (``retries`` times, resuming each time). A host
  name that does not resolve (no network) is one line at once, not retried.
* A failed download removes the folders it created while they are empty (nothing to resume).
* When complete, the md5 of ``F.part`` is compared with the registry; a match is ``os.replace``-d to ``F``;
  a mismatch is moved to ``F.bad-md5`` and ``ChecksumError`` is raised. ``F`` is never half written.

A mirror (``base_url_override``) maps every artifact to ``<mirror>/<filename>``; this is how air-gapped
sites and the tests point downloads at a local server.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests
from tqdm import tqdm

try:
    from urllib3.exceptions import NameResolutionError
except ImportError:  # urllib3 1.x: the socket.gaierror under its NewConnectionError is found instead
    NameResolutionError = socket.gaierror

from mlperf_bert.errors import ChecksumError, ConfigError, HarnessError
from mlperf_bert.models.local import FileInfoCache, md5_file, record_md5
from mlperf_bert.models.registry import Artifact, Entry

log = logging.getLogger(__name__)

_CHUNK = 1 << 20  # bytes per streamed read
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


class DownloadError(HarnessError):
    """A download failed: HTTP error status, unreachable server, or retries exhausted."""


class _Incomplete(Exception):
    """The server closed the body before Content-Length bytes (retryable)."""


_RETRYABLE = (
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.Timeout,
    _Incomplete,
)


def artifact_url(artifact: Artifact, base_url_override: str | None = None) -> str:
    """The URL to fetch: the official one, or ``<mirror>/<filename>`` when a mirror is given."""
    if base_url_override:
        return f"{base_url_override.rstrip('/')}/{artifact.filename}"
    return artifact.url


def _part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def _bad_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".bad-md5")


def _attempt(session: requests.Session, url: str, part: Path, artifact: Artifact, *,
             progress: bool, timeout: float, chunk_size: int) -> str:
    """One HTTP request that extends or rewrites ``part``; returns the md5 of the complete part."""
    offset = part.stat().st_size if part.is_file() else 0
    # identity: byte offsets and Content-Length must refer to the file itself, not a gzip stream.
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    with session.get(url, headers=headers, stream=True, timeout=timeout) as resp:
        if resp.status_code == 416 and offset:
            # Nothing past `offset`: the part already holds the whole file (the md5 check decides).
            return md5_file(part)
        if resp.status_code not in (200, 206):
            raise DownloadError(f"{url}: HTTP {resp.status_code} {resp.reason}; "
                                "check the artifact name or the --mirror URL")
        digest = hashlib.md5(usedforsecurity=False)
        if resp.status_code == 206:
            match = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != offset:
                part.unlink(missing_ok=True)  # unusable answer to our Range: restart from zero
                raise _Incomplete(f"server answered Range bytes={offset}- with "
                                  f"Content-Range {resp.headers.get('Content-Range')!r}")
            with open(part, "rb") as fh:  # hash the bytes we already have, then continue
                while block := fh.read(chunk_size):
                    digest.update(block)
            mode = "ab"
        else:  # 200: full body (also what a server without Range support sends to a Range request)
            offset, mode = 0, "wb"
        length = resp.headers.get("Content-Length")
        total = offset + int(length) if length is not None else artifact.size_hint
        with open(part, mode) as fh, tqdm(total=total, initial=offset, unit="B", unit_scale=True,
                                           unit_divisor=1024, desc=artifact.filename,
                                           disable=not progress, leave=True) as bar:
            for chunk in resp.iter_content(chunk_size):
                fh.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
    if length is not None and part.stat().st_size != total:
        raise _Incomplete(f"got {part.stat().st_size} of {total} bytes")
    return digest.hexdigest()


def download(artifact: Artifact, dest_dir: Path, *, session: requests.Session | None = None,
             progress: bool = True, base_url_override: str | None = None, retries: int = 3,
             retry_wait: float = 1.0, timeout: float = 60.0, chunk_size: int = _CHUNK) -> Path:
    """Fetch ``artifact`` into ``dest_dir/<artifact.filename>`` and verify its md5.

    Args:
        artifact: registry file (URL, md5, filename).
        dest_dir: target folder, created if missing.
        session: requests session to use (tests pass one); a private one is made when None.
        progress: show a tqdm progress bar (bytes) on stderr.
        base_url_override: mirror base URL; the file is fetched from ``<mirror>/<filename>``.
        retries: extra attempts after a connection error or short body, each resuming the ``.part``.
        retry_wait: seconds to wait before retry k (k * retry_wait).
        timeout: seconds for connecting and between received bytes (requests' timeout).
        chunk_size: bytes per streamed read.

    Returns:
        Path of the verified file.

    Raises:
        ChecksumError: the complete file has another md5; it is kept as ``<file>.bad-md5``.
        DownloadError: HTTP error status (e.g. 404), retries exhausted (a ``.part`` is kept to resume),
            or the part cannot be written.
        ConfigError: ``dest_dir`` cannot be created.

    On any failure the folders this call created are removed again while empty.
    """
    dest_dir = Path(dest_dir)
    created = [d for d in (dest_dir, *dest_dir.parents) if not d.exists()]  # deepest first
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{dest_dir}: cannot create the download folder ({exc.strerror}); "
                          "pass a writable --dir") from exc
    try:
        return _download(artifact, dest_dir, session=session, progress=progress,
                         base_url_override=base_url_override, retries=retries, retry_wait=retry_wait,
                         timeout=timeout, chunk_size=chunk_size)
    except BaseException:
        for d in created:  # folders this call made and that are still empty (no .part to resume)
            try:
                d.rmdir()
            except OSError:
                break
        raise


def _unresolved(exc: BaseException) -> bool:
    """True when a request failed because the host name could not be resolved (no network, no DNS).
    Such a failure is not retried: it does not go away in seconds."""
    todo, seen = [exc], set()
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, (NameResolutionError, socket.gaierror)):
            return True
        todo += [x for x in (e.__cause__, e.__context__, getattr(e, "reason", None), *e.args)
                 if isinstance(x, BaseException)]
    return False


def _short(exc: BaseException) -> str:
    """One short line for a retry message (requests' own messages repeat the whole urllib3 chain)."""
    reason = next((a.reason for a in exc.args if getattr(a, "reason", None) is not None), None)
    text = str(reason or exc)
    return text if len(text) <= 160 else text[:157] + "..."


def _download(artifact: Artifact, dest_dir: Path, *, session, progress, base_url_override, retries, retry_wait,
              timeout, chunk_size) -> Path:
    dest = dest_dir / artifact.filename
    part, bad = _part_path(dest), _bad_path(dest)
    url = artifact_url(artifact, base_url_override)

    if dest.is_file():
        cache = FileInfoCache(dest_dir)
        present_md5 = cache.md5(dest)
        cache.save()
        if present_md5 == artifact.md5:
            return dest
        log.warning("%s has the wrong md5; moved aside to %s and downloading again", dest, bad.name)
        os.replace(dest, bad)

    own_session = session is None
    session = session or requests.Session()
    try:
        last: Exception | None = None
        for attempt in range(retries + 1):
            if attempt:
                log.warning("%s: retry %d of %d after: %s", url, attempt, retries, _short(last))
                time.sleep(retry_wait * attempt)
            try:
                got = _attempt(session, url, part, artifact, progress=progress, timeout=timeout,
                               chunk_size=chunk_size)
                break
            except _RETRYABLE as exc:
                if _unresolved(exc):
                    raise DownloadError(f"{url}: cannot reach {urlsplit(url).hostname} (the name does not "
                                        "resolve: no network?); pass --mirror URL for a local mirror") from None
                last = exc
            except requests.exceptions.RequestException as exc:  # bad URL, too many redirects, ...
                raise DownloadError(f"{url}: {type(exc).__name__}: {exc}") from exc
            except OSError as exc:  # after RequestException, which is an OSError too
                raise DownloadError(f"{part}: cannot write ({exc.strerror}); free some space or "
                                    "pass another --dir, then rerun to resume") from exc
        else:
            kept = f"; {part} kept ({part.stat().st_size} bytes), rerun to resume" if part.is_file() else ""
            raise DownloadError(f"{url}: failed after {retries + 1} attempts "
                                f"({type(last).__name__}: {_short(last)}){kept}")
    finally:
        if own_session:
            session.close()

    if got != artifact.md5:
        os.replace(part, bad)
        raise ChecksumError(f"{bad}: md5 {got}, expected {artifact.md5} (from {url}); "
                            "the file was set aside and not used; check the source or mirror and retry")
    os.replace(part, dest)
    record_md5(dest, got)
    return dest


def download_entry(entry: Entry, root: Path, **kwargs) -> list[Path]:
    """Download every file of an official model or data set into ``root/<entry.name>/``.

    ``kwargs`` go to ``download`` (session, progress, base_url_override, retries, ...); one session is
    shared by the files when none is given. Returns the verified paths in registry order.
    """
    own_session = kwargs.get("session") is None
    if own_session:
        kwargs["session"] = requests.Session()
    try:
        return [download(artifact, Path(root) / entry.name, **kwargs) for artifact in entry.files]
    finally:
        if own_session:
            kwargs["session"].close()
