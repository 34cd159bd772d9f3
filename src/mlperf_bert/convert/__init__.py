"""Offline model conversion: TF checkpoint <-> Hugging Face (``tf_to_torch``, ``torch_to_tf``), TF graph export
(``export_tf``), ONNX export (``to_onnx``); ``names`` holds the one TF <-> HF name map they share.

Every converter writes a new artifact and never a half-written one: output goes to a temporary sibling
folder that is renamed into place only when complete (``atomic_output_dir``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from mlperf_bert.errors import ConfigError


def check_output_dir(out_dir: Path, *, overwrite: bool = False) -> None:
    """Fail early (before slow work) when ``out_dir`` may not be written.

    Raises:
        ConfigError: ``out_dir`` is a file, or an existing non-empty folder and ``overwrite`` is False.
    """
    out_dir = Path(out_dir)
    if out_dir.exists():
        if not out_dir.is_dir():
            raise ConfigError(f"output {out_dir} is a file; give a folder path that does not exist yet")
        if any(out_dir.iterdir()) and not overwrite:
            raise ConfigError(f"output folder {out_dir} already exists and is not empty; remove it or pass --force")


@contextlib.contextmanager
def atomic_output_dir(out_dir: Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``out_dir``; on success it becomes ``out_dir``, on error it is deleted.

    Args:
        out_dir: the folder to produce. Its parent is created if needed.
        overwrite: replace an existing ``out_dir`` (the old one is removed only after the new one is
            complete). Without it an existing non-empty ``out_dir`` is a ConfigError, raised before any work.

    Raises:
        ConfigError: ``out_dir`` exists (and is not empty) and ``overwrite`` is False, or it is a file.
    """
    out_dir = Path(out_dir)
    check_output_dir(out_dir, overwrite=overwrite)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".partial", dir=out_dir.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it 0700; the result is an ordinary folder
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.{os.getpid()}.old")
        os.replace(out_dir, old)
    os.replace(tmp, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
