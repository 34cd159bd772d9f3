"""Flag groups shared by several subcommands (data paths, backend selection)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mlperf_bert.config import DataPaths, default_cache_dir, default_shared_dir
from mlperf_bert.errors import DataError, ModelError

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
    if not paths.dataset.is_file():
        raise DataError(f"SQuAD dataset not found: {paths.dataset}; pass --dataset PATH "
                        "('mlperf-bert download squad-dev' fetches it and prints its path)")
    if not paths.vocab.is_file():
        raise DataError(f"vocabulary not found: {paths.vocab}; pass --vocab (BERT uncased vocab.txt)")
    return paths


def add_backend_args(p: argparse.ArgumentParser, default_backend: str = "onnxruntime") -> None:
    """--backend, --model, --device, --threads, --precision, --null-delay-ms, ..."""
    g = p.add_argument_group("backend")
    g.add_argument("--backend", default=default_backend,
                   help=f"onnxruntime | pytorch | tensorflow | null (default: {default_backend})")
    g.add_argument("--model", type=Path,
                   help="model file or folder (default: the small SQuAD model in ../shared/models/minilm-l6-squad; "
                        "for onnxruntime a PyTorch/HF model is exported to ONNX once and cached)")
    g.add_argument("--device", default="auto", help="cpu | cuda | auto (default: auto)")
    g.add_argument("--threads", type=int, help="intra-op threads, >= 1 (default: physical cores)")
    g.add_argument("--null-delay-ms", type=float,
                   help="null backend: sleep this long per batch, a stand-in for a slow model (harness tests)")
    g.add_argument("--precision", choices=("fp32", "bf16", "fp16"),
                   help="pytorch: autocast precision (default fp32)")
    g.add_argument("--ort-optimize", action=argparse.BooleanOptionalAction, default=True,
                   help="onnxruntime: apply ORT's transformer optimizer (fused attention/layernorm/gelu) once "
                        "and cache the result (default: on)")
    g.add_argument("--torch-compile", action="store_true", help="pytorch: wrap the model in torch.compile")


def default_model() -> Path:
    path = default_shared_dir() / DEFAULT_MODEL_REL
    if not path.exists():
        raise ModelError(f"default model not found: {path}; pass --model (see 'mlperf-bert models')")
    return path


def resolve_model(args: argparse.Namespace, cache_dir: Path | None) -> Path | None:
    """The model path for the chosen backend; for onnxruntime a PyTorch model is exported (cached)."""
    if args.backend == "null":
        return args.model
    model = args.model or default_model()
    if not model.exists():
        raise ModelError(f"model not found: {model}")
    if args.backend == "onnxruntime" and (model.is_dir() or model.suffix in (".pytorch", ".bin", ".safetensors")):
        from mlperf_bert.convert.to_onnx import cached_onnx

        model = cached_onnx(model, cache_dir or default_cache_dir())
    return model


def backend_config(args: argparse.Namespace, cache_dir: Path):
    """The ``BackendConfig`` for the backend flags (model resolved, options only for the chosen backend)."""
    from mlperf_bert.backends.registry import BackendConfig

    from mlperf_bert.errors import ConfigError

    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads {args.threads}: must be >= 1 (leave it out for every physical core)")
    delay = getattr(args, "null_delay_ms", None)
    if delay is not None and args.backend != "null":
        raise ConfigError("--null-delay-ms applies to the null backend only (--backend null)")
    options: dict = {}
    if args.backend == "null" and delay is not None:
        if not delay >= 0:
            raise ConfigError(f"--null-delay-ms {delay:g}: must be >= 0")
        options["delay_ms"] = delay
    elif args.backend == "pytorch":
        if args.precision:
            options["precision"] = args.precision
        if args.torch_compile:
            options["compile"] = True
    elif args.backend == "onnxruntime":
        options["transformer_optimize"] = bool(args.ort_optimize)
    elif args.precision and args.precision != "fp32":
        raise ConfigError(f"--precision {args.precision} applies to the pytorch backend only")
    return BackendConfig(name=args.backend, model=resolve_model(args, cache_dir), device=args.device,
                         threads=args.threads, options=options, cache_dir=cache_dir)
