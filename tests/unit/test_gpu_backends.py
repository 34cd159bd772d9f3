"""GPU code paths (issue 14) tested where they can be without a GPU: shape buckets, CUDA graph policy, option
checks, provider resolution, the TensorRT engine-cache key, the fp16 artifact, the random BERT builder and
the device batching defaults. Tests marked ``gpu`` run only where torch sees a CUDA device."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from mlperf_bert.backends.base import BackendConfig
from mlperf_bert.backends.onnxruntime import (OnnxRuntimeBackend, engine_cache_key, fp16_converted,
                                              provider_list, resolve_provider, tensorrt_options)
from mlperf_bert.backends.pytorch import (GraphCache, PyTorchBackend, bucket_length, check_device_options,
                                          graph_batch_size, pad_inputs)
from mlperf_bert.backends.registry import BackendRegistry
from mlperf_bert.convert.names import BERT_LARGE, BertShape
from mlperf_bert.convert.random_bert import build_random_bert, is_random_model, parameter_count, random_state
from mlperf_bert.errors import ConfigError
from mlperf_bert.fileio import fingerprint
from mlperf_bert.sut.batcher import batcher_for_device, device_kind

TINY = BertShape(num_layers=2, hidden=64, heads=4, intermediate=128)
CPU_ONLY = ["CPUExecutionProvider"]
ALL_GPU = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


def _cuda() -> bool:
    try:
        import torch
    except ModuleNotFoundError:
        return False
    return torch.cuda.is_available()


gpu = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(not _cuda(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def random_tiny(tmp_path_factory):
    """A 2-layer, hidden-64 random BERT QA folder (2.05 M parameters) built by the random builder."""
    return build_random_bert(tmp_path_factory.mktemp("tiny") / "bert-tiny", TINY, seed=0).out_dir


@pytest.fixture(scope="module")
def sharp_model(tmp_path_factory):
    """The tiny shape with weights of std 0.1: attention is sharp enough that attending to padding moves the
    logits by 15-25% of their scale (measured on CPU), far above bf16 rounding (0.3%), so the GPU
    tolerances below can catch a masking error."""
    return build_random_bert(tmp_path_factory.mktemp("sharp") / "bert-sharp", TINY, seed=0, std=0.1).out_dir


@pytest.fixture(scope="module")
def sharp_cpu(sharp_model, torch_one_thread):
    return PyTorchBackend(sharp_model, device="cpu")


def _batch(b=3, seq=50, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, 30000, size=(b, seq)).astype(np.int32)
    ids[:, 0] = 101
    lengths = np.array([seq, seq - 17, 9][:b])
    mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int32)
    ids *= mask
    seg = ((np.arange(seq)[None, :] >= 5) & (mask == 1)).astype(np.int32)
    return ids, mask, seg


# -- shapes -----------------------------------------------------------------------------------------------

def test_bucket_length_rounds_up_to_the_bucket_and_caps_at_384():
    assert [bucket_length(n, 64) for n in (1, 64, 65, 128, 129, 320, 321, 384)] == [64, 64, 128, 128, 192, 320, 384, 384]
    assert bucket_length(100, 0) == 100 and bucket_length(100, 1) == 100  # no bucketing
    assert bucket_length(350, 100) == 384  # 400 capped at the feature length
    assert bucket_length(390, 64) == 390  # never below the batch's own length


def test_graph_batch_sizes_are_powers_of_two_then_multiples_of_eight():
    assert [graph_batch_size(b) for b in (1, 2, 3, 5, 8, 9, 16, 17, 170, 256)] == [1, 2, 4, 8, 8, 16, 16, 24, 176, 256]
    # bounded: 1, 2, 4, then 8..256 in steps of 8 = 35 batch shapes per length bucket
    assert len({graph_batch_size(b) for b in range(1, 257)}) == 35
    with pytest.raises(ValueError):
        graph_batch_size(0)


def test_pad_inputs_zero_pads_and_gives_padded_rows_one_real_position():
    ids, mask, seg = _batch(3, 50)
    out = pad_inputs(ids, mask, seg, 8, 64)
    assert out.shape == (3, 8, 64) and out.dtype == np.int64
    assert np.array_equal(out[0, :3, :50], ids) and np.array_equal(out[1, :3, :50], mask)
    assert np.array_equal(out[2, :3, :50], seg)
    assert not out[:, :3, 50:].any()  # padded positions: id 0, mask 0, segment 0
    assert np.array_equal(out[1, 3:].sum(axis=1), np.ones(5))  # padded rows attend to one position
    assert not out[0, 3:].any() and not out[2, 3:].any()
    # into a larger reused buffer (the pinned staging path): stale values are overwritten
    buf = np.full((3, 16, 128), 7, dtype=np.int64)
    view = pad_inputs(ids, mask, seg, 4, 64, out=buf)
    assert view.shape == (3, 4, 64) and np.array_equal(view, pad_inputs(ids, mask, seg, 4, 64))
    with pytest.raises(ValueError, match="cannot pad"):
        pad_inputs(ids, mask, seg, 2, 64)


def test_graph_cache_captures_lazily_on_the_second_sighting_up_to_max_graphs():
    captured = []

    def capture(b, n):
        captured.append((b, n))
        return f"graph{b}x{n}"

    cache = GraphCache(capture, capture_after=2, max_graphs=2)
    assert cache.get((8, 64)) is None and captured == []  # first sighting runs eagerly (warm-up)
    assert cache.get((8, 64)) == "graph8x64" and captured == [(8, 64)]
    assert cache.get((8, 64)) == "graph8x64" and captured == [(8, 64)]  # replayed, not captured again
    cache.get((16, 128))
    cache.get((16, 128))
    assert cache.get((24, 192)) is None and cache.get((24, 192)) is None  # max_graphs reached: eager
    assert captured == [(8, 64), (16, 128)]
    assert (cache.replays, cache.eager) == (3, 4)
    assert GraphCache(capture, max_graphs=0).get((1, 64)) is None
    with pytest.raises(ValueError):
        GraphCache(capture, capture_after=0)


# -- option checks ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("kw, flag", [({"precision": "fp16"}, "--precision fp16"),
                                      ({"cuda_graphs": True}, "--cuda-graphs"),
                                      ({"copy_stream": True}, "--torch-copy-stream")])
def test_cuda_only_options_are_refused_on_cpu(kw, flag):
    args = {"precision": "fp32", "cuda_graphs": False, "copy_stream": None, **kw}
    with pytest.raises(ConfigError, match=flag):
        check_device_options("cpu", **args)
    check_device_options("cuda", **args)  # allowed there
    check_device_options("cpu", precision="bf16", cuda_graphs=False, copy_stream=False)  # explicit off is fine


def test_registry_refuses_cuda_graphs_on_cpu_in_one_line(random_tiny):
    reg = BackendRegistry.from_entry_points()
    with pytest.raises(ConfigError) as err:
        reg.load(BackendConfig("pytorch", random_tiny, "cpu", options={"cuda_graphs": True}))
    assert str(err.value) == "--cuda-graphs needs --device cuda (this run is on CPU); leave the flag out"
    with pytest.raises(ConfigError, match="--torch-seq-bucket must be 0..384"):
        reg.load(BackendConfig("pytorch", random_tiny, "cpu", options={"seq_bucket": 500}))
    with pytest.raises(ConfigError, match="--torch-attention"):
        reg.load(BackendConfig("pytorch", random_tiny, "cpu", options={"attention": "flash"}))
    if not _cuda():
        with pytest.raises(ConfigError, match="torch sees no CUDA device"):
            reg.load(BackendConfig("pytorch", random_tiny, "cuda"))


# -- the pytorch backend on CPU: buckets and the CUDA path's 4-D mask give the same logits -------------------

@pytest.fixture(scope="module")
def tiny_cpu(random_tiny, torch_one_thread):
    return PyTorchBackend(random_tiny, device="cpu")


def test_bucketed_batches_give_the_same_logits(random_tiny, tiny_cpu):
    ids, mask, seg = _batch(3, 50)
    plain = tiny_cpu.predict(ids, mask, seg)
    bucketed = PyTorchBackend(random_tiny, device="cpu", seq_bucket=64)
    got = bucketed.predict(ids, mask, seg)
    assert got.shape == plain.shape == (3, 50, 2) and got.dtype == np.float32
    assert np.abs(got - plain).max() < 1e-5
    assert np.abs(plain).max() > 0.05  # real logits, not zeros
    assert bucketed.describe()["seq_bucket"] == 64


def test_additive_4d_mask_matches_the_hf_2d_mask(sharp_cpu):
    """The CUDA path hands BERT a ready [B, 1, 1, L] additive mask (no host sync, capturable); on CPU the
    installed transformers must give the same logits with it as with its own 2-D mask handling."""
    ids, mask, seg = _batch(3, 50)
    ref = sharp_cpu.predict(ids, mask, seg)
    unmasked = sharp_cpu.predict(ids, np.ones_like(mask), seg)
    n = int(mask[2].sum())
    assert np.abs(unmasked[2, :n] - ref[2, :n]).max() > 0.1 * np.abs(ref).max()  # the mask matters here
    sharp_cpu._mask_4d = True
    try:
        got = sharp_cpu.predict(ids, mask, seg)
    finally:
        sharp_cpu._mask_4d = False
    assert np.abs(got[2, :n] - ref[2, :n]).max() < 1e-5  # the short (padded) sample
    assert np.abs(got - ref).max() < 1e-5


def test_cpu_bf16_is_autocast_with_fp32_logits(random_tiny):
    be = PyTorchBackend(random_tiny, device="cpu", precision="bf16")
    ids, mask, seg = _batch(2, 40)
    out = be.predict(ids, mask, seg)
    d = be.describe()
    assert out.dtype == np.float32 and (d["weights_dtype"], d["autocast"]) == ("float32", "bfloat16")
    assert d["device"] == "cpu" and "cuda_graphs" not in d


# -- ONNX Runtime providers ---------------------------------------------------------------------------------

def test_resolve_provider_follows_device_and_names_what_to_install():
    assert resolve_provider(None, "cpu", ALL_GPU) == "cpu"
    assert resolve_provider("auto", "auto", ALL_GPU) == "cuda"
    assert resolve_provider(None, "auto", CPU_ONLY) == "cpu"
    assert resolve_provider(None, "cuda:1", ALL_GPU) == "cuda"
    assert resolve_provider("tensorrt", "auto", ALL_GPU) == "tensorrt"
    with pytest.raises(ConfigError) as err:
        resolve_provider("tensorrt", "auto", CPU_ONLY, "1.32.0")
    msg = str(err.value)
    assert msg.startswith("--ort-provider tensorrt: this onnxruntime 1.32.0 has no TensorrtExecutionProvider")
    assert "onnxruntime-gpu" in msg and "replaces the CPU wheel" in msg and "\n" not in msg
    with pytest.raises(ConfigError, match=r"^--device cuda: this onnxruntime has no CUDAExecutionProvider"):
        resolve_provider(None, "cuda", CPU_ONLY)
    with pytest.raises(ConfigError, match="contradicts --device cpu"):
        resolve_provider("cuda", "cpu", ALL_GPU)
    with pytest.raises(ConfigError, match="contradicts --device cuda"):
        resolve_provider("cpu", "cuda", ALL_GPU)


def test_provider_list_puts_the_chosen_provider_first():
    assert provider_list("cpu") == [("CPUExecutionProvider", {})]
    assert [p for p, _ in provider_list("cuda", 1)] == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert provider_list("cuda", 1)[0][1] == {"device_id": 1}
    trt = provider_list("tensorrt", 0, {"trt_fp16_enable": True})
    assert [p for p, _ in trt] == ALL_GPU and trt[0][1] == {"trt_fp16_enable": True}


def test_cuda_provider_on_a_cpu_onnxruntime_is_one_line(tiny_onnx, tmp_path):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    with pytest.raises(ConfigError, match="onnxruntime-gpu"):
        OnnxRuntimeBackend(tiny_onnx, device="cuda")
    reg = BackendRegistry.from_entry_points()
    for opts in ({"provider": "cuda"}, {"provider": "tensorrt", "fp16": True}):
        with pytest.raises(ConfigError) as err:
            reg.prepare(BackendConfig("onnxruntime", tiny_onnx, "auto", options=opts, cache_dir=tmp_path))
        extra = "onnxruntime-trt" if opts["provider"] == "tensorrt" else "onnxruntime-gpu"
        assert f"pip uninstall -y onnxruntime && pip install 'mlperf-bert[{extra}]'" in str(err.value)
        assert "replaces the CPU wheel" in str(err.value)
    with pytest.raises(ConfigError, match="^--ort-fp16 runs on the GPU"):
        reg.prepare(BackendConfig("onnxruntime", tiny_onnx, "cpu", options={"fp16": True}, cache_dir=tmp_path))
    assert not (tmp_path / "artifacts").exists()  # refused before any export or fusion


def test_engine_cache_key_covers_model_options_and_versions():
    opts = {"trt_fp16_enable": True, "trt_int8_enable": False, "trt_profile_max_shapes": "input_ids:256x384"}
    key = engine_cache_key("a" * 64, opts, {"onnxruntime-gpu": "1.22.0"})
    assert len(key) == 16 and int(key, 16) >= 0
    assert key == engine_cache_key("a" * 64, dict(reversed(list(opts.items()))), {"onnxruntime-gpu": "1.22.0"})
    others = {engine_cache_key("b" * 64, opts, {"onnxruntime-gpu": "1.22.0"}),
              engine_cache_key("a" * 64, {**opts, "trt_fp16_enable": False}, {"onnxruntime-gpu": "1.22.0"}),
              engine_cache_key("a" * 64, {**opts, "trt_profile_max_shapes": "input_ids:128x384"}, {"onnxruntime-gpu": "1.22.0"}),
              engine_cache_key("a" * 64, opts, {"onnxruntime-gpu": "1.23.0"})}
    assert key not in others and len(others) == 4
    # the cache paths themselves are not part of the key
    assert key == engine_cache_key("a" * 64, {**opts, "trt_engine_cache_path": "/x", "trt_timing_cache_path": "/y"},
                                   {"onnxruntime-gpu": "1.22.0"})


def test_tensorrt_options_profile_and_engine_folder(tiny_onnx, tmp_path):
    names = ("input_ids", "input_mask", "segment_ids")
    opts = tensorrt_options(tiny_onnx, names, fp16=True, int8=False, max_batch=128, cache_dir=tmp_path)
    assert opts["trt_profile_min_shapes"] == "input_ids:1x1,input_mask:1x1,segment_ids:1x1"
    assert opts["trt_profile_max_shapes"] == "input_ids:128x384,input_mask:128x384,segment_ids:128x384"
    assert opts["trt_fp16_enable"] is True and opts["trt_int8_enable"] is False
    folder = tmp_path / "tensorrt-engines"
    (key_dir,) = folder.iterdir()
    assert opts["trt_engine_cache_path"] == opts["trt_timing_cache_path"] == str(key_dir)
    record = json.loads((key_dir / "key.json").read_text())
    assert record["model_sha256"] == fingerprint(tiny_onnx) and record["options"]["trt_fp16_enable"] is True
    int8 = tensorrt_options(tiny_onnx, names, fp16=True, int8=True, max_batch=128, cache_dir=tmp_path)
    assert int8["trt_engine_cache_path"] != opts["trt_engine_cache_path"]  # another engine
    assert "trt_engine_cache_path" not in tensorrt_options(tiny_onnx, names, fp16=False, int8=False, max_batch=1)
    with pytest.raises(ConfigError, match="--ort-trt-max-batch"):
        tensorrt_options(tiny_onnx, names, fp16=False, int8=False, max_batch=0)


def test_fp16_artifact_keeps_int_inputs_and_fp32_logits(random_tiny, tmp_path):
    from mlperf_bert.convert.to_onnx import export_onnx
    from mlperf_bert.models.artifact import manifest_for

    src = tmp_path / "export" / "model.onnx"
    export_onnx(random_tiny, src)
    said = []
    out = fp16_converted(src, tmp_path / "cache", say=said.append)
    m = onnx.load(str(out))
    assert [i.type.tensor_type.elem_type for i in m.graph.input] == [onnx.TensorProto.INT64] * 3
    assert [o.type.tensor_type.elem_type for o in m.graph.output] == [onnx.TensorProto.FLOAT] * 2
    big = [i for i in m.graph.initializer if len(i.dims) == 2 and i.dims[0] * i.dims[1] >= 4096]
    assert big and all(i.data_type == onnx.TensorProto.FLOAT16 for i in big)
    manifest = manifest_for(out)
    assert manifest.precision == "fp16" and [s["step"] for s in manifest.steps] == ["export-onnx", "ort-float16"]
    assert manifest.architecture.num_attention_heads == 4 and len(said) == 1
    assert fp16_converted(src, tmp_path / "cache", say=said.append) == out and len(said) == 1  # cached
    assert fp16_converted(out, tmp_path / "cache") == out  # already fp16


# -- random BERT-Large shapes ---------------------------------------------------------------------------------

def test_random_bert_builds_a_strictly_loadable_folder(random_tiny, tmp_path):
    import torch

    from mlperf_bert.backends.pytorch import build_model

    assert sorted(p.name for p in random_tiny.iterdir()) == ["config.json", "conversion.json", "model.safetensors"]
    model = build_model(random_tiny)  # strict: every name and shape
    assert sum(p.numel() for p in model.parameters()) == parameter_count(TINY) == 2_053_506
    cfg = json.loads((random_tiny / "config.json").read_text())
    assert (cfg["num_hidden_layers"], cfg["hidden_size"], cfg["num_attention_heads"]) == (2, 64, 4)
    emb = model.bert.embeddings.word_embeddings.weight.detach()
    assert float(emb[0].abs().max()) == 0.0  # the padding row
    # N(0, 0.02) clipped at 2 sigma: std 0.0192, largest 0.04
    assert abs(float(emb[1:].std()) - 0.0192) < 3e-4 and float(emb.abs().max()) == pytest.approx(0.04)
    assert float(model.bert.encoder.layer[0].output.LayerNorm.weight.detach().min()) == 1.0
    assert torch.count_nonzero(model.bert.encoder.layer[1].intermediate.dense.bias) == 0
    assert is_random_model(random_tiny) and not is_random_model(tmp_path)
    # the same seed gives the same bytes (so caches keyed by the fingerprint are reused); another seed does not
    again = build_random_bert(tmp_path / "again", TINY, seed=0).out_dir
    other = build_random_bert(tmp_path / "other", TINY, seed=1).out_dir
    assert fingerprint(again) == fingerprint(random_tiny) != fingerprint(other)
    with pytest.raises(ConfigError, match="already exists"):
        build_random_bert(again, TINY)
    with pytest.raises(ConfigError, match="not a multiple of 5 heads"):
        build_random_bert(tmp_path / "bad", BertShape(2, 64, 5, 128))


def test_bert_large_shape_without_its_weights():
    """The real shape, checked from the config alone: the converter's table and transformers' own model
    (on the meta device, no memory) agree on 334,094,338 parameters."""
    import torch
    from transformers import BertConfig, BertForQuestionAnswering

    cfg = BERT_LARGE.hf_config()
    assert (cfg["num_hidden_layers"], cfg["hidden_size"], cfg["num_attention_heads"], cfg["intermediate_size"],
            cfg["vocab_size"]) == (24, 1024, 16, 4096, 30522)
    assert parameter_count(BERT_LARGE) == 334_094_338
    with torch.device("meta"):
        hf = BertForQuestionAnswering(BertConfig(**cfg))
    assert sum(p.numel() for p in hf.parameters()) == 334_094_338
    state = random_state(TINY, seed=3)
    assert len(state) == 16 * 2 + 7 and all(a.dtype == np.float32 for a in state.values())


def test_random_bert_command(tmp_path, capsys):
    from mlperf_bert.cli import main

    out = tmp_path / "m"
    assert main(["random-bert", str(out), "--layers", "2", "--hidden", "64", "--heads", "4",
                 "--intermediate", "128", "--seed", "5"]) == 0
    assert "39 tensors, 2,053,506 parameters (2 layers, hidden 64, 4 heads" in capsys.readouterr().out
    assert json.loads((out / "conversion.json").read_text())["seed"] == 5
    assert main(["random-bert", str(out), "--layers", "2"]) == 2
    assert "already exists" in capsys.readouterr().err


# -- batching defaults by device --------------------------------------------------------------------------

def test_device_batching_defaults():
    cpu = batcher_for_device("cpu")  # issue 16's measured CPU defaults: batch 1, no Server wait
    assert (cpu.max_batch_size, cpu.token_budget, cpu.pad_to_multiple, cpu.server_max_wait_ms) == (1, 8192, 1, 0.0)
    cuda = batcher_for_device("cuda")
    assert (cuda.max_batch_size, cuda.token_budget, cuda.pad_to_multiple, cuda.server_max_wait_ms) == (256, 65536, 64, 5.0)
    given = batcher_for_device("cuda", max_batch_size=64, token_budget=0, pad_to_multiple=1, sort_by_length=False)
    assert (given.max_batch_size, given.token_budget, given.pad_to_multiple, given.sort_by_length) == (64, None, 1, False)
    assert [device_kind(d) for d in ("cpu", "auto", "cuda", "cuda:1")] == ["cpu", "cpu", "cuda", "cuda"]
    with pytest.raises(ConfigError, match="unknown device kind"):
        batcher_for_device("tpu")


def test_run_flags_pick_the_device_defaults(tiny_squad, random_tiny):
    from mlperf_bert.cli import build_parser
    from mlperf_bert.commands.run import build_run_config

    dataset, vocab = tiny_squad
    parser = build_parser()
    _parse = parser.parse_args
    parser.parse_args = lambda argv: _parse([*argv, "--dataset", str(dataset), "--vocab", str(vocab),
                                             "--model", str(random_tiny)])
    cpu = build_run_config(parser.parse_args(["run", "--device", "cpu", "--no-profile"])).sut.batcher
    assert cpu == batcher_for_device("cpu")
    gpu_cfg = build_run_config(parser.parse_args(["run", "--device", "cuda", "--backend", "pytorch", "--no-profile"])).sut.batcher
    assert (gpu_cfg.max_batch_size, gpu_cfg.token_budget, gpu_cfg.pad_to_multiple) == (256, 65536, 64)
    mine = build_run_config(parser.parse_args(["run", "--device", "cuda", "--batch-size", "8", "--token-budget", "0"]))
    assert (mine.sut.batcher.max_batch_size, mine.sut.batcher.token_budget) == (8, None)


# -- on a GPU (skipped here) --------------------------------------------------------------------------------

#: GPU vs CPU fp32 logits, as a fraction of the logits' largest magnitude: fp32 (no TF32), bf16 weights
#: (8-bit mantissa; 0.3% on CPU autocast), fp16 weights (11-bit). A masking error moves them by 15-25%.
GPU_RTOL = {"fp32": 1e-3, "bf16": 3e-2, "fp16": 1e-2}


@gpu
@needs_cuda
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_cuda_logits_match_cpu(sharp_model, sharp_cpu, precision):
    ids, mask, seg = _batch(3, 50)
    ref = sharp_cpu.predict(ids, mask, seg)
    be = PyTorchBackend(sharp_model, device="cuda", precision=precision)
    got = be.predict(ids, mask, seg)
    assert got.shape == ref.shape and got.dtype == np.float32
    assert np.abs(got - ref).max() < GPU_RTOL[precision] * np.abs(ref).max()
    assert be.describe()["weights_dtype"] == {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}[precision]


@gpu
@needs_cuda
def test_cuda_graphs_replay_the_eager_result(sharp_model):
    eager = PyTorchBackend(sharp_model, device="cuda", seq_bucket=64)
    graphs = PyTorchBackend(sharp_model, device="cuda", cuda_graphs=True)
    for b, seq in ((3, 50), (3, 50), (3, 50), (5, 120), (5, 120), (1, 384)):
        ids, mask, seg = _batch(min(b, 3), seq, seed=b)
        want = eager.predict(ids, mask, seg)
        assert np.abs(graphs.predict(ids, mask, seg) - want).max() < 1e-4 * np.abs(want).max()
    d = graphs.describe()["cuda_graphs"]
    assert d["captured"] == 2 and [tuple(s) for s in d["shapes"]] == [(4, 64), (4, 128)]
    assert (d["replays"], d["eager_batches"]) == (2, 3)


@gpu
@needs_cuda
def test_copy_stream_off_gives_the_same_logits(sharp_model):
    ids, mask, seg = _batch(3, 50)
    on = PyTorchBackend(sharp_model, device="cuda").predict(ids, mask, seg)
    off = PyTorchBackend(sharp_model, device="cuda", copy_stream=False).predict(ids, mask, seg)
    assert np.abs(on - off).max() <= 1e-6 * np.abs(on).max()  # same kernels; only the streams differ


def test_each_cpu_backend_runs_at_its_own_threads(random_tiny):
    """torch's intra-op pool is one per process; tune keeps two backends loaded. Was: the older backend ran
    at the newer one's thread count."""
    import torch

    saved = torch.get_num_threads()
    try:
        one = PyTorchBackend(random_tiny, device="cpu", threads=1)
        PyTorchBackend(random_tiny, device="cpu", threads=2)
        assert torch.get_num_threads() == 2
        one.predict(*_batch(1, 20))
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(saved)
