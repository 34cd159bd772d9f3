"""Fixtures and the unit/integration split (docs/architecture.md#tests).

``tests/unit/``: tiny fixtures built here (a two-paragraph SQuAD file, a tiny random BERT and its ONNX export,
a made-up 30,522-piece vocabulary); they never read ../shared, and a guard makes any that does fail.
``tests/integration/``: the real data and model in ../shared (``shared``, ``small_model``, ``small_onnx``).
Each folder's tests get its marker (``-m unit``, ``-m integration``); a test file anywhere else is an error.
"""

import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))  # tests/fakes.py, tests/test_submission_support.py, tests/subtree.py

from mlperf_bert.config import default_shared_dir  # noqa: E402

SHARED = default_shared_dir()
#: Fixtures that reach the real data or model: a unit test that uses one (even indirectly) fails at setup.
SHARED_FIXTURES = ("shared", "small_model", "small_onnx")
KINDS = ("unit", "integration")


# -- the split ----------------------------------------------------------------------------------------------------
def _kind(path: Path) -> str | None:
    try:
        rel = Path(path).resolve().relative_to(TESTS)
    except ValueError:
        return None
    return rel.parts[0] if len(rel.parts) > 1 and rel.parts[0] in KINDS else None


def pytest_collection_modifyitems(config, items):
    for item in items:
        kind = _kind(item.path)
        if kind is None:
            raise pytest.UsageError(
                f"{item.path}: test files go in tests/unit/ (tiny fixtures, no ../shared) or tests/integration/ "
                "(the real data or model); see docs/architecture.md#tests")
        item.add_marker(kind)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Before any fixture is set up: a unit test must not ask for the real data or model."""
    if item.get_closest_marker("unit"):
        used = [name for name in SHARED_FIXTURES if name in item.fixturenames]
        if used:
            pytest.fail(f"{item.nodeid} is a unit test but uses the fixture(s) {', '.join(used)} (../shared): use "
                        "tiny_squad / tiny_model / tiny_onnx / synthetic_vocab, or move it to tests/integration/",
                        pytrace=False)


# -- the guard: unit tests never touch ../shared ------------------------------------------------------------------
def _forbidden_roots() -> tuple[str, ...]:
    """The real shared folder wherever it may be: $MLPERF_BERT_SHARED and the checkout's ../shared."""
    roots = set()
    for p in (SHARED, TESTS.parent.parent / "shared"):
        roots.add(os.path.abspath(p))
        roots.add(os.path.realpath(p))
    return tuple(sorted(roots))


_FORBIDDEN = _forbidden_roots()
_GUARD = {"on": False, "touched": []}


def _under_forbidden(path) -> bool:
    if isinstance(path, int):
        return False
    try:
        p = os.path.abspath(os.fsdecode(path))
    except (TypeError, ValueError):
        return False
    return any(p == root or p.startswith(root + os.sep) for root in _FORBIDDEN)


class SharedAccess(RuntimeError):
    """A unit test opened or listed something under ../shared."""


def _audit(event: str, args: tuple) -> None:
    if not _GUARD["on"] or event not in ("open", "os.listdir", "os.scandir", "shutil.copyfile", "shutil.copytree",
                                         "os.symlink"):
        return
    paths = args[:2] if event.startswith(("shutil", "os.symlink")) else args[:1]
    for path in paths:
        if path is not None and _under_forbidden(path):
            _GUARD["touched"].append(f"{event} {os.fsdecode(path)}")
            raise SharedAccess(f"unit test touched ../shared: {event} {os.fsdecode(path)}")


sys.addaudithook(_audit)


_UNIT_ENV: dict[str, str] = {}


def pytest_sessionstart(session):
    """Unit tests see an empty folder as ../shared and a fresh cache ($MLPERF_BERT_SHARED, $MLPERF_BERT_CACHE)."""
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="mlperf-bert-unit-"))
    (root / "empty-shared").mkdir()
    _UNIT_ENV.update(MLPERF_BERT_SHARED=str(root / "empty-shared"), MLPERF_BERT_CACHE=str(root / "cache"))
    session.config._mlperf_bert_unit_root = root


def pytest_sessionfinish(session):
    import shutil

    root = getattr(session.config, "_mlperf_bert_unit_root", None)
    if root is not None:
        shutil.rmtree(root, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """A unit test's setup, call and teardown (module and session fixtures included) run with the unit
    environment (subprocesses inherit it) and the audit hook on."""
    if not item.get_closest_marker("unit"):
        yield
        return
    saved = {k: os.environ.get(k) for k in _UNIT_ENV}
    os.environ.update(_UNIT_ENV)
    _GUARD["on"] = True
    try:
        yield
    finally:
        _GUARD["on"] = False
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Turn a phase that touched ../shared into a failure, whatever the test itself made of the error."""
    outcome = yield
    if _GUARD["touched"]:
        report = outcome.get_result()
        report.outcome = "failed"
        report.longrepr = (f"{item.nodeid} is a unit test but touched ../shared during {call.when}: "
                           f"{'; '.join(_GUARD['touched'][:3])} (move it to tests/integration/ or use a tiny fixture)")
        _GUARD["touched"] = []


# -- tiny fixtures for unit tests ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def tiny_squad(tmp_path_factory) -> tuple[Path, Path]:
    """(dev.json, vocab.txt): two paragraphs, one question each, over ``fakes.TINY_VOCAB`` (15 pieces)."""
    from fakes import TINY_CONTEXTS, write_tiny_squad

    return write_tiny_squad(tmp_path_factory.mktemp("tiny-squad"), contexts=TINY_CONTEXTS)


@pytest.fixture(scope="session")
def synthetic_vocab(tmp_path_factory) -> Path:
    """A made-up vocab.txt with BERT's 30,522 ids and special-token ids, for ``fakes.synthetic_features``."""
    from fakes import write_synthetic_vocab

    return write_synthetic_vocab(tmp_path_factory.mktemp("synthetic-vocab") / "vocab.txt")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A random BERT QA Hugging Face folder (``fakes.TINY_BERT``: 2 layers, hidden 32, 2 heads), seed 0."""
    from fakes import write_tiny_bert

    return write_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_onnx(tiny_model, tmp_path_factory) -> Path:
    """The tiny model exported once per session with ``export_onnx`` (official fp32 names, manifest beside)."""
    from mlperf_bert.convert.to_onnx import export_onnx

    out = tmp_path_factory.mktemp("tiny-onnx") / "model.onnx"
    export_onnx(tiny_model, out)
    return out


# -- the real data and model, for integration tests ---------------------------------------------------------------
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
