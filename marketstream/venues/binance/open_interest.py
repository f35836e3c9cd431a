"""USD-M open interest over REST: `GET /fapi/v1/openInterest?symbol=BTCUSDT` answers
`{"openInterest": "10659.509", "symbol": "BTCUSDT", "time": 1589437530011}`.

No public stream sends it, so ingest polls it (`ingest/rest_polls.py`); these are the pure
parts: the URL of one symbol and the answer as an `OpenInterest` record. USD-M open interest
is counted in base units (a contract is one base unit) and the answer carries no value.
"""

from __future__ import annotations

from marketstream.errors import ConfigError
from marketstream.schemas.records import Instrument, OpenInterest
from marketstream.venues.base.contracts import rule_for
from marketstream.venues.base.mapper import FrameError, in_venue
from marketstream.venues.base.parsing import millis, number, text
from marketstream.venues.binance.mapper import rest_answer
from marketstream.venues.binance.markets import Market


def open_interest_url(market: Market, rest_base: str, symbol: str) -> str:
    """The REST URL of one symbol's open interest; ConfigError where the market has none."""
    if market.open_interest_path is None:
        raise ConfigError(f"{market.name}: open interest is offered for derivatives only")
    return f"{rest_base.rstrip('/')}{market.open_interest_path}?symbol={market.native(symbol)}"


def parse_open_interest(
    market: Market, body: str | bytes, symbol: str, recv_ts: int, instrument: Instrument | None
) -> OpenInterest:
    """The answer for `symbol` as a record; FrameError for an error answer or another symbol."""
    what = "openInterest"
    try:
        data = rest_answer(body)
        native = text(data, "symbol", what)
        if native != market.native(symbol):
            raise FrameError(f"{what}: answer for {native!r}, expected {market.native(symbol)!r}")
        amount = number(data, "openInterest", what)
        rule = rule_for(symbol, instrument)
        if not rule.unit:
            raise FrameError(f"{what}: {symbol} sizes are not base units; no price to convert")
        return OpenInterest(market.name, symbol, millis(data, "time", what), recv_ts, amount)
    except FrameError as exc:
        raise in_venue(market.name, exc) from None
