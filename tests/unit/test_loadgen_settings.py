"""LoadGen settings: user.conf read as LoadGen reads it, checked before any work, never overridden by the
probe, and every effective setting listed with its source."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fakes import EchoBackend, registry_with_fakes, synthetic_features
from mlperf_bert.backends.base import BackendConfig
from mlperf_bert.cli import main
from mlperf_bert.config import DataPaths
from mlperf_bert.errors import ConfigError
from mlperf_bert.loadgen.session import run_test
from mlperf_bert.loadgen.settings import (
    SOURCE_MLPERF_CONF,
    LoadGenConfig,
    build_test_settings,
    read_user_conf,
    trace_by_default,
)
from mlperf_bert.qsl.qsl import SquadQSL
from mlperf_bert.runner import RunConfig, run
from mlperf_bert.sut.batcher import BatcherConfig
from mlperf_bert.sut.sut import SUTConfig

#: Prints every TestSettings attribute after LoadGen's own FromConfig(user.conf) in a fresh process (LoadGen
#: loads its mlperf.conf only at the first user-conf call of a process).
_LOADGEN_READS = """
import json, sys, mlperf_loadgen as lg
ts = lg.TestSettings()
rc = ts.FromConfig(sys.argv[1], "bert", sys.argv[2], 1)
print(json.dumps({"rc": rc, **{a: str(getattr(ts, a)) for a in dir(ts) if not a.startswith("_") and a != "FromConfig"}}))
"""


def _conf(tmp_path, text, name="user.conf"):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("scenario,text", [
    ("Offline", "bert.Offline.target_qps = 123\n*.*.min_duration = 2000\n# a comment\n\n*.Offline.min_query_count = 77\n"),
    ("Server", "bert.Server.target_qps = 2.14\nbert.Server.min_query_count = 2000\n*.Server.target_latency = 100\n"
               "bert.*.target_latency_percentile = 97\nbert.Server.coalesce_queries = 1\n"),
    ("SingleStream", "bert.SingleStream.target_latency = 0.5\nbert.*.max_duration = 9000\n*.*.max_query_count = 5\n"
                     "bert.SingleStream.target_latency_percentile = 90\n"),
    ("MultiStream", "bert.MultiStream.target_latency = 12.5\nbert.MultiStream.samples_per_query = 4\n"
                    "*.*.performance_sample_count_override = 500\nbert.*.min_duration = 1000\n*.*.min_duration = 5\n"),
])
def test_user_conf_applied_exactly_as_loadgen_reads_it(tmp_path, scenario, text):
    """Our reading of user.conf gives every TestSettings attribute LoadGen's own FromConfig gives."""
    conf = _conf(tmp_path, text)
    proc = subprocess.run([sys.executable, "-c", _LOADGEN_READS, str(conf), scenario], capture_output=True,
                          text=True, check=True)
    theirs = json.loads(proc.stdout)
    assert theirs.pop("rc") == 0
    built = build_test_settings(LoadGenConfig(scenario=scenario, mode="performance", user_conf=conf))
    ours = {s.key: str(getattr(built.test_settings, s.key)) for s in built.effective}
    for key in ("scenario", "mode"):  # set by the harness from --scenario / --mode
        ours.pop(key), theirs.pop(key)
    assert ours == theirs
    user_keys = {s.key for s in built.effective if s.source.startswith("user.conf:")}
    assert user_keys  # and those are labelled with their file and line
    assert all(s.source.startswith(f"user.conf:{conf}:") for s in built.effective if s.key in user_keys)


def test_sources_and_precedence(tmp_path):
    """mlperf.conf < rules preset < user.conf < flags; each value labelled with where it came from."""
    conf = _conf(tmp_path, "bert.Offline.target_qps = 123\n*.*.min_duration = 2000\n")
    cfg = LoadGenConfig(scenario="Offline", rules="v1.0", user_conf=conf, min_query_count=5)
    s = build_test_settings(cfg)
    assert (s.get("offline_expected_qps").value, s.get("offline_expected_qps").source) == (123.0, f"user.conf:{conf}:1")
    assert (s.get("min_duration_ms").value, s.get("min_duration_ms").source) == (2000, f"user.conf:{conf}:2")
    assert (s.get("min_query_count").value, s.get("min_query_count").source) == (5, "flag:--min-query-count")
    assert (s.get("qsl_rng_seed").value, s.get("qsl_rng_seed").source) == (7322528924094909334, "rules:v1.0")
    assert (s.get("performance_sample_count_override").value,
            s.get("performance_sample_count_override").source) == (10833, SOURCE_MLPERF_CONF)
    assert s.get("scenario").value == "Offline" and s.get("mode").value == "PerformanceOnly"
    assert {x.key for x in s.changed("Offline")} >= {"offline_expected_qps", "min_duration_ms", "qsl_rng_seed"}


