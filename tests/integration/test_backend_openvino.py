"""OpenVINO backend on the small real model: logits against ONNX Runtime on real dev features (fp32 and the
int8 QDQ file ``quantize --method ptq`` writes), input conventions and dtypes, fixed-shape files, bad models,
and (slow) the full-dev F1 through LoadGen.

Tests that run OpenVINO are skipped when it is not installed (extra ``[openvino]``); the first two check the
module without it.
"""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from mlperf_bert.backends import openvino as ov_backend
from mlperf_bert.backends.openvino import OpenVinoBackend, prepare
from mlperf_bert.backends.base import BackendConfig
from mlperf_bert.backends.registry import BackendRegistry
from mlperf_bert.errors import BackendFailure, BackendUnavailable, ConfigError, ModelError

HAVE_OPENVINO = importlib.util.find_spec("openvino") is not None
needs_openvino = pytest.mark.skipif(not HAVE_OPENVINO,
                                    reason="openvino is not installed: pip install 'mlperf-bert[openvino]'")

#: OpenVINO vs ONNX Runtime fp32 logits, same ONNX file: the largest |difference| measured over 217 batches of
#: 8 length-neighbouring dev features (every 50th feature by length, up to 384 tokens) was 3.0e-5; the bar
#: is issue 2's 1e-4.
FP32_ATOL = 1e-4
#: OpenVINO vs ONNX Runtime on the same int8 QDQ file, on real tokens. The runtimes round differently
#: (OpenVINO runs the 36 encoder FullyConnected layers on u8 with its own requantization and the attention
#: MatMuls in f32 on dequantized values), so the logits differ by more than fp32 rounding: measured on 352
#: dev features (batches of 8 length neighbours, every 250th by length) max 0.98 / mean 0.074 / top-1 start
#: agreement 0.96 for the 4-feature calibration used here, and max 1.20 / mean 0.078 / 0.93 for the
#: 100-feature calibration of ``quantize --method ptq``; on the test's 48 features (4-feature calibration)
#: max 0.84 / mean 0.077 / agreement 0.958. Full-dev F1 is the real check (docs/backends-openvino.md).
INT8_MAX_ATOL, INT8_MEAN_ATOL = 1.5, 0.15
#: bf16 vs fp32 logits (ONNX Runtime's; OpenVINO fp32 is within 3e-5 of them): measured max 0.23 over the same
#: 217 batches.
BF16_ATOL = 0.5
#: PyTorch fp32 F1 of the small model on all 10,833 dev features (docs/golden.md#small-model); fp32 backends
#: must match it within 0.02.
SMALL_MODEL_F1 = 78.91206147893796


def _registry() -> BackendRegistry:
    """The installed backends: openvino registers through its entry point like every other backend."""
    reg = BackendRegistry.from_entry_points()
    assert reg.spec("openvino") is ov_backend.SPEC
    return reg


