"""All five exchanges in one ingest process: replay-server -> ingest -> a real Redis.

Binance (spot and USD-M) and Coinbase replay the real 2021 recordings; Kraken, OKX and Bybit
replay sessions in their documented wire formats (`marketstream/venues/<name>/sessions.py`), each
with one book update removed. The test checks that every non-book record arrives as the offline path
produces it, that Kraken and OKX checksums were verified, and that each removed update was
noticed (a gap or a checksum failure) and the book resynced, all visible in /metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from pathlib import Path

import pytest
import redis.asyncio

from marketstream.config import load_config
from marketstream.ingest.service import IngestService
from marketstream.replay.server import ReplayServer
from marketstream.schemas.instruments import EXCHANGES
from marketstream.schemas.records import Book
from marketstream.tiers.redis_bus import DLQ_STREAM, price_key
from marketstream.venues.base.sessions import write_session
from marketstream.venues.registry import DIALECTS, SESSIONS
from tests.integration.endpoints import CONFIG_FILE
from tests.integration.test_ingest_replay import _url, clock_free, offline_truth, published

pytestmark = pytest.mark.integration

WAIT_S = 180.0
STEPS = 120  # 12 s of exchange time per generated session
GAP_AT = 30
RESNAPSHOT_AFTER = 25  # 2.5 s: later than any exchange's paced unsubscribe + subscribe
# Subscriptions are paced by each exchange's message limit (Kraken: one channel per message,
# one message a second), so a replay at recorded speed starts some channels late, as a live
# feed would: generated sessions are compared from this far into them.
WARMUP_NS = 1_763_000_000_000 * 1_000_000 + 4 * 1_000_000_000
CHANNELS = {
    "binance": "[trades, quotes, candles, books]",
    "binance-usdm": "[trades, quotes, candles, books]",
    "coinbase": "[trades, quotes, books]",
    "kraken": "[trades, quotes, candles, books]",
    "okx": "[trades, quotes, candles, books, funding, liquidations, open_interest]",
    "bybit": "[trades, quotes, candles, books, funding, liquidations, open_interest]",
}
REAL = {
    "binance": "binance-spot.jsonl",
    "binance-usdm": "binance-usdm.jsonl",
    "coinbase": "coinbase.jsonl",
}


def recordings_for_all(recordings: Path, tmp_path: Path) -> dict[str, Path]:
    paths = {exchange: recordings / name for exchange, name in REAL.items()}
    for exchange, session in SESSIONS.items():
        path = tmp_path / f"{exchange}.jsonl"
        write_session(str(path), session(STEPS, gap_at=GAP_AT, resnapshot_after=RESNAPSHOT_AFTER))
        paths[exchange] = path
    return paths


def env_name(exchange: str) -> str:
    return exchange.upper().replace("-", "_")


def metric(service: IngestService, name: str, exchange: str) -> float:
    """The sum of a series over its other labels (symbol), read from the registry."""
    total = 0.0
    for family in service.metrics.registry.collect():
        for sample in family.samples:
            if sample.name == name and sample.labels.get("exchange") == exchange:
                total += sample.value
    return total


async def test_five_exchanges_in_one_process(
    recordings: Path, client: redis.asyncio.Redis, tmp_path: Path
) -> None:
    paths = recordings_for_all(recordings, tmp_path)
    truths = {exchange: offline_truth(path, exchange) for exchange, path in paths.items()}
    async with contextlib.AsyncExitStack() as stack:
        servers = {}
        for exchange, path in paths.items():
            real = exchange in REAL  # real recordings as fast as read; sessions at their pace
            servers[exchange] = await stack.enter_async_context(
                ReplayServer(path, DIALECTS, max_speed=real, speed=1.0)
            )
        environ = {f"MARKETSTREAM_EXCHANGES__{env_name(e)}__ENABLED": "false" for e in EXCHANGES}
        for exchange, server in servers.items():
            prefix = f"MARKETSTREAM_EXCHANGES__{env_name(exchange)}"
            symbols = sorted({r.symbol for r in truths[exchange]})
            environ |= {
                f"{prefix}__ENABLED": "true",
                f"{prefix}__URL": server.ws_url,
                f"{prefix}__REST_URL": server.http_url,
                f"{prefix}__SYMBOLS": f"[{', '.join(symbols)}]",
                f"{prefix}__CHANNELS": CHANNELS[exchange],
            }
        config = load_config(CONFIG_FILE, environ=environ)
        service = IngestService(config, redis_url=_url(client))
        assert {p.exchange.name for p in service.plans} == set(EXCHANGES)  # one process, all
        stop = asyncio.Event()
        task = asyncio.create_task(service.run(stop, metrics_port=0))
        try:
            async with asyncio.timeout(WAIT_S):
                while not all(s.finished.is_set() for s in servers.values()):
                    if task.done():
                        task.result()
                    await asyncio.sleep(0.1)
                await asyncio.sleep(0.5)  # the last frames through the publisher
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=WAIT_S)

    assert await client.xlen(DLQ_STREAM) == 0
    for exchange, truth in truths.items():
        got = await published(client, exchange)
        since = 0 if exchange in REAL else WARMUP_NS
        live = Counter(
            repr(clock_free(r)) for r in got if not isinstance(r, Book) and r.ts >= since
        )
        offline = Counter(
            repr(clock_free(r)) for r in truth if not isinstance(r, Book) and r.ts >= since
        )
        assert live == offline, exchange  # trades, quotes, candles, funding: one for one
        assert any(isinstance(r, Book) for r in got) or exchange.startswith("binance"), exchange
        traded = next(r for r in truth if not isinstance(r, Book))
        assert await client.exists(price_key(exchange, traded.symbol)), exchange

    for exchange in ("kraken", "okx"):
        assert metric(service, "marketstream_ingest_book_checksums_verified_total", exchange) > 0
    assert metric(service, "marketstream_ingest_book_checksum_failures_total", "kraken") >= 1
    for exchange in ("okx", "bybit"):
        assert metric(service, "marketstream_ingest_book_gaps_total", exchange) >= 1, exchange
    for exchange in SESSIONS:
        assert metric(service, "marketstream_ingest_book_resyncs_total", exchange) >= 1, exchange
        books = [r for r in await published(client, exchange) if isinstance(r, Book)]
        resync_ms = 1_763_000_000_000 + (GAP_AT + RESNAPSHOT_AFTER) * 100
        assert any(b.ts >= resync_ms * 1_000_000 for b in books), exchange  # books again
