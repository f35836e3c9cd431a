"""Synthetic history: deterministic, consistent (candles with trades, quotes around trades,
consecutive trade ids), gaps and spikes as asked, one day in memory at a time."""

from __future__ import annotations

import math
import tracemalloc
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

import msgspec.structs
import numpy as np
import pyarrow as pa
import pytest

from marketstream.generate.history import (
    ANCHOR,
    NS_PER_DAY,
    NS_PER_MINUTE,
    DayHistory,
    HistoryConfig,
    HistoryGenerator,
    HistoryInputError,
    generate,
)
from marketstream.schemas.arrow import arrow_schema, from_arrow
from marketstream.schemas.checksum import key_checksum
from marketstream.schemas.columns import CANDLES, LIQUIDATIONS, OPEN_INTEREST, QUOTES, TRADES
from marketstream.schemas.records import Candle, Liquidation, OpenInterest, Quote, Trade
from marketstream.schemas.validation import Limits, validate

DAY = date(2025, 3, 10)
EPOCH = date(1970, 1, 1)
CONFIG = HistoryConfig(
    exchanges=("binance", "okx"), symbols=("BTC-USDT", "ETH-USDT", "SOL-USDT"), seed=7
)


def one_day(config: HistoryConfig = CONFIG, day: date = DAY) -> DayHistory:
    return HistoryGenerator(config).day(day)


def day_start_ns(day: date) -> int:
    return (day - EPOCH).days * NS_PER_DAY


def column(table: pa.Table, name: str) -> Any:
    values = table.column(name)
    if pa.types.is_timestamp(values.type):
        values = values.cast(pa.int64())
    return values.to_numpy(zero_copy_only=False)


def strings(table: pa.Table, name: str) -> list[str]:
    return [str(value) for value in table.column(name).to_pylist()]


def by_instrument(table: pa.Table) -> dict[tuple[str, str], pa.Table]:
    out = {}
    for exchange in set(strings(table, "exchange")):
        for symbol in set(strings(table, "symbol")):
            mask = np.logical_and(
                column(table, "exchange") == exchange, column(table, "symbol") == symbol
            )
            out[exchange, symbol] = table.filter(pa.array(mask))
    return out


def with_(config: HistoryConfig, **changes: Any) -> HistoryConfig:
    fields = {name: getattr(config, name) for name in config.__dataclass_fields__}
    return HistoryConfig(**{**fields, **changes})


# --- determinism -----------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_rows_and_another_seed_others() -> None:
    first, again = one_day(), one_day()
    for name, table in first.tables.items():
        assert table.equals(again.tables[name]), name
    other = one_day(with_(CONFIG, seed=8))
    assert not other.trades.equals(first.trades)
    assert other.truth() != first.truth()


def test_a_day_is_the_same_alone_or_within_a_range() -> None:
    alone = one_day(day=DAY)
    within = list(generate(CONFIG, DAY - timedelta(days=3), DAY + timedelta(days=1)))
    assert [d.day for d in within] == [DAY + timedelta(days=i) for i in range(-3, 2)]
    for name, table in alone.tables.items():
        assert table.equals(within[3].tables[name]), name


def test_an_exchange_rows_do_not_depend_on_the_other_exchanges_or_symbols() -> None:
    both = one_day()
    alone = one_day(with_(CONFIG, exchanges=("okx",), symbols=("ETH-USDT",)))
    for name, table in both.tables.items():
        okx = by_instrument(table)["okx", "ETH-USDT"]
        assert okx.equals(alone.tables[name]), name


# --- layout and realism -------------------------------------------------------------------


def test_tables_have_the_records_layout_sorted_by_time_within_the_day() -> None:
    history = one_day()
    start = day_start_ns(DAY)
    for spec in (TRADES, QUOTES, CANDLES):
        table = history.tables[spec.table]
        assert table.schema == arrow_schema(spec)
        assert table.num_rows > 0
        ts = column(table, "ts")
        assert np.all(np.diff(ts) >= 0)
        assert start <= ts.min()
        assert ts.max() < start + NS_PER_DAY
        assert table.column("ts").null_count == 0


def test_records_pass_the_boundary_validation() -> None:
    history = one_day()
    limits = Limits(now_ns=day_start_ns(DAY) + 2 * NS_PER_DAY, max_future_skew_ns=0)
    for spec, table in ((TRADES, history.trades), (QUOTES, history.quotes)):
        for record in from_arrow(spec, table):
            validate(record, limits)
    for record in from_arrow(CANDLES, history.candles):
        validate(record, limits)


