"""Helpers for the submission/compliance/checker/report/finder tests (no tests here).

Backends that answer the synthetic questions of ``fakes.synthetic_features`` (every answer is doc token
``w0``, which sits at the first context position) so accuracy runs score F1 100 without a model, and
quick LoadGen run folders built with them.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from fakes import synthetic_features
from mlperf_bert.backends.base import BackendConfig, BackendOption, BackendSpec
from mlperf_bert.backends.registry import BackendRegistry
from mlperf_bert.config import DataPaths
from mlperf_bert.loadgen.settings import LoadGenConfig
from mlperf_bert.runner import RunConfig, run
from mlperf_bert.sut.batcher import BatcherConfig
from mlperf_bert.sut.sut import SUTConfig

N_SAMPLES = 200


class OracleBackend:
    """Start and end logit +10 at the first context token (the answer ``w0``), -10 elsewhere.

    Options:
        noise: add ``noise * (batch size + padded length)`` to every logit: outputs then depend on how
            the batch was formed (like float kernels whose results change with the batch shape), but
            the answers do not.
        wrong: put the peak on the last context token instead (a SUT answering differently).
    """

    name = "oracle"

    def __init__(self, noise: float = 0.0, wrong: bool = False, sleep_per_sample_s: float = 0.0) -> None:
        self.noise, self.wrong, self.sleep = noise, wrong, sleep_per_sample_s

    @classmethod
    def from_config(cls, config: BackendConfig) -> "OracleBackend":
        return cls(**config.options)

    def predict(self, input_ids, input_mask, segment_ids):
        b, length = input_ids.shape
        if self.sleep:
            time.sleep(self.sleep * b)
        out = np.full((b, length, 2), -10.0, dtype=np.float32)  # (B, L, 2)
        seg = segment_ids.astype(bool)
        if self.wrong:
            pos = length - 1 - np.argmax(seg[:, ::-1], axis=1) - 1  # last context token (before [SEP])
        else:
            pos = np.argmax(seg, axis=1)  # first context token
        out[np.arange(b), pos, :] = 10.0
        if self.noise:
            out += np.float32(self.noise * (b + length))
        return out

    def close(self) -> None:
        pass


class WrongOracleBackend(OracleBackend):
    """``OracleBackend(wrong=True)`` under the oracle's registry name (a SUT changed between runs)."""

    def __init__(self, **kw) -> None:
        super().__init__(**{**kw, "wrong": True})


def registry(oracle_target: str = "test_submission_support:OracleBackend") -> BackendRegistry:
    reg = BackendRegistry.from_entry_points()
    reg.register(BackendSpec(name="oracle", target=oracle_target, summary="test oracle", options=(
        BackendOption("noise", float, 0.0), BackendOption("wrong", bool, False),
        BackendOption("sleep_per_sample_s", float, 0.0))))
    return reg


def data(n: int = N_SAMPLES):
    return synthetic_features(n)


def quick_run(out: Path, vocab: Path, *, name: str = "run", scenario: str = "Offline",
              modes=("accuracy", "performance"), options: dict | None = None, trace: bool = False,
              duration_s: float = 0.3, expected_qps: float = 2000.0, reg: BackendRegistry | None = None,
              accuracy_target=None):
    """A quick-rules run folder of the oracle on the synthetic data, accuracy scored with ``vocab`` (a vocab.txt
    with ids up to 30,000: the ``synthetic_vocab`` fixture)."""
    examples, feats = data()
    cfg = RunConfig(
        data=DataPaths(dataset=out / "unused.json", vocab=vocab, cache_dir=out / "cache"),
        backend=BackendConfig(name="oracle", options=options or {}),
        sut=SUTConfig(scenario=scenario, batcher=BatcherConfig(max_batch_size=16, token_budget=4096,
                                                               server_max_wait_ms=1)),
        loadgen=LoadGenConfig(scenario=scenario, rules="quick", quick_duration_s=duration_s,
                              expected_qps=expected_qps, expected_latency_ms=0.5, trace=trace),
        modes=tuple(modes), output_dir=out, run_name=name, probe=False, accuracy_target=accuracy_target,
    )
    return run(cfg, registry=reg or registry(), load_data=lambda *a: (examples, feats), progress=False)


def scorer_for(vocab: Path):
    """``(log, out_dir) -> AccuracyResult`` over the synthetic data, as the compliance command builds it."""
    from mlperf_bert.accuracy.evaluate import evaluate_accuracy_log
    from mlperf_bert.config import SquadConfig
    from mlperf_bert.squad.tokenization import load_vocab

    examples, feats = data()
    pieces = load_vocab(vocab)
    return lambda log, out_dir: evaluate_accuracy_log(log, examples, feats, pieces, SquadConfig(), out_dir)
