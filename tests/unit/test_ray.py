"""Backend replicas on Ray (``distributed.ray_pool``) behind the one SUT: every sample answered once with the
local logits, a replica killed mid-run, all replicas killed, a backend error inside a replica, Ctrl-C, and
a two-node cluster on 127.0.0.1 scoring like a local run.

One Ray cluster (a head and a worker node on this machine, 1 CPU each; ``ray.cluster_utils.Cluster``) is
shared by the tests of this module; replicas ask for half a CPU so two fit anywhere. The actors import the
fake backends from this folder, so it is put on the nodes' PYTHONPATH before they start. Every test that
runs LoadGen is bounded by ``deadline`` (SIGALRM), so a hang fails instead of blocking the suite.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from fakes import ECHO_SPEC, EchoBackend, registry_with_fakes, synthetic_features
from raycluster import TESTS, deadline, needs_ray, two_node_cluster
from mlperf_bert.backends.base import BackendConfig
from mlperf_bert.config import DataPaths
from mlperf_bert.errors import BackendFailure, BackendUnavailable, ConfigError
from mlperf_bert.loadgen.session import run_test
from mlperf_bert.loadgen.settings import LoadGenConfig
from mlperf_bert.qsl.qsl import SquadQSL
from mlperf_bert.runner import RunConfig, run
from mlperf_bert.sut.batcher import BatcherConfig
from mlperf_bert.sut.sut import SUTConfig, worker_count

N = 200


@pytest.fixture(scope="module")
def cluster():
    """A head and a worker node on 127.0.0.1 (1 CPU each), and this process connected to it."""
    with two_node_cluster() as c:
        yield c


@pytest.fixture(scope="module")
def data():
    return synthetic_features(N)


def _pool(options: dict, replicas: int = 2, **dist):
    from mlperf_bert.distributed.ray_pool import DistributedConfig, RayReplicaPool

    return RayReplicaPool.start(ECHO_SPEC, BackendConfig("echo", options=options),
                                DistributedConfig(replicas=replicas, replica_cpus=0.5, **dist))


def _accuracy_run(pool, feats, scenario: str, out: Path, during=None):
    """An accuracy-mode LoadGen test of ``pool`` behind the SUT; ``during(pool)`` runs in a thread."""
    sut_cfg = SUTConfig(scenario=scenario, batcher=BatcherConfig(max_batch_size=4, token_budget=2048,
                                                                 server_max_wait_ms=1))
    lg_cfg = LoadGenConfig(scenario=scenario, mode="accuracy", rules="quick", expected_qps=5000)
    helper = threading.Thread(target=during, args=(pool,), daemon=True) if during else None
    with SquadQSL(feats) as qsl:
        if helper:
            helper.start()
        sut = run_test(pool, qsl, sut_cfg, lg_cfg, out).sut
    if helper:
        helper.join(10)
    return sut, sut_cfg


def _assert_each_sample_once_with_echo_logits(out: Path, feats) -> None:
    """The accuracy log holds every sample once, each with the logits a local EchoBackend gives it."""
    entries = json.loads((out / "mlperf_log_accuracy.json").read_text())
    assert sorted(e["qsl_idx"] for e in entries) == list(range(N))
    local = EchoBackend()
    for e in entries:
        i, n = e["qsl_idx"], int(feats.lengths[e["qsl_idx"]])
        got = np.frombuffer(bytes.fromhex(e["data"]), dtype="<f4").reshape(-1, 2)
        want = local.predict(feats.input_ids[i:i + 1, :n], feats.input_mask[i:i + 1, :n],
                             feats.segment_ids[i:i + 1, :n])[0]
        np.testing.assert_array_equal(got, want)


def _wait_batches(pool, at_least: int, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while sum(r.batches for r in pool.replicas) < at_least and time.monotonic() < end:
        time.sleep(0.005)


# -- no Ray needed -----------------------------------------------------------------------------------
def test_missing_ray_is_one_line_naming_the_extra(monkeypatch):
    from mlperf_bert.distributed.ray_pool import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # ``import ray`` raises ImportError
    with pytest.raises(BackendUnavailable) as err:
        import_ray()
    assert str(err.value) == "--replicas needs Ray, which is not installed; pip install 'mlperf-bert[ray]'"


def test_replica_flags_need_replicas_and_sane_values(tmp_path, capsys):
    from mlperf_bert.cli import main as cli_main

    base = ["run", "--backend", "null", "--output-dir", str(tmp_path), "--no-progress"]
    assert cli_main([*base, "--replica-cpus", "1"]) == 2
    assert capsys.readouterr().err.strip().endswith("--replica-cpus needs --replicas N")
    assert cli_main([*base, "--replicas", "0"]) == 2
    assert capsys.readouterr().err.strip().endswith("--replicas 0: must be >= 1")
    assert not any(tmp_path.iterdir())  # refused before any work


@pytest.mark.parametrize("address", ["127.0.0.1", "head", "head:", ":6379", "head:0", "head:65536",
                                     "notahost:99999", "head:port", "head:-1", "head:²", "ray://head"])
def test_a_malformed_ray_address_is_one_line_naming_the_flag(address):
    from mlperf_bert.distributed.ray_pool import DistributedConfig

    with pytest.raises(ConfigError) as err:
        DistributedConfig(address=address)
    assert str(err.value) == (f"--ray-address {address!r}: give 'auto' or HOST:PORT with a port in 1..65535 "
                              "(leave it out for a local Ray)")


def test_ray_address_forms_that_are_accepted():
    from mlperf_bert.distributed.ray_pool import DistributedConfig, ray_head

    assert ray_head("auto") is None
    assert ray_head("10.0.0.5:6379") == ("10.0.0.5", 6379)
    assert ray_head("[::1]:65535") == ("::1", 65535)
    assert ray_head("ray://head.example:10001") == ("head.example", 10001)
    assert DistributedConfig(address="head:1").address == "head:1"


def test_a_malformed_ray_address_is_refused_by_the_cli_before_any_work(tmp_path, capsys):
    from mlperf_bert.cli import main as cli_main

    argv = ["run", "--backend", "null", "--output-dir", str(tmp_path), "--no-progress", "--replicas", "2",
            "--ray-address", "notahost:99999"]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.endswith("--ray-address 'notahost:99999': give 'auto' or HOST:PORT with a port in 1..65535 "
                        "(leave it out for a local Ray)")
    assert not any(tmp_path.iterdir())


def _closed_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (bound, then closed)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _NoRay:
    """A stand-in ``ray`` module that records calls; ``init`` must never be reached."""

    def __init__(self):
        self.calls: list[str] = []

    def is_initialized(self):
        return False

    def init(self, **kwargs):
        self.calls.append("init")
        raise AssertionError("ray.init called for an address where nothing listens")

    def shutdown(self):
        self.calls.append("shutdown")


@pytest.mark.parametrize("host", ["127.0.0.1", "nosuchhost.invalid"])  # RFC 6761: .invalid never resolves
def test_a_ray_address_where_nothing_listens_fails_in_seconds_before_ray_init(monkeypatch, host):
    """``ray.init`` would retry the GCS for minutes printing Ray's warnings; the pool checks the TCP port
    first. No Ray is needed: a stand-in module proves ``ray.init`` is never called."""
    from mlperf_bert.distributed import ray_pool
    from mlperf_bert.distributed.ray_pool import DistributedConfig, RayReplicaPool

    fake = _NoRay()
    monkeypatch.setattr(ray_pool, "import_ray", lambda: fake)
    port = 6379 if host.endswith(".invalid") else _closed_port()
    address = f"{host}:{port}"
    with deadline(5), pytest.raises(ConfigError) as err:
        RayReplicaPool.start(ECHO_SPEC, BackendConfig("echo"), DistributedConfig(replicas=2, address=address))
    msg = str(err.value)
    assert len(msg.splitlines()) == 1
    if host == "127.0.0.1":
        assert msg.startswith(f"--ray-address {address}: nothing accepts a connection at {address} (")
        assert msg.endswith("); start the head with 'ray start --head', or leave --ray-address out for a local Ray")
    else:
        assert msg.startswith(f"--ray-address {address}: cannot resolve host 'nosuchhost.invalid' (")
    assert "init" not in fake.calls


def test_run_json_round_trip_command_line_and_system_description_keep_the_cluster(tmp_path):
    """compliance reruns get the same replicas (run.json -> RunConfig), a missing scenario's command names
    them, and the system description counts the nodes that hosted replicas."""
    from mlperf_bert.distributed.ray_pool import DistributedConfig
    from mlperf_bert.fileio import jsonable
    from mlperf_bert.machine import read_machine
    from mlperf_bert.submission.compliance import run_config_from_json
    from mlperf_bert.submission.system import missing_fields, system_description
    from mlperf_bert.submission.tree import command_line

    cfg = RunConfig(data=DataPaths(tmp_path / "d.json", tmp_path / "v.txt", tmp_path), backend=BackendConfig("null"),
                    distributed=DistributedConfig(replicas=3, replica_gpus=1, address="auto"))
    info = {"config": jsonable(cfg)}
    assert run_config_from_json(json.loads(json.dumps(info))) == cfg
    assert command_line(info).endswith(" --replicas 3 --replica-inflight 2 --replica-gpus 1 --ray-address auto")
    cluster = {"ray_version": "2.60.0", "nodes": 2, "replicas": 3,
               "per_replica": {"cpus": 4, "gpus": 1, "threads": 4, "inflight": 2}}
    args = dict(facts=read_machine(use_tools=False), submitter="acme", division="closed", system_name="box",
                framework="ONNX Runtime", versions={}, system_type="edge")
    two = system_description(**args, cluster=cluster)
    assert two["number_of_nodes"] == 2
    assert two["sw_notes"].endswith("; Ray 2.60.0: LoadGen, QSL and batching in one driver process, 3 backend "
                                    "replica(s) on 2 node(s), 4 CPU / 1 GPU / 4 thread(s) each")
    assert two["host_networking_topology"] == ""
    assert ("host_networking_topology", True) in missing_fields(two, "current")
    one = system_description(**args, cluster={**cluster, "nodes": 1})
    assert one["number_of_nodes"] == 1 and one["host_networking_topology"] == "N/A (single node)"
    assert system_description(**args)["number_of_nodes"] == 1


# -- one Ray cluster for the rest ------------------------------------------------------------------
@needs_ray
@pytest.mark.parametrize("scenario", ["Offline", "Server"])
def test_two_replicas_answer_every_sample_once_with_local_logits(cluster, data, tmp_path, scenario):
    """The SUT runs replicas x in-flight workers; both replicas serve batches; every sample is completed
    once, with the bytes a local backend gives it."""
    _, feats = data
    with deadline(120):
        pool = _pool({"delay_ms": 2.0})
        try:
            assert pool.slots == 4 and worker_count(pool, SUTConfig(workers=1)) == 4
            sut, _ = _accuracy_run(pool, feats, scenario, tmp_path)
            record = pool.cluster_record()
        finally:
            pool.close()
    assert sut.error is None
    assert sut.samples_completed == N
    _assert_each_sample_once_with_echo_logits(tmp_path, feats)
    served = [r["samples"] for r in record["replica_list"]]
    assert sum(served) == N and min(served) > 0  # the query was split across both replicas
    assert record["replicas"] == 2 and record["per_replica"] == {"cpus": 0.5, "gpus": 0.0, "threads": 1,
                                                                 "inflight": 2}
    assert record["losses"] == [] and record["nodes"] in (1, 2)


@needs_ray
def test_a_replica_killed_mid_run_costs_a_retry_not_the_run(cluster, data, tmp_path):
    """``ray.kill`` on replica 1 while it holds batches: they run again on replica 0; every sample is
    still answered once with its own logits, and the loss is recorded."""
    import ray

    _, feats = data
    seen = {}

    def kill_one(pool):
        _wait_batches(pool, 6)
        seen["inflight"] = pool.replicas[1].inflight
        seen["done_0"] = pool.replicas[0].batches
        ray.kill(pool.replicas[1].actor)

    with deadline(120):
        pool = _pool({"delay_ms": 20.0})
        try:
            sut, _ = _accuracy_run(pool, feats, "Offline", tmp_path, during=kill_one)
        finally:
            pool.close()
    assert sut.error is None
    assert sut.samples_completed == N
    _assert_each_sample_once_with_echo_logits(tmp_path, feats)
    assert seen["inflight"] >= 1  # it died holding work
    assert [x["replica"] for x in pool.losses] == [1] and "ActorDiedError" in pool.losses[0]["cause"]
    assert not pool.replicas[1].alive and pool.replicas[0].batches > seen["done_0"]


@needs_ray
def test_all_replicas_killed_fails_the_run_in_one_line(cluster, data, tmp_path, monkeypatch):
    """No replica left: BackendFailure in one line, a .failed folder with LoadGen's logs, no hang."""
    import ray

    from mlperf_bert.distributed.ray_pool import DistributedConfig, RayReplicaPool

    examples, feats = data
    pools = []
    start = RayReplicaPool.start.__func__

    def capture(cls, *a, **kw):
        pools.append(start(cls, *a, **kw))
        return pools[-1]

    monkeypatch.setattr(RayReplicaPool, "start", classmethod(capture))

    def on_event(msg):
        if msg.startswith("LoadGen"):
            def kill_all():
                _wait_batches(pools[0], 4)
                for r in pools[0].replicas:
                    ray.kill(r.actor)
            threading.Thread(target=kill_all, daemon=True).start()

    cfg = RunConfig(data=DataPaths(dataset=tmp_path / "x", vocab=tmp_path / "y", cache_dir=tmp_path),
                    backend=BackendConfig(name="echo", options={"delay_ms": 20.0}),
                    sut=SUTConfig(scenario="Offline", batcher=BatcherConfig(max_batch_size=4)),
                    loadgen=LoadGenConfig(scenario="Offline", rules="quick", quick_duration_s=0.2, expected_qps=200),
                    modes=("performance",), output_dir=tmp_path / "runs", run_name="gone", probe=False,
                    distributed=DistributedConfig(replicas=2, replica_cpus=0.5))
    with deadline(120), pytest.raises(BackendFailure) as err:
        run(cfg, registry=registry_with_fakes(), load_data=lambda *a: (examples, feats), progress=False,
            on_event=on_event)
    msg = str(err.value)
    assert "\n" not in msg and "no replica left: all 2 were lost" in msg, msg
    failed = tmp_path / "runs" / "gone.failed"
    assert (failed / "performance" / "mlperf_log_summary.txt").is_file()  # LoadGen finished
    info = json.loads((failed / "run.json").read_text())
    assert info["status"] == "failed" and "no replica left" in info["error"]
    assert sorted(x["replica"] for x in info["cluster"]["losses"]) == [0, 1]
    assert info["config"]["distributed"]["replicas"] == 2


