"""`marketstream serve` over real HTTP and WebSocket, on real services and every tier.

Generated trades (`HISTORY`, `DAYS` days up to today) are loaded into QuestDB and archived
with hot and warm horizons of `HOT_DAYS` and `WARM_DAYS`, so the range spans QuestDB,
ClickHouse and the cold Parquet. A `marketstream serve` process (uvicorn, as a user runs it)
answers; this process is the client, on the same two cores.

- latest: `GET /v1/latest?exchange=&symbol=` p50/p99 over `LATEST_REQUESTS` requests;
- candles: 1m bars of one day from each tier, p95 over `RANGE_REQUESTS` requests each;
- trades: one hour of trades (one page) from each tier, p95;
- `/v1/stream` fan-out: `STREAM_CLIENTS` WebSocket clients on one channel while ingest's
  publisher writes `STREAM_RECORDS` trades at `STREAM_RATE`/s; records/s delivered to all
  clients together, and lag p99 (client receive time minus the entry's Redis id time);
- `/v1/replay`: one day of trades from the cold tier as fast as the client reads (speed 0).

Each answer is checked (rows expected, records delivered to every client); a mismatch fails
the suite.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import websockets

from bench.local_services import load_tiered, running_services
from marketstream.config import IngestConfig, StreamsConfig
from marketstream.generate.history import HistoryConfig
from marketstream.ingest.metrics import IngestMetrics
from marketstream.ingest.publisher import Publisher, PublisherSettings
from marketstream.schemas.columns import TRADES
from marketstream.schemas.records import Trade
from marketstream.tiers.days import day_start_ns
from marketstream.tiers.redis_bus import connect_async
from marketstream.wiring import endpoint
from tests.integration.serve_process import running_serve

DAYS = 9
HOT_DAYS, WARM_DAYS = 2, 5  # days 0-1 hot, 2-4 warm, 5-8 cold
HISTORY = HistoryConfig(exchanges=("binance",), symbols=("BTC-USDT",), trades_per_day=100_000)
LATEST_REQUESTS = 500
STREAM_CLIENTS = 100
STREAM_RECORDS = 5_000
STREAM_RATE = 500  # trades/s published while 100 clients follow them: 50k deliveries/s
FAN_EXCHANGE = "okx"  # no history on it: the clients see only the fan-out trades
RANGE_REQUESTS = 30
HORIZONS = {
    "MARKETSTREAM_HORIZONS__HOT_DAYS": str(HOT_DAYS),
    "MARKETSTREAM_HORIZONS__WARM_DAYS": str(WARM_DAYS),
}
SERVE_ENV = {"MARKETSTREAM_SERVE__MAX_STREAMS_PER_CLIENT": str(STREAM_CLIENTS + 10)}


def _quantile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _timed(call: Callable[[], Any], repeats: int) -> list[float]:
    """Milliseconds of each call (the first one, warming caches, included)."""
    samples = []
    for _ in range(repeats):
        began = time.perf_counter()
        call()
        samples.append((time.perf_counter() - began) * 1000)
    return samples


def _figures(samples: list[float]) -> dict[str, float]:
    return {
        "requests": len(samples),
        "ms_p50": round(statistics.median(samples), 2),
        "ms_p95": round(_quantile(samples, 0.95), 2),
        "ms_p99": round(_quantile(samples, 0.99), 2),
    }


def _load(state: Path) -> dict[str, Any]:
    """History into QuestDB, then archived: the days each tier holds, and each day's trades
    (the generator seeds a day by its date, so a day's count is not `trades_per_day`: 55k to
    165k in the days looked at, and the time a day of candles takes follows it)."""
    loaded = load_tiered(state, HISTORY, DAYS, HORIZONS)
    return {
        "rows": sum(r for days in loaded.truth.values() for r, _ in days.values()),
        "trades_by_day": {day: rows for day, (rows, _) in loaded.truth[TRADES.table].items()},
    }


def _date(offset: int) -> date:
    return datetime.now(UTC).date() - timedelta(days=offset)


def _day(offset: int) -> tuple[int, int]:
    day = _date(offset)
    return day_start_ns(day), day_start_ns(day + timedelta(days=1))


def _rest(api: httpx.Client, redis_url: str, trades_by_day: dict[date, int]) -> dict[str, Any]:
    import redis  # noqa: PLC0415 - only here

    client = redis.Redis.from_url(redis_url)
    for i in range(50):
        client.set(f"price:{{binance}}:S{i}-USDT", f'{{"price": {100 + i}, "ts": {i}}}')
    client.close()

    def latest() -> None:
        answer = api.get("/v1/latest", params={"exchange": "binance", "symbol": "S7-USDT"})
        answer.raise_for_status()

    results: dict[str, Any] = {"latest": _figures(_timed(latest, LATEST_REQUESTS))}
    tiers = {"hot": 0, "warm": HOT_DAYS + 1, "cold": WARM_DAYS + 1}
    for tier, offset in tiers.items():
        start, end = _day(offset)
        params = {"exchange": "binance", "symbol": "BTC-USDT", "interval": "1m",
                  "start": str(start), "end": str(end), "limit": "2000"}  # fmt: skip

        def candles(params: dict[str, str] = params) -> None:
            answer = api.get("/v1/candles", params=params)
            if answer.status_code != 200:
                raise AssertionError(f"/v1/candles {params}: {answer.status_code} {answer.text}")
            bars = len(answer.json()["data"])
            if not 1000 <= bars <= 1440:
                raise AssertionError(f"1m candles of one day: {bars} bars, expected ~1440")

        ten = start + 10 * 3600 * 10**9
        hour = {"exchange": "binance", "symbol": "BTC-USDT", "start": str(ten),
                "end": str(ten + 3600 * 10**9), "limit": "100000"}  # fmt: skip
        rows = len(api.get("/v1/trades", params=hour).json()["data"])
        if rows < 100:  # generated days trade unevenly over the hours
            raise AssertionError(f"trades of one hour from {tier}: {rows} rows")

        def trades(hour: dict[str, str] = hour) -> None:
            api.get("/v1/trades", params=hour).raise_for_status()

        results[f"candles_1m_day_{tier}"] = {
            "trades": trades_by_day.get(_date(offset), 0),
            **_figures(_timed(candles, RANGE_REQUESTS)),
        }
        results[f"trades_1h_{tier}"] = {"rows": rows, **_figures(_timed(trades, RANGE_REQUESTS))}
    return results


def run() -> dict[str, Any]:
    with running_services() as (config, state):
        loaded = _load(state)
        redis_url = endpoint(config, state, "redis")
        environ = {**HORIZONS, **SERVE_ENV, "PYTHONUNBUFFERED": "1"}
        with (
            running_serve(environ, state) as (url, _lines),
            httpx.Client(base_url=url, timeout=120) as api,
        ):
            results: dict[str, Any] = {"history_rows": loaded["rows"]}
            results |= _rest(api, redis_url, loaded["trades_by_day"])
            results |= asyncio.run(_websockets(url, redis_url))
    _print(results)
    return results


async def _websockets(url: str, redis_url: str) -> dict[str, Any]:
    return {
        "stream_fan_out": await _fan_out(url.replace("http", "ws", 1), redis_url),
        "replay": await _replay(url.replace("http", "ws", 1)),
    }


async def _client(
    url: str, ready: asyncio.Event, got: list[int], lags: list[float], index: int
) -> None:
    """One /v1/stream subscriber: counts records and each one's lag behind its Redis id."""
    async with websockets.connect(f"{url}/v1/stream?channels=trades:{FAN_EXCHANGE}:BTC-USDT",
                                  max_size=None) as ws:  # fmt: skip
        first = orjson.loads(await ws.recv())
        if first["type"] != "subscribed":
            raise AssertionError(f"/v1/stream answered {first}")
        ready.set()
        while got[index] < STREAM_RECORDS:
            message = orjson.loads(await ws.recv())
            if message["type"] != "records":
                raise AssertionError(f"/v1/stream sent {message}")
            now_ms = time.time() * 1000
            for item in message["records"]:
                lags.append(now_ms - int(item["id"].split("-")[0]))
            got[index] += len(message["records"])


