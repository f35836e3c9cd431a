"""The one signal helper: SIGINT/SIGTERM set the stop event, and the handlers go away after."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from marketstream.signals import STOP_SIGNALS, run_until_signal, stop_event, thread_stop_event


@pytest.mark.parametrize("signum", STOP_SIGNALS)
def test_a_stop_signal_ends_the_job_with_its_result(signum: signal.Signals) -> None:
    async def job(stop: asyncio.Event) -> str:
        asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signum)
        await stop.wait()
        return "stopped cleanly"

    before = signal.getsignal(signum)
    assert run_until_signal(job) == "stopped cleanly"
    assert signal.getsignal(signum) == before  # Python's default again


async def test_the_loop_handlers_are_removed_on_exit() -> None:
    with stop_event() as stop:
        assert not stop.is_set()
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        assert not loop.remove_signal_handler(signum)  # False: none was left installed


def test_the_threaded_variant_sets_its_event_and_restores_the_handler() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with thread_stop_event() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(5)
    assert signal.getsignal(signal.SIGTERM) is before
