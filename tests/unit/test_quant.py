"""int8 the MLPerf way on the tiny random BERT (``tiny_model``, ``tiny_onnx``): calibration lists, post-training
(ONNX Runtime) and quantization-aware (PyTorch) quantization, SmoothQuant, the export forms and their integer
graphs, and one-line errors for bad input. Calibration and checks run on ``fakes.synthetic_features`` (real
lengths, random ids). The official list and PTQ's cost in accuracy on the small real model:
tests/integration/test_quant_real.py.

The tiny model has 2 layers; per layer: 6 weight MatMuls (Q, K, V, attention output, intermediate, output) and 2
activation MatMuls (Q.K and probs.V), so 12 quantized weights and 16 integer MatMuls in all, plus the QA head.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from mlperf_bert.backends.onnxruntime import OnnxRuntimeBackend
from mlperf_bert.cli import main as cli_main
from mlperf_bert.errors import DataError, ModelError
from fakes import synthetic_features
from mlperf_bert.quant.calibration import calibration_inputs, check_indices, read_calibration_list
from mlperf_bert.quant.export import export_fake_quant_onnx, fake_quant_to_qdq, qdq_counts
from mlperf_bert.models.artifact import manifest_for, read_manifest
from mlperf_bert.quant.ptq import PtqConfig, check_bert_onnx, quantize_ptq
from mlperf_bert.quant.qat import ACTIVATION_POSITIONS, QuantBertForQA, calibrate, load_quant_model

N_FEATURES = 10_833  # the dev set's feature count, for the calibration-list messages
LAYERS = 2  # fakes.TINY_BERT
#: Synthetic features to calibrate and check on, and the 8 of them a calibration list names.
N_SYNTHETIC = 400
CALIBRATION = (3, 41, 97, 150, 222, 301, 356, 398)


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("quant-cache")


@pytest.fixture(scope="module")
def feats():
    """``N_SYNTHETIC`` synthetic features (lengths 41..384, random ids 1000..30000)."""
    return synthetic_features(N_SYNTHETIC)[1]


@pytest.fixture(scope="module")
def small_list(tmp_path_factory) -> Path:
    """A calibration list of the 8 ``CALIBRATION`` indices."""
    path = tmp_path_factory.mktemp("cal") / "cal8.txt"
    path.write_text("\n".join(str(i) for i in CALIBRATION) + "\n")
    return path


@pytest.fixture(scope="module")
def calibration(small_list, feats):
    return read_calibration_list(small_list, len(feats))


# --- calibration list ----------------------------------------------------------------------------
@pytest.mark.parametrize("text, pattern", [
    ("4547\n10833\n", r"line 2: index 10833 is out of range: the dataset has 10,833 features \(0\.\.10832\)"),
    ("12\nabc\n", r"line 2: 'abc' is not a feature index"),
    ("-5\n", r"line 1: '-5' is not a feature index"),
    ("7\n8\n7\n", r"line 3: index 7 repeats line 1"),
    ("\n\n", r"holds no index"),
])
def test_bad_calibration_lists(tmp_path, text, pattern):
    bad = tmp_path / "cal.txt"
    bad.write_text(text)
    with pytest.raises(DataError, match=pattern) as err:
        read_calibration_list(bad, N_FEATURES)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(DataError, match="calibration list not found"):
        read_calibration_list(tmp_path / "missing.txt", N_FEATURES)
    with pytest.raises(DataError, match="out of range"):
        check_indices(np.array([3, N_FEATURES]), N_FEATURES)


def test_cli_out_of_range_calibration_is_one_line(tmp_path, cache_dir, tiny_squad, tiny_onnx, capsys, monkeypatch):
    monkeypatch.setenv("MLPERF_BERT_CACHE", str(cache_dir))
    bad = tmp_path / "bad-calibration.txt"
    bad.write_text("1\n99999\n")  # the tiny SQuAD file has 2 features: 1 is in range
    dataset, vocab = tiny_squad
    rc = cli_main(["quantize", "--method", "ptq", "--model", str(tiny_onnx), "--output", str(tmp_path / "o"),
                   "--dataset", str(dataset), "--vocab", str(vocab), "--calibration", str(bad), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "bad-calibration.txt line 2: index 99999 is out of range" in err
    assert not (tmp_path / "o").exists()


def test_cli_non_bert_model_is_one_line(tmp_path, capsys, small_list):
    x = onnx.helper.make_tensor_value_info("pixel_values", onnx.TensorProto.FLOAT, [1, 3, 8, 8])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3, 8, 8])
    graph = onnx.helper.make_graph([onnx.helper.make_node("Relu", ["pixel_values"], ["y"])], "cnn", [x], [y])
    path = tmp_path / "resnet.onnx"
    onnx.save(onnx.helper.make_model(graph), str(path))
    rc = cli_main(["quantize", "--method", "ptq", "--model", str(path), "--output", str(tmp_path / "o"),
                   "--calibration", str(small_list)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "resnet.onnx is not a BERT QA model: its inputs are ['pixel_values']" in err
    with pytest.raises(ModelError, match="cannot load .*truncated or not an ONNX model"):
        (tmp_path / "junk.onnx").write_bytes(b"\x00not onnx")
        check_bert_onnx(tmp_path / "junk.onnx")
    gpt = tmp_path / "gpt"
    gpt.mkdir()
    (gpt / "config.json").write_text('{"model_type": "gpt2"}')
    (gpt / "model.safetensors").write_bytes(b"")
    rc = cli_main(["quantize", "--method", "qat", "--model", str(gpt), "--output", str(tmp_path / "o"),
                   "--calibration", str(small_list)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "gpt" in err


def test_cli_qat_missing_train_file_is_one_line(tmp_path, tiny_model, capsys, small_list):
    rc = cli_main(["quantize", "--method", "qat", "--model", str(tiny_model), "--output", str(tmp_path / "o"),
                   "--train-file", str(tmp_path / "train.json"), "--calibration", str(small_list)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "train.json: training file not found" in err


# --- quantization-aware model --------------------------------------------------------------------
@pytest.fixture(scope="module")
def qat_model(tiny_model, feats, calibration) -> QuantBertForQA:
    model = load_quant_model(tiny_model)
    calibrate(model, list(calibration_inputs(feats, calibration.indices[:8])))
    return model


def _real_batch(feats, rows):
    n = int(feats.lengths[rows].max())
    return [torch.from_numpy(a[rows, :n].astype(np.int64)) for a in (feats.input_ids, feats.input_mask,
                                                                     feats.segment_ids)]


def _layer0_attention_probs(model_dir, batches) -> np.ndarray:
    """Every layer-0 softmax output of the fp32 model on ``batches``, computed apart from the quantized model
    (Hugging Face eager attention), float32, flattened."""
    from transformers import BertForQuestionAnswering

    hf = BertForQuestionAnswering.from_pretrained(str(model_dir), attn_implementation="eager").eval()
    out = []
    with torch.no_grad():
        for ids, mask, seg in batches:
            t = [torch.as_tensor(a, dtype=torch.long) for a in (ids, mask, seg)]
            out.append(hf(input_ids=t[0], attention_mask=t[1], token_type_ids=t[2],
                          output_attentions=True).attentions[0].numpy().ravel())
    return np.concatenate(out)


def test_qat_model_matches_hf_with_quantizers_off_and_is_calibrated(qat_model, feats, tiny_model, calibration):
    batch = _real_batch(feats, np.array([0, 1, 2]))
    qat_model.set_enabled(False)
    try:
        with torch.no_grad():
            ours = qat_model(*batch)
            hf = qat_model.hf(input_ids=batch[0], attention_mask=batch[1], token_type_ids=batch[2])
    finally:
        qat_model.set_enabled(True)
    assert torch.allclose(ours[0], hf.start_logits, atol=1e-4) and torch.allclose(ours[1], hf.end_logits, atol=1e-4)
    names = dict(qat_model.named_quantizers())
    assert len(names) == LAYERS * (len(ACTIVATION_POSITIONS) + 6)
    amax = {n: float(q.amax) for n, q in names.items() if q.kind == "activation"}
    assert all(0 < v < 1e3 for v in amax.values())
    # softmax output, calibrated as documented: the 99.99th percentile of |x| from a 2048-bin histogram over [0, max]
    probs = _layer0_attention_probs(tiny_model, calibration_inputs(feats, calibration.indices[:8]))
    top = float(probs.max())
    cdf = np.cumsum(np.histogram(probs, bins=2048, range=(0.0, top))[0]) / probs.size
    expected = (int(np.searchsorted(cdf, 0.9999)) + 1) * top / 2048
    assert 0 < amax["layer0.probs"] < top <= 1.0
    assert amax["layer0.probs"] == pytest.approx(expected, abs=top / 2048)
    assert amax["layer0.qkv_in"] == pytest.approx(amax["layer0.attn_add_res"])  # same tensor
    with torch.no_grad():
        q = qat_model(*batch)
    corr = np.corrcoef(q[0].numpy().ravel(), hf.start_logits.numpy().ravel())[0, 1]
    assert 0.8 < corr < 1.0 - 1e-6  # quantized: close, but not equal


def test_max_calibration_bounds_percentile(tiny_model, feats, calibration):
    """Percentile clips the top 0.01%: below the max for most quantizers once they see > 10,000 values (8 features
    here: 2 give fewer than 10,000 per quantizer at hidden 32, and the percentile lands in the max's bin)."""
    model = load_quant_model(tiny_model)
    batches = list(calibration_inputs(feats, calibration.indices[:8]))
    p = calibrate(model, batches, "percentile", 99.99).amax
    m = calibrate(model, batches, "max").amax
    assert all(p[k] <= m[k] * (1 + 1e-6) for k in p) and sum(p[k] < m[k] for k in p) > len(p) // 2


@pytest.fixture(scope="module")
def qat_export(qat_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("qat")
    facts = export_fake_quant_onnx(qat_model, out / "model_fake_quant.onnx")
    fast = fake_quant_to_qdq(out / "model_fake_quant.onnx", out / "model.onnx")
    return out, facts, fast


def test_qat_export_has_official_names_and_per_tensor_scales(qat_export):
    out, facts, _ = qat_export
    m = onnx.load(str(out / "model_fake_quant.onnx"))
    assert [i.name for i in m.graph.input] == ["input_ids", "attention_mask", "token_type_ids"]
    assert [o.name for o in m.graph.output] == ["start_logits", "end_logits"]
    inits = {i.name: i for i in m.graph.initializer}
    q = [n for n in m.graph.node if n.op_type == "QuantizeLinear"]
    dq = [n for n in m.graph.node if n.op_type == "DequantizeLinear"]
    assert len(q) == len(dq) >= LAYERS * (len(ACTIVATION_POSITIONS) - 2 + 6)  # identical tensors share one pair
    for n in q + dq:
        scale, zp = numpy_helper.to_array(inits[n.input[1]]), numpy_helper.to_array(inits[n.input[2]])
        assert scale.shape == () and scale > 0 and zp.shape == () and zp.dtype == np.int8 and zp == 0
    # fp32 weights pass through QuantizeLinear (the official fake-quant form)
    weight_q = [n for n in q if n.input[0] in inits]
    assert len(weight_q) == 6 * LAYERS and all(inits[n.input[0]].data_type == onnx.TensorProto.FLOAT for n in weight_q)
    assert facts["per_tensor_scales"] and facts["parity_mean_rel_diff_vs_pytorch"] < 0.05


def test_qdq_form_runs_integer_kernels_and_matches_fake_quant(qat_export, feats):
    import onnxruntime as ort

    out, _, fast = qat_export
    assert fast["folded_weights"] == fast["quantized_weights"] == 6 * LAYERS and fast["uint8_activations"] > 0
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(out / "optimized.onnx")
    so.intra_op_num_threads = 1
    ort.InferenceSession(str(out / "model.onnx"), so, providers=["CPUExecutionProvider"])
    ops = Counter(n.op_type for n in onnx.load(str(out / "optimized.onnx")).graph.node)
    assert ops["MatMulIntegerToFloat"] + ops["QLinearMatMul"] == 8 * LAYERS and ops["MatMul"] == 1  # only the QA head
    rows = np.arange(0, 400, 40)
    ids, mask, seg = (a.numpy() for a in _real_batch(feats, rows))
    a = OnnxRuntimeBackend(out / "model_fake_quant.onnx", device="cpu", threads=1,
                           graph_optimization="disable").predict(ids, mask, seg)
    b = OnnxRuntimeBackend(out / "model.onnx", device="cpu", threads=1).predict(ids, mask, seg)
    agree = np.mean([(a[r, :feats.lengths[i], 0].argmax() == b[r, :feats.lengths[i], 0].argmax())
                     for r, i in enumerate(rows)])
    assert agree >= 0.9 and np.abs(a - b).mean() < 0.1 * np.abs(a).mean()


# --- post-training quantization ------------------------------------------------------------------
@pytest.fixture(scope="module")
def ptq(tiny_onnx, feats, small_list, tmp_path_factory):
    out = tmp_path_factory.mktemp("ptq")
    cal = read_calibration_list(small_list, len(feats))
    manifest = quantize_ptq(tiny_onnx, out, feats, cal, PtqConfig())
    return out, manifest


def test_ptq_manifest_and_integer_graph(ptq, small_list):
    import onnxruntime as ort

    out, manifest = ptq
    assert read_manifest(out) == manifest and manifest.extra["method"] == "ptq"
    assert (manifest.format, manifest.model_file, manifest.precision) == ("onnx", "model.onnx", "int8")
    assert manifest.architecture.num_attention_heads == 2  # inherited from the export's manifest
    assert [st["step"] for st in manifest.steps] == ["export-onnx", "quantize-ptq"]
    extra = manifest.extra
    assert extra["calibration"]["samples"] == 8 and not extra["calibration"]["official_mlperf_list"]
    assert extra["settings"]["method"] == "percentile" and extra["settings"]["percentile"] == 99.999
    assert extra["settings"]["smoothquant"]["activations"] == 4 * LAYERS
    assert extra["results"]["quantized_weights"] == 6 * LAYERS and extra["results"]["per_tensor_scales"]
    assert len(manifest.source["sha256"]) == 64 and manifest.versions["onnxruntime"]
    assert (out / "calibration_ranges.json").is_file()
    assert qdq_counts(onnx.load(str(out / "model.onnx")))["per_tensor_scales"]
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(out / "optimized.onnx")
    so.intra_op_num_threads = 1
    ort.InferenceSession(str(out / "model.onnx"), so, providers=["CPUExecutionProvider"])
    ops = Counter(n.op_type for n in onnx.load(str(out / "optimized.onnx")).graph.node)
    assert ops["MatMulIntegerToFloat"] + ops["QLinearMatMul"] == 8 * LAYERS and ops["MatMul"] == 1


def test_transformer_optimizer_fuses_int8_qdq_graph_and_keeps_its_integer_matmuls(ptq, feats, tmp_path):
    """QDQ graphs get SkipLayerNormalization/BiasGelu fusions (not Attention, which would cross QDQ pairs);
    every Quantize/Dequantize stays, and on real features the logits move by int8 rounding only."""
    from mlperf_bert.convert.ort_optimize import ort_optimized

    out, _ = ptq
    fused = ort_optimized(out / "model.onnx", tmp_path)
    assert fused != out / "model.onnx" and fused.is_relative_to(tmp_path / "artifacts")
    assert manifest_for(fused).precision == "int8" and manifest_for(fused).steps[-1]["qdq"]
    before = Counter(n.op_type for n in onnx.load(str(out / "model.onnx")).graph.node)
    after = Counter(n.op_type for n in onnx.load(str(fused)).graph.node)
    assert after["SkipLayerNormalization"] == 2 * LAYERS and after["BiasGelu"] == LAYERS and after["Attention"] == 0
    assert (after["QuantizeLinear"], after["DequantizeLinear"]) == (before["QuantizeLinear"], before["DequantizeLinear"])
    n = int(feats.input_mask[:4].sum(1).max())
    batch = (feats.input_ids[:4, :n], feats.input_mask[:4, :n], feats.segment_ids[:4, :n])
    ref = OnnxRuntimeBackend(out / "model.onnx", device="cpu", threads=1).predict(*batch)
    got = OnnxRuntimeBackend(fused, device="cpu", threads=1).predict(*batch)
    assert np.abs(ref - got).max() < 0.25  # real features: int8 rounding only (0.056 measured)
    assert (ref[..., 0].argmax(1) == got[..., 0].argmax(1)).all()  # same best start on real features
    with pytest.raises(ModelError, match="transformer optimizer changed the logits"):
        ort_optimized(out / "model.onnx", tmp_path / "fresh", qdq_parity_atol=-1.0)  # the guard


def test_ptq_entropy_calibration_is_selectable(tiny_onnx, feats, calibration, tmp_path):
    cal_path = tmp_path / "cal2.txt"
    cal_path.write_text(f"{calibration.indices[0]}\n{calibration.indices[1]}\n")
    cal = read_calibration_list(cal_path, len(feats))
    entropy = quantize_ptq(tiny_onnx, tmp_path / "e", feats, cal, PtqConfig(method="entropy"))
    assert entropy.extra["settings"]["method"] == "entropy"
    assert entropy.extra["results"]["quantized_weights"] == 6 * LAYERS
    percentile = quantize_ptq(tiny_onnx, tmp_path / "p", feats, cal, PtqConfig())
    # different calibrations give different activation scales
    def scales(path):
        m = onnx.load(str(path / "model.onnx"))
        inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
        return {n.input[0]: float(inits[n.input[1]]) for n in m.graph.node if n.op_type == "QuantizeLinear"}

    a, b = scales(tmp_path / "e"), scales(tmp_path / "p")
    assert a.keys() == b.keys() and sum(abs(a[k] - b[k]) > 1e-6 * b[k] for k in a) > len(a) // 2
    assert percentile.extra["calibration"]["samples"] == 2


# --- SmoothQuant before PTQ ------------------------------------------------------------------------
def test_smoothquant_keeps_fp32_outputs_and_flattens_outlier_channels(tiny_onnx, feats, calibration, tmp_path):
    """Rescaling activations by 1/s and weight rows by s is exact up to float rounding, and at alpha 0.5
    it gives every channel the same range in the activation as in the weight (SmoothQuant eq. 4)."""
    import copy

    from mlperf_bert.quant.smooth import SMOOTH_SUFFIX, activation_channel_amax, smooth_model

    model, names = check_bert_onnx(tiny_onnx)
    feeds = [dict(zip(names, a)) for a in calibration_inputs(feats, calibration.indices[:4])]
    head = [n.name for n in model.graph.node if n.op_type == "MatMul"][-1]
    original = copy.deepcopy(model)
    report = smooth_model(model, feeds, alpha=0.5, exclude={head})
    # per layer: Q/K/V input (one shared Mul), context, intermediate input, GELU output
    assert len(report) == LAYERS * 4 and sum(len(t.matmuls) for t in report) == LAYERS * 6
    assert sum(n.op_type == "Mul" and n.name.endswith(SMOOTH_SUFFIX + "/Mul") for n in model.graph.node) == LAYERS * 4
    worst = max(report, key=lambda t: t.act_amax)  # the GELU output of some layer: one MatMul
    assert len(worst.matmuls) == 1 and worst.act_amax_after < worst.act_amax / 2, worst
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    a = activation_channel_amax(original, [worst.activation], feeds)[worst.activation]
    w = next(inits[n.input[1]] for n in model.graph.node if n.name == worst.matmuls[0])
    inv_s = inits[worst.activation + SMOOTH_SUFFIX + "_inv_scale"]
    np.testing.assert_allclose(a * inv_s, np.abs(w).max(axis=1), rtol=1e-4)
    onnx.save(model, str(tmp_path / "smoothed.onnx"))
    smoothed = OnnxRuntimeBackend(tmp_path / "smoothed.onnx", device="cpu", threads=1)
    fp32 = OnnxRuntimeBackend(tiny_onnx, device="cpu", threads=1)
    for i in (0, N_SYNTHETIC // 2, N_SYNTHETIC - 1):
        n = int(feats.lengths[i])
        args = [a[i : i + 1, :n] for a in (feats.input_ids, feats.input_mask, feats.segment_ids)]
        ref, got = fp32.predict(*args), smoothed.predict(*args)
        assert np.abs(got - ref).max() < 2e-3, np.abs(got - ref).max()


def test_ptq_with_smoothquant_is_still_per_tensor_int8(tiny_onnx, feats, calibration, tmp_path):
    cal_path = tmp_path / "cal2.txt"
    cal_path.write_text(f"{calibration.indices[0]}\n{calibration.indices[1]}\n")
    cal = read_calibration_list(cal_path, len(feats))
    manifest = quantize_ptq(tiny_onnx, tmp_path / "s", feats, cal, PtqConfig(smooth_alpha=0.5))
    sq = manifest.extra["settings"]["smoothquant"]
    assert sq["alpha"] == 0.5 and sq["activations"] == 4 * LAYERS
    assert sq["largest_activation_range_after"] < sq["largest_activation_range"] / 2
    assert manifest.extra["results"]["quantized_weights"] == 6 * LAYERS
    assert manifest.extra["results"]["per_tensor_scales"]
    with pytest.raises(Exception, match="smooth-alpha"):
        PtqConfig(smooth_alpha=1.5)
