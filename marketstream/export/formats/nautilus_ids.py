"""NautilusTrader's names and precisions for our instruments, without importing it: instrument
ids, bar type strings, the instrument class of each kind, the catalog directories an export
creates, and the price and size precisions every Price and Quantity must be built with (the
catalog accepts a wrong precision silently; a BacktestNode then stops on the first tick)."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Final

from marketstream.export.request import ExportInputError
from marketstream.schemas.records import INVERSE_KINDS

if TYPE_CHECKING:
    from marketstream.schemas.records import Instrument

MAX_PRECISION: Final = 16  # nautilus_trader's 128-bit build (FIXED_PRECISION)

# Our instrument kinds as nautilus instrument classes, and their catalog directories.
INSTRUMENT_CLASSES: Final[dict[str, str]] = {
    "spot": "CurrencyPair",
    "linear_perpetual": "CryptoPerpetual",
    "inverse_perpetual": "CryptoPerpetual",
    "linear_future": "CryptoFuture",
    "inverse_future": "CryptoFuture",
}
INSTRUMENT_DIRS: Final[dict[str, str]] = {
    "CurrencyPair": "currency_pair",
    "CryptoPerpetual": "crypto_perpetual",
    "CryptoFuture": "crypto_future",
}
# Our record types (table names) as the catalog's data directories.
DATA_DIRS: Final[dict[str, str]] = {
    "trades": "trade_tick",
    "quotes": "quote_tick",
    "candles": "bar",
    "books": "order_book_depth10",
}
_BAR_UNITS: Final[dict[str, str]] = {"s": "SECOND", "m": "MINUTE", "h": "HOUR", "d": "DAY"}
_INTERVAL: Final = re.compile(r"(\d+)([smhd])")


def instrument_id(symbol: str, exchange: str) -> str:
    """`BTC-USDT-PERP.BINANCE`: our symbol, and the exchange as the venue."""
    return f"{symbol}.{exchange.upper()}"


def bar_spec(interval: str) -> str:
    """`1m` as nautilus spells a bar step: `1-MINUTE`."""
    match = _INTERVAL.fullmatch(interval)
    if match is None:
        raise ExportInputError(
            f"--interval {interval!r} has no nautilus bar step: expected e.g. 1m"
        )
    return f"{match[1]}-{_BAR_UNITS[match[2]]}"


def bar_type(symbol: str, exchange: str, interval: str) -> str:
    """`BTC-USDT.BINANCE-1-MINUTE-LAST-EXTERNAL`: bars of last prices, aggregated outside
    nautilus (by the exchange, or by us from trades)."""
    return f"{instrument_id(symbol, exchange)}-{bar_spec(interval)}-LAST-EXTERNAL"


def instrument_class(instrument: Instrument) -> str:
    """The nautilus instrument class of `instrument`'s kind."""
    name = INSTRUMENT_CLASSES.get(instrument.kind)
    if name is None:
        raise ExportInputError(
            f"{instrument.exchange} {instrument.symbol}: kind {instrument.kind!r} has no nautilus "
            f"instrument: expected one of {', '.join(INSTRUMENT_CLASSES)}"
        )
    return name


def _decimal(step: Decimal | float) -> Decimal:
    return step if isinstance(step, Decimal) else Decimal(repr(step))


def decimals(step: Decimal | float) -> int:
    """The decimal places of a step as written (0.01 -> 2, 1e-05 -> 5, 10.0 -> 0)."""
    exponent = _decimal(step).normalize().as_tuple().exponent
    assert isinstance(exponent, int)  # a finite float
    return max(0, -exponent)


def _checked(instrument: Instrument, what: str, precision: int) -> int:
    if precision > MAX_PRECISION:
        raise ExportInputError(
            f"{instrument.exchange} {instrument.symbol}: its {what} needs {precision} decimals, "
            f"nautilus holds at most {MAX_PRECISION}"
        )
    return precision


def refuse_inverse(instruments: dict[str, Instrument]) -> None:
    """Inverse contracts are not exported: nautilus counts their sizes in contracts of quote
    currency, ours are base units, so its PnL would come out wrong."""
    inverse = [symbol for symbol, i in instruments.items() if i.kind in INVERSE_KINDS]
    if inverse:
        raise ExportInputError(
            f"--to nautilus: {', '.join(inverse)} are inverse contracts, whose sizes "
            "nautilus counts in contracts of quote currency while ours are in base units: "
            "not exported, since its PnL would come out wrong; expected spot or linear "
            "instruments (tardis-csv and freqtrade export inverse ones in base units)"
        )


def base_step(instrument: Instrument) -> Decimal:
    """The smallest size step in base units (our sizes' unit): a lot of spot, a lot times
    the contract's base units for linear contracts."""
    step = Decimal(repr(instrument.lot_size))
    if instrument.kind != "spot":
        step *= Decimal(repr(instrument.contract_value))
        step *= Decimal(repr(instrument.contract_multiplier))
    return step.normalize()


def price_precision(instrument: Instrument) -> int:
    """The decimals of the tick size."""
    return _checked(instrument, "tick size", decimals(instrument.tick_size))


def size_precision(instrument: Instrument) -> int:
    """The decimals our base-unit sizes need: those of the lot and of the base-unit step."""
    needed = max(decimals(instrument.lot_size), decimals(base_step(instrument)))
    return _checked(instrument, "lot size", needed)


def increment(step: Decimal | float, precision: int) -> str:
    """A step as the text nautilus' Price/Quantity.from_str takes, at `precision` decimals."""
    return f"{_decimal(step):.{precision}f}"


def size_increment(instrument: Instrument) -> str:
    """The base-unit size step, at the size precision."""
    return increment(base_step(instrument), size_precision(instrument))


def catalog_paths(
    instruments: dict[str, Instrument], types: tuple[str, ...], interval: str
) -> list[Path]:
    """The catalog directories an export of `types` for these instruments (by symbol)
    creates, relative to the catalog root: each type's and each instrument's own."""
    paths = []
    for symbol, instrument in instruments.items():
        iid = instrument_id(symbol, instrument.exchange)
        paths.append(Path("data", INSTRUMENT_DIRS[instrument_class(instrument)], iid))
        for kind in types:
            name = bar_type(symbol, instrument.exchange, interval) if kind == "candles" else iid
            paths.append(Path("data", DATA_DIRS[kind], name))
    return paths
