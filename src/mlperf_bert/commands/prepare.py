"""``mlperf-bert prepare``: build (or load) the SQuAD features once and report what they are; with
``--backend``, also prepare the model artifact that backend loads (export, graph optimization), once."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from mlperf_bert.commands.common import flag_dest, options_by_flag


def register(subparsers: argparse._SubParsersAction, registry) -> None:
    """Add ``prepare [--dataset PATH] [--vocab PATH] [--cache-dir DIR]``."""
    p = subparsers.add_parser(
        "prepare",
        help="tokenize SQuAD v1.1 into 384-token features and cache them",
        description=(
            "Read the SQuAD v1.1 dev set, build the MLPerf BERT features (384 tokens, stride 128, "
            "question <= 64 pieces) and cache them as .npz keyed by the dataset, vocabulary and settings. "
            "Prints the feature count, length statistics and the cache path. With --backend, also makes the "
            "artifact that backend runs from --model (e.g. onnxruntime: ONNX export + ORT transformer fusions), "
            "the same way 'run' would, and prints its path and manifest."
        ),
    )
    p.add_argument("--backend", help=f"also prepare the model for this backend ({', '.join(registry.names())})")
    p.add_argument("--model", type=Path, help="the model to prepare (default: the small model in ../shared)")
    g = p.add_argument_group("backend options")
    for flag, owners in sorted(options_by_flag(registry).items()):
        opt = owners[0][1]
        if opt.stage == "prepare":
            kw = {"action": argparse.BooleanOptionalAction} if opt.type is bool else {"type": opt.type}
            g.add_argument(flag, dest=flag_dest(flag), default=None, help=opt.help, **kw)
    p.add_argument("--dataset", type=Path, default=None, help="SQuAD v1.1 JSON (default: shared/data/dev-v1.1.json)")
    p.add_argument("--vocab", type=Path, default=None, help="WordPiece vocab.txt (default: shared/data/vocab.txt)")
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="feature cache folder (default: $MLPERF_BERT_CACHE or ~/.cache/mlperf-bert)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build or load the features and print a summary; returns 0."""
    import numpy as np

    from mlperf_bert.config import DataPaths, SquadConfig
    from mlperf_bert.squad.cache import cache_path, load_features

    defaults = DataPaths.defaults(cache_dir=args.cache_dir)
    paths = DataPaths(
        dataset=args.dataset or defaults.dataset,
        vocab=args.vocab or defaults.vocab,
        cache_dir=defaults.cache_dir,
    )
    cfg = SquadConfig()
    cache = cache_path(paths, cfg)
    before = cache.stat().st_mtime_ns if cache.exists() else None
    t0 = time.perf_counter()
    examples, features = load_features(paths, cfg, progress=True)
    seconds = time.perf_counter() - t0
    lengths = features.lengths
    per_question = np.bincount(np.bincount(features.example_index, minlength=len(examples)))
    print(f"dataset    {paths.dataset} ({len(examples):,} questions)")
    print(f"vocab      {paths.vocab}")
    print(
        f"features   {len(features):,} of {cfg.max_seq_length} tokens "
        f"(stride {cfg.doc_stride}, question <= {cfg.max_query_length} pieces)"
    )
    if len(features):
        print(
            f"lengths    min {lengths.min()}, mean {lengths.mean():.2f}, max {lengths.max()}; "
            f"{int((lengths == cfg.max_seq_length).sum()):,} fill all {cfg.max_seq_length} positions"
        )
    counts = [f"{int(c):,} with {k}" for k, c in enumerate(per_question) if c and k]
    print("questions  " + ", ".join(counts) + " feature(s)")
    reused = before is not None and cache.stat().st_mtime_ns == before
    print(f"cache      {cache} ({'loaded' if reused else 'written'})")
    print(f"time       {seconds:.2f} s")
    if args.backend:
        _prepare_model(args, paths)
    return 0


def _prepare_model(args: argparse.Namespace, paths) -> None:
    """Prepare ``--model`` for ``--backend`` through the backend's own ``prepare`` and print the result."""
    import json

    from mlperf_bert.commands.common import backend_config
    from mlperf_bert.models.artifact import manifest_for

    for name in ("device", "threads"):
        setattr(args, name, getattr(args, name, None) or ("auto" if name == "device" else None))
    config = backend_config(args, args.registry, paths.cache_dir)
    prepared = args.registry.prepare(config, lambda m: print(f"mlperf-bert: {m}", flush=True))
    print(f"model      {prepared.model}")
    manifest = manifest_for(prepared.model) if prepared.model else None
    if manifest is not None:
        print(json.dumps(manifest.to_json(), indent=2))
