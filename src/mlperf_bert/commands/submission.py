"""``mlperf-bert submission``: assemble run and compliance folders into an MLPerf submission tree."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction, registry) -> None:
    p = sub.add_parser(
        "submission", help="assemble runs into an MLPerf submission tree",
        description="Copy run folders (accuracy + performance) and compliance folders into the layout of one "
                    "official checker version: current (v6.1: results/SYS/B/SC/{measurements.json, user.conf, "
                    "README.md, TEST01}, src/) or v1.0 (measurements/, compliance/, code/). Truncate the accuracy "
                    "logs (<= 10 KiB, hash= in accuracy.txt; the full logs go to <output>.accuracy-logs) and "
                    "describe the system from this machine. Check it with 'mlperf-bert check'.")
    p.add_argument("--run", type=Path, action="append", required=True, metavar="RUN_DIR",
                   help="a run folder from 'mlperf-bert run' (repeat for more scenarios or split accuracy/"
                        "performance runs)")
    p.add_argument("--compliance", type=Path, action="append", default=[], metavar="DIR",
                   help="a folder from 'mlperf-bert compliance' (repeat for TEST01, TEST05, scenarios)")
    p.add_argument("--output", type=Path, required=True, help="submission root to create")
    p.add_argument("--submitter", required=True, help="organisation name")
    p.add_argument("--system", required=True, help="system description id, e.g. epyc-2c-ort")
    p.add_argument("--rules", choices=("v1.0", "current", "quick"),
                   help="default: what the runs were made under (they must agree); v1.0 and current write that "
                        "version's layout")
    p.add_argument("--layout", choices=("v1.0", "current"),
                   help="layout of a tree of quick runs (default: v1.0 when they used the v1.0 seeds, else current)")
    p.add_argument("--division", default="closed", choices=("closed", "open"))
    p.add_argument("--implementation", default="mlperf-bert", help="implementation name (default mlperf-bert)")
    p.add_argument("--benchmark", choices=("bert-99", "bert-99.9"),
                   help="for runs that recorded no benchmark (default: the run's, else bert-99)")
    p.add_argument("--system-type", choices=("datacenter", "edge", "datacenter,edge"), metavar="TYPE",
                   help="datacenter, edge or datacenter,edge (default: edge under the current rules, BERT being an "
                        "edge benchmark there; v1.0: "
                        "datacenter, edge with SingleStream only, both with Server and SingleStream)")
    p.add_argument("--system-json", type=Path,
                   help="JSON object of systems fields to set (e.g. host_memory_configuration, cooling, status)")
    p.add_argument("--implementation-json", type=Path, help="JSON object of measurements fields to set")
    p.add_argument("--reference-f1", type=float, help="fp32 F1 of a model mlperf-bert does not know")
    p.set_defaults(func=main)


def json_arg(path: Path | None, flag: str) -> dict:
    """The JSON object in file ``path`` (``{}`` for None); a ConfigError naming ``flag`` otherwise."""
    from mlperf_bert.errors import ConfigError, DataError
    from mlperf_bert.fileio import read_json

    if path is None:
        return {}
    try:
        data = read_json(Path(path), "JSON file")
    except DataError as exc:
        raise ConfigError(f"{flag}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{flag} {path} must hold a JSON object")
    return data


def print_missing_fields(missing: list, layout: str, say) -> None:
    """One line per systems field still empty, saying whether the layout's checker rejects it."""
    for name, fails in missing:
        verdict = "the v6.1 checker fails on it" if fails else "allowed empty"
        say(f"systems field {name!r} is empty ({verdict}); set it with --system-json")


def main(args: argparse.Namespace) -> int:
    import sys

    from mlperf_bert.submission.tree import MissingScenarios, SubmissionSpec, assemble_submission

    spec = SubmissionSpec(output=args.output, submitter=args.submitter, system=args.system, runs=tuple(args.run),
                          compliance=tuple(args.compliance), division=args.division,
                          implementation=args.implementation, benchmark=args.benchmark,
                          system_overrides=json_arg(args.system_json, "--system-json"),
                          implementation_overrides=json_arg(args.implementation_json, "--implementation-json"),
                          system_type=args.system_type, reference_f1=args.reference_f1, rules=args.rules,
                          layout=args.layout)
    try:
        out = assemble_submission(spec)
    except MissingScenarios as exc:
        for line in exc.lines:
            print(f"mlperf-bert: {line}", file=sys.stderr)
        raise
    for bm, sc in out.entries:
        print(f"mlperf-bert: wrote {bm}/{sc}")
    print_missing_fields(out.missing_system_fields, out.layout, lambda m: print(f"mlperf-bert: {m}"))
    for w in out.warnings:
        print(f"mlperf-bert: warning: {w}")
    print(f"mlperf-bert: {out.layout} layout ({out.rules} rules, system type {out.system_type}) in {out.root}; "
          f"full accuracy logs in {out.full_logs}")
    print(f"mlperf-bert: check it with: mlperf-bert check {out.root} --rules {out.rules}")
    return 0
