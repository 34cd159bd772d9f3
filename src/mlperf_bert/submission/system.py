"""The system description (``systems/<system>.json``) and implementation JSON of a submission.

Field lists are the MLPerf v1.0 submission checker's: ``SYSTEM_DESC_REQUIRED_FIELDS`` (+ the fields
required since v1.0) and the five implementation fields (``SYSTEM_IMP_REQUIRED_FILES``). What this machine
can tell (CPU model, sockets, cores, frequency, caches, memory, disk, OS, framework versions) is filled
in; the rest is ``""`` for the user to override (``--system-json``), never guessed.
"""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path
from typing import Any

#: v1.0 checker: required in every systems/<system>.json.
SYSTEM_DESC_REQUIRED_FIELDS = (
    "division", "submitter", "status", "system_name", "number_of_nodes", "host_processor_model_name",
    "host_processors_per_node", "host_processor_core_count", "host_memory_capacity", "host_storage_capacity",
    "host_storage_type", "accelerators_per_node", "accelerator_model_name", "accelerator_memory_capacity",
    "framework", "operating_system",
)
#: v1.0 checker: also required from v1.0 on.
SYSTEM_DESC_REQUIRED_FIELDS_SINCE_V1 = (
    "system_type", "other_software_stack", "host_processor_frequency", "host_processor_caches",
    "host_memory_configuration", "host_processor_interconnect", "host_networking", "host_networking_topology",
    "accelerator_frequency", "accelerator_host_interconnect", "accelerator_interconnect",
    "accelerator_interconnect_topology", "accelerator_memory_configuration", "accelerator_on-chip_memories",
    "cooling", "hw_notes", "sw_notes",
)
ALL_SYSTEM_FIELDS = SYSTEM_DESC_REQUIRED_FIELDS + SYSTEM_DESC_REQUIRED_FIELDS_SINCE_V1
#: v1.0 checker: the implementation JSON's required fields.
IMPLEMENTATION_FIELDS = ("input_data_types", "retraining", "starting_weights_filename", "weight_data_types",
                         "weight_transformations")
#: v1.0 checker: accepted ``status`` and ``system_type`` values and divisions.
VALID_STATUS = ("available", "preview", "rdi")
VALID_SYSTEM_TYPES = ("datacenter", "edge", "datacenter,edge", "edge,datacenter")
DIVISIONS = ("closed", "open")

#: Human name of each backend's framework, and the package whose version goes with it.
FRAMEWORKS = {"onnxruntime": ("ONNX Runtime", "onnxruntime"), "pytorch": ("PyTorch", "torch"),
              "tensorflow": ("TensorFlow", "tensorflow"), "null": ("none (null backend)", None)}


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def cpu_facts() -> dict[str, Any]:
    """CPU model, sockets, physical cores, max frequency (MHz) and cache sizes from /proc and /sys (Linux)."""
    model, sockets, cores_per_socket, mhz = "", set(), None, None
    for line in _read("/proc/cpuinfo").splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "model name" and not model:
            model = value
        elif key == "physical id":
            sockets.add(value)
        elif key == "cpu cores" and cores_per_socket is None:
            cores_per_socket = int(value)
        elif key == "cpu MHz" and mhz is None:
            mhz = float(value)
    max_khz = _read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").strip()
    if max_khz.isdigit():
        mhz = int(max_khz) / 1000
    n_sockets = max(1, len(sockets))
    caches = []
    for idx in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        level, kind, size = (_read(str(idx / f)).strip() for f in ("level", "type", "size"))
        if level and size:
            caches.append(f"L{level}{'d' if kind == 'Data' else 'i' if kind == 'Instruction' else ''} {size}")
    return {
        "model": model or platform.processor() or "unknown",
        "sockets": n_sockets,
        "cores": (cores_per_socket * n_sockets) if cores_per_socket else (os.cpu_count() or 1),
        "logical_cpus": os.cpu_count() or 1,
        "mhz": round(mhz) if mhz else None,
        "caches": ", ".join(caches),
    }


def memory_gb() -> float | None:
    """Installed memory in GB (MemTotal of /proc/meminfo, 10^9 bytes), or None."""
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal"):
            return round(int(line.split()[1]) * 1024 / 1e9, 1)
    return None


def _os_name() -> str:
    pretty = ""
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            pretty = line.split("=", 1)[1].strip().strip('"')
    return f"{pretty or platform.system()} (kernel {platform.release()})"