@needs_ray
def test_a_backend_error_in_a_replica_names_it_and_is_not_retried(cluster, data, tmp_path):
    _, feats = data
    with deadline(120):
        pool = _pool({"fail_after": 1}, replicas=2)
        try:
            sut, _ = _accuracy_run(pool, feats, "Offline", tmp_path)
        finally:
            pool.close()
    assert sut.samples_completed == N  # every sample still completed (empty after the failure)
    assert isinstance(sut.error, BackendFailure)
    assert pool.losses == [] and all(r.alive for r in pool.replicas)  # a backend error loses no replica
    msg = str(sut.error)
    assert msg.startswith("replica ") and " on node " in msg
    assert msg.endswith(": RuntimeError: simulated accelerator fault"), msg


@needs_ray
def test_a_replica_that_cannot_load_names_itself(cluster):
    from mlperf_bert.distributed.ray_pool import DistributedConfig, RayReplicaPool
    from mlperf_bert.errors import ModelError

    registry = registry_with_fakes()
    cfg = BackendConfig("onnxruntime", model=Path("/nonexistent/model.onnx"), device="cpu")
    with deadline(120), pytest.raises(ModelError) as err:
        RayReplicaPool.start(registry.spec("onnxruntime"), cfg, DistributedConfig(replicas=1, replica_cpus=0.5))
    assert str(err.value).startswith("replica 0 on node ") and "/nonexistent/model.onnx" in str(err.value)


