"""The request budget of one source account: `max_rps` with bursts of `burst`, first come first
served, and nothing while the API has asked us to wait (429 `Retry-After`, a spent quota).

Retries and hedges draw from the same budget as first requests, so the account's limit holds
whatever the faults. Each request reserves the next free send time as it asks (the generic
cell rate algorithm: a theoretical arrival time moved on by 1/rate per request), so a poll
already waiting is never overtaken by a newer tick's request; and a request whose send time
would come after its tick's deadline reserves nothing and is not sent. The clock is an
argument (monotonic seconds): the tests run it on a fake one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class RequestLimiter:
    """`rate_per_s` requests a second, at most `burst` back to back, none while held."""

    def __init__(
        self, rate_per_s: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not rate_per_s > 0 or burst < 1:
            raise ValueError(f"rate {rate_per_s} must be positive and burst {burst} at least 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._interval = 1.0 / rate_per_s
        self._tolerance = (burst - 1) * self._interval
        self._clock = clock
        self._next = clock()  # the theoretical time of the next request at the steady rate
        self.held_until = 0.0  # monotonic; no request before it
        self.sent = 0

    def hold(self, seconds: float) -> None:
        """The API asked for a pause: no request of this account for `seconds` from now."""
        self.held_until = max(self.held_until, self._clock() + max(0.0, seconds))

    def _earliest(self, now: float) -> float:
        return max(now, self._next - self._tolerance, self.held_until)

    def wait_s(self) -> float:
        """Seconds until a request asked now may go (0: now)."""
        now = self._clock()
        return self._earliest(now) - now

    def _reserve(self, at: float) -> None:
        self._next = max(self._next, at) + self._interval
        self.sent += 1

    def try_take(self) -> bool:
        """Take a send time if one is free right now (a hedge: never waits)."""
        now = self._clock()
        if self._earliest(now) > now:
            return False
        self._reserve(now)
        return True

    async def take(self, deadline: float) -> bool:
        """Reserve the next free send time and wait for it; False at once, reserving
        nothing, when it (or the end of a hold) would come after `deadline` (monotonic)."""
        now = self._clock()
        at = self._earliest(now)
        if at > deadline:
            return False
        self._reserve(at)
        mine = self._next
        try:
            await asyncio.sleep(at - now)
            while (held := self.held_until - self._clock()) > 0:  # a hold came meanwhile
                if self._clock() + held > deadline:
                    return False
                await asyncio.sleep(held)
        except asyncio.CancelledError:
            if self._next == mine:  # the last reservation: give it back
                self._next -= self._interval
                self.sent -= 1
            raise
        return True
