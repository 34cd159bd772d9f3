"""The system description (``systems/<system>.json``) and the measurements JSON of a submission.

Field lists are the official checkers' (docs/submission.md#system-description): every v1.0 field, plus
``host_network_card_count`` and ``system_type_detail`` for the current (v6.1) checker, which also wants every
"meaningful" field truthy. What this machine can tell comes from ``mlperf_bert.machine``; a fact it cannot
tell stays empty for the user to give with ``--system-json`` (``missing_fields`` lists them), never guessed.
CPU-only systems get ``accelerators_per_node: "0"`` (a string: 0 is falsy, and v6.1's CSV export applies
``int()``) and ``"N/A"`` for the accelerator fields.
"""

from __future__ import annotations

from typing import Any

from mlperf_bert.machine import MachineFacts, size_text

#: v1.0 checker: required in every systems/<system>.json (``SYSTEM_DESC_REQUIRED_FIELDS`` + since v1.0).
SYSTEM_DESC_REQUIRED_FIELDS = (
    "division", "submitter", "status", "system_name", "number_of_nodes", "host_processor_model_name",
    "host_processors_per_node", "host_processor_core_count", "host_memory_capacity", "host_storage_capacity",
    "host_storage_type", "accelerators_per_node", "accelerator_model_name", "accelerator_memory_capacity",
    "framework", "operating_system",
)
SYSTEM_DESC_REQUIRED_FIELDS_SINCE_V1 = (
    "system_type", "other_software_stack", "host_processor_frequency", "host_processor_caches",
    "host_memory_configuration", "host_processor_interconnect", "host_networking", "host_networking_topology",
    "accelerator_frequency", "accelerator_host_interconnect", "accelerator_interconnect",
    "accelerator_interconnect_topology", "accelerator_memory_configuration", "accelerator_on-chip_memories",
    "cooling", "hw_notes", "sw_notes",
)
ALL_SYSTEM_FIELDS = SYSTEM_DESC_REQUIRED_FIELDS + SYSTEM_DESC_REQUIRED_FIELDS_SINCE_V1
#: v6.1 also requires these two (v1.0 warns that they are unknown fields).
V6_1_EXTRA_FIELDS = ("host_network_card_count", "system_type_detail")
#: Required keys per layout.
SYSTEM_FIELDS = {"v1.0": ALL_SYSTEM_FIELDS, "current": ALL_SYSTEM_FIELDS + V6_1_EXTRA_FIELDS}
#: v6.1 ``system_check.py``: these must be truthy ("", 0, null and false fail).
MEANINGFUL_FIELDS = (
    "division", "submitter", "system_type", "status", "system_name", "number_of_nodes",
    "host_processor_model_name", "host_processors_per_node", "host_processor_core_count", "host_memory_capacity",
    "host_memory_configuration", "host_storage_capacity", "host_storage_type", "host_networking",
    "host_network_card_count", "host_networking_topology", "accelerators_per_node", "accelerator_model_name",
    "accelerator_memory_capacity", "accelerator_host_interconnect", "accelerator_memory_configuration",
    "accelerator_interconnect", "cooling", "framework", "operating_system", "other_software_stack",
)
#: Fields v6.1's results.py turns into ``int()``.
INT_FIELDS = ("number_of_nodes", "accelerators_per_node")
#: The measurements JSON's required fields (``SYSTEM_IMP_REQUIRED_FILES``, both versions).
IMPLEMENTATION_FIELDS = ("input_data_types", "retraining", "starting_weights_filename", "weight_data_types",
                         "weight_transformations")
#: Accepted ``status`` values (lower-cased) and divisions.
VALID_STATUS = ("available", "preview", "rdi")
VALID_SYSTEM_TYPES = ("datacenter", "edge", "datacenter,edge", "edge,datacenter")
DIVISIONS = ("closed", "open")

_ACCELERATOR_FIELDS = ("accelerator_model_name", "accelerator_frequency", "accelerator_host_interconnect",
                       "accelerator_interconnect", "accelerator_interconnect_topology",
                       "accelerator_memory_capacity", "accelerator_memory_configuration",
                       "accelerator_on-chip_memories")


def software_stack(versions: dict) -> str:
    """``other_software_stack``: Python, mlperf-bert, LoadGen and the libraries a run used."""
    parts = [f"Python {versions['python']}" if versions.get("python") else None,
             f"mlperf-bert {versions['mlperf_bert']}" if versions.get("mlperf_bert") else None,
             f"MLPerf LoadGen {versions['mlcommons-loadgen']}" if versions.get("mlcommons-loadgen") else None]
    parts += [f"{k} {v}" for k, v in versions.items()
              if k not in ("python", "mlperf_bert", "mlcommons-loadgen")]
    return ", ".join(p for p in parts if p)


