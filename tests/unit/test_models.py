"""The official registry (values from docs/models.md), local discovery of ONNX files and their manifests, and
``mlperf-bert models`` errors. Listing the real ../shared and verified downloads:
tests/integration/test_models_real.py."""

from __future__ import annotations

import json
import re

import pytest

from mlperf_bert.cli import main
from mlperf_bert.errors import ConfigError
from mlperf_bert.models import registry
from mlperf_bert.models.local import FILE_CACHE_NAME, list_local


# ---- registry -------------------------------------------------------------------------------------

def test_registry_names_and_unknown():
    assert registry.names() == ("bert-large-tf", "bert-large-tf-pb", "bert-large-pytorch",
                                "bert-large-onnx", "bert-large-onnx-int8", "squad-dev")
    with pytest.raises(ConfigError, match=r"unknown artifact 'bert-base'; choose one of: bert-large-tf, "):
        registry.get("bert-base")


def test_registry_values_match_reference():
    for entry in registry.OFFICIAL:
        for art in entry.files:
            assert re.fullmatch(r"[0-9a-f]{32}", art.md5), art
            assert art.url.endswith("/" + art.filename), art
    tf = registry.get("bert-large-tf")
    assert [(a.filename, a.md5) for a in tf.files] == [
        ("model.ckpt-5474.data-00000-of-00001", "3089b27c559906a868878741d992ade7"),
        ("model.ckpt-5474.index", "d23d61572d9404da4dac3363b5bc735b"),
        ("model.ckpt-5474.meta", "83e11e57eea14c9e9a246af74af40d66"),
        ("vocab.txt", "64800d5d8528ce344256daf115d4965e"),
    ]
    assert all(a.url.startswith("https://zenodo.org/record/3733868/files/") for a in tf.files)
    fp32, int8 = registry.get("bert-large-onnx"), registry.get("bert-large-onnx-int8")
    assert fp32.files[0].md5 == "819b25b19cd8e59080c10892689750ca"
    assert fp32.input_names == ("input_ids", "input_mask", "segment_ids")
    assert fp32.output_names == ("output_start_logits", "output_end_logits")
    assert int8.input_names == ("input_ids", "attention_mask", "token_type_ids")  # differs from fp32
    assert (fp32.precision, fp32.f1, int8.precision, int8.f1) == ("fp32", 90.874, "int8", 90.067)
    pb = registry.get("bert-large-tf-pb")
    assert (pb.input_dtype, pb.output_names, pb.files[0].md5) == (
        "int32", ("logits",), "dd72de12e8226f25f0128a1a864b97ad")
    assert registry.get("bert-large-pytorch").files[0].md5 == "00fbcbfaebfa20d87ac9885120a6e9b4"
    dev = registry.get("squad-dev").files[0]
    assert (dev.filename, dev.md5) == ("dev-v1.1.json", "3e85deb501d4e538b6bc56f786231552")


# ---- local discovery ------------------------------------------------------------------------------

def _tiny_onnx(path):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    ins = [helper.make_tensor_value_info(n, TensorProto.INT64, ["B", 384])
           for n in ("input_ids", "attention_mask", "token_type_ids")]
    w = helper.make_tensor("w", TensorProto.INT64, [1], [1])
    graph = helper.make_graph(
        [helper.make_node("Add", ["input_ids", "w"], ["start"]),
         helper.make_node("Add", ["attention_mask", "token_type_ids"], ["end"])],
        "tiny", ins + [helper.make_tensor_value_info("w", TensorProto.INT64, [1])],  # initializer as input
        [helper.make_tensor_value_info(n, TensorProto.INT64, ["B", 384]) for n in ("start", "end")],
        initializer=[w])
    onnx.save(helper.make_model(graph), str(path))


def test_onnx_files_and_manifest(tmp_path):
    folder = tmp_path / "int8-mine"
    folder.mkdir()
    _tiny_onnx(folder / "model.onnx")
    (folder / "broken.onnx").write_bytes(b"\x08\x07garbage")
    manifest = {"manifest_version": 2, "format": "onnx", "model_file": "model.onnx", "precision": "int8",
                "architecture": None, "input_names": [], "source": None, "steps": [], "created_utc": "",
                "versions": {}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    found = {m.name: m for m in list_local([tmp_path])}
    good, bad = found["int8-mine/model.onnx"], found["int8-mine/broken.onnx"]
    assert good.kind == "onnx" and good.path == folder / "model.onnx"
    assert good.input_names == ("input_ids", "attention_mask", "token_type_ids")
    assert good.manifest == manifest
    (folder / "manifest.json").write_text('{"precision": "int8"')  # truncated: listed with a note, not a crash
    again = {m.name: m for m in list_local([tmp_path])}["int8-mine/model.onnx"]
    assert again.manifest is None and "manifest.json: model manifest is truncated" in again.detail
    assert bad.status == "unreadable" and bad.input_names == ()
    cached = json.loads((folder / FILE_CACHE_NAME).read_text())["files"]["model.onnx"]["onnx_inputs"]
    assert cached == ["input_ids", "attention_mask", "token_type_ids"]


# ---- CLI ------------------------------------------------------------------------------------------

def test_cli_models_missing_dir(capsys, tmp_path):
    assert main(["models", "--dir", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"mlperf-bert models: error: --dir {tmp_path / 'nope'}: no such")


def test_listing_a_model_folder_keeps_its_fingerprint(tmp_path):
    """The `models` listing caches md5 sums in a dotfile beside the model; that must not change the folder's
    fingerprint (which keys the export cache and tuned profiles). Was: writing the dotfile changed it."""
    from mlperf_bert.fileio import fingerprint
    from mlperf_bert.models.local import FILE_CACHE_NAME

    (tmp_path / "config.json").write_text('{"hidden_size": 32}')
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 64)
    before = fingerprint(tmp_path)
    (tmp_path / FILE_CACHE_NAME).write_text('{"model.safetensors": {"md5": "x"}}')
    assert fingerprint(tmp_path) == before
    (tmp_path / "model.safetensors").write_bytes(b"\x01" * 64)
    assert fingerprint(tmp_path) != before
