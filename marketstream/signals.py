"""Stopping a long-lived job on SIGINT or SIGTERM: one implementation for every daemon.

The signal only sets an event; the job sees it and shuts down in its own order (flush,
close, acknowledge). The handlers are removed again on exit so that a second run in the
same process (tests, the demo) starts from Python's defaults.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Final, TypeVar

STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)

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
    """Run `job(stop)` on a fresh event loop; SIGINT or SIGTERM sets `stop`."""

    async def main() -> T:
        with stop_event() as stop:
            return await job(stop)

    return asyncio.run(main())
