"""Find the models present on this machine: official downloads (md5-verified), Hugging Face dirs, ONNX files.

Layout searched, for each root folder given: the root itself and its direct subfolders. A folder named
after an official entry (``<root>/bert-large-onnx/``, the layout ``mlperf-bert download`` writes) is
checked file by file against the registry md5s. Any folder with ``config.json`` + ``model.safetensors`` is a
Hugging Face model; every other ``*.onnx`` file is a local ONNX model whose graph inputs are read with the
``onnx`` package when it is installed. A ``manifest.json`` beside a model is attached as-is.

md5 sums of large files and ONNX input names are cached in ``.mlperf-bert-files.json`` in the same folder,
keyed by file name, size and mtime, so a second listing reads nothing but that json. The cache is best
effort: on a read-only folder nothing is written and the sums are recomputed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mlperf_bert.errors import UnwritableFolder
from mlperf_bert.fileio import write_atomic
from mlperf_bert.models.registry import OFFICIAL, Entry

#: Name of the per-folder cache of md5 sums and ONNX input names.
FILE_CACHE_NAME = ".mlperf-bert-files.json"
_CACHE_VERSION = 1
_CHUNK = 1 << 20  # bytes read per md5 update

LocalKind = Literal["official", "hf", "onnx"]


def md5_file(path: Path, chunk_size: int = _CHUNK) -> str:
    """md5 of a whole file as 32 lower-case hex digits, read in ``chunk_size``-byte pieces."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


class FileInfoCache:
    """Per-folder json cache of facts about files (``md5``, ``onnx_inputs``), valid while size+mtime hold.

    Format: ``{"version": 1, "files": {filename: {"size": int, "mtime_ns": int, <key>: value}}}``.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / FILE_CACHE_NAME
        self._files: dict[str, dict[str, Any]] = {}
        self._dirty = False
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("version") == _CACHE_VERSION and isinstance(data.get("files"), dict):
                self._files = data["files"]
        except (OSError, ValueError, AttributeError):
            pass  # no cache or an unreadable one: start empty

    @staticmethod
    def _stamp(path: Path) -> tuple[int, int]:
        st = path.stat()
        return st.st_size, st.st_mtime_ns

    def get(self, path: Path, key: str) -> Any | None:
        """The cached ``key`` for ``path``, or None when absent or the file changed since."""
        rec = self._files.get(path.name)
        if not rec or key not in rec:
            return None
        size, mtime_ns = self._stamp(path)
        if rec.get("size") != size or rec.get("mtime_ns") != mtime_ns:
            return None
        return rec[key]

    def put(self, path: Path, key: str, value: Any) -> None:
        """Record ``key = value`` for ``path`` at its current size and mtime."""
        size, mtime_ns = self._stamp(path)
        rec = self._files.get(path.name)
        if not rec or rec.get("size") != size or rec.get("mtime_ns") != mtime_ns:
            rec = {"size": size, "mtime_ns": mtime_ns}
        rec[key] = value
        self._files[path.name] = rec
        self._dirty = True

    def save(self) -> None:
        """Write the cache atomically if it changed; silently skipped where the folder is read-only."""
        if not self._dirty:
            return
        try:
            write_atomic(self.path, json.dumps({"version": _CACHE_VERSION, "files": self._files}, indent=1))
            self._dirty = False
        except (OSError, UnwritableFolder):  # a read-only folder: the sums are recomputed next time
            pass

    def md5(self, path: Path) -> str:
        """md5 of ``path``, from the cache when the file is unchanged, else computed and cached."""
        cached = self.get(path, "md5")
        if cached is None:
            cached = md5_file(path)
            self.put(path, "md5", cached)
        return cached


def record_md5(path: Path, md5: str) -> None:
    """Store an already computed md5 of ``path`` in its folder's cache (used after a verified download)."""
    cache = FileInfoCache(path.parent)
    cache.put(path, "md5", md5)
    cache.save()


@dataclass(frozen=True)
class LocalModel:
    """A model (or official data set) found on disk.

    Attributes:
        name: official registry name, the Hugging Face folder name, or ``<folder>/<file>.onnx``.
        kind: ``"official"``, ``"hf"`` or ``"onnx"``.
        path: the folder (official, hf) or the file (onnx).
        status: ``"verified"``, ``"md5 mismatch (<files>)"``, ``"incomplete (k of n files)"``,
            ``"not verified"`` (official, ``verify=False``), ``"no checksum"`` (hf, onnx) or
            ``"unreadable"`` (an ONNX file that does not parse).
        official: the registry name when this is an official download, else None.
        input_names: graph inputs (ONNX files, when the onnx package is installed), else empty.
        manifest: contents of a ``manifest.json`` in the same folder, if any.
        detail: one human-readable line (architecture, missing files, partial download...).
    """

    name: str
    kind: LocalKind
    path: Path
    status: str
    official: str | None = None
    input_names: tuple[str, ...] = ()
    manifest: dict[str, Any] | None = None
    detail: str = ""

    @property
    def verified(self) -> bool:
        """True when every file of an official entry is present with the registry md5."""
        return self.status == "verified"


