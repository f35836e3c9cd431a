"""The request budget of one source account: a token bucket (`max_rps`, `burst`) that also
holds every request while the API has asked us to wait (429 `Retry-After`, a spent quota).

Retries and hedges draw from the same bucket as first requests, so the account's limit holds
whatever the faults; a request that could only be sent after its tick's deadline is not sent.
The clock is an argument (monotonic seconds): the tests run it on a fake one.
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
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()
        self.held_until = 0.0  # monotonic; no request before it
        self.sent = 0

    def hold(self, seconds: float) -> None:
        """The API asked for a pause: no request of this account for `seconds` from now."""
        self.held_until = max(self.held_until, self._clock() + max(0.0, seconds))

    def wait_s(self) -> float:
        """Seconds until a request may go (0: now)."""
        now = self._clock()
        self._refill(now)
        until_token = 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate_per_s
        return max(until_token, self.held_until - now, 0.0)

    def try_take(self) -> bool:
        """Take a request's token if one is free right now (a hedge: never waits)."""
        if self.wait_s() > 0:
            return False
        self._tokens -= 1
        self.sent += 1
        return True

    async def take(self, deadline: float) -> bool:
        """Wait for a token, unless it would come after `deadline` (monotonic): then False
        at once, so a tick that cannot be served in time is not sent late."""
        while True:
            wait = self.wait_s()
            if wait <= 0:
                self._tokens -= 1
                self.sent += 1
                return True
            if self._clock() + wait > deadline:
                return False
            await asyncio.sleep(wait)

    def _refill(self, now: float) -> None:
        elapsed = now - self._updated
        if elapsed > 0:
            self._tokens = min(self.burst, self._tokens + elapsed * self.rate_per_s)
            self._updated = now
