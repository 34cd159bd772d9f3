"""Data types shared by preprocessing (``squad``), the QSL and postprocessing (``accuracy``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Example:
    """One SQuAD question with its paragraph split into whitespace doc tokens.

    Attributes:
        qas_id: the question id (``id`` in the JSON).
        question_text: the question as given.
        doc_tokens: the context split on whitespace (space, tab, CR, LF, U+202F), docs/preprocessing.md#doc-tokens.
        answers: gold answer texts (may repeat), used only for scoring.
    """

    qas_id: str
    question_text: str
    doc_tokens: tuple[str, ...]
    answers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Features:
    """All features of a dataset as arrays, N features of L = max_seq_length tokens.

    Attributes:
        input_ids: int32 [N, L] WordPiece ids, ``[CLS] question [SEP] window [SEP]``, zero-padded.
        input_mask: int32 [N, L] 1 on real tokens, 0 on padding.
        segment_ids: int32 [N, L] 0 for [CLS]/question/first [SEP] and padding, 1 for window and last [SEP].
        example_index: int32 [N] index of the feature's ``Example``.
        unique_id: int64 [N] 1,000,000,000 + feature index.
        token_to_orig: int32 [N, L] doc-token index of each context piece, -1 elsewhere.
        token_is_max_context: bool [N, L] True where this window is the piece's max-context window
            (docs/preprocessing.md#max-context); False outside the context.
    """

    input_ids: np.ndarray
    input_mask: np.ndarray
    segment_ids: np.ndarray
    example_index: np.ndarray
    unique_id: np.ndarray
    token_to_orig: np.ndarray
    token_is_max_context: np.ndarray

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def lengths(self) -> np.ndarray:
        """int32 [N]: real tokens per feature (sum of input_mask)."""
        return self.input_mask.sum(axis=1, dtype=np.int32)
