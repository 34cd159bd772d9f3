"""ONNX Runtime backend for BERT QA ONNX files (official fp32 and int8 conventions, docs/models.md#tensor-names).

Input names are read from the model:
- official fp32 (``model.onnx``): ``input_ids``, ``input_mask``, ``segment_ids``;
- official int8 (``bert_large_v1_1_fake_quant.onnx``): ``input_ids``, ``attention_mask``, ``token_type_ids``;
int32 or int64 each. Outputs: one ``[B, L, 2]`` tensor, or two ``[B, L]`` tensors (start, end) identified by
name (``start``/``end`` in the name) or else by session order, start first (the int8 file's convention).

Execution providers (``--ort-provider``): ``cpu``; ``cuda`` (CUDA EP; ``--ort-fp16`` runs an fp16 copy of the
fused graph, made once in ``prepare``); ``tensorrt`` (TensorRT EP with the CUDA EP behind it for what
TensorRT does not take; fp16 by TensorRT's builder flag, int8 from a QDQ file's own scales; engines cached
under ``<cache>/tensorrt-engines/<key>``, the key covering the model's sha256, the provider options and the
versions, ``engine_cache_key``). The GPU providers need the ``onnxruntime-gpu`` wheel, which replaces the
CPU ``onnxruntime`` wheel (``pip install 'mlperf-bert[onnxruntime-gpu]'``); TensorRT also needs its own
libraries. Asking for one that is not installed is one line saying what to install.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

import numpy as np

from mlperf_bert.backends.base import (BackendConfig, BackendOption, BackendSpec, model_path,
                                      predict_fixed_shape, static_dims)
from mlperf_bert.errors import BackendFailure, BackendUnavailable, ConfigError, ModelError
from mlperf_bert.machine import physical_cores

#: Accepted input-name conventions: ours (ids, mask, segments) -> the model's names.
INPUT_CONVENTIONS = (
    ("input_ids", "input_mask", "segment_ids"),  # official fp32 ONNX / TF graph
    ("input_ids", "attention_mask", "token_type_ids"),  # official int8 ONNX / Hugging Face
)
_ORT_INT_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}
#: ``--ort-graph-optimization`` values -> ORT's GraphOptimizationLevel names.
GRAPH_OPTIMIZATION_LEVELS = {"all": "ORT_ENABLE_ALL", "extended": "ORT_ENABLE_EXTENDED", "basic": "ORT_ENABLE_BASIC",
                             "disable": "ORT_DISABLE_ALL"}
#: ``--ort-provider`` values -> ORT execution provider names (``auto``: CUDA when installed and --device allows).
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}
PROVIDER_CHOICES = ("auto", *PROVIDERS)
#: What to install for a GPU provider (the GPU wheel provides the same ``onnxruntime`` module).
GPU_INSTALL_HINT = ("pip uninstall -y onnxruntime && pip install 'mlperf-bert[onnxruntime-gpu]' (onnxruntime-gpu "
                    "replaces the CPU wheel and needs CUDA 12 and cuDNN 9 libraries)")
TENSORRT_INSTALL_HINT = ("pip uninstall -y onnxruntime && pip install 'mlperf-bert[onnxruntime-trt]' (onnxruntime-gpu "
                         "replaces the CPU wheel; it and TensorRT 10 need CUDA 12 libraries)")
#: Largest sequence length a TensorRT optimisation profile covers (the feature length, docs/preprocessing.md).
TRT_MAX_SEQ = 384
#: TensorRT builder workspace (bytes).
TRT_WORKSPACE_BYTES = 8 << 30
#: Provider options that are paths: left out of the engine-cache key (they hold the key).
_PATH_OPTIONS = ("trt_engine_cache_path", "trt_timing_cache_path")


class OnnxRuntimeBackend:
    """One ``InferenceSession`` over an ONNX file; ``predict`` casts the int arrays to the model's dtypes.

    The file is loaded as it is: export and ORT's transformer fusions happen before, in ``prepare``.

    Args:
        model_path: an ``.onnx`` file.
        device: ``cpu``, ``cuda`` or ``auto`` (CUDA when the CUDA execution provider is installed).
        threads: intra-op threads (default: physical cores).
        graph_optimization: ORT's own level at session start: ``all`` (default) | ``extended`` | ``basic``
            | ``disable``.
        provider: ``cpu`` | ``cuda`` | ``tensorrt`` | ``auto``/None (from ``device``; ``resolve_provider``).
        fp16: TensorRT: build fp16 engines (the file stays fp32). CUDA: the file is already the fp16 copy
            ``prepare`` made; recorded only.
        trt_max_batch: TensorRT: the largest batch its optimisation profile covers (batches up to it and
            up to 384 tokens run without an engine rebuild).
        cache_dir: TensorRT: engines and timing caches go under ``<cache_dir>/tensorrt-engines/<key>``;
            None = no engine cache (every session builds its engines, minutes for BERT-Large).

    Raises:
        ModelError: missing/truncated file, or inputs/outputs that match no known convention.
        BackendUnavailable: onnxruntime is not installed.
        ConfigError: a GPU provider that this onnxruntime lacks (names what to install), or a provider that
            contradicts ``device``.
    """

    name = "onnxruntime"

    def __init__(self, model_path: Path, device: str = "auto", threads: int | None = None,
                 graph_optimization: str = "all", provider: str | None = None, fp16: bool = False,
                 trt_max_batch: int = 256, cache_dir: Path | None = None) -> None:
        try:
            import onnxruntime as ort
        except ModuleNotFoundError as exc:
            raise BackendUnavailable("onnxruntime is not installed; pip install 'mlperf-bert[onnxruntime]'") from exc
        model_path = Path(model_path)
        if not model_path.is_file():
            raise ModelError(f"ONNX model not found: {model_path}")
        if graph_optimization not in GRAPH_OPTIMIZATION_LEVELS:
            raise ConfigError(f"--ort-graph-optimization must be one of {', '.join(GRAPH_OPTIMIZATION_LEVELS)}, "
                              f"got {graph_optimization!r}")
        so = ort.SessionOptions()
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, GRAPH_OPTIMIZATION_LEVELS[graph_optimization])
        so.intra_op_num_threads = int(threads or physical_cores())
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.provider = resolve_provider(provider, device, ort.get_available_providers(), ort.__version__)
        self.fp16 = bool(fp16)
        self.engine_cache: Path | None = None
        trt = None
        if self.provider == "tensorrt":
            inputs, int8 = graph_facts(model_path)  # one read of the graph (or its manifest)
            names = input_convention(inputs, model_path)
            trt = tensorrt_options(model_path, names, fp16=self.fp16, int8=int8,
                                   max_batch=trt_max_batch, device_id=cuda_device_id(device), cache_dir=cache_dir)
            self.engine_cache = Path(trt["trt_engine_cache_path"]) if "trt_engine_cache_path" in trt else None
        providers = provider_list(self.provider, cuda_device_id(device), trt)
        try:
            self.session = ort.InferenceSession(str(model_path), so, providers=providers)
        except Exception as exc:  # noqa: BLE001 - ORT raises several types for bad files
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"onnxruntime cannot load {model_path} (truncated or not an ONNX model?): {first}") from exc
        self.model_path = model_path
        inputs = self.session.get_inputs()
        names = {i.name: i for i in inputs}
        self.input_names = input_convention(set(names), model_path)
        # A fixed [1, 384] or [B, 384] input (the official files): batches are padded and split to it.
        self.static_batch, self.static_length = static_dims(names[self.input_names[0]].shape)
        self.input_dtypes = []
        for n in self.input_names:
            t = names[n].type
            if t not in _ORT_INT_TYPES:
                raise ModelError(f"{model_path} input {n!r} has type {t}; expected int32 or int64")
            self.input_dtypes.append(_ORT_INT_TYPES[t])
        outputs = self.session.get_outputs()
        self.output_names = [o.name for o in outputs]
        if len(outputs) == 1:
            self._two_outputs = False
        elif len(outputs) == 2:
            self._two_outputs = True
            lowered = [n.lower() for n in self.output_names]
            if "end" in lowered[0] and "start" in lowered[1]:
                self.output_names.reverse()
        else:
            raise ModelError(f"{model_path} has {len(outputs)} outputs {self.output_names}; expected logits "
                             "[B, L, 2] or start and end logits [B, L]")
        self.providers = self.session.get_providers()

    @classmethod
    def from_config(cls, config: BackendConfig) -> "OnnxRuntimeBackend":
        """Build from a prepared ``BackendConfig`` (``config.model`` is the .onnx file to load)."""
        from mlperf_bert.models.formats import model_file

        return cls(model_file(model_path(config)), device=config.device, threads=config.threads,
                   graph_optimization=config.option("graph_optimization", "all"), provider=config.option("provider"),
                   fp16=bool(config.option("fp16", False)), trt_max_batch=int(config.option("trt_max_batch", 256)),
                   cache_dir=config.cache_dir)

    def predict(self, input_ids: np.ndarray, input_mask: np.ndarray, segment_ids: np.ndarray) -> np.ndarray:
        """int [B, L] x3 -> float32 [B, L, 2] (start, end). A model with fixed input dims gets the batch padded
        and split to them (``base.predict_fixed_shape``).

        Raises:
            BackendFailure: ONNX Runtime failed on the batch, or it is longer than the model's fixed length.
        """
        arrays = [np.asarray(arr, dtype=dt) for arr, dt in zip((input_ids, input_mask, segment_ids), self.input_dtypes)]
        if self.static_batch is None and self.static_length is None:
            return self._run(arrays)
        return predict_fixed_shape(self._run, arrays, self.static_batch, self.static_length)

    def _run(self, arrays: list[np.ndarray]) -> np.ndarray:
        try:
            outs = self.session.run(self.output_names, dict(zip(self.input_names, arrays)))
        except Exception as exc:  # noqa: BLE001
            raise BackendFailure(f"onnxruntime failed on a batch of shape {arrays[0].shape}: {exc}") from exc
        if self._two_outputs:
            return np.stack(outs, axis=-1).astype(np.float32, copy=False)  # (B, L, 2)
        return np.ascontiguousarray(outs[0], dtype=np.float32)

    def describe(self) -> dict:
        """What run.json records of this backend: the provider asked for, the execution providers the session
        runs (a submission's system description reads the accelerator from them), fp16, the TensorRT engine
        cache folder, input names and fixed dims."""
        return {"provider": self.provider, "providers": list(self.providers), "fp16": self.fp16,
                "tensorrt_engine_cache": None if self.engine_cache is None else str(self.engine_cache),
                "input_names": list(self.input_names), "model_file": str(self.model_path),
                "static_shape": [self.static_batch, self.static_length]}

    def close(self) -> None:
        self.session = None


def input_convention(names: set[str], model_path: Path) -> tuple[str, ...]:
    """The ``INPUT_CONVENTIONS`` entry whose names are exactly the model's inputs.

    Raises:
        ModelError: no convention matches (the message lists the model's inputs and the accepted sets).
    """
    for convention in INPUT_CONVENTIONS:
        if set(convention) == names:
            return convention
    raise ModelError(f"{model_path} has inputs {sorted(names)}; expected one of "
                     + " or ".join("/".join(c) for c in INPUT_CONVENTIONS))


def resolve_provider(provider: str | None, device: str, available: list[str], version: str = "") -> str:
    """The execution provider to run: ``cpu``, ``cuda`` or ``tensorrt``.

    Args:
        provider: ``--ort-provider``; None or ``auto`` = from ``device``: ``cpu`` -> cpu, ``cuda``/``cuda:N``
            -> cuda, ``auto`` -> cuda when the CUDA EP is installed, else cpu.
        device: ``--device``.
        available: ``onnxruntime.get_available_providers()``.
        version: onnxruntime's version, for the message.

    Raises:
        ConfigError: one line: the provider is not in this onnxruntime (naming what to install), or it
            contradicts ``--device``.
    """
    if provider not in (None, "auto", *PROVIDERS):
        raise ConfigError(f"--ort-provider must be one of {', '.join(PROVIDER_CHOICES)}, got {provider!r}")
    on_cuda = str(device).startswith("cuda")
    if provider in (None, "auto"):
        if device == "cpu":
            return "cpu"
        if not on_cuda:
            return "cuda" if PROVIDERS["cuda"] in available else "cpu"
        provider = "cuda"
    if provider == "cpu":
        if on_cuda:
            raise ConfigError(f"--ort-provider cpu contradicts --device {device}; leave one of them out")
        return "cpu"
    if device == "cpu":
        raise ConfigError(f"--ort-provider {provider} runs on the GPU; it contradicts --device cpu")
    if PROVIDERS[provider] not in available:
        hint = TENSORRT_INSTALL_HINT if provider == "tensorrt" else GPU_INSTALL_HINT
        what = f"--ort-provider {provider}" if provider == "tensorrt" or not on_cuda else f"--device {device}"
        raise ConfigError(f"{what}: this onnxruntime{(' ' + version) if version else ''} has no "
                          f"{PROVIDERS[provider]} (it has {', '.join(available) or 'none'}); {hint}")
    return provider


def cuda_device_id(device: str) -> int:
    """The GPU index of ``--device cuda:N`` (0 for ``cuda`` and ``auto``)."""
    if str(device).startswith("cuda:"):
        try:
            return int(str(device).split(":", 1)[1])
        except ValueError:
            raise ConfigError(f"--device {device}: expected cuda:N with N a GPU index") from None
    return 0


def provider_list(provider: str, device_id: int = 0, tensorrt: dict | None = None) -> list:
    """The ``providers`` argument of ``InferenceSession``: the chosen provider first, then the ones behind
    it for nodes it does not take (TensorRT -> CUDA -> CPU)."""
    cpu = ("CPUExecutionProvider", {})
    cuda = ("CUDAExecutionProvider", {"device_id": device_id})
    if provider == "cpu":
        return [cpu]
    if provider == "cuda":
        return [cuda, cpu]
    if provider == "tensorrt":
        return [("TensorrtExecutionProvider", dict(tensorrt or {"device_id": device_id})), cuda, cpu]
    raise ConfigError(f"unknown provider {provider!r}")


def engine_cache_key(model_sha256: str, options: dict, versions: dict) -> str:
    """16 hex digits naming a TensorRT engine cache folder: sha256 over the model's sha256, the provider
    options (paths left out) and the versions (onnxruntime, tensorrt). A different model, precision, profile
    or version gets a new folder; the same ones reuse the engines."""
    payload = {"model_sha256": model_sha256,
               "options": {k: options[k] for k in sorted(options) if k not in _PATH_OPTIONS},
               "versions": dict(sorted(versions.items()))}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _versions_for_engines() -> dict:
    import importlib.metadata as md

    out = {}
    for pkg in ("onnxruntime-gpu", "onnxruntime", "tensorrt", "tensorrt-cu12", "tensorrt-cu13"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def tensorrt_options(model_path: Path, input_names: tuple[str, ...], *, fp16: bool, int8: bool, max_batch: int,
                     device_id: int = 0, cache_dir: Path | None = None, model_sha256: str | None = None) -> dict:
    """TensorRT EP options: one optimisation profile covering batch 1..``max_batch`` and length 1..384
    (tuned at the largest shape), fp16/int8 builder flags (int8 for QDQ files: the scales are the file's
    own, no calibration table), and an engine + timing cache under ``<cache_dir>/tensorrt-engines/<key>``
    (``engine_cache_key``; ``key.json`` there says what the key covers).

    Raises:
        ConfigError: ``max_batch`` < 1.
    """
    if max_batch < 1:
        raise ConfigError(f"--ort-trt-max-batch must be >= 1, got {max_batch}")

    def profile(batch: int, seq: int) -> str:
        return ",".join(f"{n}:{batch}x{seq}" for n in input_names)

    opts: dict = {"device_id": device_id, "trt_fp16_enable": bool(fp16), "trt_int8_enable": bool(int8),
                  "trt_max_workspace_size": TRT_WORKSPACE_BYTES,
                  "trt_profile_min_shapes": profile(1, 1),
                  "trt_profile_opt_shapes": profile(max_batch, TRT_MAX_SEQ),
                  "trt_profile_max_shapes": profile(max_batch, TRT_MAX_SEQ)}
    if cache_dir is not None:
        from mlperf_bert.fileio import fingerprint, write_json_atomic

        digest = model_sha256 or fingerprint(model_path)
        versions = _versions_for_engines()
        key = engine_cache_key(digest, opts, versions)
        folder = Path(cache_dir) / "tensorrt-engines" / key
        folder.mkdir(parents=True, exist_ok=True)
        if not (folder / "key.json").is_file():
            write_json_atomic(folder / "key.json", {"model": str(model_path), "model_sha256": digest,
                                                    "options": opts, "versions": versions})
        opts.update(trt_engine_cache_enable=True, trt_engine_cache_path=str(folder),
                    trt_timing_cache_enable=True, trt_timing_cache_path=str(folder))
    return opts


def graph_facts(model_path: Path) -> tuple[set[str], bool]:
    """(input names, whether it is a quantized int8 graph: Quantize/Dequantize or integer matmul nodes) of an
    ONNX file, from its manifest when it has one.

    Raises:
        ModelError: no manifest and not a readable ONNX file (one line).
    """
    from mlperf_bert.models.artifact import manifest_for

    manifest = manifest_for(model_path)
    if manifest is not None and manifest.input_names:
        return set(manifest.input_names), manifest.precision == "int8"
    from mlperf_bert.convert.ort_optimize import QUANT_OPS
    from mlperf_bert.models.formats import read_onnx

    m, inputs = read_onnx(model_path, external_data=False)
    return set(inputs), any(n.op_type in QUANT_OPS for n in m.graph.node)


def fp16_converted(model_path: Path, cache_dir: Path, say: Callable[[str], None] = lambda m: None) -> Path:
    """An fp16 copy of an fp32 ONNX file for the CUDA EP, as a cached artifact (made once):
    ``cache_dir/artifacts/ort-fp16-<sha256[:16]>-ort<version>/model.onnx`` + manifest.json (precision fp16).

    ORT's own converter (``onnxruntime.transformers.onnx_model.OnnxModel.convert_float_to_float16`` with
    ``keep_io_types=True``): weights and activations fp16, the int inputs and float32 logits as before. Not
    compared with the fp32 file here (fp16 attention kernels run on the GPU only): the F1 of a
    ``--device cuda`` accuracy run is the check.

    Raises:
        ConfigError: the file is an int8 (QDQ) graph (TensorRT runs those: ``--ort-provider tensorrt``).
        ModelError: the file cannot be read as ONNX.
    """
    import onnxruntime as ort
    from onnxruntime.transformers.onnx_model import OnnxModel

    from mlperf_bert.convert.ort_optimize import QUANT_OPS, derived_onnx, load_onnx_graph
    from mlperf_bert.fileio import atomic_path
    from mlperf_bert.models.artifact import manifest_for, new_manifest, write_manifest

    model_path = Path(model_path)
    own = manifest_for(model_path)
    if own is not None and own.precision == "fp16":
        return model_path
    out = derived_onnx(model_path, cache_dir, "ort-fp16")
    if out.is_file() and manifest_for(out) is not None:
        return out
    model, names = load_onnx_graph(model_path)
    if any(n.op_type in QUANT_OPS for n in model.graph.node):
        raise ConfigError(f"--ort-fp16: {model_path} is an int8 (QDQ) graph; run it with --ort-provider tensorrt "
                          "or without --ort-fp16")
    say(f"converting {model_path} to fp16 for the CUDA execution provider once (cached in {out.parent}) ...")
    converted = OnnxModel(model)
    converted.convert_float_to_float16(keep_io_types=True)
    with atomic_path(out) as tmp:
        converted.save_model_to_file(str(tmp))
    write_manifest(out.parent, new_manifest(
        format="onnx", model_file=out.name, precision="fp16", source=model_path,
        architecture=own.architecture if own else None, input_names=names,
        steps=({"step": "ort-float16", "keep_io_types": True, "onnxruntime": ort.__version__,
                "parity": "not checked when made (fp16 kernels run on the GPU); an accuracy run checks F1"},),
        source_manifest=own))
    return out


def prepare_provider(config: BackendConfig) -> str:
    """The provider ``config`` asks for, checked against the installed onnxruntime before any slow work
    (``resolve_provider``), and ``--ort-fp16`` checked against it.

    Raises:
        BackendUnavailable: onnxruntime is not installed.
        ConfigError: see ``resolve_provider``; ``--ort-fp16`` on the CPU provider.
    """
    try:
        import onnxruntime as ort
    except ModuleNotFoundError as exc:
        raise BackendUnavailable("onnxruntime is not installed; pip install 'mlperf-bert[onnxruntime]'") from exc
    provider = resolve_provider(config.option("provider"), config.device, ort.get_available_providers(),
                                ort.__version__)
    if config.option("fp16", False) and provider == "cpu":
        raise ConfigError("--ort-fp16 runs on the GPU (--ort-provider cuda or tensorrt); this run uses the CPU "
                          "provider")
    return provider


def prepare(model: Path, config: BackendConfig, say: Callable[[str], None]) -> Path:
    """The ONNX file this backend loads, made from ``model`` once when needed (``BackendSpec.prepare``).

    A Hugging Face folder or PyTorch state_dict is exported to ONNX (``convert.to_onnx.exported_onnx``);
    with the ``transformer_optimize`` option (default on, except for the TensorRT provider, which fuses the
    plain graph itself) the ONNX file then goes through ORT's transformer optimizer
    (``convert.ort_optimize.ort_optimized``); with ``--ort-fp16`` on the CUDA provider, an fp16 copy is made
    (``fp16_converted``). All are cached artifacts, so this is slow once. The provider is checked first
    (``prepare_provider``), so a GPU provider missing here fails before any of it.

    Raises:
        ConfigError: a model format ONNX Runtime cannot run (e.g. a TF graph), or no cache folder.
        ModelError: raised by the export or the optimizer.
    """
    from mlperf_bert.models.formats import detect_format, model_file

    provider = prepare_provider(config)
    fmt = detect_format(model)
    if fmt in ("hf", "pytorch"):
        if config.cache_dir is None:
            raise ConfigError(f"exporting {model} to ONNX needs a cache folder (--cache-dir)")
        from mlperf_bert.convert.to_onnx import exported_onnx

        model = exported_onnx(model, Path(config.cache_dir), say=say)
    elif fmt != "onnx":
        raise ConfigError(f"backend 'onnxruntime' runs ONNX files (or exports a Hugging Face/PyTorch model); "
                          f"{model} is {fmt}")
    model = model_file(model)
    optimize = config.option("transformer_optimize")
    if optimize is None:  # TensorRT fuses the plain graph itself; ORT's fused contrib ops would fall back to CUDA
        optimize = provider != "tensorrt"
    if optimize:
        if config.cache_dir is None:
            raise ConfigError("ORT's transformer optimizer needs a cache folder (--cache-dir) or --no-ort-optimize")
        from mlperf_bert.convert.ort_optimize import ort_optimized

        model = ort_optimized(model, Path(config.cache_dir), say=say)
    if config.option("fp16", False) and provider == "cuda":
        if config.cache_dir is None:
            raise ConfigError("--ort-fp16 with the CUDA provider makes an fp16 copy of the model: it needs --cache-dir")
        model = fp16_converted(model, Path(config.cache_dir), say=say)
    return model


SPEC = BackendSpec(
    name="onnxruntime",
    target="mlperf_bert.backends.onnxruntime:OnnxRuntimeBackend",
    extra="onnxruntime",
    summary="ONNX Runtime (fp32 or int8 ONNX files; Hugging Face/PyTorch models are exported once)",
    framework="ONNX Runtime",
    packages=("onnxruntime", "onnxruntime-gpu", "onnx", "tensorrt-cu12"),
    model_formats=("onnx",),
    options=(
        BackendOption("transformer_optimize", bool, True, stage="prepare", flag="--ort-optimize",
                      tune=(True, False),
                      help="onnxruntime: apply ORT's transformer optimizer (fused attention, layernorm, gelu) "
                           "once and cache the result (default: on)"),
        BackendOption("graph_optimization", str, "all", choices=tuple(GRAPH_OPTIMIZATION_LEVELS),
                      flag="--ort-graph-optimization", tune=("all", "basic"),
                      help="onnxruntime: ORT's own graph optimization level at session start (default all)"),
        BackendOption("provider", str, "auto", choices=PROVIDER_CHOICES, flag="--ort-provider", stage="prepare",
                      help="onnxruntime: execution provider cpu | cuda | tensorrt (GPU ones need the "
                           "onnxruntime-gpu wheel instead of onnxruntime); auto = from --device (default auto)"),
        BackendOption("fp16", bool, False, flag="--ort-fp16", stage="prepare",
                      help="onnxruntime, GPU only: fp16 (CUDA: an fp16 copy of the fused graph, made once; "
                           "TensorRT: fp16 engines) (default off)"),
        BackendOption("trt_max_batch", int, 256, flag="--ort-trt-max-batch",
                      help="onnxruntime, TensorRT: largest batch of its optimisation profile (default 256)"),
    ),
    prepare="mlperf_bert.backends.onnxruntime:prepare",
    speed_configs={
        "ort-fp32": ({"transformer_optimize": True}, "ort-fp32"),
        "ort-fp32-unfused": ({"transformer_optimize": False}, "ort-fp32"),
        "ort-int8": ({}, "ort-int8"),
    },
)
