"""Accuracy mode: log reading, postprocessing (vs. a literal port of the reference loop), and the
synthetic accuracy log of docs/golden.md end to end (predictions.json sha256, EM/F1, get_final_text fallbacks)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from mlperf_bert.accuracy.evaluate import AccuracyResult, CoveredScore, evaluate_accuracy_log
from mlperf_bert.accuracy.logfile import read_accuracy_log
from mlperf_bert.sut.responses import PAD_LOGIT
from mlperf_bert.accuracy.postprocess import (
    EMPTY_ANSWER,
    FALLBACK_LENGTH,
    FALLBACK_NOT_FOUND,
    FALLBACK_UNMAPPED,
    BasicTokenizer,
    CandidateTable,
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


def write_log(path: Path, rows: dict[int, np.ndarray] | list[tuple[int, np.ndarray]], dtype="<f4", transposed=False):
    """A LoadGen-style accuracy log: [{"seq_id", "qsl_idx", "data": UPPER hex}] in the given order."""
    items = rows.items() if isinstance(rows, dict) else rows
    entries = []
    for seq_id, (qsl_idx, arr) in enumerate(items):
        arr = np.asarray(arr, dtype=dtype)
        if transposed:
            arr = np.ascontiguousarray(arr.T)
        entries.append({"seq_id": seq_id, "qsl_idx": qsl_idx, "data": arr.tobytes().hex().upper()})
    path.write_text(json.dumps(entries), encoding="utf-8")
    return path


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
# BasicTokenizer / get_final_text vs. a literal port of the reference's character loops


def literal_basic_tokenize(text: str) -> list[str]:
    """The reference BasicTokenizer, step by step, as the oracle for the optimised one."""
    import unicodedata

    def is_ws(c):
        return c in " \t\n\r" or unicodedata.category(c) == "Zs"

    def is_ctrl(c):
        return c not in "\t\n\r" and unicodedata.category(c).startswith("C")

    def is_punc(c):
        cp = ord(c)
        return 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126 or (
            unicodedata.category(c).startswith("P")
        )

    def is_cjk(cp):
        return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
                or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
                or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)

    cleaned = "".join(" " if is_ws(c) else c for c in text if not (ord(c) in (0, 0xFFFD) or is_ctrl(c)))
    spaced = "".join(f" {c} " if is_cjk(ord(c)) else c for c in cleaned)
    split_tokens = []
    for token in spaced.strip().split():
        if token not in ("[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"):
            token = token.lower()
            token = "".join(c for c in unicodedata.normalize("NFD", token) if unicodedata.category(c) != "Mn")
            output, start_new = [], True
            for c in token:
                if is_punc(c):
                    output.append([c])
                    start_new = True
                else:
                    if start_new:
                        output.append([])
                    start_new = False
                    output[-1].append(c)
            split_tokens.extend("".join(x) for x in output)
        else:
            split_tokens.append(token)
    return " ".join(split_tokens).strip().split()


def literal_get_final_text(pred_text: str, orig_text: str) -> str:
    def strip_spaces(text):
        chars, ns_to_s = [], {}
        for i, c in enumerate(text):
            if c == " ":
                continue
            ns_to_s[len(chars)] = i
            chars.append(c)
        return "".join(chars), ns_to_s

    tok_text = " ".join(literal_basic_tokenize(orig_text))
    start = tok_text.find(pred_text)
    if start == -1:
        return orig_text
    end = start + len(pred_text) - 1
    orig_ns, orig_map = strip_spaces(orig_text)
    tok_ns, tok_map = strip_spaces(tok_text)
    if len(orig_ns) != len(tok_ns):
        return orig_text
    tok_s_to_ns = {v: k for k, v in tok_map.items()}
    if start not in tok_s_to_ns or tok_s_to_ns[start] not in orig_map:
        return orig_text
    if end not in tok_s_to_ns or tok_s_to_ns[end] not in orig_map:
        return orig_text
    return orig_text[orig_map[tok_s_to_ns[start]] : orig_map[tok_s_to_ns[end]] + 1]


def test_basic_tokenizer_equals_literal_port_on_dev_and_odd_unicode():
    from mlperf_bert.config import default_shared_dir

    dev = json.loads((default_shared_dir() / "data" / "dev-v1.1.json").read_text(encoding="utf-8"))
    contexts = [p["context"] for a in dev["data"] for p in a["paragraphs"]]
    # Every context with non-ASCII text (674, the per-word path) and every 4th ASCII one (the fast path).
    texts = [t for i, t in enumerate(contexts) if not t.isascii() or i % 4 == 0]
    assert len(texts) > 1000
    rng = np.random.default_rng(7)
    alphabet = list("aZ '.-$`^[]UNK") + [chr(c) for c in (
        0x00A0, 0x00C9, 0x00E9, 0x0301, 0x0345, 0x0130, 0x03A3, 0x1E9E, 0x1FEF, 0x200B, 0x2028, 0x202F,
        0x3000, 0x4E2D, 0x00AD, 0xFEFF, 0xFFFD, 0x0000, 0x0085, 0xE000, 0x0378, 0x037E, 0xFB01, 0x2126)]
    texts += ["".join(rng.choice(alphabet, size=int(rng.integers(0, 25)))) for _ in range(3000)]
    tokenizer = BasicTokenizer()
    mismatches = [t for t in texts if tokenizer.tokenize(t) != literal_basic_tokenize(t)]
    assert mismatches == []


def test_get_final_text_equals_literal_port_on_random_spans():
    from mlperf_bert.config import default_shared_dir

    dev = json.loads((default_shared_dir() / "data" / "dev-v1.1.json").read_text(encoding="utf-8"))
    words = [p["context"].split() for a in dev["data"] for p in a["paragraphs"]]
    rng = np.random.default_rng(11)
    tokenizer = BasicTokenizer()
    for _ in range(3000):
        doc = words[int(rng.integers(len(words)))]
        i = int(rng.integers(len(doc)))
        orig = " ".join(doc[i : i + int(rng.integers(1, 6))])
        tok = literal_basic_tokenize(orig) or [""]
        a = int(rng.integers(len(tok)))
        b = int(rng.integers(a, len(tok)))
        pred = " ".join(tok[a : b + 1])
        if rng.random() < 0.3:  # character-level cuts: starts/ends inside words, on spaces, not found
            c = int(rng.integers(len(pred) + 1))
            pred = pred[c : c + int(rng.integers(1, 8))]
        assert get_final_text(pred, orig, tokenizer) == literal_get_final_text(pred, orig), (pred, orig)


# --------------------------------------------------------------------------------------------------
# docs/golden.md#synthetic-accuracy-log: a synthetic accuracy log and the reference's answers to it

GOLDEN_LOGITS_SHA256 = "1f79bd2b33ad95834d1338ed75d4fbf223fd1f2d72b3a5c70bb7606606e6c46f"
GOLDEN_PREDICTIONS_SHA256 = "9f3b74993955c846a13b7932b1f68d9355db0dde710141f8cdefc9064bf328d3"
GOLDEN_LINE = '{"exact_match": 0.6527909176915799, "f1": 4.042079889286734}'


@pytest.fixture(scope="module")
def dev_data(shared, tmp_path_factory):
    """(examples, features, vocab, cache_dir) of the real dev set, features built once into a tmp cache."""
    from mlperf_bert.config import DataPaths
    from mlperf_bert.squad.cache import load_features
    from mlperf_bert.squad.tokenization import load_vocab

    cache = tmp_path_factory.mktemp("cache")
    paths = DataPaths.defaults(shared, cache_dir=cache)
    examples, features = load_features(paths, SquadConfig(), progress=False)
    assert len(features) == 10_833 and len(examples) == 10_570
    return examples, features, load_vocab(paths.vocab), cache


@pytest.fixture(scope="module")
def synthetic(dev_data):
    """The docs/golden.md synthetic logits float32 [10833, 384, 2] and the boosted (start, end) of each feature."""
    _, features, _, _ = dev_data
    n = len(features)
    logits = np.random.default_rng(20261129).standard_normal((n, 384, 2)).astype(np.float32)
    context = (features.segment_ids == 1) & (features.input_mask == 1)
    spans = []
    for i in range(n):
        ctx = np.flatnonzero(context[i])[:-1]  # minus the final [SEP]
        c0, c1 = int(ctx[0]), int(ctx[-1])
        uid = int(features.unique_id[i])
        s, e = min(c0 + uid % 7, c1), min(c0 + uid % 7 + uid % 4, c1)
        logits[i, s, 0] += np.float32(8.0)
        logits[i, e, 1] += np.float32(8.0)
        spans.append((s, e))
    return logits, spans


@pytest.fixture(scope="module")
def synthetic_log(synthetic, tmp_path_factory):
    logits, _ = synthetic
    return write_log(tmp_path_factory.mktemp("log") / "mlperf_log_accuracy.json", dict(enumerate(logits)))


def test_synthetic_logits_are_golden(synthetic):
    logits, spans = synthetic
    assert spans[:8] == [(19, 19), (13, 14), (11, 13), (12, 15), (19, 19), (15, 16), (15, 17), (15, 18)]
    assert hashlib.sha256(logits.astype("<f4").tobytes()).hexdigest() == GOLDEN_LOGITS_SHA256


def test_synthetic_log_gives_reference_predictions_and_scores(dev_data, synthetic_log, tmp_path):
    examples, features, vocab, _ = dev_data
    result = evaluate_accuracy_log(synthetic_log, examples, features, vocab, SquadConfig(), out_dir=tmp_path)
    assert result.line == GOLDEN_LINE
    assert (tmp_path / "accuracy.txt").read_text() == GOLDEN_LINE + "\n"
    assert result.exact_match == pytest.approx(0.6527909176915799, abs=1e-9)
    assert result.f1 == pytest.approx(4.042079889286734, abs=1e-9)
    assert hashlib.sha256((tmp_path / "predictions.json").read_bytes()).hexdigest() == GOLDEN_PREDICTIONS_SHA256
    assert list(result.predictions) == [e.qas_id for e in examples]
    assert EMPTY_ANSWER not in result.predictions.values()
    counts = (result.questions_total, result.questions_covered, result.samples_in_log, result.duplicates)
    assert counts == (10_570, 10_570, 10_833, 0)
    assert result.complete and result.full_dev and result.covered is None
    assert result.log_sha256 == hashlib.sha256(synthetic_log.read_bytes()).hexdigest()


def test_synthetic_nbest_fallbacks_match_reference(dev_data, synthetic_log):
    """docs/golden.md#fallbacks: of 130,985 n-best candidates, 145 not found and 34 length fallbacks, no other kind."""
    from collections import Counter

    examples, features, vocab, _ = dev_data
    table = CandidateTable(features, read_accuracy_log(synthetic_log), SquadConfig())
    tokenizer = BasicTokenizer()
    reasons: Counter = Counter()
    for ex_idx, feature_ids in enumerate(example_features(features, len(examples))):
        spans = table.spans(feature_ids.tolist())
        reasons.update(e.fallback for e in nbest(examples[ex_idx], spans, features, vocab, 20, tokenizer))
    assert sum(reasons.values()) == 130_985
    assert reasons == {None: 130_985 - 145 - 34, FALLBACK_NOT_FOUND: 145, FALLBACK_LENGTH: 34}


