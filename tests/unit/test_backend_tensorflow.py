"""TensorFlow backend and ``export-tf`` on the tiny random BERT (``tiny_model``): parity with PyTorch and ONNX
Runtime, the official fixed-shape convention, and bad models. The full-dev F1 of the small real model's frozen
graph (``-m slow``) is in tests/integration/test_backend_tensorflow_real.py.

Chain under test: tiny model -> DLE TF checkpoint -> PyTorch folder -> ``mlperf-bert export-tf`` ->
SavedModel and frozen graph -> TensorFlowBackend, compared with PyTorch on the original weights (and ORT).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow", reason="needs the [tensorflow] extra")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from mlperf_bert.backends.base import Backend  # noqa: E402
from mlperf_bert.backends.base import BackendConfig
from mlperf_bert.backends.registry import BackendRegistry  # noqa: E402
from mlperf_bert.backends.tensorflow import TensorFlowBackend  # noqa: E402
from mlperf_bert.cli import main  # noqa: E402
from mlperf_bert.convert.export_tf import export_tf  # noqa: E402
from mlperf_bert.convert.tf_to_torch import convert_tf_checkpoint  # noqa: E402
from mlperf_bert.convert.torch_to_tf import export_tf_checkpoint  # noqa: E402
from mlperf_bert.errors import BackendFailure, ConfigError, ModelError  # noqa: E402

#: TF vs PyTorch fp32 logits (issue: within 1e-4).
PARITY_ATOL = 1e-4


def batch(b: int = 4, seq: int = 160, seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """int32 [b, seq] real-looking rows: [CLS] question [SEP] context [SEP], then padding of varied length."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1996, 30522, size=(b, seq)).astype(np.int32)
    lengths = rng.integers(seq // 3, seq + 1, size=b)
    lengths[0] = seq
    mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int32)
    ids[:, 0], ids[:, 14] = 101, 102
    ids[np.arange(b), lengths - 1] = 102
    ids *= mask
    seg = ((np.arange(seq)[None, :] >= 15) & (mask == 1)).astype(np.int32)
    return ids, mask, seg


@pytest.fixture(scope="module")
def torch_model(tiny_model):
    return transformers.BertForQuestionAnswering.from_pretrained(str(tiny_model), local_files_only=True).eval()


def torch_logits(model, ids, mask, seg) -> np.ndarray:
    with torch.inference_mode():
        ids, mask, seg = (torch.from_numpy(a.astype(np.int64)) for a in (ids, mask, seg))
        out = model(input_ids=ids, attention_mask=mask, token_type_ids=seg)
    return torch.stack([out.start_logits, out.end_logits], dim=-1).numpy()


@pytest.fixture(scope="module")
def exported(tiny_model, tmp_path_factory) -> Path:
    """tiny model -> DLE checkpoint -> HF folder -> ``mlperf-bert export-tf`` (with its parity check)."""
    root = tmp_path_factory.mktemp("tf-chain")
    prefix = export_tf_checkpoint(tiny_model, root / "ckpt")
    convert_tf_checkpoint(prefix, root / "hf")
    out = root / "tf"
    assert main(["export-tf", str(root / "hf"), "--out", str(out)]) == 0
    return out


def test_export_writes_official_names(exported):
    assert sorted(p.name for p in exported.iterdir()) == ["export.json", "model.pb", "saved_model"]
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString((exported / "model.pb").read_bytes())
    nodes = {n.name: n for n in graph_def.node}
    placeholders = sorted(n.name for n in graph_def.node if n.op == "Placeholder")
    assert placeholders == ["input_ids", "input_mask", "segment_ids"]
    for name in placeholders:
        assert nodes[name].attr["dtype"].type == tf.int32.as_datatype_enum
        assert [d.size for d in nodes[name].attr["shape"].shape.dim] == [-1, -1]
    assert "logits" in nodes
    assert not [n for n in graph_def.node if n.op in ("VarHandleOp", "ReadVariableOp")]  # frozen
    manifest = json.loads((exported / "export.json").read_text())
    parity = manifest["parity"]
    assert parity["frozen_vs_function"] < PARITY_ATOL and parity["function_vs_pytorch"] < PARITY_ATOL


