"""Ctrl-C in every phase of a real ``mlperf-bert run`` process, run-name clashes and unwritable folders.

The subprocess runs use a tiny dataset written here and the null backend with a per-batch delay, so the
runs last a few seconds but use almost no CPU. SIGINT is sent once the run reports (stdout/stderr) that it
is in the phase under test.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from clirun import CliRun
from fakes import EchoBackend, synthetic_features, write_tiny_squad
from mlperf_bert.cli import main
from mlperf_bert.errors import ConfigError
from mlperf_bert.loadgen.settings import LoadGenConfig
from mlperf_bert.qsl.qsl import SquadQSL
from mlperf_bert.runner import make_run_dir
from mlperf_bert.sut.batcher import BatcherConfig
from mlperf_bert.sut.sut import BertSUT, SUTConfig


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """40 one-feature questions, their vocabulary and a warm feature cache."""
    folder = tmp_path_factory.mktemp("tiny")
    dataset, vocab = write_tiny_squad(folder, repeat=40)
    return {"dataset": dataset, "vocab": vocab, "cache": folder / "cache"}


def _args(tiny, out: Path, *extra: str) -> list[str]:
    return ["--backend", "null", "--null-delay-ms", "100", "--batch-size", "1", "--dataset", str(tiny["dataset"]),
            "--vocab", str(tiny["vocab"]), "--cache-dir", str(tiny["cache"]), "--output-dir", str(out),
            "--run-name", "r", "--no-progress", *extra]


def _check_interrupted(rc: int, err: str, out_dir: Path, phase: str) -> dict:
    assert rc == 130, err  # never 134 (abort) or a signal death
    assert "terminate called" not in err and "Traceback" not in err and "bad_function_call" not in err
    assert err.strip().splitlines()[-1] == (f"mlperf-bert run: interrupted during the {phase} phase; run folder "
                                            f"kept as {out_dir / 'r.interrupted'}")
    assert sorted(p.name for p in out_dir.iterdir()) == ["r.interrupted"]
    info = json.loads((out_dir / "r.interrupted" / "run.json").read_text())
    assert (info["status"], info["phase"]) == ("interrupted", phase)
    return info


@pytest.mark.parametrize("mode,scenario", [("accuracy", "Offline"), ("performance", "Offline"),
                                           ("performance", "SingleStream")])
def test_sigint_in_a_loadgen_phase_stops_within_seconds(tiny, tmp_path, mode, scenario):
    """One Ctrl-C: the SUT drains, LoadGen ends, the folder is .interrupted with LoadGen's logs, exit 130
    (before: ignored in accuracy mode; 'terminate called' and exit 134 in short phases)."""
    run = CliRun(_args(tiny, tmp_path / "runs", "--mode", mode, "--scenario", scenario, "--rules", "quick",
                        "--target-qps", "5", "--expected-latency-ms", "100"), tmp_path)
    run.wait_for(f"LoadGen {scenario} {mode} run")
    time.sleep(0.5)
    t0 = run.interrupt()
    rc, _, err = run.finish()
    assert time.monotonic() - t0 < 4.0  # the test alone would last 4 s or more
    info = _check_interrupted(rc, err, tmp_path / "runs", mode)
    logs = tmp_path / "runs" / "r.interrupted" / mode
    assert (logs / "mlperf_log_detail.txt").stat().st_size > 0
    assert '"key": "power_end"' in (logs / "mlperf_log_detail.txt").read_text()  # LoadGen ended the test
    if mode == "accuracy":  # every sample answered: the computed ones, then the drained ones empty
        entries = json.loads((logs / "mlperf_log_accuracy.json").read_text())
        assert sorted(e["qsl_idx"] for e in entries) == list(range(40))
        assert 0 < sum(e["data"] == "" for e in entries) < 40
    assert f"{mode}_settings" in info and "accuracy" not in info and "performance" not in info


def test_sigint_in_the_probe(tiny, tmp_path):
    run = CliRun(_args(tiny, tmp_path / "runs", "--mode", "performance", "--null-delay-ms", "300"), tmp_path)
    run.wait_for("probing throughput")
    time.sleep(0.3)
    run.interrupt()
    rc, _, err = run.finish()
    info = _check_interrupted(rc, err, tmp_path / "runs", "probe")
    assert sorted(p.name for p in (tmp_path / "runs" / "r.interrupted").iterdir()) == ["run.json"]
    assert "probe" not in info


@pytest.mark.parametrize("twice", [False, True])
def test_sigint_in_a_server_run_gives_up_waiting(tiny, tmp_path, twice):
    """LoadGen has no abort and a Server run keeps issuing: after a few seconds (or at a second Ctrl-C)
    the process leaves with exit 130 without C++ teardown under LoadGen's running thread."""
    run = CliRun(_args(tiny, tmp_path / "runs", "--mode", "performance", "--scenario", "Server", "--rules", "quick",
                        "--target-qps", "5", "--duration", "30"), tmp_path)
    run.wait_for("LoadGen Server performance run")
    time.sleep(0.5)
    t0 = run.interrupt()
    if twice:
        time.sleep(0.5)
        run.interrupt()
    rc, _, err = run.finish()
    waited = time.monotonic() - t0
    assert waited < (3.0 if twice else 10.0)
    _check_interrupted(rc, err, tmp_path / "runs", "performance")
    assert (tmp_path / "runs" / "r.interrupted" / "performance" / "mlperf_log_detail.txt").stat().st_size > 0


