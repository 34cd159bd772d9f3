"""Bad SQuAD datasets, vocabularies and cache folders give one-line typed errors naming the file."""

from __future__ import annotations

import json
import shutil

import pytest

from mlperf_bert.cli import main
from mlperf_bert.config import DataPaths, SquadConfig
from mlperf_bert.errors import ConfigError, DataError
from mlperf_bert.squad.cache import load_features
from mlperf_bert.squad.dataset import read_squad
from mlperf_bert.squad.tokenization import WordPieceTokenizer, load_vocab


@pytest.fixture
def vocab(tiny_squad):
    """A valid vocab.txt (the tiny SQuAD file's 15 pieces)."""
    return tiny_squad[1]


GOOD = {
    "version": "1.1",
    "data": [
        {
            "title": "T",
            "paragraphs": [
                {
                    "context": "The cat sat.",
                    "qas": [{"id": "q1", "question": "Who sat?", "answers": [{"text": "The cat", "answer_start": 0}]}],
                }
            ],
        }
    ],
}


def one_line(exc: pytest.ExceptionInfo, *needles: str) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    for needle in needles:
        assert needle in msg, (needle, msg)
    return msg


def test_good_file_reads(tmp_path):
    p = tmp_path / "good.json"
    p.write_text(json.dumps(GOOD))
    [ex] = read_squad(p)
    assert (ex.qas_id, ex.question_text, ex.doc_tokens, ex.answers) == (
        "q1",
        "Who sat?",
        ("The", "cat", "sat."),
        ("The cat",),
    )


def test_missing_dataset(tmp_path):
    p = tmp_path / "nope" / "dev-v1.1.json"
    with pytest.raises(DataError) as exc:
        read_squad(p)
    one_line(exc, str(p), "not found", "--dataset")


def test_dataset_is_a_directory(tmp_path):
    with pytest.raises(DataError) as exc:
        read_squad(tmp_path)
    one_line(exc, str(tmp_path), "directory")


def test_truncated_json_anywhere(tmp_path):
    """Cut after any byte (inside a string, a key, between values): always reported as truncated."""
    full = json.dumps({**GOOD, "data": [{"title": "Zürich €", **GOOD["data"][0]}]}, ensure_ascii=False).encode()
    p = tmp_path / "dev.json"
    for cut in range(1, len(full)):
        p.write_bytes(full[:cut])
        with pytest.raises(DataError) as exc:
            read_squad(p)
        one_line(exc, str(p), "truncated JSON", f"after {cut:,} bytes")


@pytest.mark.parametrize("text", ["<html>404 Not Found</html>", "{'data': []}", '{"data": [1,]} trailing'])
def test_not_json(tmp_path, text):
    p = tmp_path / "dev.json"
    p.write_text(text)
    with pytest.raises(DataError) as exc:
        read_squad(p)
    msg = one_line(exc, str(p), "not valid JSON", "line 1")
    assert "truncated" not in msg


def test_not_utf8(tmp_path):
    p = tmp_path / "dev.json"
    p.write_bytes(b'{"data": "\xff\xfe"}')
    with pytest.raises(DataError) as exc:
        read_squad(p)
    one_line(exc, str(p), "UTF-8")


@pytest.mark.parametrize("text", ["", "  \n"])
def test_empty_file(tmp_path, text):
    p = tmp_path / "dev.json"
    p.write_text(text)
    with pytest.raises(DataError) as exc:
        read_squad(p)
    one_line(exc, str(p), "empty")


