"""Hot-tier queries against a real QuestDB, over its PG wire, on records written over ILP.

The data are synthetic instruments (`HQ*`) that no other test writes, with unique
nanosecond timestamps and prices/sizes that are exact binary fractions, so that candles
computed here in Python must equal QuestDB's to the last bit.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import cast

import msgspec.structs
import orjson
import psycopg
import pytest
from psycopg.rows import TupleRow
from questdb import Sender

from marketstream.errors import ServiceError
from marketstream.query.hot_queries import (
    INTERVALS,
    HotQueries,
    LatestPrice,
    QueryInputError,
    RangeQuery,
    bar_ceil,
    format_ns,
    pg_target,
)
from marketstream.schemas.codec import decode_record
from marketstream.schemas.columns import CANDLES
from marketstream.schemas.records import (
    Candle,
    Instrument,
    Liquidation,
    OpenInterest,
    Quote,
    Record,
    Trade,
)
from marketstream.services import process
from marketstream.tiers import questdb_tables
from marketstream.tiers.questdb_rows import records_from_result, write_rows
from tests.integration.endpoints import REPO, QuestDBEndpoints

pytestmark = pytest.mark.integration

S = 10**9
MINUTE = 60 * S
DAY = 86_400 * S
D = 1_763_596_800 * S  # 2025-11-20T00:00:00Z
EX = "okx"
DAY_SYMBOL = "HQA-USDT"  # a day of trades (and a few the next day): candles
FEW_SYMBOL = "HQB-USDT"  # a few trades and quotes: latest values, closed bars
QUOTE_ONLY = ("bybit", "HQC-USDT-PERP")  # quotes only: the price falls back to the quote
WAIT_S = 60.0


def day_trades() -> list[Trade]:
    """~2,500 trades on D at unique ns times (dense in the first minutes), 20 on D+1."""
    rng = random.Random(5)
    times = set(rng.sample(range(D, D + DAY), 2000))
    times |= set(rng.sample(range(D, D + 3 * MINUTE), 500))  # several per second: 1s bars
    times |= set(rng.sample(range(D + DAY, D + DAY + 2 * 3600 * S), 20))
    return [
        Trade(
            EX,
            DAY_SYMBOL,
            ts,
            ts + rng.randrange(1, 10**6),
            f"a{i}",
            100.0 + rng.randrange(-400, 400) / 4,  # quarter steps: exact doubles
            rng.randrange(1, 640) / 64,  # sums of 1/64ths stay exact
            rng.choice(("buy", "sell")),
        )
        for i, ts in enumerate(sorted(times))
    ]


def few_trades() -> list[Trade]:
    return [
        Trade(EX, FEW_SYMBOL, D + 10 * S + 1, D + 10 * S + 2, "b1", 50.25, 1.5, "buy"),
        Trade(EX, FEW_SYMBOL, D + 70 * S + 3, D + 70 * S + 9, "b2", 50.5, 0.25, "sell"),
        Trade(EX, FEW_SYMBOL, D + 75 * S + 999_999_999, D + 76 * S, "b3", 50.0, 2.0, "buy"),
    ]


def quotes() -> list[Quote]:
    exchange, symbol = QUOTE_ONLY
    return [
        Quote(EX, FEW_SYMBOL, D + 5 * S, D + 5 * S + 1, 50.0, 1.0, 50.5, 2.0, 50.25),
        Quote(EX, FEW_SYMBOL, D + 80 * S + 7, D + 80 * S + 8, 49.75, None, 50.25, None, None),
        Quote(exchange, symbol, D + 1, D + 2, 10.0, 1.0, 11.0, 1.0, 10.25),
        Quote(exchange, symbol, D + 3, D + 4, 10.5, 1.0, 11.5, 1.0, None),
    ]


def expected_candles(
    trades: Sequence[Trade], interval: str, start: int, end: int, closed: bool = True
) -> list[Candle]:
    """Bars opening in [start, end), computed the plain way."""
    step = INTERVALS[interval]
    low, high = bar_ceil(start, step), bar_ceil(end, step)
    bars: dict[int, list[Trade]] = {}
    for trade in sorted(trades, key=lambda t: t.ts):
        if low <= trade.ts < high:
            bars.setdefault(trade.ts // step * step, []).append(trade)
    return [
        Candle(
            EX,
            bar[0].symbol,
            interval,
            ts,
            bar[0].price,
            max(t.price for t in bar),
            min(t.price for t in bar),
            bar[-1].price,
            sum(t.size for t in bar),
            len(bar),
            closed,
        )
        for ts, bar in sorted(bars.items())
    ]


def exchange_candles() -> list[Candle]:
    """What the exchange would publish for three of DAY_SYMBOL's minutes."""
    trades = day_trades()
    return [
        bar
        for bar in expected_candles(trades, "1m", D, D + DAY)
        if bar.ts in (D, D + 2 * MINUTE, D + 600 * MINUTE)
    ]


