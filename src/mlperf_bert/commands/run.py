"""``mlperf-bert run``: one benchmark run through the MLPerf LoadGen (accuracy and/or performance)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlperf_bert.commands.common import add_backend_args, add_data_args, backend_config, data_paths


def register(sub: argparse._SubParsersAction, registry) -> None:
    p = sub.add_parser("run", help="run the benchmark through LoadGen (accuracy and/or performance)",
                       description="Run MLPerf BERT through LoadGen. Default: accuracy mode on all 10,833 dev "
                                   "features (F1/EM), then a performance run, with the ONNX Runtime backend "
                                   "and the small SQuAD model from ../shared.")
    add_run_args(p, registry)
    p.set_defaults(func=main)


def add_run_args(p: argparse.ArgumentParser, registry, *, scenario: bool = True, mode: bool = True,
                 sizing: bool = True) -> None:
    """The flags of ``run`` (data, backend, LoadGen, batching, output); ``find-peak`` reuses them.

    ``sizing=False`` leaves out the flags that set a run's rules and length (``--rules``, ``--target-qps``,
    ``--expected-latency-ms``, ``--min/max-duration``, ``--min-query-count``, ``--no-probe``, ``--trace``)
    for commands that set those themselves, so they are not offered and then ignored."""
    add_data_args(p)
    add_backend_args(p, registry)
    g = p.add_argument_group("LoadGen")
    if scenario:
        g.add_argument("--scenario", default="Offline", help="Offline | Server | SingleStream | MultiStream")
    if mode:
        g.add_argument("--mode", default="both", choices=("accuracy", "performance", "both"),
                       help="accuracy, performance, or both in that order (default: both)")
    if sizing:
        g.add_argument("--rules", default="current", choices=("current", "v1.0", "quick"),
                       help="current: LoadGen's built-in mlperf.conf; v1.0: MLPerf v1.0 seeds and minimums; "
                            "quick: short development run (default --duration 10 s), NOT valid for submission")
    g.add_argument("--user-conf", type=Path, help="one user.conf (e.g. bert.Offline.target_qps = 120)")
    g.add_argument("--duration", type=float, help="quick rules only: minimum duration in s (default 10)")
    g.add_argument("--performance-sample-count", type=int, help="override (default 10,833 from mlperf.conf)")
    if sizing:
        g.add_argument("--target-qps", type=float,
                       help="Offline expected / Server target samples/s (default: measured by a short probe)")
        g.add_argument("--expected-latency-ms", type=float,
                       help="SingleStream/MultiStream expected latency (default: measured by a short probe)")
        g.add_argument("--min-duration", type=float, help="override: minimum duration, s")
        g.add_argument("--max-duration", type=float, help="override: maximum duration, s")
        g.add_argument("--min-query-count", type=int, help="override: minimum query count")
        g.add_argument("--no-probe", action="store_true", help="do not probe the backend to size the run")
        g.add_argument("--trace", action=argparse.BooleanOptionalAction, default=None,
                       help="write LoadGen's mlperf_log_trace.json (per-sample times; 'report' plots them). "
                            "Default: in a performance run when it costs under 1%% of the throughput "
                            "(500 samples/s or less planned)")
    else:  # the command sets these per run; build_run_config still reads them
        p.set_defaults(rules="current", target_qps=None, expected_latency_ms=None, min_duration=None,
                       max_duration=None, min_query_count=None, no_probe=False, trace=None)
    a = p.add_argument_group("accuracy target")
    a.add_argument("--benchmark", default="bert-99", choices=("bert-99", "bert-99.9"),
                   help="bert-99: F1 >= 99%% of the model's fp32 F1 (89.965 for the official model); "
                        "bert-99.9: 99.9%% (default bert-99)")
    a.add_argument("--reference-f1", type=float,
                   help="fp32 F1 of a model mlperf-bert does not know (sets the target; known: official "
                        "BERT-Large 90.874, minilm-l6-squad 78.912)")
    add_batching_args(p)
    b = p.add_argument_group("batching")
    b.add_argument("--no-sort", action="store_true", help="Offline: keep issue order instead of sorting by length")
    b.add_argument("--response-rows", default="trimmed", choices=("trimmed", "full"),
                   help="trimmed: each response holds its real-length rows (the scorer pads); full: 384 rows")
    b.add_argument("--no-profile", action="store_true",
                   help="ignore tuned profiles ('mlperf-bert tune'); the built-in defaults fill what no flag sets")
    add_replica_args(p)
    o = p.add_argument_group("output")
    o.add_argument("--output-dir", type=Path, default=Path("runs"), help="parent of run folders (default ./runs)")
    o.add_argument("--run-name", help="run folder name (default: <utc time>-<backend>-<scenario>)")
    o.add_argument("--max-examples", type=int, help="only the first N questions (development)")
    o.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_replica_args(p: argparse.ArgumentParser) -> None:
    """``--replicas`` and its flags: backend replicas on Ray (``distributed.ray_pool``)."""
    r = p.add_argument_group("scale out on Ray (pip install 'mlperf-bert[ray]')")
    r.add_argument("--replicas", type=int,
                   help="run N backend replicas as Ray actors; LoadGen, the QSL and batching stay here (default: one "
                        "backend in this process). The prepared model's path must be readable on every node")
    r.add_argument("--replica-cpus", type=float,
                   help="Ray CPUs per replica (default: the cluster's CPUs / replicas); --threads defaults to it")
    r.add_argument("--replica-gpus", type=float,
                   help="Ray GPUs per replica (default: 1 with --device cuda, or --device auto on a cluster with a "
                        "GPU per replica; else 0)")
    r.add_argument("--ray-address", metavar="auto|HOST:PORT",
                   help="join a running Ray cluster ('auto': the one this machine is part of; default: start a local "
                        "Ray for the run and stop it after)")
    r.add_argument("--replica-inflight", type=int, default=2,
                   help="most batches sent to one replica and not yet answered (default 2)")


def distributed_config(args: argparse.Namespace):
    """The ``DistributedConfig`` the replica flags describe, or None without ``--replicas``.

    Raises:
        ConfigError: a replica flag without ``--replicas``, or a bad value (one line naming the flag).
        BackendUnavailable: ``--replicas`` without Ray installed (names the extra).
    """
    import importlib.util

    from mlperf_bert.distributed.ray_pool import DistributedConfig, import_ray
    from mlperf_bert.errors import ConfigError

    if getattr(args, "replicas", None) is None:
        for dest in ("replica_cpus", "replica_gpus", "ray_address"):
            if getattr(args, dest, None) is not None:
                raise ConfigError(f"--{dest.replace('_', '-')} needs --replicas N")
        return None
    cfg = DistributedConfig(replicas=args.replicas, replica_cpus=args.replica_cpus, replica_gpus=args.replica_gpus,
                            address=args.ray_address, inflight_per_replica=args.replica_inflight)
    if importlib.util.find_spec("ray") is None:
        import_ray()  # raises the one-line BackendUnavailable
    return cfg


def add_batching_args(p: argparse.ArgumentParser) -> None:
    """The harness settings a tuned profile can supply (``tune.SETTING_FLAGS``). Each defaults to None (not
    given): a matching profile, then the device kind's built-in default fill it (``tune.resolve_harness``)."""
    b = p.add_argument_group("harness settings (default: a matching tuned profile, else the device's defaults)")
    b.add_argument("--batch-size", type=int, help="most samples per batch (CPU default 1; 256 with --device cuda)")
    b.add_argument("--token-budget", type=int,
                   help="most tokens per batch = batch x padded length (default 8192; 65536 with --device cuda; "
                        "0 = no limit)")
    b.add_argument("--pad-to-multiple", type=int,
                   help="pad batches to a multiple of N tokens (default 1; 64 with --device cuda)")
    b.add_argument("--server-max-wait-ms", type=float,
                   help="Server: longest a sample waits for a batch to fill (ms; CPU default 0, cuda 5)")
    b.add_argument("--workers", type=int,
                   help="SUT worker threads (Offline/Server; CPU Offline default: one per physical core, else 1). "
                        "Without --threads each gets physical cores / workers intra-op threads")


