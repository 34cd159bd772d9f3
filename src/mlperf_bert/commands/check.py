"""``mlperf-bert check SUBMISSION_DIR``: the official checker's BERT rules for one version; exit 1 on a FAIL."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction, registry) -> None:
    p = sub.add_parser(
        "check", help="check a submission tree as the official MLPerf checker (v1.0 or current) would",
        description="Check a submission tree with the rules of one official checker version: current (v6.1) or "
                    "v1.0 (v1.0.1); layout, systems and measurements fields, scenario sets, seeds, durations, "
                    "counts, early stopping, ERROR lines, accuracy.txt format/target/hash, truncated accuracy "
                    "logs, compliance TEST01 (and TEST05 for v1.0). FAIL lines reject the tree as the official "
                    "checker does, LOG lines are its ERROR lines that do not; exit 0 = passed, 1 = failed.")
    p.add_argument("submission_dir", type=Path, metavar="SUBMISSION_DIR")
    p.add_argument("--rules", choices=("v1.0", "current", "quick"),
                   help="default: the tree's layout (v1.0 or current); quick: accept '--rules quick' runs, listing "
                        "what a real submission would fail")
    p.add_argument("--layout", choices=("v1.0", "current"), help="with --rules quick: the layout (default: detected)")
    p.add_argument("--reference-f1", type=float, help="fp32 F1 of a model mlperf-bert does not know (quick target)")
    p.add_argument("--full-logs", type=Path,
                   help="folder of the untruncated accuracy logs (default: SUBMISSION_DIR.accuracy-logs)")
    p.add_argument("--skip-compliance", action="store_true", help="do not look at compliance folders")
    p.set_defaults(func=main)


def print_report(rep, console=None) -> None:
    """FAIL / WAIVED / LOG / note lines and the results table of a ``CheckReport``."""
    from rich.console import Console
    from rich.table import Table

    from mlperf_bert.submission.versions import CHECKER_VERSION

    console = console or Console(highlight=False)
    for f in rep.failures:
        console.print(f"[red]FAIL[/red] {f.path}: {f.message}", soft_wrap=True)
    if rep.waived:
        console.print(f"[yellow]{len(rep.waived)} rule(s) a real submission fails, waived under --rules quick:[/yellow]")
        for f in rep.waived:
            console.print(f"[yellow]WAIVED[/yellow] {f.path}: {f.message}", soft_wrap=True)
    for f in rep.logs:
        console.print(f"LOG {f.path}: {f.message}", soft_wrap=True)
    for f in rep.notes:
        console.print(f"note {f.path}: {f.message}", soft_wrap=True)
    t = Table(title=f"mlperf-bert check ({rep.rules} rules, {rep.layout} layout = official checker "
                    f"{CHECKER_VERSION[rep.layout]})")
    for col in ("system", "benchmark", "scenario", "result", "F1", "target", "status"):
        t.add_column(col)
    for r in rep.results:
        t.add_row(r.system, r.benchmark, r.scenario, r.metric, "" if r.f1 is None else f"{r.f1:.3f}",
                  r.target.split(" (")[0].replace("F1 ", ""), "[green]ok[/green]" if r.ok else "[red]FAIL[/red]")
    if rep.results:
        console.print(f"target: {rep.results[0].target}", soft_wrap=True)
    console.print(t)
    if rep.passed:
        console.print(f"[green]submission passes ({rep.rules} rules)[/green]"
                      + (f", {len(rep.waived)} waived" if rep.waived else "")
                      + (f", {len(rep.logs)} LOG line(s)" if rep.logs else ""))
    else:
        console.print(f"[red]submission fails: {len(rep.failures)} failure(s)[/red]"
                      + ("" if rep.results else " (no results found)"))


def main(args: argparse.Namespace) -> int:
    from mlperf_bert.errors import DataError
    from mlperf_bert.submission.checker import check_submission

    root = args.submission_dir
    if not root.is_dir():
        raise DataError(f"submission folder not found: {root}")
    if not any((root / d).is_dir() for d in ("closed", "open")):  # the checker's FAIL is for a tree, not a typo
        hint = ("a run folder; make a tree from runs with 'mlperf-bert submission --run ...'"
                if (root / "run.json").is_file() else "make one with 'mlperf-bert submission' or 'mlperf-bert submit'")
        raise DataError(f"{root} is not a submission tree (no closed/ or open/ folder): {hint}")
    rep = check_submission(args.submission_dir, args.rules, layout=args.layout, reference_f1=args.reference_f1,
                           full_logs=args.full_logs, skip_compliance=args.skip_compliance)
    print_report(rep)
    return 0 if rep.passed else 1
