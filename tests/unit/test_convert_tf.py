"""TF checkpoint (Google / NVIDIA DLE names) <-> Hugging Face BERT QA: name map, round trip, bad input.

The round trip writes a DLE-named TF checkpoint from the tiny random BERT's weights (``tiny_model``: 2 layers,
hidden 32, 2 heads; the inverse map), with optimizer slots, loss-scale state, global_step and a pooler like the
official model.ckpt-5474, converts it back and compares tensors (bitwise) and logits (within 1e-5). BERT-Large
names and shapes are checked against a meta-device (no memory) Hugging Face BERT-Large; the full-size conversion
through every step is ``slow``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mlperf_bert.convert.names import (
    BERT_LARGE,
    POOLER_IGNORE_REASON,
    TF_IGNORE_RULES,
    BertShape,
    check_names,
    hf_shapes,
    ignore_reason,
    infer_shape,
    tf_shapes,
    weight_names,
)
from mlperf_bert.errors import ConfigError, DataError, ModelError

tf = pytest.importorskip("tensorflow", reason="needs the [tensorflow] extra")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from mlperf_bert.cli import main  # noqa: E402
from mlperf_bert.convert.tf_to_torch import convert_tf_checkpoint, read_tf_checkpoint  # noqa: E402
from mlperf_bert.convert.torch_to_tf import (  # noqa: E402
    export_tf_checkpoint,
    read_hf_dir,
    write_tf_checkpoint,
)

#: Converted vs original PyTorch logits (issue: within 1e-5).
ROUND_TRIP_ATOL = 1e-5
#: BERT-Large BertForQuestionAnswering parameters, counted by hand from docs/workload.md#model sizes:
#: embeddings 31,782,912 + 24 layers x 12,596,224 + QA head 2,050 (the pooler adds 1,049,600).
BERT_LARGE_QA_PARAMS = 334_094_338


def real_looking_batch(b: int = 3, seq: int = 128, seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """int64 [b, seq] ``[CLS] question [SEP] context [SEP]`` rows with padding of different lengths."""
    rng = np.random.default_rng(seed)
    ids = np.zeros((b, seq), np.int64)
    mask = np.zeros((b, seq), np.int64)
    seg = np.zeros((b, seq), np.int64)
    for i, n in enumerate(np.linspace(seq, seq // 3, b).astype(int)):
        q = 6 + i
        ids[i, :n] = rng.integers(1996, 30522, size=n)
        ids[i, [0, q + 1, n - 1]] = [101, 102, 102]
        mask[i, :n] = 1
        seg[i, q + 2:n] = 1
    return ids, mask, seg


def torch_logits(hf_dir: Path, batch) -> np.ndarray:
    """[B, L, 2] logits of a HF folder in eval mode (transformers, local files only)."""
    model = transformers.BertForQuestionAnswering.from_pretrained(str(hf_dir), local_files_only=True).eval()
    with torch.inference_mode():
        ids, mask, seg = (torch.from_numpy(a.astype(np.int64)) for a in batch)
        out = model(input_ids=ids, attention_mask=mask, token_type_ids=seg)
    return torch.stack([out.start_logits, out.end_logits], dim=-1).numpy()


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(path))


def assert_nothing_written(out: Path) -> None:
    assert not out.exists()
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")], "leftover temp folder"


# -- name map (no TF files) ------------------------------------------------------------------------------------


def test_bert_large_name_map_matches_hf_model_without_allocating():
    """Every official name maps to a key of a real HF BERT-Large QA model with the right (transposed) shape."""
    with torch.device("meta"):
        model = transformers.BertForQuestionAnswering(transformers.BertConfig(**BERT_LARGE.hf_config()))
    hf_model = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert hf_shapes(BERT_LARGE) == hf_model
    assert sum(int(np.prod(s)) for s in hf_model.values()) == BERT_LARGE_QA_PARAMS

    names = weight_names(24)
    assert len(names) == 391 and len(weight_names(24, pooler=True)) == 393
    tfs = tf_shapes(BERT_LARGE)
    expected = {
        "bert/embeddings/word_embeddings": (30522, 1024),
        "bert/embeddings/position_embeddings": (512, 1024),
        "bert/embeddings/token_type_embeddings": (2, 1024),
        "bert/embeddings/LayerNorm/gamma": (1024,),
        "bert/encoder/layer_0/attention/self/query/kernel": (1024, 1024),
        "bert/encoder/layer_23/attention/self/value/bias": (1024,),
        "bert/encoder/layer_23/attention/output/dense/kernel": (1024, 1024),
        "bert/encoder/layer_23/attention/output/LayerNorm/beta": (1024,),
        "bert/encoder/layer_23/intermediate/dense/kernel": (1024, 4096),
        "bert/encoder/layer_23/intermediate/dense/bias": (4096,),
        "bert/encoder/layer_23/output/dense/kernel": (4096, 1024),
        "bert/encoder/layer_23/output/LayerNorm/gamma": (1024,),
        "cls/squad/output_weights": (2, 1024),
        "cls/squad/output_bias": (2,),
    }
    assert {k: tfs[k] for k in expected} == expected
    by_tf = {n.tf: n for n in names}
    inter = by_tf["bert/encoder/layer_23/intermediate/dense/kernel"]
    assert inter.hf == "bert.encoder.layer.23.intermediate.dense.weight" and inter.transpose
    assert hf_model["bert.encoder.layer.23.intermediate.dense.weight"] == (4096, 1024)  # torch [out, in]
    head = by_tf["cls/squad/output_weights"]
    assert head.hf == "qa_outputs.weight" and not head.transpose  # already [2, hidden]
    assert hf_shapes(BERT_LARGE, pooler=True)["bert.pooler.dense.weight"] == (1024, 1024)


def test_official_checkpoint_names_check_and_infer_bert_large():
    """A BERT-Large DLE shape map with Adam slots, global_step, loss scale and pooler passes the strict check."""
    found = dict(tf_shapes(BERT_LARGE, pooler=True))
    for name, shp in list(found.items()):
        found[f"{name}/adam_m"] = found[f"{name}/adam_v"] = shp
    found.update({"global_step": (), "current_loss_scale": (), "good_steps": ()})
    assert infer_shape(found, heads=16) == BERT_LARGE
    pooler = {"bert/pooler/dense/kernel": POOLER_IGNORE_REASON, "bert/pooler/dense/bias": POOLER_IGNORE_REASON}
    check = check_names(found, tf_shapes(BERT_LARGE), TF_IGNORE_RULES, extra_ignored=pooler)
    assert check.ok, check.problems()
    assert len(check.ignored) == 2 * 393 + 3 + 2
    assert sum(r.startswith("Adam optimizer") for r in check.ignored.values()) == 786
    assert ignore_reason("bert/encoder/layer_0/output/dense/kernel") is None


def test_check_names_reports_every_problem_in_one_line():
    expected = tf_shapes(BertShape(2, 8, 2, 16, vocab=50, max_positions=16))
    found = dict(expected)
    del found["bert/encoder/layer_1/attention/self/key/bias"], found["cls/squad/output_bias"]
    found["bert/encoder/layer_0/attention/self/rotary/kernel"] = (8, 8)
    found["cls/squad/output_weights"] = (8, 2)
    msg = check_names(found, expected, TF_IGNORE_RULES).problems()
    assert "\n" not in msg
    assert "2 missing (bert/encoder/layer_1/attention/self/key/bias, cls/squad/output_bias)" in msg
    assert "1 unexpected (bert/encoder/layer_0/attention/self/rotary/kernel)" in msg
    assert "1 mis-shaped (cls/squad/output_weights [8, 2] != expected [2, 8])" in msg


# -- round trip on the tiny random BERT ------------------------------------------------------------------------

#: ``fakes.TINY_BERT`` as a BertShape, and its parameter count: embeddings (30,522 + 512 + 2) x 32 + LayerNorm 64 =
#: 993,216; per layer Q/K/V 3,168 + attention output 1,056 + LayerNorm 64 + intermediate 2,112 + output 2,080 +
#: LayerNorm 64 = 8,544; QA head 66.
TINY_SHAPE = BertShape(2, 32, 2, 64)
TINY_PARAMS = 993_216 + 2 * 8_544 + 66


@pytest.fixture(scope="module")
def dle_ckpt(tiny_model, tmp_path_factory) -> Path:
    """The tiny model as a DLE-named TF checkpoint with the training state a real DLE checkpoint carries."""
    rng = np.random.default_rng(0)
    extra = {
        "global_step": np.array(5474, np.int64),
        "loss_scale": np.array(65536.0, np.float32),
        "good_steps": np.array(12, np.int64),
        "bert/pooler/dense/kernel": rng.standard_normal((32, 32)).astype(np.float32),
        "bert/pooler/dense/bias": np.zeros(32, np.float32),
        "cls/squad/output_weights/adam_m": np.ones((2, 32), np.float32),
        "cls/squad/output_weights/adam_v": np.ones((2, 32), np.float32),
        "bert/encoder/layer_1/output/LayerNorm/gamma/adam_m": np.ones(32, np.float32),
    }
    return export_tf_checkpoint(tiny_model, tmp_path_factory.mktemp("dle") / "ckpt", extra_variables=extra)


@pytest.fixture(scope="module")
def converted(dle_ckpt, tmp_path_factory):
    """The DLE checkpoint converted back (heads from the bert_config.json written beside it)."""
    out = tmp_path_factory.mktemp("hf") / "tiny-from-tf"
    return convert_tf_checkpoint(dle_ckpt, out)


def test_dle_checkpoint_has_official_names_and_tf_layout(dle_ckpt):
    reader = tf.train.load_checkpoint(str(dle_ckpt))
    shapes = {k: tuple(v) for k, v in reader.get_variable_to_shape_map().items()}
    assert {n.tf for n in weight_names(2)} <= set(shapes)
    assert {k: shapes[k] for k in tf_shapes(TINY_SHAPE)} == tf_shapes(TINY_SHAPE)
    assert shapes["bert/encoder/layer_0/intermediate/dense/kernel"] == (32, 64)  # [in, out]
    assert shapes["cls/squad/output_weights"] == (2, 32)
    assert json.loads((dle_ckpt.parent / "bert_config.json").read_text())["num_attention_heads"] == 2
    assert tf.train.latest_checkpoint(str(dle_ckpt.parent)) == str(dle_ckpt)


def test_round_trip_tensors_are_identical(tiny_model, converted):
    original = read_safetensors(tiny_model / "model.safetensors")
    back = read_safetensors(converted.out_dir / "model.safetensors")
    assert sorted(back) == sorted(original) and len(back) == 39  # 5 embedding + 2 x 16 layer + 2 head tensors
    for key, value in original.items():
        assert back[key].dtype == np.float32 and np.array_equal(back[key], value), key
    assert converted.parameters == TINY_PARAMS == 1_010_370
    assert converted.shape == TINY_SHAPE


def test_round_trip_logits_match_within_1e5(tiny_model, converted):
    batch = real_looking_batch()
    ref = torch_logits(tiny_model, batch)
    got = torch_logits(converted.out_dir, batch)
    assert got.shape == (3, 128, 2)
    assert np.abs(ref).max() > 1.0  # real logits
    assert np.abs(got - ref).max() <= ROUND_TRIP_ATOL


def test_config_json_matches_original_architecture(tiny_model, converted):
    original = json.loads((tiny_model / "config.json").read_text())
    written = json.loads((converted.out_dir / "config.json").read_text())
    for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                "hidden_act", "max_position_embeddings", "type_vocab_size", "layer_norm_eps", "model_type"):
        assert written[key] == original[key], key
    assert written["architectures"] == ["BertForQuestionAnswering"]


def test_skipped_variables_are_reported_by_rule(converted):
    ignored = converted.ignored
    assert set(ignored) == {
        "global_step", "loss_scale", "good_steps", "bert/pooler/dense/kernel", "bert/pooler/dense/bias",
        "cls/squad/output_weights/adam_m", "cls/squad/output_weights/adam_v",
        "bert/encoder/layer_1/output/LayerNorm/gamma/adam_m",
    }
    assert converted.ignored_counts() == {
        "Adam optimizer moment slot (optimization.py)": 3,
        "training step counter": 1,
        "mixed-precision loss-scale state": 2,
        POOLER_IGNORE_REASON: 2,
    }
    manifest = json.loads((converted.out_dir / "conversion.json").read_text())
    assert manifest["ignored"]["global_step"] == "training step counter"
    assert manifest["converted_tensors"] == 39


def test_keep_pooler_converts_it_transposed(dle_ckpt, tmp_path):
    report = convert_tf_checkpoint(dle_ckpt, tmp_path / "out", keep_pooler=True)
    state = read_safetensors(tmp_path / "out" / "model.safetensors")
    kernel = tf.train.load_checkpoint(str(dle_ckpt)).get_tensor("bert/pooler/dense/kernel")
    assert np.array_equal(state["bert.pooler.dense.weight"], kernel.T)
    assert report.converted == 41 and "bert/pooler/dense/kernel" not in report.ignored


def test_cli_convert_tf(dle_ckpt, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["convert-tf", str(dle_ckpt) + ".index", "--out", str(out), "--num-heads", "2"]) == 0
    text = capsys.readouterr().out
    assert "39 tensors, 1,010,370 parameters (2 layers, hidden 32, 2 heads" in text
    assert "skipped 3: Adam optimizer moment slot" in text
    assert (out / "model.safetensors").is_file()

    assert main(["convert-tf", str(dle_ckpt), "--out", str(out)]) == 2  # exists
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "already exists" in err and "--force" in err


def test_round_trip_through_onnx(converted, tiny_model, tmp_path):
    """DLE checkpoint -> PyTorch -> ONNX (the lead's exporter): ORT on the converted model matches PyTorch."""
    to_onnx = pytest.importorskip("mlperf_bert.convert.to_onnx")
    ort = pytest.importorskip("onnxruntime")
    path = tmp_path / "model.onnx"
    to_onnx.export_onnx(converted.out_dir, path)
    batch = real_looking_batch()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    start, end = sess.run(None, dict(zip(("input_ids", "input_mask", "segment_ids"), batch)))
    got = np.stack([start, end], axis=-1)
    assert np.abs(got - torch_logits(tiny_model, batch)).max() < 1e-4


# -- bad input ------------------------------------------------------------------------------------------------

TINY = BertShape(num_layers=2, hidden=8, heads=2, intermediate=16, vocab=50, max_positions=16)


def tiny_tensors(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s).astype(np.float32) for k, s in tf_shapes(TINY).items()}