# -- the SUT's drain mode, in process -------------------------------------------------------------------
class _Completions:
    """Stands in for mlperf_loadgen.QuerySamplesComplete: records every completed response id."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, responses) -> None:
        with self.lock:
            self.ids.extend(int(r.id) for r in responses)


class _SlowBackend(EchoBackend):
    def __init__(self, release: threading.Event) -> None:
        super().__init__()
        self.release = release
        self.entered = threading.Event()

    def predict(self, input_ids, input_mask, segment_ids):
        self.entered.set()
        self.release.wait(10)
        return super().predict(input_ids, input_mask, segment_ids)


class _Sample:
    def __init__(self, i: int) -> None:
        self.id, self.index = 1000 + i, i


def test_interrupt_completes_in_flight_queued_and_new_samples_once(monkeypatch):
    """Drain mode: the batch inside the backend, the queued batches and later queries are each completed
    once, at once, with empty responses; the backend's late result is dropped."""
    import mlperf_bert.sut.sut as sut_module

    done = _Completions()
    monkeypatch.setattr(sut_module.lg, "QuerySamplesComplete", done)
    release = threading.Event()
    _, feats = synthetic_features(12)
    with SquadQSL(feats) as qsl:
        sut = BertSUT(_SlowBackend(release), qsl, SUTConfig(scenario="Offline", batcher=BatcherConfig(max_batch_size=2)))
        with sut:
            sut.issue_queries([_Sample(i) for i in range(10)])  # 5 batches: 1 in the backend, 4 queued
            assert sut.backend.entered.wait(5)
            sut.interrupt()
            assert sorted(done.ids) == [1000 + i for i in range(10)]  # all at once, before the backend returns
            sut.issue_queries([_Sample(10), _Sample(11)])  # issued after the interrupt
            release.set()
        assert sorted(done.ids) == [1000 + i for i in range(12)]  # each exactly once
        assert len(sut.backend.calls) == 1 and sut.error is None and sut.draining


def test_a_failing_callback_never_raises_into_loadgen(monkeypatch):
    """An error while planning a query is recorded and its samples completed empty (an exception thrown
    through LoadGen's C++ ends the process)."""
    import mlperf_bert.sut.sut as sut_module

    done = _Completions()
    monkeypatch.setattr(sut_module.lg, "QuerySamplesComplete", done)
    monkeypatch.setattr(sut_module, "batch_bounds", lambda *a: 1 / 0)
    _, feats = synthetic_features(4)
    with SquadQSL(feats) as qsl:
        with BertSUT(EchoBackend(), qsl, SUTConfig(scenario="SingleStream")) as sut:
            sut.issue_queries([_Sample(0), _Sample(1)])
    assert sorted(done.ids) == [1000, 1001] and isinstance(sut.error, ZeroDivisionError)


