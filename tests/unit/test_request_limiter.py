"""The request budget on a fake clock: rate, burst, holds, and never past a deadline."""

from __future__ import annotations

import pytest

from marketstream.ingest.polling.limiter import RequestLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_rate() -> None:
    clock = Clock()
    limiter = RequestLimiter(2.0, 3, clock=clock)
    assert [limiter.try_take() for _ in range(4)] == [True, True, True, False]
    assert limiter.wait_s() == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.try_take()
    assert not limiter.try_take()
    assert limiter.sent == 4


def test_a_hold_stops_every_request_until_it_ends() -> None:
    clock = Clock()
    limiter = RequestLimiter(10.0, 5, clock=clock)
    limiter.hold(2.0)
    limiter.hold(1.0)  # a shorter hold never shortens a longer one
    assert limiter.wait_s() == pytest.approx(2.0)
    assert not limiter.try_take()
    clock.now += 2.0
    assert limiter.try_take()


async def test_take_refuses_at_once_what_would_come_after_the_deadline() -> None:
    clock = Clock()
    limiter = RequestLimiter(1.0, 1, clock=clock)
    assert await limiter.take(deadline=clock.now + 5)
    assert not await limiter.take(deadline=clock.now + 0.5)  # the next token is 1 s away
    assert limiter.sent == 1


def test_a_bad_rate_is_refused() -> None:
    with pytest.raises(ValueError, match="rate 0"):
        RequestLimiter(0, 1)
