"""Accuracy mode: LoadGen accuracy log -> answer texts -> official SQuAD v1.1 EM/F1.

``logfile`` (read ``mlperf_log_accuracy.json``) -> ``postprocess`` (logits -> answers, as the reference
``write_predictions``) -> ``squad_v1`` (the official metric) ; ``evaluate`` chains them and writes
predictions.json / accuracy.txt.
"""

from mlperf_bert.accuracy.evaluate import AccuracyResult, evaluate_accuracy_log
from mlperf_bert.accuracy.logfile import AccuracyLog, read_accuracy_log
from mlperf_bert.accuracy.postprocess import get_final_text, postprocess
from mlperf_bert.accuracy.squad_v1 import evaluate, exact_match_score, f1_score, normalize_answer

__all__ = [
    "AccuracyLog",
    "AccuracyResult",
    "evaluate",
    "evaluate_accuracy_log",
    "exact_match_score",
    "f1_score",
    "get_final_text",
    "normalize_answer",
    "postprocess",
    "read_accuracy_log",
]