def write_tiny(tmp_path: Path, tensors: dict[str, np.ndarray], *, config: bool = True) -> Path:
    d = tmp_path / "ckpt"
    d.mkdir()
    prefix = write_tf_checkpoint(tensors, d / "model.ckpt-5474")
    if config:
        (d / "bert_config.json").write_text(json.dumps(TINY.google_config()))
    return prefix


def test_tiny_checkpoint_converts(tmp_path):
    tensors = tiny_tensors()
    prefix = write_tiny(tmp_path, tensors)
    report = convert_tf_checkpoint(prefix, tmp_path / "out")
    state = read_safetensors(tmp_path / "out" / "model.safetensors")
    assert report.shape == TINY and report.converted == len(weight_names(2)) == 39
    np.testing.assert_array_equal(state["bert.encoder.layer.1.output.dense.weight"],
                                  tensors["bert/encoder/layer_1/output/dense/kernel"].T)
    np.testing.assert_array_equal(state["qa_outputs.weight"], tensors["cls/squad/output_weights"])


def test_missing_extra_and_misshaped_variables_fail_in_one_line(tmp_path):
    tensors = tiny_tensors()
    del tensors["bert/encoder/layer_1/attention/self/key/bias"]
    del tensors["cls/squad/output_bias"]
    tensors["bert/encoder/layer_0/attention/self/rotary/kernel"] = np.zeros((8, 8), np.float32)
    tensors["bert/embeddings/word_embeddings"] = np.zeros((51, 8), np.float32)
    prefix = write_tiny(tmp_path, tensors)
    out = tmp_path / "out"
    with pytest.raises(ModelError) as exc:
        convert_tf_checkpoint(prefix, out)
    msg = str(exc.value)
    assert "\n" not in msg and str(prefix) in msg
    assert "2 missing (bert/encoder/layer_1/attention/self/key/bias, cls/squad/output_bias)" in msg
    assert "1 unexpected (bert/encoder/layer_0/attention/self/rotary/kernel)" in msg
    assert "1 mis-shaped (bert/embeddings/word_embeddings [51, 8] != expected [50, 8])" in msg
    assert_nothing_written(out)


