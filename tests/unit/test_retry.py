"""The one retry helper: its delays, its try-report-pause loop and its poll until a deadline."""

from __future__ import annotations

import random

import pytest

from marketstream.retry import Backoff, retry_async, wait_for


def test_the_delay_doubles_up_to_the_cap_and_jitter_keeps_half() -> None:
    backoff = Backoff(0.1, 1.0)
    assert [backoff.delay(n) for n in range(6)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    jittered = Backoff(0.1, 1.0, jitter=True)
    rng = random.Random(3)
    assert all(0.5 <= jittered.delay(60, rng) <= 1.0 for _ in range(100))


async def test_failures_are_reported_with_the_coming_pause_until_success() -> None:
    outcomes: list[Exception | str] = [OSError("a"), OSError("b"), OSError("c"), "done"]
    reported: list[tuple[str, float]] = []
    slept: list[float] = []

    async def attempt() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    result = await retry_async(
        attempt,
        Backoff(0.5, 1.5),
        retry_on=(OSError,),
        on_failure=lambda exc, pause: reported.append((str(exc), pause)),
        sleep=sleep,
    )
    assert result == "done"
    assert reported == [("a", 0.5), ("b", 1.0), ("c", 1.5)]
    assert slept == [0.5, 1.0, 1.5]


async def test_on_failure_gives_up_by_raising_and_other_errors_pass_through() -> None:
    async def refused() -> None:
        raise ConnectionRefusedError

    def give_up(exc: Exception, pause: float) -> None:
        raise RuntimeError("gave up") from exc

    with pytest.raises(RuntimeError, match="gave up"):
        await retry_async(refused, Backoff(1, 1), retry_on=(OSError,), on_failure=give_up)
    with pytest.raises(ConnectionRefusedError):
        await retry_async(refused, Backoff(1, 1), retry_on=(ValueError,), on_failure=give_up)


def test_wait_for_is_true_once_done_and_false_past_the_deadline() -> None:
    calls = iter([False, False, True])
    assert wait_for(lambda: next(calls), timeout_s=60, interval_s=0.001)
    assert not wait_for(lambda: False, timeout_s=0.01, interval_s=0.001)
