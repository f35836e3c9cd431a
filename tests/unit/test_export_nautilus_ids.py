"""NautilusTrader names and precisions of our instruments (no nautilus_trader needed), and the
one-line error of `--to nautilus` where nautilus_trader is not installed (this venv)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import cast

import pytest

from marketstream.export import ExportInputError, ExportRequest, run_export
from marketstream.export.formats import FORMATS, writer_class
from marketstream.export.formats.base import ExportPlan
from marketstream.export.formats.nautilus import NautilusWriter
from marketstream.export.formats.nautilus_ids import (
    bar_spec,
    bar_type,
    catalog_paths,
    decimals,
    increment,
    instrument_class,
    instrument_id,
    price_precision,
    refuse_inverse,
    size_increment,
    size_precision,
)
from marketstream.query.all_tiers import TieredQueries
from marketstream.schemas.records import Instrument, InstrumentKind

DAY_NS = 86_400 * 10**9
T0 = 1_700_006_400 * 10**9  # 2023-11-15 00:00 UTC


def instrument(
    symbol: str = "BTC-USDT",
    kind: InstrumentKind = "spot",
    tick: float = 0.01,
    *,
    lot: float = 1e-05,
    contract_value: float = 1.0,
    multiplier: float = 1.0,
    exchange: str = "binance",
) -> Instrument:
    base, quote = symbol.split("-")[:2]
    return Instrument(
        exchange, symbol, T0, symbol.replace("-", ""), kind, base, quote, quote,
        contract_value, multiplier, tick, lot, None, "trading",
    )  # fmt: skip


def test_ids_and_bar_types_name_our_symbol_at_the_exchange_as_venue() -> None:
    assert instrument_id("BTC-USDT-PERP", "binance") == "BTC-USDT-PERP.BINANCE"
    assert instrument_id("BTC-USDT", "binance-usdm") == "BTC-USDT.BINANCE-USDM"
    assert bar_type("BTC-USDT", "binance", "1m") == "BTC-USDT.BINANCE-1-MINUTE-LAST-EXTERNAL"
    assert [bar_spec(i) for i in ("1s", "5m", "1h", "1d")] == [
        "1-SECOND",
        "5-MINUTE",
        "1-HOUR",
        "1-DAY",
    ]
    with pytest.raises(ExportInputError, match="'1w' has no nautilus bar step"):
        bar_spec("1w")


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("spot", "CurrencyPair"),
        ("linear_perpetual", "CryptoPerpetual"),
        ("inverse_perpetual", "CryptoPerpetual"),
        ("linear_future", "CryptoFuture"),
        ("inverse_future", "CryptoFuture"),
    ],
)
def test_each_kind_has_its_nautilus_instrument_class(kind: InstrumentKind, expected: str) -> None:
    assert instrument_class(instrument(kind=kind)) == expected


def test_precisions_come_from_the_tick_and_the_base_unit_size_step() -> None:
    assert [decimals(s) for s in (0.01, 1e-05, 0.5, 1.0, 10.0, 1e-08)] == [2, 5, 1, 0, 0, 8]
    spot = instrument(tick=0.01, lot=1e-05)
    assert (price_precision(spot), size_precision(spot)) == (2, 5)
    assert size_increment(spot) == "0.00001"
    # A linear contract of 0.01 BTC traded in lots of 1 contract: base sizes step by 0.01,
    # though the lot itself has no decimals.
    okx = instrument("BTC-USDT-PERP", "linear_perpetual", 0.1, lot=1.0, contract_value=0.01)
    assert (price_precision(okx), size_precision(okx), size_increment(okx)) == (1, 2, "0.01")
    # 0.001 of a 0.01 BTC contract: 0.00001 BTC.
    fine = instrument("BTC-USDT-PERP", "linear_perpetual", 0.01, lot=0.001, contract_value=0.01)
    assert (size_precision(fine), size_increment(fine)) == (5, "0.00001")
    # Inverse contracts are refused: nautilus counts their sizes in quote-currency contracts.
    inverse = instrument("BTC-USD-PERP", "inverse_perpetual", 0.1, lot=1.0, contract_value=100.0)
    with pytest.raises(ExportInputError, match="BTC-USD-PERP are inverse contracts"):
        refuse_inverse({"BTC-USD-PERP": inverse, "BTC-USDT": spot})
    refuse_inverse({"BTC-USDT": spot, "BTC-USDT-PERP": okx})  # spot and linear pass
    assert increment(0.5, 2) == "0.50"


def test_a_step_finer_than_nautilus_holds_is_refused() -> None:
    with pytest.raises(ExportInputError, match="tick size needs 18 decimals"):
        price_precision(instrument(tick=1e-18))


def test_catalog_paths_name_each_type_s_and_each_instrument_s_directory() -> None:
    instruments = {
        "BTC-USDT": instrument(),
        "BTC-USDT-PERP": instrument("BTC-USDT-PERP", "linear_perpetual"),
    }
    paths = catalog_paths(instruments, ("trades", "candles", "books", "quotes"), "5m")
    assert [str(p) for p in paths] == [
        "data/currency_pair/BTC-USDT.BINANCE",
        "data/trade_tick/BTC-USDT.BINANCE",
        "data/bar/BTC-USDT.BINANCE-5-MINUTE-LAST-EXTERNAL",
        "data/order_book_depth10/BTC-USDT.BINANCE",
        "data/quote_tick/BTC-USDT.BINANCE",
        "data/crypto_perpetual/BTC-USDT-PERP.BINANCE",
        "data/trade_tick/BTC-USDT-PERP.BINANCE",
        "data/bar/BTC-USDT-PERP.BINANCE-5-MINUTE-LAST-EXTERNAL",
        "data/order_book_depth10/BTC-USDT-PERP.BINANCE",
        "data/quote_tick/BTC-USDT-PERP.BINANCE",
    ]


def test_nautilus_is_a_format_holding_trades_quotes_bars_and_books() -> None:
    assert FORMATS["nautilus"] is NautilusWriter
    assert writer_class("nautilus", ("books",)) is NautilusWriter
    with pytest.raises(ExportInputError, match="does not hold funding"):
        writer_class("nautilus", ("trades", "funding"))


class _NoTiers:
    """Only what run_export asks before it writes: the stored instruments (none)."""

    def instruments(self, exchange: str) -> list[Instrument]:
        return []


@pytest.mark.skipif(
    importlib.util.find_spec("nautilus_trader") is not None,
    reason="nautilus_trader is installed here",
)
def test_without_nautilus_trader_the_export_stops_with_one_line_before_writing(
    tmp_path: Path,
) -> None:
    out = tmp_path / "catalog"
    request = ExportRequest("nautilus", "binance", ("BTC-USDT",), ("trades",), T0, T0 + DAY_NS, out)
    tiered = cast("TieredQueries", _NoTiers())
    with pytest.raises(ExportInputError) as raised:
        run_export(request, tiered, progress=False)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("--to nautilus needs nautilus_trader 1.221 in the same Python")
    assert "make nautilus-env" in message
    assert ".venv-nautilus/bin/marketstream export --to nautilus" in message
    assert not out.exists()  # nothing written, not even the directory
    plan = ExportPlan(request, {"BTC-USDT": instrument()}, tmp_path / "staging")
    with pytest.raises(ExportInputError, match="No module named 'nautilus_trader'"):
        NautilusWriter(plan)
