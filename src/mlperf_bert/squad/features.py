"""SQuAD examples -> fixed-length BERT features, exactly as the MLPerf reference.

Reference: ``convert_examples_to_features`` (is_training=False) in mlcommons/inference v1.0.1
``language/bert/create_squad_data.py``; the steps are in docs/preprocessing.md. Differences are only in
speed: each distinct question and doc token is tokenized once (a batch through the Rust tokenizer) instead
of once per question, and arrays are filled with numpy. The output is hash-identical (docs/golden.md#features).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np
from tqdm.auto import tqdm

from mlperf_bert.config import FIRST_UNIQUE_ID, SquadConfig
from mlperf_bert.errors import ConfigError
from mlperf_bert.squad.tokenization import WordPieceTokenizer
from mlperf_bert.squad.types import Example, Features


@dataclass(frozen=True)
class DocSpan:
    """One window over a paragraph's word pieces: pieces ``[start, start + length)``."""

    start: int
    length: int


def doc_spans(num_pieces: int, max_tokens_for_doc: int, doc_stride: int) -> list[DocSpan]:
    """Sliding windows over ``num_pieces`` context pieces (docs/preprocessing.md#windows).

    A window takes ``min(max_tokens_for_doc, remaining)`` pieces; stop after the window that reaches the
    end, otherwise advance by ``min(window length, doc_stride)``. An empty context gives no window.

    Example:
        >>> doc_spans(300, 200, 128)
        [DocSpan(start=0, length=200), DocSpan(start=128, length=172)]
    """
    spans: list[DocSpan] = []
    start = 0
    while start < num_pieces:
        length = min(num_pieces - start, max_tokens_for_doc)
        spans.append(DocSpan(start, length))
        if start + length == num_pieces:
            break
        start += min(length, doc_stride)
    return spans


def max_context_span(spans: Sequence[DocSpan], num_pieces: int) -> np.ndarray:
    """For each context piece, the index of its *max-context* window (docs/preprocessing.md#max-context).

    score(window, piece) = min(left context, right context) + 0.01 * window length, over the windows
    holding the piece; the first window with the highest score wins (the reference's strict ``>``).

    Returns:
        int64 [num_pieces] window index per piece.
    """
    pos = np.arange(num_pieces)
    scores = np.full((len(spans), num_pieces), -np.inf)
    for s, span in enumerate(spans):
        p = pos[span.start : span.start + span.length]
        left = p - span.start
        right = span.start + span.length - 1 - p
        scores[s, span.start : span.start + span.length] = np.minimum(left, right) + 0.01 * span.length
    return scores.argmax(axis=0)


#: Questions converted per step (one tokenizer batch, one progress-bar update).
_CHUNK = 1024


def convert_examples_to_features(
    examples: Sequence[Example],
    tokenizer: WordPieceTokenizer,
    cfg: SquadConfig,
    progress: bool = True,
) -> Features:
    """Build every feature (one ``[CLS] question [SEP] window [SEP]`` row per window) of ``examples``.

    Args:
        examples: from ``read_squad``, in order (feature ``example_index`` indexes this list).
        tokenizer: the WordPiece tokenizer of the model's vocab.txt.
        cfg: ``max_seq_length`` (384), ``doc_stride`` (128), ``max_query_length`` (64).
        progress: show a progress bar (on stderr) if the work takes over a second.

    Returns:
        ``Features`` with N rows of ``cfg.max_seq_length`` (10,833 for SQuAD v1.1 dev); see its docstring.

    Raises:
        ConfigError: ``doc_stride`` < 1, ``max_query_length`` < 0, or a ``max_seq_length`` that leaves no
            room for context after a question (the reference loops forever on a zero stride or no room).
    """
    if cfg.doc_stride < 1 or cfg.max_query_length < 0:
        raise ConfigError(
            f"doc_stride {cfg.doc_stride} / max_query_length {cfg.max_query_length}: need doc_stride >= 1 "
            "and max_query_length >= 0 (MLPerf: 128 and 64)"
        )
    paragraphs: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = {}
    parts: list[dict[str, np.ndarray]] = []
    with tqdm(total=len(examples), desc="SQuAD features", unit="question", disable=not progress, delay=1.0) as bar:
        for lo in range(0, len(examples), _CHUNK):
            chunk = examples[lo : lo + _CHUNK]
            parts.append(_convert_chunk(chunk, lo, tokenizer, cfg, paragraphs))
            bar.update(len(chunk))
    seq_len = cfg.max_seq_length
    arrays = {
        name: np.concatenate([p[name] for p in parts]) if parts else np.zeros(shape, dtype)
        for name, shape, dtype in (
            ("input_ids", (0, seq_len), np.int32),
            ("input_mask", (0, seq_len), np.int32),
            ("segment_ids", (0, seq_len), np.int32),
            ("token_to_orig", (0, seq_len), np.int32),
            ("token_is_max_context", (0, seq_len), np.bool_),
            ("example_index", (0,), np.int32),
        )
    }
    n = arrays["input_ids"].shape[0]
    return Features(unique_id=FIRST_UNIQUE_ID + np.arange(n, dtype=np.int64), **arrays)


