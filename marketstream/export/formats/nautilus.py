"""`--to nautilus`: a NautilusTrader `ParquetDataCatalog` written by nautilus_trader's own
catalog writer, so a `BacktestNode` loads it as is: TradeTick, QuoteTick, Bar (ts_event at
the bar's close) and OrderBookDepth10 (our books' top 10 levels), with the instruments.

nautilus_trader is imported only here, and only when this format is used: it pins pandas<3,
so it lives in its own environment (`make nautilus-env`, requirements-exports-nautilus.lock).
Its objects are handled as `Any`, since it ships no type stubs.

Every Price and Quantity is built with its instrument's precisions (`nautilus_ids`): the
catalog accepts any precision, but the backtest engine stops on a tick whose precision is
not its instrument's. A price or size finer than its instrument's tick or lot stops the
export (nautilus would round it); bar volumes (sums) are rounded. Sizes are in base units,
as everywhere in MarketStream, so inverse contracts (whose nautilus sizes are contracts of
quote currency) are refused.

`ts_init` is our receive time (the bar's close for bars). One `write_data` call (one file)
per type, instrument and day: a catalog directory's files must cover disjoint `ts_init`
ranges, so the few rows of a day received after midnight are written with the next day, and
a `ts_init` earlier than the last one written (a receive clock stepping back over midnight)
is moved up to just after it.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from marketstream.export.formats.nautilus_ids import (
    bar_type,
    catalog_paths,
    increment,
    instrument_class,
    instrument_id,
    price_precision,
    refuse_inverse,
    size_increment,
    size_precision,
)
from marketstream.export.request import ExportInputError
from marketstream.query.hot_queries import INTERVALS
from marketstream.tiers.days import NS_PER_DAY, day_start_ns

if TYPE_CHECKING:
    from pathlib import Path

    from marketstream.export.formats.base import ExportPlan
    from marketstream.export.reading import DayPiece
    from marketstream.schemas.records import Instrument

NAUTILUS_VERSION: Final = "1.221"
DEPTH: Final = 10

Row = tuple[Any, ...]  # (ts_init, ts_event, the type's values...)


def needs_nautilus(cause: str) -> ExportInputError:
    """The one-line error of an export to nautilus where nautilus_trader cannot be imported."""
    return ExportInputError(
        f"--to nautilus needs nautilus_trader {NAUTILUS_VERSION} in the same Python as "
        f"marketstream ({cause}): run `make nautilus-env`, then "
        "`.venv-nautilus/bin/marketstream export --to nautilus ...`"
    )


def _import(name: str) -> Any:
    try:
        return importlib.import_module(f"nautilus_trader.{name}")
    except ImportError as exc:
        raise needs_nautilus(str(exc)) from None


class _Nautilus:
    """The nautilus_trader modules the writer uses."""

    def __init__(self) -> None:
        self.catalog = _import("persistence.catalog")
        self.data = _import("model.data")
        self.enums = _import("model.enums")
        self.ids = _import("model.identifiers")
        self.instruments = _import("model.instruments")
        self.objects = _import("model.objects")


class _Target:
    """One instrument as nautilus sees it: its id, precisions and value builders."""

    def __init__(self, nt: _Nautilus, symbol: str, instrument: Instrument) -> None:
        self.nt = nt
        self.symbol = f"{instrument.exchange} {symbol}"
        self.price_precision = price_precision(instrument)
        self.size_precision = size_precision(instrument)
        self.id = nt.ids.InstrumentId.from_str(instrument_id(symbol, instrument.exchange))
        self.definition = self._definition(symbol, instrument)

    def price(self, value: float) -> Any:
        return self.nt.objects.Price(value, self.price_precision)

    def size(self, value: float | None) -> Any:
        return self.nt.objects.Quantity(value or 0.0, self.size_precision)

    def check(self, kind: str, table: pa.Table) -> None:
        """Every price and size of a piece fits the instrument's precisions (one vectorized
        pass before any object is built): a finer one would be rounded, so it is refused."""
        prices, sizes = _exact_columns(kind, table)
        for values in prices:
            self._fits(values, self.price_precision, "price", "tick size")
        for values in sizes:
            self._fits(values, self.size_precision, "size", "lot size")

    def _fits(self, values: Any, precision: int, what: str, step: str) -> None:
        array = np.asarray(pc.drop_null(values).to_numpy(zero_copy_only=False), np.float64)
        off = np.abs(np.round(array, precision) - array) > np.abs(array) * 1e-12
        if off.any():
            value = float(array[int(np.argmax(off))])
            raise ExportInputError(
                f"{self.symbol}: a {what} of {value!r} has more than {precision} decimals, the "
                f"{step} of its instrument definition: nautilus would round it; expected the "
                "definition to match the data (fix its tick or lot size, e.g. in the "
                "instruments cache)"
            )

    def _definition(self, symbol: str, instrument: Instrument) -> Any:
        objects = self.nt.objects
        currency = objects.Currency.from_str
        common: dict[str, Any] = {
            "instrument_id": self.id,
            "raw_symbol": self.nt.ids.Symbol(instrument.native_symbol),
            "quote_currency": currency(instrument.quote, strict=False),
            "price_precision": self.price_precision,
            "size_precision": self.size_precision,
            "price_increment": objects.Price.from_str(
                increment(instrument.tick_size, self.price_precision)
            ),
            "size_increment": objects.Quantity.from_str(size_increment(instrument)),
            "ts_event": instrument.ts,
            "ts_init": instrument.ts,
            "margin_init": Decimal(0),
            "margin_maint": Decimal(0),
            "maker_fee": Decimal(0),
            "taker_fee": Decimal(0),
        }
        name = instrument_class(instrument)
        cls = getattr(self.nt.instruments, name)
        base = currency(instrument.base, strict=False)
        if name == "CurrencyPair":
            return cls(base_currency=base, lot_size=None, **common)
        derivative = {
            "settlement_currency": currency(instrument.settle, strict=False),
            "is_inverse": instrument.kind.startswith("inverse"),
        }
        if name == "CryptoPerpetual":
            return cls(base_currency=base, **derivative, **common)
        if instrument.expiry is None:
            raise ExportInputError(
                f"{instrument.exchange} {symbol}: a {instrument.kind} without an expiry; "
                "a nautilus CryptoFuture needs one"
            )
        return cls(
            underlying=base,
            activation_ns=min(instrument.ts, instrument.expiry),
            expiration_ns=instrument.expiry,
            **derivative,
            **common,
        )


def _exact_columns(kind: str, table: pa.Table) -> tuple[list[Any], list[Any]]:
    """(price columns, size columns) of a piece that must fit the precisions exactly (bar
    volumes are sums: rounded); books' top DEPTH levels, flattened."""
    if kind == "trades":
        return [table.column("price")], [table.column("size")]
    if kind == "quotes":
        return [table.column(n) for n in ("bid_px", "ask_px")], [
            table.column(n) for n in ("bid_sz", "ask_sz")
        ]
    if kind == "candles":
        return [table.column(n) for n in ("open", "high", "low", "close")], []
    levels = [table.column(side).combine_chunks() for side in ("bids", "asks")]

    def top(side: Any, slot: int) -> Any:
        return pc.list_flatten(pc.list_slice(pc.list_element(side, slot), 0, DEPTH))

    return [top(side, 0) for side in levels], [top(side, 1) for side in levels]


