"""ClickHouse, the warm tier: one clickhouse-connect client for both ways of running it.

`http(s)://host:port` reaches a ClickHouse server (production) or, locally, the warm
gateway (`marketstream warm-server`), which owns the engine's directory and speaks the same
HTTP interface. `chdb:///abs/path` runs the engine inside this process (tests, tools). The
engine locks its directory, so only one process can open a given path, and one process only
one path: hence the gateway.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import urllib.parse
from pathlib import Path

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from marketstream.config import redact_url
from marketstream.errors import ServiceError

# The HTTP driver logs a warning for a failed request and then raises; the exception becomes
# our one-line ServiceError, so its warning would only say the same thing twice.
logging.getLogger("clickhouse_connect.driver._backend.http_sync").setLevel(logging.ERROR)

ENGINE_IN_USE = "engine in use by another process (in-process chdb allows one process per path)"


class EngineInUseError(ServiceError):
    """The chdb directory is locked by another process's engine."""


def chdb_path(dsn: str) -> Path:
    """The absolute engine directory of a `chdb:///abs/path` DSN."""
    parts = urllib.parse.urlsplit(dsn)
    if parts.scheme != "chdb" or parts.netloc or not parts.path.startswith("/"):
        raise ServiceError(
            f"ClickHouse DSN {dsn!r} is not valid: expected chdb:///absolute/path "
            "(three slashes: the path is absolute)"
        )
    return Path(parts.path)


def engine_holder(path: Path) -> int | None:
    """The pid of another process whose engine holds path, or None if it is free or ours.

    The engine keeps an exclusive flock on `<path>/status` and writes its pid there; probing
    the lock first avoids the engine's own failure, which prints to stderr and gives no reason.
    """
    status = path / "status"
    try:
        fd = os.open(status, os.O_RDONLY)
    except OSError:
        return None  # no status file: no engine has the directory open
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _status_pid(status)
            return None if pid == os.getpid() else (pid or -1)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _status_pid(status: Path) -> int | None:
    try:
        for line in status.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("PID:"):
                return int(line.split(":", 1)[1])
    except (OSError, ValueError):
        return None
    return None


def connect(dsn: str, *, connect_timeout_s: float = 5.0) -> Client:
    """A clickhouse-connect client for a chdb:// or http(s):// DSN.

    Raises EngineInUseError when another process holds a chdb path, ServiceError otherwise.
    """
    if dsn.startswith("chdb:"):
        path = chdb_path(dsn)
        holder = engine_holder(path)
        if holder is not None:
            who = f"pid {holder}" if holder > 0 else "another process"
            raise EngineInUseError(f"ClickHouse at {dsn}: {ENGINE_IN_USE}; {who} holds it")
        path.mkdir(parents=True, exist_ok=True)
        return _open(dsn, connect_timeout_s=None)
    if dsn.startswith(("http://", "https://")):
        return _open(dsn, connect_timeout_s=connect_timeout_s)
    raise ServiceError(
        f"ClickHouse DSN {redact_url(dsn)!r} is not valid: expected chdb:///absolute/path or "
        "http(s)://host:port"
    )


def _open(dsn: str, *, connect_timeout_s: float | None) -> Client:
    try:
        if connect_timeout_s is None:
            return clickhouse_connect.get_client(dsn=dsn)
        return clickhouse_connect.get_client(dsn=dsn, connect_timeout=connect_timeout_s)
    except (ClickHouseError, OSError) as exc:
        text = str(exc).strip()
        refused = re.search(r"\[Errno \d+\] ([^\]\)\"']+)", text)
        if refused:
            raise ServiceError(
                f"ClickHouse at {redact_url(dsn)} unreachable: {refused.group(1)}"
            ) from None
        first_line = text.splitlines()[0] if text else type(exc).__name__
        password = _password(dsn)
        if password:  # the driver may quote its URL
            first_line = first_line.replace(password, "***")
        raise ServiceError(f"ClickHouse at {redact_url(dsn)}: {first_line}") from None


def _password(dsn: str) -> str | None:
    try:
        password = urllib.parse.urlsplit(dsn).password
    except ValueError:
        return None
    return urllib.parse.unquote(password) if password else None