async def _fan_out(url: str, redis_url: str) -> dict[str, Any]:
    """STREAM_CLIENTS subscribers; ingest's publisher writes STREAM_RECORDS trades paced at
    STREAM_RATE/s; every client must get every record."""
    got: list[int] = [0] * STREAM_CLIENTS
    lags: list[float] = []
    readies = [asyncio.Event() for _ in range(STREAM_CLIENTS)]
    clients = [
        asyncio.create_task(_client(url, readies[i], got, lags, i)) for i in range(STREAM_CLIENTS)
    ]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 120)
    client = connect_async(redis_url)
    publisher = Publisher(
        client, PublisherSettings.from_config(IngestConfig(), StreamsConfig()), IngestMetrics()
    )
    flusher = asyncio.create_task(publisher.run())
    began = time.perf_counter()
    t0 = time.time_ns()
    for i in range(STREAM_RECORDS):
        ts = t0 + i * 1000
        publisher.add(Trade(FAN_EXCHANGE, "BTC-USDT", ts, ts, f"f{i}", 100.0, 1.0, "buy"))
        if i % 100 == 99:
            await asyncio.sleep(max(0.0, began + (i + 1) / STREAM_RATE - time.perf_counter()))
    await publisher.close()
    await flusher
    await asyncio.wait_for(asyncio.gather(*clients), 300)
    seconds = time.perf_counter() - began
    await client.aclose()
    delivered = sum(got)
    if delivered != STREAM_CLIENTS * STREAM_RECORDS:
        raise AssertionError(
            f"/v1/stream delivered {delivered} of {STREAM_CLIENTS} x {STREAM_RECORDS}"
        )
    return {
        "clients": STREAM_CLIENTS,
        "records_published": STREAM_RECORDS,
        "published_per_s": STREAM_RATE,
        "records_delivered_per_s": round(delivered / seconds),
        "lag_ms_p50": round(statistics.median(lags), 1),
        "lag_ms_p99": round(_quantile(lags, 0.99), 1),
    }


