"""Downloads against a threaded HTTP server on 127.0.0.1: good file, wrong md5, dropped connection then
resume, 404, a server without Range support, 416 on a complete part, and the ``download`` CLI."""

from __future__ import annotations

import hashlib
import re

import pytest
import requests

from fileserver import serve_files
from mlperf_bert.cli import main
from mlperf_bert.errors import ChecksumError
from mlperf_bert.models.download import DownloadError, download
from mlperf_bert.models.local import FILE_CACHE_NAME
from mlperf_bert.models.registry import Artifact

SIZE = 300_000  # bytes of the generated test file
CHUNK = 4096  # small reads so a cut connection leaves bytes in the .part


def _blob(n: int, seed: int = 7) -> bytes:
    """Deterministic pseudo-random bytes (sha256 counter stream)."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}:{i}".encode()).digest()
        i += 1
    return bytes(out[:n])


@pytest.fixture
def server():
    """A local file server; set ``.files``, ``.range_ok``, ``.drop_once``; read ``.log`` and ``.url``."""
    with serve_files() as srv:
        yield srv


@pytest.fixture
def session():
    with requests.Session() as s:
        s.trust_env = False  # never route 127.0.0.1 through a proxy from the environment
        yield s


@pytest.fixture
def blob(server):
    data = _blob(SIZE)
    server.files["/blob.bin"] = data
    art = Artifact("model", f"{server.url}/blob.bin", hashlib.md5(data).hexdigest(), "blob.bin")
    return art, data


def _get(art, dest, session, **kw):
    kw.setdefault("retry_wait", 0.0)
    return download(art, dest, session=session, progress=False, chunk_size=CHUNK, **kw)


def test_good_file_then_skip(server, session, blob, tmp_path):
    art, data = blob
    path = _get(art, tmp_path / "d", session)
    assert path == tmp_path / "d" / "blob.bin"
    assert path.read_bytes() == data
    assert sorted(p.name for p in path.parent.iterdir()) == [FILE_CACHE_NAME, "blob.bin"]
    assert server.log == [("/blob.bin", None)]
    # Present with the right md5: nothing is fetched again.
    assert _get(art, tmp_path / "d", session) == path
    assert len(server.log) == 1


def test_wrong_checksum_is_set_aside(server, session, blob, tmp_path):
    art, data = blob
    wrong = Artifact(art.name, art.url, "0" * 32, art.filename)
    with pytest.raises(ChecksumError) as exc:
        _get(wrong, tmp_path, session)
    msg = str(exc.value)
    assert "\n" not in msg
    assert str(tmp_path / "blob.bin.bad-md5") in msg
    assert "0" * 32 in msg and art.md5 in msg
    assert not (tmp_path / "blob.bin").exists()
    assert not (tmp_path / "blob.bin.part").exists()
    assert (tmp_path / "blob.bin.bad-md5").read_bytes() == data


def test_present_file_with_wrong_md5_is_replaced(server, session, blob, tmp_path):
    art, data = blob
    (tmp_path / "blob.bin").write_bytes(b"corrupt")
    assert _get(art, tmp_path, session).read_bytes() == data
    assert (tmp_path / "blob.bin.bad-md5").read_bytes() == b"corrupt"


def test_cut_connection_resumes_with_range(server, session, blob, tmp_path):
    art, data = blob
    server.drop_once.add("/blob.bin")
    path = _get(art, tmp_path, session, retries=3)
    assert hashlib.md5(path.read_bytes()).hexdigest() == art.md5
    assert len(server.log) == 2
    assert server.log[0] == ("/blob.bin", None)
    offset = int(re.fullmatch(r"bytes=(\d+)-", server.log[1][1]).group(1))
    assert 0 < offset <= SIZE // 2  # resumed from the bytes kept, not from zero
    assert not (tmp_path / "blob.bin.part").exists()


def test_cut_without_retries_keeps_part_and_next_run_resumes(server, session, blob, tmp_path):
    art, data = blob
    server.drop_once.add("/blob.bin")
    with pytest.raises(DownloadError) as exc:
        _get(art, tmp_path, session, retries=0)
    assert "\n" not in str(exc.value) and "rerun to resume" in str(exc.value)
    part = tmp_path / "blob.bin.part"
    kept = part.stat().st_size
    assert 0 < kept <= SIZE // 2 and part.read_bytes() == data[:kept]
    assert not (tmp_path / "blob.bin").exists()
    path = _get(art, tmp_path, session, retries=0)
    assert path.read_bytes() == data
    assert server.log[-1] == ("/blob.bin", f"bytes={kept}-")


def test_404_is_one_line_and_leaves_nothing(server, session, tmp_path):
    art = Artifact("model", f"{server.url}/missing.bin", "0" * 32, "missing.bin")
    with pytest.raises(DownloadError) as exc:
        _get(art, tmp_path, session, retries=3)
    msg = str(exc.value)
    assert "\n" not in msg and f"{server.url}/missing.bin" in msg and "HTTP 404" in msg
    assert list(tmp_path.iterdir()) == []
    assert len(server.log) == 1  # an HTTP error is not retried


def test_server_without_range_restarts_from_zero(server, session, blob, tmp_path):
    art, data = blob
    server.range_ok = False
    # A stale part with wrong bytes: appending to it would corrupt the file; a 200 must rewrite it.
    (tmp_path / "blob.bin.part").write_bytes(b"x" * 1000)
    path = _get(art, tmp_path, session)
    assert path.read_bytes() == data
    assert server.log == [("/blob.bin", "bytes=1000-")]


def test_server_without_range_after_a_cut(server, session, blob, tmp_path):
    art, data = blob
    server.range_ok = False
    server.drop_once.add("/blob.bin")
    path = _get(art, tmp_path, session, retries=2)
    assert path.read_bytes() == data
    assert len(server.log) == 2 and server.log[1][1] is not None  # asked for a range, got 200


def test_complete_part_and_416_is_verified(server, session, blob, tmp_path):
    art, data = blob
    (tmp_path / "blob.bin.part").write_bytes(data)
    path = _get(art, tmp_path, session)
    assert path.read_bytes() == data
    assert server.log == [("/blob.bin", f"bytes={SIZE}-")]


def test_mirror_maps_to_filename(server, session, blob, tmp_path):
    art, data = blob
    official = Artifact(art.name, "https://zenodo.org/record/1/files/blob.bin", art.md5, art.filename)
    path = _get(official, tmp_path, session, base_url_override=server.url + "/")
    assert path.read_bytes() == data and server.log == [("/blob.bin", None)]


# ---- CLI ------------------------------------------------------------------------------------------

def test_cli_unknown_name(capsys, tmp_path):
    assert main(["download", "bert-tiny", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err.startswith("mlperf-bert download: error: unknown artifact 'bert-tiny'")
    assert "bert-large-onnx-int8" in err and "squad-dev" in err
    assert list(tmp_path.iterdir()) == []


def test_cli_404_via_mirror_flag(server, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    rc = main(["download", "bert-large-onnx", "--dir", str(tmp_path), "--mirror", server.url,
               "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"{server.url}/model.onnx: HTTP 404" in err
    assert not (tmp_path / "bert-large-onnx" / "model.onnx").exists()


def test_cli_needs_a_name(capsys):
    assert main(["download"]) == 2
    assert "name at least one artifact" in capsys.readouterr().err


def test_cli_list(capsys):
    assert main(["download", "--list"]) == 0
    out = capsys.readouterr().out
    for text in ("bert-large-tf-pb", "819b25b19cd8e59080c10892689750ca", "model.ckpt-5474.index", "90.067"):
        assert text in out
    # every file's whole URL, and a title that names no file outside the package
    assert "https://zenodo.org/record/3733868/files/model.ckpt-5474.data-00000-of-00001" in out
    assert "https://rajpurkar.github.io/SQuAD-explorer/dataset/dev-v1.1.json" in out
    assert out.splitlines()[0].strip() == "Official MLPerf BERT artifacts (mlperf-bert download NAME)"


def test_no_network_is_one_line_and_leaves_no_folder(tmp_path, capsys):
    """A host name that does not resolve (no network): one line at once, no retries, no empty folder."""
    root = tmp_path / "models"
    rc = main(["download", "bert-large-onnx", "--dir", str(root), "--mirror", "http://mlperf-bert-test.invalid",
               "--no-progress", "--retries", "3"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err == ("mlperf-bert download: error: http://mlperf-bert-test.invalid/model.onnx: cannot "
                               "reach mlperf-bert-test.invalid (the name does not resolve: no network?); pass "
                               "--mirror URL for a local mirror")
    assert not root.exists()
