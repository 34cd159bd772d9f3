"""Compliance TEST01 / TEST05: runs through LoadGen with fake backends, and the verification rules."""

from __future__ import annotations

import json

import pytest

import test_submission_support as sup
from mlperf_bert.errors import DataError
from mlperf_bert.logs.parse import read_detail_log
from mlperf_bert.submission.checker import TEST01_RNG_SEED, TEST05_SEEDS
from mlperf_bert.submission.compliance import (accuracy_text, compare_accuracy_logs, compare_performance,
                                               read_run_info, run_compliance, run_config_from_json)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, synthetic_vocab):
    base = tmp_path_factory.mktemp("comp")
    exact = sup.quick_run(base / "runs", synthetic_vocab, name="exact")
    noisy = sup.quick_run(base / "runs", synthetic_vocab, name="noisy", options={"noise": 1e-4})
    return base, exact, noisy


def _run(test, results, out, vocab, reg=None, **kw):
    return run_compliance(test, results.run_dir, out, registry=reg or sup.registry(), load_data=lambda *a: sup.data(),
                          scorer=sup.scorer_for(vocab), progress=False,
                          perf_tolerance=100.0, **kw)  # timing rules: tested on edited logs


def test_run_config_round_trips_through_run_json(runs, tmp_path):
    _, exact, _ = runs
    cfg = run_config_from_json(read_run_info(exact.run_dir))
    assert cfg == exact.info["config"]
    # paths of the backend too (submit reuses a run only when its settings are equal)
    import dataclasses

    from mlperf_bert.fileio import write_json_atomic

    with_cache = dataclasses.replace(cfg, backend=dataclasses.replace(cfg.backend, model=tmp_path / "m.onnx",
                                                                      cache_dir=tmp_path / "cache"))
    write_json_atomic(tmp_path / "run.json", {"config": with_cache})
    assert run_config_from_json(read_run_info(tmp_path)) == with_cache


def test_test01_byte_identical_outputs_pass(runs, tmp_path, synthetic_vocab):
    _, exact, _ = runs
    res = _run("TEST01", exact, tmp_path, synthetic_vocab)
    assert res.passed and res.log.identical
    assert res.log.test_entries == 660 and res.log.mismatched == 0 and res.log.missing == 0
    t = res.folder / "TEST01"
    text = (t / "verify_accuracy.txt").read_text()
    assert "num_perf_log_entries = 660" in text and "num_perf_log_data_mismatch = 0" in text
    assert text.splitlines()[-1] == "TEST PASS"
    assert (t / "accuracy" / "accuracy.txt").read_text() == '{"exact_match": 100.0, "f1": 100.0}\n'
    assert sorted(p.name for p in (t / "accuracy").iterdir()) == ["accuracy.txt", "mlperf_log_accuracy.json"]
    d = read_detail_log(t / "performance" / "run_1" / "mlperf_log_detail.txt")
    assert d.get("effective_accuracy_log_sampling_target") == 4096
    assert d.get("effective_accuracy_log_rng_seed") == TEST01_RNG_SEED
    assert "Found Audit Config file" in " ".join(map(str, d.warnings))
    meta = json.loads((res.folder / "compliance.json").read_text())
    assert meta["test"] == "TEST01" and meta["scenario"] == "Offline" and meta["passed"] is True


def test_test01_batch_dependent_outputs_fall_back_to_f1(runs, tmp_path, synthetic_vocab):
    """Outputs that change with the batch shape differ byte-wise; F1 of those samples decides."""
    _, _, noisy = runs
    res = _run("TEST01", noisy, tmp_path, synthetic_vocab)
    assert res.log.mismatched > 0
    assert res.passed
    assert res.f1_baseline == res.f1_compliance == 100.0
    assert res.f1_covered_baseline == res.f1_covered_compliance == 100.0
    meta = json.loads((res.folder / "compliance.json").read_text())
    assert (meta["f1_baseline"], meta["f1_covered_baseline"]) == (100.0, 100.0)
    acc = res.folder / "TEST01" / "accuracy"
    assert (acc / "baseline_accuracy.txt").read_text().startswith('{"exact_match": 100.0, "f1": 100.0}')
    assert (acc / "compliance_accuracy.txt").is_file()
    assert (res.folder / "TEST01" / "verify_accuracy.txt").read_text().splitlines()[-1] == "TEST FAIL"


