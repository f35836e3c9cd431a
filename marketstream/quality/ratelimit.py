"""A token bucket for an exchange's request weight (`Retry-After` is read in `http_headers`).

Exchanges limit REST use by weight per minute (Binance spot: 6,000; a request costs its
endpoint's weight). The bucket refills at a configured share of that limit, so a backfill
leaves room for the ingest's own book snapshots from the same address, and holds every
request while the exchange asked us to back off. Clock and sleep are arguments: the tests
run it on a fake clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

# Re-exported: the parser moved to a neutral module the polled sources may import too.
from marketstream.http_headers import retry_after_s

__all__ = ["SECONDS_PER_MINUTE", "TokenBucket", "retry_after_s", "seconds_to_next_minute"]

SECONDS_PER_MINUTE: Final = 60.0


class TokenBucket:
    """`rate_per_s` tokens a second up to `capacity`; `acquire(cost)` waits for them."""

    def __init__(
        self,
        rate_per_s: float,
        capacity: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not rate_per_s > 0 or not capacity > 0:
            raise ValueError(f"rate {rate_per_s} and capacity {capacity} must be positive")
        self.rate_per_s = rate_per_s
        self.capacity = capacity
        self._clock = clock
        self._sleep = sleep
        self._tokens = capacity
        self._updated = clock()
        self._hold_until = 0.0
        self.waited_s = 0.0  # total time spent waiting, for the summary

    @classmethod
    def per_minute(
        cls,
        weight_per_minute: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> TokenBucket:
        """Refill `weight_per_minute` a minute; a burst of at most a tenth of it (or 1)."""
        return cls(
            weight_per_minute / SECONDS_PER_MINUTE,
            max(1.0, weight_per_minute / 10),
            clock=clock,
            sleep=sleep,
        )

    def acquire(self, cost: float = 1.0) -> float:
        """Take `cost` tokens, waiting as long as needed; returns the seconds waited.

        A cost above the capacity is let through once the bucket is full, leaving it in
        debt, so a heavy request is paced rather than refused.
        """
        waited = 0.0
        while True:
            now = self._refill()
            if now < self._hold_until:
                waited += self._wait(self._hold_until - now)
                continue
            needed = min(cost, self.capacity)
            if self._tokens >= needed:
                self._tokens -= cost
                return waited
            waited += self._wait((needed - self._tokens) / self.rate_per_s)

    def hold(self, seconds: float) -> None:
        """No request for `seconds` from now (Retry-After, a weight limit nearly reached);
        the bucket is emptied, so requests resume slowly after the pause."""
        now = self._refill()
        self._hold_until = max(self._hold_until, now + max(0.0, seconds))
        self._tokens = min(self._tokens, 0.0)

    def _refill(self) -> float:
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self.capacity, self._tokens + elapsed * self.rate_per_s)
        self._updated = now
        return now

    def _wait(self, seconds: float) -> float:
        seconds = max(seconds, 1e-3)
        self._sleep(seconds)
        self.waited_s += seconds
        return seconds


def seconds_to_next_minute(now_s: float) -> float:
    """Binance counts weight per wall-clock minute: the wait until the next one starts."""
    return SECONDS_PER_MINUTE - (now_s % SECONDS_PER_MINUTE)
