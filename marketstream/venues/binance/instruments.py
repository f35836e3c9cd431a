"""Binance instrument metadata: spot `GET /api/v3/exchangeInfo` and USD-M
`GET /fapi/v1/exchangeInfo`, as normalized `Instrument` records.

Spot and USD-M sizes are both in base-asset units (a USD-M contract is one base unit), so the
contract value is 1 on both; what the metadata adds is the native name of each symbol (no
list of quote assets guessed at), the kind (perpetual or quarterly future) and the expiry.
"""

from __future__ import annotations

from typing import Final

from marketstream.schemas.records import Instrument, InstrumentKind
from marketstream.venues.base.listing import listed
from marketstream.venues.base.mapper import FrameError, answer_of
from marketstream.venues.base.parsing import (
    JsonObject,
    field,
    number,
    objects,
    show,
    text,
)
from marketstream.venues.binance.mapper import rest_answer
from marketstream.venues.binance.markets import Market

NS_PER_MS: Final = 1_000_000
# USD-M contract types; a contract being delivered or delisted reads e.g. "CURRENT_QUARTER
# DELIVERING", so the first word decides. Others (an empty type for a settled contract) are
# not listed: their kind is unknown.
_PERPETUAL: Final = "PERPETUAL"
_QUARTERLY: Final = frozenset({"CURRENT_QUARTER", "NEXT_QUARTER", "CURRENT_MONTH", "NEXT_MONTH"})


def instrument_urls(market: Market, rest_base: str) -> list[str]:
    return [f"{rest_base.rstrip('/')}{market.exchange_info_path}"]


def status_of(value: str) -> str:
    """`trading` for an instrument that trades (every venue's word for it), else the
    venue's own status in lower case (`break`, `settling`, `pending_trading`)."""
    return value.lower()


def _filter(entry: JsonObject, kind: str, key: str, what: str) -> float:
    filters = field(entry, "filters", what)
    if type(filters) is list:
        for item in filters:
            if type(item) is dict and item.get("filterType") == kind:
                return number(item, key, f"{what} {kind}")
    raise FrameError(f"{what}: no {kind} filter with {key!r} in filters {show(filters)}")


def _kind(entry: JsonObject, what: str) -> tuple[InstrumentKind, int | None] | None:
    """USD-M: (kind, expiry in ns); None for a contract type that is neither."""
    contract = text(entry, "contractType", what).split(" ")[0]
    if contract == _PERPETUAL:
        return "linear_perpetual", None  # its deliveryDate is a year-2100 placeholder
    if contract in _QUARTERLY:
        delivery = field(entry, "deliveryDate", what)
        if type(delivery) is not int or delivery <= 0:
            raise FrameError(f"{what}: deliveryDate {show(delivery)} is not a time in ms")
        return "linear_future", delivery * NS_PER_MS
    return None


def _instrument(market: Market, entry: JsonObject, read_ts_ns: int) -> Instrument | None:
    native = text(entry, "symbol", "symbol entry")
    what = f"symbol {native}"
    base = text(entry, "baseAsset", what)
    quote = text(entry, "quoteAsset", what)
    kind: InstrumentKind = "spot"
    expiry: int | None = None
    if market.perp:
        found = _kind(entry, what)
        if found is None:
            return None
        kind, expiry = found
        settle = text(entry, "marginAsset", what)
    else:
        settle = quote
    # spot and USD-M sizes are base units: the default contract value of 1
    return listed(
        market.name,
        native,
        base,
        quote,
        read_ts_ns=read_ts_ns,
        tick_size=_filter(entry, "PRICE_FILTER", "tickSize", what),
        lot_size=_filter(entry, "LOT_SIZE", "stepSize", what),
        status=status_of(text(entry, "status", what)),
        kind=kind,
        settle=settle,
        expiry=expiry,
    )


def parse_instruments(
    market: Market, url: str, body: str | bytes, read_ts_ns: int
) -> list[Instrument]:
    """Every symbol of an exchangeInfo answer; FrameError (naming the URL) if malformed.
    USD-M contracts of an unknown contract type are left out (no kind to give them)."""
    with answer_of(market.name, url):
        data = rest_answer(body)
        entries = objects(data, "symbols", "exchangeInfo")
        found = (_instrument(market, entry, read_ts_ns) for entry in entries)
        return [instrument for instrument in found if instrument is not None]
