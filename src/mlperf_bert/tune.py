"""Tuned profiles: the fastest harness settings for one machine, backend, model and scenario, measured.

Two halves:

- **Resolving a run's harness settings** (``resolve_harness``, used by ``run``, ``find-peak``, ``bench`` and
  ``submit``): batch size, token budget, padding multiple, Server's maximum wait, workers, intra-op threads
  and the backend's speed options. Each comes from, highest first: a flag (``flag:--batch-size``), a
  matching tuned profile (``profile:<path>``), the built-in default of the device kind
  (``default:cpu`` / ``default:cuda``, ``sut.batcher.DEVICE_DEFAULTS``). Threads never oversubscribe: without
  ``--threads`` (or a profile that chose them with the same workers) each of the concurrent backend calls
  gets ``physical cores // workers`` threads (``default:cores/workers``, ``sut.sut.threads_per_worker``).
- **Tuning** (``tune``, ``mlperf-bert tune``): a bounded coordinate search from the device defaults over
  workers x threads, batch size, token budget, padding multiple, the backend's tunable options
  (``BackendOption.tune``) and, in Server, the maximum wait; each point is a short LoadGen run of the real
  SUT on real dev features (``speed.loadgen_run``): Offline by samples/s over the same samples, Server by
  the p99 latency at one offered load (lower wins; over 130 ms fails). The two best and the defaults are
  measured again and ranked by their mean; a winner must beat the defaults by more than the noise margin
  (``NOISE_MARGIN``, or the repeats' spread when wider), else the defaults stay the winner. The winner and
  the whole measured table are written atomically as ``<cache>/profiles/<backend>-<scenario>-<key
  digest>.json``; an existing profile made from more measurements is kept unless forced (``save_profile``).

A profile is keyed by the machine (CPU model, physical cores available, the ISA flags that matter for GEMM
kernels, accelerators), the device kind, the backend and its package versions, the fingerprint of the
prepared model (``fileio.fingerprint`` of what ``BackendRegistry.prepare`` makes from ``--model`` with the
options given, i.e. the artifact a run loads) and the backend's untuned options (precision). A profile made
for another machine, model or option set is never used; the run says so in one line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from mlperf_bert.errors import ConfigError, DataError, HarnessError
from mlperf_bert.loadgen.settings import SERVER_TARGET_LATENCY_NS, flag_source, profile_source
from mlperf_bert.sut.batcher import DEVICE_DEFAULTS, device_kind
from mlperf_bert.sut.sut import concurrent_calls, default_workers, threads_per_worker

#: Version of the profile file format.
PROFILE_VERSION = 1
#: Folder of profiles under the cache folder.
PROFILES_DIR = "profiles"
#: Suffix of the profile a newer ``tune`` replaced (``<name>.prev.json``, next to it; never used by runs).
PREV_SUFFIX = ".prev.json"
#: CPU flags that change which GEMM kernels a runtime picks (AVX2/FMA, AVX-512, VNNI, BF16, FP16, AMX).
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16",
             "avx_vnni", "amx_tile", "amx_bf16", "amx_int8")
#: Server latency bound for BERT (ms), MLPerf Inference rules; a Server measurement over it fails.
SERVER_BOUND_MS = SERVER_TARGET_LATENCY_NS / 1e6
#: Harness settings (besides backend options) and the ``run`` flag that sets each.
SETTING_FLAGS = {"batch_size": "--batch-size", "token_budget": "--token-budget",
                 "pad_to_multiple": "--pad-to-multiple", "server_max_wait_ms": "--server-max-wait-ms",
                 "workers": "--workers", "threads": "--threads"}
#: Source of a threads value from the no-oversubscription rule.
SOURCE_THREADS_RULE = "default:cores/workers"
#: Smallest gain (fraction) a tuned winner needs over the untuned defaults to replace them: run-to-run noise
#: of a short LoadGen run on a shared CPU host is a few percent (issue 16's loaded 2-core host: 38.05 vs
#: 37.70 samples/s, 1.01x, for a "winner" that was no faster). The margin used is the larger of this and
#: the widest spread of one candidate's repeated measurements (``noise_margin``).
NOISE_MARGIN = 0.03


def default_source(kind: str) -> str:
    """Source label of a built-in default for device kind ``kind``: ``default:cpu`` / ``default:cuda``."""
    return f"default:{kind}"


# -- keys and files ------------------------------------------------------------------------------------
def machine_key(cpu=None, cores: int | None = None, accelerators: Iterable[str] | None = None) -> dict:
    """What identifies this machine for a profile: CPU model, physical cores this process may use, the
    ``ISA_FLAGS`` it has, accelerator models. Arguments override what ``machine`` reads (tests)."""
    from mlperf_bert import machine

    cpu = cpu or machine.read_cpu()
    if accelerators is None:
        accelerators = [a.model for a in machine.read_accelerators()]
    return {"cpu": cpu.model, "cores": int(cores or machine.physical_cores()),
            "isa": sorted(f for f in ISA_FLAGS if f in cpu.flags), "accelerators": sorted(accelerators)}


@dataclass(frozen=True)
class ProfileKey:
    """What a profile is valid for.

    Attributes:
        machine: ``machine_key()``.
        backend: backend name.
        versions: the backend's package versions (``BackendRegistry.versions``).
        device: device kind, ``cpu`` or ``cuda``.
        model: ``fileio.fingerprint`` of the prepared model (None for a backend without a model).
        scenario: Offline, Server, SingleStream or MultiStream.
        options: the backend's options that are not tuned (e.g. ``precision``), resolved with defaults.
    """

    machine: Mapping[str, Any]
    backend: str
    versions: Mapping[str, str]
    device: str
    model: str | None
    scenario: str
    options: Mapping[str, Any]

    def to_json(self) -> dict:
        return {"machine": dict(self.machine), "backend": self.backend, "versions": dict(self.versions),
                "device": self.device, "model": self.model, "scenario": self.scenario, "options": dict(self.options)}

    def digest(self) -> str:
        """16 hex digits of the sha256 of the key's canonical JSON."""
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()[:16]

    def differences(self, other: Mapping[str, Any]) -> list[str]:
        """The key fields (``machine``, ``model``, ...) in which a profile's key ``other`` differs."""
        mine = self.to_json()
        return [k for k in mine if _canon(mine[k]) != _canon(other.get(k))]

    def for_scenario(self, scenario: str) -> "ProfileKey":
        return dataclasses.replace(self, scenario=scenario)


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def profile_path(cache_dir: Path, key: ProfileKey) -> Path:
    """``<cache_dir>/profiles/<backend>-<scenario>-<digest>.json``."""
    return Path(cache_dir) / PROFILES_DIR / f"{key.backend}-{key.scenario}-{key.digest()}.json"