PERP = "HQD-USDT-PERP"  # liquidations and open interest


def liquidations() -> list[Liquidation]:
    """In time order; three at one nanosecond, in (side, price, size) order."""
    return [
        Liquidation(EX, PERP, D + 5 * S + 3, D + 5 * S + 9, "buy", 100.5, 0.25),
        Liquidation(EX, PERP, D + 5 * S + 3, D + 5 * S + 9, "buy", 100.5, 0.5),
        Liquidation(EX, PERP, D + 5 * S + 3, D + 5 * S + 8, "sell", 99.75, 2.0),
        *(Liquidation(EX, PERP, D + i * MINUTE + 1, D + i * MINUTE + 5, "sell", 98.0 - i, 1.0)
          for i in range(1, 6)),
    ]  # fmt: skip


def open_interest() -> list[OpenInterest]:
    return [
        OpenInterest(EX, PERP, D + i * 5 * MINUTE + 7, D + i * 5 * MINUTE + 11, 1000.0 + i,
                     None if i % 2 else (1000.0 + i) * 100.0)
        for i in range(6)
    ]  # fmt: skip


def instrument_rows() -> list[Instrument]:
    """Two reads of okx's perpetual (the second newer, halted), a future and a bybit spot."""
    perp = Instrument(EX, PERP, D + S, "HQD-USDT-SWAP", "linear_perpetual", "HQD", "USDT",
                      "USDT", 0.01, 1.0, 0.25, 1.0, None, "trading")  # fmt: skip
    return [
        perp,
        msgspec.structs.replace(perp, ts=D + 3600 * S + 5, status="halted"),
        Instrument(EX, "HQD-USD-20251226", D + S, "HQD-USD-251226", "inverse_future", "HQD",
                   "USD", "HQD", 100.0, 1.0, 0.5, 1.0, D + 36 * DAY + 8 * 3600 * S, "trading"),
        Instrument("bybit", "HQD-USDT", D + 2 * S, "HQDUSDT", "spot", "HQD", "USDT", "USDT",
                   1.0, 1.0, 0.001, 0.01, None, "trading"),
    ]  # fmt: skip


_TABLES = ("trades", "quotes", "candles", "liquidations", "open_interest", "instruments")


def _settled(questdb: QuestDBEndpoints) -> bool:
    names = ", ".join(f"'{name}'" for name in _TABLES)
    tables = questdb.http.exec(
        f"SELECT name, writerTxn, sequencerTxn FROM wal_tables() WHERE name IN ({names})"
    )["dataset"]
    views = questdb.http.exec(
        "SELECT view_status, refresh_base_table_txn, base_table_txn FROM materialized_views() "
        f"WHERE view_name = '{questdb_tables.OHLCV_1M_VIEW}'"
    )["dataset"]
    return (
        len(tables) == len(_TABLES)
        and all(writer == sequencer for _, writer, sequencer in tables)
        and len(views) == 1
        and views[0][0] == "valid"
        and views[0][1] == views[0][2]
    )


@pytest.fixture(scope="module")
def hot_data(questdb: QuestDBEndpoints) -> Iterator[QuestDBEndpoints]:
    """Tables and views created (twice: idempotent), the data written, WAL and view applied.

    The session's QuestDB is shared and other modules count whole tables (the store layout
    round trip), so the tables written here are dropped afterwards; whoever needs them next
    creates them again, as every module does.
    """
    for _ in range(2):
        for statement in questdb_tables.create_all_sql() + questdb_tables.create_views_sql():
            questdb.http.exec(statement)
    records: list[Record] = [
        *day_trades(), *few_trades(), *quotes(), *exchange_candles(),
        *reversed(liquidations()), *open_interest(), *instrument_rows(),
    ]  # fmt: skip
    with Sender.from_conf(questdb.ilp_conf) as sender:
        write_rows(sender, records)
        sender.flush()
    deadline = time.monotonic() + WAIT_S
    while not _settled(questdb):
        if time.monotonic() > deadline:
            pytest.fail(f"QuestDB did not apply the writes within {WAIT_S} s")
        time.sleep(0.05)
    yield questdb
    questdb.http.exec(f"DROP MATERIALIZED VIEW IF EXISTS {questdb_tables.OHLCV_1M_VIEW}")
    for table in _TABLES:
        questdb.http.exec(f"DROP TABLE IF EXISTS {table}")