@pytest.mark.parametrize("text,line,key,problem", [
    ("bert.Offline.target_qps = fast\n", 1, "bert.Offline.target_qps", "value 'fast' is not a number"),
    ("# ok\nbert.Offline.target_qps=5\n", 2, "bert.Offline.target_qps", "spaces around '='"),
    ("\nbert.Offline.target_qps = 5 # fast\n", 2, "bert.Offline.target_qps", "a comment after the value"),
    ("bert.Offline.target_qps = 5 6\n", 1, "bert.Offline.target_qps", "more than one value"),
    ("bert.Offline.target_qps =\n", 1, "bert.Offline.target_qps", "no value"),
    ("bert.Offline.target_qps : 5\n", 1, "bert.Offline.target_qps", "expected 'key = value'"),
    ("bert.Offline.target_qsp = 5\n", 1, "bert.Offline.target_qsp", "unknown key 'target_qsp'"),
    ("resnet50.Offline.target_qps = 5\n", 1, "resnet50.Offline.target_qps", "a key for model 'resnet50'"),
    ("bert.Server.target_qps = 5\n", 1, "bert.Server.target_qps", "a key for scenario 'Server'; this run is Offline"),
    ("bert.offline.target_qps = 5\n", 1, "bert.offline.target_qps", "unknown scenario 'offline'"),
    ("bert.*.target_latency = 5\n", 1, "bert.*.target_latency", "applies to SingleStream/MultiStream/Server"),
    ("bert.Offline.min_duration = 1.5\n", 1, "bert.Offline.min_duration", "whole number"),
    ("bert.Offline.min_query_count = -1\n", 1, "bert.Offline.min_query_count", "whole number"),
    ("bert.Offline.target_qps = inf\n", 1, "bert.Offline.target_qps", "not a number"),
    ("bert.Offline.target_qps = -5\n", 1, "bert.Offline.target_qps", "target_qps must be > 0"),
    ("bert.Offline.target_qps = 0\n", 1, "bert.Offline.target_qps", "target_qps must be > 0"),
    ("bert.*.qsl_rng_seed = 1\n", 1, "bert.*.qsl_rng_seed", "seeds only from its built-in mlperf.conf"),
    ("*.*.mode = 2\n", 1, "*.*.mode", "--mode"),
    ("bert.target_qps = 5\n", 1, "bert.target_qps", "expected model.scenario.key"),
])
def test_bad_user_conf_line_is_one_line_naming_file_line_and_key(tmp_path, text, line, key, problem):
    conf = _conf(tmp_path, text)
    with pytest.raises(ConfigError) as exc:
        read_user_conf(conf, "Offline")
    msg = str(exc.value)
    assert msg.startswith(f"--user-conf {conf} line {line}: {key}: ") and problem in msg and "\n" not in msg