def _times(table: pa.Table, name: str) -> list[int]:
    values: list[Any] = table.column(name).cast(pa.int64()).to_pylist()  # not null
    return values


def _trade_rows(table: pa.Table) -> list[Row]:
    columns = [table.column(n).to_pylist() for n in ("price", "size", "side", "trade_id")]
    return list(zip(_times(table, "recv_ts"), _times(table, "ts"), *columns, strict=True))


def _quote_rows(table: pa.Table) -> list[Row]:
    columns = [table.column(n).to_pylist() for n in ("bid_px", "ask_px", "bid_sz", "ask_sz")]
    return list(zip(_times(table, "recv_ts"), _times(table, "ts"), *columns, strict=True))


def _book_rows(table: pa.Table) -> list[Row]:
    columns = [table.column(n).to_pylist() for n in ("seq", "bids", "asks")]
    return list(zip(_times(table, "recv_ts"), _times(table, "ts"), *columns, strict=True))


def _bar_rows(table: pa.Table, step_ns: int) -> list[Row]:
    closes = [ts + step_ns for ts in _times(table, "ts")]
    columns = [table.column(n).to_pylist() for n in ("open", "high", "low", "close", "volume")]
    return list(zip(closes, closes, *columns, strict=True))


class NautilusWriter:
    """Writes each day piece into the catalog at `plan.root` as it comes."""

    TYPES: ClassVar[tuple[str, ...]] = ("trades", "quotes", "candles", "books")
    DEFAULT_TYPES: ClassVar[tuple[str, ...]] = ("trades", "quotes", "candles")

    def __init__(self, plan: ExportPlan) -> None:
        self._plan = plan
        self._nt = _Nautilus()
        self._catalog = self._nt.catalog.ParquetDataCatalog(str(plan.root))
        self._targets = {s: _Target(self._nt, s, i) for s, i in plan.instruments.items()}
        self._step_ns = INTERVALS[plan.request.interval]
        self._pending: dict[tuple[str, str], list[Row]] = {}
        self._last_init: dict[tuple[str, str], int] = {}
        self._builders: dict[str, Callable[[_Target, Row], Any]] = {
            "trades": self._trade,
            "quotes": self._quote,
            "books": self._depth,
            "candles": self._bar,
        }
        self._bar_types = {
            s: self._nt.data.BarType.from_str(bar_type(s, i.exchange, plan.request.interval))
            for s, i in plan.instruments.items()
        }
        for target in self._targets.values():
            self._catalog.write_data([target.definition])

    @classmethod
    def planned(cls, plan: ExportPlan) -> list[Path]:
        """The catalog's directories for each type and instrument, and the instruments'.
        Checked first: an export to nautilus without nautilus_trader fails before anything."""
        if importlib.util.find_spec("nautilus_trader") is None:
            raise needs_nautilus("it is not installed in this Python")
        refuse_inverse(plan.instruments)
        return catalog_paths(plan.instruments, plan.request.types, plan.request.interval)

    def write(self, piece: DayPiece) -> None:
        self._targets[piece.symbol].check(piece.type, piece.table)
        if piece.type == "trades":
            rows = _trade_rows(piece.table)
        elif piece.type == "quotes":
            rows = _quote_rows(piece.table)
        elif piece.type == "books":
            rows = _book_rows(piece.table)
        else:
            rows = _bar_rows(piece.table, self._step_ns)
        # Bars close within their day's range ((start, end]); events are written with the day
        # their receive time falls in, so each file's ts_init range is disjoint from the next.
        until = None if piece.type == "candles" else day_start_ns(piece.day) + NS_PER_DAY
        self._write((piece.type, piece.symbol), rows, until)

    def close(self) -> list[Path]:
        for key in list(self._pending):
            self._write(key, [], None)
        root = self._plan.root
        return sorted(path.relative_to(root) for path in root.rglob("*") if path.is_file())

    def _write(self, key: tuple[str, str], rows: list[Row], until: int | None) -> None:
        """`rows` and those held back, sorted by ts_init, in one file; rows at or after
        `until` are held back for the next call."""
        rows = self._pending.pop(key, []) + rows
        rows.sort(key=lambda row: row[0])
        if until is not None:
            cut = next((n for n, row in enumerate(rows) if row[0] >= until), len(rows))
            rows, self._pending[key] = rows[:cut], rows[cut:]
        if not rows:
            return
        floor = self._last_init.get(key, -1) + 1
        kind, symbol = key
        target, build = self._targets[symbol], self._builders[kind]
        objects = [build(target, (max(row[0], floor), *row[1:])) for row in rows]
        self._last_init[key] = max(floor, rows[-1][0])
        self._catalog.write_data(objects)

    def _trade(self, target: _Target, row: Row) -> Any:
        ts_init, ts_event, price, size, side, trade_id = row
        enums = self._nt.enums
        aggressor = enums.AggressorSide.BUYER if side == "buy" else enums.AggressorSide.SELLER
        return self._nt.data.TradeTick(
            target.id,
            target.price(price),
            target.size(size),
            aggressor,
            self._nt.ids.TradeId(trade_id),
            ts_event,
            ts_init,
        )

    def _quote(self, target: _Target, row: Row) -> Any:
        ts_init, ts_event, bid_px, ask_px, bid_sz, ask_sz = row
        return self._nt.data.QuoteTick(
            target.id,
            target.price(bid_px),
            target.price(ask_px),
            target.size(bid_sz),
            target.size(ask_sz),
            ts_event,
            ts_init,
        )

    def _bar(self, target: _Target, row: Row) -> Any:
        ts_init, ts_event, open_, high, low, close, volume = row
        symbol = target.id.symbol.value
        return self._nt.data.Bar(
            self._bar_types[symbol],
            target.price(open_),
            target.price(high),
            target.price(low),
            target.price(close),
            target.size(volume),
            ts_event,
            ts_init,
        )

    def _depth(self, target: _Target, row: Row) -> Any:
        """The top 10 levels of each side; the missing ones are nautilus' own null orders
        with a count of 0, as OrderBookDepth10 pads them itself."""
        ts_init, ts_event, seq, bids, asks = row
        data, enums = self._nt.data, self._nt.enums
        sides = []
        for levels, side in ((bids, enums.OrderSide.BUY), (asks, enums.OrderSide.SELL)):
            prices, sizes = levels or ([], [])
            orders = [
                data.BookOrder(side, target.price(p), target.size(s), 0)
                for p, s in zip(prices[:DEPTH], sizes[:DEPTH], strict=True)
            ]
            counts = [1] * len(orders) + [0] * (DEPTH - len(orders))
            sides.append((orders + [data.NULL_ORDER] * (DEPTH - len(orders)), counts))
        (bid_orders, bid_counts), (ask_orders, ask_counts) = sides
        flags = enums.RecordFlag.F_SNAPSHOT | enums.RecordFlag.F_LAST
        return data.OrderBookDepth10(
            target.id,
            bid_orders,
            ask_orders,
            bid_counts,
            ask_counts,
            flags,
            seq,
            ts_event,
            ts_init,
        )
