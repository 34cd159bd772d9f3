"""``mlperf-bert bench``: speed of several configurations measured side by side in one run (not a test)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path

from mlperf_bert.commands.common import add_data_args, data_paths, default_model



def speed_configs(registry) -> dict[str, tuple[str, dict, str]]:
    """Every backend's ``bench`` configurations: name -> (backend, options, GEMM kind for the peak).

    They come from the backends' specs (``BackendSpec.speed_configs``); a configuration whose GEMM kind
    ends in ``int8`` runs ``--int8-model``.
    """
    return {name: (spec.name, dict(options), gemm) for spec in registry.specs()
            for name, (options, gemm) in spec.speed_configs.items()}


def register(sub: argparse._SubParsersAction, registry) -> None:
    p = sub.add_parser("bench", help="measure configurations side by side (reference-style vs ours vs raw loop)",
                       description=__doc__ + " See mlperf_bert.speed for what is measured and the FLOP formula.")
    add_data_args(p)
    p.add_argument("--model", type=Path, help="PyTorch/HF model (default: the small model in ../shared)")
    p.add_argument("--int8-model", type=Path, help="an int8 ONNX file for the ort-int8 configuration")
    p.add_argument("--configs", default="ort-fp32,ort-fp32-unfused,torch-fp32",
                   help=f"comma-separated, from: {', '.join(speed_configs(registry))} (default ort-fp32,ort-fp32-unfused,torch-fp32; "
                        "torch-bf16 only pays on CPUs with AVX-512 BF16 or AMX)")
    p.add_argument("--samples", type=int, default=1024, help="Offline samples per measurement (default 1024)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--token-budget", type=int, default=16384)
    p.add_argument("--threads", type=int, help="intra-op threads (default: physical cores)")
    p.add_argument("--server-seconds", type=float, default=0.0,
                   help="also run Server for this long at 70%% of the Offline rate, and SingleStream (default: off)")
    p.add_argument("--accuracy", action="store_true", help="also measure each configuration's full-dev F1")
    p.add_argument("--json", type=Path, help="write the results as JSON here")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    import numpy as np

    from mlperf_bert import speed
    from mlperf_bert.backends.base import BackendConfig
    from mlperf_bert.config import SquadConfig
    from mlperf_bert.errors import ConfigError
    from mlperf_bert.qsl.qsl import SquadQSL
    from mlperf_bert.machine import machine_summary, physical_cores
    from mlperf_bert.squad.cache import load_features
    from mlperf_bert.sut.batcher import BatcherConfig
    from mlperf_bert.sut.sut import SUTConfig

    registry = args.registry
    configs = speed_configs(registry)
    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    for n in names:
        if n not in configs:
            raise ConfigError(f"unknown bench config {n!r}; choose from {', '.join(configs)}")
        if configs[n][2].endswith("int8") and not args.int8_model:
            raise ConfigError(f"config {n} needs --int8-model FILE.onnx")
    paths = data_paths(args)
    threads = args.threads or physical_cores()
    model = args.model or default_model()
    say = lambda m: print(f"mlperf-bert: {m}", flush=True)  # noqa: E731
    onnx_path = registry.prepare(BackendConfig("onnxruntime", model, "cpu", threads, {"transformer_optimize": False},
                                               paths.cache_dir), say).model
    with open(model / "config.json" if model.is_dir() else model.parent / "bert_config.json") as fh:
        cfg = json.load(fh)
    shape = speed.ModelShape(cfg["num_hidden_layers"], cfg["hidden_size"], cfg["intermediate_size"])
    examples, features = load_features(paths, SquadConfig(), True)
    ours = SUTConfig(scenario="Offline", batcher=BatcherConfig(max_batch_size=args.batch_size,
                                                               token_budget=args.token_budget))
    out: dict = {"machine": machine_summary(), "threads": threads, "samples": args.samples, "model": str(model),
                 "flop_formula": "2*n*L*(4h^2+2hI) + 4*n^2*h*L per sample of n real tokens", "configs": {}}
    print(f"mlperf-bert bench: {out['machine'].get('cpu', '?')}, {threads} threads, {args.samples} samples, "
          f"model {model.name} (L={shape.layers}, h={shape.hidden}, I={shape.intermediate})", flush=True)
    with tempfile.TemporaryDirectory() as tmp, SquadQSL(features) as qsl:
        tmp = Path(tmp)
        ref_backend = registry.load(BackendConfig("onnxruntime", onnx_path, "cpu", threads))
        a = speed.loadgen_run(ref_backend, qsl, speed.reference_style_sut(), tmp / "a", samples=args.samples)
        ref_backend.close()
        issued = a["issued"]
        out["reference_style"] = {"samples_per_second": a["samples_per_second"],
                                  "flops_per_sample_padded": speed.ModelShape.flops(shape, np.array([384]))}
        print(f"a. reference-style SUT (ORT fp32, batch 1, padded to 384): {a['samples_per_second']:.2f} samples/s",
              flush=True)
        peaks: dict = {}
        for name in names:
            backend_name, options, gemm = configs[name]
            mpath = args.int8_model if gemm.endswith("int8") else model
            be_cfg = registry.prepare(BackendConfig(backend_name, mpath, "cpu", threads, dict(options), paths.cache_dir),
                                      say)
            be = registry.load(be_cfg)
            speed.raw_loop(be, qsl, issued[: min(64, len(issued))], ours.batcher)  # warm-up
            b = speed.loadgen_run(be, qsl, ours, tmp / name, samples=args.samples)
            c_s = speed.raw_loop(be, qsl, b["issued"], ours.batcher)
            c = len(b["issued"]) / c_s
            flops = shape.flops(qsl.lengths[b["issued"]]) / len(b["issued"])
            eff = flops * b["samples_per_second"]
            if gemm not in peaks:
                peaks[gemm] = speed.gemm_peak(gemm, threads)
            row = {"backend": backend_name, "options": options, "model": str(mpath),
                   "loadgen_offline_samples_per_second": b["samples_per_second"],
                   "raw_loop_samples_per_second": c, "b_over_a": b["samples_per_second"] / a["samples_per_second"],
                   "b_over_c": b["samples_per_second"] / c, "flops_per_sample": flops,
                   "effective_flops": eff, "gemm_peak_kind": gemm, "gemm_peak_flops": peaks[gemm],
                   "effective_over_peak": eff / peaks[gemm]}
            if args.server_seconds > 0:
                srv = dataclasses.replace(ours, scenario="Server")
                s = speed.loadgen_run(be, qsl, srv, tmp / (name + "-server"), duration_s=args.server_seconds,
                                      target_qps=0.7 * b["samples_per_second"])
                ss = speed.loadgen_run(be, qsl, dataclasses.replace(ours, scenario="SingleStream"),
                                       tmp / (name + "-ss"), duration_s=args.server_seconds,
                                       expected_latency_ms=1000.0 / max(1.0, c))
                row["server"] = {"target_qps": 0.7 * b["samples_per_second"], "samples_per_second":
                                 s["samples_per_second"], "p99_ms": s["latency_ms"].get(99.0), "valid": s["valid"]}
                row["singlestream_p90_ms"] = ss["latency_ms"].get(90.0)
            be.close()
            if args.accuracy:
                row["f1"] = _f1(name, be_cfg, registry, paths, ours)
            out["configs"][name] = row
            print(_row_text(name, row), flush=True)
    _print_table(out)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str) + "\n")
    return 0


def _f1(name, backend_cfg, registry, paths, ours) -> float:
    from mlperf_bert.loadgen.settings import LoadGenConfig
    from mlperf_bert.runner import RunConfig, run

    with tempfile.TemporaryDirectory() as tmp:
        cfg = RunConfig(data=paths, backend=backend_cfg, sut=ours, loadgen=LoadGenConfig(scenario="Offline"),
                        modes=("accuracy",), output_dir=Path(tmp), run_name=name)
        return run(cfg, registry=registry, progress=False).accuracy.f1


def _row_text(name: str, r: dict) -> str:
    return (f"   {name}: LoadGen {r['loadgen_offline_samples_per_second']:.2f} samples/s, raw loop "
            f"{r['raw_loop_samples_per_second']:.2f}, b/a {r['b_over_a']:.2f}, b/c {r['b_over_c']:.3f}, "
            f"{r['effective_flops'] / 1e9:.0f} GFLOP/s = {100 * r['effective_over_peak']:.0f}% of "
            f"{r['gemm_peak_kind']} GEMM peak {r['gemm_peak_flops'] / 1e9:.0f} GFLOP/s"
            + (f", F1 {r['f1']:.3f}" if "f1" in r else ""))


def _print_table(out: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"mlperf-bert bench ({out['samples']} samples, {out['threads']} threads; "
                    f"a = reference-style {out['reference_style']['samples_per_second']:.2f} samples/s)")
    for col in ("config", "b: LoadGen Offline", "c: raw loop", "b/a", "b/c", "eff. GFLOP/s", "GEMM peak",
                "eff/peak", "Server", "SS p90", "F1"):
        t.add_column(col, justify="right")
    for name, r in out["configs"].items():
        srv = r.get("server")
        t.add_row(name, f"{r['loadgen_offline_samples_per_second']:.2f}", f"{r['raw_loop_samples_per_second']:.2f}",
                  f"{r['b_over_a']:.2f}", f"{r['b_over_c']:.3f}", f"{r['effective_flops'] / 1e9:.0f}",
                  f"{r['gemm_peak_flops'] / 1e9:.0f} ({r['gemm_peak_kind']})", f"{100 * r['effective_over_peak']:.0f}%",
                  f"{srv['samples_per_second']:.1f}/s p99 {srv['p99_ms']:.0f} ms" if srv else "-",
                  f"{r['singlestream_p90_ms']:.1f} ms" if r.get("singlestream_p90_ms") else "-",
                  f"{r['f1']:.3f}" if "f1" in r else "-")
    Console(width=200).print(t)