def test_partial_log_scores_all_questions_and_reports_covered(dev_data, synthetic, tmp_path):
    """A partial log (as TEST01 writes): all 10,570 predictions, "empty" for the questions it does not
    cover, the headline over all of them (the reference's accuracy.txt line), and the covered score."""
    from mlperf_bert.accuracy.squad_v1 import evaluate

    examples, features, vocab, _ = dev_data
    logits, _ = synthetic
    full = postprocess(examples, features, dict(enumerate(logits)), SquadConfig(), vocab)
    log = write_log(tmp_path / "log.json", {i: logits[i] for i in range(500)})
    result = evaluate_accuracy_log(log, examples, features, vocab, SquadConfig(), out_dir=tmp_path)
    covered = sorted(set(features.example_index[:500].tolist()))
    assert (result.questions_total, result.questions_covered, result.samples_in_log) == (10_570, len(covered), 500)
    assert not result.complete and result.full_dev
    assert list(result.predictions) == [e.qas_id for e in examples]
    assert len(json.loads((tmp_path / "predictions.json").read_text())) == 10_570
    uncovered = [e.qas_id for i, e in enumerate(examples) if i not in set(covered)]
    assert len(uncovered) == 10_570 - len(covered) and all(result.predictions[q] == "empty" for q in uncovered)
    # Questions whose features all lie in the first 500 get the full-log answer.
    whole = [examples[i].qas_id for i in covered if not np.any(features.example_index[500:] == i)]
    assert len(whole) >= len(covered) - 1
    assert all(result.predictions[q] == full[q] for q in whole)
    expected = evaluate(examples, result.predictions)  # every question, as the reference
    assert (result.exact_match, result.f1) == (expected["exact_match"], expected["f1"])
    assert (tmp_path / "accuracy.txt").read_text() == json.dumps(expected) + "\n"
    part = evaluate(examples, result.predictions, qids=[examples[i].qas_id for i in covered])
    assert result.covered == CoveredScore(part["exact_match"], part["f1"], len(covered))
    assert result.f1 < 0.1 * result.covered.f1  # most questions are uncovered and count as "empty"


