"""The GPU checks and benchmarks of issue 14, as one time-bounded run: a JSON and a text table under --out.

Steps (each in its own process with its own time limit, all within ``--budget-s``; a step that fails or
runs out of time is reported with its reason and the rest go on; ``--skip`` leaves steps out):

1. ``env``: GPU name, driver, memory (nvidia-smi), versions (torch + CUDA, transformers, onnxruntime and
   its providers, LoadGen, mlperf-bert).
1b. ``tests``: the ``gpu``-marked tests (``pytest -m gpu tests/unit/test_gpu_backends.py``: CUDA logits vs CPU in
   fp32/bf16/fp16, CUDA graphs vs eager, copy stream on vs off).
2. ``f1``: the small SQuAD model's full-dev F1 through LoadGen accuracy mode (``runner.run``, the
   code ``mlperf-bert run --device cuda --mode accuracy`` runs) in fp32, bf16 and fp16 on the GPU; goals:
   within 0.02 (fp32) and 0.1 (bf16/fp16) of the CPU fp32 F1 of the same weights (``stage.json``).
3. ``large``: a random-weight BERT-Large (``convert.random_bert``) over the real dev lengths, LoadGen
   Offline (``speed.loadgen_run``) and the raw backend loop over the same batches (``speed.raw_loop``), in
   bf16 and fp16, eager and with CUDA graphs; goals: bf16 >= 4,800 samples/s, LoadGen/raw >= 0.97.
4. ``server``: a short Server find-peak (``finder.find_peak_server``, p99 <= 130 ms) with BERT-Large bf16;
   goal: >= 90% of the Offline bf16 rate.
5. ``ort``: ONNX Runtime's CUDA (fp16) and TensorRT (fp16) providers on BERT-Large when this onnxruntime
   has them (else skipped, saying which providers it has); goal: >= 6,000 samples/s.

Output (``--out``): ``summary.json`` (everything measured, with the machine and versions), ``summary.txt``
(the table) and ``steps.log`` (every step's output). No number is printed that was not measured here.

``--cpu-dry-run`` runs every step on the CPU with a tiny random BERT (2 layers, hidden 64), 5 questions
and a few dozen samples: the whole path except CUDA itself (tests/unit/test_gpu_script.py).

Usage (the device machine; benchmarks/gpu_h200.sh installs and calls this)::

    python benchmarks/gpu_h200.py --out "$OUT" --stage .gpu-stage [--budget-s 420] [--skip ort]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEPS = ("env", "tests", "f1", "large", "server", "ort")
#: Most seconds each step may take on the GPU (the run's budget may cut them shorter).
STEP_MAX_S = {"env": 60, "tests": 90, "f1": 150, "large": 170, "server": 110, "ort": 200}
#: A step is skipped when less than this is left of the budget.
STEP_MIN_S = {"env": 5, "tests": 20, "f1": 40, "large": 40, "server": 30, "ort": 60}
#: Issue 14's goals.
GOALS = {"bf16_offline": 4800.0, "ort_trt_offline": 6000.0, "server_over_offline": 0.90, "loadgen_over_raw": 0.97,
         "f1_tol_fp32": 0.02, "f1_tol_half": 0.10, "server_p99_ms": 130.0}
#: Full-dev F1 of the small model in PyTorch fp32 on CPU (docs/golden.md), when stage.json has no measured one.
SMALL_MODEL_F1 = 78.91206147893796  # = accuracy.targets.KNOWN_MODELS["minilm-l6-squad"]; the driver imports the package lazily


# -- the steps (each runs in a worker process: ``--worker STEP``) --------------------------------------------

class Ctx:
    """What a worker needs: paths, mode, and a result file it rewrites after each item (so a step cut off
    by its time limit keeps what it measured)."""

    def __init__(self, args: argparse.Namespace, step: str) -> None:
        self.args = args
        self.step = step
        self.dry = args.cpu_dry_run
        self.device = "cpu" if self.dry else "cuda"
        self.work = Path(args.work)
        self.stage = Path(args.stage)
        self.result: dict = {}
        self.path = self.work / f"{step}.json"

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.result, indent=2, default=str) + "\n")
        os.replace(tmp, self.path)

    def data_paths(self):
        from mlperf_bert.config import DataPaths, default_shared_dir

        stage_data = self.stage / "data"
        data = stage_data if (stage_data / "dev-v1.1.json").is_file() else default_shared_dir() / "data"
        return DataPaths(dataset=data / "dev-v1.1.json", vocab=data / "vocab.txt", cache_dir=self.work / "cache")

    def small_model(self) -> Path:
        from mlperf_bert.config import default_shared_dir

        staged = self.stage / "models" / "minilm-l6-squad-fp16"
        return staged if staged.is_dir() else default_shared_dir() / "models" / "minilm-l6-squad"

    def reference_f1(self) -> tuple[float, str]:
        stage = self.stage / "stage.json"
        if self.small_model().parent.parent == self.stage and stage.is_file():
            ref = json.loads(stage.read_text())["reference_f1"]
            return float(ref["value"]), ref["what"]
        return SMALL_MODEL_F1, "full-dev F1 of the fp32 original on CPU (docs/golden.md)"

    def max_examples(self) -> int | None:
        return 5 if self.dry else None

    def batcher(self):
        from mlperf_bert.sut.batcher import batcher_for_device, device_kind

        return batcher_for_device(device_kind(self.device))

    def large_model(self) -> Path:
        """The random BERT-Large folder (tiny in a dry run), built once in the work folder."""
        from mlperf_bert.convert.names import BERT_LARGE, BertShape
        from mlperf_bert.convert.random_bert import build_random_bert

        shape = BertShape(2, 64, 4, 128) if self.dry else BERT_LARGE
        out = self.work / ("bert-tiny-random" if self.dry else "bert-large-random")
        if not (out / "model.safetensors").is_file():
            t0 = time.perf_counter()
            build_random_bert(out, shape, seed=0, overwrite=True)
            print(f"built {out} in {time.perf_counter() - t0:.1f} s", flush=True)
        return out


def step_env(ctx: Ctx) -> None:
    import importlib.metadata as md

    r = ctx.result
    r["python"] = platform.python_version()
    r["platform"] = platform.platform()
    r["cpus"] = os.cpu_count()
    try:
        q = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm",
                            "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
        r["nvidia_smi"] = q.stdout.strip() or q.stderr.strip()
        parts = [p.strip() for p in q.stdout.strip().splitlines()[0].split(",")] if q.stdout.strip() else []
        if len(parts) >= 2:
            r["gpu"], r["driver"] = parts[0], parts[1]
            r["gpu_memory"] = parts[2] if len(parts) > 2 else None
    except (OSError, subprocess.SubprocessError) as exc:
        r["nvidia_smi"] = f"not available: {exc}"
    versions = {}
    for pkg in ("mlperf-bert", "torch", "transformers", "onnxruntime", "onnxruntime-gpu", "tensorrt",
                "tensorrt-cu12", "mlcommons-loadgen", "numpy", "tokenizers", "safetensors", "onnx"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    r["versions"] = versions
    import torch

    r["torch_cuda"] = torch.version.cuda
    r["cuda_available"] = torch.cuda.is_available()
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        r["torch_device"] = {"name": props.name, "capability": f"{props.major}.{props.minor}",
                             "multiprocessors": props.multi_processor_count,
                             "memory_gib": round(props.total_memory / 2**30, 1)}
        r["cudnn"] = torch.backends.cudnn.version()
    try:
        import onnxruntime as ort

        r["onnxruntime_providers"] = ort.get_available_providers()
    except ModuleNotFoundError:
        r["onnxruntime_providers"] = []
    ctx.save()


def step_tests(ctx: Ctx) -> None:
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider",
           str(ROOT / "tests" / "unit" / "test_gpu_backends.py")]
    q = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    print(q.stdout[-6000:], q.stderr[-2000:], flush=True)
    lines = [ln for ln in q.stdout.strip().splitlines() if ln.strip()]
    ctx.result.update(exit=q.returncode, summary=lines[-1] if lines else q.stderr.strip()[-300:])
    ctx.save()


def step_f1(ctx: Ctx) -> None:
    from mlperf_bert.backends.base import BackendConfig
    from mlperf_bert.backends.registry import BackendRegistry
    from mlperf_bert.loadgen.settings import LoadGenConfig
    from mlperf_bert.runner import RunConfig, run
    from mlperf_bert.sut.sut import SUTConfig

    registry = BackendRegistry.from_entry_points()
    ref, what = ctx.reference_f1()
    model = ctx.small_model()
    full = ctx.max_examples() is None
    ctx.result.update(model=str(model), reference_f1=ref, reference=what, full_dev=full, runs={})
    precisions = ("fp32", "bf16") if ctx.dry else ("fp32", "bf16", "fp16")
    for precision in precisions:
        t0 = time.perf_counter()
        cfg = RunConfig(data=ctx.data_paths(),
                        backend=BackendConfig("pytorch", model, ctx.device, options={"precision": precision},
                                              cache_dir=ctx.work / "cache"),
                        sut=SUTConfig("Offline", ctx.batcher()), loadgen=LoadGenConfig("Offline"),
                        modes=("accuracy",), output_dir=ctx.work / "runs", run_name=f"f1-{precision}",
                        max_examples=ctx.max_examples(), probe=False)
        res = run(cfg, registry=registry, progress=False, on_event=lambda m: print(m, flush=True))
        tol = GOALS["f1_tol_fp32"] if precision == "fp32" else GOALS["f1_tol_half"]
        diff = res.accuracy.f1 - ref
        ctx.result["runs"][precision] = {
            "f1": res.accuracy.f1, "exact_match": res.accuracy.exact_match, "diff": diff, "tolerance": tol,
            "passed": (abs(diff) <= tol) if full else None, "seconds": round(time.perf_counter() - t0, 1),
            "backend": res.info.get("backend", {}).get("detail")}
        ctx.save()


def _qsl_features(ctx: Ctx):
    from mlperf_bert.config import SquadConfig
    from mlperf_bert.runner import subset_features
    from mlperf_bert.squad.cache import load_features

    examples, features = load_features(ctx.data_paths(), SquadConfig(), False)
    return subset_features(examples, features, ctx.max_examples())[1]


def _offline_row(registry, ctx: Ctx, qsl, name: str, backend_cfg, samples: int) -> dict:
    """LoadGen Offline and the raw loop over the same batches for one backend configuration."""
    from mlperf_bert import speed as bench
    from mlperf_bert.sut.sut import SUTConfig

    t0 = time.perf_counter()
    be = registry.load(backend_cfg)
    load_s = time.perf_counter() - t0
    sut = SUTConfig("Offline", ctx.batcher())
    try:
        import numpy as np

        warm = np.random.default_rng(0).permutation(qsl.count)[: min(qsl.count, 4096 if not ctx.dry else 32)]
        t1 = time.perf_counter()
        _raw_loop_in_thread(be, qsl, warm, sut.batcher)  # warm-up; with CUDA graphs it also captures them
        _raw_loop_in_thread(be, qsl, warm, sut.batcher)
        warm_s = time.perf_counter() - t1
        b = bench.loadgen_run(be, qsl, sut, ctx.work / "runs" / name, samples=samples)
        raw = len(b["issued"]) / _raw_loop_in_thread(be, qsl, b["issued"], sut.batcher)
        detail = be.describe() if hasattr(be, "describe") else {}
    finally:
        be.close()
        _free_cuda()
    return {"backend": backend_cfg.name, "options": dict(backend_cfg.options), "samples": int(len(b["issued"])),
            "loadgen_offline_samples_per_second": b["samples_per_second"], "raw_loop_samples_per_second": raw,
            "loadgen_over_raw": b["samples_per_second"] / raw, "valid": b["valid"], "load_s": round(load_s, 1),
            "warmup_s": round(warm_s, 1), "detail": detail}


def _raw_loop_in_thread(be, qsl, indices, batcher) -> float:
    """``bench.raw_loop`` in a thread of its own, as the SUT's worker calls the backend (on CPU torch's
    intra-op pool behaves differently in the main thread, which would skew LoadGen/raw)."""
    import threading

    from mlperf_bert import speed as bench

    out: dict = {}

    def run() -> None:
        try:
            out["s"] = bench.raw_loop(be, qsl, indices, batcher)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            out["error"] = exc

    t = threading.Thread(target=run, name="raw-loop")
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["s"]


def _free_cuda() -> None:
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ModuleNotFoundError:
        pass


def step_large(ctx: Ctx) -> None:
    from mlperf_bert.backends.base import BackendConfig
    from mlperf_bert.backends.registry import BackendRegistry
    from mlperf_bert.qsl.qsl import SquadQSL

    registry = BackendRegistry.from_entry_points()
    model = ctx.large_model()
    features = _qsl_features(ctx)
    configs = ([("torch-fp32", {"precision": "fp32"}), ("torch-bf16", {"precision": "bf16"})] if ctx.dry else
               [("torch-bf16", {"precision": "bf16"}), ("torch-bf16-graphs", {"precision": "bf16", "cuda_graphs": True}),
                ("torch-fp16", {"precision": "fp16"}), ("torch-fp16-graphs", {"precision": "fp16", "cuda_graphs": True})])
    samples = 32 if ctx.dry else 16_384
    ctx.result.update(model=str(model), features=len(features), samples=samples, configs={})
    with SquadQSL(features) as qsl:
        for name, options in configs:
            if name in ctx.args.skip_configs:
                continue
            cfg = BackendConfig("pytorch", model, ctx.device, options=options, cache_dir=ctx.work / "cache")
            try:
                ctx.result["configs"][name] = _offline_row(registry, ctx, qsl, name, cfg, samples)
            except Exception as exc:  # noqa: BLE001 - one configuration failing must not lose the others
                ctx.result["configs"][name] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}
            ctx.save()


def step_server(ctx: Ctx) -> None:
    import dataclasses

    from mlperf_bert.backends.base import BackendConfig
    from mlperf_bert.finder import FinderConfig, find_peak_server
    from mlperf_bert.loadgen.settings import LoadGenConfig
    from mlperf_bert.runner import RunConfig
    from mlperf_bert.sut.sut import SUTConfig

    model = ctx.large_model()
    base = RunConfig(data=ctx.data_paths(),
                     backend=BackendConfig("pytorch", model, ctx.device, options={"precision": "bf16"},
                                           cache_dir=ctx.work / "cache"),
                     sut=SUTConfig("Server", ctx.batcher()),
                     loadgen=LoadGenConfig("Server", rules="quick"), modes=("performance",),
                     output_dir=ctx.work / "runs", max_examples=ctx.max_examples())
    finder = (FinderConfig(trial_s=0.5, confirm_s=1.0, confirm_queries=459, max_trials=2, max_confirms=1, probe_s=0.5)
              if ctx.dry else
              FinderConfig(trial_s=5.0, confirm_s=10.0, confirm_queries=2000, max_trials=4, max_confirms=1,
                           probe_s=2.0, tolerance=0.1))
    ctx.result["finder"] = dataclasses.asdict(finder)
    res = find_peak_server(base, finder, name="server-find-peak", progress=False,
                           on_event=lambda m: print(m, flush=True))
    ctx.result.update(confirmed=res.confirmed, peak_qps=res.value, probe_qps=res.probe_qps, reason=res.reason,
                      trials=[dataclasses.asdict(t) for t in res.trials],
                      confirms=[dataclasses.asdict(t) for t in res.confirms],
                      p99_ms=res.confirms[-1].p99_ms if res.confirms else None)
    ctx.save()


def step_ort(ctx: Ctx) -> None:
    import onnxruntime as ort

    from mlperf_bert.backends.base import BackendConfig
    from mlperf_bert.backends.registry import BackendRegistry
    from mlperf_bert.qsl.qsl import SquadQSL

    available = ort.get_available_providers()
    ctx.result.update(onnxruntime=ort.__version__, providers=available, configs={})
    if ctx.dry:
        configs = [("ort-cpu", {"provider": "cpu"})]
    else:
        configs = [(n, o) for n, o, ep in (("ort-cuda-fp16", {"provider": "cuda", "fp16": True}, "CUDAExecutionProvider"),
                                           ("ort-trt-fp16", {"provider": "tensorrt", "fp16": True},
                                            "TensorrtExecutionProvider"))
                   if ep in available]
    if not configs:
        ctx.result["skipped"] = (f"onnxruntime {ort.__version__} here has only {', '.join(available)}: no CUDA or "
                                 "TensorRT provider (the onnxruntime-gpu wheel is not installed on this machine)")
        ctx.save()
        return
    registry = BackendRegistry.from_entry_points()
    model = ctx.large_model()
    features = _qsl_features(ctx)
    samples = 32 if ctx.dry else 16_384
    with SquadQSL(features) as qsl:
        for name, options in configs:
            try:
                t0 = time.perf_counter()
                cfg = registry.prepare(BackendConfig("onnxruntime", model, ctx.device, options=options,
                                                     cache_dir=ctx.work / "cache"), lambda m: print(m, flush=True))
                prep = time.perf_counter() - t0
                ctx.result["configs"][name] = {**_offline_row(registry, ctx, qsl, name, cfg, samples),
                                               "prepare_s": round(prep, 1)}
            except Exception as exc:  # noqa: BLE001 - one provider failing must not lose the others
                ctx.result["configs"][name] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}
            ctx.save()


WORKERS = {"env": step_env, "tests": step_tests, "f1": step_f1, "large": step_large, "server": step_server,
           "ort": step_ort}


# -- the orchestrator -------------------------------------------------------------------------------------

def run_steps(args: argparse.Namespace) -> dict:
    """Run each step in a worker process within its time limit and the budget; returns every step's record."""
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "steps.log"
    deadline = time.monotonic() + args.budget_s
    records: dict = {}
    for step in STEPS:
        rec: dict = {}
        records[step] = rec
        remaining = deadline - time.monotonic()
        if step in args.skip:
            rec["status"] = "skipped (--skip)"
            continue
        if remaining < STEP_MIN_S[step] * (0.1 if args.cpu_dry_run else 1):
            rec["status"] = f"skipped: {remaining:.0f} s of the {args.budget_s:.0f} s budget left"
            continue
        limit = min(STEP_MAX_S[step] * (1 if not args.cpu_dry_run else 2), remaining)
        (work / f"{step}.json").unlink(missing_ok=True)
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", step, "--work", str(work),
               "--stage", str(args.stage), "--out", str(out)]
        cmd += ["--cpu-dry-run"] if args.cpu_dry_run else []
        cmd += ["--skip-configs", ",".join(args.skip_configs)] if args.skip_configs else []
        t0 = time.monotonic()
        with log.open("a") as fh:
            fh.write(f"\n===== {step} (limit {limit:.0f} s) =====\n")
            fh.flush()
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
                                    env={**os.environ, "PYTHONUNBUFFERED": "1"})
            try:
                rc = proc.wait(timeout=limit)
                rec["status"] = "ok" if rc == 0 else f"failed (exit {rc}; see steps.log)"
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                rec["status"] = f"stopped at its {limit:.0f} s limit (partial results kept)"
        rec["seconds"] = round(time.monotonic() - t0, 1)
        result = work / f"{step}.json"
        if result.is_file():
            rec["result"] = json.loads(result.read_text())
        print(f"gpu_h200: {step}: {rec['status']} ({rec['seconds']} s)", flush=True)
    return records


