"""Side-by-side speed measurements in one process (``mlperf-bert bench``). Not a test.

On the same dev features (the samples LoadGen's fixed seeds pick):
  - reference-style SUT: batch 1, every sample padded to 384, one at a time, plain ORT fp32 session,
    through LoadGen Offline (the baseline of every ratio), and the same as a plain loop without LoadGen;
  - our SUT through LoadGen Offline, at the built-in defaults and tuned (``tune``);
  - the raw backend loop over the same batches with the same number of concurrent callers, without
    LoadGen or the SUT (LoadGen / raw loop = the harness's efficiency; 1.0 = a free harness);
  - the null backend through LoadGen Offline and Server (the harness's own ceiling);
  - the best fp32 GEMM this machine reaches (numpy/OpenBLAS, torch, ONNX Runtime), and each row's effective
    FLOP/s on real tokens against it.

FLOPs per sample of real length n (BERT encoder, weights only, no embeddings):
    2 * n * L * (4 h^2 + 2 h I)   (Q, K, V, output projections; two FFN matmuls)
  + 4 * n^2 * h * L               (Q K^T and attention x V)
with L layers, hidden h, intermediate I. For the small model at the mean dev length that is 4.1 GFLOP, and
9.5 GFLOP padded to 384 (docs/hardware-notes.md#model-cost).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from mlperf_bert.loadgen.settings import LoadGenConfig
from mlperf_bert.qsl.qsl import SquadQSL
from mlperf_bert.sut.batcher import BatcherConfig, batch_bounds, padded_length
from mlperf_bert.sut.sut import BertSUT, SUTConfig


@dataclass(frozen=True)
class ModelShape:
    """Encoder shape for the FLOP formula: layers L, hidden h, intermediate I."""

    layers: int
    hidden: int
    intermediate: int

    def flops(self, lengths: np.ndarray) -> float:
        """Total FLOPs for samples of the given real lengths (int [n]); see the module docstring."""
        n = np.asarray(lengths, dtype=np.float64)
        h, i, L = self.hidden, self.intermediate, self.layers
        return float((2 * n * L * (4 * h * h + 2 * h * i) + 4 * n * n * h * L).sum())


def gemm_peak(kind: str, threads: int, size: int = 2048, seconds: float = 2.0) -> float:
    """Measured GEMM FLOP/s for ``kind`` in ``numpy-fp32`` | ``ort-fp32`` | ``torch-fp32`` | ``torch-bf16`` |
    ``ort-int8`` (square ``size`` matrices, ``threads`` intra-op threads, best of repeated runs for
    ``seconds``). numpy's BLAS threads are limited with threadpoolctl when it is installed."""
    a = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)
    flop = 2.0 * size**3
    limit = None
    if kind == "numpy-fp32":
        try:
            from threadpoolctl import threadpool_limits

            limit = threadpool_limits(limits=threads, user_api="blas")
        except ImportError:  # numpy then uses its BLAS's own thread count
            pass
        b = a.copy()

        def step():
            np.matmul(a, b)
    elif kind.startswith("torch"):
        import torch

        torch.set_num_threads(threads)
        dt = torch.bfloat16 if kind == "torch-bf16" else torch.float32
        x = torch.from_numpy(a).to(dt)

        def step():
            torch.mm(x, x)
    else:
        import onnxruntime as ort
        from onnx import TensorProto, helper

        if kind == "ort-int8":
            node = helper.make_node("MatMulInteger", ["A", "B"], ["Y"])
            ins = [helper.make_tensor_value_info(n, TensorProto.INT8, [size, size]) for n in ("A", "B")]
            out = helper.make_tensor_value_info("Y", TensorProto.INT32, [size, size])
            feed = {"A": (a * 10).clip(-127, 127).astype(np.int8), "B": (a * 10).clip(-127, 127).astype(np.int8)}
            opset = 11
        else:
            node = helper.make_node("MatMul", ["A", "B"], ["Y"])
            ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [size, size]) for n in ("A", "B")]
            out = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [size, size])
            feed = {"A": a, "B": a}
            opset = 17
        model = helper.make_model(helper.make_graph([node], "gemm", ins, [out]),
                                  opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = 8
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])

        def step():
            sess.run(None, feed)
    try:
        step()
        best = float("inf")
        t_end = time.perf_counter() + seconds
        runs = 0
        while time.perf_counter() < t_end or runs < 3:
            runs += 1
            t0 = time.perf_counter()
            step()
            best = min(best, time.perf_counter() - t0)
    finally:
        if limit is not None:
            limit.restore_original_limits()
    return flop / best


