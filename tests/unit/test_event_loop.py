"""The stop-aware sleep every background loop uses."""

from __future__ import annotations

import asyncio

import pytest

from marketstream.event_loop import wait_until_set


@pytest.mark.parametrize("set_first", [True, False])
async def test_a_cancel_in_the_iteration_the_event_is_set_is_not_lost(set_first: bool) -> None:
    """With `asyncio.wait_for` (Python 3.11) the waiter returned normally when its event was
    set just before the cancel, and a background loop cancelled that way went on."""
    for _ in range(20):
        event = asyncio.Event()
        task = asyncio.create_task(wait_until_set(event, 60))
        await asyncio.sleep(0)  # the task now waits on the event
        if set_first:
            event.set()
        task.cancel()
        event.set()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_the_event_ends_the_wait_and_says_so() -> None:
    event = asyncio.Event()
    asyncio.get_running_loop().call_soon(event.set)
    assert await wait_until_set(event, 60)
    assert not await wait_until_set(asyncio.Event(), 0.001)