def given_harness(args: argparse.Namespace) -> dict:
    """The harness flags the user gave (``tune.SETTING_FLAGS`` names; ``--token-budget 0`` = None, no
    limit); ``--threads`` travels in the backend config."""
    out = {}
    for name in ("batch_size", "token_budget", "pad_to_multiple", "server_max_wait_ms", "workers"):
        value = getattr(args, name, None)
        if value is not None:
            out[name] = (value or None) if name == "token_budget" else value
    return out


def build_run_config(args: argparse.Namespace, *, scenario: str | None = None, modes: tuple | None = None):
    """The ``RunConfig`` the ``run`` flags describe (also used by ``find-peak``)."""
    from mlperf_bert.accuracy.targets import accuracy_target
    from mlperf_bert.loadgen.settings import LoadGenConfig
    from mlperf_bert.runner import RunConfig, check_output_dir, check_run_name
    from mlperf_bert.sut.batcher import BatcherConfig
    from mlperf_bert.sut.sut import SUTConfig, check_scenario
    from mlperf_bert.tune import resolve_harness

    scenario = check_scenario(scenario or args.scenario)
    args.registry.spec(args.backend)  # unknown backend -> one line before any work
    check_run_flags(args)
    # LoadGen settings first: a bad user.conf line is refused before the data, the model or an export
    lgc = LoadGenConfig(scenario=scenario, rules=args.rules, user_conf=args.user_conf,
                        expected_qps=args.target_qps, expected_latency_ms=args.expected_latency_ms,
                        quick_duration_s=10.0 if args.duration is None else args.duration, min_duration_s=args.min_duration,
                        max_duration_s=args.max_duration, min_query_count=args.min_query_count,
                        performance_sample_count=args.performance_sample_count, trace=args.trace)
    check_output_dir(args.output_dir)  # and the run name: one line before the data, the model or an export
    check_run_name(args.output_dir, args.run_name)
    distributed = distributed_config(args)
    paths = data_paths(args)
    backend = backend_config(args, args.registry, paths.cache_dir)
    harness, backend = resolve_harness(scenario, backend, given_harness(args), args.registry,
                                       use_profiles=not getattr(args, "no_profile", False), say=_say)
    if harness.note:
        _say(harness.note)
    batcher = harness.batcher(BatcherConfig(sort_by_length=not args.no_sort))
    sut = SUTConfig(scenario=scenario, batcher=batcher, workers=harness.values["workers"],
                    response_rows=args.response_rows)
    if modes is None:
        modes = ("accuracy", "performance") if args.mode == "both" else (args.mode,)
    target = accuracy_target(args.benchmark, model=args.model or (backend.model if args.backend != "null" else None),
                             reference_f1=args.reference_f1)
    return RunConfig(data=paths, backend=backend, sut=sut, loadgen=lgc, modes=modes, output_dir=args.output_dir,
                     run_name=args.run_name, max_examples=args.max_examples, probe=not args.no_probe,
                     accuracy_target=target, distributed=distributed, harness=harness)


