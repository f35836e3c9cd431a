"""The pure parts of the exports: request checks, bar sources, Freqtrade's and tardis' names."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest

from marketstream.cli import main
from marketstream.export import ExportInputError, ExportRequest
from marketstream.export.candles import FROM_EXCHANGE, FROM_TRADES, count_sources, merge_bars
from marketstream.export.formats import writer_class
from marketstream.export.formats.freqtrade import ohlcv_batch, pair_of, relative_path, trades_batch
from marketstream.export.formats.tardis_csv import file_name, tardis_exchange
from marketstream.export.request import split_list
from marketstream.query.hot_queries import QueryInputError
from marketstream.schemas.arrow import to_arrow
from marketstream.schemas.columns import TRADES
from marketstream.schemas.instruments import EXCHANGES, SOURCES
from marketstream.schemas.records import Candle, Instrument, InstrumentKind, Trade

T0 = 1_700_006_400 * 10**9  # 2023-11-15 00:00 UTC
MINUTE = 60 * 10**9


def instrument(
    exchange: str, symbol: str, native: str, kind: InstrumentKind, expiry: int | None = None
) -> Instrument:
    base, quote = symbol.split("-")[:2]
    settle = base if kind.startswith("inverse") else quote
    return Instrument(
        exchange, symbol, T0, native, kind, base, quote, settle, 1.0, 1.0, 0.01, 0.001, expiry,
        "trading",
    )  # fmt: skip


def request(**changes: object) -> ExportRequest:
    fields: dict[str, object] = {
        "format": "freqtrade",
        "exchange": "binance",
        "symbols": ("BTC-USDT",),
        "types": ("candles",),
        "start_ns": T0,
        "end_ns": T0 + 86_400 * 10**9,
        "out": Path("out"),
    }
    return ExportRequest(**(fields | changes))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"symbols": ()}, "no --symbol given"),
        ({"symbols": ("BTC-USDT", "BTC-USDT")}, "lists a symbol twice"),
        ({"types": ("trades", "orders")}, "--type 'orders' is not known"),
        ({"interval": "7m"}, "--interval '7m' is not known: expected one of 1s, 1m"),
    ],
)
def test_a_bad_request_names_the_input(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ExportInputError, match=message):
        request(**changes)


def test_a_bad_exchange_symbol_or_range_is_refused() -> None:
    with pytest.raises(QueryInputError, match="exchange"):
        request(exchange="nasdaq")
    with pytest.raises(QueryInputError, match="not normalized"):
        request(symbols=("btcusdt",))
    with pytest.raises(QueryInputError, match="is not before end"):
        request(end_ns=T0)


@pytest.mark.parametrize("source", SOURCES)
def test_a_polled_source_is_refused_up_front(
    source: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A source's rows are prices, which no export format holds: refused before any tier is
    read, in one line naming the input and where its prices are read instead."""
    with pytest.raises(ExportInputError, match=rf"^--exchange '{source}' is a polled price"):
        request(exchange=source, symbols=("SOL-USD",))
    argv = ["export", "--to", "freqtrade", "--exchange", source, "--symbol", "SOL-USD"]
    argv += ["--start", "2025-11-20", "--end", "2025-11-21", "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"marketstream: error: --exchange '{source}' is a polled price source")
    assert f"exchange records only ({', '.join(EXCHANGES)})" in err
    assert "`marketstream query prices` or /v1/prices" in err
    assert not (tmp_path / "out").exists()


def test_formats_hold_their_types_only() -> None:
    assert writer_class("vectorbt", ("candles",)).DEFAULT_TYPES == ("candles",)
    with pytest.raises(ExportInputError, match="--to freqtrade does not hold quotes"):
        writer_class("freqtrade", ("candles", "quotes"))
    with pytest.raises(ExportInputError, match="--to 'csv' is not a known format: expected"):
        writer_class("csv", ())
    assert split_list("BTC-USDT, ETH-USDT", "--symbol") == ("BTC-USDT", "ETH-USDT")
    with pytest.raises(ExportInputError, match="has an empty name"):
        split_list("BTC-USDT,,ETH-USDT", "--symbol")


def bar(ts: int, close: float, *, closed: bool = True) -> Candle:
    return Candle("binance", "BTC-USDT", "1m", ts, 1.0, 2.0, 0.5, close, 3.0, 4, closed)


def test_exchange_bars_win_and_trades_fill_the_gaps() -> None:
    exchange = [bar(T0, 10.0), bar(T0 + 2 * MINUTE, 12.0, closed=False)]
    trades = [bar(T0, 99.0), bar(T0 + MINUTE, 11.0), bar(T0 + 2 * MINUTE, 13.0)]
    table = merge_bars(exchange, trades)
    assert table.column("ts").cast(pa.int64()).to_pylist() == [T0, T0 + MINUTE, T0 + 2 * MINUTE]
    assert table.column("close").to_pylist() == [10.0, 11.0, 13.0]  # an open bar is not used
    assert table.column("source").to_pylist() == [FROM_EXCHANGE, FROM_TRADES, FROM_TRADES]
    assert count_sources(table) == {FROM_EXCHANGE: 1, FROM_TRADES: 2}


def test_freqtrade_pairs_and_paths_as_freqtrade_spells_them() -> None:
    spot = instrument("binance", "BTC-USDT", "BTCUSDT", "spot")
    linear = instrument("binance", "BTC-USDT-PERP", "BTCUSDT", "linear_perpetual")
    inverse = instrument("bybit", "BTC-USD-PERP", "BTCUSD", "inverse_perpetual")
    expiry = 1_743_148_800 * 10**9  # 2025-03-28 08:00 UTC
    future = instrument("okx", "BTC-USDT-20250328", "BTC-USDT-250328", "linear_future", expiry)
    assert [pair_of(i) for i in (spot, linear, inverse, future)] == [
        "BTC/USDT",
        "BTC/USDT:USDT",
        "BTC/USD:BTC",
        "BTC/USDT:USDT-250328",
    ]
    assert relative_path(spot, "candles", "1m") == Path("BTC_USDT-1m.feather")
    assert relative_path(spot, "trades", "1m") == Path("BTC_USDT-trades.feather")
    assert relative_path(linear, "candles", "1h") == Path(
        "futures/BTC_USDT_USDT-1h-futures.feather"
    )
    assert relative_path(inverse, "trades", "1m") == Path("futures/BTC_USD_BTC-trades.feather")


def test_freqtrade_columns_are_milliseconds_and_cost() -> None:
    trades = to_arrow(
        TRADES,
        [Trade("binance", "BTC-USDT", T0 + 1_234_567, T0 + 2_000_000, "7", 100.0, 0.5, "sell")],
    )
    batch = trades_batch(trades)
    assert batch.to_pylist() == [
        {
            "timestamp": (T0 + 1_234_567) // 1_000_000,
            "id": "7",
            "type": None,
            "side": "sell",
            "price": 100.0,
            "amount": 0.5,
            "cost": 50.0,
        }
    ]
    bars = merge_bars([bar(T0, 10.0)], [])
    assert ohlcv_batch(bars).column("date").cast(pa.int64()).to_pylist() == [T0 // 1_000_000]
    assert ohlcv_batch(bars.slice(0, 0)).num_rows == 0


@pytest.mark.parametrize(
    ("exchange", "kind", "expected"),
    [
        ("binance", "spot", "binance"),
        ("binance", "linear_perpetual", "binance-futures"),
        ("binance-usdm", "linear_perpetual", "binance-futures"),
        ("binance", "inverse_perpetual", "binance-delivery"),
        ("okx", "spot", "okex"),
        ("okx", "linear_perpetual", "okex-swap"),
        ("okx", "inverse_future", "okex-futures"),
        ("bybit", "spot", "bybit-spot"),
        ("bybit", "inverse_perpetual", "bybit"),
        ("kraken", "spot", "kraken"),
        ("kraken", "inverse_perpetual", "cryptofacilities"),
        ("coinbase", "spot", "coinbase"),
    ],
)
def test_tardis_exchange_ids(exchange: str, kind: InstrumentKind, expected: str) -> None:
    symbol = "BTC-USD-PERP" if "perpetual" in kind else "BTC-USD"
    assert tardis_exchange(instrument(exchange, symbol, "BTCUSD", kind)) == expected


def test_a_kind_a_venue_does_not_list_has_no_tardis_id() -> None:
    with pytest.raises(ExportInputError, match="no exchange id for a linear_perpetual"):
        tardis_exchange(instrument("coinbase", "BTC-USD-PERP", "BTC-PERP", "linear_perpetual"))


def test_tardis_file_names_use_the_native_symbol_made_safe() -> None:
    kraken = instrument("kraken", "BTC-USD", "XBT/USD", "spot")
    day = date(2024, 1, 1)
    assert file_name(kraken, "trades", day) == "kraken_trades_2024-01-01_XBT-USD.csv.gz"
    okx = instrument("okx", "BTC-USDT-PERP", "btc-usdt-swap", "linear_perpetual")
    assert file_name(okx, "quotes", day) == "okex-swap_quotes_2024-01-01_BTC-USDT-SWAP.csv.gz"