def raw_loop(backend, qsl: SquadQSL, indices: np.ndarray, batcher: BatcherConfig, workers: int = 1) -> float:
    """Seconds for the backend alone over the batches the SUT would form from ``indices`` (one Offline
    query), called from ``workers`` threads at once as the SUT's workers would, without LoadGen."""
    import threading

    cap = qsl.input_ids.shape[1]
    order, bounds = batch_bounds(qsl.lengths[indices], batcher, cap)
    batches = [indices[order[a:b]] for a, b in zip(bounds[:-1], bounds[1:])]
    lock = threading.Lock()
    it = iter(batches)

    def work() -> None:
        while True:
            with lock:
                sel = next(it, None)
            if sel is None:
                return
            seq = padded_length(int(qsl.lengths[sel].max()), batcher.pad_to_multiple, cap)
            backend.predict(qsl.input_ids[sel, :seq], qsl.input_mask[sel, :seq], qsl.segment_ids[sel, :seq])

    t0 = time.perf_counter()
    if workers <= 1:
        work()
    else:
        threads = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return time.perf_counter() - t0


class RecordingSUT(BertSUT):
    """Our SUT, also keeping the QSL indices LoadGen issued (so the raw loop can replay them)."""

    def issue_fast(self, ids: list, indices: list) -> None:
        self.issued = np.array(indices, dtype=np.int64)
        super().issue_fast(ids, indices)


def loadgen_run(backend, qsl: SquadQSL, sut_cfg: SUTConfig, outdir, *, samples: int = 0, duration_s: float = 0.001,
                target_qps: float | None = None, expected_latency_ms: float | None = None) -> dict:
    """One short LoadGen performance run (``quick`` rules) in ``sut_cfg.scenario``.

    Offline: exactly ``samples`` samples in one query (same seeds every time, so every configuration gets the
    same samples). Server: ``target_qps`` for ``duration_s``. SingleStream: ``duration_s`` of queries.
    Returns samples/s, latency percentiles (ms), validity and the issued indices (Offline).
    """
    from mlperf_bert.loadgen.session import run_test
    from mlperf_bert.logs.parse import perf_result, read_detail_log

    lg_cfg = LoadGenConfig(scenario=sut_cfg.scenario, mode="performance", rules="quick",
                           quick_duration_s=duration_s, min_query_count=max(1, samples),
                           expected_qps=target_qps if target_qps else (1.0 if sut_cfg.scenario == "Offline" else None),
                           expected_latency_ms=expected_latency_ms, performance_sample_count=qsl.count,
                           trace=False)  # the trace would be part of what is measured
    sut = run_test(backend, qsl, sut_cfg, lg_cfg, outdir, sut_class=RecordingSUT).sut
    if sut.error is not None:
        raise sut.error
    res = perf_result(read_detail_log(outdir / "mlperf_log_detail.txt"))
    return {"samples_per_second": res.samples_per_second, "valid": res.valid, "latency_ms": res.latency_ms,
            "metric": res.metric_value, "issued": getattr(sut, "issued", None), "invalid": res.invalid_reasons}


def reference_style_sut() -> SUTConfig:
    """Batch 1, padded to 384, issue order (what the reference SUTs do)."""
    return SUTConfig(scenario="Offline",
                     batcher=BatcherConfig(max_batch_size=1, token_budget=None, sort_by_length=False,
                                           pad_to_multiple=384),
                     response_rows="full")


def with_batcher(sut: SUTConfig, **kw) -> SUTConfig:
    return dataclasses.replace(sut, batcher=dataclasses.replace(sut.batcher, **kw))


def random_bert_large(cache_dir, seed: int = 0, say=lambda m: None):
    """A random-weight BERT-Large QA folder under ``cache_dir/random-bert/``, made once by the converter's
    builder (``convert.random_bert.build_random_bert``, the ``random-bert`` command's: 24 layers, hidden 1024,
    16 heads, intermediate 4096; it appears only when complete). Its speed over real dev lengths is
    BERT-Large's; its F1 is meaningless.

    Returns:
        The folder (``config.json``, ``model.safetensors``, ``conversion.json``).
    """
    from pathlib import Path

    from mlperf_bert.convert.names import BERT_LARGE
    from mlperf_bert.convert.random_bert import build_random_bert

    out = Path(cache_dir) / "random-bert" / f"bert-large-random-seed{seed}"
    if not (out / "conversion.json").is_file():
        say(f"building a random-weight BERT-Large (seed {seed}) in {out} (once, about 1.3 GB) ...")
        build_random_bert(out, BERT_LARGE, seed=seed, overwrite=out.exists())
    return out
