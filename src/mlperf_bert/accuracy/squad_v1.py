"""The official SQuAD v1.1 metric (exact match and token F1), as ``evaluate-v1.1.py`` computes it.

Source of every rule: the official evaluation script of SQuAD v1.1 (Rajpurkar et al., shipped by the
MLPerf reference as ``language/bert/evaluate_v1.1.py``), docs/scoring.md#squad-v11-metric:

- normalize: lower-case, drop ASCII punctuation (``string.punctuation``), replace the whole words
  a/an/the by a space, collapse whitespace;
- EM: normalized strings equal; F1: harmonic mean of token precision/recall over the bag of normalized
  tokens; each is the max over the gold answers;
- both averaged over the questions in dataset order and multiplied by 100.

Sums are accumulated in the official order (dataset order, EM as an int, F1 as a float), so the
result is bit-identical to the official script, e.g. ``{"exact_match": 86.20624408703878,
"f1": 92.19557978351145}`` for Google's BERT-ensemble dev predictions (docs/golden.md#official-scorer).

Deliberate difference: the MLPerf copy of the script has ``--max_examples N``, which scores N-1
questions but divides by N (docs/scoring.md#quirks-we-do-not-copy). Here a subset is scored with ``qids`` and
the average is over exactly the questions scored.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from mlperf_bert.errors import DataError
from mlperf_bert.squad.types import Example

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """Normalize an answer like the official script: lower, strip punctuation, drop articles, fix spaces.

    Example: ``normalize_answer("The  Broncos!") == "broncos"``.
    """
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def f1_score(prediction: str, ground_truth: str) -> float:
    """Token-level F1 in [0, 1] between two answers after ``normalize_answer`` (0 when nothing overlaps).

    Returns the int 0 when no token is shared, exactly as the official script (it only matters for sums).
    """
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(ground_truth).split()
    common = Counter(pred_tokens) & Counter(gold_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(pred_tokens)
    recall = 1.0 * num_same / len(gold_tokens)
    return (2 * precision * recall) / (precision + recall)


def exact_match_score(prediction: str, ground_truth: str) -> bool:
    """True when both answers are equal after ``normalize_answer``."""
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def _max_over_ground_truths(metric, prediction: str, ground_truths: Sequence[str]):
    return max(metric(prediction, gold) for gold in ground_truths)


def _questions(dataset: Mapping[str, Any] | Sequence[Example]) -> Iterator[tuple[str, list[str]]]:
    """(qid, gold answer texts) in dataset order, from a SQuAD JSON dict, its ``data`` list or Examples."""
    if isinstance(dataset, Mapping):
        if "data" not in dataset:
            raise DataError("SQuAD dataset JSON has no 'data' list; pass the parsed dev-v1.1.json")
        dataset = dataset["data"]
    for item in dataset:
        if isinstance(item, Example):
            yield item.qas_id, list(item.answers)
            continue
        for paragraph in item["paragraphs"]:
            for qa in paragraph["qas"]:
                yield qa["id"], [answer["text"] for answer in qa["answers"]]


def evaluate(
    dataset: Mapping[str, Any] | Sequence[Any],
    predictions: Mapping[str, str],
    qids: Iterable[str] | None = None,
) -> dict[str, float]:
    """Official SQuAD v1.1 EM and F1 (percent) of ``predictions`` against the gold answers.

    Args:
        dataset: the parsed ``dev-v1.1.json`` (dict with ``data``), its ``data`` list, or the
            ``Example`` list of ``read_squad`` (gold texts in ``Example.answers``).
        predictions: qid -> answer text.
        qids: score only these questions (e.g. those a partial accuracy log covers) and average over
            them; None scores every question of the dataset, an unanswered one scoring 0 as in the
            official script.

    Returns:
        ``{"exact_match": EM, "f1": F1}`` in percent, floats in this key order, so that
        ``json.dumps`` of it is the official script's output line.

    Raises:
        DataError: no question to score (empty dataset or ``qids`` matching none), or a question
            without gold answers.
    """
    wanted = None if qids is None else set(qids)
    exact_match = 0
    f1 = 0.0
    total = 0
    for qid, gold in _questions(dataset):
        if wanted is not None and qid not in wanted:
            continue
        total += 1
        if qid not in predictions:
            continue
        if not gold:
            raise DataError(f"SQuAD question {qid} has no gold answer; is this a SQuAD v1.1 dev file?")
        prediction = predictions[qid]
        exact_match += _max_over_ground_truths(exact_match_score, prediction, gold)
        f1 += _max_over_ground_truths(f1_score, prediction, gold)
    if total == 0:
        raise DataError("no SQuAD question to score: the dataset is empty or no question id was selected")
    return {"exact_match": 100.0 * exact_match / total, "f1": 100.0 * f1 / total}