def system_description(*, facts: MachineFacts, submitter: str, division: str, system_name: str, framework: str,
                       versions: dict, system_type: str, layout: str = "current", accelerator_used: bool = False,
                       cluster: dict | None = None, overrides: dict | None = None) -> dict[str, Any]:
    """A systems/<system>.json with every field of ``layout``'s checker, filled from ``facts``.

    Args:
        facts: what ``machine.read_machine`` found.
        submitter, division, system_name: as in the submission tree.
        framework: the runs' framework and version, as run.json's ``backend.framework`` records it (the
            backend's spec names it, e.g. ``ONNX Runtime 1.32.0``).
        versions: run.json ``versions`` (package -> version).
        system_type: ``datacenter``, ``edge`` or ``datacenter,edge``.
        layout: ``v1.0`` or ``current`` (current adds ``host_network_card_count``, ``system_type_detail``).
        accelerator_used: the runs ran on an accelerator (its count and model are then described; else
            ``"0"`` and ``"N/A"``).
        cluster: run.json ``cluster`` of runs made with ``--replicas`` (Ray): ``number_of_nodes`` is the nodes
            that hosted replicas, ``sw_notes`` names Ray and the replicas, and a multi-node system's
            ``host_networking_topology`` is left for the user (the host fields describe this machine).
        overrides: user-given fields (``--system-json``); they win over everything filled in here.

    Returns:
        The JSON object, required fields first in the checker's order; a fact that is unknown is ``""``.
    """
    cpu, mem, disk = facts.cpu, facts.memory, facts.storage
    cards = facts.network
    desc: dict[str, Any] = {
        "division": division,
        "submitter": submitter,
        "status": "available",
        "system_name": system_name,
        "system_type": system_type,
        "number_of_nodes": 1,
        "host_processor_model_name": cpu.model,
        "host_processors_per_node": cpu.sockets,
        "host_processor_core_count": cpu.cores_per_socket,
        "host_processor_frequency": f"{cpu.max_mhz:.0f} MHz" if cpu.max_mhz else None,
        "host_processor_caches": cpu.caches_text(),
        "host_processor_interconnect": "N/A (1 socket)" if cpu.sockets == 1 else None,
        "host_memory_capacity": size_text(mem.capacity_bytes, "GiB"),
        "host_memory_configuration": mem.configuration,
        "host_storage_capacity": size_text(disk.capacity_bytes),
        "host_storage_type": disk.kind,
        "host_networking": ", ".join(c.text() for c in cards) if cards else None,
        "host_network_card_count": str(len(cards)),
        "host_networking_topology": "N/A (single node)",
        "framework": framework,
        "operating_system": facts.operating_system,
        "other_software_stack": software_stack(versions),
        "cooling": None,
        "hw_notes": "; ".join(x for x in (
            f"{cpu.threads} logical CPUs" if cpu.threads else "",
            f"storage device {disk.device}" if disk.device else "",
            "virtual machine (hypervisor flag set)" if cpu.hypervisor else "") if x) or None,
        "sw_notes": "harness: mlperf-bert (one SUT for all scenarios, length-sorted token-budget batching)",
        "system_type_detail": None,
    }
    accs = facts.accelerators
    if accelerator_used and accs:
        models = sorted({a.model for a in accs})
        mems = sorted({size_text(a.memory_bytes, "GiB") for a in accs if a.memory_bytes})
        desc.update({"accelerators_per_node": len(accs), "accelerator_model_name": ", ".join(models),
                     "accelerator_memory_capacity": ", ".join(mems) or None})
        desc.update({k: None for k in _ACCELERATOR_FIELDS if k not in desc})
    else:
        desc["accelerators_per_node"] = "0"
        desc.update({k: "N/A" for k in _ACCELERATOR_FIELDS})
    if cluster:
        per = cluster.get("per_replica", {})
        desc["number_of_nodes"] = int(cluster.get("nodes") or 1)
        desc["sw_notes"] += (f"; Ray {cluster.get('ray_version', '?')}: LoadGen, QSL and batching in one driver "
                             f"process, {cluster.get('replicas')} backend replica(s) on {desc['number_of_nodes']} "
                             f"node(s), {per.get('cpus', 0):g} CPU / {per.get('gpus', 0):g} GPU / "
                             f"{per.get('threads', '?')} thread(s) each")
        if desc["number_of_nodes"] > 1:
            desc["host_networking_topology"] = None
            desc["hw_notes"] = "; ".join(x for x in (desc["hw_notes"], "host fields describe the node that ran "
                                                     "LoadGen") if x)
    desc.update(overrides or {})
    fields = SYSTEM_FIELDS[layout]
    out = {k: ("" if desc.get(k) is None else desc[k]) for k in fields}
    extra = {k: v for k, v in desc.items() if k not in out and k not in V6_1_EXTRA_FIELDS}
    if layout == "v1.0":  # v1.0 warns about the v6.1-only fields: keep them only when the user gave them
        extra.update({k: v for k, v in (overrides or {}).items() if k in V6_1_EXTRA_FIELDS})
    return out | extra


def missing_fields(desc: dict, layout: str) -> list[tuple[str, bool]]:
    """Required fields of ``layout`` that are missing or empty, each with whether that checker FAILs on it.

    v1.0 only needs the key; v6.1 also needs the ``MEANINGFUL_FIELDS`` truthy. Returns ``(field, fails)``
    in the checker's field order.
    """
    out = []
    for k in SYSTEM_FIELDS[layout]:
        if k not in desc:
            out.append((k, True))
        elif desc[k] in ("", None, 0, False) and not (k == "accelerators_per_node" and desc[k] == 0
                                                      and layout == "v1.0"):
            out.append((k, layout == "current" and k in MEANINGFUL_FIELDS))
    return out


def implementation_json(*, model_label: str, precision: str, backend: str, input_dtype: str = "int32",
                        transformations: str | None = None, overrides: dict | None = None) -> dict[str, str]:
    """The measurements JSON (v1.0 ``<system>_<impl>_<scenario>.json``, current ``measurements.json``).

    Args:
        model_label: ``starting_weights_filename``: the official file name, or ``<folder>/<file>`` for
            another model (``check --rules quick`` looks its reference F1 up from it).
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
