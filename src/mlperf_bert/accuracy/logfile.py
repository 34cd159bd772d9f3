"""Read the LoadGen accuracy log (``mlperf_log_accuracy.json``) into per-sample start/end logits.

Format (docs/responses.md#accuracy-log): a JSON list of ``{"seq_id": int, "qsl_idx": int, "data": HEX}`` where ``data``
is the SUT's response bytes as upper-case hex. For BERT a response is the [seq_len, 2] start/end logits,
row-major (column 0 start, column 1 end), little-endian float32 by default (3,072 bytes for 384).

Like the reference ``accuracy-squad.py`` (``load_loadgen_log``) this also accepts:

- float16 responses (reference ``--output_dtype float16``);
- the transposed [2, n] layout (reference ``--output_transposed``). The bytes alone cannot tell the two
  layouts apart: the reference reshapes to [-1, 2] unless told otherwise, and so does ``layout="rows"``;
- fewer than ``seq_len`` rows (padding-free SUTs): missing positions get ``PAD_LOGIT`` (-10000.0), the
  reference's pad (``sut.responses``).

Beyond the reference: a qsl_idx logged twice (TEST01 audit logs, accuracy logs with repeats) keeps its
first response and is counted (the reference silently keeps the last one, which only differs if the
SUT is non-deterministic, which ``differing_duplicates`` reports); and every malformed input is a
one-line ``DataError`` naming the file instead of a traceback.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from mlperf_bert.errors import DataError, json_error_text
from mlperf_bert.sut.responses import unpack

#: Response element types the harness accepts, little-endian as LoadGen stores the SUT's bytes on x86.
DTYPES = {"float32": np.dtype("<f4"), "float16": np.dtype("<f2")}
#: Response layouts: "rows" = [n, 2] row-major (reference default), "transposed" = [2, n].
LAYOUTS = ("rows", "transposed")


class AccuracyLog(dict):
    """qsl_idx -> float32 [seq_len, 2] logits (column 0 start, column 1 end), plus what the log held.

    A plain ``dict[int, np.ndarray]`` for every use; the extra attributes describe the log:

    Attributes:
        path: the file read.
        entries: entries in the log, repeats included.
        duplicates: entries dropped because their qsl_idx appeared earlier (the first one is kept).
        differing_duplicates: of those, how many carried bytes different from the kept response
            (non-deterministic SUT; 0 for a correct SUT).
        sha256: hex sha256 of the file's bytes (the ``hash=`` line of a submission's accuracy.txt).
    """

    def __init__(self, path: Path, sha256: str) -> None:
        super().__init__()
        self.path = path
        self.sha256 = sha256
        self.entries = 0
        self.duplicates = 0
        self.differing_duplicates = 0


def read_accuracy_log(
    path: str | Path,
    dtype: str = "float32",
    seq_len: int = 384,
    layout: str = "rows",
    num_samples: int | None = None,
) -> AccuracyLog:
    """Parse a LoadGen accuracy log into start/end logits per QSL sample.

    Args:
        path: ``mlperf_log_accuracy.json`` written by LoadGen in accuracy mode (or a TEST01 audit log).
        dtype: element type of the SUT's response, ``"float32"`` or ``"float16"`` (little-endian).
        seq_len: positions per sample (max_seq_length, 384); shorter responses are padded with
            ``PAD_LOGIT``, longer ones are an error.
        layout: ``"rows"`` for [n, 2] row-major (start, end per position, the reference default) or
            ``"transposed"`` for [2, n] (all start logits, then all end logits).
        num_samples: QSL size (10,833 for the dev set); when given, a qsl_idx outside
            [0, num_samples) is an error. Negative indices are always an error.

    Returns:
        ``AccuracyLog``: dict qsl_idx -> float32 array [seq_len, 2] (float16 values widen exactly), in
        the order first seen in the log, with the counts ``entries``/``duplicates``/``differing_duplicates``.

    Raises:
        DataError: missing or unreadable file, invalid or truncated JSON, not a list of entries, no
            samples, bad hex, a byte length not a multiple of 2 * element size, more than ``seq_len``
            positions, or a qsl_idx out of range.
        ValueError: unknown ``dtype`` or ``layout`` (a programming error; the CLI restricts choices).

    Example:
        >>> log = read_accuracy_log("build/logs/mlperf_log_accuracy.json", num_samples=10833)
        >>> log[0].shape, log[0].dtype
        ((384, 2), dtype('float32'))
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    path = Path(path)
    elem = DTYPES[dtype]
    name = path.name
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"accuracy log {path} not found; run LoadGen in accuracy mode first") from None
    except OSError as exc:
        raise DataError(f"accuracy log {path} cannot be read: {exc.strerror or exc}") from None
    try:
        entries = json.loads(blob)
    except UnicodeDecodeError:
        raise DataError(f"accuracy log {path} is not UTF-8 JSON; pass the mlperf_log_accuracy.json file") from None
    except json.JSONDecodeError as exc:
        raise DataError(
            f"accuracy log {path} is not valid JSON ({json_error_text(exc, f'char {exc.pos}')}); "
            "the run may have been interrupted, rerun accuracy mode"
        ) from None
    if not isinstance(entries, list):
        raise DataError(f"accuracy log {path} is not a JSON list of LoadGen entries")
    if not entries:
        raise DataError(f"accuracy log {path} has no samples; was the run in accuracy mode (or TEST01)?")

    out = AccuracyLog(path, hashlib.sha256(blob).hexdigest())
    del blob
    out.entries = len(entries)
    raw: dict[int, str] = {}
    row_bytes = 2 * elem.itemsize
    for n, entry in enumerate(entries):
        try:
            qsl_idx = entry["qsl_idx"]
            data = entry["data"]
        except (TypeError, KeyError):
            raise DataError(f"accuracy log {name}: entry {n} lacks 'qsl_idx'/'data'") from None
        if not isinstance(qsl_idx, int) or isinstance(qsl_idx, bool) or not isinstance(data, str):
            raise DataError(f"accuracy log {name}: entry {n} has a non-integer qsl_idx or non-string data")
        if qsl_idx < 0 or (num_samples is not None and qsl_idx >= num_samples):
            bound = f"[0, {num_samples})" if num_samples is not None else ">= 0"
            raise DataError(
                f"accuracy log {name}: entry {n} has qsl_idx {qsl_idx} outside {bound}; "
                "was it written for another dataset or QSL?"
            )
        if qsl_idx in raw:
            out.duplicates += 1
            if raw[qsl_idx] != data:
                out.differing_duplicates += 1
            continue
        raw[qsl_idx] = data
        try:
            buf = bytes.fromhex(data)
        except ValueError:
            raise DataError(f"accuracy log {name}: entry {n} (qsl_idx {qsl_idx}) has invalid hex data") from None
        if len(buf) % row_bytes:
            raise DataError(
                f"accuracy log {name}: qsl_idx {qsl_idx} has {len(buf)} bytes, not a multiple of "
                f"{row_bytes} (2 x {dtype}); check --output-dtype"
            )
        positions = len(buf) // row_bytes
        if positions > seq_len:
            raise DataError(
                f"accuracy log {name}: qsl_idx {qsl_idx} has {positions} positions of {dtype}, more than "
                f"max_seq_length {seq_len}; check --output-dtype"
            )
        out[qsl_idx] = unpack(np.frombuffer(buf, dtype=elem), seq_len, transposed=layout == "transposed")
    return out
