"""Local model discovery over the real ../shared and official downloads whose md5s are the real files'
(the dev set and the vocabulary), and ``mlperf-bert models`` listing ../shared by default."""

from __future__ import annotations

import json
import os
import re

import pytest

from mlperf_bert.cli import main
from mlperf_bert.config import default_shared_dir
from mlperf_bert.models import local
from mlperf_bert.models.local import FILE_CACHE_NAME, list_local, official_table

SHARED = default_shared_dir()
MINILM = SHARED / "models" / "minilm-l6-squad"

pytestmark = pytest.mark.usefixtures("shared")  # fails, not skips, without ../shared


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
