"""The stop-aware sleep every background loop uses, and the collector settings of a process."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from marketstream.config import RuntimeConfig
from marketstream.event_loop import wait_until_set

PAUSE_S = 0.002
HANG_GUARD_S = 5.0  # a lost cancel would keep the sleeper waiting on its event for ever


async def _sleeper(event: asyncio.Event) -> None:
    while not await wait_until_set(event, PAUSE_S):
        pass


async def test_a_cancel_arriving_as_the_pause_runs_out_still_ends_the_sleeper() -> None:
    """The cancel is timed to fire in the loop iteration where the pause ends, the case in
    which Python 3.11's `asyncio.wait_for` swallows it; done many times, since which of the two
    callbacks runs first is up to the loop."""
    loop = asyncio.get_running_loop()
    event = asyncio.Event()
    for _ in range(200):
        task = asyncio.create_task(_sleeper(event))
        await asyncio.sleep(0)  # the sleeper is now waiting, its deadline PAUSE_S away
        loop.call_at(loop.time() + PAUSE_S, task.cancel)
        done, _ = await asyncio.wait([task], timeout=HANG_GUARD_S)
        assert done, "the sleeper outlived its cancel"
        assert task.cancelled()


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
