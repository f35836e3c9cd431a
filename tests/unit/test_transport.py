"""One transport for every venue connection: the runner and the recorder share it."""

from __future__ import annotations

import ast
import random
from pathlib import Path

import pytest

import marketstream
from marketstream.config import IngestConfig
from marketstream.ingest.runner import RunnerSettings
from marketstream.retry import Backoff

INGEST = Path(marketstream.__file__).resolve().parent / "ingest"


def _websocket_client_names(path: Path) -> set[str]:
    """What a module imports from the WebSocket client, at any level."""
    return {
        alias.name
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module == "websockets.asyncio.client"
        for alias in node.names
    }


@pytest.mark.parametrize("module", ["runner.py", "recorder.py"])
def test_the_runner_and_the_recorder_connect_through_the_transport(module: str) -> None:
    """Neither opens a WebSocket itself (a second connect/subscribe/ping would drift from the
    first); both use `transport.py`, which does."""
    assert _websocket_client_names(INGEST / module) <= {"ClientConnection"}
    assert "connect" in _websocket_client_names(INGEST / "transport.py")
    imported = {
        node.module
        for node in ast.walk(ast.parse((INGEST / module).read_text()))
        if isinstance(node, ast.ImportFrom)
    }
    assert "marketstream.ingest.transport" in imported


def test_backoff_grows_with_jitter_up_to_the_cap() -> None:
    settings = RunnerSettings.from_config(IngestConfig(backoff_initial_s=0.5, backoff_max_s=10.0))
    rng = random.Random(7)
    backoff = Backoff(settings.backoff_initial_s, settings.backoff_max_s, jitter=True)
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (3, 4.0), (5, 10.0), (60, 10.0)]:
        delays = [backoff.delay(attempt, rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), attempt
        assert max(delays) - min(delays) > ceiling / 4  # jittered, not a fixed delay
