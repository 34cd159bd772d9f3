"""End to end: quick run -> TEST01/TEST05 -> submission tree -> our checker, and planted faults."""

from __future__ import annotations

import json
import shutil

import pytest

import test_submission_support as sup
from mlperf_bert.cli import main as cli_main
from mlperf_bert.fileio import file_sha256
from mlperf_bert.logs.truncate import MAX_ACCURACY_LOG_SIZE, read_hash
from mlperf_bert.submission.checker import LOADGEN_BUILTIN_SEEDS, TEST05_SEEDS, check_submission
from mlperf_bert.submission.compliance import run_compliance
from mlperf_bert.submission.system import ALL_SYSTEM_FIELDS, IMPLEMENTATION_FIELDS
from mlperf_bert.submission.tree import SubmissionSpec, assemble_submission

SUB = "closed/acme"
RES = f"{SUB}/results/box/bert-99/Offline"


@pytest.fixture(scope="module")
def built(tmp_path_factory, shared):
    """A quick Offline run, its TEST01 and TEST05 folders and the assembled tree (about 5 s)."""
    base = tmp_path_factory.mktemp("sub")
    res = sup.quick_run(base / "runs", shared, name="offline")
    comp = []
    for test in ("TEST01", "TEST05"):
        # sub-second runs are too noisy for the 10% / 5% bound; the bound itself is unit-tested
        r = run_compliance(test, res.run_dir, base / "compliance", registry=sup.registry(),
                           load_data=lambda *a: sup.data(), scorer=sup.scorer_for(shared), progress=False,
                           perf_tolerance=100.0)
        assert r.passed, r.notes
        comp.append(r.folder)
    tree = assemble_submission(SubmissionSpec(output=base / "tree", submitter="acme", system="box",
                                              runs=(res.run_dir,), compliance=tuple(comp),
                                              system_overrides={"host_storage_type": "NVMe"}))
    return base, res, tree


def _copy(built, tmp_path):
    base, _, tree = built
    dst = tmp_path / "tree"
    shutil.copytree(tree.root, dst)
    shutil.copytree(tree.full_logs, tmp_path / "tree.accuracy-logs")
    return dst


def test_tree_layout_and_contents(built):
    base, res, tree = built
    root = tree.root
    assert tree.entries == [("bert-99", "Offline")]
    acc = root / RES / "accuracy"
    assert sorted(p.name for p in acc.iterdir()) == ["accuracy.txt", "mlperf_log_accuracy.json",
                                                     "mlperf_log_detail.txt", "mlperf_log_summary.txt"]
    full = res.run_dir / "accuracy" / "mlperf_log_accuracy.json"
    assert full.stat().st_size > MAX_ACCURACY_LOG_SIZE  # 200 samples of trimmed float32 rows
    assert (acc / "mlperf_log_accuracy.json").stat().st_size == 4096 + 7 + 4096
    lines = (acc / "accuracy.txt").read_text().splitlines()
    assert lines[0] == '{"exact_match": 100.0, "f1": 100.0}'
    assert read_hash(acc / "accuracy.txt") == file_sha256(full)
    kept = tree.full_logs / RES / "accuracy" / "mlperf_log_accuracy.json"
    assert kept.read_bytes() == full.read_bytes()
    assert sorted(p.name for p in (root / RES / "performance" / "run_1").iterdir()) == [
        "mlperf_log_detail.txt", "mlperf_log_summary.txt"]
    meas = root / f"{SUB}/measurements/box/bert-99/Offline"
    assert sorted(p.name for p in meas.iterdir()) == ["README.md", "box_mlperf-bert_Offline.json", "mlperf.conf",
                                                      "user.conf"]
    impl = json.loads((meas / "box_mlperf-bert_Offline.json").read_text())
    assert tuple(impl) == IMPLEMENTATION_FIELDS
    conf = (meas / "mlperf.conf").read_text()
    assert f"*.*.qsl_rng_seed = {LOADGEN_BUILTIN_SEEDS[0]}" in conf
    assert "bert.*.performance_sample_count_override = 10833" in conf
    assert "bert.Offline.target_qps = 2000" in (meas / "user.conf").read_text()
    assert "rules preset `quick`" in (meas / "README.md").read_text()
    desc = json.loads((root / f"{SUB}/systems/box.json").read_text())
    assert set(ALL_SYSTEM_FIELDS) <= set(desc)
    assert desc["host_storage_type"] == "NVMe" and desc["submitter"] == "acme" and desc["division"] == "closed"
    assert desc["system_type"] == "datacenter" and desc["host_processor_core_count"] >= 1
    comp = root / f"{SUB}/compliance/box/bert-99/Offline"
    assert (comp / "TEST01" / "verify_accuracy.txt").read_text().splitlines()[-1] == "TEST PASS"
    assert (comp / "TEST05" / "verify_performance.txt").read_text().splitlines()[-1] == "TEST PASS"
    assert (root / f"{SUB}/code/bert-99/mlperf-bert/README.md").is_file()