def test_config_with_more_layers_reports_the_missing_layer(tmp_path):
    prefix = write_tiny(tmp_path, tiny_tensors())
    cfg = tmp_path / "bert_config_3.json"
    cfg.write_text(json.dumps({**TINY.google_config(), "num_hidden_layers": 3}))
    with pytest.raises(ModelError, match=r"16 missing \(bert/encoder/layer_2/"):
        read_tf_checkpoint(prefix, bert_config=cfg)


def test_non_float_weight_is_rejected(tmp_path):
    tensors = tiny_tensors()
    tensors["cls/squad/output_bias"] = np.zeros(2, np.int32)
    with pytest.raises(ModelError, match=r"1 not float \(cls/squad/output_bias int32\)"):
        read_tf_checkpoint(write_tiny(tmp_path, tensors))


def test_float16_weights_are_widened_and_reported(tmp_path):
    tensors = tiny_tensors()
    tensors["bert/embeddings/word_embeddings"] = tensors["bert/embeddings/word_embeddings"].astype(np.float16)
    ckpt = read_tf_checkpoint(write_tiny(tmp_path, tensors))
    assert ckpt.widened == ("bert/embeddings/word_embeddings",)
    assert ckpt.tensors["bert/embeddings/word_embeddings"].dtype == np.float32


