"""The SUT through the real LoadGen, with synthetic features and fake backends (no model needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fakes import EchoBackend, registry_with_fakes, synthetic_features
from mlperf_bert.backends.base import BackendConfig
from mlperf_bert.config import DataPaths
from mlperf_bert.errors import BackendFailure, ConfigError
from mlperf_bert.loadgen.settings import LoadGenConfig
from mlperf_bert.qsl.qsl import SquadQSL
from mlperf_bert.loadgen.session import run_test
from mlperf_bert.runner import RunConfig, run
from mlperf_bert.sut.batcher import BatcherConfig
from mlperf_bert.sut.sut import SUTConfig, check_scenario

N = 200


@pytest.fixture(scope="module")
def data():
    return synthetic_features(N)


def _accuracy_entries(path):
    return json.loads(path.read_text())


@pytest.mark.parametrize("scenario", ["Offline", "Server", "SingleStream", "MultiStream"])
@pytest.mark.parametrize("rows", ["trimmed", "full"])
def test_accuracy_mode_returns_each_samples_own_logits(tmp_path, data, scenario, rows):
    """Every sample answered exactly once with its own logits, whatever the batching."""
    _, feats = data
    backend = EchoBackend()
    sut_cfg = SUTConfig(scenario=scenario, response_rows=rows,
                        batcher=BatcherConfig(max_batch_size=8, token_budget=2048, server_max_wait_ms=1))
    lg_cfg = LoadGenConfig(scenario=scenario, mode="accuracy", rules="quick", expected_qps=20000,
                           expected_latency_ms=0.05)
    with SquadQSL(feats) as qsl:
        sut = run_test(backend, qsl, sut_cfg, lg_cfg, tmp_path).sut
    assert sut.error is None
    assert sut.samples_completed == N
    entries = _accuracy_entries(tmp_path / "mlperf_log_accuracy.json")
    assert sorted(e["qsl_idx"] for e in entries) == list(range(N))
    lengths = feats.lengths
    for e in entries:
        i = e["qsl_idx"]
        got = np.frombuffer(bytes.fromhex(e["data"]), dtype="<f4").reshape(-1, 2)
        n = int(lengths[i]) if rows == "trimmed" else 384
        assert got.shape == (n, 2)
        real = int(lengths[i])
        np.testing.assert_array_equal(got[:real, 0], feats.input_ids[i, :real].astype(np.float32))
        np.testing.assert_array_equal(got[:real, 1], -feats.input_ids[i, :real].astype(np.float32))
        if rows == "full":  # past the batch's padded length: the scorer's pad value
            assert np.all((got[real:, 0] == 0) | (got[real:, 0] == -10000.0))
    # batches never exceed the token budget (unless a single sample)
    for b, length in backend.calls:
        assert b == 1 or b * length <= 2048
        assert b <= 8


@pytest.mark.parametrize("scenario", ["Offline", "Server", "SingleStream", "MultiStream"])
def test_performance_run_produces_summary(tmp_path, data, scenario):
    examples, feats = data
    cfg = RunConfig(
        data=DataPaths(dataset=tmp_path / "unused.json", vocab=tmp_path / "unused.txt", cache_dir=tmp_path),
        backend=BackendConfig(name="echo"),
        sut=SUTConfig(scenario=scenario, batcher=BatcherConfig(max_batch_size=8, server_max_wait_ms=1)),
        loadgen=LoadGenConfig(scenario=scenario, rules="quick", quick_duration_s=0.5),
        modes=("performance",), output_dir=tmp_path / "runs", run_name="r",
    )
    res = run(cfg, registry=registry_with_fakes(), load_data=lambda *a: (examples, feats))
    assert res.run_dir == tmp_path / "runs" / "r"
    summary = (res.run_dir / "performance" / "mlperf_log_summary.txt").read_text()
    assert f"Scenario : {scenario}" in summary
    assert res.performance.scenario == scenario
    assert res.performance.samples_per_second > 0
    assert res.probe["samples_per_second"] > 0
    info = json.loads((res.run_dir / "run.json").read_text())
    assert info["performance"]["scenario"] == scenario
    assert info["config"]["sut"]["scenario"] == scenario
    assert not (tmp_path / "runs" / "r.partial").exists()


def test_backend_failure_completes_all_samples_and_fails_the_run(tmp_path, data):
    examples, feats = data
    cfg = RunConfig(
        data=DataPaths(dataset=tmp_path / "x", vocab=tmp_path / "y", cache_dir=tmp_path),
        backend=BackendConfig(name="echo", options={"fail_after": 3}),
        sut=SUTConfig(scenario="Offline", batcher=BatcherConfig(max_batch_size=4)),
        loadgen=LoadGenConfig(scenario="Offline", rules="quick", quick_duration_s=0.2, expected_qps=1000),
        modes=("performance",), output_dir=tmp_path / "runs", run_name="bad", probe=False,
    )
    with pytest.raises(BackendFailure, match="simulated accelerator fault"):
        run(cfg, registry=registry_with_fakes(), load_data=lambda *a: (examples, feats))
    failed = tmp_path / "runs" / "bad.failed"
    assert (failed / "performance" / "mlperf_log_summary.txt").is_file()  # LoadGen finished, logs kept
    info = json.loads((failed / "run.json").read_text())
    assert "simulated accelerator fault" in info["error"]


def test_unknown_scenario_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown scenario 'Ofline'.*Offline, Server"):
        check_scenario("Ofline")
    assert check_scenario("offline") == "Offline"


def test_probe_sizes_the_performance_run():
    from mlperf_bert.runner import OFFLINE_PROBE_MARGIN, _apply_probe

    probe = {"samples_per_second": 8.0, "query_latency_ms": 90.0}
    assert OFFLINE_PROBE_MARGIN == 1.25
    assert _apply_probe(LoadGenConfig(scenario="Offline"), probe).expected_qps == 10.0  # Offline: 1.25x
    assert _apply_probe(LoadGenConfig(scenario="Server"), probe).expected_qps == 4.0  # Server: half
    assert _apply_probe(LoadGenConfig(scenario="SingleStream"), probe).expected_latency_ms == 90.0
