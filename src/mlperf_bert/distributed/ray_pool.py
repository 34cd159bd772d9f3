"""Backend replicas on Ray: a pool of actors that presents the ``Backend`` protocol to the one SUT.

LoadGen, the QSL and the batcher stay in the driver process (LoadGen is one process). The pool is a backend
with an extra attribute, ``slots`` (replicas x batches in flight per replica): the SUT runs that many worker
threads (``sut.sut.worker_count``), each forms or takes a batch exactly as with a local backend and calls
``predict``, which sends the batch to the least-loaded live replica and blocks that thread until the logits
come back. So:

- Offline: the workers pull the length-sorted batches of the query one at a time, so the query is split
  across replicas by token load as it runs (a replica that finishes sooner takes the next batch).
- Server: dynamic batching stays on the driver; each formed batch goes to the replica with the fewest
  tokens in flight.
- Backpressure: at most ``inflight_per_replica`` batches wait on or run in a replica (the actor runs one at
  a time; the next one is already there when it finishes); batches not yet sent stay in the SUT's queue.
- Response packing, "every sample completed exactly once" and drain mode (Ctrl-C) stay the SUT's: the SUT
  completes exactly what ``predict`` returns.

Replicas. Each actor holds one backend replica, built inside the actor from the driver's ``BackendSpec``
and the already prepared ``BackendConfig`` (``BackendRegistry([spec]).load``): the driver prepares the
artifact once (``BackendRegistry.prepare``), so the prepared path must be readable at the same path on
every node (a shared filesystem, or the same cache folder copied to each node), and mlperf-bert, the
backend's runtime and any plugin module must be installed on every node. Placement is by Ray resources:
each actor asks for ``replica_cpus`` CPUs and ``replica_gpus`` GPUs with the ``SPREAD`` strategy. Each
replica runs ``threads`` intra-op threads (``--threads``, default: its CPUs), so replicas never
oversubscribe the cores Ray gives them. Replicas warm up (one ``predict`` each on a real-shaped batch)
before LoadGen starts.

Faults. A replica whose actor dies (``ray.kill``, its process or node gone: ``RayActorError``,
``ObjectLostError`` ...) or that gives no answer within ``batch_timeout_s`` is dropped, and the batch it
held is sent again to a remaining replica: ``predict`` still returns once, so each sample gets exactly one
response. With no replica left, ``predict`` raises ``BackendFailure`` (one line) and the run fails with a
``.failed`` folder. An exception raised by the backend inside a replica is not retried (the same batch
would fail again): it becomes ``BackendFailure("replica 3 on node 10.0.0.5 [node id]: <cause>")``. Every
wait is bounded (poll interval ``_POLL_S``), and ``close`` kills the actors and stops a Ray this pool
started, also while worker threads wait in ``predict`` (Ctrl-C).
"""

from __future__ import annotations

import logging
import math
import socket
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

from mlperf_bert.backends.base import BackendConfig, BackendSpec
from mlperf_bert.backends.registry import BackendRegistry
from mlperf_bert.errors import BackendFailure, BackendUnavailable, ConfigError, HarnessError

