"""``mlperf-bert check SUBMISSION_DIR``: apply the MLPerf v1.0 checker's BERT rules; exit 1 on any failure."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction, registry) -> None:
    p = sub.add_parser(
        "check", help="check a submission tree against the MLPerf v1.0 rules",
        description="Check a submission tree (layout, systems/measurements JSON, VALID, seeds, minimum counts "
                    "and duration, performance_sample_count, Server p99 <= 130 ms, accuracy >= target, "
                    "no ERROR lines, truncated accuracy logs with matching hash, compliance TEST01/TEST05). "
                    "Prints every failure with its file; exit 0 = passed, 1 = failed.")
    p.add_argument("submission_dir", type=Path, metavar="SUBMISSION_DIR")
    p.add_argument("--rules", default="v1.0", choices=("v1.0", "current", "quick"),
                   help="v1.0 (default); current: LoadGen 6.x built-in seeds and minimums; quick: accept "
                        "'--rules quick' runs, listing what a real submission would fail")
    p.add_argument("--reference-f1", type=float, help="fp32 F1 of a model mlperf-bert does not know")
    p.add_argument("--full-logs", type=Path,
                   help="folder of the untruncated accuracy logs (default: SUBMISSION_DIR.accuracy-logs)")
    p.add_argument("--skip-compliance", action="store_true", help="do not require compliance folders")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from mlperf_bert.errors import DataError
    from mlperf_bert.submission.checker import check_submission

    if not args.submission_dir.is_dir():
        raise DataError(f"submission folder not found: {args.submission_dir}")
    rep = check_submission(args.submission_dir, args.rules, reference_f1=args.reference_f1,
                           full_logs=args.full_logs, skip_compliance=args.skip_compliance)
    console = Console(highlight=False)
    for f in rep.failures:
        console.print(f"[red]FAIL[/red] {f.path}: {f.message}", soft_wrap=True)
    if rep.waived:
        console.print(f"[yellow]{len(rep.waived)} rule(s) a real submission fails, waived under --rules quick:[/yellow]")
        for f in rep.waived:
            console.print(f"[yellow]WAIVED[/yellow] {f.path}: {f.message}", soft_wrap=True)
    for f in rep.notes:
        console.print(f"note {f.path}: {f.message}", soft_wrap=True)
    t = Table(title=f"mlperf-bert check ({args.rules} rules)")
    for col in ("system", "benchmark", "scenario", "result", "F1", "target", "status"):
        t.add_column(col)
    for r in rep.results:
        t.add_row(r.system, r.benchmark, r.scenario, r.metric, "" if r.f1 is None else f"{r.f1:.3f}", r.target,
                  "[green]ok[/green]" if r.ok else "[red]FAIL[/red]")
    console.print(t)
    if rep.passed:
        console.print(f"[green]submission passes ({args.rules} rules)[/green]"
                      + (f", {len(rep.waived)} waived" if rep.waived else ""))
        return 0
    console.print(f"[red]submission fails: {len(rep.failures)} failure(s)[/red]"
                  + ("" if rep.results else " (no results found)"))
    return 1
