"""The prepared GPU run (benchmarks/gpu_h200.sh + gpu_h200.py) on the CPU: its dry run goes end to end with
tiny models, it says what to do where no torch sees a GPU, and its table checks issue 14's goals."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_h200.sh"


def _driver():
    spec = importlib.util.spec_from_file_location("gpu_h200", ROOT / "benchmarks" / "gpu_h200.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run_script(tmp_path, skip: str, timeout: int):
    env = {**os.environ, "GPU_PYTHON": sys.executable, "GPU_ALLOW_CPU": "1", "OUT": str(tmp_path / "out"),
           "GPU_WORK": str(tmp_path / "work"), "GPU_SKIP": skip, "GPU_STAGE": str(tmp_path / "no-stage")}
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=timeout)


def test_summary_checks_the_goals_where_measured():
    d = _driver()
    row = lambda sps, raw: {"loadgen_offline_samples_per_second": sps, "raw_loop_samples_per_second": raw,  # noqa: E731
                            "loadgen_over_raw": sps / raw}
    records = {
        "env": {"status": "ok", "result": {"gpu": "NVIDIA H200", "driver": "580.1", "versions": {"torch": "2.11.0"}}},
        "tests": {"status": "ok", "result": {"exit": 0, "summary": "5 passed in 3.1s"}},
        "f1": {"status": "ok", "result": {"reference_f1": 78.9, "reference": "cpu", "full_dev": True, "runs": {
            "fp32": {"f1": 78.91, "diff": 0.01, "tolerance": 0.02, "passed": True, "seconds": 9},
            "fp16": {"f1": 78.7, "diff": -0.2, "tolerance": 0.1, "passed": False, "seconds": 7}}}},
        "large": {"status": "ok", "result": {"samples": 16384, "configs": {
            "torch-bf16": row(5000.0, 5100.0), "torch-fp16": row(5200.0, 5500.0), "torch-fp16-graphs": {"error": "x"}}}},
        "server": {"status": "ok", "result": {"confirmed": True, "peak_qps": 4600.0, "p99_ms": 80.0, "reason": ""}},
        "ort": {"status": "ok", "result": {"skipped": "no CUDA provider", "configs": {}}},
    }
    summary, text = d.summarize(records, Namespace(cpu_dry_run=False, budget_s=390))
    checks = {c["check"]: c["passed"] for c in summary["checks"]}
    assert checks == {"gpu-marked tests pass": True, "F1 fp32 within 0.02": True, "F1 fp16 within 0.1": False,
                      "bf16 Offline >= 4,800 samples/s": True, "torch-bf16 LoadGen/raw >= 0.97": True,
                      "torch-fp16 LoadGen/raw >= 0.97": False,  # 5200 / 5500 = 0.945
                      "Server >= 90% of Offline at p99 <= 130 ms": True}  # 4600 / 5000 = 92%
    assert "GPU: NVIDIA H200  driver 580.1" in text and "torch-fp16-graphs    error: x" in text
    assert "92.0% of the best bf16 Offline" in text and "ONNX Runtime GPU: skipped: no CUDA provider" in text
    dry, _ = d.summarize(records, Namespace(cpu_dry_run=True, budget_s=390))
    assert {c["check"]: c["passed"] for c in dry["checks"]}["bf16 Offline >= 4,800 samples/s"] is None


def test_script_without_a_cuda_torch_says_what_to_do(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("GPU_ALLOW_CPU", "TORCH_INDEX_URL")}
    env.update(GPU_PYTHON=sys.executable, OUT=str(tmp_path / "out"))
    q = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=300)
    if q.returncode == 0:
        pytest.skip("a torch here sees a CUDA device")
    assert q.returncode == 3
    assert "no Python here has a torch that sees a CUDA device" in q.stdout


def test_dry_run_end_to_end_on_cpu(tmp_path):
    """The script and its driver with tiny models on the CPU (Server and the F1 runs are in the slow test)."""
    q = _run_script(tmp_path, "f1,server", timeout=600)
    assert q.returncode == 0, q.stdout[-3000:] + q.stderr[-3000:]
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["steps.log", "summary.json", "summary.txt"]
    summary = json.loads((out / "summary.json").read_text())
    steps = summary["steps"]
    assert summary["dry_run"] is True
    assert [steps[s]["status"] for s in ("env", "tests", "large", "ort")] == ["ok"] * 4
    assert steps["f1"]["status"] == steps["server"]["status"] == "skipped (--skip)"
    assert steps["tests"]["result"]["summary"].startswith("5 skipped")  # the gpu-marked tests, no GPU here
    large = steps["large"]["result"]["configs"]
    assert set(large) == {"torch-fp32", "torch-bf16"}
    for row in (*large.values(), steps["ort"]["result"]["configs"]["ort-cpu"]):
        assert row["samples"] >= 32 and row["loadgen_offline_samples_per_second"] > 0 and row["raw_loop_samples_per_second"] > 0
    assert large["torch-bf16"]["detail"]["autocast"] == "bfloat16"
    assert all(c["passed"] is None for c in summary["checks"])  # a dry run passes or fails no goal
    assert "CPU DRY RUN, not a GPU measurement" in (out / "summary.txt").read_text()


@pytest.mark.slow
def test_full_dry_run_with_f1_and_server(tmp_path):
    q = _run_script(tmp_path, "", timeout=900)
    assert q.returncode == 0, q.stdout[-3000:]
    steps = json.loads((tmp_path / "out" / "summary.json").read_text())["steps"]
    assert all(steps[s]["status"] == "ok" for s in steps)
    assert set(steps["f1"]["result"]["runs"]) == {"fp32", "bf16"}
    assert steps["server"]["result"]["confirmed"] in (True, False) and steps["server"]["result"]["trials"]
