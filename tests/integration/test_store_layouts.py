"""The layouts derived from the records hold up in the real stores, value for value.

QuestDB: tables created from the specs, rows written over ILP/HTTP with the `questdb` client,
read back over HTTP; a second write of the same rows is absorbed by the dedup keys.
ClickHouse (chdb engine): tables from the specs, Arrow in and Arrow out.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from clickhouse_connect.driver.client import Client
from questdb import Sender

from marketstream.query.all_tiers import ohlcv_from_trades, warm_ohlcv
from marketstream.schemas.arrow import from_arrow, to_arrow
from marketstream.schemas.columns import SPECS, TRADES, TableSpec
from marketstream.schemas.records import (
    Book,
    Candle,
    Funding,
    Quote,
    Record,
    Trade,
)
from marketstream.tiers import clickhouse_tables, questdb_tables
from marketstream.tiers.clickhouse_partitions import WarmTier
from marketstream.tiers.questdb_rows import records_from_result, write_rows
from tests.integration.endpoints import QuestDBEndpoints
from tests.record_samples import derivative_samples

pytestmark = pytest.mark.integration

T0 = 1_732_180_000_123_456_789  # nanosecond precision must survive every store
WAL_WAIT_S = 60.0


def sample_records() -> dict[str, list[Record]]:
    """A few records per table, covering optional values, empty book sides and two days."""
    day = 86_400 * 10**9
    return {
        "trades": [
            Trade("binance", "BTC-USDT", T0, T0 + 7, "1001", 97250.1, 0.015, "buy"),
            Trade("binance", "BTC-USDT", T0, T0 + 8, "1002", 97250.2, 1e-8, "sell"),
            Trade("coinbase", "ETH-USD", T0 + day, T0 + day + 1, "abc-1", 3100.5, 2.5, "sell"),
        ],
        "quotes": [
            Quote("binance", "BTC-USDT", T0, T0 + 1, 97250.0, 1.5, 97250.1, 0.2),
            Quote("binance", "BTC-USDT", T0, T0 + 2, 97250.0, 1.4, 97250.1, 0.2, 97250.1),
            Quote("coinbase", "BTC-USD", T0 + 5, T0 + 9, 97000.0, None, 97001.0, None, 97000.5),
        ],
        "candles": [
            Candle("binance", "BTC-USDT", "1m", T0, 1.0, 2.0, 0.5, 1.5, 10.0, 3, True),
            Candle("binance", "BTC-USDT", "5m", T0, 1.0, 2.0, 0.5, 1.5, 0.0, None, False),
        ],
        "books": [
            Book(
                "binance", "BTC-USDT", T0, T0 + 3, 42, [(100.0, 1.0), (99.5, 2.0)], [(100.5, 3.0)]
            ),
            Book("coinbase", "BTC-USD", T0 + 1, T0 + 4, 7, [(99.0, 0.5)], [], is_snapshot=False),
        ],
        "funding": [
            Funding("binance-usdm", "BTC-USDT-PERP", T0, 0.0001, 97260.0, 97255.5, T0 + day),
            Funding("okx", "BTC-USDT-PERP", T0 + 3, -0.00025),
        ],
        **derivative_samples(T0, later=T0 + day),
    }


def _sort_key(record: Record) -> str:
    return repr(record)


def _wait_for_count(questdb: QuestDBEndpoints, table: str, expected: int) -> int:
    """WAL tables apply writes asynchronously: poll until the count settles (bounded)."""
    deadline = time.monotonic() + WAL_WAIT_S
    count = -1
    while time.monotonic() < deadline:
        count = int(questdb.http.exec(f"SELECT count() FROM {table}")["dataset"][0][0])
        if count >= expected:
            break
        time.sleep(0.1)
    return count


def _wal_applied(questdb: QuestDBEndpoints, table: str) -> bool:
    answer = questdb.http.exec(
        f"SELECT writerTxn, sequencerTxn FROM wal_tables() WHERE name = '{table}'"
    )
    writer, sequencer = answer["dataset"][0]
    return bool(writer == sequencer)


@pytest.fixture(scope="module")
def questdb_tables_ready(questdb: QuestDBEndpoints) -> QuestDBEndpoints:
    for sql in questdb_tables.create_all_sql():
        questdb.http.exec(sql)
    return questdb


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.table)
def test_questdb_round_trip_and_dedup(
    questdb_tables_ready: QuestDBEndpoints, spec: TableSpec
) -> None:
    questdb = questdb_tables_ready
    records = sample_records()[spec.table]
    for _attempt in range(2):  # the second write is a replay: dedup keys make it a no-op
        with Sender.from_conf(questdb.ilp_conf) as sender:
            assert write_rows(sender, records) == len(records)
            sender.flush()
        assert _wait_for_count(questdb, spec.table, len(records)) == len(records)

    deadline = time.monotonic() + WAL_WAIT_S
    while not _wal_applied(questdb, spec.table) and time.monotonic() < deadline:
        time.sleep(0.1)
    answer = questdb.http.exec(f"SELECT * FROM {spec.table}")
    names = [c["name"] for c in answer["columns"]]
    back = records_from_result(spec, names, answer["dataset"])
    assert sorted(back, key=_sort_key) == sorted(records, key=_sort_key)


def test_questdb_tables_have_dedup_and_wal(questdb_tables_ready: QuestDBEndpoints) -> None:
    answer = questdb_tables_ready.http.exec(
        "SELECT table_name, designatedTimestamp, partitionBy, walEnabled, dedup FROM tables()"
    )
    tables = {row[0]: row[1:] for row in answer["dataset"]}
    for spec in SPECS:
        assert tables[spec.table] == ["ts", "DAY", True, True]


def test_questdb_book_sides_are_price_and_size_rows(
    questdb_tables_ready: QuestDBEndpoints,
) -> None:
    questdb = questdb_tables_ready
    assert _wait_for_count(questdb, "books", 2) == 2
    answer = questdb.http.exec("SELECT bids[1][1], bids[2][1] FROM books WHERE seq = 42")
    assert answer["dataset"] == [[100.0, 1.0]]


@pytest.fixture(scope="module")
def warm_database(clickhouse: Client) -> Iterator[Client]:
    clickhouse.command("CREATE DATABASE IF NOT EXISTS layouts")
    for sql in clickhouse_tables.create_all_sql("layouts"):
        clickhouse.command(sql)
    yield clickhouse
    clickhouse.command("DROP DATABASE IF EXISTS layouts")


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.table)
def test_clickhouse_round_trip(warm_database: Client, spec: TableSpec) -> None:
    records = sample_records()[spec.table]
    warm_database.insert_arrow(f"layouts.{spec.table}", to_arrow(spec, records))
    back = from_arrow(spec, warm_database.query_arrow(f"SELECT * FROM layouts.{spec.table}"))
    assert sorted(back, key=_sort_key) == sorted(records, key=_sort_key)


def test_clickhouse_book_sides_are_price_and_size_rows(warm_database: Client) -> None:
    rows = warm_database.query(
        "SELECT bids[1][1], bids[2][1] FROM layouts.books WHERE seq = 42"
    ).result_rows
    assert rows == [(100.0, 1.0)]


def test_warm_candles_open_and_close_by_time_then_trade_id(warm_database: Client) -> None:
    """Trades that share a bar's first or last time: the open is the one with the lowest
    trade id (compared as text, as the tiers order them: "10" before "9"), the close the one
    with the highest, as the cold tier's candles from the same trades say."""
    minute = 60 * 10**9
    start = (T0 // minute + 1) * minute
    second = 10**9

    def trade(at: int, trade_id: str, price: float) -> Trade:
        return Trade("okx", "TIE-USDT", start + at, start + at, trade_id, price, 0.5, "buy")

    trades = [
        trade(1 * second, "9", 99.0),  # bar 1: three trades at its first time
        trade(1 * second, "10", 101.0),
        trade(1 * second, "100", 105.0),
        trade(20 * second, "5", 110.0),
        trade(50 * second, "1", 95.0),  # ...and two at its last
        trade(50 * second, "11", 97.0),
        trade(minute + 5 * second, "3", 120.0),  # bar 2: all at one time
        trade(minute + 5 * second, "2", 121.0),
        trade(3 * minute, "1", 130.0),  # bar 4 (bar 3 has no trade): one trade
    ]
    warm_database.insert_arrow("layouts.trades", to_arrow(TRADES, trades))
    candles = warm_ohlcv(
        WarmTier(warm_database, "layouts"), "okx", "TIE-USDT", "1m", start, start + 4 * minute
    )
    opens_closes = [(c.ts - start, c.open, c.close, c.high, c.low, c.trades) for c in candles]
    assert opens_closes == [
        (0, 101.0, 97.0, 110.0, 95.0, 6),
        (minute, 121.0, 120.0, 121.0, 120.0, 2),
        (3 * minute, 130.0, 130.0, 130.0, 130.0, 1),
    ]
    in_tier_order = sorted(trades, key=lambda t: (t.ts, t.trade_id))
    cold = ohlcv_from_trades(to_arrow(TRADES, in_tier_order), "okx", "TIE-USDT", "1m")
    assert candles == cold
