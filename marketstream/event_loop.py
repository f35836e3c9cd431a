"""The event loop every MarketStream process runs on: uvloop.

uvloop (libuv) cuts the loop's own cost per socket read and callback, which the hot path pays
per frame and per Redis round trip. Plain asyncio is the fallback only where no uvloop wheel
exists (Windows); everything else goes through the same `run`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop's loop factory, or asyncio's where uvloop cannot be imported."""
    try:
        import uvloop  # noqa: PLC0415 - optional on platforms without a wheel
    except ImportError:  # pragma: no cover - no uvloop wheel on this platform
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on a uvloop loop (or asyncio's, see `loop_factory`)."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)


async def wait_until_set(event: asyncio.Event, seconds: float) -> bool:
    """Wait for `event` at most `seconds`; True if it is set (a stop-aware sleep).

    `asyncio.timeout`, not `asyncio.wait_for`: on Python 3.11 wait_for returns normally when
    the event is set in the loop iteration a cancel arrives in, and the cancel is lost (a
    loop cancelled that way goes on); `asyncio.timeout` raises the cancel.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
    return event.is_set()