@dataclass(frozen=True)
class Profile:
    """A profile file: where it is, its key, the winning settings and everything else it holds.

    Attributes:
        path: the file.
        key: its key as JSON.
        settings: the winner: ``SETTING_FLAGS`` names and ``options`` (backend option name -> value).
        data: the whole file (the measured table, budget, host load, ...).
    """

    path: Path
    key: Mapping[str, Any]
    settings: Mapping[str, Any]
    data: Mapping[str, Any]


def read_profile(path: Path) -> Profile:
    """Read one profile file.

    Raises:
        DataError: unreadable, not JSON, or not a profile of this version (names the file).
    """
    from mlperf_bert.fileio import read_json

    data = read_json(path, "tuned profile", "run 'mlperf-bert tune' again or delete it")
    if not isinstance(data, dict) or data.get("profile_version") != PROFILE_VERSION or \
            not isinstance(data.get("key"), dict) or not isinstance(data.get("settings"), dict):
        raise DataError(f"{path}: not an mlperf-bert profile of version {PROFILE_VERSION}; run 'mlperf-bert tune' "
                        "again or delete it")
    return Profile(Path(path), data["key"], data["settings"], data)


def find_profile(cache_dir: Path, key: ProfileKey) -> tuple[Profile | None, str | None]:
    """The profile for ``key`` and a one-line note: which profile is used, or why the profiles there are
    not (another machine, model, options, versions), or None when there are no profiles for this backend
    and scenario."""
    folder = Path(cache_dir) / PROFILES_DIR
    path = profile_path(cache_dir, key)
    if path.is_file():
        try:
            prof = read_profile(path)
        except DataError as exc:
            return None, f"profile not used: {exc}"
        if not key.differences(prof.key):
            return prof, f"using tuned profile {path}"
    others = sorted(p for p in folder.glob(f"{key.backend}-{key.scenario}-*.json")
                    if p != path and not p.name.endswith(PREV_SUFFIX)) if folder.is_dir() else []
    for other in others:
        try:
            diff = key.differences(read_profile(other).key)
        except DataError:
            continue
        what = " and ".join(_DIFF_WORDS.get(d, d) for d in diff)
        more = f" (and {len(others) - 1} more)" if len(others) > 1 else ""
        return None, (f"tuned profile {other}{more} is for another {what}; not used "
                      f"(run 'mlperf-bert tune --backend {key.backend} --scenario {key.scenario}' for this one)")
    return None, None


_DIFF_WORDS = {"machine": "machine", "model": "model", "versions": "backend version", "options": "option set",
               "device": "device"}


def backend_profiles_exist(cache_dir: Path | None, backend: str) -> bool:
    """Any profile of ``backend`` (any scenario) under ``cache_dir`` (cheap: file names only)."""
    if cache_dir is None:
        return False
    folder = Path(cache_dir) / PROFILES_DIR
    return folder.is_dir() and any(folder.glob(f"{backend}-*.json"))


def tunable_options(spec) -> dict[str, tuple]:
    """The backend's options ``tune`` tries (``BackendOption.tune``), name -> values."""
    return {o.name: tuple(o.tune) for o in spec.options if o.tune}


def tunable_flags(spec) -> dict[str, str]:
    """The backend's tunable options, name -> CLI flag."""
    return {o.name: o.cli_flag for o in spec.options if o.tune}


def profile_key(registry, backend_cfg, scenario: str, say: Callable[[str], None] = lambda m: None,
                machine: Mapping | None = None) -> ProfileKey:
    """The key of ``backend_cfg`` (the options the user gave) in ``scenario``; prepares the model (cached)
    to fingerprint the artifact a run loads.

    Raises:
        HarnessError subclasses from preparing the model.
    """
    from mlperf_bert.fileio import fingerprint

    spec = registry.spec(backend_cfg.name)
    model = None
    if spec.needs_model and backend_cfg.model is not None:
        prepared = registry.prepare(backend_cfg, say)
        model = fingerprint(Path(prepared.model))
    tuned = tunable_options(spec)
    fixed = {k: v for k, v in spec.resolved_options(backend_cfg.options).items() if k not in tuned}
    return ProfileKey(machine=machine or machine_key(), backend=spec.name, versions=registry.versions(spec.name),
                      device=device_kind(backend_cfg.device), model=model, scenario=scenario, options=fixed)


# -- a run's harness settings --------------------------------------------------------------------------
@dataclass(frozen=True)
class Harness:
    """A run's harness settings, where each came from, and what re-resolves them for another scenario.

    Attributes:
        scenario: the scenario they were resolved for.
        values: ``SETTING_FLAGS`` names -> value (``token_budget`` None = no limit) and ``options`` ->
            the tunable backend options a flag or the profile set.
        sources: setting name (backend options as ``option:<name>``) -> source label.
        given: what flags gave (same names; ``options`` for backend options).
        kind: device kind.
        cores: physical cores the threads rule divided.
        profile: path of the profile used, or None.
        note: one line about profiles (used / not used and why), or None.
        use_profiles: False after ``--no-profile``.
        key: the profile key (scenario-independent parts reused by ``retarget``), or None when no profile of
            this backend exists.
        cache_dir: where profiles are looked up.
        option_flags: the backend's tunable options, name -> CLI flag.
    """

    scenario: str
    values: Mapping[str, Any]
    sources: Mapping[str, str]
    given: Mapping[str, Any] = field(default_factory=dict)
    kind: str = "cpu"
    cores: int = 1
    profile: str | None = None
    note: str | None = None
    use_profiles: bool = True
    key: ProfileKey | None = None
    cache_dir: Path | None = None
    option_flags: Mapping[str, str] = field(default_factory=dict)

    def settings(self) -> list[dict]:
        """``[{"key", "value", "source"}]`` for run.json and the summary, settings first, then options."""
        out = [{"key": k, "value": self.values[k], "source": self.sources[k]} for k in SETTING_FLAGS]
        for name, value in sorted(self.values.get("options", {}).items()):
            out.append({"key": f"option:{name}", "value": value, "source": self.sources[f"option:{name}"]})
        return out

    def batcher(self, base=None):
        """``base`` (a ``BatcherConfig``; default ``BatcherConfig()``) with this harness's batch size, token
        budget, padding multiple and Server wait; its other fields (``sort_by_length``) kept."""
        from mlperf_bert.sut.batcher import BatcherConfig

        v = self.values
        return dataclasses.replace(base if base is not None else BatcherConfig(), max_batch_size=v["batch_size"],
                                   token_budget=v["token_budget"], pad_to_multiple=v["pad_to_multiple"],
                                   server_max_wait_ms=v["server_max_wait_ms"])

    def record(self) -> dict:
        """What run.json keeps (``harness``)."""
        return {"settings": self.settings(), "profile": self.profile, "note": self.note, "device_kind": self.kind,
                "physical_cores": self.cores, "profiles": "on" if self.use_profiles else "off (--no-profile)"}


