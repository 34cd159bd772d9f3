"""``mlperf-bert report RUN_DIR...``: one self-contained HTML page (settings, validity, accuracy, plots)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction, registry) -> None:
    p = sub.add_parser(
        "report", help="write a self-contained HTML report of one or more runs",
        description="Settings, validity, accuracy, the latency histogram with percentiles and throughput over "
                    "time (from LoadGen's trace: run with --trace) of each run folder, and a side-by-side table "
                    "for several. Plots are inline SVG; the page needs no network.")
    p.add_argument("runs", type=Path, nargs="+", metavar="RUN_DIR")
    p.add_argument("--output", "-o", type=Path, default=Path("report.html"), help="HTML file (default report.html)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from mlperf_bert.report.html import write_report

    out = write_report(args.runs, args.output)
    print(f"mlperf-bert: wrote {out} ({out.stat().st_size / 1024:,.0f} KiB)")
    return 0
