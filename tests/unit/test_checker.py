"""Checker rules on real LoadGen detail logs, truncation, and accuracy targets."""

from __future__ import annotations

import hashlib
import json

import pytest

from fakes import EchoBackend, synthetic_features
from mlperf_bert.errors import ConfigError
from mlperf_bert.logs.parse import read_detail_log
from mlperf_bert.loadgen.settings import V1_0_SEEDS, LoadGenConfig
from mlperf_bert.logs.truncate import (ELLIPSIS, read_hash, truncate_accuracy_log, verify_truncated,
                                       write_accuracy_txt)
from mlperf_bert.qsl.qsl import SquadQSL
from mlperf_bert.loadgen.session import run_test
from mlperf_bert.accuracy.targets import accuracy_target, identify_model
from mlperf_bert.submission.checker import check_submission, performance_findings
from mlperf_bert.sut.sut import SUTConfig


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    """Short Offline and Server performance runs under the v1.0 and current rules (durations overridden)."""
    base = tmp_path_factory.mktemp("logs")
    _, feats = synthetic_features(100)
    out = {}
    with SquadQSL(feats) as qsl:
        for rules in ("v1.0", "current"):
            for scenario in ("Offline", "Server"):
                cfg = LoadGenConfig(scenario=scenario, rules=rules, expected_qps=500, min_duration_s=0.2,
                                    max_duration_s=1.0, min_query_count=1)
                d = base / f"{rules}-{scenario}"
                run_test(EchoBackend(), qsl, SUTConfig(scenario=scenario), cfg, d)
                out[(rules, scenario)] = d / "mlperf_log_detail.txt"
    return out


def _levels(findings):
    return sorted((f.level, f.message.split(" (")[0].split(";")[0]) for f in findings)


def test_v1_0_run_logs_its_short_duration_and_counts(logs):
    """Real LoadGen logs: v1.0 prints ERROR lines (LOG) for duration and Offline samples, FAILs only INVALID."""
    d = read_detail_log(logs[("v1.0", "Offline")])
    assert (d.get("effective_qsl_rng_seed"), d.get("effective_sample_index_rng_seed"),
            d.get("effective_schedule_rng_seed")) == V1_0_SEEDS
    got = _levels(performance_findings(d, "v1.0", logs[("v1.0", "Offline")]))
    spq = d.get("effective_samples_per_query")
    want = [("log", "min duration is 0.2 s, must be >= 600 s"),
            ("log", f"Offline query has {spq:,} samples, v1.0.1 needs >= 24,576")]
    if d.get("result_validity") != "VALID":
        want.append(("fail", "LoadGen result is INVALID"))
    assert got == sorted(want)
    # the same log under quick (v1.0 seeds: checked as v1.0): the INVALID is waived, the LOG lines stay
    assert {lvl for lvl, _ in _levels(performance_findings(d, "quick", logs[("v1.0", "Offline")]))} <= {"waived", "log"}
    # under current (v6.1) the duration and the samples per query FAIL
    cur = _levels(performance_findings(d, "current", logs[("v1.0", "Offline")]))
    assert ("fail", "min duration is 0.2 s, must be >= 600 s") in cur
    assert ("fail", f"Offline query has {spq:,} samples, v6.1 needs >= 10,833") in cur


def test_seed_rules(logs):
    cur = read_detail_log(logs[("current", "Server")])
    found = performance_findings(cur, "v1.0", logs[("current", "Server")])
    assert [(f.level, f.message.split(" (run")[0]) for f in found if f.family == "seeds"] == [
        ("log", "seeds (qsl, sample_index, schedule) are (2085463073848966840, 2747215439041700203, "
                "16159082839903944936), v1.0.1 needs (7322528924094909334, 1570999273408051088, 3507442325620259414)")]
    assert not any(f.family == "seeds" for f in performance_findings(cur, "current", logs[("current", "Server")]))
    # quick: the log's seeds pick the version (built-in seeds: current), so they are right
    assert not any(f.family == "seeds" for f in performance_findings(cur, "quick", logs[("current", "Server")]))
    v10 = read_detail_log(logs[("v1.0", "Offline")])
    assert [f.level for f in performance_findings(v10, "current", logs[("v1.0", "Offline")])
            if f.family == "seeds"] == ["fail"]
    # Server: 270,336 queries under v1.0 (LOG), no query count under current
    assert any(f.level == "log" and "min query count is 1, v1.0.1 needs >= 270,336 for Server" in f.message
               for f in found)


def test_server_latency_bound_is_never_waived(logs, tmp_path):
    src = logs[("current", "Server")]
    lines = []
    for line in src.read_text().splitlines():
        if '"key": "result_99.00_percentile_latency_ns"' in line:
            e = json.loads(line[9:])
            e["value"] = 131_000_000
            line = ":::MLLOG " + json.dumps(e)
        lines.append(line)
    bad = tmp_path / "mlperf_log_detail.txt"
    bad.write_text("\n".join(lines) + "\n")
    f = [x for x in performance_findings(read_detail_log(bad), "quick", bad) if "99th percentile" in x.message]
    assert [(x.level, x.message) for x in f] == [("fail", "Server 99th percentile latency 131.0 ms > 130 ms")]