def test_prices_are_realistic_per_symbol() -> None:
    history = one_day()
    prices = defaultdict(list)
    for trade in from_arrow(TRADES, history.trades):
        assert isinstance(trade, Trade)
        prices[trade.symbol].append(trade.price)
    assert 20_000 < float(np.median(prices["BTC-USDT"])) < 200_000
    assert 1_000 < float(np.median(prices["ETH-USDT"])) < 10_000
    assert 20 < float(np.median(prices["SOL-USDT"])) < 500
    for symbol, values in prices.items():  # no more than a few % within a day, no spikes
        assert max(values) / min(values) < 1.3, symbol


def test_start_prices_and_rates_are_configurable() -> None:
    config = HistoryConfig(
        symbols=("BTC-USDT", "DOGE-USDT"),
        start_prices={"DOGE": 0.1, "BTC-USDT": 1_000.0},
        trades_per_day=500,
    )
    history = one_day(config)
    median = {
        symbol: float(np.median(column(table, "price")))
        for (_, symbol), table in by_instrument(history.trades).items()
    }
    assert 0.02 < median["DOGE-USDT"] < 0.5
    assert 200 < median["BTC-USDT"] < 5_000
    counts = [
        d.trades.num_rows / 2 for d in generate(config, DAY, DAY + timedelta(days=29))
    ]  # per symbol
    assert 400 < sum(counts) / len(counts) < 600


def test_trades_come_in_bursts() -> None:
    """Clustered arrivals: many more trades less than a second apart than a Poisson stream
    of the same rate would give (about 2% of gaps at 2000 a day)."""
    history = one_day(HistoryConfig(symbols=("BTC-USDT",), trades_per_day=2_000))
    gaps = np.diff(column(history.trades, "ts"))
    assert np.mean(gaps < 1_000_000_000) > 0.5


# --- consistency -----------------------------------------------------------------------------


def test_trade_ids_are_consecutive_per_exchange_and_symbol_across_days() -> None:
    last: dict[tuple[str, str], int] = {}
    for history in generate(CONFIG, DAY, DAY + timedelta(days=2)):
        for key, table in by_instrument(history.trades).items():
            ids = [int(i) for i in strings(table, "trade_id")]
            assert ids == list(range(ids[0], ids[0] + len(ids))), key
            if key in last:
                assert ids[0] == last[key] + 1, key
            last[key] = ids[-1]
    assert len(last) == 6


def test_quotes_are_the_top_of_book_each_trade_met() -> None:
    history = one_day()
    trades, quotes = from_arrow(TRADES, history.trades), from_arrow(QUOTES, history.quotes)
    assert len(trades) == len(quotes)
    previous: dict[tuple[str, str], float] = {}
    for trade, quote in zip(trades, quotes, strict=True):
        assert isinstance(trade, Trade)
        assert isinstance(quote, Quote)
        key = (trade.exchange, trade.symbol)
        assert (quote.exchange, quote.symbol, quote.ts) == (*key, trade.ts)
        assert quote.bid_px < quote.ask_px
        assert quote.bid_px <= trade.price <= quote.ask_px
        assert trade.price == (quote.ask_px if trade.side == "buy" else quote.bid_px)
        assert quote.ask_px / quote.bid_px < 1.001  # a spread of about a basis point
        assert quote.bid_sz is not None
        assert quote.bid_sz > 0
        assert quote.last_px == previous.get(key)
        previous[key] = trade.price


def test_receive_times_follow_exchange_times_and_increase() -> None:
    history = one_day()
    for table in (history.trades, history.quotes):
        for key, rows in by_instrument(table).items():
            ts, recv = column(rows, "ts"), column(rows, "recv_ts")
            assert np.all(recv > ts), key
            assert np.all(np.diff(recv) > 0), key
            assert np.all(recv - ts < 10 * 10**9), key


