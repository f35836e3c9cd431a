"""Column layouts derived from the record classes: the single source every tier reads.

A `TableSpec` names a record's type, its table and stream segment (`trades`), its columns in
field order, and the keys that make a replayed record a no-op in an idempotent sink.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Annotated, Final, Union, get_args, get_origin, get_type_hints

from msgspec.structs import fields

from marketstream.schemas.records import (
    Book,
    Candle,
    Funding,
    Instrument,
    Kind,
    Liquidation,
    OpenInterest,
    Price,
    Quote,
    Record,
    Trade,
)


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: Kind
    nullable: bool


@dataclass(frozen=True, slots=True)
class TableSpec:
    """Everything a tier needs to store one record type."""

    record_type: str  # "trade": the `type` field of encoded records
    table: str  # "trades": the QuestDB/ClickHouse table, Parquet folder and stream segment
    cls: type[Record]
    columns: tuple[Column, ...]
    dedup_keys: tuple[str, ...]  # with `ts`, identify one record for upserts and checks
    timestamp: str = "ts"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.table} has no column {name!r}")


def _columns(cls: type[Record]) -> tuple[Column, ...]:
    hints = get_type_hints(cls, include_extras=True)
    columns = []
    for field in fields(cls):
        hint = hints[field.name]
        if get_origin(hint) is not Annotated:
            raise TypeError(f"{cls.__name__}.{field.name} has no column kind")
        inner, kind, *_ = get_args(hint)
        nullable = get_origin(inner) in (Union, types.UnionType) and type(None) in get_args(inner)
        columns.append(Column(field.name, kind, nullable))
    return tuple(columns)


def _spec(record_type: str, table: str, cls: type[Record], *keys: str) -> TableSpec:
    spec = TableSpec(record_type, table, cls, _columns(cls), keys)
    for key in (spec.timestamp, *keys):
        spec.column(key)  # a key that is not a column is a programming error: fail at import
    return spec


# Dedup keys: trades are unique by id; quotes by their receive time (several quotes may share
# an exchange millisecond); candles by interval (a later update of the same bar replaces the
# earlier one); books by sequence number; funding and open interest by their event time;
# liquidations (no exchange sends an id) by everything they hold; an instrument by the time
# its metadata was read; a polled price by its tick (a retried or hedged poll of the same tick
# is the same row).
TRADES: Final = _spec("trade", "trades", Trade, "ts", "exchange", "symbol", "trade_id")
QUOTES: Final = _spec("quote", "quotes", Quote, "ts", "exchange", "symbol", "recv_ts")
CANDLES: Final = _spec("candle", "candles", Candle, "ts", "exchange", "symbol", "interval")
BOOKS: Final = _spec("book", "books", Book, "ts", "exchange", "symbol", "seq")
FUNDING: Final = _spec("funding", "funding", Funding, "ts", "exchange", "symbol")
LIQUIDATIONS: Final = _spec(
    "liquidation", "liquidations", Liquidation, "ts", "exchange", "symbol", "side", "price", "size"
)
OPEN_INTEREST: Final = _spec(
    "open_interest", "open_interest", OpenInterest, "ts", "exchange", "symbol"
)
INSTRUMENTS: Final = _spec("instrument", "instruments", Instrument, "ts", "exchange", "symbol")
PRICES: Final = _spec("price", "prices", Price, "ts", "exchange", "symbol")

SPECS: Final[tuple[TableSpec, ...]] = (
    TRADES,
    QUOTES,
    CANDLES,
    BOOKS,
    FUNDING,
    LIQUIDATIONS,
    OPEN_INTEREST,
    INSTRUMENTS,
    PRICES,
)
SPEC_BY_TYPE: Final[dict[str, TableSpec]] = {s.record_type: s for s in SPECS}
SPEC_BY_TABLE: Final[dict[str, TableSpec]] = {s.table: s for s in SPECS}
SPEC_BY_CLASS: Final[dict[type[Record], TableSpec]] = {s.cls: s for s in SPECS}


def spec_of(record: Record) -> TableSpec:
    return SPEC_BY_CLASS[type(record)]


def levels_to_rows(levels: list[tuple[float, float]]) -> list[list[float]]:
    """Pairs (as exchanges send them) to the [prices, sizes] layout the stores keep.

    A 2 x N array lets SQL take `bids[1]` as the price ladder and `bids[1][1]` as the best bid
    in QuestDB and ClickHouse, and compresses better than interleaved pairs.
    """
    return [[price for price, _ in levels], [size for _, size in levels]]


def rows_to_levels(rows: list[list[float]] | None) -> list[tuple[float, float]]:
    if not rows:
        return []
    prices, sizes = rows
    return list(zip(prices, sizes, strict=True))
