"""Synthetic submission trees for the checker tests (no tests here; no LoadGen, no ../shared, no model).

``build_tree(base, layout)`` writes a tree that passes the official checker of ``layout`` (``v1.0`` or
``current``) as docs/submission.md describes it: LoadGen-shaped ``:::MLLOG`` detail logs with the
keys the checks read, a truncated accuracy log with its full log beside the tree, accuracy.txt with the
official F1 line and ``hash=``, measurements, systems JSON, compliance folders. Tests then plant one fault
each and look for the finding.
"""

from __future__ import annotations

import json
from pathlib import Path

from mlperf_bert.logs.truncate import truncate_accuracy_log, write_accuracy_txt
from mlperf_bert.submission.checker import TEST01_RNG_SEED, TEST01_SAMPLING_TARGET, TEST05_SEEDS
from mlperf_bert.submission.system import IMPLEMENTATION_FIELDS, SYSTEM_FIELDS
from mlperf_bert.submission.versions import SEEDS

SUB = "closed/acme"
SYSTEM = "box"
SCENARIOS = ("Offline", "SingleStream")


def mllog_line(key: str, value, error: bool = False) -> str:
    entry = {"key": key, "value": value, "time_ms": 1.0, "namespace": "mlperf::logging",
             "event_type": "POINT_IN_TIME",
             "metadata": {"is_error": error, "is_warning": False, "file": "loadgen.cc", "line_no": 1, "pid": 1,
                          "tid": 1}}
    return ":::MLLOG " + json.dumps(entry)


def write_detail(path: Path, values: dict, errors=()) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [mllog_line("loadgen_version", "6.0.17 @ synthetic")]
    lines += [mllog_line(k, v) for k, v in values.items()]
    lines += [mllog_line("error_runtime", e, error=True) for e in errors]
    path.write_text("\n".join(lines) + "\n")


def perf_values(layout: str, scenario: str, seeds=None, **over) -> dict:
    """A VALID performance run that meets every rule of ``layout``."""
    qsl, idx, sched = seeds or SEEDS[layout]
    v = {"effective_scenario": scenario, "effective_test_mode": "PerformanceOnly",
         "effective_qsl_rng_seed": qsl, "effective_sample_index_rng_seed": idx, "effective_schedule_rng_seed": sched,
         "effective_performance_sample_count": 10833, "effective_min_duration_ms": 600000,
         "effective_min_query_count": 1024 if scenario == "SingleStream" else 1,
         "effective_samples_per_query": 24576 if scenario == "Offline" else 1,
         "result_validity": "VALID", "early_stopping_met": True,
         "early_stopping_result": "Processed 70000 queries; early stopping satisfied",
         "result_samples_per_second": 120.5 if scenario == "Offline" else 200.0,
         "result_90.00_percentile_latency_ns": 5_000_000, "result_99.00_percentile_latency_ns": 6_000_000,
         "early_stopping_latency_ss": 5_100_000}
    v.update(over)
    return v


def acc_values(**over) -> dict:
    v = {"effective_scenario": "Offline", "effective_test_mode": "AccuracyOnly", "qsl_reported_total_count": 10833,
         "effective_accuracy_sample_count": 10833}
    v.update(over)
    return v


def full_accuracy_log(n: int = 120) -> bytes:
    """A LoadGen-shaped mlperf_log_accuracy.json above 10 KiB (so it gets truncated)."""
    rows = [json.dumps({"seq_id": i, "qsl_idx": i, "data": "00" * 64}) for i in range(n)]
    return ("[\n" + ",\n".join(rows) + "\n]\n").encode()


def system_json(layout: str, **over) -> dict:
    d = {k: "N/A" for k in SYSTEM_FIELDS[layout]}
    d.update({"division": "closed", "submitter": "acme", "status": "available", "system_name": SYSTEM,
              "system_type": "edge", "number_of_nodes": 1, "host_processor_model_name": "Test CPU",
              "host_processors_per_node": 1, "host_processor_core_count": 8, "host_memory_capacity": "64 GiB",
              "host_memory_configuration": "4x 16 GB DDR5", "host_storage_capacity": "1 TB",
              "host_storage_type": "NVMe SSD", "host_networking": "eth0 (ixgbe 10 Gb/s)",
              "host_networking_topology": "N/A (single node)", "accelerators_per_node": "0", "cooling": "air",
              "framework": "ONNX Runtime 1.20", "operating_system": "Linux", "other_software_stack": "Python 3.11",
              "hw_notes": "", "sw_notes": ""})
    if layout == "current":
        d.update({"host_network_card_count": "1", "system_type_detail": ""})
    d.update(over)
    return d


def _write_accuracy(root: Path, acc: Path, f1_line: str = '{"exact_match": 84.0, "f1": 90.5}') -> None:
    full = root.with_name(root.name + ".accuracy-logs") / acc.relative_to(root) / "mlperf_log_accuracy.json"
    full.parent.mkdir(parents=True, exist_ok=True)
    full.write_bytes(full_accuracy_log())
    t = truncate_accuracy_log(full, acc / "mlperf_log_accuracy.json")
    write_accuracy_txt(acc / "accuracy.txt", f1_line, t.sha256)


