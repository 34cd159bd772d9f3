"""Accuracy mode on the real dev set: the optimised BasicTokenizer / get_final_text against literal ports of the
reference's loops over every dev context, and the synthetic accuracy log of docs/golden.md end to end
(predictions.json sha256, EM/F1, get_final_text fallbacks)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from fakes import write_log
from mlperf_bert.accuracy.evaluate import CoveredScore, evaluate_accuracy_log
from mlperf_bert.accuracy.logfile import read_accuracy_log
from mlperf_bert.accuracy.postprocess import (
    EMPTY_ANSWER,
    FALLBACK_LENGTH,
    FALLBACK_NOT_FOUND,
    BasicTokenizer,
    CandidateTable,
    example_features,
    get_final_text,
    nbest,
    postprocess,
)
from mlperf_bert.config import SquadConfig
from mlperf_bert.sut.responses import PAD_LOGIT

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
