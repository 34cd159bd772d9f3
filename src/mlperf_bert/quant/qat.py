"""Quantization-aware BERT: symmetric per-tensor int8 fake quantizers at MLPerf's positions.

The MLPerf int8 BERT (``bert_large_v1_1_fake_quant.onnx``, docs/models.md#int8-model) is "symmetrically
per-tensor quantized without bias", with scale-only quantizers on, in every layer (the NVIDIA recipe, the
same positions as Hugging Face's former ``QDQBert`` model):

=====================  ==========================================================================
quantizer (per layer)  tensor
=====================  ==========================================================================
``qkv_in``             input of the Q, K and V dense layers (layer 0: the embedding output)
``query/key/value.w``  Q, K, V weights
``q``, ``k``           the two inputs of the attention-score matmul ``q @ k^T``
``probs``, ``v``       the two inputs of the context matmul ``probs @ v``
``ctx``, ``attn_out.w``  input and weight of the attention-output dense layer
``attn_add_local``     attention-output dense result, first input of the first residual add
``attn_add_res``       the layer input, second input of the first residual add
``inter_in``, ``inter.w``  input and weight of the intermediate dense layer
``out_in``, ``out.w``  GELU output and weight of the output dense layer
``ffn_add_local``      output dense result, first input of the second residual add
``ffn_add_res``        attention block output, second input of the second residual add
=====================  ==========================================================================

Biases, LayerNorm, softmax, GELU and the QA head stay fp32. Weight ranges are the tensor's max |w|
(recomputed every step while training, frozen for export); activation ranges come from the calibration
set (``calibrate``: 99.99th percentile of |x| histograms by default, docs/models.md#int8-model) and stay fixed
during fine-tuning. A quantizer maps x to ``scale * clamp(round(x / scale), -128, 127)`` with
``scale = amax / 127`` and zero point 0, through ``torch.fake_quantize_per_tensor_affine`` (straight-
through gradient inside the range, zero outside), which the ONNX exporter writes as a
QuantizeLinear/DequantizeLinear pair.

The model re-implements BERT's forward pass with the Hugging Face ``BertForQuestionAnswering``'s own
modules (embeddings, dense layers, LayerNorms), so weights load and save in the Hugging Face layout and,
with every quantizer disabled, the output equals Hugging Face's (checked in the tests).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from mlperf_bert.errors import ConfigError, ModelError
from mlperf_bert.train.finetune import TrainConfig

#: int8 range of a quantized value (ONNX QuantizeLinear int8 with zero point 0).
QMIN, QMAX = -128, 127
#: Activation quantizers of one layer, in forward order (see the module docstring).
ACTIVATION_POSITIONS = ("qkv_in", "q", "k", "v", "probs", "ctx", "attn_add_local", "attn_add_res",
                        "inter_in", "out_in", "ffn_add_local", "ffn_add_res")
#: Weight quantizers of one layer: (quantizer name, dense module path inside ``BertLayer``).
WEIGHT_POSITIONS = (("query.w", "attention.self.query"), ("key.w", "attention.self.key"),
                    ("value.w", "attention.self.value"), ("attn_out.w", "attention.output.dense"),
                    ("inter.w", "intermediate.dense"), ("out.w", "output.dense"))
CALIBRATION_METHODS = ("percentile", "max")


class FakeQuant(nn.Module):
    """Symmetric per-tensor int8 fake quantizer (scale only, zero point 0).

    Args:
        kind: ``"activation"`` (range ``amax`` from calibration, fixed) or ``"weight"`` (range = max |w|,
            recomputed on every call unless frozen).

    Attributes:
        amax: float32 scalar buffer: the clipping range; NaN until calibrated (activations) or frozen
            (weights). Saved with the state dict.
        enabled: when False the quantizer is the identity (sensitivity studies, fp32 parity).
    """

    def __init__(self, kind: str = "activation") -> None:
        super().__init__()
        if kind not in ("activation", "weight"):
            raise ConfigError(f"FakeQuant kind must be activation or weight, got {kind!r}")
        self.kind = kind
        self.register_buffer("amax", torch.tensor(float("nan")))
        # Fixed scale/zero point used while exporting (ONNX needs them as initializers, not computed).
        self.register_buffer("export_scale", torch.tensor(float("nan")), persistent=False)
        self.register_buffer("export_zero_point", torch.tensor(0, dtype=torch.int32), persistent=False)
        self.enabled = True
        self.frozen = False
        self._observer: _Observer | None = None

    def extra_repr(self) -> str:
        return f"kind={self.kind}, amax={float(self.amax):.5g}, enabled={self.enabled}"

    def current_amax(self, x: torch.Tensor) -> torch.Tensor:
        """The range used for ``x``: max |x| for an unfrozen weight quantizer, else the ``amax`` buffer."""
        if self.kind == "weight" and not self.frozen:
            return x.detach().abs().amax().float()
        return self.amax

    def freeze(self, weight: torch.Tensor) -> None:
        """Weights: store max |w| in ``amax`` and keep it fixed (before export)."""
        self.amax.copy_(weight.detach().abs().amax().float())
        self.frozen = True

    def prepare_export(self) -> None:
        """Fix ``export_scale = amax / 127`` (the exported QuantizeLinear/DequantizeLinear scale)."""
        if not torch.isfinite(self.amax):
            raise ConfigError("a fake quantizer has no range yet; calibrate (and freeze weights) before export")
        self.export_scale.copy_((self.amax.clamp_min(1e-8) / QMAX).reshape(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._observer is not None:
            self._observer.observe(x)
            return x
        if not self.enabled:
            return x
        if torch.onnx.is_in_onnx_export():
            if not torch.isfinite(self.export_scale):
                raise ConfigError("call QuantBertForQA.prepare_export() before exporting")
            x = x if x.dtype == torch.float32 else x.float()  # no Cast node for fp32 inputs
            return torch.fake_quantize_per_tensor_affine(x, self.export_scale, self.export_zero_point, QMIN, QMAX)
        amax = self.current_amax(x)
        if not torch.isfinite(amax):
            raise ConfigError("a fake quantizer has no range yet; run quant.qat.calibrate first")
        scale = (amax.clamp_min(1e-8) / QMAX).reshape(())
        zero = torch.zeros((), dtype=torch.int32, device=x.device)
        return torch.fake_quantize_per_tensor_affine(x.float(), scale, zero, QMIN, QMAX)


class _Observer:
    """Collects |x| statistics for one activation quantizer: pass 1 the max, pass 2 a histogram."""

    def __init__(self, bins: int) -> None:
        self.bins = bins
        self.max = 0.0
        self.hist: torch.Tensor | None = None
        self.top = 0.0

    def observe(self, x: torch.Tensor) -> None:
        a = x.detach().float().abs().reshape(-1)
        if self.hist is None:
            self.max = max(self.max, float(a.max()) if a.numel() else 0.0)
        else:  # the same samples as pass 1: nothing exceeds ``top``
            self.hist += torch.histc(a, bins=self.bins, min=0.0, max=self.top).double()

    def start_histogram(self) -> None:
        self.top = self.max if self.max > 0 else 1.0
        self.hist = torch.zeros(self.bins, dtype=torch.float64)

    def percentile(self, p: float) -> float:
        """Upper edge of the first bin where the cumulative share reaches ``p`` percent."""
        assert self.hist is not None
        cdf = torch.cumsum(self.hist, 0) / self.hist.sum().clamp_min(1)
        idx = int(torch.searchsorted(cdf, torch.tensor(p / 100.0, dtype=cdf.dtype)))
        return min(self.top, (min(idx, self.bins - 1) + 1) * self.top / self.bins)


class QuantBertForQA(nn.Module):
    """A Hugging Face ``BertForQuestionAnswering`` with MLPerf's fake quantizers in its forward pass.

    Args:
        hf_model: the fp32 model (weights are shared, not copied).

    ``forward(input_ids, attention_mask, token_type_ids)`` takes int64 [B, L] tensors and returns
    ``(start_logits, end_logits)``, float32 [B, L] each.

    Attributes:
        hf: the wrapped model (save it with ``save_pretrained`` for the fp32 weights).
        quantizers: ``nn.ModuleDict`` named ``layer{i}.{position}`` (positions in ``ACTIVATION_POSITIONS``
            and ``WEIGHT_POSITIONS``); ``amax`` buffers live in the state dict.
    """

    def __init__(self, hf_model: nn.Module) -> None:
        super().__init__()
        cfg = hf_model.config
        if getattr(cfg, "model_type", None) != "bert" or not hasattr(hf_model, "bert"):
            raise ModelError(f"quantization-aware training needs a BERT QA model, got {type(hf_model).__name__} "
                             f"({getattr(cfg, 'model_type', '?')})")
        if cfg.hidden_act not in ("gelu", "gelu_new", "gelu_python"):
            raise ModelError(f"unsupported hidden_act {cfg.hidden_act!r} (BERT uses gelu)")
        self.hf = hf_model
        self.config = cfg
        self.num_heads = cfg.num_attention_heads
        self.head_size = cfg.hidden_size // cfg.num_attention_heads
        q: dict[str, FakeQuant] = {}
        for i in range(cfg.num_hidden_layers):
            for pos in ACTIVATION_POSITIONS:
                q[f"layer{i}.{pos}"] = FakeQuant("activation")
            for pos, _ in WEIGHT_POSITIONS:
                q[f"layer{i}.{pos}"] = FakeQuant("weight")
        self.quantizers = nn.ModuleDict({k.replace(".", "_"): v for k, v in q.items()})
        self._names = {k.replace(".", "_"): k for k in q}
        self.train(hf_model.training)  # same mode as the wrapped model (eval after build_model)

    # -- quantizer access ------------------------------------------------------------------------
    def quantizer(self, name: str) -> FakeQuant:
        """The quantizer ``layer{i}.{position}``."""
        return self.quantizers[name.replace(".", "_")]

    def named_quantizers(self) -> Iterable[tuple[str, FakeQuant]]:
        """(``layer{i}.{position}``, quantizer) in definition order."""
        for key, module in self.quantizers.items():
            yield self._names[key], module

    def set_enabled(self, enabled: bool, match: str | None = None) -> int:
        """Enable/disable the quantizers whose name contains ``match`` (all when None); returns the count."""
        n = 0
        for name, fq in self.named_quantizers():
            if match is None or match in name:
                fq.enabled = enabled
                n += 1
        return n

    def freeze_weight_ranges(self) -> None:
        """Store every weight quantizer's current max |w| (done before export)."""
        for i, layer in enumerate(self.hf.bert.encoder.layer):
            for pos, path in WEIGHT_POSITIONS:
                self.quantizer(f"layer{i}.{pos}").freeze(layer.get_submodule(path).weight)

    def prepare_export(self) -> None:
        """Freeze weight ranges and fix every quantizer's export scale (``FakeQuant.prepare_export``)."""
        self.freeze_weight_ranges()
        for _, fq in self.named_quantizers():
            fq.prepare_export()

    def unfreeze_weight_ranges(self) -> None:
        for _, fq in self.named_quantizers():
            if fq.kind == "weight":
                fq.frozen = False

    # -- forward ---------------------------------------------------------------------------------
    def _dense(self, module: nn.Linear, x: torch.Tensor, wq: FakeQuant) -> torch.Tensor:
        # x @ W^T with the quantizer on W^T: per-tensor, so it equals quantizing W; exported as
        # initializer -> QuantizeLinear -> DequantizeLinear -> MatMul (the official int8 layout).
        return torch.matmul(x, wq(module.weight.t())) + module.bias

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, self.head_size).transpose(1, 2)  # (B, H, L, D)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        bert = self.hf.bert
        h = bert.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)  # (B, L, C)
        # Additive mask (B, 1, 1, L): 0 on real tokens, -10000 on padding (Google BERT's value).
        mask = (1.0 - attention_mask[:, None, None, :].to(h.dtype)) * -10000.0
        drop_p = self.config.attention_probs_dropout_prob if self.training else 0.0
        for i, layer in enumerate(bert.encoder.layer):
            def qz(pos: str, x: torch.Tensor, _i: int = i) -> torch.Tensor:
                return self.quantizer(f"layer{_i}.{pos}")(x)

            att = layer.attention.self
            x = qz("qkv_in", h)
            q = self._heads(qz("q", self._dense(att.query, x, self.quantizer(f"layer{i}.query.w"))))
            k = self._heads(qz("k", self._dense(att.key, x, self.quantizer(f"layer{i}.key.w"))))
            v = self._heads(qz("v", self._dense(att.value, x, self.quantizer(f"layer{i}.value.w"))))
            scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(self.head_size)) + mask  # (B,H,L,L)
            probs = F.dropout(torch.softmax(scores.float(), dim=-1), p=drop_p, training=self.training)
            ctx = torch.matmul(qz("probs", probs), v)  # (B, H, L, D)
            ctx = ctx.transpose(1, 2).reshape(h.shape[0], h.shape[1], -1)  # (B, L, C)
            out = layer.attention.output
            a = out.dropout(self._dense(out.dense, qz("ctx", ctx), self.quantizer(f"layer{i}.attn_out.w")))
            a = out.LayerNorm(qz("attn_add_local", a) + qz("attn_add_res", h))
            inter = layer.intermediate
            g = inter.intermediate_act_fn(self._dense(inter.dense, qz("inter_in", a),
                                                      self.quantizer(f"layer{i}.inter.w")))
            o = layer.output
            f = o.dropout(self._dense(o.dense, qz("out_in", g), self.quantizer(f"layer{i}.out.w")))
            h = o.LayerNorm(qz("ffn_add_local", f) + qz("ffn_add_res", a))
        logits = self.hf.qa_outputs(h)  # (B, L, 2)
        return logits[..., 0].float(), logits[..., 1].float()


