"""Accuracy mode end to end: LoadGen accuracy log -> predictions -> official SQuAD v1.1 EM/F1.

What the reference ``accuracy-squad.py`` + ``evaluate_v1.1.py`` do, in one call and without a
subprocess: read the log (``read_accuracy_log``), postprocess with n_best 20 / max_answer_length 30
(``postprocess``), score (``squad_v1.evaluate``), and write ``predictions.json`` and ``accuracy.txt``
byte for byte as the reference writes/prints them: every question of the dataset gets a prediction and
the score is over all of them, also for a partial log (TEST01), whose score over just the questions it
covers is reported beside it (``AccuracyResult.covered``), never in accuracy.txt.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from mlperf_bert.accuracy.logfile import read_accuracy_log
from mlperf_bert.accuracy.postprocess import postprocess
from mlperf_bert.accuracy.squad_v1 import evaluate
from mlperf_bert.config import DEV_FEATURE_COUNT, DEV_QUESTION_COUNT, SquadConfig
from mlperf_bert.fileio import write_atomic
from mlperf_bert.squad.types import Example, Features

#: File names in the output folder (the reference's ``--out_file`` default name; the submission's name).
PREDICTIONS_FILE = "predictions.json"
ACCURACY_FILE = "accuracy.txt"


@dataclass(frozen=True)
class CoveredScore:
    """The score over only the questions a partial log covers (at least one of their features logged).

    Attributes:
        exact_match / f1: SQuAD v1.1 EM / F1 in percent over those questions.
        questions: how many questions that is.
    """

    exact_match: float
    f1: float
    questions: int


@dataclass(frozen=True)
class AccuracyResult:
    """Scores of one accuracy log.

    Attributes:
        exact_match: SQuAD v1.1 EM in percent over every question of the dataset (the reference's score;
            a question without an answer from the log counts as "empty").
        f1: SQuAD v1.1 token F1 in percent over every question of the dataset.
        questions_total: questions in the dataset (10,570 for dev).
        questions_covered: questions with at least one feature in the log.
        questions_without_features: questions that have no feature at all (e.g. an empty context); always
            answered "empty".
        samples_in_log: distinct QSL samples (features) in the log (10,833 when complete).
        samples_total: features of the dataset (the QSL size).
        duplicates: log entries dropped because their sample appeared earlier.
        differing_duplicates: of those, how many differ from the kept response (non-deterministic SUT).
        log_sha256: sha256 of the log file (the ``hash=`` of a submission's accuracy.txt).
        covered: for a partial log (``samples_in_log < samples_total``), the score over the questions it
            covers; None for a complete log.
        predictions: qas_id -> answer text for every question, in example order (predictions.json).
    """

    exact_match: float
    f1: float
    questions_total: int
    questions_covered: int
    questions_without_features: int
    samples_in_log: int
    samples_total: int
    duplicates: int
    differing_duplicates: int
    log_sha256: str
    covered: CoveredScore | None = None
    predictions: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    @property
    def complete(self) -> bool:
        """True when the log holds every sample (a full accuracy run, not a partial/audit log)."""
        return self.samples_in_log == self.samples_total

    @property
    def full_dev(self) -> bool:
        """True when the dataset is all of SQuAD v1.1 dev (10,570 questions, 10,833 features): only then is
        the score comparable with a benchmark's F1 target."""
        return self.questions_total == DEV_QUESTION_COUNT and self.samples_total == DEV_FEATURE_COUNT

    @property
    def line(self) -> str:
        """The evaluator's output line, e.g. ``{"exact_match": 86.2..., "f1": 92.1...}``."""
        return json.dumps({"exact_match": self.exact_match, "f1": self.f1})

    def to_dict(self) -> dict:
        """Everything but the predictions (predictions.json holds those), plus ``complete`` and
        ``full_dev``; what run.json records."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "predictions"}
        out["covered"] = None if self.covered is None else asdict(self.covered)
        out["complete"] = self.complete
        out["full_dev"] = self.full_dev
        return out


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
        ``AccuracyResult``: every question answered as the reference does ("empty" where no feature of it
        is in the log, it has none, or no candidate survives) and scored over all of them; for a partial
        log also the score over the questions it covers (``covered``).

    Raises:
        DataError: unreadable or malformed log, empty log, sample indices outside the features.
    """
    log = read_accuracy_log(
        log_path, dtype=dtype, seq_len=cfg.max_seq_length, layout=layout, num_samples=len(features)
    )
    predictions = postprocess(examples, features, log, cfg, vocab)
    scores = evaluate(examples, predictions)
    has_feature = np.zeros(len(examples), dtype=bool)
    has_feature[features.example_index] = True
    in_log = np.zeros(len(examples), dtype=bool)
    in_log[features.example_index[np.fromiter(log.keys(), dtype=np.int64, count=len(log))]] = True
    covered = None
    if len(log) < len(features):  # partial log: also the score over the questions it covers
        qids = [ex.qas_id for ex, hit in zip(examples, in_log) if hit]
        part = evaluate(examples, predictions, qids=qids)
        covered = CoveredScore(part["exact_match"], part["f1"], len(qids))
    result = AccuracyResult(
        exact_match=scores["exact_match"],
        f1=scores["f1"],
        questions_total=len(examples),
        questions_covered=int(in_log.sum()),
        questions_without_features=int((~has_feature).sum()),
        samples_in_log=len(log),
        samples_total=len(features),
        duplicates=log.duplicates,
        differing_duplicates=log.differing_duplicates,
        log_sha256=log.sha256,
        covered=covered,
        predictions=predictions,
    )
    if out_dir is not None:
        out_dir = Path(out_dir)
        write_atomic(out_dir / PREDICTIONS_FILE, json.dumps(predictions, indent=4) + "\n")
        write_atomic(out_dir / ACCURACY_FILE, result.line + "\n")
    return result


def describe(result: AccuracyResult) -> list[str]:
    """What the score covers, in words (the run summary and the ``accuracy`` command print these).

    First line: EM/F1 over every question of the dataset, and whether that is all of SQuAD v1.1 dev. Then,
    when they apply: questions without any feature, and for a partial log its score over the questions
    it covers.
    """
    scope = (f"all {result.questions_total:,} questions of SQuAD v1.1 dev" if result.full_dev else
             f"all {result.questions_total:,} questions of the dataset: a subset, not SQuAD v1.1 dev "
             f"({DEV_QUESTION_COUNT:,} questions)")
    lines = [f"EM {result.exact_match:.3f}  F1 {result.f1:.3f} over {scope}"]
    if result.questions_without_features:
        lines.append(f"{result.questions_without_features:,} question(s) have no feature (e.g. an empty context) "
                     "and count as 'empty', as in the reference")
    if result.covered is not None:
        c = result.covered
        lines.append(f"partial log ({result.samples_in_log:,} of {result.samples_total:,} samples): EM {c.exact_match:.3f}"
                     f"  F1 {c.f1:.3f} over the {c.questions:,} questions it covers; the others count as 'empty' above")
    return lines