@pytest.fixture
def hot(hot_data: QuestDBEndpoints) -> Iterator[HotQueries]:
    with HotQueries.connect(hot_data.pg_url, environ={}) as queries:
        yield queries


# --- latest -----------------------------------------------------------------------------------


def test_latest_trade_and_quote_per_symbol(hot: HotQueries) -> None:
    assert hot.latest_trade(EX, FEW_SYMBOL) == few_trades()[-1]
    assert hot.latest_trade(EX, DAY_SYMBOL) == day_trades()[-1]
    assert hot.latest_quote(EX, FEW_SYMBOL) == quotes()[1]  # NULL sizes come back as None
    assert hot.latest_quote(*QUOTE_ONLY) == quotes()[3]
    assert hot.latest_trade(*QUOTE_ONLY) is None
    assert hot.latest_trade("kraken", FEW_SYMBOL) is None


def test_latest_prices_follow_the_redis_price_key(hot: HotQueries) -> None:
    few = LatestPrice(EX, FEW_SYMBOL, 50.0, D + 80 * S + 7, 49.75, 50.25)  # quote is newer
    day = LatestPrice(EX, DAY_SYMBOL, day_trades()[-1].price, day_trades()[-1].ts)
    quote_only = LatestPrice(*QUOTE_ONLY, price=11.0, ts=D + 3, bid=10.5, ask=11.5)  # the mid

    okx = [p for p in hot.latest_prices(EX) if p.symbol.startswith("HQ")]
    assert okx == [day, few]
    everywhere = hot.latest_prices()
    assert {day, few, quote_only} <= set(everywhere)
    assert everywhere == sorted(everywhere, key=lambda p: (p.exchange, p.symbol))
    assert hot.latest_prices(symbol=QUOTE_ONLY[1]) == [quote_only]
    assert hot.latest_prices(EX, QUOTE_ONLY[1]) == []


# --- trades -----------------------------------------------------------------------------------


def test_trades_in_a_range_round_trip_every_nanosecond(hot: HotQueries) -> None:
    trades = day_trades()
    start, end = trades[100].ts, trades[160].ts
    assert hot.trades(EX, DAY_SYMBOL, start, end) == trades[100:160]
    assert hot.trades(EX, DAY_SYMBOL, start + 1, end + 1) == trades[101:161]
    assert hot.trades(EX, DAY_SYMBOL, start - 1, start) == []
    assert hot.trades(EX, DAY_SYMBOL, start, start + 1) == [trades[100]]
    assert hot.trades(EX, DAY_SYMBOL, start, end, limit=7) == trades[100:107]
    assert hot.trades(EX, DAY_SYMBOL, D, D + 2 * DAY, limit=10**6) == trades
    assert any(t.ts % 1000 for t in trades)  # sub-microsecond digits were at stake


# --- liquidations, open interest, instruments -------------------------------------------------


def test_liquidations_in_a_range_in_time_then_key_order(hot: HotQueries) -> None:
    rows = liquidations()
    assert hot.records(RangeQuery(Liquidation, EX, PERP, D, D + DAY)) == rows
    assert hot.records(RangeQuery(Liquidation, EX, PERP, D + 5 * S + 3, D + 5 * S + 4)) == rows[:3]
    assert hot.records(RangeQuery(Liquidation, EX, PERP, D, D + DAY, limit=2)) == rows[:2]
    assert (
        hot.records(RangeQuery(Liquidation, EX, PERP, D + 5 * S + 4, D + 2 * MINUTE + 1))
        == rows[3:4]
    )
    assert hot.records(RangeQuery(Liquidation, "bybit", PERP, D, D + DAY)) == []


def test_open_interest_in_a_range_keeps_missing_values(hot: HotQueries) -> None:
    rows = open_interest()
    assert hot.records(RangeQuery(OpenInterest, EX, PERP, D, D + DAY)) == rows
    assert hot.records(RangeQuery(OpenInterest, EX, PERP, rows[1].ts, rows[3].ts)) == rows[1:3]
    assert rows[1].value is None
    assert hot.records(RangeQuery(OpenInterest, EX, PERP, D, D + DAY, limit=1)) == rows[:1]


