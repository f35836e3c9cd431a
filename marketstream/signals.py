"""Stopping a long-lived job on SIGINT or SIGTERM: one implementation for every daemon.

The signal only sets an event; the job sees it and shuts down in its own order (flush,
close, acknowledge). The handlers are removed again on exit so that a second run in the
same process (tests, the demo) starts from Python's defaults.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Final, TypeVar

from marketstream import event_loop

STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)
# Set by `run`'s supervisor in its children's environment: the pid they follow.
PARENT_PID_ENV: Final = "MARKETSTREAM_PARENT_PID"
_PR_SET_PDEATHSIG: Final = 1

T = TypeVar("T")


@contextmanager
def stop_event() -> Iterator[asyncio.Event]:
    """Within the running event loop: an event that SIGINT or SIGTERM sets."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    try:
        yield stop
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)


@contextmanager
def thread_stop_event() -> Iterator[threading.Event]:
    """For a threaded server (no event loop): a `threading.Event` that SIGINT or SIGTERM
    sets; the previous handlers are put back on exit. Call it from the main thread."""
    stop = threading.Event()
    previous = {signum: signal.signal(signum, lambda _s, _f: stop.set()) for signum in STOP_SIGNALS}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run_until_signal(job: Callable[[asyncio.Event], Awaitable[T]]) -> T:
    """Run `job(stop)` on a fresh (uvloop) event loop; SIGINT or SIGTERM sets `stop`."""

    follow_parent()

    async def main() -> T:
        with stop_event() as stop:
            return await job(stop)

    return event_loop.run(main())


def follow_parent(environ: Mapping[str, str] = os.environ) -> None:
    """In a supervised child: ask Linux for SIGTERM when the supervisor dies (the stop
    signal every daemon handles), so that no child outlives a supervisor killed with -9."""
    parent = environ.get(PARENT_PID_ENV)
    if parent is None or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != int(parent):  # it died before prctl: nobody would send the signal
        os.kill(os.getpid(), signal.SIGTERM)
