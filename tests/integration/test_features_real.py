"""SQuAD preprocessing of the real dev set: golden features (docs/golden.md#features), dev-set facts, the npz
cache round trip, and the WordPiece tokenizer's edge cases on the real uncased vocabulary."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from mlperf_bert.config import DEV_FEATURE_COUNT, DEV_QUESTION_COUNT, DataPaths, SquadConfig, default_shared_dir
from mlperf_bert.squad import cache as cache_mod
from mlperf_bert.squad.cache import cache_path, load_features
from mlperf_bert.squad.tokenization import WordPieceTokenizer, load_vocab

SHARED = default_shared_dir()
DEV = SHARED / "data" / "dev-v1.1.json"
VOCAB = SHARED / "data" / "vocab.txt"

pytestmark = pytest.mark.usefixtures("shared")  # fails, not skips, without ../shared

#: docs/golden.md#features: sha256 of array.astype(dtype).tobytes().
GOLDEN_SHA256 = {
    "input_ids": ("<i4", "b75291371c078f3114d60dfd077a761037b5869761c0414a49cdc7e8b051605c"),
    "input_mask": ("<i4", "9634bbdf85592ffd5aab26166a5ec089638e9641bd30cb4e3116faaecd394cee"),
    "segment_ids": ("<i4", "e3923a65eeb01663acb1500587984717b638ff0148421191b79eec1042d4ef87"),
    "example_index": ("<i4", "1f638080e89ab48d37c213262f6023a0d176e74137d247c69ceb79a5ae815486"),
    "unique_id": ("<i8", "84cf61d2a570974f02d59ede62adafc21f502a2ef63234cb62375ed55b67e40f"),
}



def sha256(a: np.ndarray, dtype: str) -> str:
    return hashlib.sha256(np.ascontiguousarray(a.astype(dtype)).tobytes()).hexdigest()


@pytest.fixture(scope="module")
def tokenizer() -> WordPieceTokenizer:
    return WordPieceTokenizer(VOCAB)


@pytest.fixture(scope="module")
def dev(tmp_path_factory):
    """(examples, features, cache file) of the real dev set, built once into a fresh cache dir."""
    paths = DataPaths(dataset=DEV, vocab=VOCAB, cache_dir=tmp_path_factory.mktemp("cache"))
    examples, features = load_features(paths, SquadConfig(), progress=False)
    return examples, features, cache_path(paths, SquadConfig()), paths


# --- the real dev set ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(GOLDEN_SHA256))
def test_dev_golden_hashes(dev, name):
    _, features, _, _ = dev
    dtype, digest = GOLDEN_SHA256[name]
    assert len(features) == DEV_FEATURE_COUNT
    assert sha256(getattr(features, name), dtype) == digest


def test_dev_facts(dev):
    examples, f, _, _ = dev
    assert len(examples) == DEV_QUESTION_COUNT
    assert examples[0].qas_id == "56be4db0acb8001400a502ec" and examples[-1].qas_id == "5737aafd1c456719005744ff"
    # dtypes and shapes promised by types.Features
    for name, dtype in [
        ("input_ids", np.int32),
        ("input_mask", np.int32),
        ("segment_ids", np.int32),
        ("token_to_orig", np.int32),
        ("token_is_max_context", np.bool_),
    ]:
        a = getattr(f, name)
        assert a.dtype == dtype and a.shape == (DEV_FEATURE_COUNT, 384), name
    assert f.example_index.dtype == np.int32 and f.unique_id.dtype == np.int64
    assert f.unique_id[0] == 1_000_000_000 and f.unique_id[-1] == 1_000_000_000 + DEV_FEATURE_COUNT - 1
    # features per question: 10,387 x1, 127 x2, 36 x3, 16 x4, 4 x5
    per_question = np.bincount(np.bincount(f.example_index, minlength=len(examples)))
    assert per_question.tolist() == [0, 10387, 127, 36, 16, 4]
    lengths = f.lengths
    assert (lengths.min(), lengths.max()) == (41, 384)
    assert round(float(lengths.mean()), 2) == 178.49
    assert int((lengths == 384).sum()) == 264
    unk = f.input_ids == 100
    assert int(unk.sum()) == 280 and int(unk.any(axis=1).sum()) == 82
    # layout: [CLS] q [SEP] context [SEP] pad; segment 1 = context + final [SEP]
    assert (f.input_ids[:, 0] == 101).all()
    question_len = np.argmax(f.segment_ids == 1, axis=1) - 2
    assert question_len.max() == 38
    rows = np.arange(len(f))
    assert (f.input_ids[rows, question_len + 1] == 102).all()
    assert (f.input_ids[rows, lengths - 1] == 102).all()
    assert (f.segment_ids.sum(axis=1) == lengths - question_len - 2).all()
    context_len = lengths - question_len - 3
    assert (context_len.min(), context_len.max()) == (30, 376)
    assert ((f.input_ids != 0) == (f.input_mask == 1)).all()  # [PAD] = 0 only as padding
    # token_to_orig / max context are set exactly on the context pieces
    is_context = (f.segment_ids == 1) & (f.input_ids != 102)
    assert ((f.token_to_orig >= 0) == is_context).all()
    assert not (f.token_is_max_context & ~is_context).any()


def test_dev_every_piece_has_one_max_context_window(dev, tokenizer):
    """Each context piece of each question is max-context in exactly one of its windows; token_to_orig
    counts the pieces of every doc token exactly as the tokenizer splits it."""
    examples, f, _, _ = dev
    flags_per_question = np.bincount(f.example_index, weights=f.token_is_max_context.sum(axis=1))
    for i in np.flatnonzero(np.bincount(f.example_index) > 1):  # the 183 multi-window questions
        doc = examples[i].doc_tokens
        pieces = tokenizer.encode_many(doc)
        assert flags_per_question[i] == sum(map(len, pieces))
        rows = np.flatnonzero(f.example_index == i)
        orig = f.token_to_orig[rows]
        flags = f.token_is_max_context[rows]
        counts = np.bincount(orig[flags], minlength=len(doc))
        assert counts.tolist() == [len(p) for p in pieces]
    assert len(np.flatnonzero(np.bincount(f.example_index) > 1)) == 183


def test_dev_cache_round_trip(dev, monkeypatch):
    """A second load reads the npz (no rebuild, file untouched) and gives identical arrays."""
    _, first, path, paths = dev
    mtime = path.stat().st_mtime_ns
    monkeypatch.setattr(cache_mod, "convert_examples_to_features", _fail_if_called)
    _, again = load_features(paths, SquadConfig(), progress=False)
    assert path.stat().st_mtime_ns == mtime
    for name in (
        "input_ids",
        "input_mask",
        "segment_ids",
        "example_index",
        "unique_id",
        "token_to_orig",
        "token_is_max_context",
    ):
        a, b = getattr(first, name), getattr(again, name)
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp files left


def _fail_if_called(*args, **kwargs):
    raise AssertionError("features were rebuilt instead of loaded from the cache")


# --- the tokenizer ----------------------------------------------------------------------------------

#: Expected pieces, checked against the reference's slow Python BertTokenizer (transformers).
TOKENIZER_CASES = [
    ("Crème Brûlée", ["cr", "##eme", "br", "##ule", "##e"]),  # accents stripped (NFD, drop Mn)
    ("Ünïcödé naïve café", ["unicode", "naive", "cafe"]),
    ("x\u0301", ["x"]),  # a lone combining accent disappears
    ("İstanbul", ["istanbul"]),
    ("東京大学", ["東", "京", "大", "学"]),  # CJK ideographs are split into single characters
    ("中文字", ["中", "文", "[UNK]"]),  # ... and a CJK char outside the vocabulary is [UNK]
    ("a\x00b\u200bc\x7fd\ufffde", ["abc", "##de"]),  # NUL, Cf, Cc, U+FFFD removed, not split
    ("hello\tworld\r\nnew", ["hello", "world", "new"]),
    ("a\u00a0b", ["a", "b"]),  # Zs is whitespace for the tokenizer
    ("\u200b", []),
    ("U.S.-born, (1895–1943)!", ["u", ".", "s", ".", "-", "born", ",", "(", "1895", "–", "1943", ")", "!"]),
    ("don't", ["don", "'", "t"]),
    ("Unaffable", ["una", "##ffa", "##ble"]),
    ("ΟΔΟΣ ΣΟΦΟΣ", ["ο", "##δ", "##ος", "σ", "##ο", "##φ", "##ος"]),  # Python's final-sigma lower-casing
    ("Σ.Α", ["σ", ".", "α"]),  # '.' is case-ignorable: Σ is not final
    ("Σ\x01Α", ["σ", "##α"]),  # control char removed before lower-casing
    ("foo[SEP]bar [sep]", ["foo", "[SEP]", "bar", "[", "sep", "]"]),  # special tokens kept whole
    ("[CLS]", ["[CLS]"]),
    ("ﬁne", ["ﬁ", "##ne"]),
    ("a" * 101, ["[UNK]"]),  # over 100 chars -> [UNK]
    ("é" * 101, ["[UNK]"]),
    ("a" * 100, ["aaa"] + ["##aa"] * 48 + ["##a"]),  # exactly 100 chars is still split
]


@pytest.mark.parametrize("text,pieces", TOKENIZER_CASES, ids=[repr(t)[:20] for t, _ in TOKENIZER_CASES])
def test_tokenizer_edge_cases(tokenizer, text, pieces):
    assert tokenizer.tokenize(text) == pieces


def test_tokenizer_matches_python_reference_tokenizer(tokenizer):
    legacy = pytest.importorskip("transformers.models.bert.tokenization_bert_legacy")
    ref = legacy.BertTokenizerLegacy(str(VOCAB))
    texts = [t for t, _ in TOKENIZER_CASES] + [
        "Σ",
        "ΑΣ ",
        "ΑΣ\u200bΒ",
        "ΑΣ'Β",
        "(ΑΣ)",
        "ΑΣ中",
        "ΑΣ[SEP]Β",
        "ΣΑΣ[CLS]",
        "\u2028x\u2029y",
        "\x1cz\x85",
        "Ǆemal",
        "ΐ",
        "Straße",
        "ﬀ",
        "x" * 99 + "é",
        "$1,000.50",
        "e-mail@x.org",
        "🙂 ok",
        "\u3000w",
    ]
    for text in texts:
        assert tokenizer.tokenize(text) == ref.tokenize(text), repr(text)


def test_vocab_and_ids(tokenizer):
    vocab = load_vocab(VOCAB)
    assert len(vocab) == len(tokenizer) == 30522
    assert vocab[:1] == ["[PAD]"] and vocab[100:104] == ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert (tokenizer.pad_id, tokenizer.unk_id, tokenizer.cls_id, tokenizer.sep_id) == (0, 100, 101, 102)
    assert tokenizer.convert_tokens_to_ids(["the", "##s", "not-a-token"]) == [1996, 2015, 100]
    assert tokenizer.convert_ids_to_tokens([101, 1996, 102]) == ["[CLS]", "the", "[SEP]"]
    assert tokenizer.encode("The cat.") == [1996, 4937, 1012]
    assert tokenizer.encode_many(["The", "cat", "The"]) == [(1996,), (4937,), (1996,)]


def test_cased_tokenizer_keeps_case_and_accents():
    cased = WordPieceTokenizer(VOCAB, do_lower_case=False)
    # the uncased vocabulary has no capitals and no accented "café": both unknown when kept as they are
    assert cased.tokenize("The café") == ["[UNK]", "[UNK]"]
    assert cased.tokenize("the cafe") == ["the", "cafe"]
    assert cased.tokenize("ΟΔΟΣ") == ["[UNK]"]
