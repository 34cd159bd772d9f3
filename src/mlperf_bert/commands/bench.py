"""``mlperf-bert bench``: the side-by-side speed table, every row measured in this one process (not a test).

Rows, on the same dev samples (LoadGen's fixed seeds): the reference-style SUT through LoadGen and as a plain
padded loop; our SUT at the built-in defaults and tuned (a matching profile, else tuned here with a small
budget), each with the raw backend loop over the same batches; the null backend through LoadGen Offline and
Server; the best fp32 GEMM (numpy/OpenBLAS, torch, ONNX Runtime). See ``mlperf_bert.speed``.
"""

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
    p = sub.add_parser("bench", help="the speed table: reference-style vs ours default vs ours tuned vs raw loop, "
                                     "null backend, GEMM peak",
                       description=__doc__)
    add_data_args(p)
    p.add_argument("--model", type=Path, help="PyTorch/HF model (default: the small model in ../shared)")
    p.add_argument("--bert-large", action="store_true",
                   help="BERT-Large shapes: a random-weight BERT-Large (24 layers, hidden 1024) built once in the "
                        "cache, exported through 'prepare'; default --samples 32")
    p.add_argument("--int8-model", type=Path, help="an int8 ONNX file for the ort-int8 configuration")
    p.add_argument("--configs", default="ort-fp32",
                   help=f"comma-separated, from: {', '.join(speed_configs(registry))} (default ort-fp32)")
    p.add_argument("--samples", type=int, help="Offline samples per measurement (default 384; 32 with --bert-large)")
    p.add_argument("--tune-budget-s", type=float, default=120.0,
                   help="tune on the spot with this budget when no matching profile exists (default 120; the "
                        "result is not saved: 'mlperf-bert tune' saves one)")
    p.add_argument("--no-profile", action="store_true", help="tune on the spot even when a profile exists")
    p.add_argument("--null-seconds", type=float, default=5.0, help="null backend Server run length (default 5)")
    p.add_argument("--null-server-qps", type=float, default=20000.0,
                   help="null backend Server target QPS (default 20,000, the issue's goal)")
    p.add_argument("--skip-reference", action="store_true", help="leave out the two reference-style rows")
    p.add_argument("--json", type=Path, help="write the results as JSON here")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:  # noqa: C901 - one table, row by row
    import numpy as np

    from mlperf_bert import machine, speed
    from mlperf_bert.backends.base import BackendConfig
    from mlperf_bert.config import SquadConfig
    from mlperf_bert.errors import ConfigError
    from mlperf_bert.qsl.qsl import SquadQSL
    from mlperf_bert.squad.cache import load_features
    from mlperf_bert.sut.batcher import BatcherConfig
    from mlperf_bert.sut.sut import SUTConfig
    from mlperf_bert.tune import TuneJob, resolve_harness, tunable_options, tune

    registry = args.registry
    configs = speed_configs(registry)
    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    for n in names:
        if n not in configs:
            raise ConfigError(f"unknown bench config {n!r}; choose from {', '.join(configs)}")
        if configs[n][2].endswith("int8") and not args.int8_model:
            raise ConfigError(f"config {n} needs --int8-model FILE.onnx")
    if not args.tune_budget_s > 0:  # as 'tune --budget-s'
        raise ConfigError(f"--tune-budget-s {args.tune_budget_s:g}: must be > 0")
    samples = args.samples or (32 if args.bert_large else 384)
    if samples < 1:
        raise ConfigError(f"--samples {samples}: must be >= 1")
    paths = data_paths(args)
    cores = machine.physical_cores()
    say = lambda m: print(f"mlperf-bert: {m}", flush=True)  # noqa: E731
    if args.bert_large:
        if args.model:
            raise ConfigError("--bert-large builds its own random-weight model; leave out --model")
        model = speed.random_bert_large(paths.cache_dir, say=say)
    else:
        model = args.model or default_model()
    onnx_plain = registry.prepare(BackendConfig("onnxruntime", model, "cpu", cores, {"transformer_optimize": False},
                                                paths.cache_dir), say).model
    with open(model / "config.json" if model.is_dir() else model.parent / "bert_config.json") as fh:
        mcfg = json.load(fh)
    shape = speed.ModelShape(mcfg["num_hidden_layers"], mcfg["hidden_size"], mcfg["intermediate_size"])
    load_before = machine.sample_host_load()
    out: dict = {"machine": machine.machine_summary(), "isa": machine_isa(), "cores": cores, "samples": samples,
                 "model": str(model), "bert_large_random": args.bert_large, "host_load_before": load_before.to_dict(),
                 "flop_formula": "2*n*L*(4h^2+2hI) + 4*n^2*h*L per sample of n real tokens", "rows": []}
    print(f"mlperf-bert bench: {out['machine'].get('cpu', '?')} ({', '.join(out['isa']) or 'no AVX-512/AMX'}), "
          f"{cores} physical cores, {samples} samples, model {model.name} (L={shape.layers}, h={shape.hidden}, "
          f"I={shape.intermediate}); host before: {load_before.text()}", flush=True)
    examples, features = load_features(paths, SquadConfig(), True)
    rows = out["rows"]

    def add(row: dict) -> None:
        rows.append(row)
        print("   " + _row_text(row), flush=True)

    with tempfile.TemporaryDirectory() as tmp, SquadQSL(features) as qsl:
        tmp = Path(tmp)
        issued = None
        if not args.skip_reference:
            ref_backend = registry.load(BackendConfig("onnxruntime", onnx_plain, "cpu", cores))
            speed.raw_loop(ref_backend, qsl, np.arange(min(4, qsl.count)), speed.reference_style_sut().batcher)
            a = speed.loadgen_run(ref_backend, qsl, speed.reference_style_sut(), tmp / "ref", samples=samples)
            issued = a["issued"]
            add({"row": "reference-style SUT (LoadGen Offline)", "samples_per_second": a["samples_per_second"],
                 "settings": f"plain ORT fp32, batch 1, padded to 384, issue order, 1 worker x {cores} threads",
                 "flops_per_sample": shape.flops(qsl.lengths[issued]) / len(issued)})
            plain_s = speed.raw_loop(ref_backend, qsl, issued, speed.reference_style_sut().batcher)
            add({"row": "plain padded loop (no LoadGen)", "samples_per_second": len(issued) / plain_s,
                 "settings": "same session, batch 1, padded to 384", "flops_per_sample": rows[-1]["flops_per_sample"]})
            ref_backend.close()
        gemm_kinds: set[str] = set()
        for name in names:
            backend_name, options, gemm = configs[name]
            gemm_kinds.add(gemm)
            mpath = args.int8_model if gemm.endswith("int8") else model
            base = BackendConfig(backend_name, mpath, "cpu", None, dict(options), paths.cache_dir)
            # ours, default: what 'run' does without flags or a profile
            h_def, cfg_def = resolve_harness("Offline", base, {}, registry, use_profiles=False)
            add(_ours(f"ours default ({name})", h_def, cfg_def, registry, qsl, tmp / f"{name}-default", samples,
                      shape, say))
            # ours, tuned: the matching profile, or a short tune here (not saved). The configuration's own
            # values of tunable options (ort-fp32: transformer_optimize=True) are left to the profile, as a
            # 'run' without those flags would.
            tunable = tunable_options(registry.spec(backend_name))
            untuned = dataclasses.replace(base, options={k: v for k, v in base.options.items() if k not in tunable})
            h_tuned, cfg_tuned = resolve_harness("Offline", untuned, {}, registry,
                                                 use_profiles=not args.no_profile, say=say)
            where = f"profile {h_tuned.profile}" if h_tuned.profile else None
            if h_tuned.profile is None:
                say(f"no tuned profile for {name} here ({h_tuned.note or 'none made yet'}); tuning on the spot "
                    f"for {args.tune_budget_s:g} s (not saved)")
                result, _, _ = tune(TuneJob("Offline", untuned, budget_s=args.tune_budget_s), registry, paths, say=say,
                                    write=False)
                h_tuned = _from_candidate(h_def, result.winner, "tuned on the spot")
                cfg_tuned = dataclasses.replace(cfg_def, threads=result.winner.threads,
                                                options={**untuned.options, **dict(result.winner.options)})
                where = f"tuned on the spot ({len(result.table)} measurements, {result.elapsed_s:.0f} s" + (
                    "; defaults kept, the best alternative was within the noise margin)" if result.defaults_kept
                    else ")")
            add(_ours(f"ours tuned ({name})", h_tuned, cfg_tuned, registry, qsl, tmp / f"{name}-tuned", samples,
                      shape, say, where))
        # the harness's own ceiling
        null = registry.load(BackendConfig("null"))
        for label, sut in (
                (f"null backend, LoadGen Offline (CPU defaults: batch 1, {cores} workers)",
                 SUTConfig("Offline", BatcherConfig(max_batch_size=1), workers=cores)),
                ("null backend, LoadGen Offline (batch 256, 1 worker: a GPU node's shape)",
                 SUTConfig("Offline", BatcherConfig(max_batch_size=256, token_budget=None), workers=1))):
            r = speed.loadgen_run(null, qsl, sut, tmp / f"null-{len(rows)}", samples=200_000)
            add({"row": label, "samples_per_second": r["samples_per_second"], "settings": "200,000 samples"})
        srv = SUTConfig("Server", BatcherConfig(max_batch_size=32, server_max_wait_ms=0.0), workers=1)
        r = speed.loadgen_run(null, qsl, srv, tmp / "null-server", duration_s=args.null_seconds,
                              target_qps=args.null_server_qps)
        add({"row": f"null backend, LoadGen Server at {args.null_server_qps:,.0f} QPS",
             "samples_per_second": r["samples_per_second"], "p99_ms": r["latency_ms"].get(99.0),
             "p50_ms": r["latency_ms"].get(50.0), "valid": r["valid"],
             "settings": f"batch <= 32, no wait, 1 worker, {args.null_seconds:g} s"})
    peaks = {k: speed.gemm_peak(k, cores) for k in ("numpy-fp32", "torch-fp32", "ort-fp32")}
    for k in sorted(gemm_kinds - set(peaks)):
        peaks[k] = speed.gemm_peak(k, cores)
    out["gemm_peaks_flops"] = peaks
    best = max(peaks[k] for k in ("numpy-fp32", "torch-fp32", "ort-fp32"))
    out["best_fp32_gemm_flops"] = best
    ref = next((r["samples_per_second"] for r in rows if r["row"].startswith("reference")), None)
    plain = next((r["samples_per_second"] for r in rows if r["row"].startswith("plain")), None)
    for r in rows:
        if "flops_per_sample" in r:
            r["effective_flops"] = r["flops_per_sample"] * r["samples_per_second"]
            r["effective_over_best_gemm"] = r["effective_flops"] / best
        if ref and "flops_per_sample" in r:
            r["over_reference"] = r["samples_per_second"] / ref
        if plain and "flops_per_sample" in r:
            r["over_plain_loop"] = r["samples_per_second"] / plain
    out["host_load_after"] = machine.sample_host_load().to_dict()
    _print_table(out)
    if args.json:
        from mlperf_bert.fileio import write_json_atomic

        write_json_atomic(args.json, out)
    return 0