@pytest.mark.parametrize(
    "doc,needle",
    [
        ([1, 2, 3], '"data"'),
        ({"version": "1.1"}, '"data"'),
        ({"data": {"title": "x"}}, '"data"'),
        ({"data": [{"title": "x"}]}, 'article 0 has no "paragraphs"'),
        ({"data": [{"paragraphs": [{"qas": []}]}]}, 'paragraph 0 has no "context"'),
        ({"data": [{"paragraphs": [{"context": "c"}]}]}, 'no "qas"'),
        ({"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "q"}]}]}]}, 'lacks an "id" or "question"'),
        (
            {"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "q", "question": "?", "answers": ["a"]}]}]}]},
            '"answers" entry',
        ),
        # no gold answers: refused when read, not after a whole accuracy run
        ({"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "q7", "question": "?"}]}]}]},
         'paragraph 0 question 0 (q7) has no "answers" list'),
        ({"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "q7", "question": "?", "answers": []}]}]}]},
         'question 0 (q7) has no "answers" list'),
        # a tokenizer.json or model config handed over by mistake
        ({"model": {"type": "WordPiece"}, "added_tokens": []}, '"data"'),
    ],
)
def test_not_squad(tmp_path, doc, needle):
    p = tmp_path / "dev.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(DataError) as exc:
        read_squad(p)
    one_line(exc, str(p), "not a SQuAD v1.x file", needle)


def test_squad_v2_is_refused(tmp_path):
    p = tmp_path / "dev-v2.0.json"
    p.write_text(json.dumps({**GOOD, "version": "v2.0"}))
    with pytest.raises(DataError) as exc:
        read_squad(p)
    one_line(exc, str(p), "v2.0", "SQuAD v1.1")


@pytest.mark.parametrize(
    "doc", [{"version": "1.1", "data": []}, {"data": [{"paragraphs": [{"context": "c", "qas": []}]}]}]
)
def test_no_questions(tmp_path, doc):
    p = tmp_path / "dev.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(DataError) as exc:
        read_squad(p)
    one_line(exc, str(p), "no questions")


# --- vocabulary -----------------------------------------------------------------------------------


def test_missing_vocab(tmp_path):
    p = tmp_path / "vocab.txt"
    with pytest.raises(DataError) as exc:
        load_vocab(p)
    one_line(exc, str(p), "not found", "--vocab")
    with pytest.raises(DataError) as exc:
        WordPieceTokenizer(p)
    one_line(exc, str(p), "not found")


def test_empty_vocab(tmp_path):
    p = tmp_path / "vocab.txt"
    p.write_text("")
    with pytest.raises(DataError) as exc:
        load_vocab(p)
    one_line(exc, str(p), "empty")


@pytest.mark.parametrize(
    "text,missing",
    [
        ("hello\nworld\n", "[PAD], [UNK], [CLS], [SEP]"),
        ("[PAD]\n[UNK]\n[CLS]\nthe\n", "[SEP]"),
        # tokenizer.json: the special tokens occur, but not as whole lines
        (
            json.dumps({"model": {"vocab": {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102}}}, indent=1),
            "[PAD], [UNK], [CLS], [SEP]",
        ),
    ],
)
def test_wrong_vocab(tmp_path, text, missing):
    p = tmp_path / "vocab.txt"
    p.write_text(text)
    with pytest.raises(DataError) as exc:
        load_vocab(p)
    one_line(exc, str(p), "not a WordPiece vocabulary", missing)


def test_binary_vocab(tmp_path):
    p = tmp_path / "model.safetensors"
    p.write_bytes(b"\x00\x01\xff\xfe" * 10)
    with pytest.raises(DataError) as exc:
        load_vocab(p)
    one_line(exc, str(p), "not UTF-8")


def test_small_valid_vocab(tmp_path):
    p = tmp_path / "vocab.txt"
    p.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nthe\n##s\ncat\n")
    tok = WordPieceTokenizer(p)
    assert len(tok) == 7
    assert tok.tokenize("The cats, dog") == ["the", "cat", "##s", "[UNK]", "[UNK]"]
    assert tok.encode("the cats") == [4, 6, 5]


# --- through load_features and the CLI ----------------------------------------------------------


def test_load_features_names_missing_inputs(tmp_path, vocab):
    good = tmp_path / "dev.json"
    good.write_text(json.dumps(GOOD))
    missing = tmp_path / "missing.json"
    with pytest.raises(DataError) as exc:
        load_features(DataPaths(missing, vocab, tmp_path / "c"), SquadConfig(), progress=False)
    one_line(exc, str(missing), "not found")
    with pytest.raises(DataError) as exc:
        load_features(DataPaths(good, tmp_path / "vocab.txt", tmp_path / "c"), SquadConfig(), progress=False)
    one_line(exc, str(tmp_path / "vocab.txt"), "not found", "--vocab")


def test_wrong_vocab_through_load_features(tmp_path):
    good = tmp_path / "dev.json"
    good.write_text(json.dumps(GOOD))
    bad = tmp_path / "tokenizer.json"
    bad.write_text('{"version": "1.0"}\n')
    with pytest.raises(DataError) as exc:
        load_features(DataPaths(good, bad, tmp_path / "c"), SquadConfig(), progress=False)
    one_line(exc, str(bad), "not a WordPiece vocabulary")


def test_unwritable_cache_dir(tmp_path, vocab):
    good = tmp_path / "dev.json"
    good.write_text(json.dumps(GOOD))
    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("x")
    with pytest.raises(ConfigError) as exc:
        load_features(DataPaths(good, vocab, blocker), SquadConfig(), progress=False)
    one_line(exc, str(blocker), "--cache-dir")


def test_query_room_check(tmp_path):
    from mlperf_bert.squad.features import convert_examples_to_features

    p = tmp_path / "vocab.txt"
    p.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nthe\n")
    d = tmp_path / "dev.json"
    d.write_text(json.dumps(GOOD))
    with pytest.raises(ConfigError) as exc:
        convert_examples_to_features(
            read_squad(d), WordPieceTokenizer(p), SquadConfig(max_seq_length=4), progress=False
        )
    one_line(exc, "max_seq_length 4", "q1")
    with pytest.raises(ConfigError) as exc:
        convert_examples_to_features(read_squad(d), WordPieceTokenizer(p), SquadConfig(doc_stride=0), progress=False)
    one_line(exc, "doc_stride 0")


@pytest.mark.parametrize("case", ["missing", "truncated", "not-squad", "bad-vocab"])
def test_cli_prepare_errors(tmp_path, capsys, case, tiny_squad):
    dataset = tmp_path / "dev.json"
    vocab = tmp_path / "vocab.txt"
    shutil.copyfile(tiny_squad[1], vocab)
    if case == "truncated":
        dataset.write_text(json.dumps(GOOD)[:50])
    elif case == "not-squad":
        dataset.write_text('{"hello": 1}')
    else:
        dataset.write_text(json.dumps(GOOD))
    if case == "missing":
        dataset.unlink()
    if case == "bad-vocab":
        vocab.write_text("just\nwords\n")
    rc = main(["prepare", "--dataset", str(dataset), "--vocab", str(vocab), "--cache-dir", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mlperf-bert prepare: error: ")
    assert str(vocab if case == "bad-vocab" else dataset) in lines[0]
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").iterdir())
