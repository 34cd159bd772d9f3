"""int8 vs fp32 speed with ONNX Runtime on this CPU: a plain loop over dev features, no LoadGen.

Runs each model over the same random dev features in SUT-like batches (length-sorted, trimmed to the
batch's longest sample, token budget), after a warm-up, and prints samples/s, the speed-up over fp32,
how many encoder MatMuls ORT runs as integer kernels (from its optimized graph), and how closely the
int8 logits follow fp32 (top-1 start agreement). It asserts that the int8 models' logits follow fp32,
and reports (does not assert) the speed-up: speed depends on the CPU (VNNI) and on the machine's load.

Usage::

    python benchmarks/bench_int8.py --int8 out/ptq/model.onnx out/qat/model.onnx [--samples 512]

The fp32 model defaults to the small SQuAD model from ../shared/models, exported once and cached.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np


def integer_matmuls(path: Path, threads: int) -> dict:
    """Op counts of ORT's optimized graph: integer matmuls vs fp32 MatMul."""
    import onnx
    import onnxruntime as ort
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        so = ort.SessionOptions()
        so.optimized_model_filepath = str(Path(tmp) / "opt.onnx")
        so.intra_op_num_threads = threads
        so.log_severity_level = 3
        ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        ops = Counter(n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node)
    ints = sum(ops[k] for k in ("MatMulIntegerToFloat", "QLinearMatMul", "MatMulInteger", "QAttention"))
    return {"integer_matmuls": ints, "fp32_matmuls": ops["MatMul"] + ops["FusedMatMul"] + ops["Attention"]}


def main() -> int:
    from mlperf_bert.backends.onnxruntime import OnnxRuntimeBackend
    from mlperf_bert.config import DataPaths, SquadConfig, default_cache_dir, default_shared_dir
    from mlperf_bert.convert.to_onnx import exported_onnx
    from mlperf_bert.machine import cpu_flags, physical_cores
    from mlperf_bert.squad.cache import load_features
    from mlperf_bert.sut.batcher import BatcherConfig, plan_batches

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fp32", type=Path, help="fp32 ONNX (default: the small model, exported and cached)")
    ap.add_argument("--int8", type=Path, nargs="+", required=True, help="int8 ONNX files (PTQ/QAT model.onnx)")
    ap.add_argument("--samples", type=int, default=512, help="random dev features per model (default 512)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--token-budget", type=int, default=8192)
    ap.add_argument("--threads", type=int, default=None, help="ORT intra-op threads (default: physical cores)")
    ap.add_argument("--repeat", type=int, default=2, help="timed passes per model; the best is kept (default 2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()

    threads = args.threads or physical_cores()
    shared = default_shared_dir()
    fp32 = args.fp32 or exported_onnx(shared / "models" / "minilm-l6-squad", default_cache_dir())
    _, feats = load_features(DataPaths.defaults(), SquadConfig(), progress=False)
    rng = np.random.default_rng(args.seed)
    idx = rng.choice(len(feats), size=min(args.samples, len(feats)), replace=False)
    lengths = feats.lengths[idx]
    batches = plan_batches(lengths, BatcherConfig(max_batch_size=args.batch_size, token_budget=args.token_budget))

    def run(path: Path) -> tuple[float, dict[int, np.ndarray]]:
        backend = OnnxRuntimeBackend(path, device="cpu", threads=threads)
        out: dict[int, np.ndarray] = {}

        def one_pass() -> float:
            t0 = time.perf_counter()
            for b in batches:
                sel = idx[b]
                n = int(lengths[b].max())
                logits = backend.predict(feats.input_ids[sel, :n], feats.input_mask[sel, :n],
                                         feats.segment_ids[sel, :n])
                for row, i in enumerate(sel.tolist()):
                    out[i] = logits[row, : feats.lengths[i]]
            return time.perf_counter() - t0

        sel = idx[batches[0]]  # warm-up
        n = int(lengths[batches[0]].max())
        backend.predict(feats.input_ids[sel, :n], feats.input_mask[sel, :n], feats.segment_ids[sel, :n])
        best = min(one_pass() for _ in range(args.repeat))
        return len(idx) / best, out

    flags = cpu_flags()
    print(f"CPU: avx2={'avx2' in flags} avx512f={'avx512f' in flags} avx512_vnni={'avx512_vnni' in flags} "
          f"avx_vnni={'avx_vnni' in flags}; ORT threads {threads}; {len(idx)} dev features, {len(batches)} batches, "
          f"mean length {lengths.mean():.1f}")
    results = []
    base_sps, base = run(fp32)
    results.append({"model": str(fp32), "precision": "fp32", "samples_per_second": base_sps,
                    **integer_matmuls(fp32, threads)})
    for path in args.int8:
        sps, got = run(path)
        agree = float(np.mean([base[i][:, 0].argmax() == got[i][:, 0].argmax() for i in base]))
        corr = float(np.mean([np.corrcoef(base[i][:, 0], got[i][:, 0])[0, 1] for i in base]))
        results.append({"model": str(path), "precision": "int8", "samples_per_second": sps,
                        "speedup_vs_fp32": sps / base_sps, "start_top1_agreement": agree,
                        "start_logit_correlation": corr, **integer_matmuls(path, threads)})
    print(f"{'model':60s} {'samples/s':>10s} {'x fp32':>7s} {'int MatMul':>10s} {'top-1 agree':>11s}")
    for r in results:
        print(f"{r['model'][-60:]:60s} {r['samples_per_second']:10.2f} {r.get('speedup_vs_fp32', 1.0):7.2f} "
              f"{r['integer_matmuls']:10d} {r.get('start_top1_agreement', 1.0):11.3f}")
    if args.json:
        args.json.write_text(json.dumps({"threads": threads, "samples": len(idx), "results": results}, indent=2) + "\n")
    for r in results[1:]:
        assert r["integer_matmuls"] > 0, f"{r['model']}: ORT runs no integer MatMul"
        assert r["start_top1_agreement"] > 0.5 and r["start_logit_correlation"] > 0.8, r
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
