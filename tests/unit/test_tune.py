"""``tune`` and tuned profiles: the search keeps the fastest measured configuration, profiles are keyed by
machine + backend + model + scenario, ``run`` picks a matching one up (flags still win), threads never
oversubscribe by default. Fake measurements with known costs make winners deterministic; no timed asserts."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from fakes import synthetic_features, write_tiny_squad
from mlperf_bert.backends.base import BackendConfig
from mlperf_bert.backends.registry import BackendRegistry
from mlperf_bert.cli import build_parser, main
from mlperf_bert.config import DataPaths
from mlperf_bert.fileio import fingerprint
from mlperf_bert.tune import (NOISE_MARGIN, SOURCE_THREADS_RULE, Candidate, Measurement, Profile, ProfileKey,
                              TuneJob, default_grid, find_profile, noise_margin, profile_key, rank_key,
                              read_profile, resolve_settings, retarget, save_profile, search, tune)

REGISTRY = BackendRegistry.from_entry_points()


# -- the search ----------------------------------------------------------------------------------------
def _known_costs(c: Candidate) -> float:
    """samples/s with a unique best: batch 16, no budget, pad 1, one worker, both ORT options off-default."""
    sps = 100.0 + {1: 0, 4: 20, 16: 40, 64: 10}.get(c.batch_size, 0)
    sps += {None: 8, 32768: 6, 8192: 2, 2048: 0}.get(c.token_budget, 0) if c.batch_size > 1 else 0
    sps += {1: 3, 16: 1, 64: 0}.get(c.pad_to_multiple, 0)
    sps += 5 if c.workers == 1 else 0
    opts = dict(c.options)
    sps += 4 if opts.get("transformer_optimize") is False else 0
    sps += 2 if opts.get("graph_optimization") == "basic" else 0
    return sps


class FakeMeasure:
    """Known costs, a fake clock advanced 10 s per measurement."""

    def __init__(self, cost=_known_costs) -> None:
        self.now = 0.0
        self.calls: list[Candidate] = []
        self.cost = cost

    def clock(self) -> float:
        return self.now

    def __call__(self, c: Candidate) -> Measurement:
        self.now += 10.0
        self.calls.append(c)
        return Measurement(c, samples_per_second=self.cost(c), seconds=10.0)


ORT_OPTIONS = {"transformer_optimize": (True, False), "graph_optimization": ("all", "basic")}


def test_search_finds_the_fastest_configuration_with_known_costs():
    grid = default_grid("Offline", "cpu", 4, {}, ORT_OPTIONS)
    fake = FakeMeasure()
    seen = []
    res = search(grid, fake, "Offline", budget_s=10_000, clock=fake.clock, progress=lambda *a: seen.append(a))
    expected = Candidate(batch_size=16, token_budget=None, pad_to_multiple=1, server_max_wait_ms=0.0, workers=1,
                         threads=4, options=(("graph_optimization", "basic"), ("transformer_optimize", False)))
    assert res.winner == expected
    assert grid.start == Candidate(1, 8192, 1, 0.0, 4, 1, (("graph_optimization", "all"),
                                                          ("transformer_optimize", True)))
    by = res.by_candidate()
    assert res.winner == max(by, key=lambda c: rank_key("Offline", by[c]))  # the fastest of the table
    assert len(by[res.winner]) == 2 and res.stopped is None  # confirmed by a second measurement
    assert len(by[grid.start]) == 2 and res.defaults_kept is None  # the defaults, the yardstick, measured again
    assert len(fake.calls) == len(res.table) == len(seen)
    assert [s[0] for s in seen] == list(range(1, len(seen) + 1)) and all(s[2] >= 0 for s in seen)
    # threads never oversubscribe: workers x threads == 4 cores in every candidate measured
    assert {(c.workers, c.threads) for c in fake.calls} == {(1, 4), (2, 2), (4, 1)}


def test_search_stops_at_the_budget_and_keeps_the_best_so_far():
    grid = default_grid("Offline", "cpu", 4, {}, ORT_OPTIONS)
    fake = FakeMeasure()
    res = search(grid, fake, "Offline", budget_s=45, clock=fake.clock)
    assert len(res.table) == 4 and "budget of 45 s" in res.stopped  # 4 x 10 s, a 5th would end at 50 s
    assert res.winner == Candidate(4, 8192, 1, 0.0, 1, 4, grid.start.options)  # best of what was measured
    assert _known_costs(res.winner) == max(_known_costs(m.candidate) for m in res.table)


def test_flags_given_to_tune_fix_their_setting():
    grid = default_grid("Offline", "cpu", 4, {"batch_size": 4, "workers": 2, "options": {"transformer_optimize": True}},
                        ORT_OPTIONS)
    fake = FakeMeasure()
    res = search(grid, fake, "Offline", budget_s=10_000, clock=fake.clock)
    assert {c.batch_size for c in fake.calls} == {4} and {c.workers for c in fake.calls} == {2}
    assert {dict(c.options)["transformer_optimize"] for c in fake.calls} == {True}
    assert res.winner.batch_size == 4 and res.winner.threads == 2


def test_server_ranks_by_p99_within_the_bound():
    def p99(c: Candidate) -> float:  # one worker x all threads answers fastest; batching waits cost latency
        return 40.0 * c.workers + 10.0 * c.server_max_wait_ms + (200.0 if c.batch_size > 4 else 0.0)

    class ServerFake(FakeMeasure):
        def __call__(self, c):
            m = super().__call__(c)
            m.p99_ms = p99(c)
            return m

    grid = default_grid("Server", "cpu", 2, {})
    fake = ServerFake(cost=lambda c: 5.0)
    res = search(grid, fake, "Server", budget_s=10_000, clock=fake.clock)
    assert grid.start.workers == 1 and grid.start.threads == 2 and grid.start.server_max_wait_ms == 0.0
    assert res.winner.workers == 1 and res.winner.server_max_wait_ms == 0.0
    assert min(p99(m.candidate) for m in res.table) == p99(res.winner)
    assert rank_key("Server", [Measurement(grid.start, 5.0, 500.0)]) < rank_key("Server", [Measurement(
        grid.start, 1.0, 129.0)])  # over 130 ms loses to anything within it


def test_search_keeps_the_defaults_when_the_best_alternative_is_within_the_noise_margin():
    """Issue 16's loaded host: a 'winner' at 1.01x the defaults (38.05 vs 37.70 samples/s) is noise."""
    grid = default_grid("Offline", "cpu", 4, {}, ORT_OPTIONS)

    def only(gain):
        return lambda c: 37.70 * (gain if c.batch_size == 16 and dict(c.options)["transformer_optimize"] else 1.0)

    fake = FakeMeasure(cost=only(1.01))
    res = search(grid, fake, "Offline", budget_s=10_000, clock=fake.clock)
    assert NOISE_MARGIN == 0.03 and res.margin == 0.03
    assert res.winner == grid.start and res.best == res.by_candidate()[grid.start]
    assert res.alternative == grid.start.with_(batch_size=16)
    assert res.defaults_kept == ("defaults kept: best alternative only 1.01x the defaults' samples/s, within the "
                                 f"noise margin of 3% ({res.alternative.label()})")
    # just over the margin: the alternative wins
    fake = FakeMeasure(cost=only(1.04))
    res = search(grid, fake, "Offline", budget_s=10_000, clock=fake.clock)
    assert res.winner == grid.start.with_(batch_size=16) and res.defaults_kept is None and res.alternative is None


