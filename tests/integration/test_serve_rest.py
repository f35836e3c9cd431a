"""`marketstream serve` over real HTTP against real tiers: 8 generated days of trades spread
over QuestDB, ClickHouse and the cold Parquet by a real archive run (horizons of 2 and 4
days), plus trades sharing timestamps in the hot tier; one serve process (with a token) for
the module. Polled source prices ride along: published to Redis (every entry twice), written
by the real hot writer, archived with the trades, read back by `marketstream query` and
`/v1/prices`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import httpx
import orjson
import pyarrow as pa
import pytest
import redis

from marketstream.config import ServicesConfig
from marketstream.generate.history import HistoryConfig
from marketstream.schemas.codec import decode_record
from marketstream.schemas.columns import PRICES, TRADES
from marketstream.schemas.records import Price, Trade
from marketstream.tiers.days import day_start_ns
from tests.integration.archive_tiers import (
    Tiers,
    cold_days,
    hot_days,
    load,
    start_archived,
    truth_of,
    utc_today,
    warm_days,
    write_hot,
)
from tests.integration.endpoints import REPO, S3Endpoint
from tests.integration.serve_process import metrics_url, running_serve, serve_env

TOKEN = "serve-test-token-0123456789"  # noqa: S105 - a test's own token
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DAYS = 8
SAME_TS = 1_000  # trades per shared timestamp in the hot tier (ETH-USDT)
NDJSON = "application/x-ndjson"
ARROW = "application/vnd.apache.arrow.stream"
NS_PER_S = 10**9
PRICE_TICKS = 3  # per day and token: one with every optional field, one with nulls, one bare


def day_prices(day: date) -> list[Price]:
    """One day's polled prices, ticks on whole seconds: Jupiter sends a block and no source
    time (and once no block), Birdeye a source time and no block; the last tick has no
    optional field at all."""
    start = day_start_ns(day)
    rows: list[Price] = []
    for k in range(PRICE_TICKS):
        tick = start + k * NS_PER_S
        step = day.toordinal() % 100 + k / 100
        block = 348_004_023 + 3 * k if k == 0 else None
        rows.append(
            Price("jupiter", "SOL-USD", tick, tick + 250_000_001, 147.48 + step, None, block)
            if k == PRICE_TICKS - 1
            else Price(
                "jupiter", "SOL-USD", tick, tick + 250_000_001, 147.48 + step, None, block,
                621_679_197.67, 1.29 - step,
            )
        )  # fmt: skip
        rows.append(
            Price(
                "birdeye", "BONK-USD", tick, tick + 180_000_007, 1.598090539282e-05 * (1 + step),
                tick - 7 * NS_PER_S - 123, None, 1_234_414.0 if k else None, -4.77,
            )
        )  # fmt: skip
    return rows


def all_prices() -> list[Price]:
    today = utc_today()
    return [p for d in range(DAYS - 1, -1, -1) for p in day_prices(today - timedelta(days=d))]


@pytest.fixture(scope="module")
def tiers(
    services_config: ServicesConfig,
    tmp_path_factory: pytest.TempPathFactory,
    s3: S3Endpoint,
    redis_url: str,
) -> Iterator[Tiers]:
    history = HistoryConfig(exchanges=("binance",), symbols=("BTC-USDT",), trades_per_day=300)

    def fill(bed: Tiers, first: date, last: date) -> None:
        load(bed, history, first, last)
        prices = all_prices()
        assert prices[0].ts == day_start_ns(first)
        write_hot(bed, redis_url, [*prices, *prices])  # every tick's entry replayed once

    for bed in start_archived(services_config, tmp_path_factory, s3, "serve-test", DAYS, fill):
        start = day_start_ns(utc_today())
        same = [  # three timestamps, each shared by SAME_TS trades
            Trade(
                "binance", "ETH-USDT", start + k, start + k, f"t{k}-{i:05d}", 100.0 + i, 1.0, "buy"
            )
            for k in range(3)
            for i in range(SAME_TS)
        ]
        write_hot(bed, redis_url, [*same, *day_prices(utc_today())])  # today's ticks again
        yield bed


@pytest.fixture(scope="module")
def serving(tiers: Tiers, redis_url: str) -> Iterator[tuple[str, list[str]]]:
    client = redis.Redis.from_url(redis_url)
    client.set("price:{binance}:BTC-USDT", orjson.dumps({"price": 101.5, "ts": 7, "bid": 101.0}))
    client.set("price:{okx}:ETH-USDT", orjson.dumps({"price": 3.5, "ts": 8}))
    client.set("price:{jupiter}:SOL-USD", orjson.dumps({"price": 147.5, "ts": 9}))
    client.close()
    environ = tiers.environ | {"MARKETSTREAM_ENDPOINTS__REDIS": redis_url}
    environ |= {"MARKETSTREAM_API_TOKEN": TOKEN}
    with running_serve(environ, tiers.state_dir) as (url, lines):
        yield url, lines
        assert not [line for line in lines if "Traceback" in line], "".join(lines)


@pytest.fixture(scope="module")
def api(serving: tuple[str, list[str]]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=serving[0], headers=AUTH, timeout=120) as http:
        yield http


def _range() -> dict[str, str]:
    today = utc_today()
    return {
        "start": str(day_start_ns(today - timedelta(days=DAYS - 1))),
        "end": str(day_start_ns(today + timedelta(days=1))),
    }


def _keys(rows: list[dict[str, Any]]) -> list[tuple[int, str]]:
    return [(row["ts"], row["trade_id"]) for row in rows]


def _all_pages(api: httpx.Client, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        answer = api.get(path, params=params | ({"cursor": cursor} if cursor else {}))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        rows += body["data"]
        cursor = body["next_cursor"]
        if cursor is None:
            return rows


def test_the_range_spans_hot_warm_and_cold(tiers: Tiers) -> None:
    assert hot_days(tiers, TRADES)
    assert warm_days(tiers, TRADES)
    assert cold_days(tiers, TRADES)


def test_trades_across_tiers_paged_equal_one_read(api: httpx.Client, tiers: Tiers) -> None:
    params = {"exchange": "binance", "symbol": "BTC-USDT", **_range()}
    whole = api.get("/v1/trades", params=params | {"limit": "100000"}).json()
    assert whole["next_cursor"] is None
    one_read = whole["data"]
    days = {row["ts"] // (86_400 * 10**9) for row in one_read}
    assert len(days) == DAYS  # every day, from each tier
    paged = _all_pages(api, "/v1/trades", params | {"limit": "97"})
    assert _keys(paged) == _keys(one_read)
    assert len(set(_keys(paged))) == len(paged)


def test_cursor_exact_when_many_rows_share_a_timestamp(api: httpx.Client) -> None:
    params = {"exchange": "binance", "symbol": "ETH-USDT", **_range()}
    one_read = api.get("/v1/trades", params=params | {"limit": "100000"}).json()["data"]
    assert len(one_read) == 3 * SAME_TS
    for page_size in ("7", "1000", "1001"):
        paged = _all_pages(api, "/v1/trades", params | {"limit": page_size})
        assert _keys(paged) == _keys(one_read), page_size


def test_ndjson_and_arrow_hold_the_json_rows(api: httpx.Client) -> None:
    params = {"exchange": "binance", "symbol": "ETH-USDT", **_range(), "limit": "1500"}
    body = api.get("/v1/trades", params=params).json()
    ndjson = api.get("/v1/trades", params=params, headers={"Accept": NDJSON})
    assert ndjson.headers["content-type"].startswith(NDJSON)
    assert [orjson.loads(line) for line in ndjson.text.splitlines()] == body["data"]
    assert ndjson.headers["x-next-cursor"] == body["next_cursor"]
    arrow = api.get("/v1/trades", params=params, headers={"Accept": ARROW})
    table = pa.ipc.open_stream(arrow.content).read_all()
    assert table.column("trade_id").to_pylist() == [row["trade_id"] for row in body["data"]]
    assert table.column("ts").cast(pa.int64()).to_pylist() == [row["ts"] for row in body["data"]]
    assert arrow.headers["x-next-cursor"] == body["next_cursor"]


def test_candles_from_each_tier_paged(api: httpx.Client) -> None:
    params = {"exchange": "binance", "symbol": "BTC-USDT", "interval": "1h", **_range()}
    one = api.get("/v1/candles", params=params | {"limit": "100000"}).json()
    assert one["next_cursor"] is None
    bars = [row["ts"] for row in one["data"]]
    assert bars == sorted(set(bars))
    assert len({b // (86_400 * 10**9) for b in bars}) == DAYS
    paged = _all_pages(api, "/v1/candles", params | {"limit": "5"})
    assert paged == one["data"]


def test_exchange_candles_from_each_tier_paged(api: httpx.Client) -> None:
    """source=exchange: the candles table's own bars (the generator's 1m bars, every day,
    so from each tier), paged like any record type, in every format."""
    params = {"exchange": "binance", "symbol": "BTC-USDT", "source": "exchange", **_range()}
    one = api.get("/v1/candles", params=params | {"limit": "100000"}).json()
    assert one["next_cursor"] is None
    bars = one["data"]
    assert {(row["type"], row["interval"], row["closed"]) for row in bars} == {
        ("candle", "1m", True)
    }
    opens = [row["ts"] for row in bars]
    assert opens == sorted(set(opens))
    assert len({ts // (86_400 * 10**9) for ts in opens}) == DAYS
    paged = _all_pages(api, "/v1/candles", params | {"limit": "97"})
    assert paged == bars
    arrow = api.get("/v1/candles", params=params | {"limit": "50"}, headers={"Accept": ARROW})
    table = pa.ipc.open_stream(arrow.content).read_all()
    assert table.column("ts").cast(pa.int64()).to_pylist() == opens[:50]
    assert table.column("closed").to_pylist() == [True] * 50
    first = api.get("/v1/candles", params=params | {"limit": "5"}).json()
    trades_cursor = api.get(
        "/v1/candles",
        params=params | {"source": "trades", "limit": "5", "cursor": first["next_cursor"]},
    )
    assert trades_cursor.status_code == 400
    assert "another query" in trades_cursor.json()["detail"]
    with_interval = api.get("/v1/candles", params=params | {"interval": "1h"})
    assert with_interval.status_code == 400
    assert "interval=1h applies to source=trades" in with_interval.json()["detail"]
    unknown = api.get("/v1/candles", params=params | {"source": "binance"})
    assert unknown.status_code == 422
    assert "source" in unknown.text


@pytest.mark.parametrize(
    "table", ["quotes", "books", "funding", "liquidations", "open_interest", "prices"]
)
def test_every_record_type_answers(api: httpx.Client, table: str) -> None:
    symbol = (
        "BTC-USDT-PERP" if table in ("funding", "liquidations", "open_interest") else "BTC-USDT"
    )
    answer = api.get(f"/v1/{table}", params={"exchange": "binance", "symbol": symbol, **_range()})
    assert answer.status_code == 200, answer.text
    rows = answer.json()["data"]
    if table == "quotes":  # the generator writes the quote each trade met
        assert rows
        assert all(row["type"] == "quote" for row in rows)


def test_latest_from_redis(api: httpx.Client) -> None:
    every = api.get("/v1/latest").json()["data"]
    assert [(r["exchange"], r["symbol"]) for r in every] == [
        ("binance", "BTC-USDT"),
        ("jupiter", "SOL-USD"),
        ("okx", "ETH-USDT"),
    ]
    source = api.get("/v1/latest", params={"exchange": "jupiter"}).json()["data"]
    assert source == [{"exchange": "jupiter", "symbol": "SOL-USD", "price": 147.5, "ts": 9}]
    one = api.get("/v1/latest", params={"exchange": "binance", "symbol": "BTC-USDT"}).json()
    assert one["data"] == [
        {"exchange": "binance", "symbol": "BTC-USDT", "price": 101.5, "ts": 7, "bid": 101.0}
    ]
    assert api.get("/v1/latest", params={"exchange": "okx"}).json()["data"][0]["price"] == 3.5
    bad = api.get("/v1/latest", params={"exchange": "nowhere"})
    assert bad.status_code == 400
    assert "nowhere" in bad.json()["detail"]


# --- polled source prices ----------------------------------------------------------------------


def _query(tiers: Tiers, *args: str) -> subprocess.CompletedProcess[str]:
    """`marketstream query ARGS` on the bed's tiers, as a user runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETSTREAM_")}
    return subprocess.run(
        [sys.executable, "-m", "marketstream", "query", *args, "--state-dir", str(tiers.state_dir)],
        cwd=REPO,
        env=env | tiers.environ,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_prices_span_the_tiers_one_row_per_tick(tiers: Tiers) -> None:
    """Written through Redis and the hot writer twice (same batch) and today's a third time
    (another transaction): one row per tick, and the archiver moved and verified the days."""
    hot, warm, cold = (days(tiers, PRICES) for days in (hot_days, warm_days, cold_days))
    assert hot
    assert warm
    assert cold
    assert len(hot) + len(warm) + len(cold) == len(hot | warm | cold)  # each day in one tier
    assert hot | warm | cold == truth_of(all_prices())["prices"]


@pytest.mark.parametrize(("source", "symbol"), [("jupiter", "SOL-USD"), ("birdeye", "BONK-USD")])
def test_prices_read_back_exactly_through_query_and_serve(
    tiers: Tiers, api: httpx.Client, source: str, symbol: str
) -> None:
    want = [p for p in all_prices() if (p.exchange, p.symbol) == (source, symbol)]
    assert len({p.ts // (86_400 * NS_PER_S) for p in want}) == DAYS
    assert any(p.block is None for p in want)  # Jupiter's null block, Birdeye's every block
    assert any(p.source_ts is None or p.liquidity is None for p in want)
    bounds = _range()
    cli = _query(
        tiers, "prices", "--exchange", source, "--symbol", symbol,
        "--start", bounds["start"], "--end", bounds["end"], "--tier", "all",
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert [decode_record(line) for line in cli.stdout.splitlines()] == want
    params = {"exchange": source, "symbol": symbol, **bounds}
    paged = _all_pages(api, "/v1/prices", params | {"limit": "4"})
    assert [decode_record(orjson.dumps(row)) for row in paged] == want
    arrow = api.get("/v1/prices", params=params | {"limit": "1000"}, headers={"Accept": ARROW})
    table = pa.ipc.open_stream(arrow.content).read_all()
    assert table.column("block").to_pylist() == [p.block for p in want]
    assert table.column("source_ts").cast(pa.int64()).to_pylist() == [p.source_ts for p in want]


def test_query_latest_and_hot_prices_of_a_source(tiers: Tiers) -> None:
    newest = day_prices(utc_today())[-2]  # Jupiter's last tick of today
    latest = _query(tiers, "latest", "--exchange", "jupiter")
    assert latest.returncode == 0, latest.stderr
    assert [orjson.loads(line) for line in latest.stdout.splitlines()] == [
        {"exchange": "jupiter", "symbol": "SOL-USD", "price": newest.price, "ts": newest.ts}
        | {"bid": None, "ask": None}
    ]
    bounds = _range()
    hot = _query(
        tiers, "prices", "--exchange", "jupiter", "--symbol", "SOL-USD",
        "--start", bounds["start"], "--end", bounds["end"], "--tier", "hot", "--limit", "2",
    )  # fmt: skip
    assert hot.returncode == 0, hot.stderr
    first_hot_day = min(hot_days(tiers, PRICES))
    want = [p for p in day_prices(first_hot_day) if p.exchange == "jupiter"][:2]
    assert [decode_record(line) for line in hot.stdout.splitlines()] == want
    assert "the first 2 prices only (--limit)" in hot.stderr


def test_reports_health_and_metrics(api: httpx.Client) -> None:
    health = api.get("/healthz", headers={"Authorization": ""})  # open without a token
    assert health.status_code == 200, health.text
    assert set(health.json()["checks"]) == {"redis", "questdb", "warm", "cold"}
    status = api.get("/v1/archive").json()
    assert {t["tier"] for t in status["tiers"]} >= {"hot", "warm", "cold"}
    quality = api.get("/v1/quality", params={"since": "1d"})
    assert quality.status_code == 200, quality.text
    assert "instruments" in quality.json() or quality.json()
    assert api.get("/docs").status_code == 200
    assert api.get("/openapi.json").json()["paths"]["/v1/trades"]
    metrics = api.get("/metrics").text
    assert (
        'marketstream_serve_requests_total{method="GET",route="/v1/trades",status="200"}' in metrics
    )


def test_metrics_port_serves_prometheus_without_the_token(
    api: httpx.Client, serving: tuple[str, list[str]]
) -> None:
    """Prometheus scrapes the API's own port without a secret, as for every daemon;
    the API's /metrics stays behind the token."""
    assert api.get("/v1/latest").status_code == 200
    url = metrics_url(serving[1])
    assert url.startswith("http://127.0.0.1:")
    assert url != f"{api.base_url}metrics"
    scraped = httpx.get(url, timeout=30)
    assert scraped.status_code == 200
    assert 'marketstream_serve_requests_total{method="GET",route="/v1/latest",status="200"}' in (
        scraped.text
    )
    health = httpx.get(url.removesuffix("/metrics") + "/healthz", timeout=30)
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "api": "listening"}
    assert api.get("/metrics", headers={"Authorization": ""}).status_code == 401


def test_each_limit_refused_with_its_name(api: httpx.Client) -> None:
    base = {"exchange": "binance", "symbol": "BTC-USDT"}
    wide = api.get("/v1/trades", params=base | {"start": "2024-01-01", "end": "2024-03-01"})
    assert wide.status_code == 400
    assert "max_range_days" in wide.json()["detail"]
    many = api.get("/v1/trades", params=base | _range() | {"limit": "100001"})
    assert many.status_code == 400
    assert "max_limit" in many.json()["detail"]
    assert "100001" in many.json()["detail"]
    garbled = api.get("/v1/trades", params=base | _range() | {"cursor": "bm90LWEtY3Vyc29y"})
    assert garbled.status_code == 400
    assert "cursor" in garbled.json()["detail"]
    first = api.get("/v1/trades", params=base | _range() | {"limit": "3"}).json()
    other = api.get(
        "/v1/trades",
        params={**base, "symbol": "ETH-USDT", **_range(), "cursor": first["next_cursor"]},
    )
    assert other.status_code == 400
    assert "another query" in other.json()["detail"]
    bad_symbol = api.get("/v1/trades", params={**base, "symbol": "btc/usdt", **_range()})
    assert bad_symbol.status_code == 400
    assert "btc/usdt" in bad_symbol.json()["detail"]
    bad_interval = api.get("/v1/candles", params=base | _range() | {"interval": "7m"})
    assert bad_interval.status_code == 400
    assert "7m" in bad_interval.json()["detail"]


def test_missing_or_wrong_token_refused(api: httpx.Client) -> None:
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong"}):
        for path in ("/v1/latest", "/metrics", "/docs", "/v1/archive"):
            answer = api.get(path, headers=headers)
            assert answer.status_code == 401, (path, headers)
            assert TOKEN not in answer.text
            assert answer.headers["www-authenticate"] == "Bearer"


def test_cors_off_by_default(api: httpx.Client) -> None:
    origin = {"Origin": "https://ui.example.com"}
    answer = api.get("/v1/latest", headers=origin)
    assert answer.status_code == 200
    assert "access-control-allow-origin" not in answer.headers
    preflight = api.options("/v1/latest", headers=origin | {"Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in preflight.headers


def test_refuses_a_non_loopback_host_without_a_token(tiers: Tiers) -> None:
    argv = [sys.executable, "-m", "marketstream", "serve", "--host", "0.0.0.0", "--port", "0"]  # noqa: S104
    done = subprocess.run(
        argv,
        cwd=REPO,
        env=serve_env(tiers.environ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "MARKETSTREAM_API_TOKEN" in done.stderr
