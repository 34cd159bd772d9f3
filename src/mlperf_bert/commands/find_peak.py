"""``mlperf-bert find-peak``: highest Server target QPS within 130 ms p99 (search + confirming run), or the
Offline / SingleStream expected QPS / latency for user.conf."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction, registry) -> None:
    from mlperf_bert.commands.run import add_run_args

    p = sub.add_parser(
        "find-peak", help="find the Server peak QPS (or Offline/SingleStream expected values)",
        description="Server: probe the backend, bisect the target QPS with short LoadGen runs (p99 <= 130 ms), "
                    "then confirm the best one with a longer run (>= 60 s for a real measurement; every rule "
                    "but the 600 s minimum duration is checked). With --batch-size 1 and one worker, a queueing "
                    "model over the measured service times picks the QPS to confirm. Offline/SingleStream: one short run gives "
                    "the expected QPS / latency. Writes find_peak.json and a user.conf line.")
    p.add_argument("--scenario", default="Server", choices=("Server", "Offline", "SingleStream"))
    add_run_args(p, registry, scenario=False, mode=False, sizing=False)
    f = p.add_argument_group("search")
    f.add_argument("--trial-duration", type=float, default=10.0, help="seconds per search run (default 10)")
    f.add_argument("--confirm-duration", type=float, default=60.0,
                   help="minimum seconds of the confirming run, LoadGen's min_duration for it (default 60); the "
                        "run lasts longer when --confirm-queries at the target QPS need longer")
    f.add_argument("--confirm-queries", type=int, default=2000,
                   help="the confirming run issues at least this many queries (>= 459), enough for LoadGen's "
                        "early stopping on the 99th percentile; 2,000 allow 9 over the bound (default 2000)")
    f.add_argument("--tolerance", type=float, default=0.05, help="stop when the bracket is this narrow (default 0.05)")
    f.add_argument("--max-trials", type=int, default=8, help="most search runs (default 8)")
    f.add_argument("--max-confirms", type=int, default=4, help="most confirming runs (default 4)")
    f.add_argument("--pass-probability", type=float, default=0.9,
                   help="with --batch-size 1 and one worker, confirm at the highest QPS whose simulated run "
                        "passes early stopping with this probability (default 0.9)")
    f.add_argument("--probe-seconds", type=float, default=3.0, help="throughput probe length (default 3)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from rich.console import Console

    from mlperf_bert.commands.run import build_run_config
    from mlperf_bert.finder import FinderConfig, find_peak_server, probe_expected

    base = build_run_config(args, scenario=args.scenario, modes=("performance",))
    say = lambda m: print(f"mlperf-bert: {m}", flush=True)  # noqa: E731
    console = Console(highlight=False)
    if args.scenario == "Server":
        fc = FinderConfig(trial_s=args.trial_duration, confirm_s=args.confirm_duration, tolerance=args.tolerance,
                          confirm_queries=args.confirm_queries,
                          max_trials=args.max_trials, max_confirms=args.max_confirms,
                          pass_probability=args.pass_probability, probe_s=args.probe_seconds)
        res = find_peak_server(base, fc, name=args.run_name, registry=args.registry, progress=not args.no_progress,
                               on_event=say)
        for t in res.trials:
            console.print(f"  trial {t.target_qps:9.2f} QPS  p99 {t.p99_ms:8.2f} ms  {'ok' if t.passed else 'fail'}")
        for t in res.confirms:
            console.print(f"  confirm {t.target_qps:7.2f} QPS  p99 {t.p99_ms:8.2f} ms  {'ok' if t.passed else 'fail'}"
                          f"  ({t.run_dir})")
        if not res.confirmed:
            console.print(f"[red]no target QPS confirmed[/red]: {res.reason} (probe {res.probe_qps:.1f} samples/s; "
                          f"runs in {res.folder})")
            return 1
        p = res.performance
        console.print(f"[green]Server peak: {res.value:.2f} QPS[/green] (p99 {res.confirms[-1].p99_ms:.1f} ms, "
                      f"confirming run of {p.query_count:,} queries over {p.scheduled_s:.0f} s)")
        if res.only_duration_short:
            console.print("The confirming run meets every validity rule of the current rules except the 600 s "
                          "minimum duration.")
        for r in res.rule_failures:
            console.print(f"  not met: {r}")
    else:
        res = probe_expected(base, 10.0 if args.duration is None else args.duration, name=args.run_name,
                             registry=args.registry, progress=not args.no_progress, on_event=say)
        console.print(f"[green]{args.scenario}: {res.value:.2f} {res.unit}[/green]")
    console.print(f"user.conf ({res.folder / 'user.conf'}):")
    for line in res.user_conf.splitlines():
        console.print(f"  {line}")
    return 0
