"""The stop-aware sleep every background loop uses, and the collector settings of a process."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from marketstream.config import RuntimeConfig
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


def test_the_collector_settings_take_effect_in_the_process() -> None:
    """In a child process: the test run's own collector is left alone."""
    code = (
        "import gc; from marketstream.config import RuntimeConfig; "
        "from marketstream.gc_settings import apply_gc_settings; "
        "apply_gc_settings(RuntimeConfig(gc_thresholds=(12345, 7, 9))); "
        "print(gc.get_threshold(), gc.get_freeze_count() > 0)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["(12345,", "7,", "9)", "True"]


@pytest.mark.parametrize("thresholds", [(0, 10, 10), (700, -1, 10)])
def test_thresholds_out_of_range_are_refused_naming_them(thresholds: tuple[int, int, int]) -> None:
    with pytest.raises(ValueError, match=r"expected \[gen0 >= 1, gen1 >= 0, gen2 >= 0\]"):
        RuntimeConfig(gc_thresholds=thresholds)
