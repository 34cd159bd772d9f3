"""The response format, in one place: what the SUT hands LoadGen per sample and how the scorer reads it back.

A response is the sample's start/end logits as a row-major ``[n, 2]`` little-endian float32 array
(column 0 start, column 1 end; docs/responses.md#response-format). With ``"trimmed"`` rows (default) n is
the sample's real length; the scorer fills the positions a response leaves out with ``PAD_LOGIT``, the
reference scorer's own pad, and those positions can never hold an answer (they are outside the context).
With ``"full"`` rows n is the feature length (384), rows past the batch's padded length hold ``PAD_LOGIT``:
3,072 bytes per sample, for scorers that need fixed-size responses.
"""

from __future__ import annotations

import numpy as np

#: Logit of a position a response does not cover (the reference ``accuracy-squad.py`` pads with it).
PAD_LOGIT = -10000.0
#: Element type of a response (LoadGen stores the SUT's bytes as they are; x86 is little-endian).
RESPONSE_DTYPE = np.dtype("<f4")
#: Bytes per position: start and end logit.
ROW_BYTES = 2 * RESPONSE_DTYPE.itemsize
#: ``SUTConfig.response_rows`` values.
RESPONSE_ROWS = ("trimmed", "full")


def pack_batch(logits: np.ndarray, lengths, rows: str, cap: int) -> tuple[np.ndarray, int, list[int]]:
    """One contiguous buffer holding a batch's responses, and where each one is.

    Args:
        logits: float [B, L, 2] from the backend (L <= ``cap``).
        lengths: int [B] real tokens per sample (<= L), an array or a sequence of ints.
        rows: ``"trimmed"`` or ``"full"``.
        cap: the feature length (384).

    Returns:
        ``(buf, stride, nbytes)``: ``buf`` float32 [B, R, 2] C-contiguous (R = L, or ``cap`` for full rows),
        the byte stride between samples, and the B response sizes in bytes (ints). Sample k's response is
        ``nbytes[k]`` bytes at ``buf.ctypes.data + k * stride``. The caller keeps ``buf`` alive until
        LoadGen's ``QuerySamplesComplete`` has copied the bytes.
    """
    b, seq = logits.shape[0], logits.shape[1]
    if rows == "full":
        buf = np.full((b, cap, 2), PAD_LOGIT, dtype=RESPONSE_DTYPE)
        buf[:, :seq] = logits
        nbytes = [cap * ROW_BYTES] * b
    else:
        buf = np.ascontiguousarray(logits, dtype=RESPONSE_DTYPE)
        if b < 8:  # a few ints: no array round trip
            nbytes = [int(n) * ROW_BYTES for n in lengths]
        else:
            nbytes = (np.asarray(lengths, np.int64) * ROW_BYTES).tolist()
    return buf, buf.shape[1] * ROW_BYTES, nbytes


def unpack(values: np.ndarray, seq_len: int, transposed: bool = False) -> np.ndarray:
    """A response's values as float32 ``[seq_len, 2]`` logits, the positions it leaves out set to ``PAD_LOGIT``.

    Args:
        values: the response's elements (float32 or float16), 2 x n of them, n <= ``seq_len``.
        seq_len: the feature length (384).
        transposed: the response is ``[2, n]`` (the reference's ``--output_transposed``) instead of ``[n, 2]``.
    """
    n = len(values) // 2
    pairs = values.reshape(2, n).T if transposed else values.reshape(n, 2)
    logits = np.full((seq_len, 2), PAD_LOGIT, dtype=np.float32)  # (L, 2)
    logits[:n] = pairs
    return logits