#: Seconds between checks while a thread waits for a replica or its answer (close() is seen within this).
_POLL_S = 0.5
#: Seconds ``close`` waits for threads inside ``predict`` to leave before Ray is shut down.
_CLOSE_WAIT_S = 3.0
#: Seconds to resolve ``--ray-address HOST:PORT`` and open a TCP connection to it before ``ray.init``, which
#: would otherwise retry the GCS for minutes (printing Ray's own warnings) when nothing listens there.
_CONNECT_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class DistributedConfig:
    """Backend replicas on Ray (``--replicas`` and its flags); ``RunConfig.distributed`` None = local.

    Attributes:
        replicas: number of backend replicas (Ray actors), >= 1.
        replica_cpus: Ray CPUs per replica; None = the cluster's CPUs / ``replicas`` (whole CPUs when there
            are at least as many as replicas, else a fraction).
        replica_gpus: Ray GPUs per replica; None = 1 with ``--device cuda``, or with ``--device auto`` when
            the cluster has a GPU per replica; else 0.
        address: None = start a local Ray for the run (its CPU resource = this machine's physical cores) and
            stop it after; ``"auto"`` = the running cluster this machine belongs to (``ray start``);
            ``"HOST:PORT"`` = that cluster's head (GCS) address (port 1..65535; ``[v6]:PORT`` and a
            ``ray://`` prefix are accepted; checked by ``ray_head``).
        inflight_per_replica: most batches sent to one replica and not yet answered (>= 1; 2 lets the next
            batch travel while one runs).
        start_timeout_s: longest wait for every replica to be placed, load its model and warm up (s).
        batch_timeout_s: a replica that does not answer a batch within this long is dropped (killed) and the
            batch is run again on another replica (s).
    """

    replicas: int = 2
    replica_cpus: float | None = None
    replica_gpus: float | None = None
    address: str | None = None
    inflight_per_replica: int = 2
    start_timeout_s: float = 300.0
    batch_timeout_s: float = 600.0

    def __post_init__(self) -> None:
        if self.replicas < 1:
            raise ConfigError(f"--replicas {self.replicas}: must be >= 1")
        if self.replica_cpus is not None and not self.replica_cpus > 0:
            raise ConfigError(f"--replica-cpus {self.replica_cpus:g}: must be > 0")
        if self.replica_gpus is not None and not self.replica_gpus >= 0:
            raise ConfigError(f"--replica-gpus {self.replica_gpus:g}: must be >= 0")
        if self.inflight_per_replica < 1:
            raise ConfigError(f"--replica-inflight {self.inflight_per_replica}: must be >= 1")
        if self.address is not None:
            ray_head(self.address)  # raises the one-line ConfigError for a malformed address
        if not (self.start_timeout_s > 0 and self.batch_timeout_s > 0):
            raise ConfigError("DistributedConfig: start_timeout_s and batch_timeout_s must be > 0")


def import_ray():
    """The ``ray`` module.

    Raises:
        BackendUnavailable: Ray is not installed (one line naming the extra).
    """
    try:
        import ray
    except ImportError:
        raise BackendUnavailable("--replicas needs Ray, which is not installed; "
                                 "pip install 'mlperf-bert[ray]'") from None
    return ray


def ray_head(address: str) -> tuple[str, int] | None:
    """The (host, port) that ``--ray-address`` names, or None for ``auto``.

    Accepts ``HOST:PORT``, ``[IPv6]:PORT`` and ``ray://HOST:PORT`` (Ray Client); resolves nothing.

    Raises:
        ConfigError: empty, no port, or a port that is not an integer in 1..65535 (one line naming the flag).
    """
    text = address.strip()
    if text == "auto":
        return None
    bad = ConfigError(f"--ray-address {address!r}: give 'auto' or HOST:PORT with a port in 1..65535 "
                      "(leave it out for a local Ray)" if text else
                      "--ray-address: give 'auto' or HOST:PORT (leave it out for a local Ray)")
    rest = text.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
        raise bad
    return host, int(port)


def check_ray_head(address: str, timeout_s: float = _CONNECT_TIMEOUT_S) -> None:
    """Fail fast unless something accepts a TCP connection at ``--ray-address HOST:PORT`` (``auto``: no
    check). Resolving the host and connecting together take at most about ``timeout_s`` seconds (the lookup
    runs in a daemon thread, since ``getaddrinfo`` has no timeout of its own).

    It only proves that a port is open, not that a Ray head answers there; it exists because ``ray.init``
    on an address where nothing listens retries for minutes and is slow to interrupt.

    Raises:
        ConfigError: malformed address, host not resolvable, or no TCP listener there (one line naming
            ``--ray-address``).
    """
    head = ray_head(address)
    if head is None:
        return
    host, port = head
    hint = "start the head with 'ray start --head', or leave --ray-address out for a local Ray"
    end = time.monotonic() + timeout_s
    found: dict[str, Any] = {}

    def resolve() -> None:
        try:
            found["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            found["error"] = exc

    lookup = threading.Thread(target=resolve, name="ray-address-lookup", daemon=True)
    lookup.start()
    lookup.join(timeout_s)
    if "infos" not in found:
        err = found.get("error")
        why = (err.strerror or _one_line(err)) if err is not None else f"no answer within {timeout_s:g} s"
        raise ConfigError(f"--ray-address {address}: cannot resolve host {host!r} ({why})")
    last: BaseException | str = f"no answer within {timeout_s:g} s"
    for family, kind, proto, _, sockaddr in found["infos"]:
        left = end - time.monotonic()
        if left <= 0:
            break
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.settimeout(left)
                sock.connect(sockaddr)
            return
        except OSError as exc:
            last = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or exc)
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    raise ConfigError(f"--ray-address {address}: nothing accepts a connection at {shown} "
                      f"({_one_line(last)}); {hint}")


