"""The checker against each official version's rules (docs/submission.md): planted faults on synthetic
trees, one per rule family, for both v1.0 and current, with the FAIL/LOG level each version gives them."""

from __future__ import annotations

import json
import shutil

import pytest

from mlperf_bert.cli import main as cli_main
from mlperf_bert.errors import ConfigError
from mlperf_bert.submission.checker import check_submission, detect_layout
from subtree import SUB, SYSTEM, build_tree, edit_detail, write_detail

R = f"{SUB}/results/{SYSTEM}/bert-99"
OFF, SS = f"{R}/Offline", f"{R}/SingleStream"


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    base = tmp_path_factory.mktemp("synthetic")
    return {layout: build_tree(base, layout) for layout in ("v1.0", "current")}


def _copy(trees, layout, tmp_path):
    src = trees[layout]
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    shutil.copytree(src.with_name(src.name + ".accuracy-logs"), dst.with_name(dst.name + ".accuracy-logs"))
    return dst


@pytest.mark.parametrize("layout", ["v1.0", "current"])
def test_synthetic_tree_passes_its_version(trees, layout):
    rep = check_submission(trees[layout], layout)
    assert detect_layout(trees[layout]) == layout
    assert rep.passed and rep.failures == [] and rep.logs == [], [str(f) for f in rep.failures + rep.logs]
    assert [(r.scenario, r.f1, r.ok) for r in rep.results] == [("Offline", 90.5, True), ("SingleStream", 90.5, True)]
    metric = {r.scenario: r.metric for r in rep.results}
    assert metric["Offline"] == "120.500 samples/s"
    # SingleStream: v6.1 reports early_stopping_latency_ss, v1.0 the 90th percentile
    assert metric["SingleStream"] == ("5.100 ms" if layout == "current" else "5.000 ms (p90)")


def test_each_tree_fails_the_other_version_on_layout(trees):
    for layout, other in (("v1.0", "current"), ("current", "v1.0")):
        rep = check_submission(trees[layout], other)
        assert not rep.passed
        assert rep.failures[0].message.startswith(f"this tree has the {layout} layout, checked against {other}")


def _sys(root, **fields):
    path = root / SUB / "systems" / f"{SYSTEM}.json"
    data = json.loads(path.read_text())
    for k, v in fields.items():
        if v is KeyError:
            del data[k]
        else:
            data[k] = v
    path.write_text(json.dumps(data))


def _perf(root, sc="Offline", **values):
    edit_detail(root / R / sc / "performance" / "run_1" / "mlperf_log_detail.txt", **values)


# Each plant edits a good tree and returns {layout: (level, family, path suffix, message fragment) or None}.
def plant_layout(root, layout):
    if layout == "current":
        shutil.rmtree(root / SUB / "src")
        return ("fail", "layout", f"{SUB}/src", "src/ folder is missing")
    shutil.rmtree(root / SUB / "measurements" / SYSTEM / "bert-99" / "Offline")
    return ("fail", "measurements", f"{SUB}/measurements/{SYSTEM}/bert-99/Offline", "measurements folder is missing")


def plant_measurements_file(root, layout):
    if layout == "current":
        (root / OFF / "user.conf").write_text("")
        return ("fail", "measurements", f"{OFF}/user.conf", "is empty")
    (root / SUB / "measurements" / SYSTEM / "bert-99" / "Offline" / "user.conf").unlink()
    return ("log", "measurements", "Offline/user.conf", "required file is missing")


def plant_scenario_missing(root, layout):
    shutil.rmtree(root / SS)
    if layout == "v1.0":
        shutil.rmtree(root / SUB / "measurements" / SYSTEM / "bert-99" / "SingleStream")
    return ("fail", "scenarios", SS, "scenario SingleStream is required for a edge system")


def plant_scenario_unknown(root, layout):
    shutil.copytree(root / OFF, root / R / "Server")
    return ("fail", "scenarios", f"{R}/Server", "scenario Server is neither required nor optional for edge")


def plant_datacenter(root, layout):
    _sys(root, system_type="datacenter")
    if layout == "current":
        return ("fail", "scenarios", R, "bert is not in v6.1's datacenter lists")
    return ("fail", "scenarios", SS, "scenario SingleStream is neither required nor optional for datacenter")


