"""``mlperf-bert download NAME... [--dir D] [--mirror URL] [--no-progress]`` and ``download --list``.

Each NAME is an official registry entry (``mlperf_bert.models.registry``); its files go to
``D/NAME/`` (default ``<cache>/models/NAME/``), streamed with resume and md5-checked. The verified
paths are printed on stdout, one per line. ``--mirror`` (or ``$MLPERF_BERT_MIRROR``, read only here)
fetches ``<mirror>/<filename>`` instead of the official URL.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

#: Environment variable naming a mirror base URL (read only by this command).
MIRROR_ENV = "MLPERF_BERT_MIRROR"


def register(subparsers, registry) -> None:
    """Add the ``download`` subcommand."""
    p = subparsers.add_parser(
        "download",
        help="download official models or the SQuAD dev set (resumable, md5-checked)",
        description="Download official MLPerf BERT artifacts into DIR/NAME/, resuming partial files "
                    "and checking md5 sums. Prints the verified paths.",
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="registry names (see --list)")
    p.add_argument("--list", action="store_true", help="print the registry table and exit")
    p.add_argument("--dir", type=Path, default=None,
                   help="root folder; files go to DIR/NAME/ (default: <cache>/models)")
    p.add_argument("--mirror", default=None, metavar="URL",
                   help=f"fetch <URL>/<filename> instead of the official URL (default: ${MIRROR_ENV})")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--retries", type=int, default=3,
                   help="extra attempts after a dropped connection, each resuming the .part (default 3)")
    p.set_defaults(func=run)


def registry_table():
    """A rich Table of every official entry: name, format, precision, F1, and per file its URL (which ends
    in the file name a mirror must serve) and md5."""
    from rich.table import Table

    from mlperf_bert.models.registry import OFFICIAL, OfficialModel

    table = Table(title="Official MLPerf BERT artifacts (mlperf-bert download NAME)")
    for col in ("name", "format", "precision", "F1", "URL", "md5"):
        table.add_column(col, overflow="fold", no_wrap=col in ("name", "format", "F1", "URL"))
    for entry in OFFICIAL:
        is_model = isinstance(entry, OfficialModel)
        for k, art in enumerate(entry.files):
            first = k == 0
            table.add_row(
                entry.name if first else "",
                (entry.format if is_model else "dataset") if first else "",
                (entry.precision if is_model else "") if first else "",
                (f"{entry.f1:.3f}" if is_model else "") if first else "",
                art.url, art.md5,
            )
    return table


def run(args: argparse.Namespace) -> int:
    """Download each named entry; 0 when all are verified (errors raise ``HarnessError``)."""
    from mlperf_bert.config import default_cache_dir
    from mlperf_bert.errors import ConfigError
    from mlperf_bert.models import registry

    if args.list:
        from mlperf_bert.commands.models import console

        console().print(registry_table())
        return 0
    if not args.names:
        raise ConfigError("download: name at least one artifact (or use --list); choose from: "
                          + ", ".join(registry.names()))
    if args.retries < 0:
        raise ConfigError(f"--retries {args.retries}: must be 0 or more")
    entries = [registry.get(name) for name in args.names]  # validate every name before fetching
    root = args.dir if args.dir is not None else default_cache_dir() / "models"
    mirror = args.mirror or os.environ.get(MIRROR_ENV) or None

    from mlperf_bert.models.download import download_entry

    for entry in entries:
        for path in download_entry(entry, root, progress=not args.no_progress,
                                   base_url_override=mirror, retries=args.retries):
            print(path, flush=True)
    return 0
