import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/fakes.py

from mlperf_bert.config import default_shared_dir  # noqa: E402

SHARED = default_shared_dir()


@pytest.fixture(scope="session")
def shared() -> Path:
    if not (SHARED / "data" / "dev-v1.1.json").is_file():
        pytest.fail(f"../shared not found at {SHARED} (set MLPERF_BERT_SHARED)")
    return SHARED


@pytest.fixture(scope="session")
def small_model(shared) -> Path:
    """The small real SQuAD model (HF dir) from ../shared/models."""
    return shared / "models" / "minilm-l6-squad"


@pytest.fixture(scope="session")
def small_onnx(small_model, tmp_path_factory) -> Path:
    """The small model exported once per test session with ``export_onnx`` (official fp32 names)."""
    from mlperf_bert.convert.to_onnx import export_onnx

    out = tmp_path_factory.mktemp("onnx") / "model.onnx"
    export_onnx(small_model, out)
    return out


@pytest.fixture(scope="module")
def torch_one_thread():
    """One torch thread for a module: on 2 shared cores two threads per process make small ops much slower."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _no_user_profiles(monkeypatch):
    """Tests never pick up the user's tuned profiles from the shared cache folder (``mlperf-bert tune``);
    a test that wants one tunes into its own cache folder."""
    monkeypatch.setattr("mlperf_bert.tune.PROFILES_DIR", "profiles-of-tests")
