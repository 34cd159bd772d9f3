"""SQuAD preprocessing on a handcrafted paragraph: windows and max-context worked out by hand, the question
cut, and the npz feature cache. The dev set's golden features and the real vocabulary's tokenizer cases are in
tests/integration/test_features_real.py."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from mlperf_bert.config import DataPaths, SquadConfig
from mlperf_bert.squad import cache as cache_mod
from mlperf_bert.squad.cache import cache_path, load_features
from mlperf_bert.squad.dataset import read_squad, split_doc_tokens
from mlperf_bert.squad.features import DocSpan, convert_examples_to_features, doc_spans, max_context_span
from mlperf_bert.squad.tokenization import WordPieceTokenizer

#: Every piece the paragraphs and questions below need, each a whole word (as in BERT's vocabulary).
HAND_VOCAB = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijkl", "(", "1895", "-", "1943", ")", ".", "who",
              "?", "why", "not", "one", "two", "three", "four", "five", "six", "alpha", "beta")

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
    """A two-question SQuAD file (the handcrafted paragraph, asked twice) and a private vocab.txt (HAND_VOCAB)."""
    dataset = tmp_path / "small.json"
    dataset.write_text(json.dumps(squad_json([(CONTEXT, [("q1", QUESTION), ("q2", "Why not?")])])))
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(HAND_VOCAB) + "\n")
    return DataPaths(dataset=dataset, vocab=vocab, cache_dir=tmp_path / "cache" / "nested")


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory) -> WordPieceTokenizer:
    path = tmp_path_factory.mktemp("hand-vocab") / "vocab.txt"
    path.write_text("\n".join(HAND_VOCAB) + "\n")
    return WordPieceTokenizer(path)


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


def test_question_is_cut_to_max_query_length(tokenizer, tmp_path):
    dataset = tmp_path / "q.json"
    dataset.write_text(json.dumps(squad_json([("alpha beta", [("q", "one two three four five six")])])))
    examples = read_squad(dataset)
    f = convert_examples_to_features(examples, tokenizer, SquadConfig(max_query_length=4), progress=False)
    assert f.input_ids[0, :9].tolist() == tokenizer.convert_tokens_to_ids(
        ["[CLS]", "one", "two", "three", "four", "[SEP]", "alpha", "beta", "[SEP]"]
    )
    assert f.lengths.tolist() == [9]


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