def test_dtype_layout_and_short_row_variants_give_same_predictions(dev_data, synthetic, tmp_path):
    examples, features, vocab, _ = dev_data
    logits, _ = synthetic
    n = 300
    lengths = features.lengths[:n]
    rows = logits[:n].astype(np.float16).astype(np.float32)  # representable in float16
    for i, length in enumerate(lengths):
        rows[i, length:] = PAD_LOGIT  # what a padding-free SUT leaves out
    cfg = SquadConfig()
    f32_log = read_accuracy_log(write_log(tmp_path / "f32.json", dict(enumerate(rows))))
    reference = postprocess(examples, features, f32_log, cfg, vocab)
    assert len(reference) > 250
    variants = {
        "f16": (dict(enumerate(rows)), "<f2", False, "float16", "rows"),
        "f32-transposed": (dict(enumerate(rows)), "<f4", True, "float32", "transposed"),
        "f32-short": ({i: rows[i, :length] for i, length in enumerate(lengths)}, "<f4", False, "float32", "rows"),
        "f16-short-transposed": (
            {i: rows[i, :length] for i, length in enumerate(lengths)}, "<f2", True, "float16", "transposed"),
    }
    for name, (data, np_dtype, transposed, dtype, layout) in variants.items():
        log = read_accuracy_log(write_log(tmp_path / f"{name}.json", data, dtype=np_dtype, transposed=transposed),
                                dtype=dtype, layout=layout)
        assert postprocess(examples, features, log, cfg, vocab) == reference, name