def test_instruments_are_the_newest_row_per_exchange_and_symbol(hot: HotQueries) -> None:
    _, newer, future, spot = instrument_rows()
    assert [i for i in hot.instruments() if i.symbol.startswith("HQD")] == [spot, future, newer]
    assert hot.instruments(EX) == [future, newer]
    assert hot.instruments("bybit") == [spot]
    assert hot.instruments("kraken") == []
    with pytest.raises(QueryInputError, match="exchange 'nyse' is not known"):
        hot.instruments("nyse")


# --- candles ----------------------------------------------------------------------------------


@pytest.mark.parametrize("interval", ["1s", "1m", "5m", "1h", "1d"])
def test_candles_from_trades_per_interval(hot: HotQueries, interval: str) -> None:
    start, end = (D, D + 4 * MINUTE) if interval == "1s" else (D, D + 2 * DAY)
    expected = expected_candles(day_trades(), interval, start, end)
    assert len(expected) > (1 if interval == "1d" else 2)
    assert hot.ohlcv(EX, DAY_SYMBOL, interval, start, end, source="trades") == expected
    assert hot.ohlcv(EX, DAY_SYMBOL, interval, start, end) == expected  # 1m: the view


@pytest.mark.parametrize("interval", ["1m", "5m", "1h"])
def test_a_range_off_the_bar_grid_gives_whole_bars_opening_inside_it(
    hot: HotQueries, interval: str
) -> None:
    start, end = D + 7 * MINUTE + 123, D + 5 * 3600 * S + 1
    candles = hot.ohlcv(EX, DAY_SYMBOL, interval, start, end)
    assert candles == expected_candles(day_trades(), interval, start, end)
    step = INTERVALS[interval]
    assert candles[0].ts == bar_ceil(start, step)
    assert candles[-1].ts < end


def test_the_1m_view_equals_sampling_the_trades(hot_data: QuestDBEndpoints) -> None:
    with HotQueries.connect(hot_data.pg_url, environ={}) as hot:
        for symbol in (DAY_SYMBOL, FEW_SYMBOL):
            from_view = hot.ohlcv(EX, symbol, "1m", D, D + 2 * DAY)
            sampled = hot.ohlcv(EX, symbol, "1m", D, D + 2 * DAY, source="trades")
            assert from_view == sampled
            assert len(from_view) > 1
    answer = hot_data.http.exec(
        "SELECT view_name, base_table_name, refresh_type FROM materialized_views()"
    )
    assert [questdb_tables.OHLCV_1M_VIEW, "trades", "immediate"] in answer["dataset"]


def test_candles_from_trades_agree_with_the_exchange_candles(
    hot: HotQueries, hot_data: QuestDBEndpoints
) -> None:
    answer = hot_data.http.exec(
        f"SELECT * FROM candles WHERE exchange = '{EX}' AND symbol = '{DAY_SYMBOL}' ORDER BY ts"
    )
    published = records_from_result(
        CANDLES, [c["name"] for c in answer["columns"]], answer["dataset"]
    )
    assert len(published) == 3
    for bar in cast(list[Candle], published):
        built = hot.ohlcv(EX, DAY_SYMBOL, bar.interval, bar.ts, bar.ts + 1)
        assert built == [bar], format_ns(bar.ts)


def test_a_bar_is_closed_once_now_or_a_newer_trade_passed_its_end(
    hot_data: QuestDBEndpoints,
) -> None:
    trades = few_trades()  # bars 00:00 (one trade), 00:01 (two trades, newest at 00:01:15.99)

    def candles(now: int) -> list[Candle]:
        with HotQueries.connect(hot_data.pg_url, environ={}, clock=lambda: now) as hot:
            return hot.ohlcv(EX, FEW_SYMBOL, "1m", D, D + DAY)

    minute_0, minute_1 = expected_candles(trades, "1m", D, D + DAY)
    assert candles(D + 2 * MINUTE) == [minute_0, minute_1]
    open_1 = msgspec.structs.replace(minute_1, closed=False)
    assert candles(D + 2 * MINUTE - 1) == [minute_0, open_1]
    assert candles(D) == [minute_0, open_1]  # the clock is behind, the newer trade is not