def test_checker_passes_quick_tree_and_lists_what_real_rules_fail(built):
    _, _, tree = built
    rep = check_submission(tree.root, "quick")
    assert rep.passed, [str(f) for f in rep.failures]
    # exactly the validity failures of a short quick run (docs/loadgen.md#rules-presets), each with its file
    perf = f"{RES}/performance/run_1/mlperf_log_detail.txt"
    got = sorted((f.path, f.message.split(";")[0].split(" (")[0]) for f in rep.waived)
    comp = f"{SUB}/compliance/box/bert-99/Offline"
    want = [(f"{RES}/accuracy/mlperf_log_detail.txt", "accuracy run covers 200 samples, not the whole dev set"),
            (perf, "seeds are LoadGen's built-in ones"),
            (perf, "min duration is 0.3 s, must be >= 600 s"),
            (perf, "Offline query has 660 samples, v1.0 rules need >= 24,576")]
    # LoadGen itself calls a run INVALID when it ends before its (0.3 s) minimum duration, as these do
    for path, label in ((perf, "LoadGen result is INVALID"),
                        (f"{comp}/TEST01/performance/run_1/mlperf_log_detail.txt", "TEST01 run is INVALID under LoadGen's own checks"),
                        (f"{comp}/TEST05/performance/run_1/mlperf_log_detail.txt", "TEST05 run is INVALID under LoadGen's own checks")):
        if "Result is : INVALID" in (tree.root / path).with_name("mlperf_log_summary.txt").read_text():
            want.append((path, label))
    assert got == sorted(want), got
    assert [r.f1 for r in rep.results] == [100.0]
    assert not any("hash not verified" in f.message for f in rep.notes)  # full logs found beside the tree
    # the same tree under the v1.0 rules: every waived item is a failure
    strict = check_submission(tree.root, "v1.0")
    assert not strict.passed
    assert sorted((f.path, f.message.split()[0]) for f in rep.waived) == \
        sorted((f.path, f.message.split()[0]) for f in strict.failures)


def test_check_cli_exit_codes(built, capsys):
    _, _, tree = built
    assert cli_main(["check", str(tree.root), "--rules", "quick"]) == 0
    out = capsys.readouterr().out
    assert "WAIVED" in out and "submission passes (quick rules)" in out
    assert cli_main(["check", str(tree.root)]) == 1
    out = capsys.readouterr().out
    assert "FAIL closed/acme/results/box/bert-99/Offline/performance/run_1/mlperf_log_detail.txt: min duration" in out


def _detail_replace(path, key, new_value):
    lines = path.read_text().splitlines(keepends=True)
    for i, line in enumerate(lines):
        if f'"key": "{key}"' in line:
            entry = json.loads(line[len(":::MLLOG "):])
            entry["value"] = new_value
            lines[i] = ":::MLLOG " + json.dumps(entry) + "\n"
    path.write_text("".join(lines))