def resolve_settings(scenario: str, kind: str, cores: int, given: Mapping[str, Any], profile: Profile | None,
                     option_flags: Mapping[str, str] = {}) -> tuple[dict, dict]:  # noqa: B006 - read only
    """Each harness setting's value and source: flag, else profile, else the device kind's default.

    Threads come from the profile only together with the profile's own workers; otherwise ``--threads`` or
    ``physical cores // concurrent calls``. Backend options appear only when a flag or the profile sets them
    (the backend's defaults apply otherwise).

    Args:
        scenario, kind, cores: the run's scenario, device kind, physical cores.
        given: flag values by setting name, ``options`` a dict of backend options given.
        profile: the matching profile, or None.
        option_flags: the backend's tunable options, name -> CLI flag.

    Returns:
        ``(values, sources)`` as in ``Harness``.
    """
    d = DEVICE_DEFAULTS[kind]
    defaults = {"batch_size": d["max_batch_size"], "token_budget": d["token_budget"],
                "pad_to_multiple": d["pad_to_multiple"], "server_max_wait_ms": d["server_max_wait_ms"],
                "workers": default_workers(kind, scenario, cores)}
    chosen = dict(profile.settings) if profile is not None else {}
    psrc = profile_source(profile.path) if profile is not None else ""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name in ("batch_size", "token_budget", "pad_to_multiple", "server_max_wait_ms", "workers"):
        if name in given:
            values[name], sources[name] = given[name], flag_source(SETTING_FLAGS[name])
        elif name in chosen:
            values[name], sources[name] = chosen[name], psrc
        else:
            values[name], sources[name] = defaults[name], default_source(kind)
    if "threads" in given:
        values["threads"], sources["threads"] = given["threads"], flag_source("--threads")
    elif "threads" in chosen and chosen.get("workers") == values["workers"]:
        values["threads"], sources["threads"] = chosen["threads"], psrc
    else:
        values["threads"] = threads_per_worker(concurrent_calls(scenario, values["workers"]), cores)
        sources["threads"] = SOURCE_THREADS_RULE
    options: dict[str, Any] = {}
    given_opts = dict(given.get("options", {}))
    for name, flag in option_flags.items():
        if name in given_opts:
            options[name], sources[f"option:{name}"] = given_opts[name], flag_source(flag)
        elif name in chosen.get("options", {}):
            options[name], sources[f"option:{name}"] = chosen["options"][name], psrc
    values["options"] = options
    return values, sources


def resolve_harness(scenario: str, backend_cfg, given: Mapping[str, Any], registry, *, use_profiles: bool = True,
                    cache_dir: Path | None = None, say: Callable[[str], None] = lambda m: None,
                    cores: int | None = None, machine: Mapping | None = None):
    """Resolve a run's harness settings (see ``resolve_settings``), looking for a matching profile.

    Args:
        scenario: the run's scenario.
        backend_cfg: ``BackendConfig`` with only the options the user gave.
        given: flag values by setting name (absent = not given); backend options are read from
            ``backend_cfg.options``.
        registry: the ``BackendRegistry``.
        use_profiles: False for ``--no-profile``.
        cache_dir: where profiles live (default: ``backend_cfg.cache_dir``).
        say: one-line messages (preparing the model to fingerprint it).
        cores, machine: overrides of ``physical_cores()`` / ``machine_key()`` (tests).

    Returns:
        ``(Harness, BackendConfig)``: the config with the resolved threads and the profile's backend options
        added (flags win).

    Raises:
        HarnessError subclasses from preparing the model (only when profiles of this backend exist).
    """
    from mlperf_bert.machine import physical_cores

    spec = registry.spec(backend_cfg.name)
    kind = device_kind(backend_cfg.device)
    cores = int(cores or physical_cores())
    cache_dir = Path(cache_dir or backend_cfg.cache_dir) if (cache_dir or backend_cfg.cache_dir) else None
    key = profile = note = None
    if use_profiles and backend_profiles_exist(cache_dir, spec.name):
        key = profile_key(registry, backend_cfg, scenario, say, machine=machine)
        profile, note = find_profile(cache_dir, key)
    given = {**{k: v for k, v in given.items() if k != "options"},
             "options": {k: v for k, v in backend_cfg.options.items() if k in tunable_options(spec)}}
    if backend_cfg.threads is not None:
        given["threads"] = backend_cfg.threads
    values, sources = resolve_settings(scenario, kind, cores, given, profile, tunable_flags(spec))
    harness = Harness(scenario=scenario, values=values, sources=sources, given=given, kind=kind, cores=cores,
                      profile=str(profile.path) if profile else None, note=note, use_profiles=use_profiles, key=key,
                      cache_dir=cache_dir, option_flags=tunable_flags(spec))
    return harness, apply_to_backend(harness, backend_cfg)


def apply_to_backend(harness: Harness, backend_cfg):
    """``backend_cfg`` with the harness's threads and backend options (flags were already in it)."""
    return dataclasses.replace(backend_cfg, threads=harness.values["threads"],
                               options={**backend_cfg.options, **harness.values["options"]})