# --- injection and errors ---------------------------------------------------------------------


class _CountingConnection:
    """The real connection, counting the cursors (every statement needs one)."""

    def __init__(self, connection: psycopg.Connection[TupleRow]) -> None:
        self.connection = connection
        self.cursors = 0

    def cursor(self) -> psycopg.Cursor[TupleRow]:
        self.cursors += 1
        return self.connection.cursor()


@pytest.mark.parametrize(
    "symbol",
    [
        f"{DAY_SYMBOL}' OR '1'='1",
        f"{DAY_SYMBOL}'; DROP TABLE trades; --",
        f"{DAY_SYMBOL}' UNION SELECT * FROM quotes --",
    ],
)
def test_an_injection_in_a_symbol_is_rejected_before_any_sql(
    hot_data: QuestDBEndpoints, symbol: str
) -> None:
    with psycopg.connect(pg_target(hot_data.pg_url, {}).conninfo, autocommit=True) as raw:
        counting = _CountingConnection(raw)
        hot = HotQueries(cast(psycopg.Connection[TupleRow], counting), endpoint="test")
        with pytest.raises(QueryInputError, match="is not normalized"):
            hot.trades(EX, symbol, D, D + DAY)
        with pytest.raises(QueryInputError, match="is not normalized"):
            hot.ohlcv(EX, symbol, "1m", D, D + DAY)
        assert counting.cursors == 0
        assert len(hot.trades(EX, DAY_SYMBOL, D, D + DAY, limit=5)) == 5
        assert counting.cursors == 1
    tables = [row[0] for row in hot_data.http.exec("SELECT table_name FROM tables()")["dataset"]]
    assert "trades" in tables


def test_an_unreachable_questdb_is_one_error_naming_the_endpoint() -> None:
    port = process.free_port()
    url = f"postgresql://{process.LOOPBACK}:{port}/qdb"
    with pytest.raises(ServiceError) as exc:
        HotQueries.connect(url, environ={})
    assert str(exc.value).startswith(f"QuestDB PG wire at {url} unreachable: ")
    assert "\n" not in str(exc.value)


# --- CLI --------------------------------------------------------------------------------------


