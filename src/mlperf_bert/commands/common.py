"""Flag groups shared by several subcommands (data paths, backend selection)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from mlperf_bert.config import DataPaths, default_shared_dir
from mlperf_bert.errors import ConfigError, DataError, ModelError

if TYPE_CHECKING:
    from mlperf_bert.backends.base import BackendOption
    from mlperf_bert.backends.registry import BackendRegistry

DEFAULT_MODEL_REL = Path("models") / "minilm-l6-squad"


def add_data_args(p: argparse.ArgumentParser) -> None:
    """--dataset, --vocab, --cache-dir (defaults: the real data in ../shared/data)."""
    g = p.add_argument_group("data")
    g.add_argument("--dataset", type=Path, help="SQuAD v1.1 JSON (default: ../shared/data/dev-v1.1.json)")
    g.add_argument("--vocab", type=Path, help="BERT vocab.txt (default: ../shared/data/vocab.txt)")
    g.add_argument("--cache-dir", type=Path,
                   help="feature/model cache (default: $MLPERF_BERT_CACHE or ~/.cache/mlperf-bert)")


def data_paths(args: argparse.Namespace) -> DataPaths:
    """Resolve the data flags; a missing file is a one-line DataError saying where to get it."""
    defaults = DataPaths.defaults(cache_dir=args.cache_dir)
    paths = DataPaths(dataset=args.dataset or defaults.dataset, vocab=args.vocab or defaults.vocab,
                      cache_dir=defaults.cache_dir)
    if paths.dataset.is_dir():
        raise DataError(f"--dataset {paths.dataset} is a folder; pass the SQuAD v1.1 JSON file (dev-v1.1.json)")
    if not paths.dataset.is_file():
        raise DataError(f"SQuAD dataset not found: {paths.dataset}; pass --dataset PATH "
                        "('mlperf-bert download squad-dev' fetches it and prints its path)")
    if paths.vocab.is_dir():
        raise DataError(f"--vocab {paths.vocab} is a folder; pass the BERT uncased vocab.txt file")
    if not paths.vocab.is_file():
        raise DataError(f"vocabulary not found: {paths.vocab}; pass --vocab (BERT uncased vocab.txt)")
    return paths


def flag_dest(flag: str) -> str:
    return "backend_opt_" + flag.lstrip("-").replace("-", "_")


def options_by_flag(registry: "BackendRegistry") -> dict[str, list[tuple[str, "BackendOption"]]]:
    """CLI flag -> [(backend name, option)] over every registered backend (a flag may be shared)."""
    flags: dict[str, list] = {}
    for spec in registry.specs():
        for opt in spec.options:
            flags.setdefault(opt.cli_flag, []).append((spec.name, opt))
    return flags


def add_backend_args(p: argparse.ArgumentParser, registry: "BackendRegistry",
                     default_backend: str = "onnxruntime") -> None:
    """--backend, --model, --device, --threads, and every registered backend's own option flags.

    The option flags come from the backends' specs (``BackendSpec.options``); a flag several backends
    declare (``--precision``) is offered once. Flags default to None ("not given"), so the backend's own
    default applies and the run records which settings the user chose.
    """
    g = p.add_argument_group("backend")
    listing = "; ".join(f"{s.name}: {s.summary}" for s in registry.specs())
    g.add_argument("--backend", default=default_backend, metavar="NAME",
                   help=f"one of {', '.join(registry.names())} (default: {default_backend}). {listing}")
    g.add_argument("--model", type=Path,
                   help="model file or folder (default: the small SQuAD model in ../shared/models/minilm-l6-squad; "
                        "a backend that runs another format prepares it once, e.g. onnxruntime exports to ONNX)")
    g.add_argument("--device", default="auto", help="cpu | cuda | auto (default: auto)")
    g.add_argument("--threads", type=int, help="intra-op threads per backend instance (default: physical cores // concurrent backend calls; with --replicas, each replica's CPUs)")
    for flag, owners in sorted(options_by_flag(registry).items()):
        opts = [o for _, o in owners]
        kind = opts[0].type
        helps = "; ".join(dict.fromkeys(o.help for o in opts if o.help))
        kwargs: dict = {"dest": flag_dest(flag), "default": None, "help": helps}
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = kind
            choices = [c for o in opts for c in (o.choices or ())]
            if choices and all(o.choices for o in opts):
                kwargs["choices"] = list(dict.fromkeys(choices))
        g.add_argument(flag, **kwargs)


def default_model() -> Path:
    path = default_shared_dir() / DEFAULT_MODEL_REL
    if not path.exists():
        raise ModelError(f"default model not found: {path}; pass --model (see 'mlperf-bert models')")
    return path


def backend_config(args: argparse.Namespace, registry: "BackendRegistry", cache_dir: Path):
    """The ``BackendConfig`` the backend flags describe: the chosen backend's options (only those given)
    and the model (default: the small model in ../shared). The model is not prepared here: the runner
    does that (``BackendRegistry.prepare``), saying what it makes.

    Raises:
        ConfigError: unknown backend, a flag of another backend, a bad option value, ``--threads`` < 1.
        ModelError: the model path does not exist.
    """
    from mlperf_bert.backends.base import BackendConfig

    spec = registry.spec(args.backend)
    options: dict = {}
    for flag, owners in options_by_flag(registry).items():
        value = getattr(args, flag_dest(flag), None)
        if value is None:
            continue
        mine = [o for name, o in owners if name == spec.name]
        if not mine:
            raise ConfigError(f"{flag} applies to backend {', '.join(sorted({n for n, _ in owners}))}, "
                              f"not {spec.name}")
        options[mine[0].name] = value
    model = args.model
    if spec.needs_model:
        model = model or default_model()
        if not model.exists() and not Path(str(model) + ".index").exists():
            raise ModelError(f"model not found: {model}")
    return registry.check(BackendConfig(name=spec.name, model=model, device=args.device, threads=args.threads,
                                        options=options, cache_dir=cache_dir))
