"""The tree writer on real quick runs (oracle backend through LoadGen): layouts, rules read from the runs,
required scenarios, truncation and hashes, and the CLI's one-line refusals."""

from __future__ import annotations

import json

import pytest

import test_submission_support as sup
from mlperf_bert.cli import main as cli_main
from mlperf_bert.errors import ConfigError
from mlperf_bert.fileio import file_sha256
from mlperf_bert.logs.truncate import MAX_ACCURACY_LOG_SIZE, read_hash
from mlperf_bert.submission.checker import LOADGEN_BUILTIN_SEEDS, check_submission
from mlperf_bert.submission.compliance import run_compliance
from mlperf_bert.submission.system import IMPLEMENTATION_FIELDS, SYSTEM_FIELDS
from mlperf_bert.submission.tree import MissingScenarios, SubmissionSpec, assemble_submission

SUB = "closed/acme"
RES = f"{SUB}/results/box/bert-99/Offline"
SYSTEM_JSON = {"host_memory_configuration": "2x 12 GB", "cooling": "air"}


@pytest.fixture(scope="module")
def built(tmp_path_factory, synthetic_vocab):
    """Quick Offline and SingleStream runs, Offline TEST01/TEST05, and the current-layout tree (about 5 s)."""
    base = tmp_path_factory.mktemp("sub")
    off = sup.quick_run(base / "runs", synthetic_vocab, name="offline")
    ss = sup.quick_run(base / "runs", synthetic_vocab, name="ss", scenario="SingleStream")
    comp = []
    for test in ("TEST01", "TEST05"):
        # sub-second runs are too noisy for the 10% / 5% bound; the bound itself is unit-tested
        r = run_compliance(test, off.run_dir, base / "compliance", registry=sup.registry(),
                           load_data=lambda *a: sup.data(), scorer=sup.scorer_for(synthetic_vocab), progress=False,
                           perf_tolerance=100.0)
        assert r.passed, r.notes
        comp.append(r.folder)
    tree = assemble_submission(SubmissionSpec(output=base / "tree", submitter="acme", system="box",
                                              runs=(off.run_dir, ss.run_dir), compliance=tuple(comp),
                                              system_overrides=SYSTEM_JSON))
    return base, off, ss, comp, tree


def test_current_tree_from_quick_runs(built):
    base, off, _, _, tree = built
    assert (tree.rules, tree.layout, tree.system_type) == ("quick", "current", "edge")
    assert tree.entries == [("bert-99", "Offline"), ("bert-99", "SingleStream")]
    root = tree.root
    acc = root / RES / "accuracy"
    assert sorted(p.name for p in acc.iterdir()) == ["accuracy.txt", "mlperf_log_accuracy.json",
                                                     "mlperf_log_detail.txt", "mlperf_log_summary.txt"]
    full = off.run_dir / "accuracy" / "mlperf_log_accuracy.json"
    assert full.stat().st_size > MAX_ACCURACY_LOG_SIZE  # 200 samples of trimmed float32 rows
    assert (acc / "mlperf_log_accuracy.json").stat().st_size == 4096 + 7 + 4096
    text = (acc / "accuracy.txt").read_text()
    assert text.splitlines()[0] == '{"exact_match": 100.0, "f1": 100.0}' and text.endswith("\n")
    assert read_hash(acc / "accuracy.txt") == file_sha256(full)
    assert (tree.full_logs / RES / "accuracy" / "mlperf_log_accuracy.json").read_bytes() == full.read_bytes()
    conf = (root / RES / "mlperf.conf").read_text()
    assert f"*.*.qsl_rng_seed = {LOADGEN_BUILTIN_SEEDS[0]}" in conf
    assert "bert.*.performance_sample_count_override = 10833" in conf
    assert "bert.Offline.target_qps = 2000" in (root / RES / "user.conf").read_text()
    assert tuple(json.loads((root / RES / "measurements.json").read_text())) == IMPLEMENTATION_FIELDS
    desc = json.loads((root / f"{SUB}/systems/box.json").read_text())
    assert tuple(desc)[:len(SYSTEM_FIELDS["current"])] == SYSTEM_FIELDS["current"]
    assert desc["cooling"] == "air" and desc["system_type"] == "edge"
    # TEST01 under results (its log truncated, with a hash line); TEST05 is not part of the current rules
    t01 = root / RES / "TEST01"
    assert (t01 / "verify_accuracy.txt").read_text().splitlines()[-1] == "TEST PASS"
    assert read_hash(t01 / "accuracy" / "accuracy.txt") is not None
    assert not (root / RES / "TEST05").exists()
    assert any("TEST05 is not part of the current rules; left out" in w for w in tree.warnings)
    assert any("bert-99/SingleStream: no TEST01 folder given; make it with: mlperf-bert compliance TEST01" in w
               for w in tree.warnings)
    rep = check_submission(root, "quick")
    assert [str(f) for f in rep.failures] == [
        f"{SUB}/results/box/bert-99/SingleStream/TEST01: TEST01 folder is missing (run 'mlperf-bert compliance "
        "TEST01')"]


