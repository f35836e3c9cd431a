"""`/v1/replay` of a real `marketstream serve` over a real WebSocket against real tiers: 8
generated days of two exchanges' trades spread over QuestDB, ClickHouse and cold Parquet by a
real archive run (horizons of 2 and 4 days); the merged replay equals the tiers' own reads,
its gap markers equal the quality report's missing minutes, and limits are refused."""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from marketstream.config import ServicesConfig
from marketstream.generate.history import HistoryConfig
from marketstream.quality.report import QualityQueries, ReportInputs, collect
from marketstream.query.all_tiers import TieredQueries
from marketstream.query.hot_queries import HotQueries
from marketstream.schemas.arrow import from_arrow
from marketstream.schemas.codec import encode_record
from marketstream.schemas.columns import CANDLES, QUOTES, TRADES
from marketstream.tiers.days import day_start_ns
from marketstream.tiers.questdb_partitions import HotTier
from tests.integration.archive_tiers import (
    Tiers,
    cold_days,
    hot_days,
    load,
    start_archived,
    utc_today,
    warm_days,
)
from tests.integration.endpoints import S3Endpoint
from tests.integration.serve_process import running_serve

TOKEN = "replay-test-token-0123456789"  # noqa: S105 - a test's own token
DAYS = 8
EXCHANGES = ("binance", "okx")
WAIT_S = 300  # a hang guard, never a timing assertion
NS_PER_HOUR = 3600 * 10**9


@pytest.fixture(scope="module")
def tiers(
    services_config: ServicesConfig, tmp_path_factory: pytest.TempPathFactory, s3: S3Endpoint
) -> Iterator[Tiers]:
    history = HistoryConfig(exchanges=EXCHANGES, symbols=("BTC-USDT",), trades_per_day=200)

    def fill(bed: Tiers, first: date, last: date) -> None:
        load(bed, history, first, last)

    yield from start_archived(services_config, tmp_path_factory, s3, "serve-replay", DAYS, fill)


@pytest.fixture(scope="module")
def serving(tiers: Tiers, redis_url: str) -> Iterator[str]:
    environ = tiers.environ | {
        "MARKETSTREAM_ENDPOINTS__REDIS": redis_url,
        "MARKETSTREAM_API_TOKEN": TOKEN,
        "MARKETSTREAM_SERVE__MAX_RANGE_DAYS": "10",
        "MARKETSTREAM_SERVE__REPLAY_PAGE": "97",  # many pages per source and tier
        "MARKETSTREAM_SERVE__STREAM_BATCH": "50",
    }
    with running_serve(environ, tiers.state_dir) as (url, lines):
        yield url.replace("http://", "ws://")
        assert not [line for line in lines if "Traceback" in line], "".join(lines)


def _whole_range() -> tuple[int, int]:
    today = utc_today()
    return day_start_ns(today - timedelta(days=DAYS - 1)), day_start_ns(today + timedelta(days=1))


async def replay(base: str, **params: str) -> list[dict[str, Any]]:
    """Every message of one replay, with record batches flattened to `record` items."""
    url = f"{base}/v1/replay?{urllib.parse.urlencode({'token': TOKEN, **params})}"
    found: list[dict[str, Any]] = []
    async with connect(url, open_timeout=WAIT_S, max_size=None) as ws:
        async with asyncio.timeout(WAIT_S):
            async for text in ws:
                message = orjson.loads(text)
                if message["type"] == "records":
                    found += [{"type": "record", "record": r} for r in message["records"]]
                else:
                    found.append(message)
        assert ws.close_code == 1000, ws.close_reason
    return found


def records(messages: list[dict[str, Any]]) -> list[tuple[str, int, str]]:
    return [
        (m["record"]["exchange"], m["record"]["ts"], m["record"]["trade_id"])
        for m in messages
        if m["type"] == "record"
    ]


def tier_reads(tiers: Tiers, start: int, end: int) -> list[tuple[str, int, str]]:
    """The same range read by TieredQueries (what GET /v1/trades serves), merged by time with
    binance before okx at equal times, each exchange in its own order."""
    with HotQueries.connect(tiers.pg_url) as hot:
        queries = TieredQueries(hot, HotTier(tiers.http), tiers.warm, tiers.cold)
        rows = [
            (t.exchange, t.ts, t.trade_id)
            for exchange in EXCHANGES
            for t in queries.trades(exchange, "BTC-USDT", start, end, limit=1_000_000)
        ]
    return sorted(rows, key=lambda row: (row[1], EXCHANGES.index(row[0])))  # stable


def test_the_range_spans_hot_warm_and_cold(tiers: Tiers) -> None:
    assert hot_days(tiers, TRADES)
    assert warm_days(tiers, TRADES)
    assert cold_days(tiers, TRADES)


