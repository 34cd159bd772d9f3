"""Fine-tuning without a model or data: the epoch schedule, and one-line errors for a missing training file, a
non-BERT encoder and bad training JSON. Training the real MiniLM encoder on real SQuAD questions:
tests/integration/test_finetune_real.py."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlperf_bert.cli import main as cli_main
from mlperf_bert.errors import DataError, ModelError
from mlperf_bert.train.data import read_squad_train
from mlperf_bert.train.finetune import epoch_batches, load_encoder_for_qa, lr_factor


def test_epoch_batches_cover_every_feature_once_and_schedule():
    lengths = np.random.default_rng(0).integers(40, 384, size=1000)
    batches = epoch_batches(lengths, 32, 5, seed=1, epoch=0)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000)) and max(len(b) for b in batches) == 32
    # bucketing: a batch pads far less than a random batch would
    def waste(bs):
        return sum(len(b) * lengths[b].max() - lengths[b].sum() for b in bs) / lengths.sum()

    shuffled = np.random.default_rng(2).permutation(1000)
    assert waste(batches) < 0.2 < 0.6 < waste([shuffled[i : i + 32] for i in range(0, 1000, 32)])
    again = epoch_batches(lengths, 32, 5, seed=1, epoch=0)
    assert all((a == b).all() for a, b in zip(batches, again))
    assert not all(len(a) == len(b) and (a == b).all() for a, b in zip(batches, epoch_batches(lengths, 32, 5, 1, 1)))
    assert [lr_factor(p, 0.1) for p in (0.0, 0.05, 0.1, 0.55, 1.0)] == pytest.approx([0.0, 0.5, 1.0, 0.5, 0.0])


def test_missing_train_file_is_one_line(tmp_path, capsys, tiny_model):
    rc = cli_main(["finetune", "--encoder", str(tiny_model), "--train-file", str(tmp_path / "nope.json.gz"),
                   "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "nope.json.gz" in err and "training file not found" in err and "--train-file" in err


def test_non_bert_encoder_is_one_line(tmp_path, capsys):
    enc = tmp_path / "gpt"
    enc.mkdir()
    (enc / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 2}))
    rc = cli_main(["finetune", "--encoder", str(enc), "--output", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "'gpt2', not 'bert'" in err
    with pytest.raises(ModelError, match="no config.json"):
        load_encoder_for_qa(tmp_path)


def test_bad_train_json_is_one_line(tmp_path):
    bad = tmp_path / "train.json"
    bad.write_text(json.dumps({"version": "v2.0", "data": []}))
    with pytest.raises(DataError, match="SQuAD version v2.0"):
        read_squad_train(bad)
    bad.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        read_squad_train(bad)