def test_test01_fails_when_performance_mode_answers_differ(runs, tmp_path, synthetic_vocab):
    _, exact, _ = runs
    res = _run("TEST01", exact, tmp_path, synthetic_vocab,
               reg=sup.registry("test_submission_support:WrongOracleBackend"))
    assert not res.passed
    assert res.f1_baseline == 100.0 and res.f1_compliance == 0.0
    assert "outside 1% for bert-99" in res.notes[-1]


def test_test05_uses_its_seeds(runs, tmp_path, synthetic_vocab):
    _, exact, _ = runs
    res = _run("TEST05", exact, tmp_path, synthetic_vocab)
    d = read_detail_log(res.folder / "TEST05" / "performance" / "run_1" / "mlperf_log_detail.txt")
    assert (d.get("effective_qsl_rng_seed"), d.get("effective_sample_index_rng_seed"),
            d.get("effective_schedule_rng_seed")) == TEST05_SEEDS
    assert res.log is None and not (res.folder / "TEST05" / "accuracy").exists()
    assert (res.folder / "TEST05" / "verify_performance.txt").read_text().splitlines()[-1] == \
        ("TEST PASS" if res.passed else "TEST FAIL")


def test_test01_needs_an_accuracy_run(tmp_path, synthetic_vocab):
    perf_only = sup.quick_run(tmp_path / "runs", synthetic_vocab, name="p", modes=("performance",))
    with pytest.raises(DataError, match="has no accuracy run"):
        _run("TEST01", perf_only, tmp_path / "c", synthetic_vocab)


def _with_metric(src, dst, key, value, validity=None):
    lines = []
    for line in src.read_text().splitlines():
        if line.startswith(":::MLLOG "):
            e = json.loads(line[9:])
            if e["key"] == key:
                e["value"] = value
            if validity and e["key"] == "result_validity":
                e["value"] = validity
            line = ":::MLLOG " + json.dumps(e)
        lines.append(line)
    dst.write_text("\n".join(lines) + "\n")
    return dst


def test_performance_tolerance_rule(runs, tmp_path):
    _, exact, _ = runs
    src = exact.run_dir / "performance" / "mlperf_log_detail.txt"
    ref = _with_metric(src, tmp_path / "ref.txt", "result_samples_per_second", 100.0, "VALID")
    ok = _with_metric(src, tmp_path / "ok.txt", "result_samples_per_second", 95.5, "VALID")
    bad = _with_metric(src, tmp_path / "bad.txt", "result_samples_per_second", 94.0, "VALID")
    assert compare_performance(ref, ok, 0.05).passed
    c = compare_performance(ref, bad, 0.05)
    assert not c.passed and c.deviation == pytest.approx(-0.06)
    assert c.text().splitlines()[-1] == "TEST FAIL"
    assert compare_performance(ref, bad, 0.10).passed  # TEST01's 10%
    invalid = _with_metric(src, tmp_path / "inv.txt", "result_samples_per_second", 100.0, "INVALID")
    assert not compare_performance(invalid, ok, 0.05).passed
    assert compare_performance(invalid, ok, 0.05, allow_invalid=True).passed


def test_log_comparison_counts_and_empty_log(tmp_path):
    acc = tmp_path / "acc.json"
    acc.write_text(json.dumps([{"seq_id": 0, "qsl_idx": 0, "data": "AA"}, {"seq_id": 1, "qsl_idx": 1, "data": "BB"},
                               {"seq_id": 2, "qsl_idx": 1, "data": "BC"}]))
    test = tmp_path / "test.json"
    test.write_text(json.dumps([{"seq_id": 5, "qsl_idx": 0, "data": "AA"}, {"seq_id": 6, "qsl_idx": 1, "data": "BC"},
                                {"seq_id": 7, "qsl_idx": 9, "data": "00"}]))
    c = compare_accuracy_logs(acc, test)
    assert (c.acc_entries, c.acc_duplicates, c.acc_mismatched_duplicates) == (3, 1, 1)
    assert (c.test_entries, c.matched, c.mismatched, c.missing, c.differing) == (3, 1, 1, 1, [1])
    assert not c.identical
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    e = compare_accuracy_logs(acc, empty)
    assert not e.identical
    assert accuracy_text(e, acc, empty).splitlines()[-1] == "TEST FAIL: the performance-mode accuracy log is empty"
    broken = tmp_path / "broken.json"
    broken.write_text('[{"qsl_idx": 0')
    with pytest.raises(DataError, match="broken.json: accuracy log is truncated .line 1, column 15: .*was the run interrupted"):
        compare_accuracy_logs(acc, broken)
