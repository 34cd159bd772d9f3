"""SQuAD preprocessing: golden features of the dev set (docs/golden.md#features), hand-derived windows, tokenizer edge
cases and the npz feature cache."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import numpy as np
import pytest

from mlperf_bert.config import DEV_FEATURE_COUNT, DEV_QUESTION_COUNT, DataPaths, SquadConfig, default_shared_dir
from mlperf_bert.squad import cache as cache_mod
from mlperf_bert.squad.cache import cache_path, load_features
from mlperf_bert.squad.dataset import read_squad, split_doc_tokens
from mlperf_bert.squad.features import DocSpan, convert_examples_to_features, doc_spans, max_context_span
from mlperf_bert.squad.tokenization import WordPieceTokenizer, load_vocab

SHARED = default_shared_dir()
DEV = SHARED / "data" / "dev-v1.1.json"
VOCAB = SHARED / "data" / "vocab.txt"

#: docs/golden.md#features: sha256 of array.astype(dtype).tobytes().
GOLDEN_SHA256 = {
    "input_ids": ("<i4", "b75291371c078f3114d60dfd077a761037b5869761c0414a49cdc7e8b051605c"),
    "input_mask": ("<i4", "9634bbdf85592ffd5aab26166a5ec089638e9641bd30cb4e3116faaecd394cee"),
    "segment_ids": ("<i4", "e3923a65eeb01663acb1500587984717b638ff0148421191b79eec1042d4ef87"),
    "example_index": ("<i4", "1f638080e89ab48d37c213262f6023a0d176e74137d247c69ceb79a5ae815486"),
    "unique_id": ("<i8", "84cf61d2a570974f02d59ede62adafc21f502a2ef63234cb62375ed55b67e40f"),
}

needs_shared = pytest.mark.skipif(not (DEV.is_file() and VOCAB.is_file()), reason=f"no SQuAD data under {SHARED}")


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


@needs_shared
@pytest.mark.parametrize("name", sorted(GOLDEN_SHA256))
def test_dev_golden_hashes(dev, name):
    _, features, _, _ = dev
    dtype, digest = GOLDEN_SHA256[name]
    assert len(features) == DEV_FEATURE_COUNT
    assert sha256(getattr(features, name), dtype) == digest


@needs_shared
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


@needs_shared
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


@needs_shared
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


# --- a handcrafted paragraph, worked out by hand ---------------------------------------------------

#: 13 doc tokens -> 18 pieces: a..l are one piece each, "(1895-1943)." is ( 1895 - 1943 ) . (6 pieces).
CONTEXT = "a b c\td e\u202ff g h\ni j k l  (1895-1943)."
QUESTION = "Who?"  # -> who ? (2 pieces)
#: room = 16 - 2 - 3 = 11 pieces; stride 4 -> windows (0, 11), (4, 11), (8, 10).
SMALL = SquadConfig(max_seq_length=16, doc_stride=4, max_query_length=64)


def squad_json(paragraphs: list[tuple[str, list[tuple[str, str]]]]) -> dict:
    return {
        "version": "1.1",
        "data": [
            {
                "title": "T",
                "paragraphs": [
                    {
                        "context": ctx,
                        "qas": [
                            {"id": qid, "question": q, "answers": [{"text": "a", "answer_start": 0}]} for qid, q in qas
                        ],
                    }
                    for ctx, qas in paragraphs
                ],
            }
        ],
    }


@pytest.fixture
def small_data(tmp_path):
    """A two-question SQuAD file (the handcrafted paragraph, asked twice) and a private copy of vocab.txt."""
    dataset = tmp_path / "small.json"
    dataset.write_text(json.dumps(squad_json([(CONTEXT, [("q1", QUESTION), ("q2", "Why not?")])])))
    vocab = tmp_path / "vocab.txt"
    shutil.copyfile(VOCAB, vocab)
    return DataPaths(dataset=dataset, vocab=vocab, cache_dir=tmp_path / "cache" / "nested")


def test_split_doc_tokens_uses_reference_whitespace():
    # U+00A0 is not reference whitespace: it stays inside the doc token.
    assert split_doc_tokens(" x\t\ty\r\nz\u202fw\u00a0v ") == ("x", "y", "z", "w\u00a0v")
    assert split_doc_tokens(CONTEXT) == tuple("abcdefghijkl") + ("(1895-1943).",)
    assert split_doc_tokens("") == ()


def test_doc_spans_and_max_context_by_hand():
    spans = doc_spans(18, 11, 4)
    assert spans == [DocSpan(0, 11), DocSpan(4, 11), DocSpan(8, 10)]
    # scores min(left, right) + 0.01 * length:
    #  piece 7: A min(7,3)+.11 = 3.11, B min(3,7)+.11 = 3.11 -> tie, the first window (A) wins
    #  piece 11: B min(7,3)+.11 = 3.11, C min(3,6)+.10 = 3.10 -> B by the length bonus
    #  piece 12: B min(8,2)+.11 = 2.11, C min(4,5)+.10 = 4.10 -> C
    best = max_context_span(spans, 18)
    assert best.tolist() == [0] * 8 + [1] * 4 + [2] * 6
    assert doc_spans(5, 11, 4) == [DocSpan(0, 5)]
    assert doc_spans(0, 11, 4) == []
    assert doc_spans(384, 128, 128) == [DocSpan(0, 128), DocSpan(128, 128), DocSpan(256, 128)]


@needs_shared
def test_three_windows_by_hand(small_data, tokenizer):
    examples = read_squad(small_data.dataset)
    assert [e.qas_id for e in examples] == ["q1", "q2"]
    assert examples[0].doc_tokens is examples[1].doc_tokens
    f = convert_examples_to_features(examples[:1], tokenizer, SMALL, progress=False)
    assert len(f) == 3
    ids = tokenizer.convert_tokens_to_ids
    cls_q_sep = ["[CLS]", "who", "?", "[SEP]"]
    letters = list("abcdefghijkl")
    rest = ["(", "1895", "-", "1943", ")", "."]
    pieces = letters + rest
    expected_tokens = [
        cls_q_sep + pieces[0:11] + ["[SEP]"],
        cls_q_sep + pieces[4:15] + ["[SEP]"],
        cls_q_sep + pieces[8:18] + ["[SEP]", "[PAD]"],
    ]
    for row, tokens in enumerate(expected_tokens):
        assert f.input_ids[row].tolist() == ids(tokens)
    assert f.input_mask.tolist() == [[1] * 16, [1] * 16, [1] * 15 + [0]]
    assert f.segment_ids.tolist() == [[0] * 4 + [1] * 12, [0] * 4 + [1] * 12, [0] * 4 + [1] * 11 + [0]]
    none = [-1] * 4
    assert f.token_to_orig.tolist() == [
        none + list(range(0, 11)) + [-1],
        none + list(range(4, 12)) + [12, 12, 12] + [-1],
        none + [8, 9, 10, 11, 12, 12, 12, 12, 12, 12] + [-1, -1],
    ]
    # max-context windows from test_doc_spans_and_max_context_by_hand: A 0-7, B 8-11, C 12-17
    t, n = True, False
    assert f.token_is_max_context.tolist() == [
        [n] * 4 + [t] * 8 + [n] * 3 + [n],
        [n] * 4 + [n] * 4 + [t] * 4 + [n] * 3 + [n],
        [n] * 4 + [n] * 4 + [t] * 6 + [n, n],
    ]
    assert f.example_index.tolist() == [0, 0, 0]
    assert f.unique_id.tolist() == [1_000_000_000, 1_000_000_001, 1_000_000_002]


@needs_shared
def test_question_is_cut_to_max_query_length(tokenizer, tmp_path):
    dataset = tmp_path / "q.json"
    dataset.write_text(json.dumps(squad_json([("alpha beta", [("q", "one two three four five six")])])))
    examples = read_squad(dataset)
    f = convert_examples_to_features(examples, tokenizer, SquadConfig(max_query_length=4), progress=False)
    assert f.input_ids[0, :9].tolist() == tokenizer.convert_tokens_to_ids(
        ["[CLS]", "one", "two", "three", "four", "[SEP]", "alpha", "beta", "[SEP]"]
    )
    assert f.lengths.tolist() == [9]


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


@needs_shared
@pytest.mark.parametrize("text,pieces", TOKENIZER_CASES, ids=[repr(t)[:20] for t, _ in TOKENIZER_CASES])
def test_tokenizer_edge_cases(tokenizer, text, pieces):
    assert tokenizer.tokenize(text) == pieces


@needs_shared
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


@needs_shared
def test_vocab_and_ids(tokenizer):
    vocab = load_vocab(VOCAB)
    assert len(vocab) == len(tokenizer) == 30522
    assert vocab[:1] == ["[PAD]"] and vocab[100:104] == ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert (tokenizer.pad_id, tokenizer.unk_id, tokenizer.cls_id, tokenizer.sep_id) == (0, 100, 101, 102)
    assert tokenizer.convert_tokens_to_ids(["the", "##s", "not-a-token"]) == [1996, 2015, 100]
    assert tokenizer.convert_ids_to_tokens([101, 1996, 102]) == ["[CLS]", "the", "[SEP]"]
    assert tokenizer.encode("The cat.") == [1996, 4937, 1012]
    assert tokenizer.encode_many(["The", "cat", "The"]) == [(1996,), (4937,), (1996,)]


@needs_shared
def test_cased_tokenizer_keeps_case_and_accents():
    cased = WordPieceTokenizer(VOCAB, do_lower_case=False)
    # the uncased vocabulary has no capitals and no accented "café": both unknown when kept as they are
    assert cased.tokenize("The café") == ["[UNK]", "[UNK]"]
    assert cased.tokenize("the cafe") == ["the", "cafe"]
    assert cased.tokenize("ΟΔΟΣ") == ["[UNK]"]


# --- the cache --------------------------------------------------------------------------------------


class Counter:
    """Wraps convert_examples_to_features to count rebuilds."""

    def __init__(self, monkeypatch):
        self.calls = 0
        real = cache_mod.convert_examples_to_features

        def counted(*args, **kwargs):
            self.calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(cache_mod, "convert_examples_to_features", counted)


@needs_shared
def test_cache_hit_then_rebuild_on_changed_inputs(small_data, monkeypatch):
    builds = Counter(monkeypatch)
    assert not small_data.cache_dir.exists()
    ex1, f1 = load_features(small_data, SMALL, progress=False)
    assert builds.calls == 1 and small_data.cache_dir.is_dir()  # created on demand
    path1 = cache_path(small_data, SMALL)
    assert path1.is_file() and path1.suffix == ".npz"
    ex2, f2 = load_features(small_data, SMALL, progress=False)
    assert builds.calls == 1  # hit
    assert ex1 == ex2 and np.array_equal(f1.input_ids, f2.input_ids)
    assert np.array_equal(f1.token_is_max_context, f2.token_is_max_context)
    assert len(f1) == 3 + 3  # q1: 3 windows; q2 ("why not ?", room 10): (0, 10), (4, 10), (8, 10)

    # a different config is another key
    load_features(small_data, SquadConfig(max_seq_length=32, doc_stride=4), progress=False)
    assert builds.calls == 2
    # postprocessing-only settings share the features
    load_features(small_data, SquadConfig(max_seq_length=16, doc_stride=4, n_best_size=5), progress=False)
    assert builds.calls == 2

    # changed vocabulary bytes (same tokens, extra line) -> new key -> rebuild
    with small_data.vocab.open("a", encoding="utf-8") as fh:
        fh.write("zzzextra\n")
    load_features(small_data, SMALL, progress=False)
    assert builds.calls == 3 and cache_path(small_data, SMALL) != path1

    # changed dataset -> rebuild, with the new question's features
    small_data.dataset.write_text(json.dumps(squad_json([(CONTEXT, [("q1", QUESTION)])])))
    ex, f = load_features(small_data, SMALL, progress=False)
    assert builds.calls == 4 and len(ex) == 1 and len(f) == 3
    names = sorted(p.name for p in small_data.cache_dir.iterdir())
    assert len(names) == 4 and all(n.startswith("squad-features-") and n.endswith(".npz") for n in names)


@needs_shared
@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "wrong-key", "missing-array"])
def test_corrupt_cache_is_rebuilt(small_data, monkeypatch, damage):
    builds = Counter(monkeypatch)
    _, good = load_features(small_data, SMALL, progress=False)
    path = cache_path(small_data, SMALL)
    raw = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(b"not an npz at all")
    elif damage == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "wrong-key":
        with np.load(path) as npz:
            arrays = dict(npz)
        arrays["cache_key"] = np.array("0" * 64)
        with path.open("wb") as fh:
            np.savez(fh, **arrays)
    elif damage == "missing-array":
        with np.load(path) as npz:
            arrays = {k: v for k, v in npz.items() if k != "token_to_orig"}
        with path.open("wb") as fh:
            np.savez(fh, **arrays)
    _, again = load_features(small_data, SMALL, progress=False)
    assert builds.calls == 2
    assert np.array_equal(again.input_ids, good.input_ids)
    assert np.array_equal(again.token_to_orig, good.token_to_orig)
    with np.load(path, allow_pickle=False) as npz:  # rewritten whole
        assert np.array_equal(npz["input_ids"], good.input_ids)
    assert [p.name for p in small_data.cache_dir.iterdir()] == [path.name]


@needs_shared
def test_cache_file_holds_no_pickles(small_data):
    load_features(small_data, SMALL, progress=False)
    with np.load(cache_path(small_data, SMALL), allow_pickle=False) as npz:
        assert all(npz[k].dtype != object for k in npz.files)
        assert sorted(npz.files) == sorted(
            [
                "cache_key",
                "input_ids",
                "input_mask",
                "segment_ids",
                "example_index",
                "unique_id",
                "token_to_orig",
                "token_is_max_context",
            ]
        )


@needs_shared
def test_prepare_command_prints_summary(small_data, capsys):
    from mlperf_bert.cli import main

    argv = [
        "prepare",
        "--dataset",
        str(small_data.dataset),
        "--vocab",
        str(small_data.vocab),
        "--cache-dir",
        str(small_data.cache_dir),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "(2 questions)" in out
    assert "features   2 of 384 tokens" in out  # 384 tokens hold the whole paragraph
    assert "min 23, mean 23.50, max 24" in out  # 4 + 18 + 1 and 5 + 18 + 1 tokens
    assert f"cache      {cache_path(small_data, SquadConfig())} (written)" in out
    assert main(argv) == 0
    assert "(loaded)" in capsys.readouterr().out
    assert os.listdir(small_data.cache_dir) == [cache_path(small_data, SquadConfig()).name]
