"""A local redis-server (Debian's package) on a loopback port, with AOF like production."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import redis

from marketstream.errors import ServiceError
from marketstream.services.process import (
    LOOPBACK,
    PortService,
    ProcessFiles,
    find_executable,
    started,
)
from marketstream.tiers import redis_bus

REDIS_BINARY = "redis-server"
INSTALL_HINT = "install Debian's redis-server (`make redis`, or apt-get install redis-server)"


class RedisServer(PortService):
    NAME = "redis-server"
    URL = "redis://{host}:{port}/0"

    def answer_error(self) -> str | None:
        return redis_error(self.url)


def redis_argv(binary: str, data_dir: Path, port: int) -> list[str]:
    """The command line: durable like production (AOF, fsync every second), no RDB snapshots.

    `--set-proc-title no` keeps the arguments in /proc/<pid>/cmdline, where stop() looks for
    the data directory to be sure a pid is still this server.
    """
    return [
        binary,
        "--bind", LOOPBACK,
        "--port", str(port),
        "--dir", str(data_dir),
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--save", "",
        "--daemonize", "no",
        "--logfile", "",  # to stdout, which spawn() sends to the log file
        "--set-proc-title", "no",
    ]  # fmt: skip


def spawn_redis(data_dir: Path, *, port: int, log_path: Path, pid_path: Path) -> RedisServer:
    """Start redis-server in the background; `process.started` waits until it answers."""
    binary = find_executable(REDIS_BINARY, INSTALL_HINT)
    files = ProcessFiles(log_path=log_path, pid_path=pid_path)
    argv_of = partial(redis_argv, binary, port=port)
    return RedisServer.spawn_in(data_dir, argv_of, port=port, files=files)


def redis_error(url: str) -> str | None:
    """None when the server at url answers PING, else why not."""
    try:
        client = redis_bus.connect(url, timeout_s=2.0)
    except ServiceError as exc:
        return str(exc)
    try:
        client.ping()
    except redis.RedisError as exc:
        return str(exc) or type(exc).__name__
    finally:
        client.close()
    return None


def start_redis(
    data_dir: Path, *, port: int, log_path: Path, pid_path: Path, timeout_s: float
) -> RedisServer:
    """Start redis-server and return once it answers PING (ServiceError with its log if not)."""
    return started(
        spawn_redis(data_dir, port=port, log_path=log_path, pid_path=pid_path), timeout_s
    )