def _one_line(exc: BaseException | str) -> str:
    text = exc if isinstance(exc, str) else (str(exc) or type(exc).__name__)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


class Replica:
    """The Ray actor: one backend replica (wrapped by ``ray.remote`` in ``RayReplicaPool.start``).

    ``__init__`` never raises: a load error is kept and returned by ``ready`` so the driver can name the
    replica, its node and the cause in one line (Ray would report a traceback of the actor's creation).

    Args:
        index: replica number (0-based).
        spec: the backend's spec from the driver's registry (its module must import on this node).
        config: the prepared ``BackendConfig`` (model path readable on this node, threads set).
    """

    def __init__(self, index: int, spec: BackendSpec, config: BackendConfig) -> None:
        import os

        import ray

        self.index = index
        self.backend = None
        self.error: BaseException | None = None
        self.info: dict[str, Any] = {"replica": index, "node_id": ray.get_runtime_context().get_node_id(),
                                     "ip": ray.util.get_node_ip_address(), "hostname": socket.gethostname(),
                                     "pid": os.getpid(), "gpu_ids": [str(g) for g in ray.get_gpu_ids()]}
        try:
            self.backend = BackendRegistry([spec]).load(config)
            describe = getattr(self.backend, "describe", None)
            self.info["detail"] = describe() if callable(describe) else {}
        except Exception as exc:  # noqa: BLE001 - returned by ready(); the driver decides
            self.error = exc

    def ready(self) -> tuple[dict, BaseException | None]:
        """(where this replica runs and what its backend describes, the load error or None)."""
        err = self.error
        if err is not None and not isinstance(err, HarnessError):
            err = BackendFailure(f"{type(err).__name__}: {_one_line(err)}")
        return self.info, err

    def predict(self, input_ids: np.ndarray, input_mask: np.ndarray, segment_ids: np.ndarray) -> np.ndarray:
        """The backend's ``predict``: int [B, L] x3 -> float32 [B, L, 2]."""
        return self.backend.predict(input_ids, input_mask, segment_ids)


@dataclass
class _ReplicaState:
    """The driver's view of one replica."""

    index: int
    actor: Any
    info: dict = field(default_factory=dict)
    alive: bool = True
    inflight: int = 0  # batches sent and not yet answered
    inflight_tokens: int = 0  # sum of B x L over those batches
    batches: int = 0  # batches answered through predict (the probe included, the warm-up not)
    samples: int = 0
    tokens: int = 0  # padded tokens (B x L) answered
    lost: str | None = None

    @property
    def where(self) -> str:
        ip, node = self.info.get("ip"), str(self.info.get("node_id") or "")
        return f"replica {self.index} on node {ip or '?'} [{node[:8] or '?'}]"


class _Lost(Exception):
    """A replica is gone (its batch may be run again elsewhere)."""