def plant_system_field_empty(root, layout):
    _sys(root, host_memory_configuration="")
    # v1.0 only needs the key; v6.1 needs a meaningful value
    return ("fail", "system", "systems/box.json", "field 'host_memory_configuration' is empty") \
        if layout == "current" else None


def plant_system_field_missing(root, layout):
    _sys(root, cooling=KeyError)
    return ("fail", "system", "systems/box.json", "field 'cooling' is missing")


def plant_accelerators_zero(root, layout):
    _sys(root, accelerators_per_node=0)
    return ("fail", "system", "systems/box.json", "field 'accelerators_per_node' is empty") \
        if layout == "current" else None


def plant_status(root, layout):
    _sys(root, status="soon")
    return ("fail", "system", "systems/box.json", "status 'soon' is not one of available, preview, rdi")


def plant_division_case(root, layout):
    _sys(root, division="Closed")  # v6.1 compares ignoring case, v1.0 exactly
    return ("fail", "system", "systems/box.json", "division is 'Closed'") if layout == "v1.0" else None


def plant_seed(root, layout):
    _perf(root, effective_qsl_rng_seed=12345)
    return ("fail" if layout == "current" else "log", "seeds", "Offline/performance/run_1/mlperf_log_detail.txt",
            "seeds (qsl, sample_index, schedule) are (12345,")


def plant_duration(root, layout):
    _perf(root, effective_min_duration_ms=10_000)
    return ("fail" if layout == "current" else "log", "duration", "Offline/performance/run_1/mlperf_log_detail.txt",
            "min duration is 10 s, must be >= 600 s")


def plant_performance_sample_count(root, layout):
    _perf(root, effective_performance_sample_count=200)
    return ("fail", "counts", "Offline/performance/run_1/mlperf_log_detail.txt",
            "performance_sample_count is 200, must be >= 10,833")


def plant_offline_samples(root, layout):
    _perf(root, effective_samples_per_query=5000)
    need = "10,833" if layout == "current" else "24,576"
    return ("fail" if layout == "current" else "log", "counts", "Offline/performance/run_1/mlperf_log_detail.txt",
            f"Offline query has 5,000 samples, {'v6.1' if layout == 'current' else 'v1.0.1'} needs >= {need}")


def plant_singlestream_queries(root, layout):
    _perf(root, "SingleStream", effective_min_query_count=100, early_stopping_met=False)
    if layout == "current":  # early stopping instead of a query count
        return ("fail", "early-stopping", "SingleStream/performance/run_1/mlperf_log_detail.txt",
                "early stopping not met")
    return ("log", "counts", "SingleStream/performance/run_1/mlperf_log_detail.txt",
            "min query count is 100, v1.0.1 needs >= 1,024 for SingleStream")


def plant_invalid(root, layout):
    _perf(root, result_validity="INVALID")
    if layout == "current":
        return ("note", "validity", "Offline/performance/run_1/mlperf_log_detail.txt", "never fails on it")
    return ("fail", "validity", "Offline/performance/run_1/mlperf_log_detail.txt", "LoadGen result is INVALID")


def plant_error_accuracy_log(root, layout):
    det = root / OFF / "accuracy" / "mlperf_log_detail.txt"
    write_detail(det, {"effective_scenario": "Offline", "effective_test_mode": "AccuracyOnly",
                       "qsl_reported_total_count": 10833}, errors=["planted failure"])
    return ("fail", "error", "Offline/accuracy/mlperf_log_detail.txt", "LoadGen logged 1 ERROR(s): planted failure")


def plant_error_performance_log(root, layout):
    det = root / OFF / "performance" / "run_1" / "mlperf_log_detail.txt"
    det.write_text(det.read_text() + json_error_line("planted") + "\n")
    if layout == "current":  # v6.1 flags these only with --submission-exceptions
        return ("note", "error", "Offline/performance/run_1/mlperf_log_detail.txt", "LoadGen logged 1 ERROR(s)")
    return ("fail", "error", "Offline/performance/run_1/mlperf_log_detail.txt", "LoadGen logged 1 ERROR(s): planted")