def _tokenize_paragraphs(
    docs: Sequence[tuple[str, ...]], tokenizer: WordPieceTokenizer
) -> dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]]:
    """Paragraph -> (piece ids int32 [P], doc-token index of each piece int32 [P]) (docs/preprocessing.md).

    Each doc token is tokenized on its own, as the reference does, once per distinct token: its pieces
    live at ``flat[word_start[w] : word_start[w] + word_len[w]]`` and are gathered per paragraph.
    """
    words = list(dict.fromkeys(chain.from_iterable(docs)))
    word_index = {w: i for i, w in enumerate(words)}
    word_pieces = tokenizer.encode_many(words)
    word_len = np.fromiter(map(len, word_pieces), dtype=np.int64, count=len(words))
    word_start = np.cumsum(word_len) - word_len
    flat = np.fromiter(chain.from_iterable(word_pieces), dtype=np.int32, count=int(word_len.sum()))
    out = {}
    for doc in docs:
        wi = np.fromiter(map(word_index.__getitem__, doc), dtype=np.int64, count=len(doc))
        lens = word_len[wi]
        first = np.cumsum(lens) - lens  # paragraph position of each word's first piece
        gather = np.repeat(word_start[wi] - first, lens) + np.arange(int(lens.sum()))
        orig = np.repeat(np.arange(len(doc), dtype=np.int32), lens)
        out[doc] = (flat[gather], orig)
    return out


def _convert_chunk(
    examples: Sequence[Example],
    first_example: int,
    tokenizer: WordPieceTokenizer,
    cfg: SquadConfig,
    paragraphs: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]],
) -> dict[str, np.ndarray]:
    """Features of consecutive examples ``first_example, ...``; ``paragraphs`` is a cache shared by chunks."""
    seq_len = cfg.max_seq_length
    # Questions: first max_query_length pieces (step 2).
    query_ids = [q[: cfg.max_query_length] for q in tokenizer.encode_many(e.question_text for e in examples)]
    new_docs = [d for d in dict.fromkeys(e.doc_tokens for e in examples) if d not in paragraphs]
    paragraphs.update(_tokenize_paragraphs(new_docs, tokenizer))

    # Windows per example (step 4).
    plan: list[list[DocSpan]] = []
    for e, q in zip(examples, query_ids, strict=True):
        room = seq_len - len(q) - 3  # [CLS], [SEP], [SEP]
        if room <= 0:
            raise ConfigError(
                f"max_seq_length {seq_len} leaves no room for context after a {len(q)}-piece question "
                f"({e.qas_id}); use max_seq_length > max_query_length + 3"
            )
        plan.append(doc_spans(len(paragraphs[e.doc_tokens][0]), room, cfg.doc_stride))

    n = sum(len(s) for s in plan)
    input_ids = np.zeros((n, seq_len), dtype=np.int32)  # padding id 0 = [PAD], as the reference
    input_mask = np.zeros((n, seq_len), dtype=np.int32)
    segment_ids = np.zeros((n, seq_len), dtype=np.int32)
    token_to_orig = np.full((n, seq_len), -1, dtype=np.int32)
    token_is_max_context = np.zeros((n, seq_len), dtype=bool)
    example_index = np.zeros(n, dtype=np.int32)

    # Rows (steps 5-7).
    row = 0
    for ex_i, (e, q, spans) in enumerate(zip(examples, query_ids, plan, strict=True), start=first_example):
        ids, orig = paragraphs[e.doc_tokens]
        best = max_context_span(spans, len(ids)) if len(spans) > 1 else None
        c0 = len(q) + 2  # first context position
        for s, span in enumerate(spans):
            end = c0 + span.length  # position of the final [SEP]
            window = slice(span.start, span.start + span.length)
            r = input_ids[row]
            r[0] = tokenizer.cls_id
            r[1 : c0 - 1] = q
            r[c0 - 1] = tokenizer.sep_id
            r[c0:end] = ids[window]
            r[end] = tokenizer.sep_id
            input_mask[row, : end + 1] = 1
            segment_ids[row, c0 : end + 1] = 1
            token_to_orig[row, c0:end] = orig[window]
            token_is_max_context[row, c0:end] = True if best is None else best[window] == s
            example_index[row] = ex_i
            row += 1
    return {
        "input_ids": input_ids,
        "input_mask": input_mask,
        "segment_ids": segment_ids,
        "token_to_orig": token_to_orig,
        "token_is_max_context": token_is_max_context,
        "example_index": example_index,
    }