def test_noise_margin_widens_to_the_spread_of_repeated_measurements():
    """Repeats that differ by +-5% make a 10% margin: an alternative 1.08x faster does not replace the defaults."""
    grid = default_grid("Offline", "cpu", 4, {}, ORT_OPTIONS)
    seen: dict[Candidate, int] = {}

    def noisy(c: Candidate) -> float:
        seen[c] = seen.get(c, 0) + 1
        base = 108.0 if c.batch_size == 16 and dict(c.options)["transformer_optimize"] else 100.0
        return base * (0.95 if seen[c] % 2 else 1.05)  # low first: no once-measured point outranks the repeats

    fake = FakeMeasure(cost=noisy)
    res = search(grid, fake, "Offline", budget_s=10_000, clock=fake.clock)
    by = res.by_candidate()
    assert [m.samples_per_second for m in by[grid.start]] == pytest.approx([95.0, 105.0])
    assert res.margin == pytest.approx(0.10) and res.winner == grid.start
    assert res.defaults_kept.startswith("defaults kept: best alternative only 1.08x the defaults' samples/s, "
                                        "within the noise margin of 10% (batch 16,")
    assert noise_margin("Offline", {}) == NOISE_MARGIN  # nothing repeated: the documented floor
    start = grid.start
    server = {start: [Measurement(start, 5.0, 50.0), Measurement(start, 5.0, 60.0)]}
    assert noise_margin("Server", server) == pytest.approx(10.0 / 55.0)  # Server: the p99 spread