@dataclass(frozen=True)
class CalibrationResult:
    """Activation ranges found by ``calibrate``.

    Attributes:
        method: ``percentile`` or ``max``.
        percentile: the percentile used (percentile method).
        amax: quantizer name -> range.
        samples: how many calibration samples were run.
    """

    method: str
    percentile: float
    amax: dict[str, float]
    samples: int


@torch.no_grad()
def calibrate(model: QuantBertForQA, batches: list[tuple], method: str = "percentile",
              percentile: float = 99.99, bins: int = 2048) -> CalibrationResult:
    """Set every activation quantizer's ``amax`` from the calibration samples.

    ``max``: the largest |x| seen. ``percentile``: the ``percentile``-th percentile of |x| over all
    samples, from a ``bins``-bin histogram over [0, max] (two passes: max, then histogram), as
    NVIDIA's ``HistogramCalibrator`` with ``compute_amax("percentile", 99.99)``. Weight quantizers are off
    during the passes, so the ranges describe the fp32 model's activations.

    Args:
        model: the model (put in eval mode for the passes; its mode is restored).
        batches: (input_ids, attention_mask, token_type_ids) int64 tensors or arrays [1, L_i] each, e.g.
            ``calibration.calibration_inputs`` of the 100 MLPerf calibration features.
        method: ``percentile`` or ``max``.
        percentile: in (0, 100].
        bins: histogram bins.

    Returns:
        ``CalibrationResult`` (also written into the quantizers' ``amax`` buffers).
    """
    if method not in CALIBRATION_METHODS:
        raise ConfigError(f"calibration method must be one of {', '.join(CALIBRATION_METHODS)}, got {method!r}")
    if not 0 < percentile <= 100:
        raise ConfigError(f"percentile must be in (0, 100], got {percentile}")
    if not batches:
        raise ConfigError("calibration needs at least one sample")
    was_training = model.training
    model.eval()
    acts = [(n, fq) for n, fq in model.named_quantizers() if fq.kind == "activation"]
    weights = [fq for _, fq in model.named_quantizers() if fq.kind == "weight"]
    enabled = [fq.enabled for fq in weights]
    for fq in weights:  # ranges of the fp32 model's activations (as NVIDIA's calibration does)
        fq.enabled = False
    for _, fq in acts:
        fq._observer = _Observer(bins)
    tensors = [tuple(torch.as_tensor(t, dtype=torch.long) for t in b) for b in batches]
    try:
        for b in tensors:
            model(*b)
        if method == "percentile":
            for _, fq in acts:
                fq._observer.start_histogram()
            for b in tensors:
                model(*b)
        amax = {}
        for name, fq in acts:
            obs = fq._observer
            value = obs.max if method == "max" else obs.percentile(percentile)
            fq.amax.fill_(value if value > 0 else 1e-8)
            amax[name] = float(fq.amax)
    finally:
        for _, fq in acts:
            fq._observer = None
        for fq, on in zip(weights, enabled):
            fq.enabled = on
        model.train(was_training)
    return CalibrationResult(method=method, percentile=percentile, amax=amax, samples=len(tensors))


