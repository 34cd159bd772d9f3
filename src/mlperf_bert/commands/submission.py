"""``mlperf-bert submission``: assemble run and compliance folders into an MLPerf submission tree."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction, registry) -> None:
    p = sub.add_parser(
        "submission", help="assemble runs into an MLPerf submission tree",
        description="Copy run folders (accuracy + performance) and compliance folders (TEST01, TEST05) into "
                    "<division>/<submitter>/{systems,measurements,results,compliance,code}, truncate the "
                    "accuracy logs (<= 10 KiB, hash= in accuracy.txt; the full logs go to "
                    "<output>.accuracy-logs) and describe the system from this machine. Check it with "
                    "'mlperf-bert check'.")
    p.add_argument("--run", type=Path, action="append", required=True, metavar="RUN_DIR",
                   help="a run folder from 'mlperf-bert run' (repeat for more scenarios or split accuracy/"
                        "performance runs)")
    p.add_argument("--compliance", type=Path, action="append", default=[], metavar="DIR",
                   help="a folder from 'mlperf-bert compliance' (repeat for TEST01, TEST05, scenarios)")
    p.add_argument("--output", type=Path, required=True, help="submission root to create")
    p.add_argument("--submitter", required=True, help="organisation name")
    p.add_argument("--system", required=True, help="system description id, e.g. epyc-2c-ort")
    p.add_argument("--division", default="closed", choices=("closed", "open"))
    p.add_argument("--implementation", default="mlperf-bert", help="implementation name (default mlperf-bert)")
    p.add_argument("--benchmark", choices=("bert-99", "bert-99.9"),
                   help="for runs that recorded no benchmark (default: the run's, else bert-99)")
    p.add_argument("--system-type", choices=("datacenter", "edge", "datacenter,edge"),
                   help="default: datacenter, edge if SingleStream only, both if Server and SingleStream")
    p.add_argument("--system-json", type=Path,
                   help="JSON object of systems fields to set (e.g. host_storage_type, cooling, status)")
    p.add_argument("--implementation-json", type=Path, help="JSON object of implementation fields to set")
    p.add_argument("--reference-f1", type=float, help="fp32 F1 of a model mlperf-bert does not know")
    p.set_defaults(func=main)


def _json_arg(path: Path | None, flag: str) -> dict:
    from mlperf_bert.errors import ConfigError

    if path is None:
        return {}
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{flag} {path}: cannot read a JSON object ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{flag} {path} must hold a JSON object")
    return data


def main(args: argparse.Namespace) -> int:
    from mlperf_bert.submission.tree import SubmissionSpec, assemble_submission

    spec = SubmissionSpec(output=args.output, submitter=args.submitter, system=args.system, runs=tuple(args.run),
                          compliance=tuple(args.compliance), division=args.division,
                          implementation=args.implementation, benchmark=args.benchmark,
                          system_overrides=_json_arg(args.system_json, "--system-json"),
                          implementation_overrides=_json_arg(args.implementation_json, "--implementation-json"),
                          system_type=args.system_type, reference_f1=args.reference_f1)
    out = assemble_submission(spec)
    for bm, sc in out.entries:
        print(f"mlperf-bert: wrote {bm}/{sc}")
    for w in out.warnings:
        print(f"mlperf-bert: warning: {w}")
    print(f"mlperf-bert: submission tree in {out.root}; full accuracy logs in {out.full_logs}")
    print(f"mlperf-bert: check it with: mlperf-bert check {out.root}")
    return 0
