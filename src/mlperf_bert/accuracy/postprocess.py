"""Start/end logits -> answer text per question, exactly as the MLPerf reference ``accuracy-squad.py``.

The reference (``write_predictions`` + ``get_final_text``, from Google's BERT ``run_squad.py``;
docs/scoring.md#candidate-spans) does, per example and over all of its features present in the log:

1. take the ``n_best_size`` (20) highest start and end positions of each feature (ties: lower position
   first, because Python's ``sorted(..., reverse=True)`` is stable);
2. keep a pair (start, end) only if both are context pieces of the window (the final [SEP] is not),
   the start is the piece's max-context window, end >= start and end - start + 1 <= 30
   (``max_answer_length``);
3. rank the pairs by start_logit + end_logit (float64 sum; ties keep feature order, then start rank,
   then end rank: again a stable sort);
4. turn spans into text (``span_text``): join the pieces dropping ``" ##"``, then project onto the
   original whitespace words with ``get_final_text``, falling back to the whole original span;
5. keep the first 20 distinct texts (the n-best list); the answer is the first; "empty" if no pair
   survives.

The de-duplication of step 5 can never change the first entry, so ``postprocess`` takes the best span
of each example directly (``CandidateTable``, vectorised over all features) and calls ``get_final_text``
once per question: about 2 s for the whole dev set. ``CandidateTable.spans``/``nbest`` give the full
reference n-best list when it is wanted (tests, debugging).

Every question of the dataset gets an answer, as in the reference: "empty" when it has no feature at all
(e.g. an empty context), when none of its features is in the log (partial logs: TEST01 audit logs, a log
cut short), or when no candidate survives; otherwise the answer comes from the features the log holds.

Example::

    log = read_accuracy_log("mlperf_log_accuracy.json", num_samples=len(features))
    preds = postprocess(examples, features, log, SquadConfig(), vocab)  # {qas_id: answer text}
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mlperf_bert.config import SquadConfig
from mlperf_bert.errors import DataError
from mlperf_bert.squad.types import Example, Features

#: Text the reference writes for a question whose logits yield no valid span (``write_predictions``).
EMPTY_ANSWER = "empty"

#: Words the reference BasicTokenizer neither lower-cases nor splits (its ``never_split`` default).
NEVER_SPLIT = ("[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]")

#: Why ``get_final_text`` returned the whole original span instead of a projected substring.
FALLBACK_NOT_FOUND = "not_found"  # the prediction is not a substring of the re-tokenized original
FALLBACK_LENGTH = "length_mismatch"  # tokenizing changed the non-space length (accents, control chars)
FALLBACK_UNMAPPED = "unmapped"  # the start or end character does not map back (never seen on dev)


# --------------------------------------------------------------------------------------------------
# BasicTokenizer, as the reference's (Google BERT / NVIDIA DLE ``tokenization.BasicTokenizer``, identical
# in transformers 2.4.0): clean control chars, space out CJK ideographs, split on whitespace, lower-case
# and strip accents (NFD, drop Mn), split on punctuation.


def _is_whitespace(char: str) -> bool:
    """Space, tab, LF, CR and Unicode category Zs (reference ``_is_whitespace``)."""
    if char in " \t\n\r":
        return True
    return unicodedata.category(char) == "Zs"


def _is_control(char: str) -> bool:
    """Unicode category C* except tab/LF/CR (reference ``_is_control``, DLE PyTorch / transformers).

    Google's TensorFlow original counts only Cc and Cf; the two differ on Co/Cn/Cs characters, of which
    SQuAD v1.1 dev has none.
    """
    if char in "\t\n\r":
        return False
    return unicodedata.category(char).startswith("C")


def _is_punctuation(char: str) -> bool:
    """ASCII non-alphanumerics ``!-/ :-@ [-` {-~`` and Unicode category P* (reference ``_is_punctuation``)."""
    cp = ord(char)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_cjk(cp: int) -> bool:
    """CJK Unified Ideographs blocks, as the reference ``_is_chinese_char`` lists them."""
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


class _CleanTable(dict):
    """``str.translate`` table of the cleaning step, filled on first sight of each code point.

    NUL, U+FFFD and control characters -> deleted; whitespace -> " "; CJK ideographs -> " c "; any
    other character -> itself.
    """

    def __missing__(self, cp: int) -> str | None:
        char = chr(cp)
        if cp == 0 or cp == 0xFFFD or _is_control(char):
            out = None
        elif _is_whitespace(char):
            out = " "
        elif _is_cjk(cp):
            out = f" {char} "
        else:
            out = char
        self[cp] = out
        return out


#: An ASCII word split into runs of non-punctuation and single punctuation characters. In ASCII the
#: reference's punctuation (the four ASCII ranges, plus category P*, all inside them) is exactly this class.
_ASCII_PUNCT_SPLIT = re.compile(r"[!-/:-@\[-`{-~]|[^!-/:-@\[-`{-~]+")
#: The same over cleaned ASCII text, where the only whitespace left is " ".
_ASCII_TOKENS = re.compile(r"[!-/:-@\[-`{-~]|[^ !-/:-@\[-`{-~]+")


class BasicTokenizer:
    """The reference BERT ``BasicTokenizer`` (pre-WordPiece): what ``get_final_text`` re-tokenizes with.

    Steps of ``tokenize(text)``: drop NUL, U+FFFD and control characters, map whitespace to " ", put
    spaces around CJK ideographs, split on whitespace; for each word not in ``never_split``: lower-case,
    NFD-decompose and drop combining marks (Mn) when ``do_lower_case``; split every punctuation
    character into its own token; finally re-split the tokens on whitespace.

    Same output as the reference's character loops (tests compare it with a literal port on every dev
    paragraph); ASCII words take a regex path and character classes are memoised per instance.

    Example:
        >>> BasicTokenizer().tokenize("Steve Smith's Café")
        ['steve', 'smith', "'", 's', 'cafe']
    """

    def __init__(self, do_lower_case: bool = True, never_split: Sequence[str] = NEVER_SPLIT) -> None:
        self.do_lower_case = do_lower_case
        self.never_split = frozenset(never_split)
        self._clean = _CleanTable()

    def tokenize(self, text: str) -> list[str]:
        """Split ``text`` into basic tokens (words and single punctuation characters)."""
        cleaned = text.translate(self._clean)
        if cleaned.isascii() and not any(word in cleaned for word in self.never_split):
            # ASCII: lower-casing is per character and there are no accents, so the whole text can be
            # lower-cased and cut into words and punctuation at once.
            return _ASCII_TOKENS.findall(cleaned.lower() if self.do_lower_case else cleaned)
        tokens: list[str] = []
        for word in cleaned.split():
            if word in self.never_split:
                tokens.append(word)
                continue
            if self.do_lower_case:
                word = word.lower()
                if not word.isascii():
                    word = "".join(
                        c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn"
                    )
            if word.isascii():
                tokens.extend(_ASCII_PUNCT_SPLIT.findall(word))
            else:
                tokens.extend(self._split_on_punctuation(word))
        # The reference re-splits the joined tokens on whitespace (``whitespace_tokenize``).
        return " ".join(tokens).split()

    @staticmethod
    def _split_on_punctuation(word: str) -> list[str]:
        out: list[str] = []
        current: list[str] = []
        for char in word:
            if _is_punctuation(char):
                if current:
                    out.append("".join(current))
                    current = []
                out.append(char)
            else:
                current.append(char)
        if current:
            out.append("".join(current))
        return out


def get_final_text_with_reason(
    pred_text: str, orig_text: str, tokenizer: BasicTokenizer | None = None
) -> tuple[str, str | None]:
    """``get_final_text`` that also says whether, and why, it fell back to the whole original span.

    Returns:
        (text, reason): reason None when the prediction was mapped back character by character,
        else one of ``FALLBACK_NOT_FOUND``, ``FALLBACK_LENGTH``, ``FALLBACK_UNMAPPED`` and text is
        ``orig_text`` unchanged.
    """
    tokenizer = tokenizer or BasicTokenizer()
    # Re-tokenize the original span; if the prediction occurs in it and tokenizing removed nothing but
    # spaces, characters align one to one once spaces (" " only) are stripped from both.
    tok_text = " ".join(tokenizer.tokenize(orig_text))
    start = tok_text.find(pred_text)
    if start == -1:
        return orig_text, FALLBACK_NOT_FOUND
    end = start + len(pred_text) - 1
    if len(orig_text) - orig_text.count(" ") != len(tok_text) - tok_text.count(" "):
        return orig_text, FALLBACK_LENGTH
    # A position of tok_text holding a space (or none: an empty prediction ends at -1) has no non-space
    # index: the reference then gives up.
    if not pred_text or tok_text[start] == " " or tok_text[end] == " ":
        return orig_text, FALLBACK_UNMAPPED
    ns_start = start - tok_text.count(" ", 0, start)  # index among the non-space characters
    ns_end = end - tok_text.count(" ", 0, end)
    orig_positions = [i for i, c in enumerate(orig_text) if c != " "]  # non-space index -> index
    return orig_text[orig_positions[ns_start] : orig_positions[ns_end] + 1], None


def get_final_text(pred_text: str, orig_text: str, tokenizer: BasicTokenizer | None = None) -> str:
    """Project a normalized predicted span back onto the original text (reference ``get_final_text``).

    ``pred_text`` is the joined word pieces (lower-cased, accents stripped, punctuation split off);
    ``orig_text`` the original whitespace words of the span joined by single spaces. The result is the
    substring of ``orig_text`` that ``pred_text`` covers, so that e.g. pred "steve smith" and original
    "Steve Smith's" give "Steve Smith". When the alignment fails (the prediction is not found in the
    re-tokenized original, e.g. it contains [UNK] or starts mid-word; or tokenizing changed the length,
    e.g. a combining accent or zero-width character disappeared) the whole ``orig_text`` is returned.

    Example:
        >>> get_final_text("steve smith", "Steve Smith's")
        'Steve Smith'
    """
    return get_final_text_with_reason(pred_text, orig_text, tokenizer)[0]


# --------------------------------------------------------------------------------------------------
# Spans


@dataclass(frozen=True)
class Span:
    """One candidate answer span inside one feature.

    Attributes:
        feature: global feature index (= QSL sample index).
        start, end: token positions in the feature window, inclusive (0..max_seq_length-1).
        start_logit, end_logit: the logits at those positions (float64 of the logged value).
    """

    feature: int
    start: int
    end: int
    start_logit: float
    end_logit: float

    @property
    def score(self) -> float:
        """start_logit + end_logit, the reference's ranking key."""
        return self.start_logit + self.end_logit


def _top_indexes(values: np.ndarray, n: int) -> np.ndarray:
    """int [..., n]: positions of the n largest values along the last axis, ties by lower position.

    Matches the reference ``_get_best_indexes`` (stable ``sorted(reverse=True)``); negation is exact.
    """
    return np.argsort(-values, axis=-1, kind="stable")[..., :n]


def _check_inputs(examples: Sequence[Example], features: Features, logits: Mapping[int, np.ndarray], cfg: SquadConfig):
    n_features = len(features)
    bad = [k for k in logits if not 0 <= k < n_features]
    if bad:
        raise DataError(
            f"logits given for sample {bad[0]} but there are only {n_features} features; "
            "was the accuracy log written for another dataset?"
        )
    if n_features and int(features.example_index.max()) >= len(examples):
        raise DataError("features refer to more examples than were read; rebuild the feature cache")
    for k, v in logits.items():
        if v.shape != (cfg.max_seq_length, 2):
            raise DataError(f"logits of sample {k} have shape {v.shape}, expected ({cfg.max_seq_length}, 2)")


def _stack(logits: Mapping[int, np.ndarray], ids: np.ndarray, seq_len: int) -> np.ndarray:
    out = np.empty((len(ids), seq_len, 2), dtype=np.float32)  # (P, L, 2)
    for row, i in enumerate(ids.tolist()):
        out[row] = logits[i]
    return out


class CandidateTable:
    """The reference's candidate (start, end) pairs of a set of features, computed once, vectorised.

    For every feature with logits: ``starts``/``ends`` int [P, n] are the n = min(n_best_size,
    max_seq_length) best start/end positions (descending logit, ties by lower position); ``scores``
    float64 [P, n, n] start_logit + end_logit; ``valid`` bool [P, n, n] the pairs that pass the
    reference's filters (both ends context pieces, start max-context, 1 <= length <= max_answer_length;
    NaN scores are dropped because the reference's order is undefined for them).

    Args:
        features: all features; logits: QSL sample index -> float32 [max_seq_length, 2] for the
            features to consider (any subset); cfg: n_best_size and max_answer_length.
    """

    def __init__(self, features: Features, logits: Mapping[int, np.ndarray], cfg: SquadConfig) -> None:
        self.ids = np.array(sorted(logits), dtype=np.int64)  # (P,) feature indices, ascending
        self.row = {f: r for r, f in enumerate(self.ids.tolist())}
        self.logits = _stack(logits, self.ids, cfg.max_seq_length)  # (P, L, 2)
        n = min(cfg.n_best_size, cfg.max_seq_length)
        self.starts = _top_indexes(self.logits[:, :, 0], n)  # (P, n)
        self.ends = _top_indexes(self.logits[:, :, 1], n)  # (P, n)
        rows = np.arange(len(self.ids))[:, None]
        start_logits = self.logits[rows, self.starts, 0].astype(np.float64)  # (P, n)
        end_logits = self.logits[rows, self.ends, 1].astype(np.float64)  # (P, n)
        self.scores = start_logits[:, :, None] + end_logits[:, None, :]  # (P, n, n)
        # Context pieces (token_to_orig >= 0) exclude [CLS], the question, both [SEP] and padding.
        fid = self.ids[:, None]
        start_ok = (features.token_to_orig[fid, self.starts] >= 0) & features.token_is_max_context[fid, self.starts]
        end_ok = features.token_to_orig[fid, self.ends] >= 0
        length = self.ends[:, None, :] - self.starts[:, :, None] + 1  # (P, n, n)
        self.valid = start_ok[:, :, None] & end_ok[:, None, :] & (length >= 1) & (length <= cfg.max_answer_length)
        self.valid &= ~np.isnan(self.scores)

    def best(self) -> dict[int, tuple[float, int, int]]:
        """feature -> (score, start, end) of its best valid pair (first in rank order on ties).

        Features without a valid pair are absent.
        """
        p, n = self.starts.shape
        flat_scores = self.scores.reshape(p, n * n)
        flat_valid = self.valid.reshape(p, n * n)
        pick = np.argmax(np.where(flat_valid, flat_scores, -np.inf), axis=1)  # first maximum
        # If every valid score is -inf, argmax may land on an invalid pair: take the first valid one.
        missed = ~flat_valid[np.arange(p), pick]
        pick[missed] = np.argmax(flat_valid[missed], axis=1)
        out = {}
        for r in np.flatnonzero(flat_valid.any(axis=1)).tolist():
            k = int(pick[r])
            out[int(self.ids[r])] = (float(flat_scores[r, k]), int(self.starts[r, k // n]), int(self.ends[r, k % n]))
        return out

    def spans(self, feature_ids: Iterable[int]) -> Iterator[Span]:
        """All valid spans of the given features (an example's), lazily, best first in the reference's order.

        Features without logits are skipped. Ties keep feature order, then start rank, then end rank.
        """
        rows = [self.row[f] for f in feature_ids if f in self.row]
        if not rows:
            return
        f, rs, re_ = np.nonzero(self.valid[rows])  # row-major = the reference's loop order
        order = np.argsort(-self.scores[rows][f, rs, re_], kind="stable")
        for k in order.tolist():
            r = rows[int(f[k])]
            s, e = int(self.starts[r, rs[k]]), int(self.ends[r, re_[k]])
            yield Span(int(self.ids[r]), s, e, float(self.logits[r, s, 0]), float(self.logits[r, e, 1]))


def example_spans(
    features: Features, feature_ids: Sequence[int], logits: Mapping[int, np.ndarray], cfg: SquadConfig
) -> Iterator[Span]:
    """All valid candidate spans of one example, lazily, in the reference's ranking order (best first).

    Convenience for one example; for many, build one ``CandidateTable`` and call its ``spans``.

    Args:
        feature_ids: the example's features; those without logits are skipped.
        logits: QSL sample index -> float32 [max_seq_length, 2].
    """
    present = {f: logits[f] for f in feature_ids if f in logits}
    return CandidateTable(features, present, cfg).spans(present)


def span_text(span: Span, example: Example, features: Features, vocab: Sequence[str]) -> tuple[str, str]:
    """(pred_text, orig_text) of a span, the two inputs of ``get_final_text``.

    pred_text: the span's word pieces joined by spaces with ``" ##"`` and then ``"##"`` removed and
    whitespace collapsed; orig_text: the original doc tokens it covers joined by single spaces.
    """
    ids = features.input_ids[span.feature, span.start : span.end + 1]
    tok_text = " ".join(vocab[i] for i in ids.tolist())
    tok_text = tok_text.replace(" ##", "").replace("##", "")
    tok_text = " ".join(tok_text.strip().split())
    first = int(features.token_to_orig[span.feature, span.start])
    last = int(features.token_to_orig[span.feature, span.end])
    orig_text = " ".join(example.doc_tokens[first : last + 1])
    return tok_text, orig_text


@dataclass(frozen=True)
class NbestEntry:
    """One span turned into text for the n-best list.

    Attributes:
        text: the final text (``get_final_text``).
        span: the span it came from.
        fallback: why ``get_final_text`` kept the whole original span (``FALLBACK_*``), or None.
        duplicate: the text was already in the list; the reference skips such entries.
    """

    text: str
    span: Span
    fallback: str | None
    duplicate: bool = False


def nbest(
    example: Example,
    spans: Iterable[Span],
    features: Features,
    vocab: Sequence[str],
    n_best_size: int = 20,
    tokenizer: BasicTokenizer | None = None,
) -> list[NbestEntry]:
    """Every span the reference turns into text while it fills the n-best list of one example.

    The reference walks the ranked spans, converts each to text and keeps the first ``n_best_size``
    distinct texts; the n-best list is ``[e for e in result if not e.duplicate]`` and the answer is its
    first entry (``EMPTY_ANSWER`` when ``spans`` is empty).

    Args:
        spans: ``example_spans(...)`` of the example, best first.
    """
    tokenizer = tokenizer or BasicTokenizer()
    seen: set[str] = set()
    out: list[NbestEntry] = []
    for span in spans:
        if len(seen) >= n_best_size:
            break
        text, reason = get_final_text_with_reason(*span_text(span, example, features, vocab), tokenizer)
        out.append(NbestEntry(text, span, reason, duplicate=text in seen))
        seen.add(text)
    return out


def example_features(features: Features, num_examples: int) -> list[np.ndarray]:
    """For each example index, int64 [k] of its feature indices (ascending)."""
    ex = features.example_index.astype(np.int64)
    order = np.argsort(ex, kind="stable")
    bounds = np.searchsorted(ex[order], np.arange(num_examples + 1))
    return [order[bounds[i] : bounds[i + 1]] for i in range(num_examples)]


def postprocess(
    examples: Sequence[Example],
    features: Features,
    logits: Mapping[int, np.ndarray],
    cfg: SquadConfig,
    vocab: Sequence[str],
) -> dict[str, str]:
    """Answer text per question from per-sample logits, as the reference ``write_predictions``.

    Args:
        examples: the dev questions (``read_squad``), in dataset order.
        features: their features (``load_features``); feature i is QSL sample i.
        logits: QSL sample index -> float32 [max_seq_length, 2] (column 0 start, column 1 end), e.g.
            ``read_accuracy_log(...)``. May cover only some samples (partial or audit logs).
        cfg: ``n_best_size`` (20) and ``max_answer_length`` (30) are used.
        vocab: WordPiece vocabulary, id -> piece (``load_vocab``).

    Returns:
        qas_id -> answer for every question, in example order; ``EMPTY_ANSWER`` for a question without a
        feature, without a feature in ``logits``, or without a valid span (the reference's rule).

    Raises:
        DataError: a logits key outside the features, or logits of the wrong shape.
    """
    _check_inputs(examples, features, logits, cfg)
    tokenizer = BasicTokenizer(do_lower_case=cfg.do_lower_case)
    best = CandidateTable(features, logits, cfg).best()  # feature -> (score, start, end)
    present = set(logits)
    predictions: dict[str, str] = {}
    for example_idx, feature_ids in enumerate(example_features(features, len(examples))):
        example = examples[example_idx]
        here = [f for f in feature_ids.tolist() if f in present]
        winner = None
        for f in here:  # strict > keeps the earliest feature on ties, like the reference's stable sort
            if f in best and (winner is None or best[f][0] > best[winner][0]):
                winner = f
        if winner is None:
            predictions[example.qas_id] = EMPTY_ANSWER
            continue
        _, s, e = best[winner]
        span = Span(winner, s, e, float(logits[winner][s, 0]), float(logits[winner][e, 1]))
        predictions[example.qas_id] = get_final_text(*span_text(span, example, features, vocab), tokenizer)
    return predictions
