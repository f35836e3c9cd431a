"""`marketstream demo` as a user runs it: recordings in, a JSON summary out, no process left."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import orjson
import pytest

from marketstream.config import load_config
from marketstream.demo import prepare_state, run_demo
from marketstream.services import process
from marketstream.services.manager import stop_services
from marketstream.services.state import load_record
from tests.integration.endpoints import CONFIG_FILE, REPO

pytestmark = pytest.mark.integration


def test_demo_replays_recordings_into_questdb_and_summarizes(
    recordings: Path, tmp_path: Path
) -> None:
    chosen = tmp_path / "recordings"
    chosen.mkdir()
    (chosen / "binance-usdm.jsonl").symlink_to(recordings / "binance-usdm.jsonl")
    state = tmp_path / "demo-state"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MARKETSTREAM_")}
    result = subprocess.run(
        [sys.executable, "-m", "marketstream", "demo", "--recordings", str(chosen),
         "--state-dir", str(state)],
        cwd=REPO, env=environ, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    summary = orjson.loads(result.stdout)
    assert set(summary) >= {"published", "hot_rows", "latest", "freshness_ms", "dlq"}
    assert summary["published"]["trade"] == 91  # the recording's aggTrades, as normalize counts
    assert summary["published"]["quote"] == 613
    for record_type, table in (("trade", "trades"), ("quote", "quotes"), ("book", "books")):
        assert summary["hot_rows"][table] == summary["published"][record_type], table
    # exchange candles are updated while a bar forms: QuestDB keeps one row per bar
    assert 0 < summary["hot_rows"]["candles"] <= summary["published"]["candle"]
    assert summary["dlq"] == 0
    assert len(summary["latest"]) == 4
    assert summary["freshness_ms"]["p50"] is not None
    record = load_record(state)
    assert record is not None
    for recorded in record.processes.values():
        assert not process.is_ours(recorded.pid, recorded.marker)  # services were stopped


def test_a_running_demo_serves_nonzero_ingest_write_and_freshness_metrics(
    recordings: Path, tmp_path: Path
) -> None:
    """Scraped over HTTP while the demo's pipeline still runs (after it drained)."""
    chosen = tmp_path / "recordings"
    chosen.mkdir()
    (chosen / "binance-usdm.jsonl").symlink_to(recordings / "binance-usdm.jsonl")
    config = load_config(CONFIG_FILE, environ={})
    state = tmp_path / "state"
    scraped: dict[str, str] = {}

    async def scrape(urls: dict[str, str]) -> None:
        def get(url: str) -> str:
            with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
                return bytes(response.read()).decode()

        for name, url in urls.items():
            scraped[name] = await asyncio.to_thread(get, url)

    prepare_state(config, state)
    try:
        asyncio.run(run_demo(config, chosen, state, speed=None, on_drained=scrape))
    finally:
        stop_services(config, state)

    def total(text: str, name: str) -> float:
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name) and not line.startswith("#")
        )

    assert total(scraped["ingest"], "marketstream_ingest_records_total") > 0
    assert total(scraped["writer"], "marketstream_hot_records_total") > 0
    assert total(scraped["writer"], "marketstream_hot_write_seconds_count") > 0
    assert total(scraped["writer"], "marketstream_hot_receive_freshness_seconds_count") > 0
