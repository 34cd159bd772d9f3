"""The small real model's frozen TensorFlow graph (via the DLE checkpoint and ``export-tf``) on every dev feature
scores PyTorch's F1 (``-m slow``: minutes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow", reason="needs the [tensorflow] extra")

from mlperf_bert.backends.tensorflow import TensorFlowBackend  # noqa: E402
from mlperf_bert.cli import main  # noqa: E402
from mlperf_bert.convert.tf_to_torch import convert_tf_checkpoint  # noqa: E402
from mlperf_bert.convert.torch_to_tf import export_tf_checkpoint  # noqa: E402


@pytest.fixture(scope="module")
def exported(small_model, tmp_path_factory) -> Path:
    """small model -> DLE checkpoint -> HF folder -> ``mlperf-bert export-tf`` (with its parity check)."""
    root = tmp_path_factory.mktemp("tf-chain")
    prefix = export_tf_checkpoint(small_model, root / "ckpt")
    convert_tf_checkpoint(prefix, root / "hf")
    out = root / "tf"
    assert main(["export-tf", str(root / "hf"), "--out", str(out)]) == 0
    return out


#: PyTorch fp32 F1 of the small model on all 10,833 dev features, scored by the unmodified reference script
#: (docs/models.md#small-model); fp32 backends must match within 0.02.
SMALL_MODEL_F1 = 78.91206147893796


@pytest.mark.slow
def test_full_dev_set_f1_equals_pytorch(exported, shared, tmp_path, record_property):
    """The exported frozen graph on every dev feature (length-sorted, trimmed batches) scores PyTorch's F1."""
    from mlperf_bert.accuracy.postprocess import postprocess
    from mlperf_bert.accuracy.squad_v1 import evaluate
    from mlperf_bert.config import DataPaths, SquadConfig
    from mlperf_bert.squad.cache import load_features
    from mlperf_bert.squad.tokenization import load_vocab

    cfg = SquadConfig()
    paths = DataPaths.defaults(shared=shared, cache_dir=tmp_path / "cache")
    examples, features = load_features(paths, cfg, progress=False)
    assert len(features) == 10_833
    backend = TensorFlowBackend(exported / "model.pb")
    lengths = features.lengths
    order = np.argsort(lengths, kind="stable")
    logits: dict[int, np.ndarray] = {}
    i, n = 0, len(order)
    while i < n:  # ascending lengths: a batch's last sample is its longest; at most 32 x 8192 tokens
        size = 1
        while i + size < n and size < 32 and (size + 1) * int(lengths[order[i + size]]) <= 8192:
            size += 1
        idx = order[i:i + size]
        length = int(lengths[idx[-1]])
        out = backend.predict(features.input_ids[idx, :length], features.input_mask[idx, :length],
                              features.segment_ids[idx, :length])
        for row, k in enumerate(idx):
            full = np.full((cfg.max_seq_length, 2), -10000.0, np.float32)  # padding never wins a span
            full[:length] = out[row]
            logits[int(k)] = full
        i += size
    predictions = postprocess(examples, features, logits, cfg, load_vocab(paths.vocab))
    result = evaluate(examples, predictions)
    record_property("squad_v1", result)  # shown with --junitxml; -rA -s prints the line below
    print(f"TensorFlow frozen graph on SQuAD dev: {result}")
    assert abs(result["f1"] - SMALL_MODEL_F1) <= 0.02, result