class RayReplicaPool:
    """Backend replicas on Ray behind the ``Backend`` protocol (see the module docstring). Build with
    ``start``; thread-safe: ``slots`` threads call ``predict`` at once.

    Attributes:
        name: the backend's registry name (``onnxruntime``, ...).
        slots: replicas x ``inflight_per_replica``: how many SUT workers keep the pool busy.
        replicas: the replicas' driver-side states (``info``: node id, ip, hostname, pid, GPU ids).
        losses: replicas dropped during the run, each ``{"replica", "node", "cause"}``.
    """

    def __init__(self, ray, spec: BackendSpec, config: BackendConfig, dist: DistributedConfig, *,
                 owns_ray: bool, resources: dict, say: Callable[[str], None]) -> None:
        self._ray = ray
        self.name = spec.name
        self.spec = spec
        self.config = config
        self.dist = dist
        self.resources = resources  # cpus, gpus, threads per replica
        self.slots = dist.replicas * dist.inflight_per_replica
        self.replicas: list[_ReplicaState] = []
        self.losses: list[dict] = []
        self._owns_ray = owns_ray
        self._say = say
        self._cond = threading.Condition()
        self._closed = False
        self._calls = 0  # threads inside predict
        self._last_loss = ""

    # -- building -----------------------------------------------------------------------------------
    @classmethod
    def start(cls, spec: BackendSpec, config: BackendConfig, dist: DistributedConfig, *,
              warmup: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
              say: Callable[[str], None] = lambda m: None) -> "RayReplicaPool":
        """Connect to (or start) Ray, place ``dist.replicas`` replicas, load the backend in each and warm
        them up; the pool is ready for ``predict`` when this returns.

        Args:
            spec: the backend's spec (from the driver's registry).
            config: the prepared backend config (``BackendRegistry.prepare``); its model path must be
                readable on every node.
            dist: replicas, resources, Ray address.
            warmup: int [B, L] x3, one real-shaped batch each replica runs once before returning; None = none.
            say: one-line progress messages.

        Raises:
            BackendUnavailable: Ray is not installed.
            ConfigError: no Ray at ``--ray-address``, or the replicas ask for more CPUs/GPUs than the cluster
                has, or cannot be placed within ``start_timeout_s``.
            BackendFailure / the replica's own HarnessError: a replica failed to load or warm up (names the
                replica, its node and the cause).
        """
        ray = import_ray()
        if config.device.startswith("cuda:"):
            raise ConfigError(f"--device {config.device} with --replicas: Ray gives each replica its own GPUs "
                              "(--replica-gpus); use --device cuda")
        owns = False
        pool = None
        try:
            if not ray.is_initialized():
                owns = True
                _init_ray(ray, dist.address)
            resources = _replica_resources(ray, config, dist)
            replica_cfg = replace(config, threads=resources["threads"])
            pool = cls(ray, spec, replica_cfg, dist, owns_ray=owns, resources=resources, say=say)
            where = "a local Ray" if dist.address is None else f"the Ray cluster at {dist.address}"
            say(f"starting {dist.replicas} {spec.name} replica(s) on {where} ({resources['cpus']:g} CPU, "
                f"{resources['gpus']:g} GPU, {resources['threads']} thread(s) each) ...")
            pool._place(spec, replica_cfg)
            if warmup is not None:
                pool._warm_up(warmup)
            nodes = len({r.info.get("node_id") for r in pool.replicas})
            say(f"{dist.replicas} replica(s) ready on {nodes} node(s)" + (" (warmed up)" if warmup is not None else ""))
            return pool
        except BaseException:
            if pool is not None:
                pool.close()
            elif owns:
                ray.shutdown()
            raise

    def _place(self, spec: BackendSpec, config: BackendConfig) -> None:
        ray, dist, res = self._ray, self.dist, self.resources
        actor_cls = ray.remote(Replica).options(
            num_cpus=res["cpus"], num_gpus=res["gpus"], scheduling_strategy="SPREAD",
            max_restarts=0, max_task_retries=0, max_concurrency=1)
        self.replicas = [_ReplicaState(i, actor_cls.remote(i, spec, config)) for i in range(dist.replicas)]
        pending = {r.actor.ready.remote(): r for r in self.replicas}
        deadline = time.monotonic() + dist.start_timeout_s
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                names = ", ".join(str(r.index) for r in pending.values())
                raise ConfigError(f"replica(s) {names} not ready after {dist.start_timeout_s:g} s: each asks for "
                                  f"{res['cpus']:g} CPU and {res['gpus']:g} GPU and none of the nodes has that "
                                  "free, or the model loads slowly (--replica-cpus/--replica-gpus)")
            done, _ = ray.wait(list(pending), num_returns=1, timeout=min(_POLL_S, left))
            for ref in done:
                r = pending.pop(ref)
                try:
                    r.info, err = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    raise BackendFailure(f"replica {r.index} did not start: {_one_line(exc)}") from None
                if err is not None:
                    try:
                        named = type(err)(f"{r.where}: {err}")
                    except Exception:  # noqa: BLE001 - an error class with another signature
                        named = BackendFailure(f"{r.where}: {type(err).__name__}: {err}")
                    raise named from None

    def _warm_up(self, batch: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        ray = self._ray
        ids = batch[0]
        refs = {r.actor.predict.remote(*batch): r for r in self.replicas}
        deadline = time.monotonic() + self.dist.start_timeout_s
        for ref, r in refs.items():
            try:
                out = ray.get(ref, timeout=max(0.0, deadline - time.monotonic()))
            except ray.exceptions.GetTimeoutError:
                raise ConfigError(f"{r.where}: no answer to its warm-up batch within "
                                  f"{self.dist.start_timeout_s:g} s") from None
            except ray.exceptions.RayTaskError as exc:
                raise BackendFailure(f"{r.where}: warm-up failed: {_cause(exc)}") from None
            except ray.exceptions.RayError as exc:
                raise BackendFailure(f"{r.where}: lost during warm-up: {_one_line(exc)}") from None
            if out.shape != (*ids.shape, 2):
                raise BackendFailure(f"{r.where}: returned logits of shape {tuple(out.shape)} for a batch of "
                                     f"{tuple(ids.shape)}")

    # -- Backend protocol ---------------------------------------------------------------------------
    def predict(self, input_ids: np.ndarray, input_mask: np.ndarray, segment_ids: np.ndarray) -> np.ndarray:
        """Run one batch on the least-loaded live replica (blocks the calling thread only).

        Args:
            input_ids, input_mask, segment_ids: int [B, L].

        Returns:
            float32 [B, L, 2] exactly as the replica's backend returned it. A batch whose replica is lost is
            run again on another one; the call returns once.

        Raises:
            BackendFailure: the backend raised inside a replica (not retried; names the replica, its node and
                the cause), no replica is left, or the pool was closed.
        """
        tokens = int(input_ids.shape[0]) * int(input_ids.shape[1])
        with self._cond:
            self._calls += 1
        try:
            while True:
                r = self._acquire(tokens)
                ok = False
                try:
                    ref = r.actor.predict.remote(input_ids, input_mask, segment_ids)
                    out = self._wait(r, ref)
                    ok = True
                except _Lost as lost:
                    self._drop(r, str(lost))
                    continue
                finally:
                    self._release(r, tokens, int(input_ids.shape[0]) if ok else None)
                return out
        finally:
            with self._cond:
                self._calls -= 1
                self._cond.notify_all()

    def _acquire(self, tokens: int) -> _ReplicaState:
        """The live replica with a free in-flight place and the fewest tokens in flight (waits for one)."""
        limit = self.dist.inflight_per_replica
        with self._cond:
            while True:
                if self._closed:
                    raise BackendFailure("the replica pool was closed (run stopping)")
                live = [r for r in self.replicas if r.alive]
                if not live:
                    raise BackendFailure(f"no replica left: all {len(self.replicas)} were lost "
                                         f"(last: {self._last_loss})")
                free = [r for r in live if r.inflight < limit]
                if free:
                    r = min(free, key=lambda s: (s.inflight_tokens, s.inflight, s.index))
                    r.inflight += 1
                    r.inflight_tokens += tokens
                    return r
                self._cond.wait(_POLL_S)

    def _release(self, r: _ReplicaState, tokens: int, samples: int | None) -> None:
        with self._cond:
            r.inflight -= 1
            r.inflight_tokens -= tokens
            if samples is not None:
                r.batches += 1
                r.samples += samples
                r.tokens += tokens
            self._cond.notify_all()

    def _wait(self, r: _ReplicaState, ref) -> np.ndarray:
        """The replica's answer to ``ref``; raises ``_Lost`` when the replica is gone or too slow."""
        ray = self._ray
        deadline = time.monotonic() + self.dist.batch_timeout_s
        while True:
            try:
                return ray.get(ref, timeout=_POLL_S)
            except ray.exceptions.GetTimeoutError:
                if self._closed:
                    raise BackendFailure("the replica pool was closed (run stopping)") from None
                if time.monotonic() >= deadline:
                    raise _Lost(f"no answer within {self.dist.batch_timeout_s:g} s") from None
            except ray.exceptions.RayTaskError as exc:  # the backend raised inside the replica
                raise BackendFailure(f"{r.where}: {_cause(exc)}") from None
            except Exception as exc:  # noqa: BLE001 - RayActorError, ObjectLostError, a closing Ray ...
                if self._closed:
                    raise BackendFailure("the replica pool was closed (run stopping)") from None
                raise _Lost(f"{type(exc).__name__}: {_one_line(exc)}") from None

    def _drop(self, r: _ReplicaState, cause: str) -> None:
        with self._cond:
            if not r.alive:
                return
            r.alive = False
            r.lost = cause
            self._last_loss = f"{r.where}: {cause}"
            self.losses.append({"replica": r.index, "node": r.info.get("ip"), "node_id": r.info.get("node_id"),
                                "cause": cause})
            left = sum(s.alive for s in self.replicas)
            self._cond.notify_all()
        try:
            self._ray.kill(r.actor, no_restart=True)  # a slow or unreachable one must not come back
        except Exception:  # noqa: BLE001 - already gone
            pass
        self._say(f"{r.where} lost ({cause}); its batch runs again on another replica ({left} left)"
                  if left else f"{r.where} lost ({cause}); no replica left")

    def describe(self) -> dict:
        """Replica 0's backend ``describe()`` (providers, device) and the replica count, for run.json."""
        detail = dict(self.replicas[0].info.get("detail") or {}) if self.replicas else {}
        detail["replicas"] = len(self.replicas)
        return detail

    def close(self) -> None:
        """Kill every actor and shut down the Ray this pool started (a Ray the process was already
        connected to is left running). Threads waiting in ``predict`` get ``BackendFailure`` within
        ``_POLL_S``. Idempotent; never raises."""
        ray = self._ray
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        for r in self.replicas:
            try:
                ray.kill(r.actor, no_restart=True)
            except Exception:  # noqa: BLE001 - already dead or Ray gone
                pass
        deadline = time.monotonic() + _CLOSE_WAIT_S
        with self._cond:  # let threads inside ray.get leave before Ray goes away under them
            while self._calls and time.monotonic() < deadline:
                self._cond.wait(0.1)
        if self._owns_ray:
            try:
                ray.shutdown()
            except Exception:  # noqa: BLE001
                pass

    # -- records ------------------------------------------------------------------------------------
    def cluster_record(self) -> dict:
        """What run.json says about the cluster: Ray version and address, the nodes that hosted replicas,
        every node of the cluster with its resources, per-replica resources, and each replica's node and
        the batches/samples/padded tokens it answered through ``predict`` (the probe included, the warm-up
        not) or why it was lost."""
        ray = self._ray
        nodes = []
        try:
            for n in ray.nodes():
                if n.get("Alive"):
                    res = n.get("Resources", {})
                    nodes.append({"node_id": n.get("NodeID"), "ip": n.get("NodeManagerAddress"),
                                  "hostname": n.get("NodeManagerHostname"), "cpus": res.get("CPU", 0),
                                  "gpus": res.get("GPU", 0),
                                  "memory_gib": round(res.get("memory", 0) / 2**30, 2)})
        except Exception:  # noqa: BLE001 - Ray already shut down
            nodes = []
        with self._cond:
            reps = [{**{k: v for k, v in r.info.items() if k != "detail"}, "batches": r.batches,
                     "samples": r.samples, "tokens": r.tokens, "status": "lost: " + r.lost if r.lost else "alive"}
                    for r in self.replicas]
        return {"ray_version": ray.__version__,
                "address": self.dist.address or ("local (started for the run)" if self._owns_ray
                                                 else "the process's existing Ray connection"),
                "nodes": len({r["node_id"] for r in reps}),
                "replicas": len(reps),
                "per_replica": {"cpus": self.resources["cpus"], "gpus": self.resources["gpus"],
                                "threads": self.resources["threads"],
                                "inflight": self.dist.inflight_per_replica},
                "slots": self.slots,
                "cluster_nodes": nodes,
                "replica_list": reps,
                "losses": list(self.losses)}


def _cause(exc) -> str:
    """One line for an exception the backend raised in a replica (``RayTaskError.cause``)."""
    cause = getattr(exc, "cause", None) or exc
    text = _one_line(cause)
    return text if isinstance(cause, HarnessError) else f"{type(cause).__name__}: {text}"


def _init_ray(ray, address: str | None) -> None:
    """``ray.init``: a local Ray whose CPU resource is this machine's physical cores, or a connection."""
    from mlperf_bert.machine import physical_cores

    common = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    if address is None:  # "local": a new Ray even when RAY_ADDRESS names a cluster
        ray.init(address="local", num_cpus=physical_cores(), **common)
        return
    check_ray_head(address)  # seconds, not ray.init's minutes of GCS retries, when nothing listens there
    try:
        ray.init(address=address, **common)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"--ray-address {address}: no Ray cluster there ({_one_line(exc)}); start one with "
                          "'ray start --head', or leave --ray-address out for a local Ray") from None


