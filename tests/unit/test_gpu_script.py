"""The prepared GPU run (benchmarks/gpu_h200.sh + gpu_h200.py) on the CPU: it says what to do where no torch
sees a GPU, and its table checks issue 14's goals (its CPU dry run over the real dev lengths is in
tests/integration/test_gpu_script_real.py)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_h200.sh"


def _driver():
    spec = importlib.util.spec_from_file_location("gpu_h200", ROOT / "benchmarks" / "gpu_h200.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