def _verify(tdir: Path, passed: bool = True) -> None:
    tdir.mkdir(parents=True, exist_ok=True)
    (tdir / "verify_accuracy.txt").write_text("num_perf_log_data_mismatch = 0\nTEST PASS\n")
    (tdir / "verify_performance.txt").write_text("deviation = +1.00% (allowed 10%)\n"
                                                 + ("TEST PASS\n" if passed else "TEST FAIL\n"))


def build_tree(base: Path, layout: str) -> Path:
    """A two-scenario (edge: Offline + SingleStream) bert-99 tree in ``layout`` that passes its checker."""
    root = base / f"tree-{layout}"
    sub = root / SUB
    (sub / "systems").mkdir(parents=True)
    (sub / "systems" / f"{SYSTEM}.json").write_text(json.dumps(system_json(layout), indent=2))
    impl = {k: v for k, v in zip(IMPLEMENTATION_FIELDS, ("int32", "No", "model.onnx", "fp32", "none"))}
    for sc in SCENARIOS:
        res = sub / "results" / SYSTEM / "bert-99" / sc
        acc = res / "accuracy"
        write_detail(acc / "mlperf_log_detail.txt", acc_values(effective_scenario=sc))
        (acc / "mlperf_log_summary.txt").write_text("SUT name : synthetic\nResult is : VALID\n")
        _write_accuracy(root, acc)
        perf = res / "performance" / "run_1"
        write_detail(perf / "mlperf_log_detail.txt", perf_values(layout, sc))
        (perf / "mlperf_log_summary.txt").write_text("Result is : VALID\n")
        if layout == "current":
            (res / "measurements.json").write_text(json.dumps(impl))
            (res / "user.conf").write_text("# user.conf\n")
            (res / "README.md").write_text("# how to reproduce\n")
            t01 = res / "TEST01"
            _verify(t01)
            t01acc = t01 / "accuracy"
            t01acc.mkdir(parents=True)
            _write_accuracy(root, t01acc)
            write_detail(t01 / "performance" / "run_1" / "mlperf_log_detail.txt",
                         perf_values(layout, sc, effective_accuracy_log_sampling_target=TEST01_SAMPLING_TARGET,
                                     effective_accuracy_log_rng_seed=TEST01_RNG_SEED))
            (t01 / "performance" / "run_1" / "mlperf_log_summary.txt").write_text("Result is : VALID\n")
        else:
            meas = sub / "measurements" / SYSTEM / "bert-99" / sc
            meas.mkdir(parents=True)
            for name in ("mlperf.conf", "user.conf", "README.md"):
                (meas / name).write_text(f"# {name}\n")
            (meas / f"{SYSTEM}_mlperf-bert_{sc}.json").write_text(json.dumps(impl))
            comp = sub / "compliance" / SYSTEM / "bert-99" / sc
            for test, extra in (("TEST01", {"effective_accuracy_log_sampling_target": TEST01_SAMPLING_TARGET,
                                            "effective_accuracy_log_rng_seed": TEST01_RNG_SEED}), ("TEST05", {})):
                tdir = comp / test
                _verify(tdir)
                seeds = TEST05_SEEDS if test == "TEST05" else None
                write_detail(tdir / "performance" / "run_1" / "mlperf_log_detail.txt",
                             perf_values(layout, sc, seeds=seeds, **extra))
                (tdir / "performance" / "run_1" / "mlperf_log_summary.txt").write_text("Result is : VALID\n")
                if test == "TEST01":
                    (tdir / "accuracy").mkdir()
                    (tdir / "accuracy" / "accuracy.txt").write_text('{"exact_match": 84.0, "f1": 90.5}\n')
                    (tdir / "accuracy" / "mlperf_log_accuracy.json").write_text("[]\n")
    if layout == "current":
        (sub / "src").mkdir()
        (sub / "src" / "README.md").write_text("# source\n")
        (sub / "documentation").mkdir()
        (sub / "documentation" / "calibration.md").write_text("# no calibration\n")
    else:
        (sub / "code" / "bert-99" / "mlperf-bert").mkdir(parents=True)
        (sub / "code" / "bert-99" / "mlperf-bert" / "README.md").write_text("# code\n")
    return root


def edit_detail(path: Path, **values) -> None:
    """Set keys of a synthetic detail log (added when absent)."""
    lines = path.read_text().splitlines()
    seen = set()
    for i, line in enumerate(lines):
        entry = json.loads(line[len(":::MLLOG "):])
        if entry["key"] in values:
            entry["value"] = values[entry["key"]]
            seen.add(entry["key"])
            lines[i] = ":::MLLOG " + json.dumps(entry)
    lines += [mllog_line(k, v) for k, v in values.items() if k not in seen]
    path.write_text("\n".join(lines) + "\n")
