"""Which days move, how two copies of a day merge, and when the nightly run fires."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pyarrow as pa

from marketstream.archiver.days import due, horizon_day
from marketstream.archiver.merge import union_by_key
from marketstream.archiver.runner import seconds_until
from marketstream.query.all_tiers import ohlcv_from_trades
from marketstream.schemas.arrow import arrow_schema, conform, to_arrow
from marketstream.schemas.columns import BOOKS, CANDLES, TRADES
from marketstream.schemas.records import Book, Candle, Trade
from marketstream.tiers.days import day_start_ns, days_between

NOON = int(datetime(2026, 11, 21, 12, tzinfo=UTC).timestamp()) * 10**9
S = 10**9


def trade(ts: int, trade_id: str, price: float = 1.0) -> Trade:
    return Trade("binance", "BTC-USDT", ts, ts, trade_id, price, 1.0, "buy")


def test_a_day_moves_once_all_of_it_is_past_the_horizon() -> None:
    horizon = horizon_day(NOON, 7)
    assert horizon == date(2026, 11, 14)
    days = [date(2026, 11, 12), date(2026, 11, 13), date(2026, 11, 14), date(2026, 11, 20)]
    assert due(days, horizon) == [date(2026, 11, 12), date(2026, 11, 13)]


def test_days_between_covers_partial_days_and_excludes_the_end() -> None:
    start = day_start_ns(date(2026, 1, 1)) + 5 * S
    end = day_start_ns(date(2026, 1, 3))
    assert days_between(start, end) == [date(2026, 1, 1), date(2026, 1, 2)]
    assert days_between(end, end) == []


def test_union_keeps_one_row_per_key_and_prefers_the_newer_copy() -> None:
    older = to_arrow(TRADES, [trade(1, "a", 1.0), trade(2, "b", 1.0)])
    newer = to_arrow(TRADES, [trade(2, "b", 9.0), trade(3, "c", 1.0)])
    merged = union_by_key(TRADES, newer, older)
    rows = {(r["trade_id"], r["price"]) for r in merged.to_pylist()}
    assert rows == {("a", 1.0), ("b", 9.0), ("c", 1.0)}


def test_union_of_a_later_candle_update_replaces_the_bar() -> None:
    def bar(close: float) -> Candle:
        return Candle("okx", "BTC-USDT", "1m", 60 * S, 1, 2, 0.5, close, 10, 3, closed=True)

    merged = union_by_key(CANDLES, to_arrow(CANDLES, [bar(1.5)]), to_arrow(CANDLES, [bar(1.2)]))
    assert [r["close"] for r in merged.to_pylist()] == [1.5]


def test_conform_accepts_a_store_s_spelling_of_the_same_rows() -> None:
    books = to_arrow(BOOKS, [Book("okx", "BTC-USDT", 5, 6, 7, [(1.0, 2.0)], [(1.5, 3.0)])])
    dictionary = books.set_column(0, "exchange", books.column("exchange").dictionary_encode())
    reordered = dictionary.select(list(reversed(dictionary.column_names)))
    assert conform(BOOKS, reordered).equals(books)
    assert conform(BOOKS, reordered).schema == arrow_schema(BOOKS)


def test_nightly_run_waits_for_the_next_slot() -> None:
    now = datetime(2026, 11, 21, 3, 0, tzinfo=UTC)
    assert seconds_until("02:30", now) == 23.5 * 3600
    assert seconds_until("03:30", now) == 1800


def test_ohlcv_from_trades_orders_open_and_close_by_time() -> None:
    table = to_arrow(
        TRADES,
        [
            trade(61 * S, "2", 5.0),
            trade(60 * S, "1", 4.0),
            trade(119 * S, "3", 3.0),
            trade(120 * S, "4", 7.0),
        ],
    )
    candles = ohlcv_from_trades(table, "binance", "BTC-USDT", "1m")
    assert [(c.ts, c.open, c.high, c.low, c.close, c.trades) for c in candles] == [
        (60 * S, 4.0, 5.0, 3.0, 3.0, 3),
        (120 * S, 7.0, 7.0, 7.0, 7.0, 1),
    ]
    assert (
        ohlcv_from_trades(pa.Table.from_pylist([], schema=arrow_schema(TRADES)), "b", "s", "1m")
        == []
    )


def test_conform_refuses_nulls_a_store_lost() -> None:
    import pytest  # noqa: PLC0415

    from marketstream.schemas.arrow import StoredDataError  # noqa: PLC0415

    table = to_arrow(TRADES, [trade(1, "a")])
    lost = table.set_column(4, "trade_id", pa.array([None], pa.string()))
    with pytest.raises(StoredDataError, match=r"trades\.trade_id: 1 of 1 values are null"):
        conform(TRADES, lost)


def test_days_are_batched_by_count_and_rows_and_a_big_day_goes_alone() -> None:
    from marketstream.archiver.runner import _batches  # noqa: PLC0415

    days = [date(2026, 1, n) for n in range(1, 8)]
    rows = dict.fromkeys(days, 10) | {date(2026, 1, 4): 1_000}
    assert _batches(days, rows, 2, 100) == [
        [date(2026, 1, 1), date(2026, 1, 2)],
        [date(2026, 1, 3)],
        [date(2026, 1, 4)],
        [date(2026, 1, 5), date(2026, 1, 6)],
        [date(2026, 1, 7)],
    ]
    assert _batches([], {}, 2, 100) == []
