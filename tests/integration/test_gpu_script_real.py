"""The prepared GPU run (benchmarks/gpu_h200.sh + gpu_h200.py) as a CPU dry run: tiny models over the real
dev-set lengths in ../shared, end to end (everything but CUDA itself)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("shared")

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_h200.sh"


def _run_script(tmp_path, skip: str, timeout: int):
    env = {**os.environ, "GPU_PYTHON": sys.executable, "GPU_ALLOW_CPU": "1", "OUT": str(tmp_path / "out"),
           "GPU_WORK": str(tmp_path / "work"), "GPU_SKIP": skip, "GPU_STAGE": str(tmp_path / "no-stage")}
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=timeout)



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
