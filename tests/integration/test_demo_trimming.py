"""`marketstream demo` under a tiny `streams.maxlen` and a fast trim: it drains, and QuestDB
holds exactly what ingest published (trimming drops only what the writers acknowledged)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from marketstream.config import load_config
from marketstream.demo import prepare_state, run_demo
from marketstream.services.manager import stop_services
from tests.integration.endpoints import CONFIG_FILE

pytestmark = pytest.mark.integration

OVERRIDES = {
    "MARKETSTREAM_STREAMS__MAXLEN": "50",
    "MARKETSTREAM_STREAMS__TRIM_INTERVAL_S": "0.01",
}


@pytest.mark.parametrize("recording", ["binance-usdm", "coinbase"])
def test_the_demo_drains_with_exact_counts_under_a_tiny_maxlen_and_fast_trim(
    recordings: Path, tmp_path: Path, recording: str
) -> None:
    chosen = tmp_path / "recordings"
    chosen.mkdir()
    (chosen / f"{recording}.jsonl").symlink_to(recordings / f"{recording}.jsonl")
    config = load_config(CONFIG_FILE, environ=OVERRIDES)
    assert (config.streams.maxlen, config.streams.trim_interval_s) == (50, 0.01)
    state = tmp_path / "state"
    prepare_state(config, state)
    try:
        summary = asyncio.run(run_demo(config, chosen, state, speed=None))
    finally:
        stop_services(config, state)
    published, rows = summary["published"], summary["hot_rows"]
    assert sum(published.values()) > 10 * config.streams.maxlen  # trimming had work to do
    for record_type, table in (("trade", "trades"), ("quote", "quotes"), ("book", "books")):
        assert (table, rows[table]) == (table, published[record_type])
    assert 0 <= rows["candles"] <= published["candle"]  # one row per bar, updated in place
    assert summary["dlq"] == 0
