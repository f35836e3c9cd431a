"""Bybit instrument metadata: `GET /v5/market/instruments-info?category=spot|linear|inverse`,
as normalized `Instrument` records.

Spot and linear sizes are base units (contract value 1 base); an inverse contract is worth
1 USD, so its base size is the USD amount over the price. Bybit answers up to 1000 records a
page (`limit=1000`); a category that outgrows a page names the next with `nextPageCursor`,
which `next_page` turns into the next page's URL (linear lists ~600 today, spot ~700: one
page each, but a cut list would look complete).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final
from urllib.parse import parse_qs, quote, urlsplit, urlunsplit

from marketstream.schemas.records import Instrument, InstrumentKind
from marketstream.venues.base.listing import listed
from marketstream.venues.base.mapper import FrameError, answer_of
from marketstream.venues.base.parsing import (
    JsonObject,
    load_object,
    mapping,
    number,
    objects,
    show,
    text,
)
from marketstream.venues.bybit.markets import NAME

PAGE_LIMIT: Final = 1000
CATEGORIES: Final = ("spot", "linear", "inverse")
NS_PER_MS: Final = 1_000_000
_KINDS: Final[Mapping[str, InstrumentKind]] = MappingProxyType(
    {
        "LinearPerpetual": "linear_perpetual",
        "LinearFutures": "linear_future",
        "InversePerpetual": "inverse_perpetual",
        "InverseFutures": "inverse_future",
    }
)


def instrument_urls(rest_base: str) -> list[str]:
    base = rest_base.rstrip("/")
    return [
        f"{base}/v5/market/instruments-info?category={category}&limit={PAGE_LIMIT}"
        for category in CATEGORIES
    ]


def parse_record(category: str, entry: JsonObject, read_ts_ns: int) -> Instrument | None:
    """One element of `result.list`; None for a contract type this pipeline does not carry
    (options)."""
    native = text(entry, "symbol", "instrument")
    what = f"symbol {native}"
    base = text(entry, "baseCoin", what)
    quote = text(entry, "quoteCoin", what)
    prices = mapping(entry, "priceFilter", what)
    lots = mapping(entry, "lotSizeFilter", what)
    status = text(entry, "status", what).lower()
    tick = number(prices, "tickSize", what)
    kind: InstrumentKind = "spot"
    expiry: int | None = None
    settle: str | None = None  # spot: the quote
    if category == "spot":
        lot = number(lots, "basePrecision", what)
    else:
        contract = _KINDS.get(text(entry, "contractType", what))
        if contract is None:
            return None
        kind = contract
        lot = number(lots, "qtyStep", what)
        settle = text(entry, "settleCoin", what)
        if kind in ("linear_future", "inverse_future"):
            delivery = text(entry, "deliveryTime", what)
            if not delivery.isdigit() or int(delivery) <= 0:
                raise FrameError(f"{what}: deliveryTime {show(delivery)} is not a time in ms")
            expiry = int(delivery) * NS_PER_MS
    # linear: 1 base unit per size unit; inverse: 1 USD per contract (the default value 1)
    return listed(
        NAME,
        native,
        base,
        quote,
        read_ts_ns=read_ts_ns,
        tick_size=tick,
        lot_size=lot,
        status=status,
        kind=kind,
        settle=settle,
        expiry=expiry,
    )


def next_page(url: str, body: str | bytes) -> str | None:
    """The URL of the page after this answer's (`cursor=<nextPageCursor>`), None when it was
    the last (the cursor empty or absent). A cursor is an opaque token, which Bybit's paged
    endpoints hand out URL-encoded: `%` is kept, so it goes back as it came, and only what
    would break the query is escaped. FrameError (naming the URL) for a cursor that is not
    a string, or that names this page again."""
    with answer_of(NAME, url):
        result = mapping(load_object(body), "result", "instruments-info")
        cursor = result.get("nextPageCursor")
        if cursor is None or cursor == "":
            return None
        if not isinstance(cursor, str):
            raise FrameError(f"nextPageCursor {show(cursor)} is not a string")
        parts = urlsplit(url)
        kept = [p for p in parts.query.split("&") if p and not p.startswith("cursor=")]
        following = urlunsplit(
            parts._replace(query="&".join([*kept, f"cursor={quote(cursor, safe='%')}"]))
        )
        if following == url:
            raise FrameError(f"nextPageCursor {show(cursor)} names this page again")
        return following


def _category(url: str, result: JsonObject) -> str:
    category = result.get("category")
    if category is None:
        category = (parse_qs(urlsplit(url).query).get("category") or [""])[0]
    if category not in CATEGORIES:
        raise FrameError(f"category {show(category)} is not one of {', '.join(CATEGORIES)}")
    return str(category)


def parse_instruments(url: str, body: str | bytes, read_ts_ns: int) -> list[Instrument]:
    """Every record of an instruments-info answer; FrameError (naming the URL) if malformed
    or an error answer (`retCode` other than 0)."""
    with answer_of(NAME, url):
        data = load_object(body)
        code = data.get("retCode")
        if code != 0:
            raise FrameError(f"retCode {show(code)}: {show(data.get('retMsg'))}")
        result = mapping(data, "result", "instruments-info")
        category = _category(url, result)
        entries = objects(result, "list", "instruments-info")
        found = (parse_record(category, entry, read_ts_ns) for entry in entries)
        return [instrument for instrument in found if instrument is not None]
