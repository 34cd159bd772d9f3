"""Test doubles: synthetic features and fake backends (no model, no dataset needed)."""

from __future__ import annotations

import numpy as np

from mlperf_bert.backends.base import BackendConfig, BackendOption, BackendSpec
from mlperf_bert.backends.registry import BackendRegistry
from mlperf_bert.squad.types import Example, Features


def synthetic_features(n: int = 200, seq: int = 384, seed: int = 0) -> tuple[list[Example], Features]:
    """n one-feature questions with random real lengths 41..384 (the dev set's range)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(41, seq + 1, size=n)
    ids = np.zeros((n, seq), np.int32)
    mask = np.zeros((n, seq), np.int32)
    seg = np.zeros((n, seq), np.int32)
    t2o = np.full((n, seq), -1, np.int32)
    for i, n_i in enumerate(lengths):
        ids[i, :n_i] = rng.integers(1000, 30000, size=n_i)
        ids[i, 0], ids[i, 10], ids[i, n_i - 1] = 101, 102, 102
        mask[i, :n_i] = 1
        seg[i, 11:n_i] = 1
        t2o[i, 11:n_i - 1] = np.arange(n_i - 12)
    examples = [Example(qas_id=f"q{i}", question_text="q", doc_tokens=tuple(f"w{j}" for j in range(400)),
                        answers=("w0",)) for i in range(n)]
    feats = Features(input_ids=ids, input_mask=mask, segment_ids=seg, example_index=np.arange(n, dtype=np.int32),
                     unique_id=1_000_000_000 + np.arange(n, dtype=np.int64), token_to_orig=t2o,
                     token_is_max_context=t2o >= 0)
    return examples, feats


class EchoBackend:
    """Deterministic logits that encode each token: start = input_id, end = -input_id, as float32.

    Options: ``fail_after`` (raise on every batch after the first N), ``delay_ms`` (sleep per batch)."""

    name = "echo"
    calls: list = []

    def __init__(self, fail_after: int | None = None, delay_ms: float = 0.0) -> None:
        self.fail_after = fail_after
        self.delay_s = delay_ms / 1000.0
        self.calls = []

    @classmethod
    def from_config(cls, config: BackendConfig) -> "EchoBackend":
        return cls(**config.options)

    def predict(self, input_ids, input_mask, segment_ids):
        self.calls.append(input_ids.shape)
        if self.delay_s:
            import time

            time.sleep(self.delay_s)
        if self.fail_after is not None and len(self.calls) > self.fail_after:
            raise RuntimeError("simulated accelerator fault")
        ids = input_ids.astype(np.float32)
        return np.ascontiguousarray(np.stack([ids, -ids], axis=-1))

    def close(self) -> None:
        pass


#: ``BackendConfig.threads`` of every ``ThreadsEcho`` built (tests clear it first).
threads_seen: list = []


class ThreadsEcho(EchoBackend):
    """The echo backend, recording the intra-op threads it was configured with."""

    @classmethod
    def from_config(cls, config: BackendConfig) -> "ThreadsEcho":
        threads_seen.append(config.threads)
        return cls()


ECHO_SPEC = BackendSpec(name="echo", target="fakes:EchoBackend", summary="test echo backend",
                        options=(BackendOption("fail_after", int, None, help="raise after N batches"),
                                 BackendOption("delay_ms", float, 0.0, help="sleep per batch (ms)")))


def registry_with_fakes() -> BackendRegistry:
    """The installed backends plus the echo fake."""
    reg = BackendRegistry.from_entry_points()
    reg.register(ECHO_SPEC)
    return reg


#: A WordPiece vocabulary for the tiny SQuAD files below (the special tokens BERT needs, then words).
TINY_VOCAB = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "what", "?", "is",
              "where", "did")


def write_tiny_squad(folder, contexts=("the cat sat on the mat",), repeat: int = 1) -> tuple:
    """Write ``dev.json`` (SQuAD v1.1 format: one question per context, "what sat on the mat?", gold
    answer "the cat") and ``vocab.txt`` into ``folder``; returns (dataset path, vocab path).

    ``repeat`` writes each context that many times (one question each), e.g. to make a run last longer.
    """
    import json
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paragraphs = []
    for k in range(repeat):
        for i, ctx in enumerate(contexts):
            paragraphs.append({"context": ctx, "qas": [{
                "id": f"q{i}-{k}", "question": "what sat on the mat?",
                "answers": [{"text": "the cat", "answer_start": max(0, ctx.find("the cat"))}]}]})
    dataset = folder / "dev.json"
    dataset.write_text(json.dumps({"version": "1.1", "data": [{"title": "tiny", "paragraphs": paragraphs}]}))
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(TINY_VOCAB) + "\n")
    return dataset, vocab


#: The two paragraphs of the ``tiny_squad`` fixture (words of ``TINY_VOCAB`` only).
TINY_CONTEXTS = ("the cat sat on the mat", "where is the mat? the cat sat on the mat")


def write_synthetic_vocab(path):
    """Write a made-up vocab.txt with BERT's 30,522 ids: ``[PAD]`` 0, ``[unusedN]`` 1..99, ``[UNK]`` 100,
    ``[CLS]`` 101, ``[SEP]`` 102, ``[MASK]`` 103, then ``tok104``... (no real word, so no answer text of
    ``synthetic_features`` is ever found inside a piece); returns the path. Stands in for the real vocab
    where only ids 0..30,521 must exist."""
    from pathlib import Path

    special = {0: "[PAD]", 100: "[UNK]", 101: "[CLS]", 102: "[SEP]", 103: "[MASK]"}
    pieces = [special.get(i, f"[unused{i}]" if i < 100 else f"tok{i}") for i in range(30_522)]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(pieces) + "\n")
    return path


#: The tiny random BERT of the ``tiny_model`` fixture: BERT's 30,522-id vocabulary (the exporters' probe batches
#: draw ids 1000..30000, and ``graph_architecture`` finds the word embeddings by their >= 30,000 rows), 2 layers,
#: hidden 32, 2 heads (head size 16), intermediate 64, 512 positions. Weights are drawn with std 0.2 (BERT's is
#: 0.02) so the logits spread over about +-2 and attention is not uniform.
TINY_BERT = dict(vocab_size=30_522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                 max_position_embeddings=512, type_vocab_size=2, initializer_range=0.2)


def write_tiny_bert(folder, seed: int = 0):
    """Save a random ``BertForQuestionAnswering`` (``TINY_BERT``, torch seed ``seed``) as a Hugging Face folder
    (config.json + model.safetensors) and return the folder. 3.9 MB; built in well under a second."""
    from pathlib import Path

    import torch
    from transformers import BertConfig, BertForQuestionAnswering

    torch.manual_seed(seed)
    model = BertForQuestionAnswering(BertConfig(**TINY_BERT)).eval()
    folder = Path(folder)
    model.save_pretrained(str(folder), safe_serialization=True)
    return folder


def write_log(path, rows, dtype="<f4", transposed=False):
    """A LoadGen-style accuracy log ``[{"seq_id", "qsl_idx", "data": UPPER hex}]`` of ``rows`` (a dict
    ``{qsl_idx: float [L, 2]}`` or a list of ``(qsl_idx, array)``), in the given order; returns ``path``."""
    import json

    items = rows.items() if isinstance(rows, dict) else rows
    entries = []
    for seq_id, (qsl_idx, arr) in enumerate(items):
        arr = np.asarray(arr, dtype=dtype)
        if transposed:
            arr = np.ascontiguousarray(arr.T)
        entries.append({"seq_id": seq_id, "qsl_idx": qsl_idx, "data": arr.tobytes().hex().upper()})
    path.write_text(json.dumps(entries), encoding="utf-8")
    return path
