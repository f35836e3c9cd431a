"""Retrying with exponential backoff: one helper for every reconnect, write and wait loop.

Why not `tenacity`: the loops here differ in what they do between tries (a stop event that
cuts a pause short, a seeded random source tests replay, a counter and a health clock fed per
failure, a give-up that is itself an error), and tenacity's callbacks and its module-level
random source would make each of them longer, not shorter. What they share is small: the
delay (`Backoff`), the try-log-pause loop (`retry_async`) and the poll until a deadline
(`wait_for`).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Backoff:
    """`initial_s` doubling per failure up to `max_s`; with `jitter`, 'equal jitter': half of
    it fixed, half random, so that many clients cut off together do not return together."""

    initial_s: float
    max_s: float
    jitter: bool = False

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """The pause after failure number `attempt` + 1 (0: the first pause)."""
        ceiling = min(self.max_s, self.initial_s * 2.0 ** min(attempt, 30))
        if not self.jitter:
            return ceiling
        return ceiling / 2 + (rng or random.Random()).uniform(0, ceiling / 2)  # noqa: S311 - jitter


async def retry_async(
    attempt: Callable[[], Awaitable[T]],
    backoff: Backoff,
    *,
    retry_on: tuple[type[Exception], ...],
    on_failure: Callable[[Exception, float], None],
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> T:
    """`await attempt()` until it returns. Each failure in `retry_on` is reported to
    `on_failure(exc, pause)` (which counts and logs it, or raises to give up) before the
    pause; `sleep` may end early or raise to stop."""
    failures = 0
    while True:
        try:
            return await attempt()
        except retry_on as exc:
            pause = backoff.delay(failures)
            failures += 1
            on_failure(exc, pause)
            await sleep(pause)


def wait_for(done: Callable[[], bool], timeout_s: float, interval_s: float) -> bool:
    """Poll `done()` every `interval_s`: True once it holds, False after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)
    return True
