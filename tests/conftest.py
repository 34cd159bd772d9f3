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