@pytest.mark.parametrize("kind", ["frozen_graph", "saved_model"])
def test_tf_matches_pytorch(exported, torch_model, kind):
    path = exported / "model.pb" if kind == "frozen_graph" else exported
    backend = TensorFlowBackend(path, threads=2, graph_optimizations=kind == "frozen_graph")
    assert backend.kind == kind and backend.input_dtype == np.int32
    assert (backend.static_batch, backend.static_length) == (None, None)
    for b, seq in ((4, 160), (1, 384), (3, 37)):
        ids, mask, seg = batch(b, seq)
        got = backend.predict(ids.astype(np.int64), mask.astype(np.int64), seg)  # int64 in: cast by the backend
        ref = torch_logits(torch_model, ids, mask, seg)
        assert got.shape == (b, seq, 2) and got.dtype == np.float32 and got.flags.c_contiguous
        assert np.abs(ref).max() > 1.0
        assert np.abs(got - ref).max() < PARITY_ATOL
    backend.close()
    backend.close()  # idempotent
    with pytest.raises(BackendFailure, match="closed"):
        backend.predict(ids, mask, seg)


def test_tf_matches_onnxruntime(exported, tiny_onnx):
    """The last link of the chain: ONNX (lead's export) and TF graphs of the same weights agree."""
    from mlperf_bert.backends.onnxruntime import OnnxRuntimeBackend

    ids, mask, seg = batch(3, 128, seed=5)
    tf_logits = TensorFlowBackend(exported / "model.pb", graph_optimizations=False).predict(ids, mask, seg)
    ort_logits = OnnxRuntimeBackend(tiny_onnx, device="cpu").predict(ids, mask, seg)
    assert np.abs(tf_logits - ort_logits).max() < PARITY_ATOL


def test_registry_loads_tensorflow_backend(exported):
    cfg = BackendConfig(name="tensorflow", model=exported / "model.pb", device="cpu", threads=1,
                        options={"graph_optimizations": False})
    backend = BackendRegistry.from_entry_points().load(cfg)
    assert isinstance(backend, TensorFlowBackend) and isinstance(backend, Backend)
    assert backend.name == "tensorflow"
    ids, mask, seg = batch(2, 24)
    assert backend.predict(ids, mask, seg).shape == (2, 24, 2)
    with pytest.raises(ConfigError, match="backend 'tensorflow' has no option fp16 .its options: --tf-graph-opt"):
        BackendRegistry.from_entry_points().load(BackendConfig(name="tensorflow", model=exported, options={"fp16": True}))
    with pytest.raises(ConfigError, match="backend 'tensorflow' needs --model"):
        BackendRegistry.from_entry_points().load(BackendConfig(name="tensorflow"))


def test_fixed_shape_graph_like_the_official_one(tiny_model, exported, tmp_path):
    """A [1, 384] frozen graph (the official model.pb's shape), exported from a ``model.pytorch`` state_dict
    with ``bert_config.json`` (the official PyTorch format), serves any batch size and shorter lengths."""
    from safetensors.torch import load_file

    src = tmp_path / "official-style"
    src.mkdir()
    torch.save(load_file(str(tiny_model / "model.safetensors")), src / "model.pytorch")
    config = json.loads((tiny_model / "config.json").read_text())
    (src / "bert_config.json").write_text(json.dumps({k: config[k] for k in (
        "attention_probs_dropout_prob", "hidden_act", "hidden_dropout_prob", "hidden_size", "initializer_range",
        "intermediate_size", "max_position_embeddings", "num_attention_heads", "num_hidden_layers",
        "type_vocab_size", "vocab_size")}))
    out = tmp_path / "fixed"
    manifest = export_tf(src / "model.pytorch", out, static_shape=(1, 384))
    assert manifest["frozen_graph_shape"] == [1, 384]
    assert manifest["parity"]["probe_batch"] == [1, 384] and manifest["parity"]["function_vs_pytorch"] < PARITY_ATOL
    fixed = TensorFlowBackend(out / "model.pb", graph_optimizations=False)
    assert (fixed.static_batch, fixed.static_length) == (1, 384)
    dynamic = TensorFlowBackend(exported / "model.pb", graph_optimizations=False)
    ids, mask, seg = batch(3, 100, seed=9)
    got = fixed.predict(ids, mask, seg)
    assert got.shape == (3, 100, 2)
    assert np.abs(got - dynamic.predict(ids, mask, seg)).max() < PARITY_ATOL
    with pytest.raises(BackendFailure, match="batch length 385 exceeds the model's fixed length 384"):
        fixed.predict(*batch(1, 385))
    with pytest.raises(BackendFailure, match="one shape"):
        fixed.predict(ids, mask[:, :50], seg)


