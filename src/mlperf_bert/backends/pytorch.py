"""PyTorch backend: a Hugging Face ``BertForQuestionAnswering`` (config.json + model.safetensors) or the
official MLPerf ``model.pytorch`` state_dict with a ``bert_config.json`` beside it (docs/models.md#official-artifacts).

Weights load strictly: any missing or unexpected tensor name is an error listing all of them (the
reference's ``strict=False`` silently ran with missing weights, docs/workload.md#reference-pitfalls). The only names
tolerated without being used are ``convert.names.HF_IGNORE_RULES`` (the pooler, which QA never uses, and the
``position_ids`` buffer older transformers versions saved), the same list the TF converter applies.
"""

from __future__ import annotations

import threading
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


# -- shapes: length buckets and graph batch sizes (pure functions, tested without a GPU) ------------------

#: The feature length (docs/preprocessing.md): no batch is padded beyond it.
FEATURE_LENGTH = 384
#: Sequence bucket CUDA graphs use when ``--torch-seq-bucket`` is not given: multiples of 64 up to 384,
#: i.e. six sequence shapes (64, 128, ..., 384).
DEFAULT_GRAPH_BUCKET = 64
ATTENTIONS = ("sdpa", "eager")


def bucket_length(length: int, bucket: int, cap: int = FEATURE_LENGTH) -> int:
    """The sequence length a batch whose longest sample has ``length`` tokens is padded to.

    ``length`` rounded up to a multiple of ``bucket`` and capped at ``cap`` (384); never below ``length``.
    ``bucket`` 0 or 1 = no bucketing (``length`` itself). E.g. bucket 64: 1..64 -> 64, 65..128 -> 128,
    321..384 -> 384.
    """
    if bucket <= 1:
        return int(length)
    return max(int(length), min(cap, -(-int(length) // bucket) * bucket))


def graph_batch_size(batch: int) -> int:
    """The batch size a CUDA graph is captured for, for a batch of ``batch`` samples: the next power of two
    up to 8, then the next multiple of 8 (1, 2, 4, 8, 16, 24, ...). Bounds the number of graph shapes while
    wasting at most 7 rows of a batch above 8; the extra rows are padding whose logits are dropped."""
    if batch <= 0:
        raise ValueError(f"batch must be >= 1, got {batch}")
    if batch <= 8:
        return 1 << (batch - 1).bit_length()
    return -(-batch // 8) * 8


def pad_inputs(input_ids: np.ndarray, input_mask: np.ndarray, segment_ids: np.ndarray, batch: int, length: int,
               out: np.ndarray | None = None) -> np.ndarray:
    """The three int arrays [B, L] stacked and zero-padded to int64 [3, batch, length].

    Padded positions get id 0, mask 0, segment 0, so real tokens never attend to them and their logits do
    not change (BERT is exact under padding; ``test_padding_does_not_change_real_token_logits``). Padded
    rows (``batch`` > B) get mask 1 on their first position only, so no attention row is fully masked.

    Args:
        out: an int64 array [3, >= batch, >= length] to write into (e.g. a view of pinned host memory);
            None = a new array.

    Raises:
        ValueError: the inputs are larger than (batch, length).
    """
    b, n = input_ids.shape
    if b > batch or n > length:
        raise ValueError(f"cannot pad a batch of shape {(b, n)} to {(batch, length)}")
    if out is None:
        out = np.empty((3, batch, length), dtype=np.int64)
    else:
        out = out[:, :batch, :length]
    for k, arr in enumerate((input_ids, input_mask, segment_ids)):
        out[k, :b, :n] = arr
    out[:, :b, n:] = 0
    out[:, b:, :] = 0
    out[1, b:, 0] = 1
    return out


class GraphCache:
    """Which (batch, length) shapes get a CUDA graph: captured lazily, on a shape's ``capture_after``-th
    sighting (the first runs eagerly and warms the kernels up), at most ``max_graphs`` shapes (the rest run
    eagerly). Not thread-safe: the backend calls it under its graph lock.

    Args:
        capture: ``(batch, length) -> graph entry``, called once per captured shape.
        capture_after: sightings before a shape is captured (>= 1).
        max_graphs: most shapes captured (0 = none).
    """

    def __init__(self, capture, capture_after: int = 2, max_graphs: int = 64) -> None:
        if capture_after < 1:
            raise ValueError(f"capture_after must be >= 1, got {capture_after}")
        self._capture = capture
        self.capture_after = capture_after
        self.max_graphs = max_graphs
        self.graphs: dict[tuple[int, int], object] = {}
        self.seen: dict[tuple[int, int], int] = {}
        self.replays = 0
        self.eager = 0

    def get(self, shape: tuple[int, int]):
        """The graph entry for ``shape``, captured now when due; None = run this batch eagerly."""
        entry = self.graphs.get(shape)
        if entry is None:
            self.seen[shape] = self.seen.get(shape, 0) + 1
            if self.seen[shape] >= self.capture_after and len(self.graphs) < self.max_graphs:
                entry = self.graphs[shape] = self._capture(*shape)
        if entry is None:
            self.eager += 1
        else:
            self.replays += 1
        return entry


def check_device_options(device_type: str, *, precision: str, cuda_graphs: bool, copy_stream: bool | None) -> None:
    """Refuse CUDA-only settings on a CPU device (one line each, naming the flag).

    Raises:
        ConfigError: ``--precision fp16``, ``--cuda-graphs`` or ``--torch-copy-stream`` on CPU.
    """
    if device_type == "cuda":
        return
    if precision == "fp16":
        raise ConfigError("--precision fp16 needs --device cuda; on CPU use bf16")
    if cuda_graphs:
        raise ConfigError("--cuda-graphs needs --device cuda (this run is on CPU); leave the flag out")
    if copy_stream:
        raise ConfigError("--torch-copy-stream needs --device cuda (this run is on CPU); leave the flag out")


def takes_4d_mask() -> bool:
    """Whether the installed transformers' BERT takes a ready 4-D additive attention mask as it is
    (transformers >= 5 builds masks with ``masking_utils.create_bidirectional_mask``, which returns a 4-D
    mask unchanged). The CUDA path needs that: HF's own 2-D -> 4-D step asks the GPU whether the mask is all
    ones (a host sync per batch, and not allowed inside a CUDA graph capture)."""
    import transformers.models.bert.modeling_bert as modeling_bert

    return hasattr(modeling_bert, "create_bidirectional_mask")


class _CudaThreadState:
    """Per worker thread: its own copy and compute streams and pinned host staging buffers (grown on
    demand), so two SUT workers overlap one batch's copies with another's compute."""

    def __init__(self, torch, device) -> None:
        self.copy = torch.cuda.Stream(device=device)
        self.compute = torch.cuda.Stream(device=device)
        self.pinned_in = None  # int64 [3 * n] pinned
        self.pinned_out = None  # float32 [2 * n] pinned

    def staging(self, torch, batch: int, length: int):
        n = batch * length
        if self.pinned_in is None or self.pinned_in.numel() < 3 * n:
            size = 1 << max(16, (n - 1).bit_length())  # tokens, a power of two (>= 65,536)
            self.pinned_in = torch.empty(3 * size, dtype=torch.int64, pin_memory=True)
            self.pinned_out = torch.empty(2 * size, dtype=torch.float32, pin_memory=True)
        return self.pinned_in[: 3 * n].view(3, batch, length), self.pinned_out[: 2 * n].view(batch, length, 2)


class _GraphEntry:
    """One captured CUDA graph with its static input [3, B, L] int64 and output [B, L, 2] float32 tensors."""

    def __init__(self, graph, static_in, static_out) -> None:
        self.graph = graph
        self.static_in = static_in
        self.static_out = static_out


class PyTorchBackend:
    """Runs ``BertForQuestionAnswering`` under ``torch.inference_mode`` (dropout off, no autograd).

    CPU: fp32, or bf16 by autocast (the weights stay fp32). CUDA: the encoder's weights are cast to the
    precision (a real bf16/fp16 model), the QA head stays fp32 and gets the hidden states as fp32, so the
    logits are always float32. Attention is PyTorch's scaled-dot-product attention (``sdpa``) unless
    ``eager`` is asked for.

    Options (``BackendConfig.options``, see ``SPEC``): ``precision`` fp32 | bf16 | fp16 (fp16: CUDA only);
    ``compile`` (wrap the encoder in ``torch.compile``); ``attention`` sdpa | eager; ``seq_bucket`` (pad each
    batch's length up to a multiple of N, at most 384; 0 = as given); ``cuda_graphs`` (CUDA only: one graph
    per (batch, length) shape, captured on its second sighting, replayed with static buffers; lengths
    bucketed by ``seq_bucket`` or 64, batches by ``graph_batch_size``); ``max_graphs``; ``copy_stream``
    (CUDA: pinned host buffers and non-blocking H2D/D2H copies on a side stream; default on).

    Raises (constructor):
        ConfigError: a CUDA-only option on CPU, ``--device cuda`` without a CUDA device, CUDA graphs with
            a transformers that cannot take a 4-D mask.
        ModelError: see ``build_model``.
    """

    name = "pytorch"

    def __init__(self, model_path: Path, device: str = "auto", threads: int | None = None,
                 precision: str = "fp32", compile: bool = False, attention: str = "sdpa", seq_bucket: int = 0,
                 cuda_graphs: bool = False, max_graphs: int = 64, copy_stream: bool | None = None) -> None:
        import torch

        if precision not in PRECISIONS:
            raise ConfigError(f"--precision must be one of {', '.join(PRECISIONS)} for pytorch, got {precision!r}")
        if attention not in ATTENTIONS:
            raise ConfigError(f"--torch-attention must be one of {', '.join(ATTENTIONS)}, got {attention!r}")
        if seq_bucket < 0 or seq_bucket > FEATURE_LENGTH:
            raise ConfigError(f"--torch-seq-bucket must be 0..{FEATURE_LENGTH} tokens, got {seq_bucket}")
        if max_graphs < 0:
            raise ConfigError(f"--cuda-graphs-max must be >= 0, got {max_graphs}")
        self.device = torch_device(device)
        cuda = self.device.type == "cuda"
        check_device_options(self.device.type, precision=precision, cuda_graphs=cuda_graphs, copy_stream=copy_stream)
        self._mask_4d = cuda and takes_4d_mask()
        if cuda_graphs and not self._mask_4d:
            raise ConfigError("--cuda-graphs needs transformers >= 5 (its BERT takes a ready 4-D attention mask); "
                              "upgrade transformers or leave --cuda-graphs out")
        # torch's intra-op pool is one per process: kept here and set again before a CPU batch when another
        # backend of this process (tune keeps two loaded) changed it
        self.threads = int(threads) if threads else None
        if self.threads:
            torch.set_num_threads(self.threads)
        self.precision = precision
        self.attention = attention
        self.seq_bucket = seq_bucket or (DEFAULT_GRAPH_BUCKET if cuda_graphs else 0)
        dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
        model = build_model(Path(model_path), attn_implementation=attention)
        if cuda:
            model = model.to(device=self.device, dtype=dtypes[precision])
            model.qa_outputs.float()  # fp32 head: logits in fp32 from fp32 hidden states
            self._autocast = None
        else:
            self._autocast = None if precision == "fp32" else dtypes[precision]
        self.model = model
        self._weights_dtype = next(model.bert.parameters()).dtype
        self._bert = torch.compile(model.bert) if compile else model.bert
        self._copy_stream = cuda and copy_stream is not False
        self._local = threading.local()
        self._graph_lock = threading.Lock()
        self._graphs: GraphCache | None = None
        if cuda:
            torch.cuda.synchronize(self.device)  # weights are in place before side streams read them
            if cuda_graphs:
                self._graph_stream = torch.cuda.Stream(device=self.device)
                self._pool = torch.cuda.graph_pool_handle()
                self._graphs = GraphCache(self._capture, capture_after=2, max_graphs=max_graphs)

    @classmethod
    def from_config(cls, config: BackendConfig) -> "PyTorchBackend":
        """Build from a ``BackendConfig`` (an HF folder or model.pytorch, device, threads, options)."""
        o = config.option
        return cls(model_path(config), device=config.device, threads=config.threads,
                   precision=o("precision", "fp32"), compile=bool(o("compile", False)),
                   attention=o("attention", "sdpa"), seq_bucket=int(o("seq_bucket", 0)),
                   cuda_graphs=bool(o("cuda_graphs", False)), max_graphs=int(o("max_graphs", 64)),
                   copy_stream=o("copy_stream"))

    # -- the model ---------------------------------------------------------------------------------------
    def _logits(self, ids, mask, seg):
        """Device tensors int64 [B, L] x3 -> float32 logits [B, L, 2] (start, end)."""
        import torch

        if self._mask_4d:  # additive [B, 1, 1, L] mask in the weights' dtype, built on the device (no host sync)
            dtype = self._weights_dtype
            mask = (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min
        with torch.autocast(self.device.type, dtype=self._autocast or torch.bfloat16, enabled=self._autocast is not None):
            hidden = self._bert(input_ids=ids, attention_mask=mask, token_type_ids=seg)[0]
        return self.model.qa_outputs(hidden.float())  # [B, L, 2]: the QA head's two labels are start, end

    def predict(self, input_ids: np.ndarray, input_mask: np.ndarray, segment_ids: np.ndarray) -> np.ndarray:
        """int [B, L] x3 -> float32 [B, L, 2] (start, end). Batches are padded internally to the bucket
        (and, with CUDA graphs, to the graph's batch size); the padding's logits are dropped."""
        b, n = input_ids.shape
        length = bucket_length(n, self.seq_bucket)
        try:
            if self.device.type == "cuda":
                return self._predict_cuda(input_ids, input_mask, segment_ids, b, n, length)
            return self._predict_cpu(input_ids, input_mask, segment_ids, b, n, length)
        except RuntimeError as exc:
            raise BackendFailure(f"pytorch forward failed on a batch of shape {(b, n)} (run as {(b, length)}): "
                                 f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc

    def _predict_cpu(self, ids, mask, seg, b, n, length) -> np.ndarray:
        import torch

        if self.threads and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        if length != n:
            arr = pad_inputs(ids, mask, seg, b, length)
        else:
            arr = np.stack([np.asarray(a, dtype=np.int64) for a in (ids, mask, seg)])
        t = torch.from_numpy(arr)
        with torch.inference_mode():
            logits = self._logits(t[0], t[1], t[2])
        return np.ascontiguousarray(logits[:, :n].numpy(), dtype=np.float32)

    def _state(self) -> _CudaThreadState:
        import torch

        st = getattr(self._local, "state", None)
        if st is None:
            st = self._local.state = _CudaThreadState(torch, self.device)
        return st

    def _predict_cuda(self, ids, mask, seg, b, n, length) -> np.ndarray:
        import torch

        batch = graph_batch_size(b) if self._graphs is not None else b
        st = self._state()
        with torch.cuda.device(self.device), torch.inference_mode():
            if self._copy_stream:
                pin_in, pin_out = st.staging(torch, batch, length)
                pad_inputs(ids, mask, seg, batch, length, out=pin_in.numpy())
            else:
                pin_in, pin_out = torch.from_numpy(pad_inputs(ids, mask, seg, batch, length)), None
            entry = None
            if self._graphs is not None:
                with self._graph_lock:
                    entry = self._graphs.get((batch, length))
                    if entry is not None:  # all replays on one stream, in order: static buffers are safe
                        gs = self._graph_stream
                        with torch.cuda.stream(gs):
                            entry.static_in.copy_(pin_in, non_blocking=True)
                            entry.graph.replay()
                            if pin_out is None:
                                out = entry.static_out.clone()
                            else:
                                pin_out.copy_(entry.static_out, non_blocking=True)
                            done = torch.cuda.Event()
                            done.record(gs)
            if entry is None:
                if not self._copy_stream:
                    with torch.cuda.stream(st.compute):
                        dev = pin_in.to(self.device)
                        out = self._logits(dev[0], dev[1], dev[2])
                        done = torch.cuda.Event()
                        done.record(st.compute)
                else:
                    with torch.cuda.stream(st.copy):
                        dev = pin_in.to(self.device, non_blocking=True)
                        copied = torch.cuda.Event()
                        copied.record(st.copy)
                    st.compute.wait_event(copied)
                    dev.record_stream(st.compute)
                    with torch.cuda.stream(st.compute):
                        out = self._logits(dev[0], dev[1], dev[2])
                        computed = torch.cuda.Event()
                        computed.record(st.compute)
                    st.copy.wait_event(computed)
                    out.record_stream(st.copy)
                    with torch.cuda.stream(st.copy):
                        pin_out.copy_(out, non_blocking=True)
                        done = torch.cuda.Event()
                        done.record(st.copy)
            done.synchronize()
            if pin_out is None:
                return np.ascontiguousarray(out[:b, :n].cpu().numpy(), dtype=np.float32)
            return pin_out[:b, :n].numpy().copy()

    def _capture(self, batch: int, length: int) -> _GraphEntry:
        """Capture the forward pass for one (batch, length) shape (called under the graph lock)."""
        import torch

        try:
            with torch.inference_mode():
                static_in = torch.zeros((3, batch, length), dtype=torch.int64, device=self.device)
                static_in[1, :, 0] = 1
                warm = torch.cuda.Stream(device=self.device)
                warm.wait_stream(torch.cuda.current_stream(self.device))
                with torch.cuda.stream(warm):
                    for _ in range(2):
                        self._logits(static_in[0], static_in[1], static_in[2])
                warm.synchronize()
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, pool=self._pool, capture_error_mode="thread_local"):
                    static_out = self._logits(static_in[0], static_in[1], static_in[2])
                torch.cuda.synchronize(self.device)
        except RuntimeError as exc:
            raise BackendFailure(f"CUDA graph capture failed for batch {batch} x {length} tokens: "
                                 f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}; "
                                 "run without --cuda-graphs") from exc
        return _GraphEntry(graph, static_in, static_out)

    def describe(self) -> dict:
        """What run.json records about this backend instance: device (and GPU name), weights dtype,
        attention, bucketing, CUDA graphs captured and replayed."""
        out = {"device": str(self.device), "precision": self.precision,
               "weights_dtype": str(self._weights_dtype).replace("torch.", ""),
               "autocast": None if self._autocast is None else str(self._autocast).replace("torch.", ""),
               "attention": self.attention, "seq_bucket": self.seq_bucket, "copy_stream": self._copy_stream,
               "mask": "4d-additive" if self._mask_4d else "2d"}
        if self.device.type == "cuda":
            import torch

            out["gpu"] = torch.cuda.get_device_name(self.device)
        if self._graphs is not None:
            out["cuda_graphs"] = {"captured": len(self._graphs.graphs), "max": self._graphs.max_graphs,
                                  "shapes": sorted(self._graphs.graphs), "replays": self._graphs.replays,
                                  "eager_batches": self._graphs.eager}
        return out

    def close(self) -> None:
        self._graphs = None
        self.model = None
        self._bert = None


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
                      help="pytorch: fp32 | bf16 | fp16; on CUDA the weights are cast (fp32 QA head and logits), "
                           "on CPU bf16 is autocast; fp16 on CUDA only (default fp32)"),
        BackendOption("compile", bool, False, flag="--torch-compile", help="pytorch: wrap the encoder in torch.compile"),
        BackendOption("attention", str, "sdpa", choices=ATTENTIONS, flag="--torch-attention",
                      help="pytorch: attention kernel, sdpa (torch scaled_dot_product_attention) | eager (default sdpa)"),
        BackendOption("seq_bucket", int, 0, flag="--torch-seq-bucket",
                      help="pytorch: pad each batch's length up to a multiple of N tokens, at most 384 "
                           "(0 = as the SUT gives it; --cuda-graphs uses 64 when 0)"),
        BackendOption("cuda_graphs", bool, False, flag="--cuda-graphs",
                      help="pytorch, CUDA only: a CUDA graph per (batch, length bucket) shape, captured on its "
                           "second sighting and replayed with static buffers (default off)"),
        BackendOption("max_graphs", int, 64, flag="--cuda-graphs-max",
                      help="pytorch: most CUDA graph shapes captured; later shapes run eagerly (default 64)"),
        BackendOption("copy_stream", bool, True, flag="--torch-copy-stream",
                      help="pytorch, CUDA only: pinned host buffers and non-blocking H2D/D2H copies on a side "
                           "stream (default on with --device cuda)"),
    ),
    speed_configs={
        "torch-fp32": ({"precision": "fp32"}, "torch-fp32"),
        "torch-bf16": ({"precision": "bf16"}, "torch-bf16"),
    },
)
