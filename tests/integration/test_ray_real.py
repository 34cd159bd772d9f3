"""The small SQuAD model on two Ray nodes (a head and a worker on 127.0.0.1, one ONNX Runtime replica each)
scores the first 200 dev questions exactly like a local run (issue 13's slice)."""

from __future__ import annotations

import json

import pytest

from mlperf_bert.backends.base import BackendConfig
from mlperf_bert.config import DataPaths
from mlperf_bert.loadgen.settings import LoadGenConfig
from mlperf_bert.runner import RunConfig, run
from mlperf_bert.sut.batcher import BatcherConfig
from mlperf_bert.sut.sut import SUTConfig
from raycluster import deadline, needs_ray, two_node_cluster

pytestmark = [pytest.mark.usefixtures("shared"), needs_ray]


def test_two_node_cluster_scores_200_dev_questions_like_a_local_run(small_model, tmp_path):
    from mlperf_bert.distributed.ray_pool import DistributedConfig

    paths = DataPaths.defaults()
    common = dict(data=paths, backend=BackendConfig("onnxruntime", model=small_model, device="cpu", threads=1,
                                                    cache_dir=paths.cache_dir),
                  sut=SUTConfig("Offline", batcher=BatcherConfig(max_batch_size=1)),
                  loadgen=LoadGenConfig(scenario="Offline"), modes=("accuracy",), output_dir=tmp_path,
                  max_examples=200)
    with two_node_cluster(), deadline(600):
        local = run(RunConfig(**common, run_name="local"), progress=False)
        ray_run = run(RunConfig(**common, run_name="ray", distributed=DistributedConfig(replicas=2, replica_cpus=1)),
                      progress=False)
    c = json.loads((ray_run.run_dir / "run.json").read_text())["cluster"]
    assert c["nodes"] == 2 and len({r["node_id"] for r in c["replica_list"]}) == 2  # one replica per node
    assert all(r["samples"] > 0 for r in c["replica_list"])
    assert ray_run.accuracy.questions_total == 200 and ray_run.accuracy.duplicates == 0
    assert ray_run.accuracy.f1 == local.accuracy.f1 and ray_run.accuracy.exact_match == local.accuracy.exact_match

    def responses(r):
        entries = json.loads((r.run_dir / "accuracy" / "mlperf_log_accuracy.json").read_text())
        return {e["qsl_idx"]: e["data"] for e in entries}

    assert responses(ray_run) == responses(local)  # every logit equal, byte for byte
