"""The harness's own ceiling: the null backend through LoadGen, Offline and Server (not a test).

Prints LoadGen's samples/s (Offline) or completed QPS and latency percentiles (Server), and the process's
CPU time per sample, for the SUT settings given. The features are the real dev set's (lengths decide the
batches and the response sizes). Where the time goes: run it under ``py-spy record --native``.

    python benchmarks/harness.py offline --batch-size 256 --workers 1
    python benchmarks/harness.py server --qps 20000 --batch-size 32 --seconds 5
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from mlperf_bert import speed
from mlperf_bert.backends.null import NullBackend
from mlperf_bert.config import DataPaths, SquadConfig
from mlperf_bert.machine import sample_host_load
from mlperf_bert.qsl.qsl import SquadQSL
from mlperf_bert.squad.cache import load_features
from mlperf_bert.sut.batcher import BatcherConfig
from mlperf_bert.sut.sut import SUTConfig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", choices=("offline", "server"))
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--samples", type=int, default=200_000, help="Offline samples (default 200,000)")
    p.add_argument("--qps", type=float, default=20_000.0, help="Server target QPS (default 20,000)")
    p.add_argument("--seconds", type=float, default=5.0, help="Server duration (default 5)")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    _, feats = load_features(DataPaths.defaults(), SquadConfig(), False)
    print(f"host: {sample_host_load().text()}")
    scenario = args.scenario.capitalize()
    sut = SUTConfig(scenario, BatcherConfig(max_batch_size=args.batch_size, token_budget=None, server_max_wait_ms=0.0),
                    workers=args.workers)
    with SquadQSL(feats) as qsl, tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeat):
            c0 = time.process_time()
            if scenario == "Offline":
                r = speed.loadgen_run(NullBackend(), qsl, sut, Path(tmp) / str(k), samples=args.samples)
                n = args.samples
                print(f"Offline batch {args.batch_size}, {args.workers} workers: {r['samples_per_second']:,.0f} "
                      f"samples/s, {1e6 * (time.process_time() - c0) / n:.2f} us CPU per sample")
            else:
                r = speed.loadgen_run(NullBackend(), qsl, sut, Path(tmp) / str(k), duration_s=args.seconds,
                                      target_qps=args.qps)
                n = args.qps * args.seconds
                lat = r["latency_ms"]
                print(f"Server {args.qps:,.0f} QPS: {r['samples_per_second']:,.0f} completed/s, p50 "
                      f"{lat.get(50.0, 0):.3f} ms, p90 {lat.get(90.0, 0):.3f} ms, p99 {lat.get(99.0, 0):.3f} ms, "
                      f"{1e6 * (time.process_time() - c0) / n:.2f} us CPU per query, valid {r['valid']}")
    print(f"host: {sample_host_load().text()}")


if __name__ == "__main__":
    main()