def retarget(harness: Harness, scenario: str) -> Harness:
    """The same flags resolved for another scenario (its own profile and defaults), e.g. ``submit``'s
    Server and SingleStream runs from its Offline base; no model work (the key is reused)."""
    profile = note = None
    key = harness.key.for_scenario(scenario) if harness.key is not None else None
    if harness.use_profiles and key is not None and harness.cache_dir is not None:
        profile, note = find_profile(harness.cache_dir, key)
    values, sources = resolve_settings(scenario, harness.kind, harness.cores, harness.given, profile,
                                       harness.option_flags)
    return dataclasses.replace(harness, scenario=scenario, values=values, sources=sources,
                               profile=str(profile.path) if profile else None, note=note, key=key)


def retarget_run_config(cfg, scenario: str):
    """``cfg`` (a ``runner.RunConfig``) for ``scenario``: SUT, batching, threads and backend options
    re-resolved when ``cfg.harness`` says how (else only the scenario changes)."""
    sut = dataclasses.replace(cfg.sut, scenario=scenario)
    cfg = dataclasses.replace(cfg, sut=sut, loadgen=dataclasses.replace(cfg.loadgen, scenario=scenario))
    if cfg.harness is None:
        return cfg
    h = retarget(cfg.harness, scenario)
    v = h.values
    batcher = h.batcher(sut.batcher)
    given_opts = {k: val for k, val in cfg.backend.options.items() if k not in cfg.harness.values["options"]
                  or k in cfg.harness.given.get("options", {})}
    backend = dataclasses.replace(cfg.backend, threads=v["threads"], options={**given_opts, **v["options"]})
    return dataclasses.replace(cfg, sut=dataclasses.replace(sut, batcher=batcher, workers=v["workers"]),
                               backend=backend, harness=h)


# -- tuning --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Candidate:
    """One point of the grid: the harness settings of a short run.

    Attributes:
        batch_size, token_budget (None = no limit), pad_to_multiple, server_max_wait_ms, workers, threads:
            as the ``run`` flags.
        options: the backend's tunable options, sorted ``(name, value)`` pairs.
    """

    batch_size: int
    token_budget: int | None
    pad_to_multiple: int
    server_max_wait_ms: float
    workers: int
    threads: int
    options: tuple[tuple[str, Any], ...] = ()

    def settings(self) -> dict:
        """The profile's ``settings`` form (``SETTING_FLAGS`` names and ``options``)."""
        return {"batch_size": self.batch_size, "token_budget": self.token_budget,
                "pad_to_multiple": self.pad_to_multiple, "server_max_wait_ms": self.server_max_wait_ms,
                "workers": self.workers, "threads": self.threads, "options": dict(self.options)}

    def label(self) -> str:
        """Short text, e.g. ``batch 1, 2 workers x 1 thread`` (+ what differs from the defaults)."""
        parts = [f"batch {self.batch_size}"]
        if self.batch_size > 1:
            parts.append(f"budget {self.token_budget or 'none'}")
            if self.pad_to_multiple > 1:
                parts.append(f"pad {self.pad_to_multiple}")
        parts.append(f"{self.workers} worker{'s' * (self.workers > 1)} x {self.threads} thread"
                     f"{'s' * (self.threads > 1)}")
        if self.server_max_wait_ms:
            parts.append(f"wait {self.server_max_wait_ms:g} ms")
        parts += [f"{k}={v}" for k, v in self.options]
        return ", ".join(parts)

    def with_(self, **changes) -> "Candidate":
        if "options" in changes:
            changes["options"] = tuple(sorted(dict(changes["options"]).items()))
        return dataclasses.replace(self, **changes)


@dataclass
class Measurement:
    """One short run of a candidate.

    Attributes:
        candidate: what ran.
        samples_per_second: LoadGen's samples/s (Offline: the result; Server: completed samples/s).
        p99_ms: Server: 99th percentile latency (ms); None in Offline.
        seconds: wall time of the measurement (loading a backend included).
        error: why it failed (one line), or None.
    """

    candidate: Candidate
    samples_per_second: float = 0.0
    p99_ms: float | None = None
    seconds: float = 0.0
    error: str | None = None

    def to_json(self) -> dict:
        return {"settings": self.candidate.settings(), "label": self.candidate.label(),
                "samples_per_second": self.samples_per_second, "p99_ms": self.p99_ms, "seconds": round(self.seconds, 3),
                "error": self.error}


def rank_key(scenario: str, ms: list[Measurement]) -> tuple:
    """Sort key of one candidate's measurements (higher is better). Offline: no error, then mean samples/s.
    Server: no error, p99 within 130 ms, then lower mean p99, then samples/s."""
    ok = all(m.error is None for m in ms)
    sps = sum(m.samples_per_second for m in ms) / len(ms)
    if scenario != "Server":
        return (ok, sps)
    p99s = [m.p99_ms for m in ms if m.p99_ms is not None]
    p99 = sum(p99s) / len(p99s) if p99s else float("inf")
    return (ok, p99 <= SERVER_BOUND_MS, -p99, sps)


@dataclass(frozen=True)
class Grid:
    """The values the search may try, per setting, and where it starts.

    Attributes:
        start: the first candidate (the device kind's defaults, with the flags given).
        workers, batch_sizes, token_budgets, pad_multiples, max_waits: values per setting (one value = fixed).
        options: tunable backend option -> values.
        cores: physical cores (threads = cores // workers unless ``threads_fixed``).
        threads_fixed: ``--threads`` was given.
    """

    start: Candidate
    workers: tuple[int, ...]
    batch_sizes: tuple[int, ...]
    token_budgets: tuple[int | None, ...]
    pad_multiples: tuple[int, ...]
    max_waits: tuple[float, ...]
    options: Mapping[str, tuple] = field(default_factory=dict)
    cores: int = 1
    threads_fixed: bool = False

    def size(self) -> int:
        """An upper bound of the candidates one pass may measure."""
        return (len(self.workers) * 2 + len(self.batch_sizes) + len(self.token_budgets) + len(self.pad_multiples)
                + len(self.max_waits) + sum(len(v) for v in self.options.values()))


