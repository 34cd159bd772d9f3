"""``mlperf-bert download squad-dev`` from a local mirror serving the real dev set: its official md5 is
verified, recorded, and the listing trusts it without re-hashing."""

from __future__ import annotations

import hashlib

import pytest

from fileserver import serve_files
from mlperf_bert.cli import main
from mlperf_bert.config import default_shared_dir
from mlperf_bert.models import local
from mlperf_bert.models.local import list_local

pytestmark = pytest.mark.usefixtures("shared")  # fails, not skips, without ../shared


@pytest.fixture
def server():
    with serve_files() as srv:
        yield srv


def test_cli_squad_dev_from_mirror_then_listed_verified(server, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    dev = (default_shared_dir() / "data" / "dev-v1.1.json").read_bytes()
    server.files["/dev-v1.1.json"] = dev
    monkeypatch.setenv("MLPERF_BERT_MIRROR", server.url)  # env form of --mirror
    assert main(["download", "squad-dev", "--dir", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    target = tmp_path / "squad-dev" / "dev-v1.1.json"
    assert out == [str(target)]
    assert hashlib.md5(target.read_bytes()).hexdigest() == "3e85deb501d4e538b6bc56f786231552"

    # The verified md5 was recorded: listing needs no re-hash.
    def no_hash(path, chunk_size=0):
        raise AssertionError(f"re-hashed {path}")

    monkeypatch.setattr(local, "md5_file", no_hash)
    [found] = [m for m in list_local([tmp_path]) if m.official == "squad-dev"]
    assert found.status == "verified" and found.path == tmp_path / "squad-dev"
