"""Stage what the GPU run (benchmarks/gpu_h200.sh) needs on a machine that can reach nothing: run this HERE,
on a CPU machine with the package registry, in the checkout the device call sends; then carry the folder.

The device machine has torch (CUDA), transformers, onnx, onnxruntime (CPU build), tokenizers and numpy, but
no mlcommons-loadgen, no ../shared and no network, and a call carries at most 64 MiB. This writes
``.gpu-stage/`` (ignored by git):

- ``data/dev-v1.1.json``, ``data/vocab.txt``: the SQuAD v1.1 dev set and vocabulary (from ../shared/data);
- ``models/minilm-l6-squad-fp16/``: the small SQuAD model with its weights stored as fp16 (45 MB instead of
  90 MB, which would not fit the 64 MiB a call carries). It loads as an fp32 model (the values are the
  fp16-rounded ones), so its CPU F1 is not exactly 78.91206147893796 but 78.91330038509643 (measured here
  with ``--measure-f1``: full dev, PyTorch fp32 on CPU, 5 to 20 minutes on 2 cores; recorded below and used
  when the bytes match), and the GPU run compares against that;
- ``wheels/``: the mlcommons-loadgen wheel for the device's Python 3.12 (``pip download``);
- ``stage.json``: sha256 of every file, the fp16 rounding error, and the reference F1.

Usage::

    python benchmarks/gpu_stage.py [--out .gpu-stage] [--measure-f1]      # seconds without --measure-f1
    # then, on the device: bash benchmarks/gpu_h200.sh   (carry: [".gpu-stage"])
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
#: Full-dev F1 of the small model in PyTorch fp32 (its README in the team's shared folder; docs/golden.md).
SMALL_MODEL_F1 = 78.91206147893796
#: Measured full-dev F1 of the staged (fp16-stored) small model, PyTorch fp32 on CPU, by
#: ``gpu_stage.py --measure-f1`` (2026-11-30, torch 2.13.0+cpu, transformers 5.24.0): keyed by the sha256 of
#: the source model.safetensors and of the staged one, so it is used only for exactly those bytes.
MEASURED_STAGED_F1 = {("4e183240ab0ae99b7c513c346440db9743a98154dbd734952a03cd4f8da5058d",
                       "247f46c992d812be352fa72c11ce9576050ad3c9aa698df3eb52363f9ea21014"): 78.91330038509643}
LOADGEN = "mlcommons-loadgen==6.0.17"
#: ``pip download`` platform tags for the device's CPython 3.12 on x86-64.
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


def sha256(path: Path) -> str:
    from mlperf_bert.fileio import file_sha256

    return file_sha256(path)


def stage_model(src: Path, out: Path) -> dict:
    """Copy the config and store the weights as fp16; returns the rounding record."""
    from safetensors.numpy import load_file, save_file

    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(src / "config.json", out / "config.json")
    state = load_file(str(src / "model.safetensors"))
    half = {}
    worst_rel, worst_abs, biggest = 0.0, 0.0, 0.0
    for name, arr in state.items():
        biggest = max(biggest, float(np.abs(arr).max()))
        h = arr.astype(np.float16)
        back = h.astype(np.float32)
        worst_abs = max(worst_abs, float(np.abs(back - arr).max()))
        nz = arr != 0
        if nz.any():
            worst_rel = max(worst_rel, float((np.abs(back - arr)[nz] / np.abs(arr[nz])).max()))
        half[name] = h
    if biggest >= 65504:
        raise SystemExit(f"gpu_stage: a weight of {src} is {biggest:g}, beyond fp16's range")
    save_file(half, str(out / "model.safetensors"), metadata={"format": "pt"})
    return {"source": str(src), "source_sha256": sha256(src / "model.safetensors"), "stored_as": "float16",
            "max_abs_rounding_error": worst_abs, "max_relative_rounding_error": worst_rel}


def measure_f1(model: Path, dataset: Path, vocab: Path) -> float:
    """Full-dev F1 of ``model`` in PyTorch fp32 on this CPU through ``mlperf-bert run`` (accuracy mode)."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "mlperf_bert.cli", "run", "--backend", "pytorch", "--device", "cpu",
               "--model", str(model), "--dataset", str(dataset), "--vocab", str(vocab), "--mode", "accuracy",
               "--output-dir", tmp, "--run-name", "f1", "--no-progress"]
        subprocess.run(cmd, check=True)
        return float(json.loads((Path(tmp) / "f1" / "run.json").read_text())["accuracy"]["f1"])


def main(argv: list[str] | None = None) -> int:
    from mlperf_bert.config import default_shared_dir

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / ".gpu-stage", help="stage folder (default .gpu-stage)")
    p.add_argument("--shared", type=Path, default=None, help="the shared folder (default: ../shared)")
    p.add_argument("--measure-f1", action="store_true", help="measure the staged model's CPU F1 (about 5 min)")
    p.add_argument("--no-wheels", action="store_true", help="do not download the loadgen wheel")
    args = p.parse_args(argv)
    shared = args.shared or default_shared_dir()
    out = args.out
    (out / "data").mkdir(parents=True, exist_ok=True)
    for name in ("dev-v1.1.json", "vocab.txt"):
        shutil.copy(shared / "data" / name, out / "data" / name)
    model_dir = out / "models" / "minilm-l6-squad-fp16"
    record: dict = {"model": stage_model(shared / "models" / "minilm-l6-squad", model_dir)}
    if not args.no_wheels:
        (out / "wheels").mkdir(exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
               "3.12", "--implementation", "cp", "-d", str(out / "wheels"), LOADGEN]
        for plat in PLATFORMS:
            cmd[-1:-1] = ["--platform", plat]
        subprocess.run(cmd, check=True)
    ref = {"value": SMALL_MODEL_F1, "what": "full-dev F1 of the fp32 original (the staged fp16-rounded weights "
                                             "were not measured; pass --measure-f1)"}
    known = MEASURED_STAGED_F1.get((record["model"]["source_sha256"], sha256(model_dir / "model.safetensors")))
    if known is not None and not args.measure_f1:
        ref = {"value": known, "what": "full-dev F1 of these staged weights, PyTorch fp32 on CPU (measured by "
                                       "gpu_stage.py --measure-f1, recorded in it)", "original_fp32_f1": SMALL_MODEL_F1}
    if args.measure_f1:
        f1 = measure_f1(model_dir, out / "data" / "dev-v1.1.json", out / "data" / "vocab.txt")
        ref = {"value": f1, "what": "full-dev F1 of the staged weights, PyTorch fp32 on CPU (gpu_stage.py)",
               "original_fp32_f1": SMALL_MODEL_F1}
    record["reference_f1"] = ref
    record["files"] = {str(f.relative_to(out)): sha256(f) for f in sorted(out.rglob("*"))
                       if f.is_file() and f.name != "stage.json"}
    (out / "stage.json").write_text(json.dumps(record, indent=2) + "\n")
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"staged {out}: {size / 2**20:.1f} MiB (a device call carries at most 64 MiB with the repository); "
          f"reference F1 {ref['value']:.5f} ({ref['what']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