def _fmt(v, spec: str = ".1f") -> str:
    return "-" if v is None else format(v, spec)


def _verdict(ok: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: "n/a"}[ok]


def summarize(records: dict, args: argparse.Namespace) -> tuple[dict, str]:
    """The summary (JSON) and the text table; goals checked only where measured."""
    env = records.get("env", {}).get("result", {})
    lines = ["mlperf-bert GPU run (issue 14)" + (" -- CPU DRY RUN, not a GPU measurement" if args.cpu_dry_run else ""),
             f"GPU: {env.get('gpu', '-')}  driver {env.get('driver', '-')}  memory {env.get('gpu_memory', '-')}",
             "versions: " + ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items())
             + f"; torch CUDA {env.get('torch_cuda')}; ORT providers {env.get('onnxruntime_providers')}", ""]
    checks = []
    tests = records.get("tests", {}).get("result", {})
    if tests:
        lines.append(f"GPU tests (pytest -m gpu): {tests.get('summary')}")
        said = str(tests.get("summary"))
        ok = tests.get("exit") == 0 and "passed" in said and "skipped" not in said
        checks.append(("gpu-marked tests pass", None if args.cpu_dry_run else ok))
        lines.append("")
    f1 = records.get("f1", {}).get("result", {})
    if f1:
        lines.append(f"Small model F1 (reference {f1['reference_f1']:.5f}: {f1['reference']})")
        for p, r in f1.get("runs", {}).items():
            lines.append(f"  {p:5s} F1 {r['f1']:.5f}  diff {r['diff']:+.5f}  tol {r['tolerance']}  "
                         f"{_verdict(r['passed'])}  ({r['seconds']} s)")
            checks.append((f"F1 {p} within {r['tolerance']}", r["passed"]))
    large = records.get("large", {}).get("result", {})
    offline_bf16 = None
    rows = [("large", n, r) for n, r in large.get("configs", {}).items()]
    rows += [("ort", n, r) for n, r in records.get("ort", {}).get("result", {}).get("configs", {}).items()]
    if rows:
        lines += ["", "BERT-Large shapes (random weights), real dev lengths, Offline, "
                      f"{large.get('samples', '-')} samples",
                  f"  {'config':20s} {'LoadGen s/s':>12s} {'raw s/s':>10s} {'LG/raw':>7s}  goal"]
    for kind, name, r in rows:
        if "error" in r:
            lines.append(f"  {name:20s} error: {r['error']}")
            continue
        sps, ratio = r["loadgen_offline_samples_per_second"], r["loadgen_over_raw"]
        goal = ""
        if kind == "large" and "bf16" in name:
            offline_bf16 = max(offline_bf16 or 0.0, sps)
        if kind == "large" and name == "torch-bf16":
            goal = f">= {GOALS['bf16_offline']:.0f}"
            checks.append(("bf16 Offline >= 4,800 samples/s", None if args.cpu_dry_run else sps >= GOALS["bf16_offline"]))
        if kind == "ort":
            goal = f">= {GOALS['ort_trt_offline']:.0f}"
            checks.append((f"{name} >= 6,000 samples/s", None if args.cpu_dry_run else sps >= GOALS["ort_trt_offline"]))
        checks.append((f"{name} LoadGen/raw >= 0.97", None if args.cpu_dry_run else ratio >= GOALS["loadgen_over_raw"]))
        lines.append(f"  {name:20s} {sps:12.1f} {r['raw_loop_samples_per_second']:10.1f} {ratio:7.3f}  {goal}")
    srv = records.get("server", {}).get("result", {})
    if srv:
        frac = (srv["peak_qps"] / offline_bf16) if offline_bf16 and srv.get("confirmed") else None
        lines += ["", f"Server find-peak (bf16): peak {_fmt(srv.get('peak_qps'))} QPS, p99 {_fmt(srv.get('p99_ms'))} ms, "
                      f"confirmed {srv.get('confirmed')}, {_fmt(frac and 100 * frac)}% of the best bf16 Offline"
                      + (f" ({srv['reason']})" if srv.get("reason") else "")]
        checks.append(("Server >= 90% of Offline at p99 <= 130 ms",
                       None if args.cpu_dry_run or frac is None else frac >= GOALS["server_over_offline"]))
    ort_skip = records.get("ort", {}).get("result", {}).get("skipped")
    if ort_skip:
        lines += ["", f"ONNX Runtime GPU: skipped: {ort_skip}"]
    lines += ["", "steps: " + "; ".join(f"{s} {r.get('status')} ({r.get('seconds', 0)} s)" for s, r in records.items()),
              "", "goals:"] + [f"  {_verdict(ok):4s} {what}" for what, ok in checks]
    summary = {"dry_run": args.cpu_dry_run, "goals": GOALS, "checks": [{"check": w, "passed": ok} for w, ok in checks],
               "steps": records, "budget_s": args.budget_s}
    return summary, "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=os.environ.get("OUT", "gpu-out"), help="where summary.json/.txt go ($OUT)")
    p.add_argument("--work", default="/tmp/mlperf-bert-gpu", help="models, caches and run folders")
    p.add_argument("--stage", default=str(ROOT / ".gpu-stage"), help="staged data (benchmarks/gpu_stage.py)")
    p.add_argument("--budget-s", type=float, default=420.0, help="seconds for all steps together (default 420)")
    p.add_argument("--skip", default="", help=f"comma-separated steps to leave out ({', '.join(STEPS)})")
    p.add_argument("--skip-configs", default="", help="comma-separated benchmark configurations to leave out")
    p.add_argument("--cpu-dry-run", action="store_true", help="every step on the CPU with tiny models (no GPU)")
    p.add_argument("--worker", choices=STEPS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.skip = {s for s in args.skip.split(",") if s}
    args.skip_configs = [s for s in args.skip_configs.split(",") if s]
    unknown = args.skip - set(STEPS)
    if unknown:
        p.error(f"--skip: unknown steps {', '.join(sorted(unknown))}; choose from {', '.join(STEPS)}")
    if args.worker:
        ctx = Ctx(args, args.worker)
        ctx.work.mkdir(parents=True, exist_ok=True)
        WORKERS[args.worker](ctx)
        return 0
    t0 = time.monotonic()
    records = run_steps(args)
    summary, text = summarize(records, args)
    summary["wall_s"] = round(time.monotonic() - t0, 1)
    out = Path(args.out)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    (out / "summary.txt").write_text(text)
    print(text, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