async def _replay(url: str) -> dict[str, Any]:
    """One day of trades from the cold tier, as fast as this client reads (speed 0)."""
    start, end = _day(WARM_DAYS + 1)
    query = f"channels=trades:binance:BTC-USDT&start={start}&end={end}&speed=0"
    records = 0
    began = time.perf_counter()
    async with websockets.connect(f"{url}/v1/replay?{query}", max_size=None) as ws:
        async for text in ws:
            message = orjson.loads(text)
            if message["type"] == "records":
                records += len(message["records"])
            elif message["type"] == "end":
                if message["records"] != records or records == 0:
                    raise AssertionError(f"/v1/replay: end says {message}, got {records}")
                break
    seconds = time.perf_counter() - began
    return {"records": records, "records_per_s": round(records / seconds)}


def _print(results: dict[str, Any]) -> None:
    latest = results["latest"]
    print(
        f"  serve: latest p50 {latest['ms_p50']} ms, p99 {latest['ms_p99']} ms "
        f"({latest['requests']} requests over HTTP)",
        flush=True,
    )
    for tier in ("hot", "warm", "cold"):
        candles, trades = results[f"candles_1m_day_{tier}"], results[f"trades_1h_{tier}"]
        print(
            f"    {tier}: 1m candles of a day ({candles['trades']:,} trades) p95 "
            f"{candles['ms_p95']} ms; one hour of trades "
            f"({trades['rows']:,} rows) p95 {trades['ms_p95']} ms",
            flush=True,
        )
    fan, replay = results["stream_fan_out"], results["replay"]
    print(
        f"    /v1/stream to {fan['clients']} clients ({fan['published_per_s']:,} trades/s "
        f"published): {fan['records_delivered_per_s']:,} records/s delivered, lag p50 "
        f"{fan['lag_ms_p50']} ms, p99 {fan['lag_ms_p99']} ms; /v1/replay of a cold day: "
        f"{replay['records_per_s']:,} records/s ({replay['records']:,} records)",
        flush=True,
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    run()
