"""Kraken spot's instrument metadata: `GET /0/public/AssetPairs`.

Pairs are keyed by Kraken's REST names (`XXBTZUSD`); `wsname` (`XBT/USD`) is the name the
v1 feed uses, and v2 says the same with today's asset names (`BTC/USD`, see `symbols.py`),
which is the native symbol recorded. Pairs without a `wsname` (the `.d` dark-pool books) have
no feed and are left out. Sizes are coins: every pair is spot, contract value 1.
"""

from __future__ import annotations

from typing import Final

from marketstream.schemas.records import Instrument
from marketstream.venues.base.listing import listed
from marketstream.venues.base.mapper import FrameError, answer_of
from marketstream.venues.base.parsing import JsonObject, field, load_object, show, text
from marketstream.venues.kraken.symbols import NAME, V1_ASSETS

ASSET_PAIRS_PATH: Final = "/0/public/AssetPairs"


def instrument_urls(rest_base: str) -> list[str]:
    return [f"{rest_base.rstrip('/')}{ASSET_PAIRS_PATH}"]


def parse_instruments(url: str, body: str | bytes, read_ts_ns: int) -> list[Instrument]:
    """`{"error": [], "result": {name: pair}}` -> instruments; FrameError (naming the URL) for
    an error answer or a malformed pair."""
    with answer_of(NAME, url):
        message = load_object(body)
        if message.get("error"):
            raise FrameError(f"AssetPairs: error {show(message['error'])}")
        result = field(message, "result", "AssetPairs")
        if type(result) is not dict:
            raise FrameError(f"AssetPairs: result {show(result)} is not a JSON object")
        instruments: list[Instrument] = []
        for name, pair in result.items():
            if type(pair) is not dict:
                raise FrameError(f"AssetPairs: pair {name} {show(pair)} is not a JSON object")
            instrument = _instrument(name, pair, read_ts_ns)
            if instrument is not None:
                instruments.append(instrument)
        return instruments


def _decimals(pair: JsonObject, key: str, what: str) -> float:
    value = field(pair, key, what)
    if type(value) is not int or value < 0:
        raise FrameError(f"{what}: {key} {show(value)} is not a count of decimals")
    return float(10.0**-value)


def _instrument(name: str, pair: JsonObject, read_ts_ns: int) -> Instrument | None:
    what = f"pair {name}"
    wsname = pair.get("wsname")
    if wsname is None:
        return None
    if type(wsname) is not str:
        raise FrameError(f"{what}: wsname {show(wsname)} is not a string")
    base, slash, quote = wsname.partition("/")
    base, quote = V1_ASSETS.get(base, base), V1_ASSETS.get(quote, quote)
    if not slash:
        return None
    tick = pair.get("tick_size")
    try:
        tick_size = float(tick) if tick is not None else _decimals(pair, "pair_decimals", what)
    except (TypeError, ValueError):
        raise FrameError(f"{what}: tick_size {show(tick)} is not a decimal number") from None
    return listed(
        NAME,
        f"{base}/{quote}",
        base,
        quote,
        read_ts_ns=read_ts_ns,
        tick_size=tick_size,
        lot_size=_decimals(pair, "lot_decimals", what),
        # Answers before 2023 carry no status: a listed pair was tradable.
        status=text(pair, "status", what) if "status" in pair else "online",
    )
