"""Accuracy mode end to end: LoadGen accuracy log -> predictions -> official SQuAD v1.1 EM/F1.

What the reference ``accuracy-squad.py`` + ``evaluate_v1.1.py`` do, in one call and without a
subprocess: read the log (``read_accuracy_log``), postprocess with n_best 20 / max_answer_length 30
(``postprocess``), score (``squad_v1.evaluate``), and write ``predictions.json`` and ``accuracy.txt``
byte for byte as the reference writes/prints them.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mlperf_bert.accuracy.logfile import read_accuracy_log
from mlperf_bert.accuracy.postprocess import postprocess
from mlperf_bert.accuracy.squad_v1 import evaluate
from mlperf_bert.config import SquadConfig
from mlperf_bert.errors import DataError
from mlperf_bert.squad.types import Example, Features

#: File names in the output folder (the reference's ``--out_file`` default name; the submission's name).
PREDICTIONS_FILE = "predictions.json"
ACCURACY_FILE = "accuracy.txt"


@dataclass(frozen=True)
class AccuracyResult:
    """Scores of one accuracy log.

    Attributes:
        exact_match: SQuAD v1.1 EM in percent over the questions scored.
        f1: SQuAD v1.1 token F1 in percent over the questions scored.
        questions_scored: questions with at least one feature in the log (= questions_total when complete).
        questions_total: questions in the dataset (10,570 for dev).
        samples_in_log: distinct QSL samples (features) in the log (10,833 when complete).
        duplicates: log entries dropped because their sample appeared earlier.
        differing_duplicates: of those, how many differ from the kept response (non-deterministic SUT).
        log_sha256: sha256 of the log file (the ``hash=`` of a submission's accuracy.txt).
        predictions: qas_id -> answer text, in example order (what predictions.json holds).
    """

    exact_match: float
    f1: float
    questions_scored: int
    questions_total: int
    samples_in_log: int
    duplicates: int
    differing_duplicates: int
    log_sha256: str
    predictions: dict[str, str] = field(repr=False, compare=False)

    @property
    def complete(self) -> bool:
        """True when every question was scored (a full accuracy run, not a partial/audit log)."""
        return self.questions_scored == self.questions_total

    @property
    def line(self) -> str:
        """The evaluator's output line, e.g. ``{"exact_match": 86.2..., "f1": 92.1...}``."""
        return json.dumps({"exact_match": self.exact_match, "f1": self.f1})


def _write_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and a rename in the same folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def evaluate_accuracy_log(
    log_path: str | Path,
    examples: Sequence[Example],
    features: Features,
    vocab: Sequence[str],
    cfg: SquadConfig,
    out_dir: Path | None = None,
    dtype: str = "float32",
    layout: str = "rows",
) -> AccuracyResult:
    """Score a LoadGen accuracy log with the official SQuAD v1.1 metric.

    Args:
        log_path: ``mlperf_log_accuracy.json`` (accuracy mode, or a partial/TEST01 log).
        examples, features: the dev set and its features, as the QSL used (``load_features``).
        vocab: WordPiece vocabulary, id -> piece.
        cfg: max_seq_length (response rows), n_best_size and max_answer_length.
        out_dir: when given, ``predictions.json`` (``json.dumps(preds, indent=4) + "\\n"``, like the
            reference) and ``accuracy.txt`` (the evaluator's line + "\\n") are written there atomically.
        dtype, layout: how the SUT encoded its responses (see ``read_accuracy_log``).

    Returns:
        ``AccuracyResult``. With a complete log every question is scored exactly as the reference does;
        with a partial log only the questions having at least one feature in the log are scored and
        averaged over (``questions_scored`` says how many).

    Raises:
        DataError: unreadable or malformed log, empty log, sample indices outside the features.
    """
    log = read_accuracy_log(
        log_path, dtype=dtype, seq_len=cfg.max_seq_length, layout=layout, num_samples=len(features)
    )
    predictions = postprocess(examples, features, log, cfg, vocab)
    if not predictions:
        raise DataError(f"accuracy log {Path(log_path).name} answers no question")
    complete = len(predictions) == len(examples)
    scores = evaluate(examples, predictions, qids=None if complete else predictions.keys())
    result = AccuracyResult(
        exact_match=scores["exact_match"],
        f1=scores["f1"],
        questions_scored=len(predictions),
        questions_total=len(examples),
        samples_in_log=len(log),
        duplicates=log.duplicates,
        differing_duplicates=log.differing_duplicates,
        log_sha256=log.sha256,
        predictions=predictions,
    )
    if out_dir is not None:
        out_dir = Path(out_dir)
        _write_atomic(out_dir / PREDICTIONS_FILE, json.dumps(predictions, indent=4) + "\n")
        _write_atomic(out_dir / ACCURACY_FILE, result.line + "\n")
    return result
