"""`marketstream demo` as a user runs it: recordings in, a JSON summary out, no process left."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from marketstream.config import load_config
from marketstream.ingest.normalize import normalize_recording
from marketstream.run.demo import SOURCE_TICKS, prepare_state, run_demo
from marketstream.schemas.codec import decode_record
from marketstream.schemas.columns import SPEC_BY_TABLE, SPECS, spec_of
from marketstream.services import process
from marketstream.services.manager import stop_services
from marketstream.services.state import load_record
from tests.integration.endpoints import CONFIG_FILE, REPO

pytestmark = pytest.mark.integration


def _demo(*args: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MARKETSTREAM_")}
    result = subprocess.run(
        [sys.executable, "-m", "marketstream", "demo", *args],
        cwd=REPO, env=environ, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    summary: dict[str, Any] = orjson.loads(result.stdout)
    return result, summary


def _offline(path: Path, exchange: str) -> Counter[str]:
    out = io.BytesIO()
    config = load_config(CONFIG_FILE, environ={})
    configured = config.exchanges[exchange].symbols  # type: ignore[index]
    normalize_recording(path, exchange, out, config.ingest, symbols=configured)
    return Counter(spec_of(decode_record(line)).table for line in out.getvalue().splitlines())


def test_demo_covers_five_exchanges_real_and_generated(tmp_path: Path) -> None:
    """The default demo, as on a clean clone: the shipped recordings plus generated sessions."""
    state = tmp_path / "demo-state"
    _, summary = _demo("--state-dir", str(state))
    sources = {ex: session["source"] for ex, session in summary["sessions"].items()}
    assert sources == {
        "binance": "real",
        "binance-usdm": "real",
        "coinbase": "real",
        "kraken": "generated",
        "okx": "generated",
        "bybit": "generated",
    }
    for exchange, session in summary["sessions"].items():
        counts = summary["by_exchange"][exchange]
        truth = _offline(Path(session["file"]), exchange)
        for table in ("trades", "quotes", "books", "funding", "liquidations"):
            # what ingest published is what QuestDB holds, exactly
            published = counts["published"].get(SPEC_BY_TABLE[table].record_type, 0)
            assert counts["hot_rows"].get(table, 0) == published, (exchange, table)
        for table in ("trades", "quotes", "funding"):
            # what the offline path makes of the same frames (books depend on when the live
            # runner takes its snapshots, so they are compared with what was published above)
            assert counts["hot_rows"].get(table, 0) == truth[table], (exchange, table)
        assert counts["hot_rows"]["trades"] > 0, exchange
    assert summary["by_exchange"]["binance-usdm"]["hot_rows"]["trades"] == 91
    assert summary["by_exchange"]["coinbase"]["hot_rows"]["quotes"] == 107
    assert summary["dlq"] == 0
    assert set(summary["hot_rows"]) == {spec.table for spec in SPECS}  # the new tables too
    venues = {key.split(":")[0].removesuffix("-usdm") for key in summary["latest"]}
    assert venues == {"binance", "coinbase", "kraken", "okx", "bybit", "jupiter"}
    # the 15-token poller, from answers generated in Jupiter's shape, every tick met
    ticks = SOURCE_TICKS * 15
    assert summary["sources"]["jupiter"] | {"file": ""} == {
        "source": "generated", "file": "", "ticks_met": ticks, "ticks_missed": 0,
    }  # fmt: skip
    jupiter = summary["by_exchange"]["jupiter"]
    assert jupiter["published"] == {"price": ticks}
    assert jupiter["hot_rows"] == {"prices": ticks}
    assert sum(key.startswith("jupiter:") for key in summary["latest"]) == 15


def test_demo_replays_only_the_recordings_asked_for(recordings: Path, tmp_path: Path) -> None:
    chosen = tmp_path / "recordings"
    chosen.mkdir()
    (chosen / "binance-usdm.jsonl").symlink_to(recordings / "binance-usdm.jsonl")
    state = tmp_path / "demo-state"
    _, summary = _demo("--recordings", str(chosen), "--only-recorded", "--state-dir", str(state))
    assert set(summary) >= {"published", "hot_rows", "latest", "freshness_ms", "dlq"}
    assert set(summary["sessions"]) == {"binance-usdm"}
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
        asyncio.run(
            run_demo(config, chosen, state, speed=None, on_drained=scrape, generate_missing=False)
        )
    finally:
        stop_services(config, state)

    def total(text: str, name: str) -> float:
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name) and not line.startswith("#")
        )

    assert total(scraped["ingest"], "marketstream_ingest_records_total") > 0
    assert total(scraped["writer-1"], "marketstream_hot_records_total") > 0
    assert total(scraped["writer-1"], "marketstream_hot_write_seconds_count") > 0
    assert total(scraped["writer-1"], "marketstream_hot_receive_freshness_seconds_count") > 0
