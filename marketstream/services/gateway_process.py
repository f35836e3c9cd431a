"""The warm gateway (`marketstream warm-server`) as a local service on a loopback port.

The chdb engine admits one process per directory, so `services start` runs that one process
in the background and records its http:// endpoint: the pipeline, `query` and the archiver all
reach the warm tier through it with clickhouse-connect's HTTP client, as they would reach a
ClickHouse server in production.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from marketstream.config import S3Config, WarmGatewayConfig
from marketstream.services.checks import clickhouse_error
from marketstream.services.process import (
    LOOPBACK,
    PortService,
    ProcessFiles,
)


class WarmServer(PortService):
    NAME = "warm gateway"
    URL = "http://{host}:{port}"

    def answer_error(self) -> str | None:
        """None once the gateway runs SELECT 1."""
        return clickhouse_error(self.url)


@dataclass(frozen=True)
class GatewaySetup:
    """What the gateway serves besides its engine: the cold tier, and its bounds."""

    cold: str | None = None  # a directory or s3://bucket/prefix: what file()/s3() may read
    s3: S3Config = field(default_factory=S3Config)
    limits: WarmGatewayConfig = field(default_factory=WarmGatewayConfig)


def warm_server_argv(data_dir: Path, port: int, setup: GatewaySetup | None = None) -> list[str]:
    """This Python running `marketstream warm-server`; the data directory is stop()'s marker."""
    setup = setup or GatewaySetup()
    argv = [
        sys.executable, "-m", "marketstream", "warm-server",
        "--path", str(data_dir),
        "--host", LOOPBACK,
        "--port", str(port),
        "--max-body-bytes", str(setup.limits.max_body_bytes),
        "--max-sessions", str(setup.limits.max_sessions),
        "--max-session-timeout", f"{setup.limits.max_session_timeout_s:g}",
        "--s3-region", setup.s3.region,
    ]  # fmt: skip
    if setup.cold is not None:
        argv += ["--cold", setup.cold]
    if setup.s3.endpoint_url is not None:
        argv += ["--s3-endpoint", setup.s3.endpoint_url]
    return argv


def spawn_warm_server(
    data_dir: Path,
    *,
    port: int,
    log_path: Path,
    pid_path: Path,
    setup: GatewaySetup | None = None,
    env: Mapping[str, str] | None = None,
) -> WarmServer:
    """Start the gateway in the background; `process.started` waits until it answers.

    env (default: this process's) is where the engine finds S3 credentials for s3().
    """
    files = ProcessFiles(log_path=log_path, pid_path=pid_path)
    argv_of = partial(warm_server_argv, port=port, setup=setup)
    return WarmServer.spawn_in(data_dir, argv_of, port=port, files=files, env=env)