def test_cli_accuracy_partial_empty_and_truncated(dev_data, synthetic, tmp_path, capsys):
    from mlperf_bert.cli import main

    _, _, _, cache = dev_data
    logits, _ = synthetic
    log = write_log(tmp_path / "mlperf_log_accuracy.json", [(i, logits[i]) for i in (0, 1, 1, 2)])
    out = tmp_path / "out"
    assert main(["accuracy", "--log-file", str(log), "--cache-dir", str(cache), "--output-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "over all 10,570 questions of SQuAD v1.1 dev" in printed
    assert "partial log (3 of 10,833 samples)" in printed and "over the 3 questions it covers" in printed
    assert "1 repeated samples ignored (first kept), 0 with different outputs" in printed
    assert (out / "accuracy.txt").read_text() == printed.splitlines()[0] + "\n"
    assert len(json.loads((out / "predictions.json").read_text())) == 10_570

    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    assert main(["accuracy", "--log-file", str(empty), "--cache-dir", str(cache)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "has no samples" in err and "empty.json" in err

    cut = tmp_path / "cut.json"
    cut.write_text(log.read_text()[:-100])
    assert main(["accuracy", "--log-file", str(cut), "--cache-dir", str(cache)]) == 2
    err = capsys.readouterr().err
    assert "not valid JSON (Unterminated string starting at char " in err and "at at" not in err


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