def _say(message: str) -> None:
    print(f"mlperf-bert: {message}", flush=True)


#: Flags that take a count or a size, and the smallest value each accepts (None: not given).
_MINIMUMS = {"batch_size": 1, "token_budget": 0, "pad_to_multiple": 1, "workers": 1, "server_max_wait_ms": 0,
             "performance_sample_count": 1, "max_examples": 1, "min_query_count": 1, "min_duration": 0,
             "max_duration": 0}


def check_run_flags(args: argparse.Namespace) -> None:
    """Refuse an out-of-range number with one line naming the flag (not the internal field).

    Raises:
        ConfigError: e.g. ``--batch-size 0: must be >= 1``.
    """
    from mlperf_bert.errors import ConfigError

    for dest, low in _MINIMUMS.items():
        value = getattr(args, dest, None)
        if value is not None and not value >= low:
            flag = "--" + dest.replace("_", "-")
            hint = " (0 = no limit)" if dest == "token_budget" else ""
            raise ConfigError(f"{flag} {value:g}: must be >= {low}{hint}")
    for dest in ("target_qps", "expected_latency_ms", "duration"):
        value = getattr(args, dest, None)
        if value is not None and not value > 0:
            raise ConfigError(f"--{dest.replace('_', '-')} {value:g}: must be > 0")
    low, high = getattr(args, "min_duration", None), getattr(args, "max_duration", None)
    if low is not None and high and high < low:
        raise ConfigError(f"--max-duration {high:g} is below --min-duration {low:g}; LoadGen would stop the run "
                          "before it is valid")
    scenario = getattr(args, "scenario", None)
    if getattr(args, "expected_latency_ms", None) is not None and scenario in ("Offline", "Server"):
        _say(f"note: --expected-latency-ms sizes SingleStream/MultiStream runs; this {scenario} run does not use it")
    if getattr(args, "target_qps", None) is not None and scenario in ("SingleStream", "MultiStream"):
        _say(f"note: --target-qps sizes Offline/Server runs; this {scenario} run does not use it")


def main(args: argparse.Namespace) -> int:
    from mlperf_bert.report.terminal import print_run_summary
    from mlperf_bert.runner import run

    if args.duration is not None and args.rules != "quick":
        from mlperf_bert.errors import ConfigError

        raise ConfigError(f"--duration sets the length of a --rules quick run; under --rules {args.rules} the rules "
                          "set it (--min-duration overrides it, and the run is then not valid for a submission)")
    cfg = build_run_config(args)
    result = run(cfg, registry=args.registry, progress=not args.no_progress,
                           on_event=lambda m: print(f"mlperf-bert: {m}", flush=True))
    print_run_summary(result, cfg)
    return 0