def test_truncation_keeps_head_and_tail_and_hash(tmp_path):
    full = tmp_path / "full.json"
    body = b"[\n" + b"".join(b'{"seq_id": %d, "qsl_idx": %d, "data": "%s"},\n' % (i, i, b"AB" * 50)
                             for i in range(400)) + b"]\n"
    full.write_bytes(body)
    small = tmp_path / "small.json"
    t = truncate_accuracy_log(full, small)
    assert t.truncated and t.full_size == len(body) and t.size == 8199
    assert t.sha256 == hashlib.sha256(body).hexdigest()
    assert small.read_bytes() == body[:4096] + ELLIPSIS + body[-4096:]
    acc = tmp_path / "accuracy.txt"
    write_accuracy_txt(acc, '{"exact_match": 1.0, "f1": 2.0}', t.sha256)
    assert acc.read_text() == '{"exact_match": 1.0, "f1": 2.0}\n' + f"hash={t.sha256}\n"
    assert read_hash(acc) == t.sha256
    assert verify_truncated(small, full, t.sha256) == []
    assert "has sha256" in verify_truncated(small, full, "f" * 64)[0]
    tiny = tmp_path / "tiny.json"
    tiny.write_bytes(b"[]\n")
    t2 = truncate_accuracy_log(tiny, tmp_path / "tiny-out.json")
    assert not t2.truncated and (tmp_path / "tiny-out.json").read_bytes() == b"[]\n"


def test_accuracy_targets(tmp_path):
    official = accuracy_target("bert-99", model="downloads/model.onnx")
    assert official.target_f1 == pytest.approx(89.96526) and official.official
    assert accuracy_target("bert-99.9", model="x/model.pytorch").target_f1 == pytest.approx(90.783126)
    small = accuracy_target("bert-99", model=tmp_path / "models" / "minilm-l6-squad")  # known by its folder name
    assert small.target_f1 == pytest.approx(78.12294086414858) and not small.official
    assert accuracy_target("bert-99.9", model="minilm-l6-squad/model.safetensors").target_f1 == \
        pytest.approx(78.83314941746)
    assert accuracy_target("bert-99", model="/somewhere/my-model") is None
    own = accuracy_target("bert-99", model="/somewhere/my-model", reference_f1=80.0)
    assert own.target_f1 == pytest.approx(79.2) and own.source == "given with --reference-f1"
    with pytest.raises(ConfigError, match="unknown benchmark 'bert-98'"):
        accuracy_target("bert-98")
    with pytest.raises(ConfigError, match="--reference-f1 must be"):
        accuracy_target("bert-99", reference_f1=0.9e3)


def test_exported_onnx_is_identified_by_its_manifest(tmp_path):
    onnx = tmp_path / "onnx" / "abc-opset17" / "model.onnx"
    onnx.parent.mkdir(parents=True)
    onnx.write_bytes(b"")
    (onnx.parent / "manifest.json").write_text(json.dumps(
        {"manifest_version": 2, "format": "onnx", "model_file": "model.onnx",
         "source": {"path": str(tmp_path / "models" / "minilm-l6-squad"), "sha256": "x"}}))
    assert identify_model(onnx).name == "minilm-l6-squad"  # not the official model.onnx
    other = tmp_path / "other" / "model.onnx"  # a manifest naming another file says nothing about this one
    other.parent.mkdir()
    other.write_bytes(b"")
    (other.parent / "manifest.json").write_text((onnx.parent / "manifest.json").read_text().replace(
        '"model.onnx"', '"bert.onnx"'))
    assert identify_model(other).name == "bert-large"  # by its official file name only


def test_quantized_onnx_takes_its_fp32_source_target(tmp_path):
    """An int8 model from ``mlperf-bert quantize`` is judged against its fp32 source (bert-99: 99% of
    78.912 for the small model), not against BERT-Large because its file is called model.onnx."""
    onnx = tmp_path / "int8" / "model.onnx"
    onnx.parent.mkdir()
    onnx.write_bytes(b"")
    (onnx.parent / "manifest.json").write_text(json.dumps(
        {"method": "ptq", "source_model": {"path": str(tmp_path / "models" / "minilm-l6-squad"), "sha256": "x"}}))
    target = accuracy_target("bert-99", model=onnx)
    assert target.model == "minilm-l6-squad" and target.target_f1 == pytest.approx(78.12294086414858)
    (onnx.parent / "manifest.json").write_text("{truncated")
    assert identify_model(onnx).name == "bert-large"  # unreadable manifest: falls back to the file name


def test_check_rejects_a_folder_that_is_no_tree(tmp_path):
    rep = check_submission(tmp_path, "quick")
    assert not rep.passed and rep.failures[0].message.startswith("no division folder")
    for name in ("runs", "src", "tests"):  # unrelated folders: still the one line, not one per folder
        (tmp_path / name).mkdir()
    rep = check_submission(tmp_path, "quick")
    assert [f.message for f in rep.failures] == ["no division folder (closed/ or open/); is this a submission tree?"]
    with pytest.raises(ConfigError, match="unknown rules"):
        check_submission(tmp_path, "v0.7")


def test_run_flags_set_the_accuracy_target_and_trace(tmp_path, tiny_squad, tiny_model):
    import shutil

    from mlperf_bert.cli import build_parser
    from mlperf_bert.commands.run import build_run_config

    data = ["--dataset", str(tiny_squad[0]), "--vocab", str(tiny_squad[1])]
    args = build_parser().parse_args(["run", "--backend", "null", "--benchmark", "bert-99.9", "--reference-f1", "80",
                                      "--trace", "--rules", "quick", *data])
    cfg = build_run_config(args)
    assert cfg.accuracy_target.target_f1 == pytest.approx(79.92) and cfg.accuracy_target.benchmark == "bert-99.9"
    assert cfg.loadgen.trace is True
    named = shutil.copytree(tiny_model, tmp_path / "models" / "minilm-l6-squad")  # known by its folder name
    args = build_parser().parse_args(["run", "--model", str(named), "--backend", "pytorch", *data])
    assert build_run_config(args).accuracy_target.model == "minilm-l6-squad"
