"""The official registry (values from docs/models.md), local model discovery and ``mlperf-bert models``."""

from __future__ import annotations

import json
import os
import re

import pytest

from mlperf_bert.cli import main
from mlperf_bert.config import default_shared_dir
from mlperf_bert.errors import ConfigError
from mlperf_bert.models import local, registry
from mlperf_bert.models.local import FILE_CACHE_NAME, list_local, official_table

SHARED = default_shared_dir()
MINILM = SHARED / "models" / "minilm-l6-squad"


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

def test_shared_small_model_is_listed():
    found = list_local([SHARED / "models"])
    [hf] = [m for m in found if m.name == "minilm-l6-squad"]
    assert (hf.kind, hf.path, hf.status) == ("hf", MINILM, "no checksum")
    assert hf.detail == "bert, 6 layers, hidden 384"
    # vocab.txt there has the official md5 but the folder is not an official download: not claimed.
    assert not any(m.kind == "official" for m in found)


@pytest.fixture
def downloads(tmp_path):
    """A download root: squad-dev complete (symlink to the real file), one official vocab.txt of
    bert-large-tf, a junk model.onnx for bert-large-onnx, and a .part of the pytorch model."""
    root = tmp_path / "models"
    for name in ("squad-dev", "bert-large-tf", "bert-large-onnx", "bert-large-pytorch"):
        (root / name).mkdir(parents=True)
    os.symlink(SHARED / "data" / "dev-v1.1.json", root / "squad-dev" / "dev-v1.1.json")
    os.symlink(SHARED / "data" / "vocab.txt", root / "bert-large-tf" / "vocab.txt")
    (root / "bert-large-onnx" / "model.onnx").write_bytes(b"not the official model")
    (root / "bert-large-pytorch" / "model.pytorch.part").write_bytes(b"\0" * 100)
    return root


def test_official_downloads_are_verified(downloads):
    by_name = {m.name: m for m in list_local([downloads])}
    assert set(by_name) == {"squad-dev", "bert-large-tf", "bert-large-onnx", "bert-large-pytorch"}
    assert by_name["squad-dev"].status == "verified" and by_name["squad-dev"].verified
    tf = by_name["bert-large-tf"]
    assert tf.status == "incomplete (1 of 4 files)"
    assert tf.detail == ("missing model.ckpt-5474.data-00000-of-00001, model.ckpt-5474.index, "
                         "model.ckpt-5474.meta")
    assert by_name["bert-large-onnx"].status == "md5 mismatch (model.onnx)"
    assert by_name["bert-large-onnx"].kind == "official"  # the junk file is not also a local ONNX model
    pt = by_name["bert-large-pytorch"]
    assert pt.status == "incomplete (0 of 1 files)" and "partial download of model.pytorch" in pt.detail

    rows = {r.entry.name: r for r in official_table(list_local([downloads]))}
    assert rows["squad-dev"].best.verified and rows["bert-large-onnx-int8"].best is None

    unverified = {m.name: m.status for m in list_local([downloads], verify=False)}
    assert unverified["squad-dev"] == "not verified"


def test_md5_cache_is_used_and_invalidated(downloads, monkeypatch):
    list_local([downloads])  # fills the caches
    cache = json.loads((downloads / "squad-dev" / FILE_CACHE_NAME).read_text())
    assert cache["files"]["dev-v1.1.json"]["md5"] == "3e85deb501d4e538b6bc56f786231552"

    hashed = []
    real = local.md5_file
    monkeypatch.setattr(local, "md5_file", lambda p, chunk_size=1 << 20: hashed.append(p.name) or real(p))
    assert {m.name: m.status for m in list_local([downloads])}["squad-dev"] == "verified"
    assert hashed == []  # all served from the json caches
    junk = downloads / "bert-large-onnx" / "model.onnx"
    junk.write_bytes(b"changed: another size")
    list_local([downloads])
    assert hashed == ["model.onnx"]


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

def test_cli_models_json(downloads, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("MLPERF_BERT_CACHE", str(tmp_path / "empty-cache"))
    assert main(["models", "--json", "--dir", str(downloads)]) == 0
    doc = json.loads(capsys.readouterr().out)
    official = {r["name"]: r for r in doc["official"]}
    assert official["squad-dev"] == {"name": "squad-dev", "format": "dataset", "precision": None,
                                     "f1": None, "status": "verified",
                                     "path": str(downloads / "squad-dev")}
    assert official["bert-large-onnx-int8"]["status"] == "not downloaded"
    assert official["bert-large-onnx-int8"]["f1"] == 90.067
    [hf] = [m for m in doc["local"] if m["kind"] == "hf"]
    assert (hf["name"], hf["path"]) == ("minilm-l6-squad", str(MINILM))


def test_cli_models_table(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("MLPERF_BERT_CACHE", str(tmp_path))
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "minilm-l6-squad" in out and str(MINILM) in out
    assert re.search(r"bert-large-onnx-int8\s*│\s*onnx\s*│\s*int8\s*│\s*90\.067\s*│\s*not downloaded", out)
    # the dev set that `run` reads from ../shared by default is listed there (was "not downloaded")
    shared_data = MINILM.parent.parent / "data"
    assert re.search(r"squad-dev\s*│\s*dataset\s*│\s*│\s*│\s*verified\s*│\s*" + re.escape(str(shared_data)), out)
    assert not (shared_data / ".mlperf-bert-files.json").exists()  # nothing written into ../shared


def test_cli_models_missing_dir(capsys, tmp_path):
    assert main(["models", "--dir", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"mlperf-bert models: error: --dir {tmp_path / 'nope'}: no such")