def official_status(entry: Entry, folder: Path, *, verify: bool = True,
                    cache: FileInfoCache | None = None) -> LocalModel | None:
    """Check ``folder`` against the files of an official ``entry``; None when none of them is there.

    Args:
        entry: registry entry whose ``files`` are expected in ``folder`` under their ``filename``.
        folder: the download folder of that entry (``<root>/<entry.name>``).
        verify: compute (or read cached) md5 sums; False only reports presence.
        cache: md5 cache of ``folder``; a fresh one is made (and saved) when None.
    """
    own_cache = cache is None
    cache = cache or FileInfoCache(folder)
    present, missing, bad, partial = [], [], [], []
    for art in entry.files:
        path = folder / art.filename
        if path.is_file():
            present.append(art.filename)
            if verify and cache.md5(path) != art.md5:
                bad.append(art.filename)
        else:
            missing.append(art.filename)
            if (folder / f"{art.filename}.part").is_file():
                partial.append(art.filename)
    if own_cache:
        cache.save()
    if not present and not partial:
        return None
    n = len(entry.files)
    if bad:
        status = f"md5 mismatch ({', '.join(bad)})"
    elif missing:
        status = f"incomplete ({len(present)} of {n} files)"
    elif not verify:
        status = "not verified"
    else:
        status = "verified"
    detail = ""
    if missing:
        detail = "missing " + ", ".join(missing)
        if partial:
            detail += f"; partial download of {', '.join(partial)} (rerun download to resume)"
    return LocalModel(name=entry.name, kind="official", path=folder, status=status,
                      official=entry.name, detail=detail)


def _read_manifest(folder: Path) -> tuple[dict[str, Any] | None, str]:
    """(the folder's artifact manifest as JSON, a note when it is unreadable)."""
    from mlperf_bert.errors import DataError
    from mlperf_bert.models.artifact import read_manifest

    try:
        manifest = read_manifest(folder)
    except DataError as exc:
        return None, str(exc)
    return (manifest.to_json() if manifest else None), ""


def _hf_detail(folder: Path) -> str:
    try:
        cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"config.json unreadable: {exc}"
    parts = [str(cfg.get("model_type", "?"))]
    if "num_hidden_layers" in cfg:
        parts.append(f"{cfg['num_hidden_layers']} layers")
    if "hidden_size" in cfg:
        parts.append(f"hidden {cfg['hidden_size']}")
    return ", ".join(parts)


def _onnx_inputs(path: Path, cache: FileInfoCache) -> tuple[tuple[str, ...], str, bool]:
    """(graph input names, detail, readable). Uses the onnx package lazily; weights are not loaded."""
    cached = cache.get(path, "onnx_inputs")
    if cached is not None:
        return tuple(cached), "", True
    try:
        import onnx  # lazy: the [onnxruntime] extra brings it
    except ImportError:
        return (), "install mlperf-bert[onnxruntime] to read input names", True
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises several types on a corrupt file
        return (), f"not a readable ONNX file: {type(exc).__name__}", False
    initializers = {init.name for init in model.graph.initializer}
    names = [inp.name for inp in model.graph.input if inp.name not in initializers]
    cache.put(path, "onnx_inputs", names)
    return tuple(names), "", True


def _scan_folder(folder: Path, official: Sequence[Entry], verify: bool) -> list[LocalModel]:
    found: list[LocalModel] = []
    cache = FileInfoCache(folder)
    manifest, manifest_note = _read_manifest(folder)
    claimed: set[str] = set()
    for entry in official:
        if entry.name == folder.name:
            model = official_status(entry, folder, verify=verify, cache=cache)
            if model is not None:
                found.append(model)
                claimed.update(a.filename for a in entry.files)
    if (folder / "config.json").is_file() and (folder / "model.safetensors").is_file():
        found.append(LocalModel(name=folder.name, kind="hf", path=folder, status="no checksum",
                                manifest=manifest, detail=manifest_note or _hf_detail(folder)))
    for onnx_path in sorted(folder.glob("*.onnx")):
        if onnx_path.name in claimed or not onnx_path.is_file():
            continue
        inputs, note, readable = _onnx_inputs(onnx_path, cache)
        found.append(LocalModel(name=f"{folder.name}/{onnx_path.name}", kind="onnx", path=onnx_path,
                                status="no checksum" if readable else "unreadable",
                                input_names=inputs, manifest=manifest,
                                detail=note or manifest_note))
    cache.save()
    return found


def list_local(dirs: Iterable[Path], *, official: Sequence[Entry] = OFFICIAL,
               verify: bool = True) -> list[LocalModel]:
    """Every model found in ``dirs`` (each root and its direct subfolders), in root then name order.

    Args:
        dirs: root folders, e.g. ``<cache>/models`` and ``shared/models``; missing ones are skipped
            (the CLI rejects a missing folder the user named).
        official: registry entries to recognise by folder name (tests pass their own).
        verify: check md5 sums of official files (cached by size+mtime); False only checks presence.

    Returns:
        One ``LocalModel`` per official entry folder, Hugging Face folder and ONNX file; a folder
        reached twice (same resolved path) is listed once.
    """
    seen: set[Path] = set()
    found: list[LocalModel] = []
    for root in dirs:
        root = Path(root)
        if not root.is_dir():
            continue
        folders = [root] + sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        for folder in folders:
            key = folder.resolve()
            if key in seen:
                continue
            seen.add(key)
            found.extend(_scan_folder(folder, official, verify))
    return found


@dataclass(frozen=True)
class OfficialRow:
    """One official entry and where (if anywhere) it was found; see ``official_table``."""

    entry: Entry
    found: tuple[LocalModel, ...] = field(default_factory=tuple)

    @property
    def best(self) -> LocalModel | None:
        """The verified copy if any, else the first copy found, else None."""
        for model in self.found:
            if model.verified:
                return model
        return self.found[0] if self.found else None


def official_table(local: Sequence[LocalModel], official: Sequence[Entry] = OFFICIAL) -> list[OfficialRow]:
    """Join the registry with ``list_local`` results: one row per official entry, in registry order."""
    return [OfficialRow(entry, tuple(m for m in local if m.official == entry.name)) for entry in official]
