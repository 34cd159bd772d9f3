"""``mlperf-bert quantize``: int8 BERT the MLPerf way, calibrated only on the 100 listed dev features.

``--method ptq``: ONNX Runtime static quantization (QDQ, symmetric, per-tensor int8) of an fp32 model
(ONNX file, or a PyTorch/Hugging Face folder exported to ONNX first). ``--method qat``: fake quantizers
at MLPerf's positions, calibrated, fine-tuned on SQuAD train, exported in the official fake-quant form and
a fast QDQ form. Both write ``manifest.json`` next to the model. Score with
``mlperf-bert run --backend onnxruntime --model <output>/model.onnx --mode accuracy``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction, registry) -> None:
    p = sub.add_parser("quantize", help="int8 quantization: post-training (ptq) or quantization-aware (qat)",
                       description="Make an int8 BERT QA model calibrated on MLPerf's 100 calibration "
                                   "features: --method ptq (ONNX Runtime static QDQ) or --method qat "
                                   "(fake quantizers + fine-tuning on SQuAD train). Writes <output>/model.onnx "
                                   "and <output>/manifest.json.")
    p.add_argument("--method", required=True, choices=("ptq", "qat"), help="ptq or qat")
    p.add_argument("--model", type=Path,
                   help="fp32 model: .onnx file or PyTorch/HF folder for ptq; HF BERT QA folder for qat "
                        "(default: the small SQuAD model in ../shared/models/minilm-l6-squad)")
    p.add_argument("--output", type=Path, required=True, help="output folder (created)")
    p.add_argument("--calibration", type=Path,
                   help="calibration list: feature indices, one per line "
                        "(default: ../shared/data/bert-calibration.txt)")
    p.add_argument("--dataset", type=Path,
                   help="SQuAD v1.1 dev JSON the list indexes (default: ../shared/data/dev-v1.1.json)")
    p.add_argument("--vocab", type=Path, help="vocab.txt (default: ../shared/data/vocab.txt)")
    p.add_argument("--cache-dir", type=Path,
                   help="feature/model cache (default: $MLPERF_BERT_CACHE or ~/.cache/mlperf-bert)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    g = p.add_argument_group("ptq")
    g.add_argument("--calibration-method", default="percentile", choices=("percentile", "entropy", "minmax", "max"),
                   help="activation ranges: percentile (default), entropy (ptq), minmax (ptq) or max (qat)")
    g.add_argument("--percentile", type=float,
                   help="percentile of |x| (default: ptq 99.999, qat 99.99 as in MLPerf's recipe)")
    g.add_argument("--activation-type", default="uint8", choices=("uint8", "int8"),
                   help="ptq activation storage: uint8 with zero point 128 (default; same symmetric grid, what "
                        "ORT's x86 integer kernels take) or int8 with zero point 0")
    g.add_argument("--smooth-alpha", type=float, default=0.4, metavar="ALPHA",
                   help="ptq: SmoothQuant migration strength in [0, 1] (default 0.4): moves per-channel "
                        "activation outliers into the weights first; quantization stays per-tensor")
    g.add_argument("--no-smooth", action="store_true",
                   help="ptq: no SmoothQuant (MLPerf's plain positions; with --percentile 99.99 the MLPerf "
                        "calibration without its fine-tuning)")
    g.add_argument("--exclude", action="append", default=[], metavar="NAME",
                   help="ptq: keep MatMul nodes whose name contains NAME in fp32 (repeatable)")
    t = p.add_argument_group("qat")
    t.add_argument("--train-file", type=Path,
                   help="SQuAD v1.1 train JSON(.gz) (default: ../shared/data/train-v1.1-from-explorer.json.gz)")
    t.add_argument("--epochs", type=float, default=2.0, help="fine-tuning epochs (default 2, MLPerf's recipe)")
    t.add_argument("--lr", type=float, default=3e-5, help="peak learning rate (default 3e-5, MLPerf's recipe)")
    t.add_argument("--batch-size", type=int, default=32, help="features per step (default 32)")
    t.add_argument("--max-steps", type=int, help="stop after N steps (schedule over them)")
    t.add_argument("--max-seconds", type=float, help="stop after N seconds of training (schedule on time)")
    t.add_argument("--max-train-questions", type=int, help="use only the first N training questions")
    t.add_argument("--save-every", type=int, default=500, help="checkpoint every N steps (default 500)")
    t.add_argument("--resume", action="store_true", help="continue from <output>/checkpoint.pt")
    t.add_argument("--seed", type=int, default=0, help="shuffling and dropout seed (default 0)")
    t.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                   help="training autocast: bf16 where the device has native bf16, else fp32 (default auto)")
    t.add_argument("--device", default="auto", help="cpu | cuda | auto (default auto)")
    t.add_argument("--threads", type=int, help="torch intra-op threads")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from mlperf_bert.commands.common import default_model
    from mlperf_bert.config import DataPaths, SquadConfig, default_shared_dir
    from mlperf_bert.errors import ConfigError, ModelError
    from mlperf_bert.quant.calibration import read_calibration_list
    from mlperf_bert.squad.cache import load_features

    model = args.model or default_model()
    if not model.exists():
        raise ModelError(f"model not found: {model}")
    if args.method == "qat" and not model.is_dir():
        raise ConfigError(f"--method qat trains a PyTorch model: pass a Hugging Face BERT QA folder, not {model}")
    if args.calibration_method in ("entropy", "minmax") and args.method == "qat":
        raise ConfigError("--method qat calibrates with percentile or max")
    if args.calibration_method == "max" and args.method == "ptq":
        raise ConfigError("--method ptq calibrates with percentile, entropy or minmax")
    shared = default_shared_dir()
    defaults = DataPaths.defaults(cache_dir=args.cache_dir)
    paths = DataPaths(dataset=args.dataset or defaults.dataset, vocab=args.vocab or defaults.vocab,
                      cache_dir=defaults.cache_dir)
    cal_path = args.calibration or shared / "data" / "bert-calibration.txt"
    if not cal_path.is_file():  # before the features load
        read_calibration_list(cal_path, 1)
    squad = SquadConfig()
    progress = not args.no_progress
    say = lambda m: print(f"mlperf-bert: {m}", flush=True)  # noqa: E731
    if args.method == "qat":  # check the model and train file before the features load
        from mlperf_bert.quant.qat import load_quant_model

        load_quant_model(model)
        train_file = args.train_file or shared / "data" / "train-v1.1-from-explorer.json.gz"
        if not train_file.is_file():
            from mlperf_bert.train.data import read_squad_train

            read_squad_train(train_file)
    elif model.suffix == ".onnx":
        from mlperf_bert.quant.ptq import check_bert_onnx

        check_bert_onnx(model)
    _, features = load_features(paths, squad, progress)
    calibration = read_calibration_list(cal_path, len(features))
    say(f"calibration: {len(calibration)} features from {cal_path}"
        + (" (the official MLPerf list)" if calibration.official else " (NOT the official MLPerf list)"))
    percentile = {} if args.percentile is None else {"percentile": args.percentile}  # else each config's default
    if args.method == "ptq":
        from mlperf_bert.quant.ptq import PtqConfig, quantize_ptq

        cfg = PtqConfig(method=args.calibration_method, activation_type=args.activation_type,
                        exclude=tuple(args.exclude), smooth_alpha=None if args.no_smooth else args.smooth_alpha,
                        **percentile)
        fp32 = model
        if model.is_dir() or model.suffix in (".pytorch", ".bin", ".safetensors"):
            from mlperf_bert.convert.to_onnx import exported_onnx

            fp32 = exported_onnx(model, paths.cache_dir, say=say)
        say(f"quantizing {fp32} ({cfg.method} calibration) ...")
        manifest = quantize_ptq(fp32, args.output, features, calibration, cfg, source=model)
    else:
        from mlperf_bert.quant.qat import QatJob, run_qat
        from mlperf_bert.train.finetune import TrainConfig

        train = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
                            max_steps=args.max_steps, max_seconds=args.max_seconds, seed=args.seed,
                            precision=args.precision, save_every=args.save_every)
        job = QatJob(model=model, output=args.output, train_file=train_file, train=train,
                     calibration_method=args.calibration_method, **percentile,
                     max_train_questions=args.max_train_questions, device=args.device, threads=args.threads,
                     resume=args.resume, cache_dir=paths.cache_dir)
        vocab = model / "vocab.txt" if (model / "vocab.txt").is_file() else paths.vocab
        manifest = run_qat(job, features, calibration, vocab, squad, progress=progress, on_event=say)
    r = manifest.extra["results"]
    model_file = args.output / (r.get("qdq_model") or r["model"])
    say(f"wrote {model_file} and {args.output / 'manifest.json'}")
    print(f"score it: mlperf-bert run --backend onnxruntime --model {model_file} --mode accuracy")
    return 0