#: Values tried per device kind and scenario (beyond the start point).
GRID_VALUES = {
    "cpu": {"Offline": {"batch": (1, 4, 16, 64), "budget": (2048, 8192, 32768, None), "pad": (1, 16, 64)},
            "Server": {"batch": (1, 2, 4, 8), "budget": (2048, 8192, None), "pad": (1, 16)},
            "wait": (0.0, 1.0, 5.0)},
    "cuda": {"Offline": {"batch": (64, 128, 256, 512), "budget": (16384, 65536, 131072, None), "pad": (1, 16, 64)},
             "Server": {"batch": (16, 32, 64, 128), "budget": (16384, 65536, None), "pad": (1, 64)},
             "wait": (1.0, 2.0, 5.0, 10.0)},
}


def worker_values(kind: str, cores: int) -> tuple[int, ...]:
    """Workers tried: 1, 2, 4, ... up to the cores, and the cores themselves (at most 6 values); on a GPU 1
    and 2 (the second overlaps host work with the device's)."""
    if kind == "cuda":
        return (1, 2)
    vals = sorted({1, cores} | {2 ** k for k in range(1, 16) if 2 ** k < cores})
    while len(vals) > 6:  # keep the ends, thin the middle
        vals.pop(len(vals) // 2)
    return tuple(vals)


def default_grid(scenario: str, kind: str, cores: int, given: Mapping[str, Any],
                 options: Mapping[str, tuple] = {}) -> Grid:  # noqa: B006 - read only
    """The grid for ``scenario`` on device ``kind``: the start point is the run's own resolution without a
    profile (``resolve_settings``); every setting a flag gives is fixed at that value."""
    start_v, _ = resolve_settings(scenario, kind, cores, given, None)
    vals = GRID_VALUES[kind]["Server" if scenario == "Server" else "Offline"]

    def axis(name: str, values: tuple) -> tuple:
        if name in given:
            return (given[name],)
        return tuple(dict.fromkeys((start_v[name],) + tuple(values)))

    given_opts = dict(given.get("options", {}))
    opts = {k: (given_opts[k],) if k in given_opts else tuple(v) for k, v in options.items()}
    start = Candidate(start_v["batch_size"], start_v["token_budget"], start_v["pad_to_multiple"],
                      start_v["server_max_wait_ms"], start_v["workers"], start_v["threads"],
                      tuple(sorted((k, v[0]) for k, v in opts.items())))
    return Grid(start=start, workers=axis("workers", worker_values(kind, cores)),
                batch_sizes=axis("batch_size", vals["batch"]), token_budgets=axis("token_budget", vals["budget"]),
                pad_multiples=axis("pad_to_multiple", vals["pad"]),
                max_waits=axis("server_max_wait_ms", GRID_VALUES[kind]["wait"]) if scenario == "Server" else
                (start.server_max_wait_ms,),
                options=opts, cores=cores, threads_fixed="threads" in given)


@dataclass
class TuneResult:
    """What ``search`` measured.

    Attributes:
        winner: the best candidate (``rank_key`` over its measurements).
        best: the winner's measurements.
        start: the start candidate (the untuned defaults).
        table: every measurement in order.
        elapsed_s: wall time.
        stopped: why the search stopped early (budget), or None.
        margin: the noise margin applied (fraction, ``noise_margin``).
        defaults_kept: one line when the best alternative did not beat the defaults by more than ``margin``
            (the winner is then ``start``), else None.
        alternative: that best alternative (None unless ``defaults_kept``).
        saved: what ``tune`` did with the profile: ``written``, ``replaced``, ``kept`` (the existing one,
            from more measurements) or None (not written).
    """

    winner: Candidate
    best: list[Measurement]
    start: Candidate
    table: list[Measurement]
    elapsed_s: float
    stopped: str | None = None
    margin: float = NOISE_MARGIN
    defaults_kept: str | None = None
    alternative: Candidate | None = None
    saved: str | None = None

    def by_candidate(self) -> dict[Candidate, list[Measurement]]:
        out: dict[Candidate, list[Measurement]] = {}
        for m in self.table:
            out.setdefault(m.candidate, []).append(m)
        return out


def noise_margin(scenario: str, by: Mapping[Candidate, list[Measurement]], floor: float = NOISE_MARGIN) -> float:
    """The gain (fraction) a candidate needs over the defaults to count as faster: ``floor``, or the widest
    relative spread ``(max - min) / mean`` of one candidate's repeated error-free measurements (samples/s in
    Offline, p99 in Server) when that is wider."""
    spread = 0.0
    for ms in by.values():
        if len(ms) < 2 or any(m.error for m in ms):
            continue
        vals = [m.p99_ms for m in ms if m.p99_ms is not None] if scenario == "Server" else \
            [m.samples_per_second for m in ms]
        mean = sum(vals) / len(vals) if vals else 0.0
        if len(vals) >= 2 and mean > 0:
            spread = max(spread, (max(vals) - min(vals)) / mean)
    return max(floor, spread)


def gain_over(scenario: str, ms: list[Measurement], start: list[Measurement]) -> float:
    """How many times better ``ms`` is than the defaults' ``start`` (means): Offline the samples/s ratio,
    Server the defaults' p99 over this one's (> 1 = lower latency); inf when the defaults failed (an error,
    or Server p99 over 130 ms)."""
    if not rank_key(scenario, start)[0]:
        return float("inf")
    if scenario == "Server":
        p99 = [m.p99_ms for m in ms if m.p99_ms is not None]
        p0 = [m.p99_ms for m in start if m.p99_ms is not None]
        if not p0 or sum(p0) / len(p0) > SERVER_BOUND_MS:
            return float("inf")
        return (sum(p0) / len(p0)) / max(1e-9, sum(p99) / len(p99)) if p99 else 0.0
    s0 = sum(m.samples_per_second for m in start) / len(start)
    return (sum(m.samples_per_second for m in ms) / len(ms)) / max(1e-9, s0)


def search(grid: Grid, measure: Callable[[Candidate], Measurement], scenario: str, budget_s: float, *,
           clock: Callable[[], float] = time.monotonic,
           progress: Callable[[int, int, float, str], None] | None = None, confirm: bool = True,
           margin: float = NOISE_MARGIN) -> TuneResult:
    """Coordinate search from ``grid.start``: one setting at a time, keep the best so far, then measure
    the two best and the defaults again (``confirm``) and rank by their mean. A winner other than the
    defaults must beat them by more than the noise margin (``noise_margin`` with floor ``margin``: Offline
    samples/s, Server p99); otherwise the defaults stay the winner and ``defaults_kept`` says why.

    Stages: workers (threads = cores // workers), batch size, token budget and padding multiple (only when
    the best batch holds more than one sample), each tunable backend option, Server's maximum wait (Server,
    batch > 1), workers again when the batch size changed. A candidate is measured at most once per pass.

    The budget bounds the wall time: a measurement starts only when the time spent plus the mean
    measurement so far fits in ``budget_s`` (the start point is always measured).

    Args:
        grid: values per setting (``default_grid``).
        measure: runs one candidate (``LoadGenMeasure``; tests pass fakes with known costs).
        scenario: decides the ranking (``rank_key``).
        budget_s: wall-clock bound, seconds.
        clock: time source (seconds).
        progress: called as ``progress(done, planned, eta_s, label)`` after each measurement.
        confirm: re-measure the two best candidates and the defaults.
        margin: floor of the noise margin (fraction, default ``NOISE_MARGIN``).

    Returns:
        ``TuneResult``; the winner is the best-ranked measured candidate, or the defaults when it is within
        the noise margin of them.
    """
    t0 = clock()
    table: list[Measurement] = []
    planned = [grid.size() + (3 if confirm else 0)]
    stopped: list[str] = []

    def ranked(c: Candidate) -> tuple:
        return rank_key(scenario, [m for m in table if m.candidate == c])

    def run(c: Candidate, again: bool = False) -> bool:
        if stopped:
            return False
        if not again and any(m.candidate == c for m in table):
            return True
        spent = clock() - t0
        mean = spent / len(table) if table else 0.0
        if table and spent + mean > budget_s:
            stopped.append(f"budget of {budget_s:.0f} s reached after {len(table)} measurements")
            return False
        m = measure(c)
        table.append(m)
        if progress is not None:
            done = len(table)
            spent = clock() - t0
            left = max(0, planned[0] - done)
            eta = min(max(0.0, budget_s - spent), left * spent / done)
            progress(done, max(planned[0], done), eta, c.label())
        return True

    def threads_for(workers: int) -> int:
        if grid.threads_fixed:
            return grid.start.threads
        return threads_per_worker(concurrent_calls(scenario, workers), grid.cores)

    best = grid.start
    run(best)

    def stage(cands: list[Candidate]) -> None:
        nonlocal best
        for c in cands:
            if stopped:
                return
            if not run(c):
                return
            if ranked(c) > ranked(best):
                best = c

    def skip(n: int) -> None:
        planned[0] -= n

    stage([best.with_(workers=w, threads=threads_for(w)) for w in grid.workers])
    batch_before = best.batch_size
    stage([best.with_(batch_size=b) for b in grid.batch_sizes])
    if best.batch_size > 1:
        stage([best.with_(token_budget=t) for t in grid.token_budgets])
        stage([best.with_(pad_to_multiple=p) for p in grid.pad_multiples])
    else:
        skip(len(grid.token_budgets) + len(grid.pad_multiples))
    for name, values in grid.options.items():
        stage([best.with_(options={**dict(best.options), name: v}) for v in values])
    if scenario == "Server" and best.batch_size > 1:
        stage([best.with_(server_max_wait_ms=w) for w in grid.max_waits])
    else:
        skip(len(grid.max_waits))
    if best.batch_size != batch_before:
        stage([best.with_(workers=w, threads=threads_for(w)) for w in grid.workers])
    else:
        skip(len(grid.workers))
    if confirm and not stopped:
        by = {}
        for m in table:
            by.setdefault(m.candidate, []).append(m)
        top = sorted(by, key=lambda c: rank_key(scenario, by[c]), reverse=True)[:2]
        if grid.start not in top and rank_key(scenario, by[grid.start])[0]:
            top.append(grid.start)  # the defaults are the yardstick of the noise margin: measured again too
        for c in top:
            if not run(c, again=True):
                break
    by = {}
    for m in table:
        by.setdefault(m.candidate, []).append(m)
    winner = max(by, key=lambda c: rank_key(scenario, by[c]))
    used = noise_margin(scenario, by, margin)
    kept = alternative = None
    if winner != grid.start:
        gain = gain_over(scenario, by[winner], by[grid.start])
        if gain <= 1.0 + used:
            what = "lower p99" if scenario == "Server" else "the defaults' samples/s"
            kept = (f"defaults kept: best alternative only {gain:.2f}x {what}, within the noise margin of "
                    f"{100 * used:.0f}% ({winner.label()})")
            winner, alternative = grid.start, winner
    return TuneResult(winner=winner, best=by[winner], start=grid.start, table=table, elapsed_s=clock() - t0,
                      stopped=stopped[0] if stopped else None, margin=used, defaults_kept=kept,
                      alternative=alternative)


# -- measuring with LoadGen ----------------------------------------------------------------------------
class LoadGenMeasure:
    """Measures a candidate with the real SUT through LoadGen (``speed.loadgen_run``) on the dev features.

    Offline: one query of ``samples`` samples (LoadGen's fixed seeds: the same samples for every
    candidate), samples/s. Server: ``target_qps`` for ``duration_s`` seconds, p99 latency.

    Backends are loaded per (threads, options), prepared through the registry (cached artifacts), warmed
    up on a few samples, and at most ``keep`` stay loaded.

    Args:
        registry: the ``BackendRegistry``.
        backend_cfg: the ``BackendConfig`` with the options the user gave.
        qsl: an entered ``SquadQSL`` over the dev features.
        scenario: Offline or Server.
        outdir: folder for LoadGen's logs (one sub-folder per measurement).
        samples: Offline samples per measurement.
        target_qps, duration_s: Server offered load and length.
        say: one-line messages.
    """

    def __init__(self, registry, backend_cfg, qsl, scenario: str, outdir: Path, *, samples: int = 256,
                 target_qps: float = 1.0, duration_s: float = 5.0, say: Callable[[str], None] = lambda m: None,
                 keep: int = 2) -> None:
        self.registry, self.base, self.qsl, self.scenario = registry, backend_cfg, qsl, scenario
        self.outdir, self.samples, self.target_qps, self.duration_s = Path(outdir), samples, target_qps, duration_s
        self.say, self.keep = say, keep
        self._backends: dict[tuple, Any] = {}
        self._count = 0

    def backend(self, threads: int, options: tuple):
        """The loaded backend for ``threads`` and tunable ``options`` (loaded and warmed up once)."""
        key = (threads, options)
        if key in self._backends:
            self._backends[key] = self._backends.pop(key)  # most recently used last
            return self._backends[key]
        while len(self._backends) >= self.keep:  # close the least recently used
            self._backends.pop(next(iter(self._backends))).close()
        cfg = dataclasses.replace(self.base, threads=threads, options={**self.base.options, **dict(options)})
        be = self.registry.load(self.registry.prepare(cfg, self.say))
        self._warm_up(be)
        self._backends[key] = be
        return be

    def _warm_up(self, backend) -> None:
        import numpy as np

        idx = np.arange(min(4, self.qsl.count))
        for i in idx:  # first calls allocate (ORT arenas, torch caches)
            n = int(self.qsl.lengths[i])
            backend.predict(self.qsl.input_ids[i:i + 1, :n], self.qsl.input_mask[i:i + 1, :n],
                            self.qsl.segment_ids[i:i + 1, :n])

    def sut_config(self, c: Candidate):
        from mlperf_bert.sut.batcher import BatcherConfig
        from mlperf_bert.sut.sut import SUTConfig

        return SUTConfig(scenario=self.scenario, workers=c.workers,
                         batcher=BatcherConfig(max_batch_size=c.batch_size, token_budget=c.token_budget,
                                               pad_to_multiple=c.pad_to_multiple,
                                               server_max_wait_ms=c.server_max_wait_ms))

    def __call__(self, c: Candidate) -> Measurement:
        from mlperf_bert import speed

        t0 = time.perf_counter()
        self._count += 1
        out = self.outdir / f"m{self._count}"
        try:
            be = self.backend(c.threads, c.options)
            if self.scenario == "Server":
                r = speed.loadgen_run(be, self.qsl, self.sut_config(c), out, duration_s=self.duration_s,
                                      target_qps=self.target_qps)
                m = Measurement(c, r["samples_per_second"], r["latency_ms"].get(99.0))
            else:
                r = speed.loadgen_run(be, self.qsl, self.sut_config(c), out, samples=self.samples)
                m = Measurement(c, r["samples_per_second"])
        except HarnessError as exc:
            m = Measurement(c, error=str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
        m.seconds = time.perf_counter() - t0
        _remove_tree(out)
        return m

    def close(self) -> None:
        for be in self._backends.values():
            be.close()
        self._backends.clear()


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


@dataclass
class TuneJob:
    """What ``tune`` is asked to do.

    Attributes:
        scenario: Offline or Server.
        backend: ``BackendConfig`` with the options the user gave (model not prepared yet).
        given: harness flags given (fixed in the grid), as ``resolve_settings`` reads them.
        budget_s: wall-clock bound of the search, seconds.
        samples: Offline samples per measurement (None: about ``budget_s / 16`` seconds' worth).
        measure_s: Server seconds per measurement (None: about ``budget_s / 10``, 2..30 s).
        max_examples: use the features of the first N questions only (development).
        force: replace an existing profile made from more measurements (``save_profile``).
    """

    scenario: str
    backend: Any
    given: Mapping[str, Any] = field(default_factory=dict)
    budget_s: float = 180.0
    samples: int | None = None
    measure_s: float | None = None
    max_examples: int | None = None
    force: bool = False


def calibrate(job: TuneJob, measure: LoadGenMeasure, start: Candidate) -> dict:
    """Size the measurements so that one lasts about ``budget_s / 16`` seconds (Offline) or ``budget_s /
    10`` (Server, 2 .. 30 s).

    A short probe of the start candidate (``runner.probe_throughput``, one caller) gives a first rate.
    Offline then runs the start candidate once through LoadGen on about ``budget_s / 40`` seconds' worth of
    samples, and sizes every measurement from that run's samples/s (32 .. 100,000 samples): the probe
    alone misjudges several workers, and a loaded host. Server offers half the probed rate as its load.
    """
    from mlperf_bert.runner import probe_throughput

    be = measure.backend(start.threads, start.options)
    seconds = max(1.0, min(3.0, job.budget_s / 40))
    rate = probe_throughput(be, measure.qsl, measure.sut_config(start), seconds=seconds)["samples_per_second"]
    if job.scenario == "Server":
        qps = max(0.1, 0.5 * rate)
        duration = job.measure_s or min(30.0, max(2.0, job.budget_s / 10, min(64 / qps, job.budget_s / 6)))
        return {"probe_samples_per_second": rate, "target_qps": qps, "duration_s": duration}
    per = job.measure_s or max(2.0, job.budget_s / 16)
    if job.samples:
        return {"probe_samples_per_second": rate, "samples": job.samples}
    measure.samples = int(min(100_000, max(16, rate * max(1.0, job.budget_s / 40))))
    first = measure(start)
    loadgen_rate = first.samples_per_second if first.error is None and first.samples_per_second > 0 else rate
    return {"probe_samples_per_second": rate, "calibration_samples": measure.samples,
            "calibration_samples_per_second": loadgen_rate,
            "samples": int(min(100_000, max(32, loadgen_rate * per)))}


def write_profile(cache_dir: Path, key: ProfileKey, result: TuneResult, meta: Mapping[str, Any]) -> Path:
    """Write the profile of ``result`` (winner, start, every measurement, the noise margin and, when the
    defaults were kept, the best alternative) atomically; returns its path."""
    from mlperf_bert.fileio import write_json_atomic

    by = result.by_candidate()
    alt = result.alternative
    data = {"profile_version": PROFILE_VERSION, "key": key.to_json(), "settings": result.winner.settings(),
            "winner": {"label": result.winner.label(), "measurements": [m.to_json() for m in result.best]},
            "start": {"label": result.start.label(), "measurements": [m.to_json() for m in by[result.start]]},
            "noise_margin": round(result.margin, 4), "defaults_kept": result.defaults_kept,
            "best_alternative": None if alt is None else {
                "label": alt.label(), "settings": alt.settings(), "measurements": [m.to_json() for m in by[alt]]},
            "table": [m.to_json() for m in result.table], "elapsed_s": round(result.elapsed_s, 1),
            "stopped": result.stopped,
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **dict(meta)}
    return write_json_atomic(profile_path(cache_dir, key), data)


def save_profile(cache_dir: Path, key: ProfileKey, result: TuneResult, meta: Mapping[str, Any], *,
                 force: bool = False, say: Callable[[str], None] = lambda m: None) -> tuple[Path, str]:
    """Write ``result``'s profile without silently losing a better-measured one at the same path.

    An existing profile made from more measurements (its ``table``) than ``result`` is kept unless
    ``force``; otherwise it is replaced and its old content kept as ``<name>.prev.json`` (``PREV_SUFFIX``,
    ignored by runs). Either way ``say`` gets one line naming which profile is in force and where.

    Returns:
        ``(path of the profile in force, "written" | "replaced" | "kept")``.
    """
    from mlperf_bert.fileio import write_atomic

    path = profile_path(cache_dir, key)
    new_n = len(result.table)
    if not path.is_file():
        return write_profile(cache_dir, key, result, meta), "written"
    try:
        old_n: int | None = len(read_profile(path).data.get("table") or [])
    except DataError:
        old_n = None
    if old_n is not None and new_n < old_n and not force:
        say(f"kept the existing profile {path} ({_count(old_n)}); this search made {new_n} and was not saved "
            "(--force replaces it)")
        return path, "kept"
    prev = path.with_name(path.name[:-len(".json")] + PREV_SUFFIX)
    write_atomic(prev, path.read_bytes())
    write_profile(cache_dir, key, result, meta)
    was = "an unreadable profile" if old_n is None else f"the profile from {_count(old_n)}"
    say(f"replaced {was} at {path} with this search's ({_count(new_n)}); the old one is kept as {prev}")
    return path, "replaced"


def _count(n: int) -> str:
    return f"{n} measurement{'s' * (n != 1)}"


def tune(job: TuneJob, registry, paths, *, load_data: Callable | None = None,
         measure_factory: Callable | None = None, say: Callable[[str], None] = lambda m: None,
         progress: Callable[[int, int, float, str], None] | None = None, machine: Mapping | None = None,
         cores: int | None = None, write: bool = True) -> tuple[TuneResult, ProfileKey, Path | None]:
    """Tune ``job`` on the dev features and write the profile.

    Args:
        job: scenario, backend, fixed flags, budget.
        registry: the ``BackendRegistry``.
        paths: ``config.DataPaths`` (dataset, vocab, cache folder; profiles go under the cache folder).
        load_data: ``(DataPaths, SquadConfig, progress) -> (examples, features)`` (default: the feature cache).
        measure_factory: ``(qsl, outdir, calibration) -> measure`` (tests); default ``LoadGenMeasure``.
        say: one-line messages.
        progress: ``search``'s progress callback.
        machine, cores: overrides of the machine key and the physical cores (tests).
        write: write the profile (``save_profile``: an existing one from more measurements is kept unless
            ``job.force``); ``bench`` tunes on the spot without writing.

    Returns:
        ``(result, key, path of the profile in force or None)``; ``result.saved`` says what was done.

    Raises:
        ConfigError: a scenario other than Offline or Server.
        HarnessError subclasses from the data, the model or the backend.
    """
    import tempfile

    from mlperf_bert import machine as machine_facts
    from mlperf_bert.config import SquadConfig
    from mlperf_bert.qsl.qsl import SquadQSL
    from mlperf_bert.runner import subset_features

    if job.scenario not in ("Offline", "Server"):
        raise ConfigError(f"tune: --scenario {job.scenario}: tuning covers Offline and Server (SingleStream and "
                          "MultiStream run one query at a time in LoadGen's thread; their batching is fixed)")
    if not job.budget_s > 0:
        raise ConfigError(f"--budget-s {job.budget_s:g}: must be > 0")
    if load_data is None:
        from mlperf_bert.squad.cache import load_features as load_data
    cores = int(cores or machine_facts.physical_cores())
    spec = registry.spec(job.backend.name)
    kind = device_kind(job.backend.device)
    key = profile_key(registry, job.backend, job.scenario, say, machine=machine)
    given = {**dict(job.given), "options": {k: v for k, v in job.backend.options.items()
                                            if k in tunable_options(spec)}}
    if job.backend.threads is not None:
        given["threads"] = job.backend.threads
    grid = default_grid(job.scenario, kind, cores, given, tunable_options(spec))
    examples, features = load_data(paths, SquadConfig(), False)
    _, features = subset_features(examples, features, job.max_examples)
    load = machine_facts.sample_host_load(0.5).to_dict()
    t_start = time.monotonic()
    with SquadQSL(features) as qsl, tempfile.TemporaryDirectory(prefix="mlperf-bert-tune-") as tmp:
        if measure_factory is not None:
            measure = measure_factory(qsl, Path(tmp), grid)
            calib = getattr(measure, "calibration", {})
        else:
            measure = LoadGenMeasure(registry, job.backend, qsl, job.scenario, Path(tmp), say=say)
            calib = calibrate(job, measure, grid.start)
            measure.samples = calib.get("samples", measure.samples)
            measure.target_qps = calib.get("target_qps", measure.target_qps)
            measure.duration_s = calib.get("duration_s", measure.duration_s)
            what = (f"{measure.samples} samples per Offline run" if job.scenario == "Offline" else
                    f"Server runs of {measure.duration_s:.0f} s at {measure.target_qps:.1f} QPS")
            rate = calib.get("calibration_samples_per_second", calib["probe_samples_per_second"])
            say(f"calibration: {rate:,.1f} samples/s at the defaults; {what}; budget {job.budget_s:g} s")
        try:
            left = max(1.0, job.budget_s - (time.monotonic() - t_start))  # the calibration counts too
            result = search(grid, measure, job.scenario, left, progress=progress)
        finally:
            close = getattr(measure, "close", None)
            if callable(close):
                close()
    meta = {"budget_s": job.budget_s, "scenario": job.scenario, "calibration": calib, "host_load": load,
            "dev_features": len(features), "physical_cores": cores, "device_kind": kind,
            "versions": machine_facts.package_versions()}
    if result.defaults_kept:
        say(result.defaults_kept)
    path = None
    if write:
        path, result.saved = save_profile(paths.cache_dir, key, result, meta, force=job.force, say=say)
    return result, key, path
