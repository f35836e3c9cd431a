"""The request budget on a fake clock: rate, burst, holds, and never past a deadline."""

from __future__ import annotations

import asyncio

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


async def test_a_waiting_request_is_never_overtaken_by_a_later_one() -> None:
    """First come, first served: an older tick's retry waiting for its send time keeps it when
    a newer tick asks just as that time comes (a plain token bucket hands the token to
    whoever asks first once it is there, and the sleeper then misses its deadline)."""
    clock = Clock()
    limiter = RequestLimiter(1.0, 1, clock=clock)
    assert limiter.try_take()
    order: list[str] = []

    async def ask(name: str) -> None:
        if await limiter.take(deadline=clock.now + 1.5):
            order.append(name)

    older = asyncio.create_task(ask("older"))
    await asyncio.sleep(0)  # it asks, and waits (1 s) for its send time
    clock.now += 1.0  # that time has come, and the newer asks before the older wakes
    newer = asyncio.create_task(ask("newer"))
    await asyncio.gather(older, newer)
    assert order == ["older", "newer"]


async def test_a_cancelled_wait_gives_its_send_time_back() -> None:
    clock = Clock()
    limiter = RequestLimiter(1.0, 1, clock=clock)
    assert limiter.try_take()
    waiting = asyncio.create_task(limiter.take(deadline=clock.now + 5))
    await asyncio.sleep(0)
    assert limiter.wait_s() == pytest.approx(2.0)  # the next free time is after its
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert limiter.wait_s() == pytest.approx(1.0)
    assert limiter.sent == 1