def load_quant_model(model_path: Path) -> QuantBertForQA:
    """Build ``QuantBertForQA`` around a Hugging Face QA model dir (strictly loaded, see backends.pytorch)."""
    from mlperf_bert.backends.pytorch import build_model
    from mlperf_bert.train.finetune import read_bert_config

    if not Path(model_path).is_dir():
        raise ModelError(f"{model_path}: not a folder; quantization-aware training needs a Hugging Face BERT QA "
                         "folder (config.json + model.safetensors)")
    read_bert_config(Path(model_path))  # one line for a non-BERT folder
    model = build_model(Path(model_path), attn_implementation="eager")
    return QuantBertForQA(model)


# ------------------------------------------------------------------------------------------------
# --method qat: calibrate, fine-tune with fake quantizers, export
# ------------------------------------------------------------------------------------------------
FAKE_QUANT_FILE = "model_fake_quant.onnx"
QDQ_FILE = "model.onnx"
STATE_FILE = "qat_state.safetensors"


@dataclass(frozen=True)
class QatJob:
    """One quantization-aware fine-tuning run.

    Attributes:
        model: Hugging Face BERT QA folder (the fp32 model to quantize).
        output: folder for the ONNX files, state, checkpoint and manifest.
        train_file: SQuAD v1.1 training JSON.
        train: optimisation settings (MLPerf's recipe: 2 epochs at lr 3e-5).
        calibration_method: ``percentile`` (MLPerf) or ``max``.
        percentile: 99.99 (MLPerf).
        max_train_questions: only the first N training questions.
        device, threads: where to train.
        resume: continue from ``output/checkpoint.pt`` (calibration is then taken from the checkpoint).
        cache_dir: training-feature cache (None: ``config.default_cache_dir()``).
    """

    model: Path
    output: Path
    train_file: Path
    train: TrainConfig
    calibration_method: str = "percentile"
    percentile: float = 99.99
    max_train_questions: int | None = None
    device: str = "auto"
    threads: int | None = None
    resume: bool = False
    cache_dir: Path | None = None