async def test_a_replay_across_every_tier_is_the_tiers_read_merged_in_time_order(
    serving: str, tiers: Tiers
) -> None:
    start, end = _whole_range()
    messages = await replay(
        serving,
        channels="trades:okx:BTC-USDT,trades:binance:BTC-USDT",
        start=str(start),
        end=str(end),
        speed="0",
        gaps="false",
    )
    assert messages[0]["type"] == "replay"
    assert messages[-1]["type"] == "end"
    found = records(messages)
    expected = tier_reads(tiers, start, end)
    assert len({ts // (86_400 * 10**9) for _, ts, _ in found}) == DAYS  # hot, warm and cold days
    assert found == expected
    assert messages[-1]["records"] == len(expected)
    assert messages[-1]["by_channel"] == {
        f"trades:{ex}:BTC-USDT": sum(1 for row in expected if row[0] == ex) for ex in EXCHANGES
    }
    assert messages[-1]["gaps"] == 0


async def test_every_record_type_replays_merged_with_the_others(serving: str, tiers: Tiers) -> None:
    """Trades, quotes and the exchange's 1m bars of two exchanges over two days (one warm, one
    hot): each type's records are what the tiers hold, and all of them come in time order."""
    today = utc_today()
    start, end = day_start_ns(today - timedelta(days=3)), day_start_ns(today - timedelta(days=1))
    messages = await replay(
        serving,
        exchanges="binance,okx",
        symbols="BTC-USDT",
        types="trades,quotes,candles",
        start=str(start),
        end=str(end),
        gaps="false",
    )
    got = [m["record"] for m in messages if m["type"] == "record"]
    assert [r["ts"] for r in got] == sorted(r["ts"] for r in got)
    with HotQueries.connect(tiers.pg_url) as hot:
        queries = TieredQueries(hot, HotTier(tiers.http), tiers.warm, tiers.cold)
        for spec in (TRADES, QUOTES, CANDLES):
            for exchange in EXCHANGES:
                table = queries.range_table(spec, exchange, "BTC-USDT", start, end, limit=1_000_000)
                expected = [orjson.loads(encode_record(r)) for r in from_arrow(spec, table)]
                mine = [r for r in got if r["exchange"] == exchange and
                        r["type"] == expected[0]["type"]]  # fmt: skip
                assert expected
                assert mine == expected, (spec.table, exchange)
    assert messages[-1]["records"] == len(got)


async def test_gap_markers_are_the_quality_reports_missing_minutes(
    serving: str, tiers: Tiers
) -> None:
    start = day_start_ns(utc_today() - timedelta(days=1))  # a hot day
    end = start + 6 * NS_PER_HOUR
    messages = await replay(
        serving, exchanges="binance,okx", symbols="BTC-USDT", start=str(start), end=str(end)
    )
    gaps = [m for m in messages if m["type"] == "gap"]
    with QualityQueries.connect(tiers.pg_url) as hot:
        report = collect(hot, start, end, ReportInputs(min_completeness=0.0))
    missing = sorted(
        (row.exchange, interval.start_ns, interval.end_ns)
        for row in report.instruments
        if row.symbol == "BTC-USDT"
        for interval in row.minutes.missing
    )
    assert missing  # 200 trades a day leave minutes without one
    assert sorted((g["exchange"], g["start"], g["end"]) for g in gaps) == missing
    assert messages[-1]["gaps"] == len(gaps)
    # each marker comes before the first trade after it, the records still in time order
    position: dict[str, int] = {}
    for m in messages:
        if m["type"] == "record":
            position[m["record"]["exchange"]] = m["record"]["ts"]
        elif m["type"] == "gap":
            assert position.get(m["exchange"], start) < m["start"]
    assert records(messages) == tier_reads(tiers, start, end)


async def test_paced_and_unpaced_replays_deliver_the_same_records(
    serving: str, tiers: Tiers
) -> None:
    day = day_start_ns(utc_today() - timedelta(days=3))  # a warm day
    # The hour of its first trade: the generator seeds each day by its date, and some days
    # have none in their first hour (2026-12-05's first trade is at 01:04).
    first_ts = tier_reads(tiers, day, day + 24 * NS_PER_HOUR)[0][1]
    start = first_ts - (first_ts - day) % NS_PER_HOUR
    end = start + NS_PER_HOUR  # an hour at 1000x: a few seconds
    params = {"exchanges": "binance,okx", "symbols": "BTC-USDT", "start": str(start)}
    paced = await replay(serving, **params, end=str(end), speed="1000")
    fast = await replay(serving, **params, end=str(end), speed="0")
    assert records(paced) == records(fast) == tier_reads(tiers, start, end)
    assert records(fast)


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"speed": "5000"}, "serve.replay_max_speed is 1000: refused speed=5000"),
        ({"end_days": "11"}, "serve.max_range_days is 10"),
        ({"channels": "trades:okx:*"}, "'trades:okx:*': a replay names its exchange and symbol"),
        ({"channels": "orders:okx:BTC-USDT"}, "type 'orders' is not streamed: expected one of"),
        ({"token": "wrong"}, "wrong bearer token"),
    ],
)
async def test_a_refused_replay_closes_with_1008_naming_the_limit(
    serving: str, params: dict[str, str], named: str
) -> None:
    start = day_start_ns(utc_today() - timedelta(days=1))
    days = int(params.pop("end_days", "1"))
    query = {
        "token": TOKEN,
        "channels": "trades:okx:BTC-USDT",
        "start": str(start),
        "end": str(start + days * 24 * NS_PER_HOUR),
    } | params
    url = f"{serving}/v1/replay?{urllib.parse.urlencode(query)}"
    async with connect(url, open_timeout=WAIT_S) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), WAIT_S)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008
    assert named in closed.value.rcvd.reason
