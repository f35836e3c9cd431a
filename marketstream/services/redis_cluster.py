"""A local Redis Cluster from Debian's redis-server: N masters on loopback ports, no replicas.

For the cluster tests, the cluster benchmark and `marketstream services cluster-start`. Each
node is a redis-server with `--cluster-enabled yes` in a data directory of its own. The
cluster is formed with plain commands (no redis-cli needed): each node takes an equal range
of the 16384 slots (CLUSTER ADDSLOTSRANGE) and a distinct config epoch, the first node
MEETs the others, and start returns once every node reports `cluster_state:ok` with every
node known.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Final

import redis

from marketstream.errors import ServiceError
from marketstream.retry import wait_for
from marketstream.services import process
from marketstream.services.process import LOOPBACK, ProcessFiles, find_executable
from marketstream.services.redis_server import (
    INSTALL_HINT,
    REDIS_BINARY,
    RedisServer,
    redis_argv,
)

SLOTS: Final = 16384
NODE_TIMEOUT_MS: Final = 5000
BUS_OFFSET: Final = 10_000  # each node also listens on port + 10000 (the cluster bus)
MAX_PORT: Final = 65_535 - BUS_OFFSET


@dataclass(frozen=True)
class RedisCluster:
    """The nodes of a local cluster; `url` is what `endpoints.redis` takes."""

    nodes: tuple[RedisServer, ...]

    @property
    def url(self) -> str:
        return f"redis+cluster://{LOOPBACK}:{self.nodes[0].port}"

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(node.port for node in self.nodes)

    def stop(self) -> list[str]:
        """Stop every node still running; one line per node."""
        lines = []
        for node in self.nodes:
            stopped = process.stop(node.process.pid, node.process.marker)
            state = "stopped" if stopped else "was not running"
            lines.append(f"{node.NAME} :{node.port}: {state} (pid {node.process.pid})")
        return lines


def cluster_argv(binary: str, data_dir: Path, port: int) -> list[str]:
    """The single-server command line plus cluster mode (nodes.conf in the data directory)."""
    return [
        *redis_argv(binary, data_dir, port),
        "--cluster-enabled", "yes",
        "--cluster-config-file", str(data_dir / "nodes.conf"),
        "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
        "--cluster-require-full-coverage", "yes",
    ]  # fmt: skip


def slot_ranges(nodes: int) -> list[tuple[int, int]]:
    """Equal, contiguous slot ranges (first, last), one per node, covering all 16384 slots."""
    if nodes < 1:
        raise ValueError(f"a cluster needs at least one node, got {nodes}")
    bounds = [SLOTS * i // nodes for i in range(nodes + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(nodes)]


def free_cluster_ports(count: int) -> list[int]:
    """Distinct free ports whose cluster bus port (port + 10000) is free too."""
    chosen: list[int] = []
    for _ in range(1000):
        port = process.free_port()
        if port <= MAX_PORT and port not in chosen and process.port_is_free(port + BUS_OFFSET):
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise ServiceError(f"found no {count} free loopback ports below {MAX_PORT} for a cluster")


def start_redis_cluster(
    root: Path,
    *,
    ports: Sequence[int] | None = None,
    nodes: int = 3,
    timeout_s: float = 60.0,
) -> RedisCluster:
    """Start `nodes` masters under root/node-<i> (logs and pid files beside them) on `ports`
    (default: free ones), form the cluster, and return it once it serves every slot.

    On any failure the nodes started so far are stopped and ServiceError says why.
    """
    chosen = list(ports) if ports is not None else free_cluster_ports(nodes)
    binary = find_executable(REDIS_BINARY, INSTALL_HINT)
    started: list[RedisServer] = []
    try:
        for i, port in enumerate(chosen):
            node_dir = root / f"node-{i}"
            files = ProcessFiles(log_path=root / f"node-{i}.log", pid_path=root / f"node-{i}.pid")
            argv_of = partial(cluster_argv, binary, port=port)
            started.append(RedisServer.spawn_in(node_dir, argv_of, port=port, files=files))
        for node in started:
            process.started(node, timeout_s)
        cluster = RedisCluster(tuple(started))
        _form(cluster, timeout_s)
    except BaseException:
        for node in started:
            process.stop(node.process.pid, node.process.marker)
        raise
    return cluster


def _node_client(port: int) -> redis.Redis:
    return redis.Redis(host=LOOPBACK, port=port, socket_timeout=5.0, socket_connect_timeout=5.0)


def _form(cluster: RedisCluster, timeout_s: float) -> None:
    ports = cluster.ports
    clients = [_node_client(port) for port in ports]
    problem = "not checked yet"

    def formed() -> bool:
        nonlocal problem
        for port, client in zip(ports, clients, strict=True):
            info = client.cluster("INFO")
            state, known = info.get("cluster_state"), int(info.get("cluster_known_nodes", 0))
            if state != "ok" or known != len(ports):
                problem = f"node :{port} reports cluster_state {state}, {known} nodes known"
                return False
        return True

    try:
        if formed():  # restarted from its nodes.conf files: formed already
            return
        for epoch, (client, (first, last)) in enumerate(
            zip(clients, slot_ranges(len(ports)), strict=True), start=1
        ):
            client.cluster("SET-CONFIG-EPOCH", epoch)
            client.cluster("ADDSLOTSRANGE", first, last)
        for port in ports[1:]:
            clients[0].cluster("MEET", LOOPBACK, port)
        if not wait_for(formed, timeout_s, process.POLL_INTERVAL_S):
            raise ServiceError(
                f"the Redis Cluster on ports {', '.join(map(str, ports))} did not form within "
                f"{timeout_s:g} s: {problem}"
            )
    except redis.RedisError as exc:
        raise ServiceError(f"forming the Redis Cluster on ports {ports} failed: {exc}") from None
    finally:
        for client in clients:
            client.close()
