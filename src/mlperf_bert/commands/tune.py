"""``mlperf-bert tune``: measure a bounded grid of harness settings on real dev lengths and save the fastest as
a profile that ``run``, ``find-peak``, ``bench`` and ``submit`` then use on this machine (see ``mlperf_bert.tune``)."""

from __future__ import annotations

import argparse

from mlperf_bert.commands.common import add_backend_args, add_data_args, backend_config, data_paths


def register(sub: argparse._SubParsersAction, registry) -> None:
    from mlperf_bert.commands.run import add_batching_args

    p = sub.add_parser(
        "tune", help="find the fastest batching/workers/threads/backend options here and save them as a profile",
        description="Short LoadGen runs of the real SUT on real dev features over a bounded grid (workers x "
                    "intra-op threads, batch size, token budget, padding multiple, the backend's tunable options, "
                    "Server's maximum wait), starting from the built-in defaults. Offline ranks by samples/s, "
                    "Server by p99 latency at one offered load. The winner and the measured table are saved under "
                    "the cache folder (profiles/), keyed by machine, backend, model and scenario; 'run' uses it "
                    "when everything matches (flags still win; --no-profile ignores it). Flags given here fix "
                    "that setting.")
    add_data_args(p)
    add_backend_args(p, registry)
    p.add_argument("--scenario", default="Offline", choices=("Offline", "Server"), help="default Offline")
    p.add_argument("--budget-s", type=float, default=180.0,
                   help="wall-clock bound of the search in seconds (default 180); the measurement in progress "
                        "finishes")
    p.add_argument("--samples", type=int, help="Offline: samples per measurement (default: about budget/16 s worth)")
    p.add_argument("--measure-s", type=float, help="seconds per measurement (default: budget/16 Offline, "
                                                   "budget/10 Server)")
    p.add_argument("--max-examples", type=int, help="only the features of the first N questions (development)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing profile for the same key even when it was made from more measurements "
                        "(the old one is kept as <name>.prev.json either way)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_batching_args(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from rich.console import Console

    from mlperf_bert.commands.run import given_harness
    from mlperf_bert.errors import ConfigError
    from mlperf_bert.tune import TuneJob, tune

    for flag, value in (("--samples", args.samples), ("--max-examples", args.max_examples)):
        if value is not None and value < 1:
            raise ConfigError(f"{flag} {value}: must be >= 1")
    if args.measure_s is not None and not args.measure_s > 0:
        raise ConfigError(f"--measure-s {args.measure_s:g}: must be > 0")
    paths = data_paths(args)
    backend = backend_config(args, args.registry, paths.cache_dir)
    say = lambda m: print(f"mlperf-bert: {m}", flush=True)  # noqa: E731
    job = TuneJob(scenario=args.scenario, backend=backend, given=given_harness(args), budget_s=args.budget_s,
                  samples=args.samples, measure_s=args.measure_s, max_examples=args.max_examples, force=args.force)
    import sys

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 150)
    with TuneProgress(enabled=not args.no_progress) as bar:
        result, key, path = tune(job, args.registry, paths, say=say, progress=bar.update)
    print_result(result, args.scenario, console)
    if result.saved == "kept":
        console.print(f"profile: {path} (the existing one, from more measurements; this search was not saved)",
                      soft_wrap=True)
    else:
        console.print(f"profile: {path}", soft_wrap=True)
    console.print(f"  used by 'mlperf-bert run/find-peak/bench/submit --backend {key.backend} --scenario "
                  f"{key.scenario}' with this model on this machine (flags still win; --no-profile ignores it)",
                  soft_wrap=True)
    return 0


class TuneProgress:
    """A rich progress bar on stderr: measurements done of planned, elapsed, an estimated time left (bounded
    by the budget) and the candidate just measured; one line per measurement when stderr is no terminal."""

    def __init__(self, enabled: bool = True) -> None:
        import sys

        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self._progress = None

    def __enter__(self) -> "TuneProgress":
        if self.enabled and self.tty:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("tune"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                      TextColumn("eta ~{task.fields[eta]}"), TextColumn("{task.fields[last]}"),
                                      console=Console(stderr=True), transient=True)
            self._progress.__enter__()
            self._task = self._progress.add_task("tune", total=None, eta="?", last="")
        return self

    def update(self, done: int, planned: int, eta_s: float, label: str) -> None:
        if not self.enabled:
            return
        if self._progress is not None:
            self._progress.update(self._task, completed=done, total=planned, eta=f"{eta_s:.0f} s", last=label)
        else:
            import sys

            print(f"tune: {done}/{planned} measured (about {eta_s:.0f} s left): {label}", file=sys.stderr, flush=True)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
            self._progress = None


def print_result(result, scenario: str, console) -> None:
    """The measured table (one row per candidate, its measurements' mean), the winner marked, and the
    winner against the untuned defaults."""
    from rich.table import Table

    from mlperf_bert.tune import rank_key

    by = result.by_candidate()
    order = sorted(by, key=lambda c: rank_key(scenario, by[c]), reverse=True)
    t = Table(title=f"mlperf-bert tune: {scenario}, {len(result.table)} measurements in {result.elapsed_s:.0f} s"
                    + (f" ({result.stopped})" if result.stopped else ""))
    t.add_column("settings")
    t.add_column("samples/s", justify="right")
    if scenario == "Server":
        t.add_column("p99 ms", justify="right")
    t.add_column("runs", justify="right")
    t.add_column("")
    for c in order:
        ms = by[c]
        sps = sum(m.samples_per_second for m in ms) / len(ms)
        row = [c.label(), f"{sps:,.2f}" if not any(m.error for m in ms) else "error: " + (ms[0].error or "")[:60]]
        if scenario == "Server":
            p99 = [m.p99_ms for m in ms if m.p99_ms is not None]
            row.append(f"{sum(p99) / len(p99):,.2f}" if p99 else "-")
        row += [str(len(ms)), ("winner" if c == result.winner else "") + (" default" if c == result.start else "")]
        t.add_row(*row)
    console.print(t)
    win, start = by[result.winner], by[result.start]
    if result.defaults_kept:
        console.print(f"winner: the untuned defaults; {result.defaults_kept}", soft_wrap=True)
    elif scenario == "Server":
        console.print(f"winner: {result.winner.label()}", soft_wrap=True)
    else:
        ratio = (sum(m.samples_per_second for m in win) / len(win)) / max(
            1e-9, sum(m.samples_per_second for m in start) / len(start))
        console.print(f"winner: {result.winner.label()} ({ratio:.2f}x the untuned defaults)", soft_wrap=True)
