"""Accuracy mode on hand-made features: log reading, postprocessing (vs. a literal port of the reference loop),
scoring and the files written. The real dev set's golden values are in tests/integration/test_accuracy_real.py."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from fakes import write_log
from mlperf_bert.accuracy.evaluate import AccuracyResult, CoveredScore, evaluate_accuracy_log
from mlperf_bert.accuracy.logfile import read_accuracy_log
from mlperf_bert.sut.responses import PAD_LOGIT
from mlperf_bert.accuracy.postprocess import (
    EMPTY_ANSWER,
    FALLBACK_LENGTH,
    FALLBACK_NOT_FOUND,
    FALLBACK_UNMAPPED,
    BasicTokenizer,
    example_features,
    example_spans,
    get_final_text,
    get_final_text_with_reason,
    nbest,
    postprocess,
)
from mlperf_bert.config import SquadConfig
from mlperf_bert.errors import DataError
from mlperf_bert.squad.types import Example, Features

# --------------------------------------------------------------------------------------------------
# Helpers


L = 16  # window length of the hand-made features
CFG = SquadConfig(max_seq_length=L)
VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "who", "won", "?", "steve", "smith", "'", "s", "team",
    "super", "bowl", "50", ".", "em", "##bed", "##ding", "cafe",
]
ID = {piece: i for i, piece in enumerate(VOCAB)}


def make_features(windows) -> Features:
    """Features from hand-made windows: (example_index, question pieces, [(piece, orig word, max ctx)])."""
    n = len(windows)
    arrays = {k: np.zeros((n, L), np.int32) for k in ("input_ids", "input_mask", "segment_ids")}
    token_to_orig = np.full((n, L), -1, np.int32)
    max_ctx = np.zeros((n, L), bool)
    for i, (_, question, context) in enumerate(windows):
        pieces = ["[CLS]", *question, "[SEP]"]
        first = len(pieces)
        pieces += [p for p, _, _ in context] + ["[SEP]"]
        assert len(pieces) <= L
        arrays["input_ids"][i, : len(pieces)] = [ID[p] for p in pieces]
        arrays["input_mask"][i, : len(pieces)] = 1
        arrays["segment_ids"][i, first : len(pieces)] = 1
        for k, (_, orig, is_max) in enumerate(context):
            token_to_orig[i, first + k] = orig
            max_ctx[i, first + k] = is_max
    return Features(
        **arrays,
        example_index=np.array([w[0] for w in windows], np.int32),
        unique_id=1_000_000_000 + np.arange(n, dtype=np.int64),
        token_to_orig=token_to_orig,
        token_is_max_context=max_ctx,
    )


# Example 0: "Steve Smith's team won Super Bowl 50." ; pieces start at position 5.
EX0 = Example("q0", "who won?", ("Steve", "Smith's", "team", "won", "Super", "Bowl", "50."), ("Steve Smith",))
CTX0 = [("steve", 0, True), ("smith", 1, True), ("'", 1, True), ("s", 1, True), ("team", 2, True),
        ("won", 3, True), ("super", 4, True), ("bowl", 5, True), ("50", 6, True), (".", 6, True)]
# Example 1: two windows over "embedding Café team": window A has all, window B repeats "cafe team".
EX1 = Example("q1", "who?", ("embedding", "Cafe\u0301", "team"), ("team",))
CTX1A = [("em", 0, True), ("##bed", 0, True), ("##ding", 0, True), ("cafe", 1, False), ("team", 2, False)]
CTX1B = [("cafe", 1, True), ("team", 2, True)]
Q = ["who", "won", "?"]
EXAMPLES = [EX0, EX1]
FEATURES = make_features([(0, Q, CTX0), (1, ["who", "?"], CTX1A), (1, ["who", "?"], CTX1B)])


def peaks(start: int, end: int, *, start_value=5.0, end_value=5.0) -> np.ndarray:
    """float32 [L, 2] of zeros with one start peak and one end peak."""
    out = np.zeros((L, 2), np.float32)
    out[start, 0] = start_value
    out[end, 1] = end_value
    return out


# --------------------------------------------------------------------------------------------------
# BasicTokenizer and get_final_text


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("Steve Smith's Café", ["steve", "smith", "'", "s", "cafe"]),
        ("x\u200by\x00z\ufffd", ["xyz"]),  # Cf, NUL and U+FFFD removed
        ("a\u00a0b\tc\u2028d", ["a", "b", "c", "d"]),  # Zs, tab, and U+2028 (str.split) separate
        ("中文ab", ["中", "文", "ab"]),
        ("[UNK] [Unk]", ["[UNK]", "[", "unk", "]"]),  # never_split words stay whole and cased
        ("Cafe\u0301!", ["cafe", "!"]),
        ("\u0301 x", ["x"]),  # a word of combining marks only vanishes
        ("$5^2`", ["$", "5", "^", "2", "`"]),  # non-letter ASCII counts as punctuation
    ],
)
def test_basic_tokenizer(text, tokens):
    assert BasicTokenizer().tokenize(text) == tokens


@pytest.mark.parametrize(
    ("pred", "orig", "final", "reason"),
    [
        ("steve smith", "Steve Smith's", "Steve Smith", None),
        ("smith", "Smith's", "Smith", None),
        ("s", "Smith's", "S", None),  # first occurrence wins, as in the reference
        ("cafe", "Café!", "Café", None),  # precomposed: same length after stripping the accent
        ("中", "中文", "中", None),
        ("the [UNK] sound", "the ʃʒ sound", "the ʃʒ sound", FALLBACK_NOT_FOUND),
        ("ding", "embed", "embed", FALLBACK_NOT_FOUND),
        ("cafe", "Cafe\u0301", "Cafe\u0301", FALLBACK_LENGTH),  # combining accent disappears
        ("xy", "x\u200by", "x\u200by", FALLBACK_LENGTH),  # zero-width space disappears
        (" smith", "Steve Smith", "Steve Smith", FALLBACK_UNMAPPED),  # starts on a space
    ],
)
def test_get_final_text(pred, orig, final, reason):
    assert get_final_text_with_reason(pred, orig) == (final, reason)
    assert get_final_text(pred, orig) == final


# --------------------------------------------------------------------------------------------------
# Postprocessing on hand-made features


def test_best_valid_span_is_projected_to_original_words():
    preds = postprocess(EXAMPLES, FEATURES, {0: peaks(5, 6)}, CFG, VOCAB)
    assert preds == {"q0": "Steve Smith", "q1": "empty"}  # "Smith's" cut back to "Smith"; q1 not in the log


def test_invalid_spans_are_skipped():
    lg = np.full((L, 2), -10.0, np.float32)
    lg[5, 0] = lg[6, 1] = 3.0  # the answer: "steve smith" = 6
    lg[1, 0] = lg[2, 1] = 9.0  # best pair lies in the question
    lg[15, 0] = lg[15, 1] = 8.0  # the final [SEP] is not context
    lg[12, 0] = 7.0  # "bowl" as start: its best end (6) is before it
    assert postprocess(EXAMPLES, FEATURES, {0: lg}, CFG, VOCAB) == {"q0": "Steve Smith", "q1": "empty"}


def test_max_answer_length_limits_span():
    lg = peaks(5, 13, start_value=4.0, end_value=4.0)  # "Steve ... 50": 9 pieces
    lg[11, 0] = 1.0  # "super"
    assert postprocess(EXAMPLES, FEATURES, {0: lg}, CFG, VOCAB)["q0"] == "Steve Smith's team won Super Bowl 50"
    short = SquadConfig(max_seq_length=L, max_answer_length=3)
    assert postprocess(EXAMPLES, FEATURES, {0: lg}, short, VOCAB)["q0"] == "Super Bowl 50"


def test_start_must_be_max_context_and_best_feature_wins():
    # Window A: the best start "cafe" (pos 7) is not max context there -> skipped; "embedding" = 2.
    a = np.full((L, 2), -10.0, np.float32)
    a[7, 0] = 9.0
    a[4, 0] = a[6, 1] = 1.0
    # Window B: "cafe team" = 4 beats window A's 2.
    b = np.full((L, 2), -10.0, np.float32)
    b[4, 0] = b[5, 1] = 2.0
    assert postprocess(EXAMPLES, FEATURES, {1: a, 2: b}, CFG, VOCAB)["q1"] == "Cafe\u0301 team"  # length fallback
    assert postprocess(EXAMPLES, FEATURES, {1: a}, CFG, VOCAB)["q1"] == "embedding"


def test_ties_keep_first_feature_and_lower_position():
    a = np.zeros((L, 2), np.float32)  # every logit equal: first valid pair in rank order
    assert postprocess(EXAMPLES, FEATURES, {0: a}, CFG, VOCAB)["q0"] == "Steve"  # start 5, end 5
    in_a = peaks(4, 6, start_value=1.0, end_value=1.0)  # window A: "em ##bed ##ding" = 2
    in_b = peaks(4, 5, start_value=1.0, end_value=1.0)  # window B: "cafe team" = 2
    assert postprocess(EXAMPLES, FEATURES, {1: in_a, 2: in_b}, CFG, VOCAB)["q1"] == "embedding"
    in_b[5, 1] = np.nextafter(np.float32(1.0), np.float32(2.0))  # one ulp more: window B wins
    assert postprocess(EXAMPLES, FEATURES, {1: in_a, 2: in_b}, CFG, VOCAB)["q1"] == "Cafe\u0301 team"


def test_no_valid_span_answers_empty():
    lg = np.full((L, 2), -1.0, np.float32)
    lg[:4] = 5.0  # [CLS] and the question: with n_best 3 every candidate lies outside the context
    tiny = SquadConfig(max_seq_length=L, n_best_size=3)
    assert postprocess(EXAMPLES, FEATURES, {0: lg}, tiny, VOCAB) == {"q0": EMPTY_ANSWER, "q1": EMPTY_ANSWER}


def test_partial_logits_answer_every_question():
    """As the reference: a question none of whose features has logits is answered "empty"."""
    preds = postprocess(EXAMPLES, FEATURES, {2: peaks(4, 5)}, CFG, VOCAB)
    assert preds == {"q0": EMPTY_ANSWER, "q1": "Cafe\u0301 team"}
    assert postprocess(EXAMPLES, FEATURES, {}, CFG, VOCAB) == {"q0": EMPTY_ANSWER, "q1": EMPTY_ANSWER}


def test_bad_logits_are_data_errors():
    with pytest.raises(DataError, match="sample 3 but there are only 3 features"):
        postprocess(EXAMPLES, FEATURES, {3: peaks(5, 6)}, CFG, VOCAB)
    with pytest.raises(DataError, match=r"shape \(384, 2\)"):
        postprocess(EXAMPLES, FEATURES, {0: np.zeros((384, 2), np.float32)}, CFG, VOCAB)


def reference_answers(examples, features, logits, cfg, vocab):
    """A literal port of the reference write_predictions loop (Python sorts, dicts), as the oracle."""
    out = {}
    for ex_idx, ex in enumerate(examples):
        feats = [f for f in range(len(features)) if features.example_index[f] == ex_idx]
        prelim = []
        for f in feats:
            if f not in logits:
                continue
            start_l, end_l = logits[f][:, 0].tolist(), logits[f][:, 1].tolist()
            best = lambda v: [i for i, _ in sorted(enumerate(v), key=lambda x: x[1], reverse=True)][: cfg.n_best_size]
            n_tokens = int(features.input_mask[f].sum())
            t2o = {i: int(o) for i, o in enumerate(features.token_to_orig[f]) if o >= 0}
            is_max = {i: bool(features.token_is_max_context[f, i]) for i in t2o}
            for s in best(start_l):
                for e in best(end_l):
                    if s >= n_tokens or e >= n_tokens or s not in t2o or e not in t2o:
                        continue
                    if not is_max.get(s, False) or e < s or e - s + 1 > cfg.max_answer_length:
                        continue
                    prelim.append((f, s, e, start_l[s], end_l[e]))
        prelim.sort(key=lambda p: p[3] + p[4], reverse=True)
        if not prelim:
            out[ex.qas_id] = EMPTY_ANSWER
            continue
        f, s, e = prelim[0][:3]
        tok = " ".join(vocab[i] for i in features.input_ids[f, s : e + 1]).replace(" ##", "").replace("##", "")
        orig = " ".join(ex.doc_tokens[features.token_to_orig[f, s] : features.token_to_orig[f, e] + 1])
        out[ex.qas_id] = get_final_text(" ".join(tok.strip().split()), orig)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_matches_literal_reference_loop_with_many_ties(seed):
    """Small-integer logits make ties everywhere: the vectorised path must order them like the reference."""
    rng = np.random.default_rng(seed)
    logits = {f: rng.integers(-2, 3, size=(L, 2)).astype(np.float32) for f in range(3) if rng.random() < 0.8}
    cfg = SquadConfig(max_seq_length=L, n_best_size=int(rng.integers(1, 8)), max_answer_length=int(rng.integers(1, 5)))
    expected = reference_answers(EXAMPLES, FEATURES, logits, cfg, VOCAB)
    assert postprocess(EXAMPLES, FEATURES, logits, cfg, VOCAB) == expected
    # The slow n-best path agrees on the first entry.
    for ex_idx, feats in enumerate(example_features(FEATURES, len(EXAMPLES))):
        present = [f for f in feats.tolist() if f in logits]
        if not present:
            continue
        entries = nbest(EXAMPLES[ex_idx], example_spans(FEATURES, present, logits, cfg), FEATURES, VOCAB)
        assert (entries[0].text if entries else EMPTY_ANSWER) == expected[EXAMPLES[ex_idx].qas_id]


# --------------------------------------------------------------------------------------------------
# Accuracy log reading


def test_read_float32_rows_roundtrip_and_hash(tmp_path):
    rng = np.random.default_rng(0)
    rows = {3: rng.standard_normal((384, 2)).astype(np.float32), 0: rng.standard_normal((384, 2)).astype(np.float32)}
    path = write_log(tmp_path / "log.json", rows)
    log = read_accuracy_log(path, num_samples=4)
    assert list(log) == [3, 0]
    assert all(np.array_equal(log[k], rows[k]) for k in rows)
    assert log[3].dtype == np.float32 and log[3].shape == (384, 2)
    assert (log.entries, log.duplicates, log.differing_duplicates) == (2, 0, 0)
    assert log.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    text = path.read_text()
    assert text[text.index('"data": "') + 9] in "0123456789ABCDEF"


def test_float16_transposed_and_short_rows_give_same_logits(tmp_path):
    rng = np.random.default_rng(1)
    full = rng.standard_normal((384, 2)).astype(np.float16).astype(np.float32)  # representable in fp16
    full[200:] = PAD_LOGIT
    f32 = read_accuracy_log(write_log(tmp_path / "a.json", {0: full}))
    f16 = read_accuracy_log(write_log(tmp_path / "b.json", {0: full}, dtype="<f2"), dtype="float16")
    tr = read_accuracy_log(write_log(tmp_path / "c.json", {0: full}, transposed=True), layout="transposed")
    short = read_accuracy_log(write_log(tmp_path / "d.json", {0: full[:200]}))
    short_tr16 = read_accuracy_log(
        write_log(tmp_path / "e.json", {0: full[:200]}, dtype="<f2", transposed=True),
        dtype="float16", layout="transposed",
    )
    for other in (f16, tr, short, short_tr16):
        assert np.array_equal(other[0], f32[0])
    # Transposed bytes read as rows are a different (wrong) array: the layout must be told.
    assert not np.array_equal(read_accuracy_log(tmp_path / "c.json")[0], f32[0])


def test_duplicates_keep_first_and_are_counted(tmp_path):
    a, b = np.zeros((384, 2), np.float32), np.ones((384, 2), np.float32)
    path = write_log(tmp_path / "log.json", [(5, a), (5, a), (6, b), (5, b)])
    log = read_accuracy_log(path)
    assert np.array_equal(log[5], a) and np.array_equal(log[6], b)
    assert (len(log), log.entries, log.duplicates, log.differing_duplicates) == (2, 4, 2, 1)


@pytest.mark.parametrize(
    ("content", "kwargs", "message"),
    [
        (None, {}, "not found"),
        ("[]", {}, "has no samples"),
        ('[{"seq_id": 0, "qsl_idx": 0, "data": "0000', {}, "not valid JSON"),
        ('{"qsl_idx": 0}', {}, "not a JSON list"),
        ('[{"seq_id": 0, "data": "00"}]', {}, "lacks 'qsl_idx'/'data'"),
        ('[{"seq_id": 0, "qsl_idx": 0, "data": "0000000000"}]', {}, "5 bytes, not a multiple of 8"),
        ('[{"seq_id": 0, "qsl_idx": 0, "data": "000000"}]', {"dtype": "float16"}, "3 bytes, not a multiple of 4"),
        ('[{"seq_id": 0, "qsl_idx": 0, "data": "ZZ"}]', {}, "invalid hex"),
        ('[{"seq_id": 0, "qsl_idx": 7, "data": ""}]', {"num_samples": 7}, r"qsl_idx 7 outside \[0, 7\)"),
        ('[{"seq_id": 0, "qsl_idx": -1, "data": ""}]', {}, "qsl_idx -1 outside"),
        ('[{"seq_id": 0, "qsl_idx": 0, "data": "' + "00" * 8 * 3 + '"}]', {"seq_len": 2}, "3 positions"),
    ],
)
def test_bad_logs_are_one_line_data_errors(tmp_path, content, kwargs, message):
    path = tmp_path / "mlperf_log_accuracy.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataError, match=message) as info:
        read_accuracy_log(path, **kwargs)
    assert "\n" not in str(info.value) and "mlperf_log_accuracy.json" in str(info.value)


def test_empty_data_is_all_padding(tmp_path):
    log = read_accuracy_log(write_log(tmp_path / "log.json", {0: np.zeros((0, 2), np.float32)}))
    assert np.all(log[0] == PAD_LOGIT)


def test_evaluate_accuracy_log_writes_reference_files(tmp_path):
    log = write_log(tmp_path / "log.json", {0: peaks(5, 6), 1: peaks(4, 6), 2: peaks(4, 5)})
    result = evaluate_accuracy_log(log, EXAMPLES, FEATURES, VOCAB, CFG, out_dir=tmp_path / "out")
    assert result.predictions == {"q0": "Steve Smith", "q1": "embedding"}
    assert (result.exact_match, result.f1) == (50.0, 50.0)
    assert (result.questions_total, result.questions_covered, result.samples_in_log) == (2, 2, 3)
    assert result.complete and result.covered is None and result.line == '{"exact_match": 50.0, "f1": 50.0}'
    assert (tmp_path / "out" / "accuracy.txt").read_text() == '{"exact_match": 50.0, "f1": 50.0}\n'
    assert (tmp_path / "out" / "predictions.json").read_text() == (
        '{\n    "q0": "Steve Smith",\n    "q1": "embedding"\n}\n'
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["accuracy.txt", "predictions.json"]


def test_evaluate_partial_log_answers_every_question(tmp_path):
    """A partial log: the question it does not cover is answered "empty" and scored, as the reference does;
    the score over the covered question alone is reported beside it."""
    log = write_log(tmp_path / "log.json", {2: peaks(5, 5)})  # "team" only, in q1's second window
    result = evaluate_accuracy_log(log, EXAMPLES, FEATURES, VOCAB, CFG, out_dir=tmp_path / "out")
    assert isinstance(result, AccuracyResult)
    assert result.predictions == {"q0": "empty", "q1": "team"}
    assert (result.exact_match, result.f1, result.questions_total, result.questions_covered) == (50.0, 50.0, 2, 1)
    assert not result.complete and result.covered == CoveredScore(100.0, 100.0, 1)
    assert (tmp_path / "out" / "accuracy.txt").read_text() == '{"exact_match": 50.0, "f1": 50.0}\n'
    assert json.loads((tmp_path / "out" / "predictions.json").read_text()) == {"q0": "empty", "q1": "team"}
    recorded = result.to_dict()
    assert recorded["covered"] == {"exact_match": 100.0, "f1": 100.0, "questions": 1}
    assert (recorded["f1"], recorded["complete"], recorded["full_dev"]) == (50.0, False, False)


# --------------------------------------------------------------------------------------------------
# Every dataset question gets a prediction (issue: questions without a feature were dropped)


def test_questions_without_features_are_answered_empty(tmp_path, capsys):
    """Three questions, two over an empty context ("" and "   ": no features): three predictions, two
    "empty", EM = F1 = 100/3 over all three (we printed 100.0 over 1 of 3 before), in accuracy.txt too."""
    from fakes import write_tiny_squad
    from mlperf_bert.cli import main
    from mlperf_bert.config import DataPaths
    from mlperf_bert.squad.cache import load_features

    dataset, vocab_path = write_tiny_squad(tmp_path / "data", contexts=("", "   ", "the cat sat on the mat"))
    examples, features = load_features(DataPaths(dataset, vocab_path, tmp_path / "cache"), SquadConfig(), False)
    assert (len(examples), len(features)) == (3, 1)
    vocab = vocab_path.read_text().split()
    cat = int(np.flatnonzero(features.input_ids[0] == vocab.index("cat"))[-1])  # in the context, not the question
    log = write_log(tmp_path / "mlperf_log_accuracy.json", {0: peaks(cat, cat, start_value=9, end_value=9)})

    result = evaluate_accuracy_log(log, examples, features, vocab, SquadConfig(), out_dir=tmp_path / "out")
    assert result.predictions == {"q0-0": "empty", "q1-0": "empty", "q2-0": "cat"}
    assert result.exact_match == result.f1 == 100 / 3
    assert (result.questions_total, result.questions_covered, result.questions_without_features) == (3, 1, 2)
    assert result.complete and result.covered is None and not result.full_dev

    rc = main(["accuracy", "--log-file", str(log), "--dataset", str(dataset), "--vocab", str(vocab_path),
               "--cache-dir", str(tmp_path / "cache"), "--output-dir", str(tmp_path / "cli")])
    out = capsys.readouterr().out.splitlines()
    assert rc == 0
    assert out[0] == '{"exact_match": 33.333333333333336, "f1": 33.333333333333336}'
    assert out[1].startswith("EM 33.333  F1 33.333 over all 3 questions of the dataset: a subset")
    assert "2 question(s) have no feature" in out[2]
    assert (tmp_path / "cli" / "accuracy.txt").read_text() == out[0] + "\n"
    assert len(json.loads((tmp_path / "cli" / "predictions.json").read_text())) == 3


def test_run_files_get_one_mode(tmp_path):
    """accuracy.txt and predictions.json get 0666 less the umask like every other run file (were 0600)."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        log = write_log(tmp_path / "log.json", {0: peaks(5, 6), 1: peaks(4, 6), 2: peaks(4, 5)})
        evaluate_accuracy_log(log, EXAMPLES, FEATURES, VOCAB, CFG, out_dir=tmp_path / "out")
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "out").iterdir()}
    finally:
        os.umask(old)
    assert modes == {"accuracy.txt": 0o644, "predictions.json": 0o644}
