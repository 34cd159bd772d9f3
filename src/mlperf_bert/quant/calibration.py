"""The MLPerf int8 calibration set: the 100 listed dev features, as model inputs.

MLPerf's closed division allows int8 calibration only on the samples of
``calibration/SQuAD-v1.1/bert-calibration.txt`` (docs/workload.md#closed-division): 100 integers that index the list of
10,833 dev *features* (QSL sample indices), not the 10,570 questions
(docs/workload.md#calibration-list). Everything here is about reading that list strictly and turning the features it
names into model inputs; the quantizers themselves live in ``ptq`` (ONNX Runtime) and ``qat`` (PyTorch).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from mlperf_bert.errors import DataError
from mlperf_bert.squad.types import Features

#: Name of the official list (mlcommons/inference v1.0.1 ``calibration/SQuAD-v1.1/bert-calibration.txt``).
CALIBRATION_FILE_NAME = "bert-calibration.txt"
#: sha256 of the official list (docs/workload.md#calibration-list), recorded in manifests as ``official: true/false``.
OFFICIAL_CALIBRATION_SHA256 = "5a4ace54371313359193a661d653731115fc749c6ed92812ada1f74d4b1b708a"


@dataclass(frozen=True)
class CalibrationList:
    """A parsed calibration list.

    Attributes:
        path: the file it was read from.
        indices: int64 [n] feature (QSL sample) indices, in file order, distinct.
        sha256: hex sha256 of the file's bytes (goes into the model manifest).
    """

    path: Path
    indices: np.ndarray
    sha256: str

    @property
    def official(self) -> bool:
        """True when the file is byte-identical to MLPerf's ``bert-calibration.txt``."""
        return self.sha256 == OFFICIAL_CALIBRATION_SHA256

    def __len__(self) -> int:
        return int(len(self.indices))


def read_calibration_list(path: Path, num_features: int) -> CalibrationList:
    """Read a calibration list: one feature index per line (blank lines ignored).

    Args:
        path: e.g. ``../shared/data/bert-calibration.txt``.
        num_features: how many features the indices point into (10,833 for SQuAD v1.1 dev at 384/128/64);
            every index must be in ``0 .. num_features - 1``.

    Returns:
        ``CalibrationList`` with the indices in file order.

    Raises:
        DataError: missing/unreadable file, a line that is not a non-negative integer, an index out of
            range, a repeated index, or no index at all. The message names the file, the line and the value.

    Example:
        >>> cal = read_calibration_list(Path("bert-calibration.txt"), 10_833)
        >>> len(cal), int(cal.indices[0])
        (100, 4547)
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: calibration list not found; pass --calibration pointing at "
                        f"{CALIBRATION_FILE_NAME} (one feature index per line)") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read calibration list ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path}: calibration list is not text; pass {CALIBRATION_FILE_NAME} "
                        "(one feature index per line)") from None
    indices: list[int] = []
    seen: dict[int, int] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        item = line.strip()
        if not item:
            continue
        if not item.isdigit():
            raise DataError(f"{path} line {lineno}: {item[:40]!r} is not a feature index (a non-negative integer)")
        value = int(item)
        if value >= num_features:
            raise DataError(f"{path} line {lineno}: index {value} is out of range: the dataset has "
                            f"{num_features:,} features (0..{num_features - 1}); the list must index the "
                            "SQuAD v1.1 dev features at 384/128/64 (QSL sample indices)")
        if value in seen:
            raise DataError(f"{path} line {lineno}: index {value} repeats line {seen[value]}; "
                            "each calibration sample may appear once")
        seen[value] = lineno
        indices.append(value)
    if not indices:
        raise DataError(f"{path}: calibration list holds no index; pass {CALIBRATION_FILE_NAME}")
    return CalibrationList(path=path, indices=np.asarray(indices, dtype=np.int64),
                           sha256=hashlib.sha256(raw).hexdigest())


def calibration_inputs(features: Features, indices: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The listed features one at a time, trimmed to their real length (no padding).

    Calibration ranges should describe real tokens only; padding positions would add activations the
    model never uses (masked keys still produce hidden states). Batch size 1 keeps every batch free of
    padding; ONNX Runtime's histogram calibrators accept a different length per batch when fed one batch
    per ``collect_data`` call (``ptq`` does that).

    Args:
        features: all dev features (the list indexes them).
        indices: int [n] feature indices (``CalibrationList.indices``).

    Yields:
        (input_ids, input_mask, segment_ids), each int64 [1, L_i] with L_i = real length of feature i.
    """
    lengths = features.lengths
    for i in np.asarray(indices, dtype=np.int64).tolist():
        n = int(lengths[i])
        yield (features.input_ids[i : i + 1, :n].astype(np.int64),
               features.input_mask[i : i + 1, :n].astype(np.int64),
               features.segment_ids[i : i + 1, :n].astype(np.int64))


def check_indices(indices: np.ndarray, num_features: int, what: str = "calibration indices") -> np.ndarray:
    """Validate an in-memory index array (the file reader validates its own); returns int64 [n].

    Raises:
        DataError: empty, out of range or repeated indices.
    """
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size == 0:
        raise DataError(f"{what}: empty")
    bad = idx[(idx < 0) | (idx >= num_features)]
    if bad.size:
        raise DataError(f"{what}: index {int(bad[0])} is out of range 0..{num_features - 1}")
    if np.unique(idx).size != idx.size:
        raise DataError(f"{what}: indices repeat")
    return idx