@needs_ray
def test_the_address_of_a_running_head_passes_the_connection_check(cluster):
    from mlperf_bert.distributed.ray_pool import DistributedConfig, check_ray_head, ray_head

    host, port = ray_head(DistributedConfig(address=cluster.address).address)
    assert port > 0 and host in cluster.address
    check_ray_head(cluster.address)  # the GCS port of the live head accepts a connection: no error


@needs_ray
def test_more_cpus_than_the_cluster_has_is_one_line(cluster):
    from mlperf_bert.distributed.ray_pool import DistributedConfig, RayReplicaPool

    with pytest.raises(ConfigError, match=r"^--replicas 3 x --replica-cpus 1 = 3 CPUs, but the Ray cluster has 2$"):
        RayReplicaPool.start(ECHO_SPEC, BackendConfig("echo"), DistributedConfig(replicas=3, replica_cpus=1))


@needs_ray
def test_compliance_test01_reruns_through_the_same_replicas(cluster, synthetic_vocab, tmp_path):
    """A submission run on 2 replicas, then TEST01 from its run.json: the rerun uses the replicas again and its
    sampled responses equal the accuracy run's byte for byte."""
    import test_submission_support as sup
    from mlperf_bert.distributed.ray_pool import DistributedConfig
    from mlperf_bert.submission.compliance import run_compliance

    examples, feats = sup.data()
    cfg = RunConfig(
        data=DataPaths(dataset=tmp_path / "unused.json", vocab=synthetic_vocab, cache_dir=tmp_path),
        backend=BackendConfig(name="oracle"),
        sut=SUTConfig(scenario="Offline", batcher=BatcherConfig(max_batch_size=16, token_budget=4096)),
        loadgen=LoadGenConfig(scenario="Offline", rules="quick", quick_duration_s=0.3, expected_qps=2000),
        output_dir=tmp_path / "runs", run_name="sub", probe=False,
        distributed=DistributedConfig(replicas=2, replica_cpus=0.5))
    with deadline(300):
        sub = run(cfg, registry=sup.registry(), load_data=lambda *a: (examples, feats), progress=False)
        res = run_compliance("TEST01", sub.run_dir, tmp_path / "comp", registry=sup.registry(),
                             load_data=lambda *a: (examples, feats), scorer=sup.scorer_for(synthetic_vocab), progress=False,
                             perf_tolerance=100.0, quiet_wait_s=None)
    assert sub.accuracy.f1 == 100.0 and sub.info["cluster"]["replicas"] == 2
    from rich.console import Console

    from mlperf_bert.report.terminal import print_run_summary

    console = Console(record=True, width=200)
    print_run_summary(sub, cfg, console=console)
    assert re.search(r"│ replicas +│ 2 on [12] node\(s\) \(Ray [0-9.]+\), 0\.5 CPU / 0 GPU / 1 thread\(s\) each",
                     console.export_text())
    assert res.passed and res.log.identical and res.log.test_entries > 0 and res.log.mismatched == 0
    reruns = [json.loads(p.read_text()) for p in (tmp_path / "comp").rglob("run.json")]
    assert reruns and all(r["cluster"]["replicas"] == 2 and r["config"]["distributed"] == cfg.distributed.__dict__
                          for r in reruns)