def machine_isa() -> list[str]:
    """The AVX-512/AMX/VNNI flags of this CPU that matter for GEMM kernels (``tune.ISA_FLAGS``)."""
    from mlperf_bert.machine import cpu_flags
    from mlperf_bert.tune import ISA_FLAGS

    flags = cpu_flags()
    return [f for f in ISA_FLAGS if f in flags and f not in ("fma",)]


def _from_candidate(harness, cand, source: str):
    """A ``Harness`` whose values are ``cand``'s, all with ``source`` (bench's on-the-spot tune)."""
    values = {**cand.settings()}
    sources = {k: source for k in values if k != "options"}
    sources.update({f"option:{k}": source for k in values["options"]})
    return dataclasses.replace(harness, values=values, sources=sources)


def _ours(label: str, harness, backend_cfg, registry, qsl, outdir: Path, samples: int, shape, say, where=None) -> dict:
    """Our SUT through LoadGen Offline with ``harness``'s settings, and the raw loop over the same batches with
    as many concurrent callers."""
    import numpy as np

    from mlperf_bert import speed
    from mlperf_bert.sut.sut import SUTConfig

    v = harness.values
    sut = SUTConfig("Offline", harness.batcher(), workers=v["workers"])
    be = registry.load(registry.prepare(backend_cfg, say))
    speed.raw_loop(be, qsl, np.arange(min(8, qsl.count)), sut.batcher, v["workers"])  # warm-up
    b = speed.loadgen_run(be, qsl, sut, outdir, samples=samples)
    raw_s = speed.raw_loop(be, qsl, b["issued"], sut.batcher, v["workers"])
    be.close()
    raw = len(b["issued"]) / raw_s
    opts = ", ".join(f"{k}={val}" for k, val in sorted(v["options"].items()))
    settings = (f"batch {v['batch_size']}" + (f", budget {v['token_budget'] or 'none'}" if v["batch_size"] > 1 else "")
                + (f", pad {v['pad_to_multiple']}" if v["pad_to_multiple"] > 1 else "")
                + f", {v['workers']} workers x {backend_cfg.threads} threads" + (f", {opts}" if opts else "")
                + (f"; {where}" if where else ""))
    return {"row": label, "samples_per_second": b["samples_per_second"], "raw_loop_samples_per_second": raw,
            "loadgen_over_raw": b["samples_per_second"] / raw, "settings": settings,
            "harness": harness.settings(), "flops_per_sample": shape.flops(qsl.lengths[b["issued"]]) / len(b["issued"])}


