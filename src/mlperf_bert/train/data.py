"""SQuAD v1.1 training features: windows as the reference, start/end labels from character offsets.

Windows follow the reference ``convert_examples_to_features`` (docs/preprocessing.md: first 64 question
pieces, ``[CLS] question [SEP] window [SEP]``, windows over the context advanced by 128 pieces; the same
``squad.features.doc_spans`` the dev features use). Labels follow the reference ``run_squad.py``
training branch: the answer's first and last word pieces inside the window, or position 0 ([CLS]) for
both when the answer is not entirely inside the window. Pieces and their character offsets come from the
Hugging Face ``tokenizers`` BERT pipeline over the whole paragraph (the reference's per-whitespace-word
tokenization gives the same pieces; offsets make the answer span exact without the reference's
``_improve_answer_span`` search).

Features are stored ragged (one flat token array plus offsets) and padded per batch, so the 88k
training features take about 70 MB instead of 400 MB padded to 384.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import tokenizers
from tqdm.auto import tqdm

from mlperf_bert.config import SquadConfig
from mlperf_bert.errors import ConfigError, DataError
from mlperf_bert.fileio import file_sha256, load_npz, save_npz
from mlperf_bert.squad.features import doc_spans
from mlperf_bert.squad.tokenization import SPECIAL_TOKENS, load_vocab

#: Bump when the stored arrays or the labelling change meaning (invalidates cached training features).
FORMAT_VERSION = 1


@dataclass(frozen=True)
class TrainExample:
    """One training question with its first gold answer.

    Attributes:
        qas_id: question id.
        question: question text.
        context: the paragraph.
        answer_text: first gold answer text.
        answer_start: character offset of the answer in ``context`` (``context[s:s+len(text)] == text``).
    """

    qas_id: str
    question: str
    context: str
    answer_text: str
    answer_start: int


def _read_json(path: Path) -> object:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: training file not found; pass --train-file pointing at SQuAD v1.1 train "
                        "(train-v1.1.json or .json.gz)") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory; pass --train-file pointing at the SQuAD train JSON") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read training file ({exc.strerror})") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: corrupt or truncated gzip ({exc}); download the training file again") from None
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: not a SQuAD JSON file ({str(exc).splitlines()[0][:80]}); "
                        "pass the SQuAD v1.1 train JSON") from None


def read_squad_train(path: Path, max_questions: int | None = None) -> list[TrainExample]:
    """Read the questions of a SQuAD v1.x training file (plain or gzip JSON), in file order.

    Args:
        path: e.g. ``../shared/data/train-v1.1-from-explorer.json.gz``.
        max_questions: keep only the first N questions (tests, short runs).

    Returns:
        one ``TrainExample`` per question, labelled with its first answer. A question whose answer text
        is not at ``answer_start`` is relocated to the first occurrence of the text in the context; one
        whose text does not occur at all is an error.

    Raises:
        DataError: missing/unreadable/corrupt file, not SQuAD v1.x (no ``data``; SQuAD v2), a question
            without an answer, or no question at all.
    """
    path = Path(path)
    doc = _read_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise DataError(f"{path}: not a SQuAD v1.x file (no top-level \"data\" list); pass the SQuAD v1.1 train JSON")
    if str(doc.get("version", "")).lstrip("v").startswith("2"):
        raise DataError(f"{path}: SQuAD version {doc['version']}; fine-tuning here uses SQuAD v1.1")
    out: list[TrainExample] = []
    try:
        for article in doc["data"]:
            for paragraph in article["paragraphs"]:
                context = paragraph["context"]
                for qa in paragraph["qas"]:
                    if max_questions is not None and len(out) >= max_questions:
                        return out
                    if qa.get("is_impossible"):
                        raise DataError(f"{path}: question {qa['id']} is_impossible (SQuAD v2); use SQuAD v1.1")
                    if not qa.get("answers"):
                        raise DataError(f"{path}: question {qa['id']} has no answer; is this a training file?")
                    ans = qa["answers"][0]
                    text, start = ans["text"], int(ans.get("answer_start", -1))
                    if context[start:start + len(text)] != text:
                        start = context.find(text)
                        if start < 0 or not text:
                            raise DataError(f"{path}: answer {text[:40]!r} of question {qa['id']} is not in its "
                                            "context")
                    out.append(TrainExample(qa["id"], qa["question"], context, text, start))
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: not a SQuAD v1.x file (bad or missing field {exc}); "
                        "pass the SQuAD v1.1 train JSON") from None
    if not out:
        raise DataError(f"{path}: the file holds no question")
    return out


@dataclass(frozen=True)
class TrainFeatures:
    """Training features, ragged: feature i's tokens are ``tokens[offsets[i]:offsets[i+1]]``.

    Attributes:
        tokens: int32 [T] ``[CLS] question [SEP] window [SEP]`` of every feature, concatenated.
        offsets: int64 [N + 1] feature boundaries in ``tokens``.
        segment_start: int32 [N] first position with segment id 1 (first window piece).
        start_positions, end_positions: int64 [N] answer start/end position in the feature (0 = [CLS]
            = answer not in this window).
        example_index: int32 [N] index of the feature's ``TrainExample``.
    """

    tokens: np.ndarray
    offsets: np.ndarray
    segment_start: np.ndarray
    start_positions: np.ndarray
    end_positions: np.ndarray
    example_index: np.ndarray

    def __len__(self) -> int:
        return int(len(self.segment_start))

    @property
    def lengths(self) -> np.ndarray:
        """int64 [N] tokens per feature."""
        return np.diff(self.offsets)

    def batch(self, indices: np.ndarray) -> tuple[np.ndarray, ...]:
        """Pad the features ``indices`` to their longest one.

        Returns:
            (input_ids, attention_mask, token_type_ids, start_positions, end_positions): int64, the first
            three [B, L] with L = longest length in the batch, the last two [B].
        """
        indices = np.asarray(indices, dtype=np.int64)
        lens = self.lengths[indices]
        b, n = len(indices), int(lens.max())
        ids = np.zeros((b, n), np.int64)
        seg = np.zeros((b, n), np.int64)
        pos = np.arange(n)
        for r, i in enumerate(indices.tolist()):
            ids[r, : lens[r]] = self.tokens[self.offsets[i] : self.offsets[i + 1]]
        mask = (pos[None, :] < lens[:, None]).astype(np.int64)
        seg[(pos[None, :] >= self.segment_start[indices, None]) & (mask == 1)] = 1
        return ids, mask, seg, self.start_positions[indices], self.end_positions[indices]

    def subset(self, keep: np.ndarray) -> "TrainFeatures":
        """The features ``keep`` (int indices), in that order."""
        keep = np.asarray(keep, dtype=np.int64)
        lens = self.lengths[keep]
        offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        tokens = np.concatenate([self.tokens[self.offsets[i] : self.offsets[i + 1]] for i in keep.tolist()]
                                ) if len(keep) else np.zeros(0, np.int32)
        return TrainFeatures(tokens.astype(np.int32), offsets, self.segment_start[keep],
                             self.start_positions[keep], self.end_positions[keep], self.example_index[keep])


def offsets_tokenizer(vocab_path: Path, do_lower_case: bool = True) -> tokenizers.Tokenizer:
    """The BERT uncased pipeline of ``squad.tokenization`` (same normalizer, pre-tokenizer, WordPiece
    with 100-char words) as a plain ``tokenizers.Tokenizer`` that reports character offsets."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    vocab = load_vocab(vocab_path)
    token_to_id = {t: i for i, t in enumerate(vocab)}
    tok = Tokenizer(models.WordPiece(vocab=token_to_id, unk_token="[UNK]", continuing_subword_prefix="##",
                                     max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None,
                                                lowercase=do_lower_case)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.add_special_tokens([t for t in SPECIAL_TOKENS if t in token_to_id])
    return tok


def convert_train_features(examples: list[TrainExample], vocab_path: Path, cfg: SquadConfig,
                           progress: bool = True) -> TrainFeatures:
    """Windows and labels of every training question (see the module docstring).

    Args:
        examples: from ``read_squad_train``.
        vocab_path: the model's ``vocab.txt``.
        cfg: ``max_seq_length`` (384), ``doc_stride`` (128), ``max_query_length`` (64).
        progress: progress bar.

    Returns:
        ``TrainFeatures`` (88k features for the 87,599 SQuAD v1.1 training questions).
    """
    tok = offsets_tokenizer(vocab_path, cfg.do_lower_case)
    vocab_ids = tok.get_vocab()
    cls_id, sep_id = vocab_ids["[CLS]"], vocab_ids["[SEP]"]
    contexts = list(dict.fromkeys(e.context for e in examples))
    bar = tqdm(total=len(examples), desc="SQuAD train features", unit="question", disable=not progress, delay=1.0)
    ctx_enc = {c: e for c, e in zip(contexts, tok.encode_batch(contexts, add_special_tokens=False))}
    q_enc = tok.encode_batch([e.question for e in examples], add_special_tokens=False)
    ctx_arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    chunks: list[np.ndarray] = []
    seg_start, starts, ends, ex_index, lens = [], [], [], [], []
    for ex_i, (ex, q) in enumerate(zip(examples, q_enc)):
        if ex.context not in ctx_arrays:
            enc = ctx_enc[ex.context]
            ctx_arrays[ex.context] = (np.asarray(enc.ids, np.int32), np.asarray(enc.offsets, np.int64).reshape(-1, 2))
        ids, offs = ctx_arrays[ex.context]
        qids = np.asarray(q.ids[: cfg.max_query_length], np.int32)
        room = cfg.max_seq_length - len(qids) - 3
        if room <= 0:
            raise ConfigError(f"max_seq_length {cfg.max_seq_length} leaves no room for context after the "
                              f"question {ex.qas_id}")
        # Answer pieces: those whose characters overlap [answer_start, answer_end).
        a0, a1 = ex.answer_start, ex.answer_start + len(ex.answer_text)
        hit = np.nonzero((offs[:, 1] > a0) & (offs[:, 0] < a1))[0]
        tok_start, tok_end = (int(hit[0]), int(hit[-1])) if len(hit) else (-1, -1)
        head = np.concatenate([[cls_id], qids, [sep_id]]).astype(np.int32)
        c0 = len(head)
        for span in doc_spans(len(ids), room, cfg.doc_stride):
            chunks.append(np.concatenate([head, ids[span.start : span.start + span.length], [sep_id]]).astype(np.int32))
            lens.append(c0 + span.length + 1)
            seg_start.append(c0)
            inside = tok_start >= span.start and tok_end < span.start + span.length and tok_start >= 0
            starts.append(c0 + tok_start - span.start if inside else 0)
            ends.append(c0 + tok_end - span.start if inside else 0)
            ex_index.append(ex_i)
        if ex_i % 512 == 0:
            bar.update(ex_i + 1 - bar.n)
    bar.update(len(examples) - bar.n)
    bar.close()
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    return TrainFeatures(
        tokens=np.concatenate(chunks).astype(np.int32) if chunks else np.zeros(0, np.int32),
        offsets=offsets,
        segment_start=np.asarray(seg_start, np.int32),
        start_positions=np.asarray(starts, np.int64),
        end_positions=np.asarray(ends, np.int64),
        example_index=np.asarray(ex_index, np.int32),
    )


def load_train_features(train_path: Path, vocab_path: Path, cfg: SquadConfig, cache_dir: Path | None,
                        max_questions: int | None = None, progress: bool = True
                        ) -> tuple[list[TrainExample], TrainFeatures]:
    """Read the training file and build (or load cached) features.

    The cache file ``<cache_dir>/squad-train-<key>.npz`` is keyed by sha256 of the training file and
    vocabulary bytes, the preprocessing constants, ``max_questions``, the ``tokenizers`` version and
    ``FORMAT_VERSION``; it is written atomically. ``cache_dir=None`` disables caching.

    Raises:
        DataError: see ``read_squad_train``; a missing vocabulary.
    """
    train_path, vocab_path = Path(train_path), Path(vocab_path)
    examples = read_squad_train(train_path, max_questions)
    if cache_dir is None:
        return examples, convert_train_features(examples, vocab_path, cfg, progress)
    if not vocab_path.is_file():
        raise DataError(f"{vocab_path}: vocabulary not found; pass --vocab (the model's vocab.txt)")
    key = hashlib.sha256(json.dumps({
        "format": FORMAT_VERSION, "train": file_sha256(train_path, "training file"),
        "vocab": file_sha256(vocab_path, "vocab"),
        "cfg": [cfg.max_seq_length, cfg.doc_stride, cfg.max_query_length, cfg.do_lower_case],
        "max_questions": max_questions, "tokenizers": tokenizers.__version__,
    }, sort_keys=True).encode()).hexdigest()
    path = Path(cache_dir) / f"squad-train-{key[:16]}.npz"
    names = [f.name for f in fields(TrainFeatures)]
    cached = load_npz(path, key, names)
    if cached is not None:
        feats = TrainFeatures(**cached)
        if int(feats.example_index.max(initial=-1)) < len(examples):
            return examples, feats
    feats = convert_train_features(examples, vocab_path, cfg, progress)
    save_npz(path, key, {n: getattr(feats, n) for n in names})
    return examples, feats