# -- run-name clashes and unwritable folders --------------------------------------------------------------
def test_leftover_partial_folder_is_one_line(tmp_path, capsys):
    """Checked before the data (missing here) and the model: one line, not FileExistsError."""
    (tmp_path / "runs" / "r.partial").mkdir(parents=True)
    rc = main(["run", "--backend", "null", "--output-dir", str(tmp_path / "runs"), "--run-name", "r",
               "--mode", "accuracy", "--dataset", str(tmp_path / "missing.json")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "Traceback" not in err
    assert err == (f"mlperf-bert run: error: run folder {tmp_path / 'runs' / 'r.partial'} already exists (a run "
                   "with this --run-name is running, or one was killed); pick another --run-name or remove it")


def test_clashing_names(tmp_path):
    """The mkdir is the lock: a second run with the same chosen name gets one line; an auto-generated name
    gets the next free suffix; folders in any state (complete, failed, interrupted) count as taken."""
    out = tmp_path / "runs"
    assert make_run_dir(out, "r", auto=False) == ("r", out / "r.partial")
    with pytest.raises(ConfigError, match=r"r\.partial already exists .*pick another --run-name"):
        make_run_dir(out, "r", auto=False)
    assert make_run_dir(out, "r", auto=True) == ("r-2", out / "r-2.partial")
    (out / "s.failed").mkdir()
    (out / "t.interrupted").mkdir()
    assert make_run_dir(out, "s", auto=True)[0] == "s-2"
    with pytest.raises(ConfigError, match=r"t\.interrupted already exists \(a run with this name exists\)"):
        make_run_dir(out, "t", auto=False)


def test_concurrent_runs_with_one_name_get_one_folder(tmp_path):
    out = tmp_path / "runs"
    results: list = []

    def claim() -> None:
        try:
            results.append(make_run_dir(out, "same", auto=False)[1])
        except ConfigError as exc:
            results.append(exc)

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(isinstance(r, Path) for r in results) == 1
    assert all("already exists" in str(r) for r in results if not isinstance(r, Path))


@pytest.mark.skipif(not Path("/sys").is_dir(), reason="needs /sys, where nobody (not even root) creates files")
def test_unwritable_output_dir_is_one_line(tmp_path, capsys):
    target = Path("/sys/mlperf-bert-test/runs")
    rc = main(["run", "--backend", "null", "--output-dir", str(target), "--mode", "accuracy",
               "--dataset", str(tmp_path / "missing.json")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "Traceback" not in err and "\n" not in err
    assert err.startswith(f"mlperf-bert run: error: --output-dir {target}: cannot write in /sys (")


def test_run_json_says_complete(tmp_path):
    from fakes import registry_with_fakes
    from mlperf_bert.backends.base import BackendConfig
    from mlperf_bert.config import DataPaths
    from mlperf_bert.runner import RunConfig, run

    examples, feats = synthetic_features(20)
    cfg = RunConfig(data=DataPaths(tmp_path / "x", tmp_path / "y", tmp_path), backend=BackendConfig(name="echo"),
                    loadgen=LoadGenConfig(rules="quick", quick_duration_s=0.1, expected_qps=1000),
                    modes=("performance",), output_dir=tmp_path / "runs", probe=False)
    a = run(cfg, registry=registry_with_fakes(), load_data=lambda *_: (examples, feats))
    b = run(cfg, registry=registry_with_fakes(), load_data=lambda *_: (examples, feats))
    assert a.run_dir != b.run_dir  # auto-generated names: within one second the second gets a suffix
    assert sorted(os.listdir(tmp_path / "runs")) == sorted([a.run_dir.name, b.run_dir.name])
    info = json.loads((a.run_dir / "run.json").read_text())
    assert info["status"] == "complete" and "phase" not in info
    assert np.isclose({s["key"]: s["value"] for s in info["performance_settings"]}["offline_expected_qps"], 1000)
