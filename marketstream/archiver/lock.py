"""One archiver at a time: an exclusive `flock` on `<state dir>/archiver.lock`.

Two archivers would share the staging tables and drop each other's sources. The lock is the
kernel's: held by an open file description, it goes with the process however it ends,
SIGKILL included, so a crashed archiver never blocks the next one and there is no expiry to
tune (a Redis lock with a TTL would need both renewal during a long run and a guess at its
length; the archiver does not otherwise need Redis). It covers one host, like the state
directory holding it: deployments run one archiver container with that directory on a volume.
The holder writes its pid and start time into the file, for the refusal message.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from marketstream.errors import MarketStreamError

LOCK_FILE: Final = "archiver.lock"


class ArchiverBusyError(MarketStreamError):
    """Another archiver holds the lock."""


@contextlib.contextmanager
def archiver_lock(state_dir: Path) -> Iterator[Path]:
    """Hold the archiver lock in `state_dir` (created if missing) until the block ends;
    raise ArchiverBusyError at once if another process holds it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd) or "pid unknown"
            raise ArchiverBusyError(
                f"another archiver holds the lock ({holder}): {path}; "
                "one archiver runs at a time, stop it or wait for its run to end"
            ) from None
        os.ftruncate(fd, 0)
        since = datetime.now(UTC).isoformat(timespec="seconds")
        os.pwrite(fd, f"pid {os.getpid()} since {since}".encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the lock


def _read(fd: int) -> str:
    return os.pread(fd, 200, 0).decode(errors="replace").strip()
