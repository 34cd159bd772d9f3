"""The main job on real data: all 10,833 dev features through LoadGen accuracy mode -> F1 of the small model.

The small model's F1 measured with the unmodified MLPerf reference accuracy script is in
docs/models.md#small-model: {"exact_match": 68.12677388836329, "f1": 78.91206147893796}.
fp32 backends must reproduce it within 0.02 (float rounding can flip a few near-tied answers).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlperf_bert.backends.base import BackendConfig
from mlperf_bert.cli import main as cli_main
from mlperf_bert.config import DataPaths
from mlperf_bert.loadgen.settings import LoadGenConfig
from mlperf_bert.runner import RunConfig, run
from mlperf_bert.sut.sut import SUTConfig

REFERENCE_F1 = 78.91206147893796
REFERENCE_EM = 68.12677388836329
F1_TOLERANCE = 0.02


@pytest.fixture(scope="module")
def paths(shared, tmp_path_factory):
    return DataPaths.defaults(shared=shared, cache_dir=tmp_path_factory.mktemp("cache"))


def test_full_dev_accuracy_onnxruntime(paths, small_onnx, tmp_path):
    cfg = RunConfig(data=paths, backend=BackendConfig(name="onnxruntime", model=small_onnx, device="cpu",
                                                      cache_dir=paths.cache_dir),
                    sut=SUTConfig(scenario="Offline"), loadgen=LoadGenConfig(scenario="Offline"),
                    modes=("accuracy",), output_dir=tmp_path, run_name="acc")
    res = run(cfg, progress=False)
    acc = res.accuracy
    assert acc.questions_covered == acc.questions_total == 10_570
    assert acc.samples_in_log == 10_833 and acc.complete and acc.full_dev
    assert abs(acc.f1 - REFERENCE_F1) <= F1_TOLERANCE, acc.f1
    assert abs(acc.exact_match - REFERENCE_EM) <= 0.05, acc.exact_match
    line = json.loads((res.run_dir / "accuracy" / "accuracy.txt").read_text().splitlines()[0])
    assert line == {"exact_match": acc.exact_match, "f1": acc.f1}
    preds = json.loads((res.run_dir / "accuracy" / "predictions.json").read_text())
    assert len(preds) == 10_570 and preds["56be4db0acb8001400a502ec"]  # first dev question answered
    info = json.loads((res.run_dir / "run.json").read_text())
    assert info["features"] == 10_833 and info["accuracy"]["f1"] == acc.f1
    assert info["status"] == "complete" and info["accuracy"]["full_dev"] is True


@pytest.mark.parametrize("scenario", ["Offline", "Server", "SingleStream", "MultiStream"])
def test_cli_performance_each_scenario_real_model(scenario, paths, small_onnx, tmp_path, capsys):
    """Each scenario in performance mode for a couple of seconds on the real model, via the CLI."""
    rc = cli_main(["run", "--model", str(small_onnx), "--scenario", scenario, "--mode", "performance",
                   "--rules", "quick", "--duration", "2", "--output-dir", str(tmp_path), "--run-name", "p",
                   "--cache-dir", str(paths.cache_dir), "--no-progress"]
                  + (["--target-qps", "5"] if scenario == "Server" else []))
    out = capsys.readouterr().out
    assert rc == 0, out
    summary = (tmp_path / "p" / "performance" / "mlperf_log_summary.txt").read_text()
    assert f"Scenario : {scenario}" in summary
    assert "Result is : " in summary
    info = json.loads((tmp_path / "p" / "run.json").read_text())
    assert info["performance"]["samples_per_second"] > 0
    assert "quick rules: never valid for submission" in out


def test_padding_free_sorted_batches_match_batch_one(paths, small_onnx, tmp_path):
    """Sorted, token-budget, padding-free batching gives the F1 of batch-1 padded-to-384 runs (within 0.02)
    on the first 400 questions, and nearly the same logits."""
    from mlperf_bert.accuracy.logfile import read_accuracy_log
    from mlperf_bert.sut.batcher import BatcherConfig

    results = {}
    for name, batcher, rows in (
        ("batch1-384", BatcherConfig(max_batch_size=1, token_budget=None, sort_by_length=False, pad_to_multiple=384),
         "full"),
        ("sorted", BatcherConfig(max_batch_size=32, token_budget=8192), "trimmed"),
    ):
        cfg = RunConfig(data=paths, backend=BackendConfig(name="onnxruntime", model=small_onnx, device="cpu",
                                                      cache_dir=paths.cache_dir),
                        sut=SUTConfig(scenario="Offline", batcher=batcher, response_rows=rows),
                        loadgen=LoadGenConfig(scenario="Offline"), modes=("accuracy",), output_dir=tmp_path,
                        run_name=name, max_examples=400)
        res = run(cfg, progress=False)
        log = read_accuracy_log(res.run_dir / "accuracy" / "mlperf_log_accuracy.json")
        results[name] = (res.accuracy, log)
    (a1, log1), (a2, log2) = results["batch1-384"], results["sorted"]
    assert a1.questions_total == a2.questions_total == 400 and not a1.full_dev
    assert abs(a1.f1 - a2.f1) <= F1_TOLERANCE
    assert sorted(log1) == sorted(log2)
    worst = 0.0
    for i in log1:
        real = log2[i][:, 0] != -10000.0  # trimmed responses: the scorer pads past the real length
        assert 41 <= real.sum() <= 384
        worst = max(worst, float(np.abs(log1[i][real] - log2[i][real]).max()))
    assert worst < 1e-3  # same logits on real tokens, whatever the batch shape
