"""The official SQuAD v1.1 metric: hand-checked values (the golden line on a real prediction file is in
tests/integration/test_squad_v1_real.py)."""

from __future__ import annotations

import json

import pytest

from mlperf_bert.accuracy.squad_v1 import evaluate, exact_match_score, f1_score, normalize_answer
from mlperf_bert.errors import DataError
from mlperf_bert.squad.types import Example


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("The Denver Broncos!", "denver broncos"),
        ("  a  cat,  an apple;\tthe end ", "cat apple end"),
        ("theater Anthem", "theater anthem"),  # only whole words are articles
        ("Saint-Étienne's", "saintétiennes"),  # only ASCII punctuation is removed
        ("", ""),
    ],
)
def test_normalize_answer(text, normalized):
    assert normalize_answer(text) == normalized


def test_f1_and_exact_match_values():
    assert f1_score("the cat sat", "cat sat on mat") == pytest.approx(2 * 1.0 * 0.5 / 1.5, abs=1e-12)
    assert f1_score("Denver Broncos", "denver broncos.") == 1.0
    assert f1_score("cat cat", "cat") == pytest.approx(2 * 0.5 * 1.0 / 1.5, abs=1e-12)
    assert f1_score("dog", "cat") == 0
    assert f1_score("the", "cat") == 0  # normalizes to nothing
    assert exact_match_score("The Broncos.", "broncos")
    assert not exact_match_score("Broncos 24", "broncos")


def test_max_over_ground_truths():
    examples = [Example("q1", "?", (), ("Santa Clara", "Levi's Stadium")), Example("q2", "?", (), ("1990",))]
    scores = evaluate(examples, {"q1": "Levi's Stadium in Santa Clara", "q2": "1990"})
    # q1: EM 0; F1 max(2 tokens of 5 vs 2 -> 2*0.4*1/1.4, 2 tokens of 5 vs 2 -> same) = 0.571428...
    assert scores["exact_match"] == 50.0
    assert scores["f1"] == pytest.approx(100.0 * (2 * 0.4 / 1.4 + 1.0) / 2, abs=1e-12)


def test_nothing_to_score_is_an_error(tiny_squad):
    dev = json.loads(tiny_squad[0].read_text())
    with pytest.raises(DataError, match="no SQuAD question"):
        evaluate(dev, {}, qids=["not-a-question"])
    with pytest.raises(DataError, match="'data'"):
        evaluate({"version": "1.1"}, {})
