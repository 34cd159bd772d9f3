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
