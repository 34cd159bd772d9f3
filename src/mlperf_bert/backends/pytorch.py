"""PyTorch backend: a Hugging Face ``BertForQuestionAnswering`` (config.json + model.safetensors) or the
official MLPerf ``model.pytorch`` state_dict with a ``bert_config.json`` beside it (docs/models.md#official-artifacts).

Weights load strictly: any missing or unexpected tensor name is an error listing all of them (the
reference's ``strict=False`` silently ran with missing weights, docs/workload.md#reference-pitfalls). The only names
tolerated without being used are ``convert.names.HF_IGNORE_RULES`` (the pooler, which QA never uses, and the
``position_ids`` buffer older transformers versions saved), the same list the TF converter applies.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mlperf_bert.backends.base import BackendConfig, BackendOption, BackendSpec, model_path
from mlperf_bert.convert.names import HF_IGNORE_RULES, ignore_reason
from mlperf_bert.errors import BackendFailure, ConfigError, ModelError

if TYPE_CHECKING:  # torch is imported where it is used, so this module imports without it
    import torch

PRECISIONS = ("fp32", "bf16", "fp16")


def torch_device(device: str) -> "torch.device":
    """The torch device for ``--device``: ``auto`` = CUDA when torch sees one, else CPU.

    Raises:
        ConfigError: an unknown device, or ``cuda`` without a CUDA device.
    """
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device != "cpu" and not device.startswith("cuda"):
        raise ConfigError(f"--device must be cpu, cuda or auto, got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda requested but torch sees no CUDA device")
    return torch.device(device)


def check_weights(given: dict, expected: dict, where: str, config_name: str) -> None:
    """Strict weight check: every expected tensor present with its shape, nothing else.

    Args:
        given, expected: tensor name -> tensor (anything with ``.shape``).
        where, config_name: the weights' path and its config file's name, for the message.

    Raises:
        ModelError: one line listing all missing, unexpected and wrongly shaped tensors.
    """
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    misshaped = sorted(f"{k} {tuple(given[k].shape)} != {tuple(expected[k].shape)}"
                       for k in set(given) & set(expected) if given[k].shape != expected[k].shape)
    parts = [f"{what} {len(ks)}: {', '.join(ks)}" for what, ks in
             (("missing", missing), ("unexpected", unexpected), ("wrong shape", misshaped)) if ks]
    if parts:
        raise ModelError(f"weights in {where} do not match {config_name}: " + "; ".join(parts))


def _find_config(path: Path) -> Path:
    base = path if path.is_dir() else path.parent
    for name in ("config.json", "bert_config.json"):
        if (base / name).is_file():
            return base / name
    raise ModelError(f"no config.json or bert_config.json next to the model {path}")


def load_state_dict(path: Path) -> "dict[str, torch.Tensor]":
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
    import torch

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
    given = {k: v for k, v in sd.items() if ignore_reason(k, HF_IGNORE_RULES) is None}
    check_weights(given, model.state_dict(), str(path), cfg_path.name)
    model.load_state_dict(given, strict=True)
    model.eval()
    return model


class PyTorchBackend:
    """Runs ``BertForQuestionAnswering`` under ``torch.inference_mode`` (dropout off, no autograd).

    Options (``BackendConfig.options``, see ``SPEC``): ``precision`` = ``fp32`` (default), ``bf16`` or
    ``fp16`` (autocast; fp16 on CUDA only); ``compile`` = True to wrap the model in ``torch.compile``.
    """

    name = "pytorch"

    def __init__(self, model_path: Path, device: str = "auto", threads: int | None = None,
                 precision: str = "fp32", compile: bool = False) -> None:
        import torch

        if precision not in PRECISIONS:
            raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)} for pytorch, got {precision!r}")
        self.device = torch_device(device)
        if precision == "fp16" and self.device.type == "cpu":
            raise ConfigError("--precision fp16 needs --device cuda; on CPU use bf16")
        if threads:
            torch.set_num_threads(int(threads))
        self.precision = precision
        self.model = build_model(Path(model_path)).to(self.device)
        self._dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        self._forward = torch.compile(self.model) if compile else self.model

    @classmethod
    def from_config(cls, config: BackendConfig) -> "PyTorchBackend":
        """Build from a ``BackendConfig`` (an HF folder or model.pytorch, device, threads, options)."""
        return cls(model_path(config), device=config.device, threads=config.threads,
                   precision=config.option("precision", "fp32"), compile=bool(config.option("compile", False)))

    def predict(self, input_ids: np.ndarray, input_mask: np.ndarray, segment_ids: np.ndarray) -> np.ndarray:
        """int [B, L] x3 -> float32 [B, L, 2] (start, end)."""
        import torch

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

    def describe(self) -> dict:
        """What run.json records of this backend: device and precision."""
        return {"device": str(self.device), "precision": self.precision}

    def close(self) -> None:
        self.model = None
        self._forward = None


SPEC = BackendSpec(
    name="pytorch",
    target="mlperf_bert.backends.pytorch:PyTorchBackend",
    extra="torch",
    summary="PyTorch (Hugging Face BertForQuestionAnswering folder or the official model.pytorch)",
    framework="PyTorch",
    packages=("torch", "transformers"),
    model_formats=("hf", "pytorch"),
    options=(
        BackendOption("precision", str, "fp32", choices=PRECISIONS, flag="--precision",
                      help="pytorch: autocast precision fp32 | bf16 | fp16 (fp16 on CUDA only; default fp32)"),
        BackendOption("compile", bool, False, flag="--torch-compile", help="pytorch: wrap the model in torch.compile"),
    ),
    speed_configs={
        "torch-fp32": ({"precision": "fp32"}, "torch-fp32"),
        "torch-bf16": ({"precision": "bf16"}, "torch-bf16"),
    },
)
