#!/usr/bin/env bash
# The one prepared GPU run of issue 14: install what it needs, then benchmarks/gpu_h200.py (GPU tests, small-model
# F1 in fp32/bf16/fp16, BERT-Large-shape Offline in bf16/fp16 with and without CUDA graphs, LoadGen vs raw loop,
# a short Server find-peak, ONNX Runtime CUDA/TensorRT when installed). Writes summary.json, summary.txt and
# steps.log under $OUT. Sized for under 8 minutes: install <= ~40 s, then GPU_BUDGET_S (default 390 s) for all
# steps, each with its own limit; a step that fails or runs out of time is reported and the rest go on.
#
# This workplace's H200 (no network; its python3 holds a CUDA torch, transformers, onnx, CPU onnxruntime):
#   1. here, on a CPU machine, in the checkout the device call sends:
#        python benchmarks/gpu_stage.py      # data, fp16-stored small model, loadgen wheel -> .gpu-stage (49 MiB)
#   2. the device call: command "bash benchmarks/gpu_h200.sh", carry [".gpu-stage"], timeout_s 540
#   The CPU wheel pin torch==2.13.0 in pyproject.toml is for CPU machines only: here the image's CUDA torch is
#   used as it is, and mlperf-bert and the carried wheels are installed into that Python with --no-deps.
#
# A GPU machine with network access and no CUDA torch: give PyTorch's CUDA wheel index for its driver, e.g.
#   TORCH_INDEX_URL=<index for cu128> bash benchmarks/gpu_h200.sh
# installs a CUDA torch EXPLICITLY into a fresh venv (never the CPU pin), then mlperf-bert's other needs and
# onnxruntime-gpu (which replaces the CPU onnxruntime wheel; pip uninstall -y onnxruntime first).
#
# Environment: OUT (default ./gpu-out), GPU_STAGE (default ./.gpu-stage), GPU_BUDGET_S (default 390),
# GPU_SKIP (steps to leave out, e.g. "ort,server"), GPU_PYTHON (a Python whose torch sees CUDA), GPU_WORK (models,
# caches, run folders; default /tmp/mlperf-bert-gpu). GPU_ALLOW_CPU=1 accepts a torch without CUDA and runs the
# driver's --cpu-dry-run (tiny models on the CPU): how tests/unit/test_gpu_script.py runs this script end to end.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
STAGE=${GPU_STAGE:-$PWD/.gpu-stage}
BUDGET_S=${GPU_BUDGET_S:-390}
T0=$(date +%s)
log() { echo "gpu_h200.sh: $*" | tee -a "$OUT/steps.log"; }

# Last resort when pip cannot build the package (no setuptools there): the sources on PYTHONPATH plus a
# dist-info folder holding the backends' entry points (pyproject's mlperf_bert.backends group), which
# importlib.metadata finds on sys.path.
install_by_path() {
  local site=/tmp/mlperf-bert-site info=/tmp/mlperf-bert-site/mlperf_bert-0.1.0.dist-info
  log "pip could not install mlperf-bert; using src/ on PYTHONPATH with entry points in $info"
  mkdir -p "$info"
  printf 'Metadata-Version: 2.1\nName: mlperf-bert\nVersion: 0.1.0\n' > "$info/METADATA"
  { echo "[mlperf_bert.backends]"
    sed -n '/^\[project.entry-points."mlperf_bert.backends"\]/,/^\[/p' pyproject.toml | grep -E '^[a-z_]+ *=' | tr -d '"'
  } > "$info/entry_points.txt"
  export PYTHONPATH="$PWD/src:$site${PYTHONPATH:+:$PYTHONPATH}"
}

# 1. A Python whose torch sees a CUDA device (the H200 image's python3), or a fresh venv with a CUDA torch.
PY=""
for cand in "${GPU_PYTHON:-}" python3 /opt/torch/.venv/bin/python3; do
  [ -n "$cand" ] || continue
  command -v "$cand" >/dev/null 2>&1 || continue
  if timeout 90 "$cand" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() or '${GPU_ALLOW_CPU:-}' == '1' else 1)" >/dev/null 2>&1; then
    PY=$(command -v "$cand"); break
  fi
done
if [ -z "$PY" ]; then
  if [ -z "${TORCH_INDEX_URL:-}" ]; then
    log "no Python here has a torch that sees a CUDA device; set GPU_PYTHON, or TORCH_INDEX_URL to install a CUDA torch"
    exit 3
  fi
  VENV=${GPU_VENV:-/tmp/mlperf-bert-gpu-venv}
  log "installing a CUDA torch from \$TORCH_INDEX_URL into $VENV (not the CPU pin of pyproject.toml)"
  python3 -m venv "$VENV" && timeout 600 "$VENV/bin/pip" install -q torch --index-url "$TORCH_INDEX_URL" \
    || { log "CUDA torch install failed"; exit 3; }
  PY=$VENV/bin/python
  "$PY" -m pip uninstall -y -q onnxruntime >/dev/null 2>&1
  timeout 600 "$PY" -m pip install -q --no-deps -e . \
    && timeout 600 "$PY" -m pip install -q numpy tokenizers "mlcommons-loadgen>=6.0,<7" tqdm rich requests \
         "transformers>=4.40" "safetensors>=0.4" "onnx>=1.16" "onnxscript>=0.1" "onnxruntime-gpu>=1.20" pytest \
    || { log "installing mlperf-bert's needs failed"; exit 3; }
else
  log "using $PY ($("$PY" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda)'))"
  # No network: the carried wheels (LoadGen) and this repository, into that Python, without dependencies.
  if ! "$PY" -c "import mlperf_loadgen" >/dev/null 2>&1; then
    ls "$STAGE"/wheels/*.whl >/dev/null 2>&1 || { log "mlperf_loadgen is missing and $STAGE/wheels has no wheel (run benchmarks/gpu_stage.py and carry .gpu-stage)"; exit 3; }
    timeout 120 "$PY" -m pip install -q --no-index --no-deps "$STAGE"/wheels/*.whl || { log "wheel install failed"; exit 3; }
  fi
  if ! "$PY" -c "import sys, mlperf_bert; sys.exit(0 if mlperf_bert.__file__.startswith('$PWD/src/') else 1)" >/dev/null 2>&1; then
    timeout 180 "$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e . \
      || timeout 180 "$PY" -m pip install -q --no-index --no-deps --no-build-isolation . \
      || install_by_path
  fi
fi
"$PY" -c "import mlperf_loadgen, mlperf_bert, transformers" || { log "imports failed after install"; exit 3; }
ELAPSED=$(( $(date +%s) - T0 ))
log "install took ${ELAPSED} s; running the steps with a ${BUDGET_S} s budget"

# 2. The checks and benchmarks (each step time-bounded by the driver).
DRY=()
"$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" >/dev/null 2>&1 || DRY=(--cpu-dry-run)
"$PY" benchmarks/gpu_h200.py --out "$OUT" --stage "$STAGE" --budget-s "$BUDGET_S" --skip "${GPU_SKIP:-}" \
  --work "${GPU_WORK:-/tmp/mlperf-bert-gpu}" ${DRY[@]+"${DRY[@]}"}
rc=$?
log "done in $(( $(date +%s) - T0 )) s (driver exit $rc); results in $OUT/summary.txt and $OUT/summary.json"
exit $rc
