"""``submit`` end to end through real LoadGen runs (oracle backend on synthetic questions and vocabulary):
quick trees in both layouts pass our quick checker and fail each version's rules only for the expected
reasons; resuming reuses finished runs; compliance reruns once after a quiet wait."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest

import test_submission_support as sup
from mlperf_bert.backends.registry import BackendConfig
from mlperf_bert.config import DataPaths
from mlperf_bert.logs.parse import read_detail_log
from mlperf_bert.loadgen.settings import V1_0_SEEDS, LoadGenConfig
from mlperf_bert.machine import CpuFacts, HostLoad, MachineFacts, MemoryFacts, StorageFacts
from mlperf_bert.runner import RunConfig
from mlperf_bert.submission.checker import check_submission
from mlperf_bert.submission.compliance import run_compliance
from mlperf_bert.submission.submit import SubmitJob, run_submit
from mlperf_bert.sut.batcher import BatcherConfig
from mlperf_bert.sut.sut import SUTConfig

FACTS = MachineFacts(cpu=CpuFacts(model="Test CPU", sockets=1, cores_per_socket=2, cores=2, threads=2, max_mhz=2600.0,
                                  caches=(("L1d", "48 KiB"),)),
                     memory=MemoryFacts(capacity_bytes=24 * 2**30), storage=StorageFacts("vda", 2 * 10**11, "SSD"),
                     os_name="Linux")
#: What this (fake) machine cannot tell, as a submitter gives it with --system-json.
SYSTEM_JSON = {"host_memory_configuration": "2x 12 GB DDR5", "cooling": "air", "host_networking": "none"}
#: Rule families a quick tree of the small-model-like oracle on 200 questions must fail, and nothing else.
SHORT_RUN = {"duration", "counts", "dataset", "early-stopping", "compliance-performance"}


def _job(tmp, vocab, layout, **kw):
    base = RunConfig(
        data=DataPaths(dataset=tmp / "unused.json", vocab=vocab, cache_dir=tmp / "cache"),
        backend=BackendConfig(name="oracle"),
        sut=SUTConfig(batcher=BatcherConfig(max_batch_size=16, token_budget=4096)),
        loadgen=LoadGenConfig(rules="quick", quick_duration_s=0.3, expected_qps=2000.0, expected_latency_ms=0.5),
        probe=False)
    return SubmitJob(base=base, rules="quick", layout=layout, benchmark="bert-99", output_dir=tmp / f"job-{layout}",
                     submitter="acme", system="box", system_overrides=SYSTEM_JSON, facts=FACTS,
                     perf_tolerance=100.0, quiet_wait_s=None, **kw)


def _submit(job, vocab, events=None):
    return run_submit(job, registry=sup.registry(), load_data=lambda *a: sup.data(), scorer=sup.scorer_for(vocab),
                      progress=False, on_event=(events.append if events is not None else None))


@pytest.fixture(scope="module")
def jobs(tmp_path_factory, synthetic_vocab):
    tmp = tmp_path_factory.mktemp("submit")
    out = {}
    for layout in ("current", "v1.0"):
        events = []
        job = _job(tmp, synthetic_vocab, layout)
        out[layout] = (job, _submit(job, synthetic_vocab, events), events)
    return out


@pytest.mark.parametrize("layout", ["current", "v1.0"])
def test_quick_submit_passes_quick_and_fails_the_version_only_for_short_runs(jobs, layout):
    job, res, events = jobs[layout]
    # current: BERT is edge (SingleStream + Offline, TEST01); v1.0 keeps datacenter (Offline, TEST01 + TEST05)
    tests = ["TEST01"] if layout == "current" else ["TEST01", "TEST05"]
    scenarios = ("Offline", "SingleStream") if layout == "current" else ("Offline",)
    assert [(s.scenario, s.kind, s.status) for s in res.steps] == \
        [(sc, k, "ran") for sc in scenarios for k in ["run"] + tests]
    assert res.report.passed, [str(f) for f in res.report.failures]
    assert res.report.rules == "quick" and res.report.layout == layout
    assert [(r.scenario, r.f1) for r in res.report.results] == [(sc, 100.0) for sc in scenarios]
    assert any(e.startswith("[1/") and "Offline accuracy + performance" in e for e in events)
    root = res.assembled.root
    # the same tree under the version's own rules: it fails, and only for what a short run cannot meet
    strict = check_submission(root, layout)
    assert not strict.passed
    families = {f.family for f in strict.failures}
    assert families <= SHORT_RUN | {"accuracy-target", "validity"}, [str(f) for f in strict.failures]
    for f in strict.failures:  # v1.0 FAILs an INVALID run; these sub-second runs are INVALID for their length
        assert f.family != "validity" or "minimum duration not met" in f.message, str(f)
    if layout == "current":  # 600 s, 10,833 samples per Offline query and the whole dev set
        assert {"duration", "counts", "dataset"} <= families
    else:  # v1.0: duration and counts are LOG lines; the oracle's F1 100 meets the official target
        assert {f.family for f in strict.logs} >= {"duration", "counts"}
        assert families <= {"counts", "validity"}
    # quick: every one of those is waived, nothing else
    assert {f.family for f in res.report.waived} <= SHORT_RUN | {"validity", "model"}


def test_current_layout_contents(jobs):
    _, res, _ = jobs["current"]
    sub = res.assembled.root / "closed" / "acme"
    sc = sub / "results" / "box" / "bert-99" / "Offline"
    assert sorted(p.name for p in sc.iterdir()) == ["README.md", "TEST01", "accuracy", "measurements.json",
                                                    "mlperf.conf", "performance", "user.conf"]
    assert (sub / "src" / "README.md").is_file() and not (sub / "measurements").exists()
    assert not (sub / "compliance").exists() and not (sc / "TEST05").exists()
    assert sorted(p.name for p in (sc / "TEST01" / "accuracy").iterdir()) == ["accuracy.txt",
                                                                              "mlperf_log_accuracy.json"]
    t01 = (sc / "TEST01" / "accuracy" / "accuracy.txt").read_text().splitlines()
    assert t01[0] == '{"exact_match": 100.0, "f1": 100.0}' and t01[1].startswith("hash=")
    desc = json.loads((sub / "systems" / "box.json").read_text())
    assert desc["system_type"] == "edge" and desc["accelerators_per_node"] == "0"
    assert desc["accelerator_model_name"] == "N/A" and desc["host_network_card_count"] == "0"
    assert desc["host_memory_configuration"] == "2x 12 GB DDR5" and desc["host_processor_core_count"] == 2
    meas = json.loads((sc / "measurements.json").read_text())
    assert all(meas.values()) and len(meas) == 5
    assert "rules preset `quick`" in (sc / "README.md").read_text()


def test_v1_0_layout_contents_and_seeds(jobs):
    _, res, _ = jobs["v1.0"]
    sub = res.assembled.root / "closed" / "acme"
    assert sorted(p.name for p in sub.iterdir()) == ["code", "compliance", "measurements", "results", "systems"]
    meas = sub / "measurements" / "box" / "bert-99" / "Offline"
    assert sorted(p.name for p in meas.iterdir()) == ["README.md", "box_mlperf-bert_Offline.json",
                                                      "mlperf.conf", "user.conf"]
    comp = sub / "compliance" / "box" / "bert-99" / "Offline"
    assert sorted(p.name for p in comp.iterdir()) == ["TEST01", "TEST05"]
    d = read_detail_log(sub / "results/box/bert-99/Offline/performance/run_1/mlperf_log_detail.txt")
    assert tuple(d.get(k) for k in ("effective_qsl_rng_seed", "effective_sample_index_rng_seed",
                                    "effective_schedule_rng_seed")) == V1_0_SEEDS  # quick runs with v1.0 seeds
    desc = json.loads((sub / "systems" / "box.json").read_text())
    assert desc["system_type"] == "datacenter" and "host_network_card_count" not in desc  # v1.0 warns about it


def test_resume_reuses_finished_runs_and_redoes_a_changed_one(jobs, synthetic_vocab, tmp_path):
    job, res, _ = jobs["current"]
    out = tmp_path / "job"
    shutil.copytree(job.output_dir, out)
    job = dataclasses.replace(job, output_dir=out)
    events = []
    again = _submit(job, synthetic_vocab, events)
    assert [s.status for s in again.steps] == ["reused"] * 4
    assert again.report.passed
    # an interrupted run left a .partial folder and the Offline run's settings changed: both handled
    (out / "runs" / "bert-99-SingleStream.partial").mkdir()
    state = json.loads((out / "submit-state.json").read_text())
    assert set(state["steps"]) == {"bert-99-Offline", "bert-99-Offline-TEST01", "bert-99-SingleStream",
                                   "bert-99-SingleStream-TEST01"}
    changed = dataclasses.replace(job, base=dataclasses.replace(job.base, loadgen=dataclasses.replace(
        job.base.loadgen, quick_duration_s=0.4)))
    events = []
    third = _submit(changed, synthetic_vocab, events)
    assert [s.status for s in third.steps] == ["ran"] * 4  # the duration is a setting of every run
    assert any("its settings differ" in e for e in events)
    assert (out / "runs" / "bert-99-Offline.old-1").is_dir()
    assert not (out / "runs" / "bert-99-SingleStream.partial").exists()


def test_submit_refuses_another_job_in_the_same_folder(jobs, synthetic_vocab):
    from mlperf_bert.errors import ConfigError

    job, _, _ = jobs["current"]
    with pytest.raises(ConfigError, match="holds a submit job for"):
        _submit(dataclasses.replace(job, layout="v1.0"), synthetic_vocab)


def test_compliance_rerun_after_quiet_wait(tmp_path, synthetic_vocab):
    """A failed performance comparison waits for a quiet host (bounded) and reruns once; notes say so."""
    res = sup.quick_run(tmp_path / "runs", synthetic_vocab, name="ref")
    loads = iter([HostLoad((3.0,), 2, 0.9, 0.5), HostLoad((1.0,), 2, 0.05, 0.5)])
    slept = []
    r = run_compliance("TEST05", res.run_dir, tmp_path / "comp", registry=sup.registry(),
                       load_data=lambda *a: sup.data(), progress=False, perf_tolerance=0.0, quiet_wait_s=30.0,
                       load_sampler=lambda: next(loads), sleep=slept.append)
    assert slept == [5.0]  # one poll, then quiet
    assert (r.folder / "run").is_dir() and (r.folder / "run-2").is_dir() and not (r.folder / "run-3").exists()
    meta = json.loads((r.folder / "compliance.json").read_text())
    assert [a["run"] for a in meta["attempts"]] == ["run", "run-2"] and meta["run"] == "run-2"
    assert all("host_load" in a and "others_cpu_share" in a["host_load"] for a in meta["attempts"])
    assert any("after 6 s the host was quiet (others used 5% of 2 CPUs, load average 1.00); reran once" in n
               for n in r.notes), r.notes
    d = read_detail_log(r.folder / "TEST05" / "performance" / "run_1" / "mlperf_log_detail.txt")
    d2 = read_detail_log(r.folder / "run-2" / "performance" / "mlperf_log_detail.txt")
    assert d.values == d2.values  # the second run's logs are the ones submitted
