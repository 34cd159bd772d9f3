"""The official SQuAD v1.1 metric on the real dev set: the golden line of Google's BERT-ensemble predictions."""

from __future__ import annotations

import json

import pytest

from mlperf_bert.accuracy.squad_v1 import evaluate, exact_match_score, f1_score
from mlperf_bert.config import default_shared_dir
from mlperf_bert.squad.types import Example

pytestmark = pytest.mark.usefixtures("shared")  # fails, not skips, without ../shared

DATA = default_shared_dir() / "data"
#: docs/golden.md#official-scorer.
GOLDEN_LINE = '{"exact_match": 86.20624408703878, "f1": 92.19557978351145}'


@pytest.fixture(scope="module")
def dev() -> dict:
    return json.loads((DATA / "dev-v1.1.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def google_predictions() -> dict[str, str]:
    return json.loads((DATA / "predictions-bert-ensemble-google-dev-v1.1.json").read_text(encoding="utf-8"))


def test_golden_line_google_ensemble(dev, google_predictions):
    """docs/golden.md: evaluate-v1.1.py prints exactly this line for Google's BERT-ensemble predictions."""
    scores = evaluate(dev, google_predictions)
    assert json.dumps(scores) == GOLDEN_LINE
    assert scores["exact_match"] == pytest.approx(86.20624408703878, abs=1e-9)
    assert scores["f1"] == pytest.approx(92.19557978351145, abs=1e-9)


def test_examples_input_equals_json_input(dev, google_predictions):
    """Scoring from Example objects (gold texts in .answers) gives the bit-identical result."""
    examples = [
        Example(qa["id"], qa["question"], (), tuple(a["text"] for a in qa["answers"]))
        for article in dev["data"]
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    ]
    assert len(examples) == 10_570
    assert json.dumps(evaluate(examples, google_predictions)) == GOLDEN_LINE


def test_subset_averages_over_the_subset_only(dev, google_predictions):
    """qids scores exactly those questions (no max_examples N-1/N quirk), in dataset order."""
    qids = [qa["id"] for qa in dev["data"][0]["paragraphs"][0]["qas"]]
    scores = evaluate(dev, google_predictions, qids=qids)
    # Recompute by hand over the same questions.
    qas = dev["data"][0]["paragraphs"][0]["qas"]
    em = sum(max(exact_match_score(google_predictions[q["id"]], a["text"]) for a in q["answers"]) for q in qas)
    f1 = sum(max(f1_score(google_predictions[q["id"]], a["text"]) for a in q["answers"]) for q in qas)
    assert len(qas) == 30
    assert scores == {"exact_match": 100.0 * em / 30, "f1": 100.0 * f1 / 30}
    assert scores["exact_match"] == pytest.approx(29 / 30 * 100, abs=1e-9)


def test_unanswered_question_scores_zero(dev, google_predictions):
    preds = dict(google_predictions)
    del preds["56be4db0acb8001400a502ec"]  # the first question; Google answered it exactly
    partial = evaluate(dev["data"], preds)
    assert 86.20624408703878 - partial["exact_match"] == pytest.approx(100.0 / 10_570, abs=1e-9)