_CTRL_C = textwrap.dedent('''
    """A run on a local Ray it starts itself, stopped by SIGINT during LoadGen; prints what is left."""
    import json, os, signal, sys, threading
    from pathlib import Path
    from fakes import registry_with_fakes, synthetic_features
    from mlperf_bert.backends.base import BackendConfig
    from mlperf_bert.config import DataPaths
    from mlperf_bert.distributed.ray_pool import DistributedConfig
    from mlperf_bert.errors import RunInterrupted
    from mlperf_bert.loadgen.settings import LoadGenConfig
    from mlperf_bert.runner import RunConfig, run
    from mlperf_bert.sut.batcher import BatcherConfig
    from mlperf_bert.sut.sut import SUTConfig

    out = Path(sys.argv[1])

    def children(pid):
        kids = []
        for d in Path("/proc").iterdir():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if d.name.isdigit() and int(fields[1]) == pid and fields[0] != "Z":
                kids += [int(d.name)] + children(int(d.name))
        return kids

    def on_event(msg):
        if msg.startswith("LoadGen"):
            seen["ray_processes"] = len(children(os.getpid()))
            threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()

    seen = {}
    examples, feats = synthetic_features(200)
    cfg = RunConfig(data=DataPaths(out / "x", out / "y", out),
                    backend=BackendConfig("echo", options={"delay_ms": 1000}),
                    sut=SUTConfig("Offline", batcher=BatcherConfig(max_batch_size=4)),
                    loadgen=LoadGenConfig(scenario="Offline"), modes=("accuracy",),
                    output_dir=out / "runs", run_name="stop", distributed=DistributedConfig(replicas=2))
    try:
        run(cfg, registry=registry_with_fakes(), load_data=lambda *a: (examples, feats), progress=False,
            on_event=on_event)
    except RunInterrupted as exc:
        seen["interrupted"] = str(exc)
    import ray
    seen["ray_initialized"] = ray.is_initialized()
    seen["left"] = len(children(os.getpid()))
    print(json.dumps(seen))
    os._exit(0)
''')