def test_server_keeps_the_defaults_when_p99_is_within_the_noise_margin():
    grid = default_grid("Server", "cpu", 2, {})

    class ServerFake(FakeMeasure):
        def __call__(self, c):
            m = super().__call__(c)
            m.p99_ms = 49.5 if c.workers == 2 else 50.0  # 1.01x lower p99 with two workers
            return m

    fake = ServerFake(cost=lambda c: 5.0)
    res = search(grid, fake, "Server", budget_s=10_000, clock=fake.clock)
    assert res.winner == grid.start and res.alternative.workers == 2
    assert res.defaults_kept.startswith("defaults kept: best alternative only 1.01x lower p99, within the noise "
                                        "margin of 3%")


# -- saving: never lose a better-measured profile -------------------------------------------------------
def _key() -> ProfileKey:
    return ProfileKey(machine={"cpu": "x", "cores": 4, "isa": [], "accelerators": []}, backend="onnxruntime",
                      versions={"onnxruntime": "1"}, device="cpu", model="m", scenario="Offline", options={})


def _result(budget_s: float):
    grid = default_grid("Offline", "cpu", 4, {}, ORT_OPTIONS)
    fake = FakeMeasure()
    return search(grid, fake, "Offline", budget_s=budget_s, clock=fake.clock)


def test_save_profile_keeps_a_better_measured_profile_unless_forced(tmp_path):
    long, short = _result(10_000), _result(15)  # all measurements vs 1
    assert len(short.table) == 1 < len(long.table) == 18
    msgs: list[str] = []
    path, action = save_profile(tmp_path, _key(), long, {"budget_s": 60}, say=msgs.append)
    assert action == "written" and msgs == [] and path.name == f"onnxruntime-Offline-{_key().digest()}.json"
    before = path.read_bytes()
    prev = path.with_name(path.name.replace(".json", ".prev.json"))

    # a shorter search does not replace it; one line says which profile is in force and where
    assert save_profile(tmp_path, _key(), short, {"budget_s": 1}, say=msgs.append) == (path, "kept")
    assert path.read_bytes() == before and not prev.exists()
    assert msgs == [(f"kept the existing profile {path} (18 measurements); this search made 1 and was not saved "
                     "(--force replaces it)")]

    # --force replaces it; the old one stays next to it as <name>.prev.json
    msgs.clear()
    assert save_profile(tmp_path, _key(), short, {"budget_s": 1}, force=True, say=msgs.append) == (path, "replaced")
    assert prev.read_bytes() == before and len(json.loads(path.read_text())["table"]) == 1
    assert msgs == [(f"replaced the profile from 18 measurements at {path} with this search's (1 measurement); "
                     f"the old one is kept as {prev}")]

    # as many or more measurements: replaced without --force (fresher), the previous one kept again
    assert save_profile(tmp_path, _key(), long, {}, say=msgs.append) == (path, "replaced")
    assert len(json.loads(prev.read_text())["table"]) == 1 and len(json.loads(path.read_text())["table"]) == 18

    # runs never use the .prev.json backup, not even as "another profile"
    assert find_profile(tmp_path, _key())[0].path == path
    path.unlink()
    assert find_profile(tmp_path, _key()) == (None, None)


def test_tune_command_keeps_the_better_profile_and_force_replaces_it(tmp_path, capsys):
    cache = tmp_path / "cache"
    dataset, vocab = write_tiny_squad(tmp_path / "data", repeat=20)
    common = ["tune", "--backend", "null", "--dataset", str(dataset), "--vocab", str(vocab), "--cache-dir",
              str(cache), "--budget-s", "1", "--samples", "200", "--no-progress"]
    assert main(common) == 0
    profile = next((cache / "profiles-of-tests").glob("null-Offline-*.json"))
    data = json.loads(profile.read_text())
    data["table"] = data["table"] * 50  # as if from a much longer search
    profile.write_text(json.dumps(data))
    before = profile.read_bytes()
    capsys.readouterr()
    assert main(common) == 0
    out = capsys.readouterr().out
    n = len(data["table"])
    assert f"kept the existing profile {profile} ({n} measurements)" in out
    assert f"profile: {profile} (the existing one, from more measurements; this search was not saved)" in out
    assert profile.read_bytes() == before
    assert main([*common, "--force"]) == 0
    out = capsys.readouterr().out
    prev = profile.with_name(profile.name.replace(".json", ".prev.json"))
    assert f"replaced the profile from {n} measurements at {profile}" in out and f"kept as {prev}" in out
    assert prev.read_bytes() == before and len(json.loads(profile.read_text())["table"]) < n