def _plant_missing(root):
    (root / RES / "performance" / "run_1" / "mlperf_log_summary.txt").unlink()
    return "performance/run_1/mlperf_log_summary.txt", "required file is missing"


def _plant_seed(root):
    _detail_replace(root / RES / "performance" / "run_1" / "mlperf_log_detail.txt", "effective_qsl_rng_seed", 12345)
    return "performance/run_1/mlperf_log_detail.txt", "seeds (12345,"


def _plant_untruncated(root):
    full = root.with_name("tree.accuracy-logs") / RES / "accuracy" / "mlperf_log_accuracy.json"
    shutil.copy2(full, root / RES / "accuracy" / "mlperf_log_accuracy.json")
    return "accuracy/mlperf_log_accuracy.json", "is not truncated"


def _plant_hash(root):
    txt = root / RES / "accuracy" / "accuracy.txt"
    first = txt.read_text().splitlines()[0]
    txt.write_text(first + "\nhash=" + "0" * 64 + "\n")
    return "accuracy/mlperf_log_accuracy.json", "hash=0000000000000000... in accuracy.txt but the full log"


def _plant_error(root):
    det = root / RES / "accuracy" / "mlperf_log_detail.txt"
    err = {"key": "error_runtime", "value": "planted failure", "time_ms": 1.0, "namespace": "mlperf::logging",
           "event_type": "POINT_IN_TIME", "metadata": {"is_error": True, "is_warning": False}}
    det.write_text(det.read_text() + ":::MLLOG " + json.dumps(err) + "\n")
    return "accuracy/mlperf_log_detail.txt", "LoadGen logged an ERROR: planted failure"


def _plant_low_accuracy(root):
    txt = root / RES / "accuracy" / "accuracy.txt"
    lines = txt.read_text().splitlines()
    txt.write_text('{"exact_match": 80.0, "f1": 89.9}\n' + lines[1] + "\n")
    return "accuracy/accuracy.txt", "F1 89.900 is below the target F1 >= 89.965 (bert-99: 99% of 90.874"


@pytest.mark.parametrize("plant", [_plant_missing, _plant_seed, _plant_untruncated, _plant_hash, _plant_error,
                                   _plant_low_accuracy], ids=lambda f: f.__name__[7:])
def test_checker_rejects_each_planted_fault(built, tmp_path, plant):
    root = _copy(built, tmp_path)
    assert check_submission(root, "quick").passed  # the copy is good before the fault
    where, what = plant(root)
    rep = check_submission(root, "quick")
    assert not rep.passed
    hits = [f for f in rep.failures if f.path.endswith(where) and what in f.message]
    assert hits, [str(f) for f in rep.failures]


def test_checker_rejects_wrong_test05_seed_and_missing_compliance(built, tmp_path):
    root = _copy(built, tmp_path)
    comp = root / f"{SUB}/compliance/box/bert-99/Offline"
    _detail_replace(comp / "TEST05/performance/run_1/mlperf_log_detail.txt", "effective_schedule_rng_seed", 7)
    shutil.rmtree(comp / "TEST01")
    rep = check_submission(root, "quick")
    msgs = [str(f) for f in rep.failures]
    assert any("TEST05/performance/run_1/mlperf_log_detail.txt: TEST05 seeds" in m and
               str(TEST05_SEEDS) in m for m in msgs), msgs
    assert any(m.endswith("TEST01: TEST01 folder is missing (run 'mlperf-bert compliance TEST01')") for m in msgs)


def test_submission_refuses_existing_output_and_orphan_compliance(built, tmp_path):
    base, res, tree = built
    from mlperf_bert.errors import ConfigError

    with pytest.raises(ConfigError, match="already exists"):
        assemble_submission(SubmissionSpec(output=tree.root, submitter="acme", system="box", runs=(res.run_dir,)))
    with pytest.raises(ConfigError, match="must be a non-empty folder name"):
        SubmissionSpec(output=tmp_path / "x", submitter="a/b", system="box", runs=(res.run_dir,))