@needs_ray
def test_ctrl_c_stops_loadgen_the_actors_and_the_ray_it_started(tmp_path):
    """In a fresh process (no Ray yet): the run starts a local Ray; SIGINT during LoadGen drains the SUT, and
    the runner's cleanup kills the actors and stops that Ray before returning."""
    script = tmp_path / "stop.py"
    script.write_text(_CTRL_C)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.run([sys.executable, str(script), str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["ray_processes"] >= 2  # a GCS and a raylet (and workers) ran as this process's children
    assert "interrupted during the accuracy phase" in seen["interrupted"]
    assert seen["ray_initialized"] is False and seen["left"] == 0
    assert (tmp_path / "runs" / "stop.interrupted" / "run.json").is_file()


@needs_ray
def test_two_node_cluster_scores_like_a_local_run(cluster, tiny_model, tmp_path):
    """One ONNX Runtime replica per node (1 CPU, 1 thread each), batches of one, on 100 tiny SQuAD questions
    and the tiny random BERT: the accuracy log holds the same bytes as a local run at 1 thread, so the F1 is the same to the last
    digit (the small model's full-dev F1 through Ray is in the README, measured by ``run --replicas 2``)."""
    from mlperf_bert.distributed.ray_pool import DistributedConfig

    from fakes import TINY_CONTEXTS, write_tiny_squad

    dataset, vocab = write_tiny_squad(tmp_path / "squad", contexts=TINY_CONTEXTS, repeat=50)
    paths = DataPaths(dataset=dataset, vocab=vocab, cache_dir=tmp_path / "cache")
    common = dict(data=paths, backend=BackendConfig("onnxruntime", model=tiny_model, device="cpu", threads=1,
                                                    cache_dir=paths.cache_dir),
                  sut=SUTConfig("Offline", batcher=BatcherConfig(max_batch_size=1)),
                  loadgen=LoadGenConfig(scenario="Offline"), modes=("accuracy",), output_dir=tmp_path)
    with deadline(600):
        local = run(RunConfig(**common, run_name="local"), progress=False)
        ray_run = run(RunConfig(**common, run_name="ray", distributed=DistributedConfig(replicas=2, replica_cpus=1)),
                      progress=False)
    info = json.loads((ray_run.run_dir / "run.json").read_text())
    c = info["cluster"]
    assert c["nodes"] == 2 and len({r["node_id"] for r in c["replica_list"]}) == 2  # one replica per node
    assert all(r["samples"] > 0 for r in c["replica_list"])
    assert ray_run.accuracy.questions_total == 100 and ray_run.accuracy.duplicates == 0
    assert round(ray_run.accuracy.f1, 4) == round(local.accuracy.f1, 4)
    assert ray_run.accuracy.f1 == local.accuracy.f1

    def responses(r):
        entries = json.loads((r.run_dir / "accuracy" / "mlperf_log_accuracy.json").read_text())
        return {e["qsl_idx"]: e["data"] for e in entries}

    assert responses(ray_run) == responses(local)  # every logit equal, byte for byte


@needs_ray
def test_replicas_size_their_own_threads_unless_given(cluster, data, tmp_path):
    """The harness rule (cores // workers) is for one process: with replicas, a replica's threads default to
    its Ray CPUs. Was: every replica got the driver's cores // workers (4 // 1 = 4 here)."""
    from mlperf_bert.distributed.ray_pool import DistributedConfig
    from mlperf_bert.tune import resolve_harness

    examples, feats = data
    reg = registry_with_fakes()
    harness, backend = resolve_harness("Offline", BackendConfig("echo"), {"workers": 1}, reg, use_profiles=False,
                                       cores=4)
    assert backend.threads == 4 and harness.sources["threads"] == "default:cores/workers"
    common = dict(data=DataPaths(dataset=tmp_path / "x", vocab=tmp_path / "y", cache_dir=tmp_path),
                  sut=SUTConfig(scenario="Offline", batcher=BatcherConfig(max_batch_size=8)),
                  loadgen=LoadGenConfig(scenario="Offline", rules="quick", quick_duration_s=0.2, expected_qps=500),
                  modes=("performance",), probe=False, output_dir=tmp_path / "runs", harness=harness,
                  distributed=DistributedConfig(replicas=2, replica_cpus=1))
    with deadline(120):
        own = run(RunConfig(backend=backend, run_name="own", **common), registry=reg,
                  load_data=lambda *a: (examples, feats), progress=False)
        given = run(RunConfig(backend=dataclasses.replace(backend, threads=3), run_name="given",
                              **{**common, "harness": None}),
                    registry=reg, load_data=lambda *a: (examples, feats), progress=False)
    assert own.info["cluster"]["per_replica"]["threads"] == 1  # its one Ray CPU
    assert given.info["cluster"]["per_replica"]["threads"] == 3  # --threads 3 wins