@pytest.mark.parametrize("damage", ["data_half", "data_tail", "index_half", "data_missing"])
def test_truncated_or_missing_files_fail_cleanly(tmp_path, damage):
    prefix = write_tiny(tmp_path, tiny_tensors())
    data = Path(f"{prefix}.data-00000-of-00001")
    index = Path(f"{prefix}.index")
    if damage == "data_half":
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    elif damage == "data_tail":
        data.write_bytes(data.read_bytes()[:-16])
    elif damage == "index_half":
        index.write_bytes(index.read_bytes()[: index.stat().st_size // 2])
    else:
        data.unlink()
    out = tmp_path / "out"
    with pytest.raises(ModelError) as exc:
        convert_tf_checkpoint(prefix, out)
    msg = str(exc.value)
    assert "\n" not in msg and str(prefix) in msg
    expect = {"data_half": "damaged", "data_tail": "damaged", "index_half": "truncated", "data_missing": "not found"}
    assert expect[damage] in msg
    assert_nothing_written(out)


def test_heads_are_required_without_bert_config(tmp_path):
    prefix = write_tiny(tmp_path, tiny_tensors(), config=False)
    with pytest.raises(ConfigError, match="--num-heads"):
        convert_tf_checkpoint(prefix, tmp_path / "out")
    with pytest.raises(ConfigError, match="not divisible by 3 heads"):
        convert_tf_checkpoint(prefix, tmp_path / "out", num_heads=3)
    assert convert_tf_checkpoint(prefix, tmp_path / "out", num_heads=2).shape == TINY


def test_bad_paths_and_configs(tmp_path):
    with pytest.raises(ModelError, match=r"model\.ckpt\.index not found"):
        read_tf_checkpoint(tmp_path / "model.ckpt")
    with pytest.raises(ModelError, match="no \\*.index file"):
        read_tf_checkpoint(tmp_path)
    prefix = write_tiny(tmp_path, tiny_tensors(), config=False)
    bad = tmp_path / "bert_config.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        read_tf_checkpoint(prefix, bert_config=bad)
    with pytest.raises(ConfigError, match="disagrees"):
        (tmp_path / "good.json").write_text(json.dumps(TINY.google_config()))
        read_tf_checkpoint(prefix, num_heads=4, bert_config=tmp_path / "good.json")


def test_not_a_bert_checkpoint(tmp_path):
    prefix = write_tiny(tmp_path, {"dense/kernel": np.zeros((2, 2), np.float32)}, config=False)
    with pytest.raises(ModelError, match="not a BERT checkpoint: bert/embeddings/word_embeddings is missing"):
        read_tf_checkpoint(prefix, num_heads=2)


def test_existing_output_is_kept_unless_forced(tmp_path):
    prefix = write_tiny(tmp_path, tiny_tensors())
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(ConfigError, match="already exists"):
        convert_tf_checkpoint(prefix, out)
    assert (out / "keep.txt").is_file()
    convert_tf_checkpoint(prefix, out, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "conversion.json", "model.safetensors"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_hf_dir_with_bad_tensors_is_rejected(tiny_model, tmp_path):
    from safetensors.numpy import save_file

    d = tmp_path / "bad-hf"
    d.mkdir()
    shutil.copy(tiny_model / "config.json", d / "config.json")
    state = read_safetensors(tiny_model / "model.safetensors")
    del state["qa_outputs.bias"]
    state["bert.encoder.layer.0.attention.self.query.weight"] = np.zeros((32, 31), np.float32)
    save_file(state, str(d / "model.safetensors"))
    with pytest.raises(ModelError) as exc:
        read_hf_dir(d)
    msg = str(exc.value)
    assert "1 missing (qa_outputs.bias)" in msg and "query.weight [32, 31] != expected [32, 32]" in msg
    (d / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{")
    with pytest.raises(ModelError, match="truncated or corrupt"):
        read_hf_dir(d)


# -- BERT-Large through every step (1.3 GB per copy) --------------------------------------------------------


@pytest.mark.slow
def test_bert_large_random_checkpoint_through_every_step(tmp_path):
    """Official-shaped random checkpoint -> HF folder -> PyTorch -> TF SavedModel + frozen graph: names,
    shapes and logits at every step."""
    import gc

    from safetensors import safe_open

    from mlperf_bert.backends.tensorflow import TensorFlowBackend
    from mlperf_bert.convert.export_tf import export_tf

    rng = np.random.default_rng(1)
    variables = {}
    for name, shp in tf_shapes(BERT_LARGE, pooler=True).items():
        if name.endswith("/gamma"):
            variables[name] = (1.0 + 0.02 * rng.standard_normal(shp)).astype(np.float32)
        else:
            variables[name] = (0.02 * rng.standard_normal(shp, dtype=np.float32))
    variables["global_step"] = np.array(5474, np.int64)
    variables["bert/encoder/layer_23/output/dense/kernel/adam_m"] = np.zeros((4096, 1024), np.float32)
    ckpt_dir = tmp_path / "ckpt"
    ckpt_dir.mkdir()
    prefix = write_tf_checkpoint(variables, ckpt_dir / "model.ckpt-5474")
    del variables
    gc.collect()

    report = convert_tf_checkpoint(prefix, tmp_path / "hf", num_heads=16)
    assert report.shape == BERT_LARGE
    assert report.converted == 391 and report.parameters == BERT_LARGE_QA_PARAMS
    assert report.ignored_counts() == {POOLER_IGNORE_REASON: 2, "training step counter": 1,
                                       "Adam optimizer moment slot (optimization.py)": 1}
    with safe_open(str(tmp_path / "hf" / "model.safetensors"), "np") as f:
        header = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    assert header == hf_shapes(BERT_LARGE)
    cfg = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert (cfg["num_hidden_layers"], cfg["hidden_size"], cfg["num_attention_heads"], cfg["intermediate_size"],
            cfg["vocab_size"]) == (24, 1024, 16, 4096, 30522)

    batch = real_looking_batch(2, 64)
    ref = torch_logits(tmp_path / "hf", batch)  # strict load of every weight by transformers
    gc.collect()
    manifest = export_tf(tmp_path / "hf", tmp_path / "tf", static_shape=(1, 384), parity_atol=None)
    gc.collect()
    assert manifest["config"]["num_attention_heads"] == 16
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString((tmp_path / "tf" / "model.pb").read_bytes())
    nodes = {n.name: n for n in graph_def.node}
    for name in ("input_ids", "input_mask", "segment_ids"):
        assert nodes[name].op == "Placeholder" and nodes[name].attr["dtype"].type == tf.int32.as_datatype_enum
        assert [d.size for d in nodes[name].attr["shape"].shape.dim] == [1, 384]
    del graph_def, nodes
    for model in (tmp_path / "tf" / "model.pb", tmp_path / "tf"):
        backend = TensorFlowBackend(model, graph_optimizations=False)
        got = backend.predict(*batch)
        backend.close()
        assert got.shape == (2, 64, 2)
        assert np.abs(got - ref).max() < 1e-4, model