def test_bad_user_conf_is_refused_before_any_work(tmp_path, capsys):
    """`target_qps = fast` is refused before the data or the model are touched (both are missing here, so
    reaching them would give another error)."""
    conf = _conf(tmp_path, "\nbert.Offline.target_qps = fast\n")
    rc = main(["run", "--user-conf", str(conf), "--dataset", str(tmp_path / "no.json"),
               "--model", str(tmp_path / "no.onnx"), "--output-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err == (f"mlperf-bert run: error: --user-conf {conf} line 2: bert.Offline.target_qps: "
                   "value 'fast' is not a number")
    assert not (tmp_path / "runs").exists()


def _run_cfg(tmp_path, scenario, conf, **lg):
    return RunConfig(
        data=DataPaths(dataset=tmp_path / "unused.json", vocab=tmp_path / "unused.txt", cache_dir=tmp_path),
        backend=BackendConfig(name="echo"),
        sut=SUTConfig(scenario=scenario, batcher=BatcherConfig(max_batch_size=8, server_max_wait_ms=1)),
        loadgen=LoadGenConfig(scenario=scenario, rules="quick", quick_duration_s=0.2, user_conf=conf, **lg),
        modes=("performance",), output_dir=tmp_path / "runs", run_name="r")


@pytest.mark.parametrize("scenario,text,key,value", [
    ("SingleStream", "bert.SingleStream.target_latency = 0.5\n", "single_stream_expected_latency_ns", 500_000),
    ("Offline", "bert.Offline.target_qps = 123\n", "offline_expected_qps", 123.0),
])
def test_probe_never_replaces_user_conf(tmp_path, scenario, text, key, value):
    """With the probe on, the user.conf value reaches LoadGen unchanged (issue: 0.5 ms became 76,719 ns)."""
    examples, feats = synthetic_features(40)
    conf = _conf(tmp_path, text)
    res = run(_run_cfg(tmp_path, scenario, conf), registry=registry_with_fakes(),
                        load_data=lambda *a: (examples, feats))
    assert res.probe is None and "probe" not in res.info
    setting = {s["key"]: s for s in res.info["performance_settings"]}[key]
    assert setting == {"key": key, "value": value, "source": f"user.conf:{conf}:1"}
    detail = (res.run_dir / "performance" / "mlperf_log_detail.txt").read_text()
    assert f'"key": "requested_{key}", "value": {value:g}' in detail  # what LoadGen itself logged
    on_disk = json.loads((res.run_dir / "run.json").read_text())
    assert on_disk["performance_settings"] == res.info["performance_settings"]


def test_probe_fills_only_what_nobody_set(tmp_path):
    examples, feats = synthetic_features(40)
    conf = _conf(tmp_path, "*.*.min_duration = 200\n")
    res = run(_run_cfg(tmp_path, "Offline", conf), registry=registry_with_fakes(),
                        load_data=lambda *a: (examples, feats))
    settings = {s["key"]: s for s in res.info["performance_settings"]}
    assert res.probe is not None and settings["offline_expected_qps"]["source"] == "probe"
    assert settings["offline_expected_qps"]["value"] == pytest.approx(1.25 * res.probe["samples_per_second"])
    assert settings["min_duration_ms"] == {"key": "min_duration_ms", "value": 200, "source": f"user.conf:{conf}:1"}


def test_user_conf_twice_in_one_process_keeps_mlperf_conf(tmp_path):
    """Two LoadGen tests with a user.conf in one process (accuracy then performance) both get the built-in
    mlperf.conf and no 'Multiple conf files' ERROR (LoadGen's own FromConfig(user.conf) gets neither on
    its second call in a process)."""
    _, feats = synthetic_features(20)
    conf = _conf(tmp_path, "bert.Offline.target_qps = 1000\n*.*.min_duration = 100\n")
    with SquadQSL(feats) as qsl:
        for k in range(2):
            cfg = LoadGenConfig(scenario="Offline", mode="performance", user_conf=conf, min_query_count=20,
                                performance_sample_count=20)
            run_test(EchoBackend(), qsl, SUTConfig(scenario="Offline"), cfg, tmp_path / str(k))
            detail = (tmp_path / str(k) / "mlperf_log_detail.txt").read_text()
            assert '"is_error": true' not in detail
            assert '"key": "effective_qsl_rng_seed", "value": 2085463073848966840' in detail


def test_trace_by_default_only_when_cheap():
    slow = LoadGenConfig(scenario="Offline", expected_qps=400)
    fast = LoadGenConfig(scenario="Offline", expected_qps=10_000)
    assert trace_by_default(slow, build_test_settings(slow))[0] is True  # 400 x 20 us = 0.8%
    assert trace_by_default(fast, build_test_settings(fast))[0] is False  # 20%
    ss = LoadGenConfig(scenario="SingleStream", expected_latency_ms=1.0)  # 1,000 samples/s
    assert trace_by_default(ss, build_test_settings(ss))[0] is False
    forced = LoadGenConfig(scenario="Offline", expected_qps=10_000, trace=True)
    assert trace_by_default(forced, build_test_settings(forced)) == (True, "--trace")
    acc = LoadGenConfig(scenario="Offline", mode="accuracy")
    assert trace_by_default(acc, build_test_settings(acc)) == (False, "accuracy mode")


def test_missing_user_conf_names_the_flag(tmp_path):
    with pytest.raises(ConfigError, match=r"^--user-conf .*nope.conf: no such file$"):
        LoadGenConfig(user_conf=Path(tmp_path / "nope.conf"))