def expected_candles(trades: list[Trade]) -> dict[tuple[str, str, int], Candle]:
    bars: dict[tuple[str, str, int], list[Trade]] = defaultdict(list)
    for trade in trades:  # in time order, and so in id order
        bars[trade.exchange, trade.symbol, trade.ts // NS_PER_MINUTE * NS_PER_MINUTE].append(trade)
    return {
        key: Candle(key[0], key[1], "1m", key[2], group[0].price, max(t.price for t in group),
                    min(t.price for t in group), group[-1].price,
                    math.fsum(t.size for t in group), len(group), closed=True)
        for key, group in bars.items()
    }  # fmt: skip


@pytest.mark.parametrize("gaps", [False, True])
def test_candles_are_the_ohlcv_of_each_minute_of_trades(gaps: bool) -> None:
    history = one_day(with_(CONFIG, gaps=gaps, spikes=gaps))
    trades = [t for t in from_arrow(TRADES, history.trades) if isinstance(t, Trade)]
    trades.sort(key=lambda t: (t.exchange, t.symbol, int(t.trade_id)))
    expected = expected_candles(trades)
    candles = [c for c in from_arrow(CANDLES, history.candles) if isinstance(c, Candle)]
    assert len(candles) == len(expected)
    for candle in candles:
        want = expected[candle.exchange, candle.symbol, candle.ts]
        assert math.isclose(candle.volume, want.volume, rel_tol=1e-9)
        assert candle == msgspec.structs.replace(want, volume=candle.volume)


# --- gaps and spikes ---------------------------------------------------------------------------


def keys(table: pa.Table, names: tuple[str, ...]) -> set[tuple[Any, ...]]:
    """Rows as tuples; timestamps as int ns, nulls as None (NaN would never compare equal)."""
    values = []
    for name in names:
        array = table.column(name)
        if pa.types.is_timestamp(array.type):
            array = array.cast(pa.int64())
        values.append(array.to_pylist())
    return set(zip(*values, strict=True))


def test_gaps_leave_out_whole_minutes_and_change_nothing_else() -> None:
    missing = 0
    for day in (DAY + timedelta(days=i) for i in range(5)):
        full, holed = one_day(day=day), one_day(with_(CONFIG, gaps=True), day=day)
        for spec in (TRADES, QUOTES, CANDLES):
            every = keys(full.tables[spec.table], spec.names)  # whole rows, values included
            kept = keys(holed.tables[spec.table], spec.names)
            assert kept <= every, spec.table  # rows dropped, none changed
        # A gap is an exchange's outage: in a minute it dropped a trade, nothing is left.
        down = {(e, ts // NS_PER_MINUTE) for e, ts in keys(full.trades, ("exchange", "ts"))}
        down -= {(e, ts // NS_PER_MINUTE) for e, ts in keys(holed.trades, ("exchange", "ts"))}
        for spec in (TRADES, QUOTES, CANDLES):
            left = keys(holed.tables[spec.table], ("exchange", "ts"))
            assert not {(e, ts // NS_PER_MINUTE) for e, ts in left} & down, spec.table
        missing += len(down)
    assert missing > 0


def test_gaps_make_trade_ids_jump() -> None:
    history = one_day(with_(CONFIG, gaps=True))
    jumps = 0
    for table in by_instrument(history.trades).values():
        ids = np.array([int(i) for i in strings(table, "trade_id")])
        assert np.all(np.diff(ids) >= 1)
        jumps += int(np.sum(np.diff(ids) > 1))
    assert jumps > 0


def max_move(history: DayHistory) -> float:
    """The largest log move between consecutive trades of one exchange and symbol."""
    moves = [
        float(np.max(np.abs(np.diff(np.log(column(table, "price"))))))
        for table in by_instrument(history.trades).values()
    ]
    return max(moves)


def test_spikes_move_prices_suddenly_and_change_only_prices() -> None:
    days = [DAY + timedelta(days=i) for i in range(10)]
    calm = [one_day(day=d) for d in days]
    spiky = [one_day(with_(CONFIG, spikes=True), day=d) for d in days]
    assert max(max_move(h) for h in calm) < 0.02  # a quiet half hour may move 1%
    assert max(max_move(h) for h in spiky) > 0.03
    for quiet, wild in zip(calm, spiky, strict=True):
        assert quiet.truth() == wild.truth()  # same keys: times and ids do not move


# --- perpetuals: liquidations and open interest ------------------------------------------------

PERPS = with_(CONFIG, exchanges=("binance-usdm", "okx"), symbols=("BTC-USDT-PERP", "ETH-USDT"))


def test_only_perpetuals_get_liquidations_and_open_interest() -> None:
    assert set(one_day().tables) == {"trades", "quotes", "candles"}
    history = one_day(PERPS)
    assert set(history.tables) == {"trades", "quotes", "candles", "liquidations", "open_interest"}
    for spec in (LIQUIDATIONS, OPEN_INTEREST):
        table = history.tables[spec.table]
        assert table.schema == arrow_schema(spec)
        assert set(strings(table, "symbol")) == {"BTC-USDT-PERP"}
        assert set(strings(table, "exchange")) == {"binance-usdm", "okx"}
        assert np.all(np.diff(column(table, "ts")) >= 0)
    liquidations = history.tables["liquidations"]
    assert history.truth()["liquidations"] == key_checksum(LIQUIDATIONS, liquidations)
    assert one_day(PERPS).tables["liquidations"].equals(liquidations)
    other = one_day(with_(PERPS, seed=8)).tables["open_interest"]
    assert not other.equals(history.tables["open_interest"])


def test_liquidations_meet_trades_and_open_interest_is_valued_at_the_last_trade() -> None:
    history = one_day(PERPS)
    limits = Limits(now_ns=day_start_ns(DAY) + 2 * NS_PER_DAY, max_future_skew_ns=0)
    trades = [t for t in from_arrow(TRADES, history.trades) if isinstance(t, Trade)]
    at: dict[tuple[str, str, int], list[Trade]] = defaultdict(list)
    for t in trades:
        at[t.exchange, t.symbol, t.ts].append(t)
    assert history.liquidations is not None
    liquidations = from_arrow(LIQUIDATIONS, history.liquidations)
    assert 5 <= len(liquidations) <= 4 * len(trades) // 400  # about one per 400 trades
    for record in liquidations:
        assert isinstance(record, Liquidation)
        validate(record, limits)
        assert any(  # the trade it met: its time and price, a few times its size
            record.price == t.price and t.size <= record.size <= 20 * t.size + 1e-9
            for t in at[record.exchange, record.symbol, record.ts]
        )
        assert record.recv_ts > record.ts
    assert history.open_interest is not None
    readings = from_arrow(OPEN_INTEREST, history.open_interest)
    assert 500 < len(readings) <= 2 * 288  # every 5 minutes after the first trade, per exchange
    for record in readings:
        assert isinstance(record, OpenInterest)
        validate(record, limits)
        before = [t for t in trades if t.ts <= record.ts and t.exchange == record.exchange
                  and t.symbol == record.symbol]  # fmt: skip
        assert record.value == round(record.open_interest * before[-1].price, 2)
        assert 2e9 / 3 < record.value < 3 * 2e9


def test_gaps_leave_out_derivative_rows_and_change_no_other() -> None:
    full, holed = one_day(PERPS), one_day(with_(PERPS, gaps=True))
    dropped = 0
    for spec in (LIQUIDATIONS, OPEN_INTEREST):
        every = keys(full.tables[spec.table], spec.names)
        kept = keys(holed.tables[spec.table], spec.names)
        assert kept <= every, spec.table
        dropped += len(every - kept)
    assert dropped > 0


# --- memory: one day at a time ------------------------------------------------------------------


def test_days_are_made_one_at_a_time() -> None:
    config = HistoryConfig(trades_per_day=20_000)
    days = generate(config, DAY, DAY + timedelta(days=400))
    first = next(days)  # a year of days would not fit in the time this takes if made upfront
    assert first.day == DAY

    def peak(count: int) -> int:
        tracemalloc.start()
        try:
            for history in generate(config, DAY, DAY + timedelta(days=count - 1)):
                del history
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    pa_before = pa.total_allocated_bytes()
    few, many = peak(2), peak(12)
    assert many < 1.5 * few, (few, many)  # the peak does not grow with the number of days
    assert pa.total_allocated_bytes() - pa_before < 1_000_000  # no Arrow buffers kept


# --- inputs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"exchanges": ("nasdaq",)}, "exchange 'nasdaq' is not known"),
        ({"exchanges": ()}, "no exchange given"),
        ({"symbols": ("btc-usdt",)}, "symbol 'btc-usdt' is not normalized"),
        ({"symbols": ("BTC-USDT", "BTC-USDT")}, "symbol 'BTC-USDT' is given twice"),
        ({"trades_per_day": 0}, "trades per day 0 is out of range"),
        ({"seed": -1}, "seed -1 is negative"),
        ({"daily_volatility": float("nan")}, "daily_volatility nan is out of range"),
        ({"mean_burst": 0.5}, "mean_burst 0.5 is out of range: expected a number from 1.0"),
        ({"start_prices": {"BTC": 0.0}}, "start price of BTC 0.0 is not positive"),
    ],
)
def test_bad_configurations_say_what_was_expected(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(HistoryInputError, match=message.replace("(", r"\(")):
        with_(HistoryConfig(), **changes)


def test_a_bad_range_is_refused_before_any_day_is_made() -> None:
    with pytest.raises(HistoryInputError, match="start 2025-03-10 is after end 2025-03-09"):
        generate(CONFIG, DAY, DAY - timedelta(days=1))
    with pytest.raises(HistoryInputError, match="day 2009-12-31 is out of range"):
        generate(CONFIG, ANCHOR - timedelta(days=1), DAY)


def test_the_truth_is_the_key_checksum_of_each_table() -> None:
    history = one_day()
    truth = history.truth()
    assert truth == {
        spec.table: key_checksum(spec, history.tables[spec.table])
        for spec in (TRADES, QUOTES, CANDLES)
    }
    assert truth["trades"][0] == truth["quotes"][0] == history.trades.num_rows
    assert history.rows == sum(rows for rows, _ in truth.values())
