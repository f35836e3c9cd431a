"""The reconnect backoff: grows while sessions bring nothing, starts over after frames."""

from __future__ import annotations

import random

from marketstream.config import IngestConfig
from marketstream.ingest.runner import ReconnectBackoff, RunnerSettings


def test_the_wait_grows_without_frames_and_starts_over_after_a_session_with_frames() -> None:
    settings = RunnerSettings.from_config(IngestConfig(backoff_initial_s=0.5, backoff_max_s=30.0))
    backoff = ReconnectBackoff(settings, random.Random(7))
    empty = [backoff.after_session(received_frames=False) for _ in range(8)]
    assert empty[-1] >= settings.backoff_max_s / 2  # grown to the cap (half fixed, half jitter)
    assert all(delay <= settings.backoff_max_s for delay in empty)
    after_frames = backoff.after_session(received_frames=True)
    assert after_frames <= settings.backoff_initial_s
    assert backoff.attempt == 0
    assert backoff.after_session(received_frames=False) <= 2 * settings.backoff_initial_s