@pytest.mark.parametrize("budget", ["0", "-5"])
def test_bench_refuses_a_tune_budget_that_is_not_positive(budget, capsys):
    assert main(["bench", "--tune-budget-s", budget]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"mlperf-bert bench: error: --tune-budget-s {float(budget):g}: must be > 0\n"
    assert captured.out == ""


# -- resolving a run's settings ------------------------------------------------------------------------
def test_threads_never_oversubscribed_by_default():
    def res(scenario, given, profile=None, cores=8):
        return resolve_settings(scenario, "cpu", cores, given, profile)

    v, s = res("Offline", {})
    assert (v["workers"], v["threads"], v["batch_size"]) == (8, 1, 1)
    assert s["workers"] == "default:cpu" and s["threads"] == SOURCE_THREADS_RULE
    assert res("Offline", {"workers": 2})[0]["threads"] == 4
    assert res("Offline", {"workers": 3})[0]["threads"] == 2  # 3 x 2 <= 8
    assert res("Offline", {"workers": 16})[0]["threads"] == 1
    assert res("Server", {})[0]["workers"] == 1 and res("Server", {})[0]["threads"] == 8
    assert res("SingleStream", {"workers": 4})[0]["threads"] == 8  # one query at a time
    assert res("Offline", {"threads": 8, "workers": 2})[0]["threads"] == 8  # the user's own choice
    prof = Profile(Path("/p.json"), {}, {"workers": 2, "threads": 4, "batch_size": 8}, {})
    v, s = res("Offline", {"workers": 4}, prof)  # the profile's threads were for 2 workers
    assert (v["workers"], v["threads"], v["batch_size"]) == (4, 2, 8)
    assert s["threads"] == SOURCE_THREADS_RULE and s["batch_size"] == "profile:/p.json"
    v, s = res("Offline", {}, prof)
    assert (v["workers"], v["threads"]) == (2, 4) and s["threads"] == "profile:/p.json"
    cuda, _ = resolve_settings("Offline", "cuda", 8, {}, None)
    assert (cuda["batch_size"], cuda["token_budget"], cuda["pad_to_multiple"], cuda["workers"]) == (256, 65536, 64, 1)


def test_runner_divides_the_cores_between_workers_when_threads_are_not_given(tmp_path):
    """A RunConfig built without the CLI (threads None): the runner still applies cores // workers."""
    from fakes import ECHO_SPEC, threads_seen
    from mlperf_bert.loadgen.settings import LoadGenConfig
    from mlperf_bert.machine import physical_cores
    from mlperf_bert.runner import RunConfig, run
    from mlperf_bert.sut.batcher import BatcherConfig
    from mlperf_bert.sut.sut import SUTConfig

    reg = BackendRegistry.from_entry_points()
    reg.register(dataclasses.replace(ECHO_SPEC, name="threads-echo", target="fakes:ThreadsEcho"))
    threads_seen.clear()
    examples, feats = synthetic_features(40)
    workers = 2 * physical_cores()
    cfg = RunConfig(data=DataPaths(tmp_path / "d.json", tmp_path / "v.txt", tmp_path),
                    backend=BackendConfig("threads-echo"),
                    sut=SUTConfig("Offline", BatcherConfig(max_batch_size=4), workers=workers),
                    loadgen=LoadGenConfig("Offline", rules="quick", quick_duration_s=0.05, expected_qps=1000),
                    modes=("performance",), output_dir=tmp_path / "runs", run_name="r", probe=False)
    run(cfg, registry=reg, load_data=lambda *a: (examples, feats), progress=False)
    assert threads_seen == [1]  # more workers than cores: one thread each


# -- tune with the null backend through LoadGen --------------------------------------------------------
def test_tune_null_backend_through_loadgen_writes_a_profile_whose_winner_is_the_fastest(tmp_path):
    paths = DataPaths(tmp_path / "unused.json", tmp_path / "unused.txt", tmp_path / "cache")
    examples, feats = synthetic_features(300)
    calls = []
    job = TuneJob(scenario="Offline", backend=BackendConfig("null", cache_dir=paths.cache_dir), budget_s=6.0,
                  samples=3000)
    result, key, path = tune(job, REGISTRY, paths, load_data=lambda *a: (examples, feats),
                             progress=lambda *a: calls.append(a), cores=2)
    data = json.loads(path.read_text())
    assert path.parent == paths.cache_dir / "profiles-of-tests" and path.name.startswith("null-Offline-")
    assert data["key"]["backend"] == "null" and data["key"]["model"] is None and data["key"]["scenario"] == "Offline"
    assert data["key"]["machine"]["cores"] >= 1 and data["calibration"]["samples"] == 3000
    rows = data["table"]
    assert len(rows) == len(calls) >= 2 and all(r["samples_per_second"] > 0 and r["error"] is None for r in rows)
    means: dict[str, list[float]] = {}
    for r in rows:
        means.setdefault(json.dumps(r["settings"], sort_keys=True), []).append(r["samples_per_second"])
    fastest = max(means, key=lambda k: sum(means[k]) / len(means[k]))
    start = json.dumps(result.start.settings(), sort_keys=True)
    gain = (sum(means[fastest]) / len(means[fastest])) / (sum(means[start]) / len(means[start]))
    # the fastest wins unless it is within the noise margin of the defaults, which then stay
    expected = fastest if gain > 1 + data["noise_margin"] else start
    assert json.loads(expected) == data["settings"] == result.winner.settings()
    assert (data["defaults_kept"] is None) == (expected == fastest)
    assert read_profile(path).settings == data["settings"]
    assert find_profile(paths.cache_dir, key)[0].path == path


def test_run_uses_the_null_profile_and_flags_still_win(tmp_path, capsys):
    cache = tmp_path / "cache"
    dataset, vocab = write_tiny_squad(tmp_path / "data", repeat=20)
    common = ["--backend", "null", "--dataset", str(dataset), "--vocab", str(vocab), "--cache-dir", str(cache)]
    assert main(["tune", *common, "--budget-s", "3", "--samples", "500", "--no-progress"]) == 0
    out = capsys.readouterr().out
    profile = next((cache / "profiles-of-tests").glob("null-Offline-*.json"))
    assert f"profile: {profile}" in out
    settings = json.loads(profile.read_text())["settings"]
    rc = main(["run", *common, "--mode", "performance", "--rules", "quick", "--duration", "0.2", "--no-progress",
               "--output-dir", str(tmp_path / "runs"), "--run-name", "r", "--pad-to-multiple", "8"])
    assert rc == 0
    info = json.loads((tmp_path / "runs" / "r" / "run.json").read_text())
    got = {h["key"]: (h["value"], h["source"]) for h in info["harness"]["settings"]}
    assert got["pad_to_multiple"] == (8, "flag:--pad-to-multiple")
    assert got["batch_size"] == (settings["batch_size"], f"profile:{profile}")
    assert got["workers"] == (settings["workers"], f"profile:{profile}")
    assert info["config"]["sut"]["batcher"]["max_batch_size"] == settings["batch_size"]
    assert info["harness"]["profile"] == str(profile) and "using tuned profile" in info["harness"]["note"]
    summary = capsys.readouterr().out
    assert f"using tuned profile {profile}" in summary and "pad_to_multiple = 8  (flag:--pad-to-multiple)" in summary
    assert f"workers = {settings['workers']}" in summary and "(profile:" in summary  # the table folds the path


# -- a tiny random model through the real prepare path -------------------------------------------------
@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """Two tiny random BERT QA folders (different seeds) and a shared cache."""
    import torch
    import transformers

    root = tmp_path_factory.mktemp("tiny-bert")
    out = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        cfg = transformers.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                      intermediate_size=64, max_position_embeddings=512)
        folder = root / f"tiny-{seed}"
        transformers.BertForQuestionAnswering(cfg).eval().save_pretrained(folder, safe_serialization=True)
        out.append(folder)
    dataset, vocab = write_tiny_squad(root / "data", repeat=4)
    return out, dataset, vocab, root / "cache"