def test_v1_0_layout_of_the_same_runs(built, tmp_path):
    _, off, ss, comp, _ = built
    tree = assemble_submission(SubmissionSpec(output=tmp_path / "t", submitter="acme", system="box",
                                              runs=(off.run_dir,), compliance=tuple(comp), layout="v1.0",
                                              system_overrides=SYSTEM_JSON))
    assert (tree.rules, tree.layout, tree.system_type) == ("quick", "v1.0", "datacenter")
    sub = tree.root / SUB
    assert sorted(p.name for p in sub.iterdir()) == ["code", "compliance", "measurements", "results", "systems"]
    assert sorted(p.name for p in (sub / "compliance/box/bert-99/Offline").iterdir()) == ["TEST01", "TEST05"]
    assert not (sub / "results/box/bert-99/Offline/measurements.json").exists()
    rep = check_submission(tree.root, "quick")
    assert rep.layout == "v1.0" and rep.passed, [str(f) for f in rep.failures]
    # quick runs with LoadGen's built-in seeds in a v1.0 tree: v1.0 logs (does not fail) the seeds
    assert any(f.family == "seeds" and f.level == "log" for f in rep.findings)


def test_rules_come_from_the_runs_and_must_agree(built, tmp_path, synthetic_vocab):
    _, off, ss, _, _ = built
    with pytest.raises(ConfigError, match=r"--rules current, but the runs \(offline, ss\) were made with --rules quick"):
        assemble_submission(SubmissionSpec(output=tmp_path / "a", submitter="acme", system="box",
                                           runs=(off.run_dir, ss.run_dir), rules="current"))
    v10 = sup.quick_run(tmp_path / "runs", synthetic_vocab, name="v10-seeds", scenario="SingleStream")
    info = json.loads((v10.run_dir / "run.json").read_text())
    info["config"]["loadgen"]["seeds"] = [7322528924094909334, 1570999273408051088, 3507442325620259414]
    (v10.run_dir / "run.json").write_text(json.dumps(info))
    with pytest.raises(ConfigError, match="the runs were made under different rules .*quick rules with the v1.0 seeds: "
                                          "v10-seeds"):
        assemble_submission(SubmissionSpec(output=tmp_path / "b", submitter="acme", system="box",
                                           runs=(off.run_dir, v10.run_dir)))


def test_missing_required_scenario_names_its_command(built, tmp_path, capsys):
    _, off, _, _, _ = built
    with pytest.raises(MissingScenarios) as exc:
        assemble_submission(SubmissionSpec(output=tmp_path / "a", submitter="acme", system="box", runs=(off.run_dir,)))
    assert exc.value.lines == [
        "bert-99/SingleStream is required for an edge system under the current rules; make it with: mlperf-bert run "
        "--backend oracle --scenario SingleStream --rules quick --batch-size 16 --token-budget 4096 --workers 1 "
        "--response-rows trimmed --duration 0.3 --mode both"]
    assert not (tmp_path / "a").exists()
    # the CLI prints the line and a one-line error, exit 2
    assert cli_main(["submission", "--run", str(off.run_dir), "--output", str(tmp_path / "b"), "--submitter", "acme",
                     "--system", "box"]) == 2
    err = capsys.readouterr().err
    assert "mlperf-bert: bert-99/SingleStream is required for an edge system" in err
    assert err.strip().splitlines()[-1] == ("mlperf-bert submission: error: 1 required scenario(s) have no runs "
                                            "(listed above); add them with --run")
    with pytest.raises(ConfigError, match="bert-99 is not allowed on a datacenter system under the current rules"):
        assemble_submission(SubmissionSpec(output=tmp_path / "c", submitter="acme", system="box", runs=(off.run_dir,),
                                           system_type="datacenter"))
    # v1.0 layout keeps its default: Offline alone is a datacenter system
    t = assemble_submission(SubmissionSpec(output=tmp_path / "d", submitter="acme", system="box", runs=(off.run_dir,),
                                           layout="v1.0"))
    assert t.system_type == "datacenter"


def test_runs_that_did_not_complete_are_refused(built, tmp_path):
    """Was: a failed or interrupted run counted as 'an accuracy run but no performance run'."""
    import shutil

    _, off, ss, _, _ = built
    for status, extra in (("failed", {"phase": "accuracy", "error": "DataError: no gold answer"}),
                          ("interrupted", {"phase": "performance"})):
        bad = tmp_path / f"offline.{status}"
        shutil.copytree(off.run_dir, bad)
        info = json.loads((bad / "run.json").read_text())
        (bad / "run.json").write_text(json.dumps({**info, "status": status, **extra}))
        why = ": DataError: no gold answer" if status == "failed" else ""
        with pytest.raises(ConfigError) as exc:
            assemble_submission(SubmissionSpec(output=tmp_path / status, submitter="acme", system="box",
                                               runs=(bad, ss.run_dir)))
        assert str(exc.value) == (f"{bad} is a run that did not complete (status {status} in the {extra['phase']} "
                                  f"phase{why}); submit complete runs only")


def test_submission_refuses_existing_output_and_bad_names(built, tmp_path):
    _, off, _, _, tree = built
    with pytest.raises(ConfigError, match="already exists"):
        assemble_submission(SubmissionSpec(output=tree.root, submitter="acme", system="box", runs=(off.run_dir,)))
    with pytest.raises(ConfigError, match="must be a non-empty folder name"):
        SubmissionSpec(output=tmp_path / "x", submitter="a/b", system="box", runs=(off.run_dir,))
    with pytest.raises(ConfigError, match="--layout v1.0 does not fit runs made under current rules"):
        from mlperf_bert.submission.tree import resolve_rules

        resolve_rules(SubmissionSpec(output=tmp_path / "y", submitter="a", system="b", runs=(off.run_dir,),
                                     layout="v1.0"),
                      {off.run_dir: {"config": {"loadgen": {"rules": "current"}}}}, {})
