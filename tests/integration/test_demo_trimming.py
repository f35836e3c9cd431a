"""`marketstream demo` under a tiny `streams.maxlen` and a fast trim: it drains, and QuestDB
holds exactly what ingest published (trimming drops only what the writers acknowledged)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from marketstream.config import load_config
from marketstream.run.demo import prepare_state, run_demo
from marketstream.services.manager import stop_services
from tests.integration.endpoints import CONFIG_FILE

pytestmark = pytest.mark.integration

OVERRIDES = {
    "MARKETSTREAM_STREAMS__MAXLEN": "50",
    "MARKETSTREAM_STREAMS__TRIM_INTERVAL_S": "0.01",
}


FRAMES = 30_000


def long_binance_recording(path: Path, frames: int) -> None:
    """A recording of `frames` Binance aggTrade frames (distinct trade ids), in the format
    `marketstream record` writes: long enough that trimming runs all along the replay."""
    url = "wss://stream.binance.com:9443/stream?streams=btcusdt@aggTrade"
    start_ms = 1_732_180_000_000
    with path.open("wb") as out:
        for i in range(frames):
            ms = start_ms + i
            data = {
                "e": "aggTrade", "E": ms, "s": "BTCUSDT", "a": i, "p": f"{100 + i % 7}.5",
                "q": "0.25", "f": i, "l": i, "T": ms, "m": bool(i % 2), "M": True,
            }  # fmt: skip
            frame = orjson.dumps({"stream": "btcusdt@aggTrade", "data": data}).decode()
            line = {"recv_ns": ms * 1_000_000, "exchange": "binance", "url": url, "frame": frame}
            out.write(orjson.dumps(line) + b"\n")


@pytest.mark.parametrize("recording", ["binance-usdm", "coinbase", "long-binance"])
def test_the_demo_drains_with_exact_counts_under_a_tiny_maxlen_and_fast_trim(
    recordings: Path, tmp_path: Path, recording: str
) -> None:
    chosen = tmp_path / "recordings"
    chosen.mkdir()
    if recording == "long-binance":
        long_binance_recording(chosen / "binance.jsonl", FRAMES)
    else:
        (chosen / f"{recording}.jsonl").symlink_to(recordings / f"{recording}.jsonl")
    config = load_config(CONFIG_FILE, environ=OVERRIDES)
    assert (config.streams.maxlen, config.streams.trim_interval_s) == (50, 0.01)
    state = tmp_path / "state"
    prepare_state(config, state)
    try:
        summary = asyncio.run(run_demo(config, chosen, state, speed=None, generate_missing=False))
    finally:
        stop_services(config, state)
    published, rows = summary["published"], summary["hot_rows"]
    assert sum(published.values()) > 10 * config.streams.maxlen  # trimming had work to do
    for record_type, table in (("trade", "trades"), ("quote", "quotes"), ("book", "books")):
        assert (table, rows[table]) == (table, published[record_type])
    assert 0 <= rows["candles"] <= published["candle"]  # one row per bar, updated in place
    assert summary["dlq"] == 0
    if recording == "long-binance":
        assert published["trade"] == FRAMES
