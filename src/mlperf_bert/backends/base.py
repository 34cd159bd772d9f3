"""What a backend is: the ``Backend`` protocol, its typed options, and the ``BackendSpec`` a plugin declares.

A backend maps a batch of int token arrays to float32 start/end logits. It knows nothing about LoadGen,
queries or batching policy; the SUT (``mlperf_bert.sut``) owns those.

A backend is one module. Next to its class it declares a module-level ``SPEC = BackendSpec(...)``: its name,
pip extra, typed options (each with its CLI flag and help), the model formats it loads, how to prepare a
model it cannot load directly (e.g. export to ONNX), the packages whose versions it reports, and its speed
configurations for ``mlperf-bert bench``. The module is registered through the entry-point group
``mlperf_bert.backends`` (``pyproject.toml``), exactly as a third-party plugin would be; see
docs/architecture.md#adding-a-backend. The module must import without its runtime installed: import the
runtime inside functions, so a missing extra fails only when that backend is used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, runtime_checkable

import numpy as np

from mlperf_bert.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")


@runtime_checkable
class Backend(Protocol):
    """A loaded model that computes SQuAD logits.

    Attributes:
        name: registry name, e.g. ``"onnxruntime"``.
    """

    name: str

    def predict(self, input_ids: np.ndarray, input_mask: np.ndarray, segment_ids: np.ndarray) -> np.ndarray:
        """Run the model on one batch.

        Args:
            input_ids, input_mask, segment_ids: int32 or int64 arrays [B, L] (L <= 384; batches may be
                trimmed to their longest sample).

        Returns:
            float32 array [B, L, 2], C-contiguous: [..., 0] start logits, [..., 1] end logits.

        Raises:
            BackendFailure: the runtime failed on this batch.
        """
        ...

    def close(self) -> None:
        """Release runtime resources (sessions, GPU memory). Idempotent."""
        ...

    # Optional: ``describe() -> dict`` of JSON values (device, execution providers, ...), recorded in
    # run.json under ``backend.detail``; a submission's system description reads the device from it.


@dataclass(frozen=True)
class BackendConfig:
    """How to load a backend.

    Attributes:
        name: registry name (``onnxruntime``, ``pytorch``, ``tensorflow``, ``null``, or a plugin's).
        model: path to the model file or directory (None only for backends that need none).
        device: ``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when present).
        threads: intra-op threads; None = the runtime's default (physical cores).
        options: the backend's own options by ``BackendOption.name``, already checked by its spec
            (``BackendSpec.check_options``); options the user did not set are absent.
        cache_dir: where prepared artifacts (exports, optimized graphs) are kept; None = no caching.
    """

    name: str
    model: Path | None = None
    device: str = "auto"
    threads: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    cache_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"--threads {self.threads}: must be >= 1 (leave it out for every physical core)")
        if self.device not in DEVICES and not self.device.startswith("cuda:"):
            raise ConfigError(f"--device must be one of {', '.join(DEVICES)} or cuda:N, got {self.device!r}")

    def option(self, name: str, default: Any = None) -> Any:
        """The value of option ``name``, or ``default`` when the user did not set it."""
        return self.options.get(name, default)


_TYPES = {bool: "bool", int: "int", float: "float", str: "str"}


@dataclass(frozen=True)
class BackendOption:
    """One typed option of a backend, with the CLI flag that sets it.

    Attributes:
        name: key in ``BackendConfig.options`` (a Python identifier).
        type: ``bool``, ``int``, ``float`` or ``str``.
        default: value when the flag is not given (documented in ``--help``).
        help: one line for ``--help``.
        choices: allowed values, or None.
        flag: the CLI flag, e.g. ``--precision``; default ``--<name with dashes>``. Backends may share a
            flag (``--precision``): the CLI offers it once, and each backend checks its own choices.
        stage: ``"load"`` (read by the backend class) or ``"prepare"`` (changes the prepared artifact,
            e.g. graph fusions; read by the spec's ``prepare`` function).
        minimum: smallest allowed value of a number option, or None.
        tune: values ``mlperf-bert tune`` tries for this option (empty: not tuned; the option is then part
            of a tuned profile's key). Only options that change speed and not results belong here (graph
            fusions, not precision).
    """

    name: str
    type: type = str
    default: Any = None
    help: str = ""
    choices: tuple[Any, ...] | None = None
    flag: str | None = None
    stage: str = "load"
    minimum: float | None = None
    tune: tuple[Any, ...] = ()

    def __post_init__(self) -> None:
        if self.type not in _TYPES:
            raise TypeError(f"BackendOption {self.name}: type must be bool, int, float or str")
        if self.stage not in ("load", "prepare"):
            raise TypeError(f"BackendOption {self.name}: stage must be 'load' or 'prepare'")

    @property
    def cli_flag(self) -> str:
        """The flag that sets this option (``--precision``)."""
        return self.flag or "--" + self.name.replace("_", "-")

    def check(self, value: Any, backend: str) -> Any:
        """``value`` converted to ``type`` and checked against ``choices``.

        Raises:
            ConfigError: one line naming the flag, the backend and what is allowed.
        """
        try:
            if self.type is bool and isinstance(value, str):
                if value.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                    raise ValueError(value)
                value = value.lower() in ("1", "true", "yes", "on")
            else:
                value = self.type(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{self.cli_flag}: backend {backend!r} wants a {_TYPES[self.type]}, "
                              f"got {value!r}") from None
        if self.minimum is not None and not value >= self.minimum:
            raise ConfigError(f"{self.cli_flag} {value:g}: must be >= {self.minimum:g}")
        if self.choices is not None and value not in self.choices:
            raise ConfigError(f"{self.cli_flag} {value}: backend {backend!r} accepts "
                              f"{', '.join(map(str, self.choices))}")
        return value


@dataclass(frozen=True)
class BackendSpec:
    """What a backend plugin declares (module-level ``SPEC``), read by the registry, CLI, runner and bench.

    Attributes:
        name: registry name, the value of ``--backend``.
        target: ``"module:Class"`` of the backend class (imported only when the backend is loaded); the
            class has ``from_config(BackendConfig) -> Backend``.
        extra: pip extra that installs its runtime (``pip install 'mlperf-bert[<extra>]'``), "" for none.
        summary: one line for ``--help`` and ``mlperf-bert models``.
        framework: the name of the software it runs on, for run.json and a submission's ``framework``
            field, e.g. ``"ONNX Runtime"``.
        packages: PyPI distributions whose versions it reports (the first installed one names the
            framework's version), e.g. ``("onnxruntime", "onnxruntime-gpu")``.
        model_formats: formats it loads as they are (``models.formats.detect_format`` names):
            ``"onnx"``, ``"hf"``, ``"pytorch"``, ``"tf-frozen"``, ``"tf-saved-model"``, ... ; empty when it
            needs no model (the null backend).
        options: its typed options.
        prepare: ``"module:function"`` that makes the artifact this backend loads from the user's model
            (export, graph optimization); called as ``fn(model: Path, config: BackendConfig,
            say: Callable[[str], None]) -> Path`` before the backend is built, and by ``mlperf-bert
            prepare``. None: models are loaded as they are.
        speed_configs: ``mlperf-bert bench`` configurations, name -> (options, GEMM kind for the peak).
    """

    name: str
    target: str
    extra: str = ""
    summary: str = ""
    framework: str = ""
    packages: tuple[str, ...] = ()
    model_formats: tuple[str, ...] = ()
    options: tuple[BackendOption, ...] = ()
    prepare: str | None = None
    speed_configs: dict[str, tuple[dict[str, Any], str]] = field(default_factory=dict)

    @property
    def needs_model(self) -> bool:
        return bool(self.model_formats)

    def option(self, name: str) -> BackendOption:
        for opt in self.options:
            if opt.name == name:
                return opt
        raise KeyError(name)

    def check_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """``options`` converted and checked; an option this backend does not declare is an error.

        Raises:
            ConfigError: unknown option (names it and the backend's options) or a bad value.
        """
        known = {o.name: o for o in self.options}
        unknown = sorted(set(options) - set(known))
        if unknown:
            offered = ", ".join(o.cli_flag for o in self.options) or "none"
            raise ConfigError(f"backend {self.name!r} has no option {', '.join(unknown)} (its options: {offered})")
        return {k: known[k].check(v, self.name) for k, v in options.items()}

    def resolved_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Every declared option with the user's value or its default (for run.json)."""
        return {o.name: options.get(o.name, o.default) for o in self.options}


def predict_fixed_shape(run: Callable[[list[np.ndarray]], np.ndarray], arrays: list[np.ndarray],
                        static_batch: int | None, static_length: int | None) -> np.ndarray:
    """Run a model whose inputs have a fixed batch and/or length (the official files are ``[1, 384]`` or
    ``[B, 384]``) on a padding-free batch: pad each row to the fixed length (ids, mask and segments 0: masked
    positions, which change no real token's logits), split into chunks of the fixed batch (the last one padded
    with empty rows), and cut the logits back to the batch's own shape.

    Args:
        run: the runtime's call on one chunk, ``[ids, mask, segments]`` each [b, l] -> float32 [b, l, 2].
        arrays: the batch's three int arrays [B, L].
        static_batch, static_length: the model's fixed dims, or None where it is dynamic.

    Returns:
        float32 [B, L, 2], C-contiguous.

    Raises:
        BackendFailure: the batch is longer than the model's fixed length.
    """
    from mlperf_bert.errors import BackendFailure

    b, length = arrays[0].shape
    run_len = length
    if static_length is not None:
        if length > static_length:
            raise BackendFailure(f"batch length {length} exceeds the model's fixed length {static_length}")
        run_len = static_length
        if length < run_len:
            arrays = [np.pad(a, ((0, 0), (0, run_len - length))) for a in arrays]
    step = static_batch or max(b, 1)
    out = np.empty((b, length, 2), dtype=np.float32)  # (B, L, 2)
    for start in range(0, b, step):
        chunk = [a[start:start + step] for a in arrays]
        n = chunk[0].shape[0]
        if static_batch is not None and n < step:
            chunk = [np.pad(a, ((0, step - n), (0, 0))) for a in chunk]
        out[start:start + n] = run(chunk)[:n, :length]
    return out


def static_dims(shape: list) -> tuple[int | None, int | None]:
    """``(batch, length)`` of a [batch, seq] input shape whose entries are ints (fixed) or anything else
    (dynamic: a name, None, -1); None for each dynamic dim."""
    def fixed(d):
        return d if isinstance(d, int) and d > 0 else None

    dims = list(shape) + [None, None]
    return fixed(dims[0]), fixed(dims[1])


def import_target(target: str, what: str) -> Callable:
    """The object ``"module:attr"`` names (a backend class or prepare function).

    Raises:
        ModuleNotFoundError: the module or one it imports is missing (the registry turns a missing
            third-party module into ``BackendUnavailable``).
    """
    import importlib

    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"{what}: {module_name} has no {attr!r}") from None


def model_path(config: BackendConfig) -> Path:
    """``config.model`` as a Path; raises ConfigError naming ``--model`` when there is none."""
    if config.model is None:
        raise ConfigError(f"the {config.name} backend needs --model")
    return Path(config.model)
