"""The project's file infrastructure, written once: atomic writes, content fingerprints, JSON reading.

- ``atomic_path`` / ``write_atomic`` / ``write_json_atomic``: a file appears complete or not at all (a
  temporary file in the same folder, then ``os.replace``), with one file mode for everything we write
  (``0o666`` minus the umask, as ``open()`` would give; ``mkstemp``'s 0600 is never left behind).
- ``file_sha256`` / ``fingerprint``: sha256 of a file, or of a model folder's files (name + bytes), for cache
  keys and manifests.
- ``read_json``: a JSON file or one line saying which file is missing, unreadable or malformed (and where).
- ``save_npz`` / ``load_npz``: array caches keyed by a content hash (features of the dev and train sets).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from mlperf_bert.errors import DataError, UnwritableFolder

_BLOCK = 1 << 20  # bytes per hash update
#: Files of a model folder that make up its content (weights, graphs, configs, vocab).
MODEL_FILE_SUFFIXES = (".json", ".safetensors", ".bin", ".pytorch", ".onnx", ".txt", ".pb", ".data", ".xml")


def file_mode() -> int:
    """The mode ``open(path, "w")`` would give a new file: ``0o666`` minus the process umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed onto ``path`` when the block succeeds.

    On an exception (or Ctrl-C) the temporary file is removed and ``path`` is untouched. The parent folder
    is created. The file gets ``file_mode()``.

    Raises:
        UnwritableFolder: the folder cannot be created or written (one line naming it).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise UnwritableFolder(path.parent, exc.strerror or str(exc)) from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if tmp.exists():
            os.chmod(tmp, file_mode())
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_atomic(path: Path, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)
    return Path(path)


def jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON types: dataclasses as dicts, Paths as strings, numpy scalars as numbers."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    item = getattr(obj, "item", None)  # numpy scalars
    if item is not None and getattr(obj, "shape", None) == ():
        return item()
    return obj


def write_json_atomic(path: Path, data: Any, indent: int | None = 2) -> Path:
    """Write ``data`` (see ``jsonable``) as JSON with a final newline to ``path`` atomically."""
    return write_atomic(path, json.dumps(jsonable(data), indent=indent) + "\n")


def read_json(path: Path, what: str = "JSON file", hint: str = "") -> Any:
    """Parse the JSON file at ``path``.

    Args:
        what: what the file is, for the message (``"accuracy log"``, ``"system description"``).
        hint: what to do about it, appended after ``;``.

    Raises:
        DataError: missing, unreadable, not UTF-8, or not valid JSON (names the line and column, and says
            "truncated" when the text ends early).
    """
    path = Path(path)
    tail = f"; {hint}" if hint else ""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found{tail}") from None
    except IsADirectoryError:
        raise DataError(f"{path}: {what} is a folder, not a file{tail}") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: {what} is not UTF-8 text{tail}") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read {what} ({exc.strerror or exc}){tail}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        how = "truncated" if exc.pos >= len(text.rstrip()) else "not valid JSON"
        raise DataError(f"{path}: {what} is {how} (line {exc.lineno}, column {exc.colno}: {exc.msg}){tail}") from None


def _hash_file(h: "hashlib._Hash", path: Path) -> None:
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            h.update(block)


def file_sha256(path: Path, what: str = "file", hint: str = "check the path") -> str:
    """Hex sha256 of a file's bytes.

    Raises:
        DataError: the file is missing or unreadable (the message names it, ``what`` it is and ``hint``).
    """
    path = Path(path)
    h = hashlib.sha256()
    try:
        _hash_file(h, path)
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found; {hint}") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read {what} ({exc.strerror}); {hint}") from None
    return h.hexdigest()


def fingerprint(path: Path) -> str:
    """Hex sha256 of a model: a file's bytes, or for a folder each model file in it (``MODEL_FILE_SUFFIXES``,
    sorted by name; name then bytes), so renaming the folder keeps the fingerprint and editing any weight
    changes it. A state_dict file's ``bert_config.json`` neighbour is included too.

    Raises:
        DataError: missing or unreadable.
    """
    path = Path(path)
    if path.is_file():
        extra = [p for p in (path.parent / "bert_config.json",) if p.is_file() and path.suffix != ".json"
                 and path.suffix in (".pytorch", ".bin", ".safetensors", ".pt")]
        if not extra:
            return file_sha256(path, "model file")
        files = [path, *extra]
    elif path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in MODEL_FILE_SUFFIXES
                       and p.name != "manifest.json" and not p.name.startswith("."))
    else:
        raise DataError(f"{path}: model not found")
    h = hashlib.sha256()
    try:
        for p in files:
            h.update(p.name.encode())
            _hash_file(h, p)
    except OSError as exc:
        raise DataError(f"{path}: cannot read {exc.filename} ({exc.strerror})") from None
    return h.hexdigest()


def save_npz(path: Path, key: str, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` and their cache ``key`` (a content hash) as an uncompressed ``.npz``, atomically."""
    with atomic_path(path) as tmp, tmp.open("wb") as fh:
        np.savez(fh, cache_key=np.array(key), **arrays)


def load_npz(path: Path, key: str, names: list[str] | tuple[str, ...]) -> dict[str, np.ndarray] | None:
    """The arrays ``names`` of a ``save_npz`` file, or None when it is absent, unreadable, corrupt or was
    written for another ``key`` (a stale cache is rebuilt, never trusted)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            if str(npz["cache_key"]) != key:
                return None
            return {name: npz[name] for name in names}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