def _replica_resources(ray, config: BackendConfig, dist: DistributedConfig) -> dict:
    """CPUs, GPUs and threads per replica (defaults in ``DistributedConfig``), checked against the cluster.

    Raises:
        ConfigError: the replicas ask for more than the cluster has in total (names the flags).
    """
    total = ray.cluster_resources()
    total_cpus, total_gpus = float(total.get("CPU", 0)), float(total.get("GPU", 0))
    n = dist.replicas
    cpus = dist.replica_cpus
    if cpus is None:
        share = total_cpus / n
        cpus = float(math.floor(share)) if share >= 1 else math.floor(share * 100) / 100
        if cpus <= 0:
            raise ConfigError(f"--replicas {n}: the cluster has {total_cpus:g} CPUs; give --replica-cpus")
    gpus = dist.replica_gpus
    if gpus is None:
        wants_gpu = config.device == "cuda" or (config.device == "auto" and total_gpus >= n)
        gpus = 1.0 if wants_gpu else 0.0
    if n * cpus > total_cpus + 1e-9:
        raise ConfigError(f"--replicas {n} x --replica-cpus {cpus:g} = {n * cpus:g} CPUs, but the Ray cluster has "
                          f"{total_cpus:g}")
    if n * gpus > total_gpus + 1e-9:
        raise ConfigError(f"--replicas {n} x --replica-gpus {gpus:g} = {n * gpus:g} GPUs, but the Ray cluster has "
                          f"{total_gpus:g}")
    threads = config.threads or max(1, int(cpus))
    return {"cpus": cpus, "gpus": gpus, "threads": threads}


def warmup_batch(features, batcher) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The first batch the SUT will send for ``features`` (``squad.types.Features``) under ``batcher``
    (``BatcherConfig``): its samples padded to the length ``BertSUT.run_batch`` pads them to, so a replica
    warms up (and captures a CUDA graph for) a shape the run uses. Returns int [B, L] x3 for
    ``RayReplicaPool.start(warmup=...)``."""
    from mlperf_bert.sut.batcher import padded_length, plan_batches

    lengths, cap = features.lengths, features.input_ids.shape[1]
    batch = plan_batches(lengths, batcher, cap)[0]
    seq = padded_length(int(lengths[batch].max()), batcher.pad_to_multiple, cap)
    return features.input_ids[batch, :seq], features.input_mask[batch, :seq], features.segment_ids[batch, :seq]