# --- without openvino ----------------------------------------------------------------------------
def test_module_imports_without_openvino_and_names_the_extra(monkeypatch, tmp_path):
    code = ("import sys; sys.modules['openvino'] = None; import mlperf_bert.backends.openvino as m; "
            "print(m.SPEC.name, m.SPEC.extra)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.split() == ["openvino", "openvino"], done.stderr
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino -> ModuleNotFoundError
    with pytest.raises(BackendUnavailable, match=r"needs the Python module 'openvino'.*pip install 'mlperf-bert\[openvino\]'"):
        OpenVinoBackend(tmp_path / "model.onnx")


def test_spec_points_at_this_module():
    spec = ov_backend.SPEC
    assert (spec.name, spec.extra, spec.framework, spec.packages) == ("openvino", "openvino", "OpenVINO", ("openvino",))
    module, _, cls = spec.target.partition(":")
    assert getattr(importlib.import_module(module), cls) is OpenVinoBackend
    module, _, fn = spec.prepare.partition(":")
    assert getattr(importlib.import_module(module), fn) is prepare
    opts = {o.name: o for o in spec.options}
    assert opts["precision"].choices == ("fp32", "bf16") and opts["precision"].default == "fp32"
    assert opts["performance_hint"].choices == ("LATENCY", "THROUGHPUT")
    assert spec.speed_configs == {"ov-fp32": ({"precision": "fp32"}, "ort-fp32"),
                                  "ov-bf16": ({"precision": "bf16"}, "torch-bf16"), "ov-int8": ({}, "ort-int8")}


def test_prepare_exports_a_pytorch_model_once(tmp_path, monkeypatch):
    import mlperf_bert.convert.to_onnx as to_onnx

    calls = []
    monkeypatch.setattr(to_onnx, "exported_onnx",
                        lambda model, cache, say: calls.append((model, cache)) or say("exported") or cache / "x.onnx")
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text("{}")
    (hf / "model.safetensors").write_bytes(b"")
    said = []
    cfg = BackendConfig(name="openvino", model=hf, cache_dir=tmp_path / "cache")
    assert prepare(hf, cfg, said.append) == tmp_path / "cache" / "x.onnx"
    assert calls == [(hf, tmp_path / "cache")] and said == ["exported"]
    onnx_file = tmp_path / "m.onnx"
    onnx_file.write_bytes(b"")
    assert prepare(onnx_file, cfg, said.append) == onnx_file and len(calls) == 1  # an .onnx file is used as it is
    ir = tmp_path / "m.xml"
    ir.write_bytes(b"")
    assert prepare(ir, cfg, said.append) == ir
    with pytest.raises(ModelError, match="model not found"):
        prepare(tmp_path / "nope", cfg, said.append)
    (tmp_path / "m.pb").write_bytes(b"")
    with pytest.raises(ConfigError, match=r"backend 'openvino' runs ONNX files or OpenVINO IR .*m.pb is tf-frozen"):
        prepare(tmp_path / "m.pb", cfg, said.append)


# --- with openvino -------------------------------------------------------------------------------
def _layers(backend) -> Counter:
    """(layer type, precision it runs in) -> count, from OpenVINO's compiled (runtime) graph."""
    return Counter((op.get_rt_info()["layerType"].astype(str), op.get_rt_info()["runtimePrecision"].astype(str))
                   for op in backend.compiled.get_runtime_model().get_ordered_ops())


@pytest.fixture(scope="module")
def dev(shared, tmp_path_factory):
    from mlperf_bert.config import DataPaths, SquadConfig
    from mlperf_bert.squad.cache import load_features

    paths = DataPaths.defaults(shared=shared, cache_dir=tmp_path_factory.mktemp("ov-cache"))
    return load_features(paths, SquadConfig(), progress=False)


def dev_batches(features, every: int = 500, size: int = 4):
    """Batches of ``size`` length-neighbouring dev features (every ``every``-th by length, from the shortest to
    the 384-token longest), trimmed to their longest member as the SUT trims them; int32 as stored."""
    order = np.argsort(features.lengths, kind="stable")
    starts = list(range(0, len(order) - size, every)) + [len(order) - size]
    for k in starts:
        idx = order[k:k + size]
        n = int(features.lengths[idx].max())
        yield idx, n, [a[idx, :n] for a in (features.input_ids, features.input_mask, features.segment_ids)]


@pytest.fixture(scope="module")
def ort_fp32(small_onnx):
    from mlperf_bert.backends.onnxruntime import OnnxRuntimeBackend

    return OnnxRuntimeBackend(small_onnx, device="cpu")


@pytest.fixture(scope="module")
def ov_fp32(small_onnx):
    if not HAVE_OPENVINO:
        pytest.skip("openvino is not installed: pip install 'mlperf-bert[openvino]'")
    return OpenVinoBackend(small_onnx)


@needs_openvino
def test_fp32_matches_onnxruntime_on_dev_features(dev, ov_fp32, ort_fp32):
    _, features = dev
    assert ov_fp32.input_names == ("input_ids", "input_mask", "segment_ids")
    assert (ov_fp32.static_batch, ov_fp32.static_length, ov_fp32.precision) == (None, None, "fp32")
    # 6 encoder layers x (Q, K, V, output, 2 FFN) + QA head, all in f32 (the CPU plugin's own default is bf16
    # on AVX-512 BF16/AMX CPUs like this one)
    assert _layers(ov_fp32)["FullyConnected", "f32"] == 37
    worst, lengths = 0.0, set()
    for _, n, args in dev_batches(features, every=2000):
        got, ref = ov_fp32.predict(*args), ort_fp32.predict(*args)
        assert got.shape == ref.shape == (4, n, 2) and got.dtype == np.float32 and got.flags.c_contiguous
        worst = max(worst, float(np.abs(got - ref).max()))
        lengths.add(n)
    assert worst < FP32_ATOL, worst
    assert min(lengths) < 64 and max(lengths) == 384  # short and full-length batches, one compiled model
    idx, n, args = next(dev_batches(features, every=3000))
    one = ov_fp32.predict(*(a[:1, :int(features.lengths[idx[0]])] for a in args))  # batch 1, its own length
    assert np.abs(one - ort_fp32.predict(*(a[:1, :one.shape[1]] for a in args))).max() < FP32_ATOL


@needs_openvino
def test_int32_and_int64_inputs_give_the_same_logits(dev, ov_fp32):
    _, _, args = next(dev_batches(dev[1], every=4000))
    assert args[0].dtype == np.int32
    a = ov_fp32.predict(*args)
    b = ov_fp32.predict(*(x.astype(np.int64) for x in args))
    np.testing.assert_array_equal(a, b)
    assert np.abs(a).max() > 1.0  # real logits, not zeros


def _renamed(small_onnx: Path, out: Path, rename: dict, reverse_outputs: bool = False) -> Path:
    import onnx

    m = onnx.load(str(small_onnx))
    for node in m.graph.node:
        node.input[:] = [rename.get(x, x) for x in node.input]
        node.output[:] = [rename.get(x, x) for x in node.output]
    for v in list(m.graph.input) + list(m.graph.output):
        v.name = rename.get(v.name, v.name)
    if reverse_outputs:
        outs = list(m.graph.output)
        del m.graph.output[:]
        m.graph.output.extend(reversed(outs))
    onnx.save(m, str(out))
    return out


@needs_openvino
@pytest.mark.parametrize("outputs, reverse", [
    ({"output_start_logits": "7", "output_end_logits": "8"}, False),  # official int8 file: opaque names, start first
    ({}, True),  # end declared first: picked by name
])
def test_hf_input_convention_and_output_order(tmp_path, small_onnx, dev, ov_fp32, outputs, reverse):
    rename = {"input_mask": "attention_mask", "segment_ids": "token_type_ids", **outputs}
    path = _renamed(small_onnx, tmp_path / "hf-names.onnx", rename, reverse)
    backend = OpenVinoBackend(path)
    assert backend.input_names == ("input_ids", "attention_mask", "token_type_ids")
    _, _, args = next(dev_batches(dev[1], every=4000))
    np.testing.assert_array_equal(backend.predict(*args), ov_fp32.predict(*args))


@needs_openvino
def test_openvino_ir_file_gives_the_onnx_logits(tmp_path, small_onnx, dev, ov_fp32):
    import openvino as ov

    model = ov.Core().read_model(str(small_onnx))
    ov.save_model(model, str(tmp_path / "model.xml"), compress_to_fp16=False)  # fp32 weights, as in the ONNX file
    backend = OpenVinoBackend(tmp_path / "model.xml")
    assert backend.input_names == ("input_ids", "input_mask", "segment_ids")
    _, _, args = next(dev_batches(dev[1], every=4000))
    np.testing.assert_allclose(backend.predict(*args), ov_fp32.predict(*args), atol=1e-6)
    (tmp_path / "model.bin").write_bytes(b"")  # weights gone
    with pytest.raises(ModelError, match=r"cannot read .*model.xml \(truncated or not an OpenVINO IR"):
        OpenVinoBackend(tmp_path / "model.xml")


@needs_openvino
def test_fixed_length_file_runs_trimmed_batches(tmp_path, small_onnx, dev, ov_fp32):
    """A file declaring [batch, 384] (as the official files do) is reshaped to dynamic axes after a probe."""
    import onnx

    m = onnx.load(str(small_onnx))
    for v in m.graph.input:
        v.type.tensor_type.shape.dim[1].dim_value = 384
    path = tmp_path / "fixed384.onnx"
    onnx.save(m, str(path))
    backend = OpenVinoBackend(path)
    assert (backend.static_batch, backend.static_length) == (None, None)
    _, n, args = next(dev_batches(dev[1], every=4000))
    assert n < 384
    np.testing.assert_allclose(backend.predict(*args), ov_fp32.predict(*args), atol=1e-6)


@needs_openvino
def test_baked_in_shape_is_padded_and_chunked(tmp_path):
    """A graph whose Reshape hard-codes [2, 8] keeps that shape: batches are padded and split, padding cut off."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    ins = [helper.make_tensor_value_info(n, TensorProto.INT64, [2, 8])
           for n in ("input_ids", "input_mask", "segment_ids")]
    out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [2, 8, 2])
    shape = numpy_helper.from_array(np.array([2, 8, 1], np.int64), "shape")
    nodes = [helper.make_node("Mul", ["input_ids", "input_mask"], ["masked"]),
             helper.make_node("Cast", ["masked"], ["a"], to=TensorProto.FLOAT),
             helper.make_node("Cast", ["segment_ids"], ["b"], to=TensorProto.FLOAT),
             helper.make_node("Reshape", ["a", "shape"], ["a3"]),
             helper.make_node("Reshape", ["b", "shape"], ["b3"]),
             helper.make_node("Concat", ["a3", "b3"], ["logits"], axis=2)]
    graph = helper.make_graph(nodes, "fixed", ins, [out], initializer=[shape])
    path = tmp_path / "baked.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    backend = OpenVinoBackend(path)
    assert (backend.static_batch, backend.static_length) == (2, 8)
    ids = np.arange(1, 16, dtype=np.int32).reshape(3, 5)
    mask = np.array([[1] * 5, [1] * 3 + [0] * 2, [1] * 5], dtype=np.int32)
    seg = np.array([[0, 0, 1, 1, 1]] * 3, dtype=np.int32)
    got = backend.predict(ids, mask, seg)
    assert got.shape == (3, 5, 2)
    np.testing.assert_array_equal(got, np.stack([ids * mask, seg], axis=-1).astype(np.float32))
    with pytest.raises(BackendFailure, match="batch length 9 exceeds the model's fixed length 8"):
        backend.predict(*(np.ones((1, 9), np.int64),) * 3)


@needs_openvino
def test_bf16_is_close_to_fp32_or_refused(small_onnx, dev, ov_fp32):
    import openvino as ov

    if "BF16" not in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        with pytest.raises(ConfigError, match="--precision bf16: this CPU has no BF16 support"):
            OpenVinoBackend(small_onnx, precision="bf16")
        return
    backend = OpenVinoBackend(small_onnx, precision="bfloat16")  # OpenVINO's spelling is accepted
    assert backend.precision == "bf16"
    assert _layers(backend)["FullyConnected", "bf16"] == 37
    for _, _, args in dev_batches(dev[1], every=4000):
        diff = np.abs(backend.predict(*args) - ov_fp32.predict(*args)).max()
        assert 0 < diff < BF16_ATOL, diff  # bf16 really ran (not 0), and stays close


@pytest.fixture(scope="module")
def ptq_file(small_onnx, dev, shared, tmp_path_factory) -> Path:
    """``quantize --method ptq`` (default recipe) of the small model, calibrated on the first 4 listed features."""
    from mlperf_bert.quant.calibration import read_calibration_list
    from mlperf_bert.quant.ptq import PtqConfig, quantize_ptq

    root = tmp_path_factory.mktemp("ov-ptq")
    official = read_calibration_list(shared / "data" / "bert-calibration.txt", len(dev[1]))
    (root / "cal4.txt").write_text("\n".join(str(i) for i in official.indices[:4]) + "\n")
    quantize_ptq(small_onnx, root / "int8", dev[1], read_calibration_list(root / "cal4.txt", len(dev[1])), PtqConfig())
    return root / "int8" / "model.onnx"


@needs_openvino
def test_int8_qdq_file_runs_integer_layers_close_to_onnxruntime(ptq_file, dev):
    from mlperf_bert.backends.onnxruntime import OnnxRuntimeBackend

    backend = OpenVinoBackend(ptq_file)
    layers = _layers(backend)
    assert layers["FullyConnected", "u8"] == 36  # Q, K, V, output, 2 FFN x 6 layers on int8 kernels
    assert layers["FullyConnected", "f32"] == 1  # the QA head stays fp32, as in MLPerf's int8 model
    ort = OnnxRuntimeBackend(ptq_file, device="cpu")
    features = dev[1]
    worst, means, agree = 0.0, [], []
    for idx, n, args in dev_batches(features, every=1000):
        got, ref = backend.predict(*args), ort.predict(*args)
        real = args[1].astype(bool)
        worst = max(worst, float(np.abs(got - ref)[real].max()))
        means.append(float(np.abs(got - ref)[real].mean()))
        agree += [got[r, :features.lengths[i], 0].argmax() == ref[r, :features.lengths[i], 0].argmax()
                  for r, i in enumerate(idx)]
    assert worst < INT8_MAX_ATOL and np.mean(means) < INT8_MEAN_ATOL, (worst, np.mean(means))
    assert np.mean(agree) >= 0.9, np.mean(agree)


@needs_openvino
def test_threads_share_one_compiled_model(dev, ov_fp32):
    """Each SUT worker thread gets its own infer request; concurrent batches give the sequential logits."""
    batches = [args for _, _, args in dev_batches(dev[1], every=2500)][:4]
    expected = [ov_fp32.predict(*args) for args in batches]
    got: dict[int, np.ndarray] = {}
    threads = [threading.Thread(target=lambda k=k: got.__setitem__(k, ov_fp32.predict(*batches[k])))
               for k in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, ref in enumerate(expected):
        np.testing.assert_array_equal(got[k], ref)


def _one_line_model_error(path, pattern):
    with pytest.raises(ModelError, match=pattern) as err:
        OpenVinoBackend(path)
    assert "\n" not in str(err.value)


@needs_openvino
def test_bad_model_files_are_one_line_errors(tmp_path, small_onnx):
    import onnx

    _one_line_model_error(tmp_path / "nope.onnx", "model not found: .*nope.onnx")
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(small_onnx.read_bytes()[:100_000])
    _one_line_model_error(cut, r"openvino cannot read .*cut.onnx \(truncated or not an ONNX model\?\): "
                               "Model can't be parsed$")
    m = onnx.load(str(small_onnx))
    m.graph.input[1].name = "mask"
    for node in m.graph.node:
        node.input[:] = ["mask" if x == "input_mask" else x for x in node.input]
    odd = tmp_path / "odd.onnx"
    onnx.save(m, str(odd))
    _one_line_model_error(odd, r"odd.onnx has inputs \['input_ids', 'mask', 'segment_ids'\]; expected one of "
                               "input_ids/input_mask/segment_ids or input_ids/attention_mask/token_type_ids")
    (tmp_path / "model.pb").write_bytes(b"x")
    _one_line_model_error(tmp_path / "model.pb", r"model.pb: the openvino backend loads .onnx or OpenVINO IR .xml")


@needs_openvino
def test_options_and_runtime_failures(small_onnx, ov_fp32):
    reg = _registry()
    cfg = BackendConfig(name="openvino", model=small_onnx, device="cpu", threads=1,
                        options={"precision": "fp32", "performance_hint": "THROUGHPUT"})
    backend = reg.load(cfg)
    assert isinstance(backend, OpenVinoBackend) and (backend.threads, backend.performance_hint) == (1, "THROUGHPUT")
    for options, pattern in (({"precision": "fp16"}, "--precision fp16: backend 'openvino' accepts fp32, bf16"),
                             ({"performance_hint": "FAST"}, "--ov-hint FAST: backend 'openvino' accepts LATENCY, THROUGHPUT"),
                             ({"transformer_optimize": True}, "backend 'openvino' has no option transformer_optimize")):
        with pytest.raises(ConfigError, match=pattern):
            reg.load(BackendConfig(name="openvino", model=small_onnx, options=options))
    with pytest.raises(ConfigError, match="runs on the CPU only; got device 'cuda'"):
        reg.load(BackendConfig(name="openvino", model=small_onnx, device="cuda"))
    with pytest.raises(ConfigError, match="backend 'openvino' needs --model"):
        reg.load(BackendConfig(name="openvino"))
    ids = np.ones((2, 10), np.int64)
    with pytest.raises(BackendFailure, match=r"inputs of shapes \[\(2, 10\), \(2, 9\), \(2, 10\)\]"):
        backend.predict(ids, ids[:, :9], ids)  # OpenVINO itself would read past the shorter mask

    class FailingRequest:
        def infer(self, feeds):
            raise RuntimeError("Exception from src/plugins/intel_cpu/src/node.cpp:42:\nsome detail")

    backend._local.request = FailingRequest()  # this thread's request
    with pytest.raises(BackendFailure, match=r"openvino failed on a batch of shape \(2, 10\): some detail$") as err:
        backend.predict(ids, ids, ids)
    assert "\n" not in str(err.value)
    backend.close()
    backend.close()  # idempotent
    with pytest.raises(BackendFailure, match="closed"):
        backend.predict(ids, ids, ids)


@pytest.mark.slow
@needs_openvino
def test_full_dev_f1_equals_pytorch(shared, small_onnx, tmp_path):
    """All 10,833 dev features through LoadGen accuracy mode (Offline, sorted token-budget batches)."""
    from mlperf_bert.config import DataPaths
    from mlperf_bert.loadgen.settings import LoadGenConfig
    from mlperf_bert.runner import RunConfig, run
    from mlperf_bert.sut.sut import SUTConfig

    cfg = RunConfig(data=DataPaths.defaults(shared=shared, cache_dir=tmp_path / "cache"),
                    backend=BackendConfig(name="openvino", model=small_onnx, device="cpu"),
                    sut=SUTConfig(scenario="Offline"), loadgen=LoadGenConfig(scenario="Offline"),
                    modes=("accuracy",), output_dir=tmp_path, run_name="ov-acc")
    acc = run(cfg, registry=_registry(), progress=False).accuracy
    print(f"OpenVINO fp32 on SQuAD dev: f1={acc.f1} em={acc.exact_match}")
    assert acc.samples_in_log == 10_833 and acc.questions_scored == acc.questions_total == 10_570
    assert abs(acc.f1 - SMALL_MODEL_F1) <= 0.02, acc.f1
