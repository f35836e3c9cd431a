"""The warm gateway (`marketstream warm-server`) as a local service on a loopback port.

The chdb engine admits one process per directory, so `services start` runs that one process
in the background and records its http:// endpoint: the pipeline, `query` and the archiver all
reach the warm tier through it with clickhouse-connect's HTTP client, as they would reach a
ClickHouse server in production.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from marketstream.errors import ServiceError
from marketstream.services.checks import clickhouse_error
from marketstream.services.process import (
    LOOPBACK,
    ServiceProcess,
    port_is_free,
    spawn,
    wait_until_answering,
)


@dataclass(frozen=True)
class WarmServer:
    process: ServiceProcess
    port: int

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"


def warm_server_argv(data_dir: Path, port: int) -> list[str]:
    """This Python running `marketstream warm-server`; the data directory is stop()'s marker."""
    return [
        sys.executable, "-m", "marketstream", "warm-server",
        "--path", str(data_dir),
        "--host", LOOPBACK,
        "--port", str(port),
    ]  # fmt: skip


def spawn_warm_server(data_dir: Path, *, port: int, log_path: Path, pid_path: Path) -> WarmServer:
    """Start the gateway in the background; wait_warm_server() tells when it answers."""
    if not port_is_free(port):
        raise ServiceError(f"warm gateway: port {LOOPBACK}:{port} is in use")
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    process = spawn(
        "warm gateway",
        warm_server_argv(data_dir, port),
        marker=str(data_dir),
        log_path=log_path,
        pid_path=pid_path,
    )
    return WarmServer(process=process, port=port)


def wait_warm_server(server: WarmServer, timeout_s: float) -> None:
    """Return once the gateway runs SELECT 1; ServiceError with its log if it does not."""
    wait_until_answering(server.process, lambda: clickhouse_error(server.url), timeout_s)


def start_warm_server(
    data_dir: Path, *, port: int, log_path: Path, pid_path: Path, timeout_s: float
) -> WarmServer:
    """Start the gateway and return once it answers (ServiceError with its log if not)."""
    server = spawn_warm_server(data_dir, port=port, log_path=log_path, pid_path=pid_path)
    wait_warm_server(server, timeout_s)
    return server
