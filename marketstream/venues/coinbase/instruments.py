"""Coinbase Exchange's instrument metadata: `GET /products`, a JSON list of spot products.

Product ids are already normalized symbols (`BTC-USD`); sizes are coins, so every product
is spot with a contract value of 1. Tick size is `quote_increment`, lot size `base_increment`.
"""

from __future__ import annotations

from typing import Final

from marketstream.schemas.records import Instrument
from marketstream.venues.base.listing import listed
from marketstream.venues.base.mapper import answer_of
from marketstream.venues.base.parsing import JsonObject, each_object, load_list, number, text
from marketstream.venues.coinbase.symbols import NAME

PRODUCTS_PATH: Final = "/products"


def instrument_urls(rest_base: str) -> list[str]:
    return [f"{rest_base.rstrip('/')}{PRODUCTS_PATH}"]


def parse_instruments(url: str, body: str | bytes, read_ts_ns: int) -> list[Instrument]:
    """The products' list -> instruments; FrameError (naming the URL) for anything else.
    Products whose id is no normalized symbol are left out (none were, in 2021)."""
    with answer_of(NAME, url):
        products = each_object(load_list(body), "products")
        found = (_instrument(product, read_ts_ns) for product in products)
        return [instrument for instrument in found if instrument is not None]


def _instrument(product: JsonObject, read_ts_ns: int) -> Instrument | None:
    product_id = text(product, "id", "product")
    what = f"product {product_id}"
    base, quote = text(product, "base_currency", what), text(product, "quote_currency", what)
    if product_id != f"{base}-{quote}":
        return None
    return listed(
        NAME,
        product_id,
        base,
        quote,
        read_ts_ns=read_ts_ns,
        tick_size=number(product, "quote_increment", what),
        lot_size=number(product, "base_increment", what),
        status=text(product, "status", what),
    )