def _row_text(r: dict) -> str:
    text = f"{r['row']}: {r['samples_per_second']:,.2f} samples/s"
    if "raw_loop_samples_per_second" in r:
        text += f" (raw loop {r['raw_loop_samples_per_second']:,.2f}, LoadGen/raw {r['loadgen_over_raw']:.3f})"
    if r.get("p99_ms") is not None:
        text += f", p50 {r['p50_ms']:.3f} ms, p99 {r['p99_ms']:.3f} ms"
    return text + f"  [{r['settings']}]"


def _print_table(out: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    peaks = out["gemm_peaks_flops"]
    before = out["host_load_before"]
    t = Table(title=f"mlperf-bert bench: {out['machine'].get('cpu', '?')}, {out['cores']} physical cores, "
                    f"{out['samples']} dev samples, {Path(out['model']).name}"
                    + (" (random-weight BERT-Large)" if out["bert_large_random"] else "")
                    + f"; load average before {before['loadavg'][0] if before['loadavg'] else '?'}, "
                      f"others used {100 * (before['others_cpu_share'] or 0):.0f}% of the CPUs")
    for col in ("row", "samples/s", "x reference", "x plain loop", "eff. GFLOP/s", "% best GEMM", "LoadGen/raw",
                "settings"):
        t.add_column(col, justify="left" if col in ("row", "settings") else "right", overflow="fold")
    from rich.markup import escape

    for r in out["rows"]:
        sps = f"{r['samples_per_second']:,.2f}"
        if r.get("p99_ms") is not None:
            sps += f" (p99 {r['p99_ms']:.2f} ms)"
        t.add_row(escape(r["row"]), sps, _fmt(r.get("over_reference"), "{:.2f}x"),
                  _fmt(r.get("over_plain_loop"), "{:.2f}x"),
                  _fmt(r.get("effective_flops"), "{:.0f}", 1e-9), _fmt(r.get("effective_over_best_gemm"), "{:.0%}"),
                  _fmt(r.get("loadgen_over_raw"), "{:.3f}"), escape(r["settings"]))
    gemm = ", ".join(f"{k} {v / 1e9:.0f}" for k, v in peaks.items())
    t.caption = f"fp32 GEMM 2048^2, GFLOP/s: {gemm} (best {out['best_fp32_gemm_flops'] / 1e9:.0f})"
    Console(width=220).print(t)


def _fmt(value, fmt: str, scale: float = 1.0) -> str:
    return "-" if value is None else fmt.format(value * scale)
