"""PyTorch backend: a Hugging Face ``BertForQuestionAnswering`` (config.json + model.safetensors) or the
official MLPerf ``model.pytorch`` state_dict with a ``bert_config.json`` beside it (docs/models.md#official-artifacts).

Weights load strictly: any missing or unexpected tensor name is an error listing all of them (the
reference's ``strict=False`` silently ran with missing weights, docs/workload.md#reference-pitfalls). The only names
tolerated without being used are ``convert.names.HF_IGNORE_RULES`` (the pooler, which QA never uses, and the
``position_ids`` buffer older transformers versions saved), the same list the TF converter applies.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mlperf_bert.backends.registry import BackendConfig
from mlperf_bert.convert.names import HF_IGNORE_RULES, ignore_reason
from mlperf_bert.errors import BackendFailure, ConfigError, ModelError

PRECISIONS = ("fp32", "bf16", "fp16")


def _find_config(path: Path) -> Path:
    base = path if path.is_dir() else path.parent
    for name in ("config.json", "bert_config.json"):
        if (base / name).is_file():
            return base / name
    raise ModelError(f"no config.json or bert_config.json next to the model {path}")


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read weights from an HF dir (model.safetensors or pytorch_model.bin) or a state_dict file.

    ``torch.load`` runs with ``weights_only=True`` (no pickled code). Raises ModelError for a missing,
    truncated or unreadable file.
    """
    path = Path(path)
    if path.is_dir():
        for name in ("model.safetensors", "pytorch_model.bin", "model.pytorch"):
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise ModelError(f"{path} has no model.safetensors, pytorch_model.bin or model.pytorch")
    if not path.is_file():
        raise ModelError(f"model not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any reader failure means a bad file
        raise ModelError(f"cannot read weights from {path} (truncated or not a PyTorch/safetensors file): "
                         f"{str(exc).splitlines()[0][:200]}") from exc
    if isinstance(sd, dict) and "model" in sd and isinstance(sd["model"], dict):
        sd = sd["model"]  # NVIDIA-style {"model": state_dict}
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ModelError(f"{path} does not hold a state_dict of tensors")
    return sd


def build_model(path: Path, attn_implementation: str = "sdpa"):
    """Build a ``BertForQuestionAnswering`` from ``path`` with strict weight loading, in eval mode.

    Raises:
        ModelError: missing config or weights, or the checkpoint's tensor names/shapes do not match
            the config (all problems listed in one line).
    """
    from transformers import BertConfig, BertForQuestionAnswering

    path = Path(path)
    if not path.exists():
        raise ModelError(f"model not found: {path}")
    cfg_path = _find_config(path)
    try:
        config = BertConfig.from_json_file(str(cfg_path))
    except (OSError, ValueError) as exc:
        raise ModelError(f"bad BERT config {cfg_path}: {exc}") from exc
    if getattr(config, "model_type", "bert") not in ("bert", None):
        raise ModelError(f"{cfg_path} describes a {config.model_type!r} model, not BERT")
    config._attn_implementation = attn_implementation
    sd = load_state_dict(path)
    model = BertForQuestionAnswering(config)
    expected = model.state_dict()
    given = {k: v for k, v in sd.items() if ignore_reason(k, HF_IGNORE_RULES) is None}
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    misshaped = sorted(f"{k} {tuple(given[k].shape)} != {tuple(expected[k].shape)}"
                       for k in set(given) & set(expected) if given[k].shape != expected[k].shape)
    if missing or unexpected or misshaped:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)}: {', '.join(missing)}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)}: {', '.join(unexpected)}")
        if misshaped:
            parts.append(f"wrong shape {len(misshaped)}: {', '.join(misshaped)}")
        raise ModelError(f"weights in {path} do not match {cfg_path.name}: " + "; ".join(parts))
    model.load_state_dict(given, strict=True)
    model.eval()
    return model


class PyTorchBackend:
    """Runs ``BertForQuestionAnswering`` under ``torch.inference_mode`` (dropout off, no autograd).

    Options (``BackendConfig.options``): ``precision`` = ``fp32`` (default), ``bf16`` or ``fp16``
    (autocast; fp16 on CUDA only); ``compile`` = True to wrap the model in ``torch.compile``.
    """

    name = "pytorch"

    def __init__(self, model_path: Path, device: str = "auto", threads: int | None = None,
                 precision: str = "fp32", compile: bool = False) -> None:
        if precision not in PRECISIONS:
            raise ConfigError(f"pytorch precision must be one of {PRECISIONS}, got {precision!r}")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
            raise ConfigError(f"device must be cpu, cuda or auto, got {device!r}")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError("device cuda requested but torch sees no CUDA device")
        if precision == "fp16" and device == "cpu":
            raise ConfigError("precision fp16 needs --device cuda; on CPU use bf16")
        if threads:
            torch.set_num_threads(int(threads))
        self.device = torch.device(device)
        self.precision = precision
        self.model = build_model(Path(model_path)).to(self.device)
        self._dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        self._forward = torch.compile(self.model) if compile else self.model

    @classmethod
    def from_config(cls, config: BackendConfig) -> "PyTorchBackend":
        if config.model is None:
            raise ConfigError("the pytorch backend needs --model (an HF dir or model.pytorch)")
        opts = dict(config.options)
        unknown = set(opts) - {"precision", "compile"}
        if unknown:
            raise ConfigError(f"unknown pytorch backend options: {', '.join(sorted(unknown))}")
        return cls(config.model, device=config.device, threads=config.threads,
                   precision=opts.get("precision", "fp32"), compile=bool(opts.get("compile", False)))

    def predict(self, input_ids: np.ndarray, input_mask: np.ndarray, segment_ids: np.ndarray) -> np.ndarray:
        """int [B, L] x3 -> float32 [B, L, 2] (start, end)."""
        dev = self.device
        ids = torch.from_numpy(np.asarray(input_ids, dtype=np.int64)).to(dev)
        mask = torch.from_numpy(np.asarray(input_mask, dtype=np.int64)).to(dev)
        seg = torch.from_numpy(np.asarray(segment_ids, dtype=np.int64)).to(dev)
        try:
            with torch.inference_mode(), torch.autocast(dev.type, dtype=self._dtype or torch.bfloat16,
                                                        enabled=self._dtype is not None):
                out = self._forward(input_ids=ids, attention_mask=mask, token_type_ids=seg)
                logits = torch.stack((out.start_logits, out.end_logits), dim=-1)  # (B, L, 2)
        except RuntimeError as exc:
            raise BackendFailure(f"pytorch forward failed on a batch of shape {tuple(ids.shape)}: {exc}") from exc
        return logits.float().cpu().numpy()

    def close(self) -> None:
        self.model = None
        self._forward = None