def framework_name(backend: str, versions: dict) -> str:
    """e.g. ``ONNX Runtime 1.20.1`` for backend ``onnxruntime`` given run.json's ``versions``."""
    name, pkg = FRAMEWORKS.get(backend, (backend, backend))
    version = versions.get(pkg) or versions.get(f"{pkg}-cpu") if pkg else None
    return f"{name} {version}" if version else name


def system_description(*, submitter: str, division: str, system_name: str, backend: str, versions: dict,
                       system_type: str, overrides: dict | None = None) -> dict[str, Any]:
    """A systems/<system>.json with every v1.0 field, filled from this machine where it can tell.

    Args:
        submitter, division, system_name: as in the submission tree.
        backend: the runs' backend name (picks ``framework``).
        versions: run.json ``versions`` (package -> version).
        system_type: ``datacenter``, ``edge`` or ``datacenter,edge``.
        overrides: user-given fields; they win over everything filled in here.
    """
    cpu = cpu_facts()
    mem = memory_gb()
    disk = shutil.disk_usage("/").total / 1e9
    other = [f"Python {versions.get('python', platform.python_version())}",
             f"mlperf-bert {versions.get('mlperf_bert', '?')}",
             f"MLPerf LoadGen {versions.get('mlcommons-loadgen', '?')}"]
    other += [f"{k} {v}" for k, v in versions.items() if k in ("numpy", "tokenizers", "transformers")]
    desc: dict[str, Any] = {
        "division": division,
        "submitter": submitter,
        "status": "available",
        "system_name": system_name,
        "system_type": system_type,
        "number_of_nodes": 1,
        "host_processor_model_name": cpu["model"],
        "host_processors_per_node": cpu["sockets"],
        "host_processor_core_count": cpu["cores"],
        "host_processor_frequency": f"{cpu['mhz']} MHz" if cpu["mhz"] else "",
        "host_processor_caches": cpu["caches"],
        "host_processor_interconnect": "",
        "host_memory_capacity": f"{mem:g} GB" if mem else "",
        "host_memory_configuration": "",
        "host_storage_capacity": f"{disk:.0f} GB",
        "host_storage_type": "",
        "host_networking": "",
        "host_networking_topology": "",
        "accelerators_per_node": 0,
        "accelerator_model_name": "N/A",
        "accelerator_frequency": "N/A",
        "accelerator_host_interconnect": "N/A",
        "accelerator_interconnect": "N/A",
        "accelerator_interconnect_topology": "N/A",
        "accelerator_memory_capacity": "N/A",
        "accelerator_memory_configuration": "N/A",
        "accelerator_on-chip_memories": "N/A",
        "framework": framework_name(backend, versions),
        "operating_system": _os_name(),
        "other_software_stack": ", ".join(other),
        "cooling": "",
        "hw_notes": f"{cpu['logical_cpus']} logical CPUs",
        "sw_notes": "harness: mlperf-bert (one SUT for all scenarios, length-sorted token-budget batching)",
    }
    desc.update(overrides or {})
    return {k: desc[k] for k in ALL_SYSTEM_FIELDS} | {k: v for k, v in desc.items() if k not in ALL_SYSTEM_FIELDS}


def implementation_json(*, model_label: str, precision: str, backend: str, input_dtype: str = "int32",
                        transformations: str | None = None, overrides: dict | None = None) -> dict[str, str]:
    """The measurements' ``<system>_<impl>_<scenario>.json`` with the five v1.0 fields.

    Args:
        model_label: ``starting_weights_filename``: the official file name, or ``<folder>/<file>`` for
            another model (the checker looks the reference F1 up from it).
        precision: weight data type (``fp32``, ``int8``, ``bf16`` ...).
        backend: runtime name, used to describe the weight transformation.
        input_dtype: dtype of the token arrays given to the model.
        transformations: override for ``weight_transformations``.
    """
    if transformations is None:
        transformations = ("ONNX export of the PyTorch weights (mlperf-bert convert.to_onnx), no other change"
                           if backend == "onnxruntime" and not model_label.endswith(".onnx") else "none")
    out = {
        "input_data_types": input_dtype,
        "retraining": "No",
        "starting_weights_filename": model_label,
        "weight_data_types": precision,
        "weight_transformations": transformations,
    }
    out.update(overrides or {})
    return out
