"""The main job on real data: all 10,833 dev features through LoadGen accuracy mode -> F1 of the small model.

The small model's F1 measured with the unmodified MLPerf reference accuracy script is in
../shared/models/minilm-l6-squad/README.md: {"exact_match": 68.12677388836329, "f1": 78.91206147893796}.
fp32 backends must reproduce it within 0.02 (float rounding can flip a few near-tied answers).
"""

from __future__ import annotations

import json

import pytest

from mlperf_bert.backends.registry import BackendConfig
from mlperf_bert.cli import main as cli_main
from mlperf_bert.config import DataPaths
from mlperf_bert.logs.settings import LoadGenConfig
from mlperf_bert.runner import RunConfig, run_benchmark
from mlperf_bert.sut.sut import SUTConfig

REFERENCE_F1 = 78.91206147893796
REFERENCE_EM = 68.12677388836329
F1_TOLERANCE = 0.02


@pytest.fixture(scope="module")
def paths(shared, tmp_path_factory):
    return DataPaths.defaults(shared=shared, cache_dir=tmp_path_factory.mktemp("cache"))


def test_full_dev_accuracy_onnxruntime(paths, small_onnx, tmp_path):
    cfg = RunConfig(data=paths, backend=BackendConfig(name="onnxruntime", model=small_onnx, device="cpu"),
                    sut=SUTConfig(scenario="Offline"), loadgen=LoadGenConfig(scenario="Offline"),
                    modes=("accuracy",), output_dir=tmp_path, run_name="acc")
    res = run_benchmark(cfg, progress=False)
    acc = res.accuracy
    assert acc.questions_scored == acc.questions_total == 10_570
    assert acc.samples_in_log == 10_833
    assert abs(acc.f1 - REFERENCE_F1) <= F1_TOLERANCE, acc.f1
    assert abs(acc.exact_match - REFERENCE_EM) <= 0.05, acc.exact_match
    line = json.loads((res.run_dir / "accuracy" / "accuracy.txt").read_text().splitlines()[0])
    assert line == {"exact_match": acc.exact_match, "f1": acc.f1}
    preds = json.loads((res.run_dir / "accuracy" / "predictions.json").read_text())
    assert len(preds) == 10_570 and preds["56be4db0acb8001400a502ec"]  # first dev question answered
    info = json.loads((res.run_dir / "run.json").read_text())
    assert info["features"] == 10_833 and info["accuracy"]["f1"] == acc.f1


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
