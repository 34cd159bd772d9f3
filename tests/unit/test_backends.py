"""ONNX Runtime and PyTorch backends on the tiny random BERT (``tiny_model``, ``tiny_onnx``: 2 layers, hidden 32,
2 heads): export names, parity, input conventions, ORT's transformer fusions, and bad input."""

from __future__ import annotations


import numpy as np
import onnx
import pytest

from mlperf_bert.backends.base import BackendConfig
from mlperf_bert.backends.onnxruntime import OnnxRuntimeBackend
from mlperf_bert.backends.pytorch import PyTorchBackend, build_model
from mlperf_bert.backends.registry import BackendRegistry
from mlperf_bert.convert.ort_optimize import model_architecture, ort_optimized
from mlperf_bert.models.artifact import ModelArchitecture, manifest_for
from mlperf_bert.errors import BackendFailure, BackendUnavailable, ConfigError, ModelError

#: ORT vs PyTorch fp32 logits on the same input (issue 2: within 1e-4).
PARITY_ATOL = 1e-4


def _batch(b=4, seq=160, seed=3):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1000, 30000, size=(b, seq)).astype(np.int32)
    ids[:, 0] = 101
    lengths = rng.integers(seq // 3, seq + 1, size=b)
    lengths[0] = seq
    mask = (np.arange(seq)[None, :] < lengths[:, None]).astype(np.int32)
    ids *= mask
    seg = ((np.arange(seq)[None, :] >= 20) & (mask == 1)).astype(np.int32)
    return ids, mask, seg


@pytest.fixture(scope="module")
def torch_backend(tiny_model):
    return PyTorchBackend(tiny_model, device="cpu")


def test_export_has_official_names_and_dynamic_axes(tiny_onnx):
    m = onnx.load(str(tiny_onnx), load_external_data=False)
    assert [i.name for i in m.graph.input] == ["input_ids", "input_mask", "segment_ids"]
    assert [o.name for o in m.graph.output] == ["output_start_logits", "output_end_logits"]
    for i in m.graph.input:
        assert i.type.tensor_type.elem_type == onnx.TensorProto.INT64
        dims = [d.dim_param for d in i.type.tensor_type.shape.dim]
        assert dims == ["batch", "seq"]
    manifest = manifest_for(tiny_onnx)  # the one artifact manifest, beside the file
    assert manifest.format == "onnx" and manifest.model_file == tiny_onnx.name and manifest.precision == "fp32"
    assert manifest.architecture == ModelArchitecture(2, 32, 2)  # from config.json: 2 heads, not hidden/64
    assert manifest.input_names == ("input_ids", "input_mask", "segment_ids")
    (export,) = manifest.steps
    assert export["step"] == "export-onnx" and export["opset"] == 17
    assert export["parity_max_abs_diff_vs_pytorch"] < PARITY_ATOL


def test_ort_matches_pytorch(tiny_onnx, torch_backend):
    ort_backend = OnnxRuntimeBackend(tiny_onnx, device="cpu")
    assert ort_backend.input_names == ("input_ids", "input_mask", "segment_ids")
    for b, seq in ((1, 384), (4, 160), (7, 53)):
        ids, mask, seg = _batch(b, seq)
        a = ort_backend.predict(ids, mask, seg)
        t = torch_backend.predict(ids, mask, seg)
        assert a.shape == t.shape == (b, seq, 2) and a.dtype == t.dtype == np.float32
        assert np.abs(a - t).max() < PARITY_ATOL
        assert np.abs(t).max() > 1.0  # real logits, not zeros


def test_padding_does_not_change_real_token_logits(torch_backend):
    """A sample's logits do not depend on how far its batch is padded (padding-free batching relies on it)."""
    ids, mask, seg = _batch(3, 200)
    full = torch_backend.predict(ids, mask, seg)
    n = int(mask[1].sum())
    alone = torch_backend.predict(ids[1:2, :n], mask[1:2, :n], seg[1:2, :n])
    assert np.abs(full[1, :n] - alone[0]).max() < 1e-4


def test_int8_input_convention_and_output_order(tmp_path, tiny_onnx):
    """A model named like the official int8 file (attention_mask/token_type_ids, outputs start first)."""
    m = onnx.load(str(tiny_onnx))
    rename = {"input_mask": "attention_mask", "segment_ids": "token_type_ids",
              "output_start_logits": "7", "output_end_logits": "8"}  # int8 file: opaque output names
    for node in m.graph.node:
        node.input[:] = [rename.get(x, x) for x in node.input]
        node.output[:] = [rename.get(x, x) for x in node.output]
    for v in list(m.graph.input) + list(m.graph.output):
        v.name = rename.get(v.name, v.name)
    path = tmp_path / "int8-names.onnx"
    onnx.save(m, str(path))
    renamed = OnnxRuntimeBackend(path, device="cpu")
    assert renamed.input_names == ("input_ids", "attention_mask", "token_type_ids")
    ids, mask, seg = _batch(2, 64)
    np.testing.assert_allclose(renamed.predict(ids, mask, seg),
                               OnnxRuntimeBackend(tiny_onnx, device="cpu").predict(ids, mask, seg), atol=1e-6)


def test_unknown_input_names_are_one_line_error(tmp_path, tiny_onnx):
    m = onnx.load(str(tiny_onnx))
    m.graph.input[1].name = "mask"
    for node in m.graph.node:
        node.input[:] = ["mask" if x == "input_mask" else x for x in node.input]
    path = tmp_path / "odd.onnx"
    onnx.save(m, str(path))
    with pytest.raises(ModelError, match=r"odd.onnx has inputs \['input_ids', 'mask', 'segment_ids'\]; expected"):
        OnnxRuntimeBackend(path)
    # the default preparation runs the transformer optimizer first: the input names are still what is reported
    with pytest.raises(ModelError, match=r"odd.onnx has inputs \['input_ids', 'mask', 'segment_ids'\]; expected"):
        ort_optimized(path, tmp_path / "cache")
    assert not (tmp_path / "cache" / "artifacts").exists()  # refused before anything was written


@pytest.mark.parametrize("batch,length", [(None, 384), (1, 384)])
def test_fixed_shape_onnx_runs_padding_free_batches(tmp_path, tiny_onnx, batch, length):
    """An ONNX file with fixed input dims ([B, 384] like the official fp32 file, or [1, 384]) runs trimmed
    batches: padded to 384 and split into single rows, logits equal to the dynamic file's on the real
    tokens (before: 'Got: 100 Expected: 384')."""
    m = onnx.load(str(tiny_onnx))
    for i in m.graph.input:
        dims = i.type.tensor_type.shape.dim
        if batch is not None:
            dims[0].dim_value = batch
        dims[1].dim_value = length
    fixed_path = tmp_path / "fixed.onnx"
    onnx.save(m, str(fixed_path))
    fixed = OnnxRuntimeBackend(fixed_path, device="cpu", threads=1)
    assert (fixed.static_batch, fixed.static_length) == (batch, length)
    dynamic = OnnxRuntimeBackend(tiny_onnx, device="cpu", threads=1)
    ids, mask, seg = _batch(3, 100)
    got, want = fixed.predict(ids, mask, seg), dynamic.predict(ids, mask, seg)
    assert got.shape == (3, 100, 2)
    real = mask.astype(bool)
    assert np.abs(got[real] - want[real]).max() < PARITY_ATOL
    with pytest.raises(BackendFailure, match="batch length 385 exceeds the model's fixed length 384"):
        fixed.predict(*_batch(1, 385))


def test_truncated_and_missing_onnx(tmp_path, tiny_onnx):
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(tiny_onnx.read_bytes()[:100_000])
    with pytest.raises(ModelError, match="cannot load .*cut.onnx"):
        OnnxRuntimeBackend(cut)
    with pytest.raises(ModelError, match="ONNX model not found"):
        OnnxRuntimeBackend(tmp_path / "nope.onnx")


def test_strict_loading_lists_missing_and_unexpected(tmp_path, tiny_model):
    from safetensors.torch import load_file, save_file

    sd = load_file(str(tiny_model / "model.safetensors"))
    sd.pop("qa_outputs.bias")
    sd.pop("bert.encoder.layer.1.output.dense.weight")
    sd["bert.encoder.layer.9.extra.weight"] = sd["qa_outputs.weight"].clone()
    sd["bert.pooler.dense.bias"] = sd["qa_outputs.weight"][0].clone()  # tolerated: QA never uses the pooler
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text((tiny_model / "config.json").read_text())
    save_file(sd, str(bad / "model.safetensors"))
    with pytest.raises(ModelError) as e:
        build_model(bad)
    msg = str(e.value)
    assert "\n" not in msg
    assert "missing 2: bert.encoder.layer.1.output.dense.weight, qa_outputs.bias" in msg
    assert "unexpected 1: bert.encoder.layer.9.extra.weight" in msg


def test_official_state_dict_with_bert_config(tmp_path, tiny_model):
    """The official model.pytorch form: a torch.save'd state_dict + bert_config.json, loaded weights_only."""
    import torch
    from safetensors.torch import load_file

    sd = load_file(str(tiny_model / "model.safetensors"))
    torch.save(sd, tmp_path / "model.pytorch")
    (tmp_path / "bert_config.json").write_text((tiny_model / "config.json").read_text())
    a = PyTorchBackend(tmp_path / "model.pytorch", device="cpu")
    b = PyTorchBackend(tiny_model, device="cpu")
    ids, mask, seg = _batch(2, 48)
    np.testing.assert_array_equal(a.predict(ids, mask, seg), b.predict(ids, mask, seg))
    assert not a.model.training  # eval mode: dropout off (reference bug gave F1 89.91)


def test_registry_errors():
    reg = BackendRegistry.from_entry_points()
    with pytest.raises(ConfigError, match="unknown backend .onnx.; choose one of: null, onnxruntime, openvino, pytorch, tensorflow$"):
        reg.load(BackendConfig(name="onnx"))
    from mlperf_bert.backends.base import BackendSpec

    reg.register(BackendSpec(name="ghost2", target="mlperf_bert.backends.null:NullBackend"))
    assert reg.load(BackendConfig(name="ghost2")).name == "null"
    with pytest.raises(ConfigError, match="backend 'ghost2' has no option precision"):
        reg.load(BackendConfig(name="ghost2", options={"precision": "bf16"}))


def test_missing_runtime_names_the_extra(tmp_path, monkeypatch):
    from mlperf_bert.backends.base import BackendSpec

    (tmp_path / "fake_backend_mod.py").write_text("import absent_runtime_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = BackendRegistry()
    reg.register(BackendSpec(name="fancy", target="fake_backend_mod:Fancy", extra="fancy"))
    with pytest.raises(BackendUnavailable, match=r"needs the Python module 'absent_runtime_xyz'.*mlperf-bert\[fancy\]"):
        reg.load(BackendConfig(name="fancy"))


def test_transformer_optimizer_fuses_and_keeps_logits(tmp_path, tiny_onnx):
    """ORT's transformer optimizer as a prepared artifact: fused ops, same logits (1e-4), cached once, the
    head count from the export's manifest, idempotent; a changed graph is refused."""
    from collections import Counter

    said: list[str] = []
    fused = ort_optimized(tiny_onnx, tmp_path, say=said.append)
    assert fused.is_relative_to(tmp_path / "artifacts") and len(said) == 1 and "2 heads" in said[0]
    assert ort_optimized(tiny_onnx, tmp_path, say=said.append) == fused and len(said) == 1  # cached: silent
    assert ort_optimized(fused, tmp_path) == fused  # already optimized: used as it is
    manifest = manifest_for(fused)
    assert [st["step"] for st in manifest.steps] == ["export-onnx", "ort-transformer-optimizer"]
    assert manifest.steps[-1]["fused"]["Attention"] == 2 and manifest.source["path"] == str(tiny_onnx.resolve())
    ops = Counter(n.op_type for n in onnx.load(str(fused)).graph.node)  # per layer: 1 Attention, 2 SkipLayerNorm
    assert ops["Attention"] == 2 and ops["SkipLayerNormalization"] == 4 and ops["EmbedLayerNormalization"] == 1
    ids, mask, seg = _batch(4, 130)
    ref = OnnxRuntimeBackend(tiny_onnx, device="cpu")
    opt = OnnxRuntimeBackend(fused, device="cpu")
    assert np.abs(ref.predict(ids, mask, seg) - opt.predict(ids, mask, seg)).max() < PARITY_ATOL
    with pytest.raises(ModelError, match="transformer optimizer changed the logits.*--no-ort-optimize"):
        ort_optimized(tiny_onnx, tmp_path / "fresh", parity_atol=-1.0)  # the guard itself


def test_head_count_comes_from_the_graph_without_a_manifest(tmp_path, tiny_onnx):
    """A bare .onnx (no manifest, no config.json) gets its 2 heads from the attention Reshape, never a
    hidden/64 guess (0 here); a graph that tells nothing is run unfused with one line saying so."""
    import shutil

    bare = tmp_path / "bare" / "bert.onnx"
    bare.parent.mkdir()
    shutil.copy(tiny_onnx, bare)
    arch, where = model_architecture(bare, onnx.load(str(bare)))
    assert (arch.num_attention_heads, arch.hidden_size, where) == (2, 32, "the graph")
    said: list[str] = []
    fused = ort_optimized(bare, tmp_path / "cache", say=said.append)
    assert "2 heads, hidden 32 from the graph" in said[0] and manifest_for(fused).architecture.num_attention_heads == 2
    m = onnx.load(str(bare))
    for init in m.graph.initializer:
        if len(init.dims) == 2 and init.dims[0] >= 30000:
            init.dims[0] = 100  # no word-embedding table to read the hidden size from
    odd = tmp_path / "odd" / "bert.onnx"
    odd.parent.mkdir()
    onnx.save(m, str(odd))
    said.clear()
    assert ort_optimized(odd, tmp_path / "cache", say=said.append) == odd
    assert len(said) == 1 and "ORT transformer fusions skipped" in said[0]


def test_prepare_is_reused_while_the_source_is_unchanged(tmp_path, monkeypatch):
    """One run asks for the same artifact several times (profile key, run; bench, tune, submit more): the
    prepare step (which hashes the model) runs once per config and source state, again when a file changes."""
    import dataclasses
    import os

    from mlperf_bert.backends.base import BackendConfig
    from mlperf_bert.backends.registry import BackendRegistry

    reg = BackendRegistry.from_entry_points()
    calls = []

    def fake_prepare(model, config, say):
        calls.append(model)
        out = tmp_path / f"artifact-{len(calls)}.onnx"
        out.write_bytes(b"x")
        return out

    monkeypatch.setattr(reg, "_import", lambda spec, target: fake_prepare)
    src = tmp_path / "model"
    src.mkdir()
    (src / "config.json").write_text("{}")
    cfg = BackendConfig("onnxruntime", src, "cpu", 1, cache_dir=tmp_path)
    first = reg.prepare(cfg)
    assert reg.prepare(dataclasses.replace(cfg, threads=2)).model == first.model and len(calls) == 1
    st = (src / "config.json").stat()
    os.utime(src / "config.json", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # the source changed
    assert reg.prepare(cfg).model != first.model and len(calls) == 2
    first.model.unlink()  # a reused artifact must still exist
    reg.prepare(cfg)
    assert len(calls) == 2  # the second artifact is still there
    reg.prepare(dataclasses.replace(cfg, options={"transformer_optimize": False}))
    assert len(calls) == 3  # another prepare-stage option: another artifact
