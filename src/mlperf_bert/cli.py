"""The ``mlperf-bert`` command line.

Every subcommand lives in its own module under ``mlperf_bert.commands`` and exposes
``register(subparsers, registry) -> None`` (``registry``: the one ``BackendRegistry`` of the process); the
parser it adds sets ``func(args) -> int``. Modules are imported
here by name, so a subcommand's heavy imports (torch, onnxruntime, tensorflow) happen only inside its
``func``. Any ``HarnessError`` becomes one line on stderr and exit code 2; Ctrl-C becomes one line and
exit code 130.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from mlperf_bert import __version__
from mlperf_bert.backends.registry import BackendRegistry
from mlperf_bert.errors import HarnessError, RunInterrupted

#: Exit code after Ctrl-C (128 + SIGINT, the shell's convention).
EXIT_INTERRUPTED = 130

#: Subcommand modules, in the order ``--help`` lists them.
COMMANDS = (
    "run",
    "accuracy",
    "prepare",
    "export_onnx",
    "convert_tf",
    "random_bert",
    "export_tf",
    "download",
    "models",
    "compliance",
    "find_peak",
    "submission",
    "check",
    "submit",
    "report",
    "bench",
    "tune",
    "quantize",
    "finetune",
)


def build_parser(registry: BackendRegistry | None = None) -> argparse.ArgumentParser:
    """The top-level parser with every available subcommand registered.

    Args:
        registry: the backends (default: those installed, from the ``mlperf_bert.backends`` entry points).
            Built once here and handed to each command as ``args.registry``.
    """
    registry = registry if registry is not None else BackendRegistry.from_entry_points()
    parser = argparse.ArgumentParser(
        prog="mlperf-bert",
        description="MLPerf Inference BERT (SQuAD v1.1) through the MLPerf LoadGen.",
    )
    parser.add_argument("--version", action="version", version=f"mlperf-bert {__version__}")
    parser.set_defaults(registry=registry)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"mlperf_bert.commands.{name}")
        except ModuleNotFoundError as exc:  # a command under construction must not break the others
            if exc.name == f"mlperf_bert.commands.{name}":
                continue
            raise
        module.register(sub, registry)
    return parser


def main(argv: list[str] | None = None, registry: BackendRegistry | None = None) -> int:
    """Entry point of the console script; returns the process exit code (0 ok, 1 failed check, 2 error,
    130 interrupted; after an interrupt that left LoadGen's thread running the process ends here with
    ``os._exit(130)``).

    Args:
        argv: the arguments (default: ``sys.argv[1:]``).
        registry: the backends (default: the installed ones, from their entry points).
    """
    parser = build_parser(registry)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except HarnessError as exc:
        print(f"mlperf-bert {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # RunInterrupted says where the run stopped and what it left
        print(f"mlperf-bert {args.command}: {exc if isinstance(exc, RunInterrupted) else 'interrupted'}",
              file=sys.stderr, flush=True)
        if getattr(exc, "threads_running", False):
            # LoadGen's thread (or a SUT worker inside the backend) still runs: leave now, without the C++
            # static destructors that would run under it at a normal exit.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