def _run_args(model, dataset, vocab, cache, out, *extra):
    args = build_parser(REGISTRY).parse_args(["run", "--model", str(model), "--dataset", str(dataset), "--vocab",
                                              str(vocab), "--cache-dir", str(cache), "--output-dir", str(out),
                                              *extra])
    return args


def test_tiny_model_profile_is_picked_up_for_its_model_only(tiny_models, tmp_path, capsys):
    from mlperf_bert.commands.run import build_run_config

    (model, other), dataset, vocab, cache = tiny_models
    paths = DataPaths(dataset, vocab, cache)

    class Factory:
        def __call__(self, qsl, outdir, grid):
            assert qsl.count >= 4  # the real features of the tiny dataset
            fake = FakeMeasure()
            fake.calibration = {"samples": 64}
            return fake

    backend = BackendConfig("onnxruntime", model, "cpu", cache_dir=cache)
    job = TuneJob(scenario="Offline", backend=backend, budget_s=10_000)
    result, key, path = tune(job, REGISTRY, paths, measure_factory=Factory(), cores=2)
    prepared = REGISTRY.prepare(backend)
    assert key.model == fingerprint(prepared.model) and key.backend == "onnxruntime"
    # graph_optimization and transformer_optimize are tuned, so not part of the key; the provider options are
    assert key.options == {"provider": "auto", "fp16": False, "trt_max_batch": 256}
    assert result.winner == Candidate(16, None, 1, 0.0, 1, 2, (("graph_optimization", "basic"),
                                                              ("transformer_optimize", False)))

    cfg = build_run_config(_run_args(model, dataset, vocab, cache, tmp_path / "runs"))
    src = f"profile:{path}"
    rec = {h["key"]: (h["value"], h["source"]) for h in cfg.harness.settings()}
    assert rec["batch_size"] == (16, src) and rec["token_budget"] == (None, src) and rec["threads"] == (2, src)
    assert rec["option:transformer_optimize"] == (False, src) and rec["option:graph_optimization"] == ("basic", src)
    assert cfg.sut.batcher.max_batch_size == 16 and cfg.sut.workers == 1 and cfg.backend.threads == 2
    assert cfg.backend.options == {"transformer_optimize": False, "graph_optimization": "basic"}
    assert f"using tuned profile {path}" in capsys.readouterr().out

    # an explicit flag overrides the profile; the rest still comes from it
    cfg = build_run_config(_run_args(model, dataset, vocab, cache, tmp_path / "runs", "--batch-size", "3",
                                     "--ort-optimize"))
    rec = {h["key"]: (h["value"], h["source"]) for h in cfg.harness.settings()}
    assert rec["batch_size"] == (3, "flag:--batch-size") and rec["workers"] == (1, src)
    assert rec["option:transformer_optimize"] == (True, "flag:--ort-optimize")
    assert cfg.backend.options["transformer_optimize"] is True and cfg.sut.batcher.max_batch_size == 3

    # another model: the profile is ignored, in one line
    cfg = build_run_config(_run_args(other, dataset, vocab, cache, tmp_path / "runs"))
    assert cfg.harness.profile is None and cfg.sut.batcher.max_batch_size == 1
    assert "is for another model; not used" in cfg.harness.note
    assert "is for another model; not used" in capsys.readouterr().out

    # --no-profile: the device defaults
    cfg = build_run_config(_run_args(model, dataset, vocab, cache, tmp_path / "runs", "--no-profile"))
    assert cfg.harness.profile is None and {h["source"] for h in cfg.harness.settings()} == {
        "default:cpu", SOURCE_THREADS_RULE}

    # another machine: ignored too
    prof, note = find_profile(cache, dataclasses.replace(key, machine=dict(key.machine, cpu="another CPU")))
    assert prof is None and f"tuned profile {path} is for another machine; not used" in note

    # a Server run of the same model has no profile: retargeting the Offline harness finds none
    server = retarget(build_run_config(_run_args(model, dataset, vocab, cache, tmp_path / "runs")).harness, "Server")
    assert server.profile is None and server.values["workers"] == 1 and server.values["batch_size"] == 1


def test_profile_key_changes_with_untuned_options(tiny_models):
    (model, _), dataset, vocab, cache = tiny_models
    machine = {"cpu": "x", "cores": 2, "isa": [], "accelerators": []}
    a = profile_key(REGISTRY, BackendConfig("pytorch", model, "cpu"), "Offline", machine=machine)
    b = profile_key(REGISTRY, BackendConfig("pytorch", model, "cpu", options={"precision": "bf16"}), "Offline",
                    machine=machine)
    assert a.options == {"precision": "fp32", "compile": False, "attention": "sdpa", "seq_bucket": 0,
                         "cuda_graphs": False, "max_graphs": 64, "copy_stream": True}
    assert b.options["precision"] == "bf16"
    assert a.digest() != b.digest() and a.differences(b.to_json()) == ["options"]