def json_error_line(value):
    from subtree import mllog_line

    return mllog_line("error_runtime", value, error=True)


def plant_hash_mismatch(root, layout):
    txt = root / OFF / "accuracy" / "accuracy.txt"
    first = txt.read_text().splitlines()[0]
    txt.write_text(first + "\nhash=" + "0" * 64 + "\n")
    return ("fail", "hash", "Offline/accuracy/mlperf_log_accuracy.json", "hash=0000000000000000... in accuracy.txt")


def plant_hash_missing(root, layout):
    txt = root / OFF / "accuracy" / "accuracy.txt"
    lines = txt.read_text().splitlines()
    txt.write_text(lines[0] + "\n" + " " + lines[1] + "\n")  # not alone on its line: the pattern misses it
    return ("fail", "hash", "Offline/accuracy/accuracy.txt", "no hash= line on its own line")


def plant_f1_single_quotes(root, layout):
    txt = root / OFF / "accuracy" / "accuracy.txt"
    lines = txt.read_text().splitlines()
    txt.write_text("{'exact_match': 84.0, 'f1': 90.5}\n" + lines[1] + "\n")
    # v6.1's pattern accepts single quotes; v1.0's only double quotes
    return ("fail", "accuracy-format", "Offline/accuracy/accuracy.txt", "no double-quoted evaluator line") \
        if layout == "v1.0" else None


def plant_f1_below_target(root, layout):
    txt = root / OFF / "accuracy" / "accuracy.txt"
    lines = txt.read_text().splitlines()
    txt.write_text('{"exact_match": 80.0, "f1": 89.9}\n' + lines[1] + "\n")
    return ("fail", "accuracy-target", "Offline/accuracy/accuracy.txt",
            "F1 89.900 is below the target F1 >= 89.965 (bert-99: 99% of 90.874")


def plant_untruncated(root, layout):
    full = root.with_name(root.name + ".accuracy-logs") / OFF / "accuracy" / "mlperf_log_accuracy.json"
    shutil.copy2(full, root / OFF / "accuracy" / "mlperf_log_accuracy.json")
    return ("fail", "truncation", "Offline/accuracy/mlperf_log_accuracy.json", "is not truncated (20,543 bytes > 10,240)")


def plant_dataset(root, layout):
    edit_detail(root / OFF / "accuracy" / "mlperf_log_detail.txt", effective_accuracy_sample_count=200)
    if layout == "current":
        return ("fail", "dataset", "Offline/accuracy/mlperf_log_detail.txt", "accuracy run covers 200 samples")
    return ("note", "dataset", "Offline/accuracy/mlperf_log_detail.txt", "v1.0 does not check it")


def plant_log_format(root, layout):
    det = root / OFF / "performance" / "run_1" / "mlperf_log_detail.txt"
    det.write_text(det.read_text() + ':::MLLOG {"key": "cut\n')
    if layout == "current":
        return ("fail", "log-format", "Offline/performance/run_1/mlperf_log_detail.txt", "is not valid JSON")
    return ("note", "log-format", "Offline/performance/run_1/mlperf_log_detail.txt", "is not valid JSON; skipped")


def _test01(root, layout):
    if layout == "current":
        return root / OFF / "TEST01"
    return root / SUB / "compliance" / SYSTEM / "bert-99" / "Offline" / "TEST01"


def plant_test01_missing(root, layout):
    shutil.rmtree(_test01(root, layout))
    return ("fail" if layout == "current" else "log", "compliance", "Offline/TEST01", "TEST01 folder is missing")


def plant_test01_performance_string(root, layout):
    (_test01(root, layout) / "verify_performance.txt").write_text("deviation = -47.00% (allowed 10%)\nTEST FAIL\n")
    return ("fail" if layout == "current" else "log", "compliance-performance", "TEST01/verify_performance.txt",
            "TEST01 performance check did not pass")