# -- bad models -----------------------------------------------------------------------------------------------


def _one_line_model_error(path: Path, match: str) -> str:
    with pytest.raises(ModelError, match=match) as exc:
        TensorFlowBackend(path, graph_optimizations=False)
    assert "\n" not in str(exc.value)
    return str(exc.value)


def test_missing_and_truncated_models(exported, tmp_path):
    _one_line_model_error(tmp_path / "nope.pb", "not found")
    data = (exported / "model.pb").read_bytes()
    (tmp_path / "half.pb").write_bytes(data[: len(data) // 2])
    msg = _one_line_model_error(tmp_path / "half.pb", "cannot be parsed")
    assert "half.pb" in msg and "truncated" in msg
    (tmp_path / "empty.pb").write_bytes(b"")
    _one_line_model_error(tmp_path / "empty.pb", "no nodes")
    (tmp_path / "folder").mkdir()
    _one_line_model_error(tmp_path / "folder", "without saved_model.pb")

    broken = tmp_path / "broken_sm"
    shutil.copytree(exported / "saved_model", broken)
    var = next((broken / "variables").glob("variables.data-*"))
    var.write_bytes(var.read_bytes()[:1000])
    _one_line_model_error(broken, "cannot be loaded")


def _tiny_graph(path: Path, names: tuple[str, str, str], output: str) -> Path:
    """A frozen graph with three int32 inputs of the given names and one float output node."""

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32, name=n) for n in names])
    def f(a, b, c):
        x = tf.cast(tf.stack([a, b, c], axis=-1)[..., :2], tf.float32)
        return tf.identity(x, name=output)

    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    graph_def = convert_variables_to_constants_v2(f.get_concrete_function()).graph.as_graph_def()
    path.write_bytes(graph_def.SerializeToString())
    return path


def test_graph_with_unknown_inputs_or_no_logits(tmp_path):
    msg = _one_line_model_error(_tiny_graph(tmp_path / "names.pb", ("ids", "mask", "segment_ids"), "logits"),
                                "expected exactly input_ids")
    assert "['ids', 'mask', 'segment_ids']" in msg
    assert "missing input_ids, input_mask" in msg and "unknown ids, mask" in msg
    _one_line_model_error(_tiny_graph(tmp_path / "noout.pb", ("input_ids", "input_mask", "segment_ids"), "scores"),
                          "no 'logits' node")
    # HF-style names are accepted as aliases
    ok = TensorFlowBackend(_tiny_graph(tmp_path / "hf.pb", ("input_ids", "attention_mask", "token_type_ids"), "logits"),
                           graph_optimizations=False)
    ids, mask, seg = batch(2, 20)
    np.testing.assert_array_equal(ok.predict(ids, mask, seg), np.stack([ids, mask], -1).astype(np.float32))


def test_cli_export_tf_errors(tmp_path, capsys):
    assert main(["export-tf", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mlperf-bert export-tf: error:") and "\n" not in err
    assert not (tmp_path / "o").exists()
    with pytest.raises(SystemExit):
        main(["export-tf", str(tmp_path), "--out", str(tmp_path / "o"), "--static-shape", "1x"])


def test_failed_parity_writes_nothing(tiny_model, tmp_path, monkeypatch):
    """An export whose graphs disagree with PyTorch is rejected and leaves no folder (nor a temp one)."""
    import mlperf_bert.convert.export_tf as export_mod

    monkeypatch.setattr(export_mod, "_torch_logits", lambda shape, tensors, batch: np.full((2, 48, 2), 9.0, np.float32))
    out = tmp_path / "bad"
    with pytest.raises(ModelError, match="parity failed.*nothing was written"):
        export_tf(tiny_model, out)
    assert list(tmp_path.iterdir()) == []
    out.mkdir()
    (out / "x").write_text("keep")
    with pytest.raises(ConfigError, match="already exists"):
        export_tf(tiny_model, out)