def _cli(
    questdb: QuestDBEndpoints, tmp_path: Path, *args: str, pg_url: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MARKETSTREAM_", "QDB_"))}
    env["MARKETSTREAM_ENDPOINTS__QUESTDB_PG"] = pg_url or questdb.pg_url
    return subprocess.run(
        [sys.executable, "-m", "marketstream", "query", *args, "--state-dir", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_cli_trades_as_json_lines(hot_data: QuestDBEndpoints, tmp_path: Path) -> None:
    trades = day_trades()
    result = _cli(
        hot_data,
        tmp_path,
        "trades",
        "--exchange", EX,
        "--symbol", DAY_SYMBOL,
        "--start", format_ns(trades[5].ts),
        "--end", str(trades[25].ts),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [decode_record(line) for line in result.stdout.splitlines()] == trades[5:25]


def test_cli_candles_as_a_table(hot_data: QuestDBEndpoints, tmp_path: Path) -> None:
    result = _cli(
        hot_data,
        tmp_path,
        "candles",
        "--exchange", EX,
        "--symbol", DAY_SYMBOL,
        "--interval", "1h",
        "--start", "2025-11-20T00:00:00Z",
        "--end", "2025-11-20T06:00:00Z",
        "--format", "table",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == list(Candle.__struct_fields__)
    expected = expected_candles(day_trades(), "1h", D, D + 6 * 3600 * S)
    assert len(rows) == len(expected) == 6
    for row, candle in zip(rows, expected, strict=True):
        assert row.split() == [
            EX, DAY_SYMBOL, "1h", format_ns(candle.ts),
            *(str(v) for v in (candle.open, candle.high, candle.low, candle.close)),
            str(candle.volume), str(candle.trades), "true",
        ]  # fmt: skip
    # aligned: text columns start under their header, numbers end under it
    ts_at = header.index(" ts ") + 1
    assert all(
        row[ts_at:].startswith(format_ns(c.ts)) for row, c in zip(rows, expected, strict=True)
    )
    assert len({len(line) for line in [header, *rows]}) == 1


def test_cli_liquidations_open_interest_and_instruments(
    hot_data: QuestDBEndpoints, tmp_path: Path
) -> None:
    window = ("--exchange", EX, "--symbol", PERP, "--start", "2025-11-20", "--end", str(D + DAY))
    result = _cli(hot_data, tmp_path, "liquidations", *window, "--limit", "3")
    assert result.returncode == 0, result.stderr
    assert [decode_record(line) for line in result.stdout.splitlines()] == liquidations()[:3]
    assert "the first 3 liquidations only (--limit)" in result.stderr

    result = _cli(hot_data, tmp_path, "open-interest", *window, "--format", "table")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == list(OpenInterest.__struct_fields__)
    assert [row.split()[-2:] for row in rows] == [
        [str(r.open_interest), "-" if r.value is None else str(r.value)] for r in open_interest()
    ]

    result = _cli(hot_data, tmp_path, "instruments", "--exchange", EX)
    assert result.returncode == 0, result.stderr
    _, newer, future, _ = instrument_rows()
    assert [decode_record(line) for line in result.stdout.splitlines()] == [future, newer]
    table = _cli(hot_data, tmp_path, "instruments", "--exchange", EX, "--format", "table")
    assert format_ns(future.expiry or 0) in table.stdout.splitlines()[1]


def test_cli_latest(hot_data: QuestDBEndpoints, tmp_path: Path) -> None:
    result = _cli(hot_data, tmp_path, "latest", "--exchange", EX, "--symbol", FEW_SYMBOL)
    assert result.returncode == 0, result.stderr
    assert [orjson.loads(line) for line in result.stdout.splitlines()] == [
        {"exchange": EX, "symbol": FEW_SYMBOL, "price": 50.0, "ts": D + 80 * S + 7,
         "bid": 49.75, "ask": 50.25}
    ]  # fmt: skip
    table = _cli(hot_data, tmp_path, "latest", "--symbol", QUOTE_ONLY[1], "--format", "table")
    assert table.stdout.splitlines()[1].split() == [
        *QUOTE_ONLY,
        "11.0",
        format_ns(D + 3),
        "10.5",
        "11.5",
    ]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--interval", "7m"], "interval '7m' is not supported: expected one of 1s, 1m"),
        (["--interval", "1m", "--symbol", "HQA-USDT' --"], "is not normalized"),
        (["--interval", "1m", "--exchange", "nasdaq"], "exchange 'nasdaq' is not known"),
        (["--interval", "1m", "--start", "1763596800"], "looks like seconds"),
        (["--interval", "1m", "--format", "csv"], "--format 'csv' is not known"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(
    hot_data: QuestDBEndpoints, tmp_path: Path, args: list[str], expected: str
) -> None:
    base = {
        "--exchange": EX,
        "--symbol": DAY_SYMBOL,
        "--start": "2025-11-20",
        "--end": "2025-11-21",
    }
    for name, value in zip(args[::2], args[1::2], strict=True):
        base[name] = value
    result = _cli(hot_data, tmp_path, "candles", *(x for kv in base.items() for x in kv))
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_unreachable_questdb_is_one_line_and_exit_2(
    hot_data: QuestDBEndpoints, tmp_path: Path
) -> None:
    url = f"postgresql://127.0.0.1:{process.free_port()}/qdb"
    result = _cli(hot_data, tmp_path, "latest", pg_url=url)
    assert result.returncode == 2
    assert result.stderr.startswith(f"marketstream: error: QuestDB PG wire at {url} unreachable")
    assert len(result.stderr.splitlines()) == 1


def test_a_missing_view_is_a_clear_error_and_trades_still_answer(
    hot: HotQueries, hot_data: QuestDBEndpoints
) -> None:
    expected = expected_candles(few_trades(), "1m", D, D + DAY)
    hot_data.http.exec(f"DROP MATERIALIZED VIEW {questdb_tables.OHLCV_1M_VIEW}")
    try:
        with pytest.raises(ServiceError) as exc:
            hot.ohlcv(EX, FEW_SYMBOL, "1m", D, D + DAY)
        assert f"has no materialized view {questdb_tables.OHLCV_1M_VIEW}" in str(exc.value)
        assert hot.ohlcv(EX, FEW_SYMBOL, "1m", D, D + DAY, source="trades") == expected
    finally:
        for statement in questdb_tables.create_views_sql():
            hot_data.http.exec(statement)
        deadline = time.monotonic() + WAIT_S
        while not _settled(hot_data) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert hot.ohlcv(EX, FEW_SYMBOL, "1m", D, D + DAY) == expected
