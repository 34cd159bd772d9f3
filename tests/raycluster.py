"""Ray test helpers shared by tests/unit/test_ray.py and tests/integration/test_ray_real.py: a two-node
cluster on 127.0.0.1, a deadline for blocks that run LoadGen, and the skip for a missing Ray."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
from pathlib import Path

import pytest

HAVE_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason="Ray is not installed (pip install 'mlperf-bert[ray]')")
TESTS = Path(__file__).parent  # tests/: fakes.py, test_submission_support.py (the actors import them)


class Hung(Exception):
    """A test ran past its deadline."""


@contextlib.contextmanager
def deadline(seconds: int):
    """Fail with ``Hung`` when the block runs longer than ``seconds`` (SIGALRM; main thread)."""
    def on_alarm(signum, frame):
        raise Hung(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def two_node_cluster(cpus_per_node: int = 1):
    """A head and a worker node on 127.0.0.1 (``ray.cluster_utils.Cluster``, ``cpus_per_node`` CPUs each),
    this process connected to it; both shut down after the block."""
    import ray
    from ray.cluster_utils import Cluster

    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS), old) if p)  # actors import fakes
    node = {"num_cpus": cpus_per_node, "object_store_memory": 100 * 2**20, "include_dashboard": False}
    c = Cluster(initialize_head=True, head_node_args=node)
    try:
        c.add_node(**node)
        c.wait_for_nodes()
        ray.init(address=c.address, log_to_driver=False)
        yield c
    finally:
        ray.shutdown()
        c.shutdown()
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old
