"""Read a SQuAD v1.x JSON file into ``Example``s, splitting contexts into doc tokens as the reference.

Reference: ``read_squad_examples`` (is_training=False) in mlcommons/inference v1.0.1
``language/bert/create_squad_data.py`` (= NVIDIA DeepLearningExamples BERT ``utils/create_squad_data.py``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from mlperf_bert.errors import DataError, json_error_text
from mlperf_bert.squad.types import Example

#: The reference's whitespace for doc tokens: space, tab, CR, LF and U+202F (narrow no-break space)
#: (``is_whitespace`` in ``read_squad_examples``; docs/preprocessing.md#doc-tokens). Other Unicode spaces,
#: e.g. U+00A0, stay inside doc tokens (WordPiece later splits on them).
DOC_WHITESPACE = " \t\r\n\u202f"
_DOC_TOKEN_RE = re.compile(f"[^{re.escape(DOC_WHITESPACE)}]+")


def split_doc_tokens(context: str) -> tuple[str, ...]:
    """Split a paragraph into doc tokens: the maximal runs of non-``DOC_WHITESPACE`` characters.

    Same result as the reference's character loop (which also builds a char -> word map that
    inference does not need).

    Example:
        >>> split_doc_tokens(" The  cat\\u202fsat.\\n")
        ('The', 'cat', 'sat.')
    """
    return tuple(_DOC_TOKEN_RE.findall(context))


def _where(path: Path, what: str) -> str:
    return f"{path}: not a SQuAD v1.x file ({what}); pass the SQuAD v1.1 dev-v1.1.json"


def _parse_json(path: Path) -> Any:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: dataset file not found; pass --dataset pointing at SQuAD dev-v1.1.json") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a dataset file; pass the path of dev-v1.1.json") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read dataset file ({exc.strerror}); check its permissions") from None
    if not raw.strip():
        raise DataError(f"{path}: dataset file is empty; pass the SQuAD v1.1 dev-v1.1.json")
    truncated = (
        f"{path}: truncated JSON (the file ends after {len(raw):,} bytes, before the document is complete); "
        "download dev-v1.1.json again"
    )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if exc.reason == "unexpected end of data":  # cut inside a multi-byte character
            raise DataError(truncated) from None
        raise DataError(f"{path}: not UTF-8 text (bad byte at offset {exc.start}); is this the SQuAD JSON?") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        # Only the end of the input can leave a string open (raw newlines inside strings are other errors).
        if exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string"):
            raise DataError(truncated) from None
        raise DataError(
            f"{path}: not valid JSON ({json_error_text(exc, f'line {exc.lineno} column {exc.colno}')}); "
            "pass the SQuAD v1.1 dev-v1.1.json"
        ) from None


def read_squad(path: Path) -> list[Example]:
    """Read every question of a SQuAD v1.x file, in file order.

    Args:
        path: SQuAD JSON (``{"version": "1.1", "data": [{"title", "paragraphs": [{"context", "qas":
            [{"id", "question", "answers": [{"text", "answer_start"}]}]}]}]}``).

    Returns:
        one ``Example`` per question; questions of one paragraph share the same ``doc_tokens`` tuple.
        Answer texts are kept as given (``answers`` may be absent, e.g. for a test set -> ``()``).

    Raises:
        DataError: missing/unreadable file, not JSON, truncated JSON, JSON that is not SQuAD v1.x
            (no ``data`` list of articles with ``paragraphs``/``context``/``qas``, a question without gold
            ``answers``, or SQuAD v2), or no questions.
    """
    path = Path(path)
    doc = _parse_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise DataError(_where(path, 'no top-level "data" list of articles'))
    version = str(doc.get("version", ""))
    if version.lstrip("v").startswith("2"):
        raise DataError(
            f"{path}: this is SQuAD version {version}; the MLPerf BERT benchmark uses SQuAD v1.1 (dev-v1.1.json)"
        )
    examples: list[Example] = []
    for a, article in enumerate(doc["data"]):
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            raise DataError(_where(path, f'article {a} has no "paragraphs" list'))
        for p, paragraph in enumerate(article["paragraphs"]):
            where = f"article {a} paragraph {p}"
            if not isinstance(paragraph, dict) or not isinstance(paragraph.get("context"), str):
                raise DataError(_where(path, f'{where} has no "context" string'))
            if not isinstance(paragraph.get("qas"), list):
                raise DataError(_where(path, f'{where} has no "qas" list'))
            doc_tokens = split_doc_tokens(paragraph["context"])
            for q, qa in enumerate(paragraph["qas"]):
                if (
                    not isinstance(qa, dict)
                    or not isinstance(qa.get("id"), str)
                    or not isinstance(qa.get("question"), str)
                ):
                    raise DataError(_where(path, f'{where} question {q} lacks an "id" or "question" string'))
                if qa.get("is_impossible"):
                    raise DataError(
                        f"{path}: question {qa['id']} is marked is_impossible (SQuAD v2); "
                        "the MLPerf BERT benchmark uses SQuAD v1.1"
                    )
                answers = qa.get("answers")
                if not isinstance(answers, list) or not answers:
                    # every v1.1 dev question has gold answers, and the score needs them: refused here, not
                    # after a whole accuracy run
                    raise DataError(_where(path, f'{where} question {q} ({qa["id"]}) has no "answers" list '
                                                 "of gold answers"))
                if not all(isinstance(x, dict) and isinstance(x.get("text"), str) for x in answers):
                    raise DataError(_where(path, f'question {qa["id"]} has an "answers" entry without a "text"'))
                examples.append(
                    Example(
                        qas_id=qa["id"],
                        question_text=qa["question"],
                        doc_tokens=doc_tokens,
                        answers=tuple(x["text"] for x in answers),
                    )
                )
    if not examples:
        raise DataError(f"{path}: the dataset holds no questions; pass the SQuAD v1.1 dev-v1.1.json")
    return examples