def plant_test01_accuracy_files(root, layout):
    t = _test01(root, layout)
    (t / "verify_accuracy.txt").write_text("num_perf_log_data_mismatch = 3\nTEST FAIL\n")
    if layout == "current":  # then exactly 4 files must be in TEST01/accuracy
        return ("fail", "compliance", "Offline/TEST01/accuracy", "missing baseline_accuracy.txt, compliance_accuracy.txt")
    (t / "verify_accuracy.txt").unlink()
    return ("log", "compliance", "TEST01/verify_accuracy.txt", "required file is missing")


def plant_test01_extra_file(root, layout):
    if layout == "v1.0":  # v1.0 never looks at TEST05 logs; a missing TEST05 is LOG
        shutil.rmtree(_test01(root, layout).with_name("TEST05"))
        return ("log", "compliance", "Offline/TEST05", "TEST05 folder is missing")
    (_test01(root, layout) / "performance" / "run_1" / "notes.txt").write_text("x")
    return ("fail", "compliance", "Offline/TEST01/performance/run_1", "extra notes.txt")


def plant_benchmark_name(root, layout):
    shutil.move(root / R, root / f"{SUB}/results/{SYSTEM}/bert-large")
    return ("fail", "benchmark", f"{SUB}/results/{SYSTEM}/bert-large", "benchmark 'bert-large' is not one of")


PLANTS = [plant_layout, plant_measurements_file, plant_scenario_missing, plant_scenario_unknown, plant_datacenter,
          plant_system_field_empty, plant_system_field_missing, plant_accelerators_zero, plant_status,
          plant_division_case, plant_seed, plant_duration, plant_performance_sample_count, plant_offline_samples,
          plant_singlestream_queries, plant_invalid, plant_error_accuracy_log, plant_error_performance_log,
          plant_hash_mismatch, plant_hash_missing, plant_f1_single_quotes, plant_f1_below_target,
          plant_untruncated, plant_dataset, plant_log_format, plant_test01_missing,
          plant_test01_performance_string, plant_test01_accuracy_files, plant_test01_extra_file,
          plant_benchmark_name]


@pytest.mark.parametrize("layout", ["v1.0", "current"])
@pytest.mark.parametrize("plant", PLANTS, ids=lambda f: f.__name__[6:])
def test_planted_fault(trees, tmp_path, layout, plant):
    root = _copy(trees, layout, tmp_path)
    want = plant(root, layout)
    rep = check_submission(root, layout)
    if want is None:  # this version accepts it
        assert rep.passed and not rep.logs, [str(f) for f in rep.failures + rep.logs]
        return
    level, family, where, what = want
    hits = [f for f in rep.findings if f.level == level and f.family == family and f.path.endswith(where)
            and what in f.message]
    assert hits, [(f.level, f.family, str(f)) for f in rep.findings]
    assert rep.passed == (level != "fail")
    # a FAIL under the version is never a waived short-run item under quick unless it is one
    if level == "fail" and family in ("hash", "truncation", "error", "accuracy-format", "layout", "scenarios",
                                      "benchmark"):
        assert not check_submission(root, "quick", layout=layout).passed


def test_quick_waives_short_run_items_only(trees, tmp_path):
    root = _copy(trees, "current", tmp_path)
    _perf(root, effective_min_duration_ms=10_000, effective_performance_sample_count=200,
          effective_samples_per_query=660)
    _perf(root, "SingleStream", early_stopping_met=False)
    _sys(root, cooling="")
    rep = check_submission(root, "quick")
    assert rep.passed, [str(f) for f in rep.failures]
    assert sorted({f.family for f in rep.waived}) == ["counts", "duration", "early-stopping", "system"]
    _perf(root, effective_qsl_rng_seed=1)  # a wrong seed is not a short-run item
    assert [f.family for f in check_submission(root, "quick").failures] == ["seeds"]


def test_check_cli_rules_default_to_the_layout(trees, capsys):
    assert cli_main(["check", str(trees["v1.0"])]) == 0
    out = capsys.readouterr().out
    assert "v1.0 layout = official checker v1.0.1" in out and "submission passes (v1.0 rules)" in out
    assert cli_main(["check", str(trees["current"]), "--rules", "v1.0"]) == 1
    assert "this tree has the current layout, checked against v1.0" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="contradicts"):
        check_submission(trees["current"], "current", layout="v1.0")
