"""BERT uncased WordPiece tokenization that matches the MLPerf reference, built on Hugging Face ``tokenizers``.

The reference (mlcommons/inference v1.0.1 ``language/bert/squad_QSL.py``) uses the slow Python
``transformers.BertTokenizer`` (2.4.0): special tokens are split out first, then ``BasicTokenizer``
(drop NUL/U+FFFD/control chars, whitespace -> space, spaces around CJK ideographs, split on whitespace,
per word: lower-case, NFD + drop Mn accents, split on punctuation), then greedy longest-match WordPiece
with ``##`` continuation pieces, words longer than 100 chars -> ``[UNK]`` (docs/preprocessing.md#tokenization).

The Rust pipeline (``BertNormalizer`` + ``BertPreTokenizer`` + ``WordPiece``, special tokens registered as
added tokens) does the same with one known exception: Rust lower-cases character by character, Python's
``str.lower`` maps a word-final capital sigma to ``ς`` (U+03C2) instead of ``σ``. Texts containing ``Σ``
are therefore cleaned and lower-cased in Python first (the reference's order), then handed to Rust.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

from mlperf_bert.errors import DataError

#: Special tokens of the BERT vocabulary; the reference tokenizer never splits or lower-cases them.
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
#: Tokens a vocabulary must contain to build features (padding id, unknown, separators).
REQUIRED_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")
#: Longest word WordPiece splits; longer words become [UNK] (transformers' BertTokenizer; Google's is 200).
MAX_INPUT_CHARS_PER_WORD = 100

_CAPITAL_SIGMA = "\u03a3"


def load_vocab(path: Path) -> list[str]:
    """Read a WordPiece ``vocab.txt``: one token per line, line number = token id.

    Args:
        path: the vocabulary file (BERT uncased: 30,522 lines, ``[PAD]`` = 0, ``[UNK]`` = 100,
            ``[CLS]`` = 101, ``[SEP]`` = 102).

    Returns:
        id -> token list (the trailing newline of each line removed, as ``transformers`` does).

    Raises:
        DataError: the file is missing, unreadable, not UTF-8 text, empty, or lacks one of
            ``REQUIRED_TOKENS`` as a whole line (e.g. a ``tokenizer.json`` given instead).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: vocabulary file not found; pass --vocab pointing at the BERT vocab.txt") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read vocabulary file ({exc.strerror}); pass a readable vocab.txt") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: vocabulary is not UTF-8 text (bad byte at offset {exc.start}); pass the BERT vocab.txt"
        ) from None
    tokens = text.split("\n")
    if tokens and tokens[-1] == "":  # final newline
        tokens.pop()
    if not tokens:
        raise DataError(f"{path}: vocabulary file is empty; pass the BERT vocab.txt (30,522 lines)")
    present = set(tokens)
    missing = [t for t in REQUIRED_TOKENS if t not in present]
    if missing:
        raise DataError(
            f"{path}: not a WordPiece vocabulary (no line {', '.join(missing)}); "
            "pass the BERT vocab.txt with one token per line"
        )
    return tokens


def _is_control(char: str) -> bool:
    """Reference ``_is_control``: Unicode category C* except tab, LF, CR."""
    if char in "\t\n\r":
        return False
    return unicodedata.category(char).startswith("C")


def _is_whitespace(char: str) -> bool:
    """Reference ``_is_whitespace``: space, tab, LF, CR or category Zs."""
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def _clean_text(text: str) -> str:
    """Reference ``BasicTokenizer._clean_text``: drop NUL, U+FFFD and control chars; whitespace -> space."""
    out = []
    for char in text:
        if char in "\x00\ufffd" or _is_control(char):
            continue
        out.append(" " if _is_whitespace(char) else char)
    return "".join(out)


class WordPieceTokenizer:
    """The reference BERT tokenizer (lower-casing, WordPiece) on the Rust ``tokenizers`` library.

    Results are memoized per input text on the instance (SQuAD repeats words and questions a lot).

    Args:
        vocab_path: ``vocab.txt`` (see ``load_vocab``).
        do_lower_case: lower-case and strip accents (True for the uncased MLPerf model).

    Example:
        >>> tok = WordPieceTokenizer(Path("vocab.txt"))
        >>> tok.tokenize("Unaffable Crème")
        ['una', '##ffa', '##ble', 'cr', '##eme']
    """

    def __init__(self, vocab_path: Path, do_lower_case: bool = True) -> None:
        self.vocab_path = Path(vocab_path)
        self.do_lower_case = do_lower_case
        self.vocab: list[str] = load_vocab(self.vocab_path)
        # Later duplicates win, as in the reference's OrderedDict vocab.
        self.token_to_id: dict[str, int] = {tok: i for i, tok in enumerate(self.vocab)}
        self.unk_id = self.token_to_id["[UNK]"]
        self.cls_id = self.token_to_id["[CLS]"]
        self.sep_id = self.token_to_id["[SEP]"]
        self.pad_id = self.token_to_id["[PAD]"]
        specials = [t for t in SPECIAL_TOKENS if t in self.token_to_id]
        self._special_re = re.compile("(" + "|".join(re.escape(t) for t in specials) + ")")

        tok = Tokenizer(
            models.WordPiece(
                vocab=self.token_to_id,
                unk_token="[UNK]",
                continuing_subword_prefix="##",
                max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD,
            )
        )
        tok.normalizer = normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=do_lower_case
        )
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.add_special_tokens(specials)
        self._tok = tok
        self._memo: dict[str, tuple[int, ...]] = {}

    def __len__(self) -> int:
        return len(self.vocab)

    def _prepare(self, text: str) -> str:
        """Python-side lower-casing where Rust's per-character lower-casing would differ (final sigma)."""
        if not self.do_lower_case or _CAPITAL_SIGMA not in text:
            return text
        parts = self._special_re.split(text)  # odd indices: special tokens, kept verbatim
        return "".join(p if i % 2 else _clean_text(p).lower() for i, p in enumerate(parts))

    def encode_many(self, texts: Iterable[str]) -> list[tuple[int, ...]]:
        """Token ids of each text, tokenized independently (no [CLS]/[SEP] added).

        Args:
            texts: questions or single doc tokens (the reference tokenizes each doc token on its own).

        Returns:
            one tuple of vocabulary ids per text, in order; an empty tuple when nothing survives cleaning.
        """
        texts = list(texts)
        memo = self._memo
        todo = list(dict.fromkeys(t for t in texts if t not in memo))
        if todo:
            encodings = self._tok.encode_batch([self._prepare(t) for t in todo], add_special_tokens=False)
            for text, enc in zip(todo, encodings, strict=True):
                memo[text] = tuple(enc.ids)
        return [memo[t] for t in texts]

    def encode(self, text: str) -> list[int]:
        """Token ids of one text (no [CLS]/[SEP] added)."""
        return list(self.encode_many([text])[0])

    def tokenize(self, text: str) -> list[str]:
        """Word pieces of one text, e.g. ``"Unaffable"`` -> ``["una", "##ffa", "##ble"]``."""
        return self.convert_ids_to_tokens(self.encode(text))

    def convert_tokens_to_ids(self, tokens: Sequence[str]) -> list[int]:
        """Vocabulary ids of tokens; unknown tokens map to the [UNK] id (as the reference)."""
        get = self.token_to_id.get
        return [get(t, self.unk_id) for t in tokens]

    def convert_ids_to_tokens(self, ids: Iterable[int]) -> list[str]:
        """Tokens of vocabulary ids (``IndexError`` for an id outside the vocabulary)."""
        vocab = self.vocab
        return [vocab[int(i)] for i in ids]
