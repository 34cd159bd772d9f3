"""``mlperf-bert models [--dir D...] [--no-verify] [--json]``: which official and local models exist.

Searches ``<cache>/models`` (where ``download`` writes), ``<shared>/models`` (the small test model) and
every ``--dir``, and ``<shared>/data`` for the dev set ``run`` uses by default. Official downloads are md5-verified (cached by size+mtime, so repeat listings are fast).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers, registry) -> None:
    """Add the ``models`` subcommand."""
    p = subparsers.add_parser(
        "models",
        help="list official and local models: where they are, verified or not",
        description="List the official MLPerf BERT artifacts (downloaded? md5-verified?) and the local "
                    "models found in <cache>/models, <shared>/models and each --dir.",
    )
    p.add_argument("--dir", type=Path, action="append", default=[], metavar="D",
                   help="another folder to search (repeatable)")
    p.add_argument("--no-verify", action="store_true", help="skip md5 checks (presence only)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(func=run)


def console():
    """A rich Console on stdout, 200 columns wide when stdout is not a terminal (piped tables keep paths)."""
    from rich.console import Console

    out = Console()
    return out if out.is_terminal else Console(width=200)


def search_dirs(extra: list[Path]) -> list[Path]:
    """Default roots (``<cache>/models``, ``<shared>/models``) followed by ``extra``."""
    from mlperf_bert.config import default_cache_dir, default_shared_dir

    return [default_cache_dir() / "models", default_shared_dir() / "models", *extra]


def default_data(verify: bool) -> list:
    """Official data sets where ``run`` reads them by default (``<shared>/data/dev-v1.1.json``), so the
    listing agrees with ``run``. The md5 is computed each time: nothing is written into that folder."""
    from mlperf_bert.config import DataPaths
    from mlperf_bert.models.local import FileInfoCache, official_status
    from mlperf_bert.models.registry import OFFICIAL_DATASETS

    folder = DataPaths.defaults().dataset.parent
    found = []
    for entry in OFFICIAL_DATASETS:
        model = official_status(entry, folder, verify=verify, cache=FileInfoCache(folder))  # never saved
        if model is not None:
            found.append(model)
    return found


def run(args: argparse.Namespace) -> int:
    """Print the listing; 0 always (a listing is not a check)."""
    from mlperf_bert.errors import ConfigError
    from mlperf_bert.models.local import list_local, official_table
    from mlperf_bert.models.registry import OfficialModel

    for d in args.dir:
        if not d.is_dir():
            raise ConfigError(f"--dir {d}: no such folder; pass an existing folder that holds models")
    local = list_local(search_dirs(args.dir), verify=not args.no_verify) + default_data(not args.no_verify)
    rows = official_table(local)

    if args.json:
        doc = {
            "official": [
                {
                    "name": row.entry.name,
                    "format": row.entry.format if isinstance(row.entry, OfficialModel) else "dataset",
                    "precision": getattr(row.entry, "precision", None),
                    "f1": getattr(row.entry, "f1", None),
                    "status": row.best.status if row.best else "not downloaded",
                    "path": str(row.best.path) if row.best else None,
                }
                for row in rows
            ],
            "local": [
                {
                    "name": m.name, "kind": m.kind, "path": str(m.path), "status": m.status,
                    "official": m.official, "input_names": list(m.input_names),
                    "manifest": m.manifest, "detail": m.detail,
                }
                for m in local
            ],
        }
        print(json.dumps(doc, indent=1))
        return 0

    from rich.table import Table

    official = Table(title="Official artifacts")
    for col in ("name", "format", "precision", "F1", "status", "path"):
        official.add_column(col, overflow="fold", no_wrap=col in ("name", "format", "F1"))
    for row in rows:
        entry, best = row.entry, row.best
        is_model = isinstance(entry, OfficialModel)
        status = best.status if best else "not downloaded"
        style = "green" if best and best.verified else ("red" if best and "mismatch" in status else "")
        official.add_row(entry.name, entry.format if is_model else "dataset",
                         entry.precision if is_model else "", f"{entry.f1:.3f}" if is_model else "",
                         f"[{style}]{status}[/]" if style else status, str(best.path) if best else "")

    others = Table(title="Local models")
    for col in ("name", "kind", "status", "inputs", "path", "detail"):
        others.add_column(col, overflow="fold", no_wrap=col in ("name", "format", "F1"))
    for m in local:
        if m.kind == "official":
            continue
        others.add_row(m.name, m.kind, m.status, ", ".join(m.input_names), str(m.path), m.detail)

    out = console()
    out.print(official)
    out.print(others)
    return 0