def run_qat(job: QatJob, dev_features, calibration, vocab_path: Path, squad_cfg, *, progress: bool = True,
            on_event=None) -> dict:
    """Calibrate on the calibration features, fine-tune with fake quantizers, export both ONNX forms.

    Args:
        job: what to run.
        dev_features: the dev ``Features`` the calibration list indexes.
        calibration: ``calibration.CalibrationList``.
        vocab_path: vocab.txt for the training features.
        squad_cfg: ``SquadConfig`` (384 / 128 / 64).

    Returns:
        the manifest (also written to ``output/manifest.json``).

    Raises:
        ModelError: not a BERT QA model folder. DataError: bad calibration list or training file.
    """
    import json as _json

    from safetensors.torch import save_file

    from mlperf_bert.fileio import jsonable
    from mlperf_bert.quant.calibration import calibration_inputs, check_indices
    from mlperf_bert.quant.export import INPUT_NAMES as QDQ_INPUT_NAMES
    from mlperf_bert.quant.export import export_fake_quant_onnx, fake_quant_to_qdq
    from mlperf_bert.quant.manifest import build_manifest, write_manifest
    from mlperf_bert.config import default_cache_dir
    from mlperf_bert.train.data import load_train_features
    from mlperf_bert.backends.pytorch import torch_device
    from mlperf_bert.train.finetune import CHECKPOINT_FILE, train

    say = on_event or (lambda m: None)
    out = Path(job.output)
    model = load_quant_model(job.model)
    indices = check_indices(calibration.indices, len(dev_features), f"calibration list {calibration.path}")
    if job.threads:
        torch.set_num_threads(job.threads)
    device = torch_device(job.device)
    examples, feats = load_train_features(job.train_file, vocab_path, squad_cfg, job.cache_dir or default_cache_dir(),
                                          job.max_train_questions, progress)
    say(f"{len(feats):,} training features from {len(examples):,} questions ({job.train_file})")
    calib = None
    if not (job.resume and (out / CHECKPOINT_FILE).is_file()):
        say(f"calibrating {sum(1 for _ in model.named_quantizers() if _[1].kind == 'activation')} activation "
            f"quantizers on {len(indices)} calibration features ({job.calibration_method}) ...")
        calib = calibrate(model, list(calibration_inputs(dev_features, indices)), job.calibration_method,
                          job.percentile)
    result = train(model, feats, job.train, out, device=device, resume=job.resume, progress=progress,
                   on_event=say, extra_state={"kind": "qat"})
    model.to("cpu").eval()
    amax = {name: float(fq.amax) for name, fq in model.named_quantizers() if fq.kind == "activation"}
    say("exporting ONNX (fake-quant form and QDQ form) ...")
    fq_facts = export_fake_quant_onnx(model, out / FAKE_QUANT_FILE)
    qdq_facts = fake_quant_to_qdq(out / FAKE_QUANT_FILE, out / QDQ_FILE)
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(out / STATE_FILE))
    (out / "activation_ranges.json").write_text(_json.dumps(amax, indent=2) + "\n")
    settings = {"positions": list(ACTIVATION_POSITIONS), "weight_positions": [p for p, _ in WEIGHT_POSITIONS],
                "weight_range": "max |w|", "activation_range": f"{job.calibration_method}"
                + (f" {job.percentile}" if job.calibration_method == "percentile" else "") + " of |x|",
                "qmin_qmax": [QMIN, QMAX], "scale": "amax / 127", "train": job.train,
                "train_file": str(job.train_file), "max_train_questions": job.max_train_questions,
                "train_features": len(feats)}
    results = {"fake_quant_model": FAKE_QUANT_FILE, "qdq_model": QDQ_FILE, "state": STATE_FILE,
               "fake_quant": fq_facts, "qdq": qdq_facts, "calibrated_now": calib is not None,
               "steps": result.steps, "samples": result.samples, "train_seconds": round(result.seconds, 1),
               "stopped": result.stopped, "precision": result.precision,
               "loss_first": result.losses[:1], "loss_last_20_mean": float(sum(result.losses[-20:]) /
                                                                           max(1, len(result.losses[-20:])))}
    manifest = build_manifest("qat", Path(job.model), calibration,
                              settings=jsonable(settings), results=results,
                              model_file=QDQ_FILE, input_names=QDQ_INPUT_NAMES)
    write_manifest(out, manifest)
    return manifest
