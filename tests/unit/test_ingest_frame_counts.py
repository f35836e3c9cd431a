"""Frames received as /metrics shows them: read from the connections at scrape time."""

from __future__ import annotations

import time
from dataclasses import dataclass

from prometheus_client import generate_latest

from marketstream.ingest.metrics import IngestMetrics


@dataclass
class FakeConnection:
    exchange_name: str
    frames_received: int = 0
    last_frame: float = 0.0


def test_frames_are_summed_per_exchange_when_scraped() -> None:
    metrics = IngestMetrics()
    first, second, other = (
        FakeConnection("binance"),
        FakeConnection("binance"),
        FakeConnection("okx"),
    )
    for connection in (first, second, other):
        metrics.frames.track(connection)
    registry = metrics.registry

    def frames(exchange: str) -> float | None:
        return registry.get_sample_value("marketstream_ingest_frames_total", {"exchange": exchange})

    assert frames("binance") == 0  # every tracked exchange shows up before its first frame
    first.frames_received, second.frames_received = 3, 4
    assert frames("binance") == 7
    assert frames("okx") == 0
    assert b'marketstream_ingest_frames_total{exchange="binance"} 7.0' in generate_latest(registry)


def test_the_last_frame_gauge_is_wall_clock_time() -> None:
    metrics = IngestMetrics()
    early, late = FakeConnection("kraken"), FakeConnection("kraken")
    metrics.frames.track(early)
    metrics.frames.track(late)
    before = time.time()
    early.frames_received, early.last_frame = 1, time.monotonic() - 60
    late.frames_received, late.last_frame = 1, time.monotonic()
    value = metrics.registry.get_sample_value(
        "marketstream_ingest_last_frame_timestamp_seconds", {"exchange": "kraken"}
    )
    after = time.time()
    assert value is not None
    assert before - 0.01 <= value <= after + 0.01  # the latest connection's, not the older one
