"""Kraken spot's feed rules (`wss://ws.kraken.com/v2`): v2 subscribe requests, one per channel.

Quotes come from the v2 `ticker` channel with `event_trigger: bbo`: a quote on every change
of the best bid or offer, where the default (`trades`) publishes one only when a trade
happens. Kraken serves no REST snapshot to bridge a book gap: a new subscription starts with
one, so a book is resynced by unsubscribing and subscribing it again.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import orjson

from marketstream.schemas.instruments import Channel
from marketstream.venues.base.feed import check_channels
from marketstream.venues.base.venue import Subscription
from marketstream.venues.kraken.symbols import NAME, native_symbol

CHANNELS: Final[frozenset[Channel]] = frozenset(("trades", "quotes", "candles", "books"))
_FEED_CHANNELS: Final[Mapping[Channel, str]] = MappingProxyType(
    {"trades": "trade", "quotes": "ticker", "candles": "ohlc", "books": "book"}
)
BOOK_DEPTH: Final = 25  # levels per side subscribed; the keeper truncates to it
TICKER_TRIGGER: Final = "bbo"  # a ticker on every best bid/offer change, not per trade
CANDLE_MINUTES: Final = 1
PING: Final = '{"method":"ping"}'


def _request(method: str, channel: str, natives: list[str]) -> str:
    params: dict[str, object] = {"channel": channel, "symbol": natives}
    if channel == "book":
        params["depth"] = BOOK_DEPTH  # an unsubscribe must name the depth it subscribed
    elif channel == "ohlc":
        params["interval"] = CANDLE_MINUTES
    elif channel == "ticker":
        params["event_trigger"] = TICKER_TRIGGER
    return orjson.dumps({"method": method, "params": params}).decode()


def subscribe_messages(subscription: Subscription) -> list[str]:
    """One v2 subscribe request per channel, for every symbol."""
    channels = check_channels(NAME, subscription.channels, CHANNELS)
    natives = [native_symbol(symbol) for symbol in subscription.symbols]
    # Books first: their snapshot is what the other channels' requests would delay most.
    ordered = sorted(channels, key=lambda channel: channel != "books")
    return [_request("subscribe", _FEED_CHANNELS[c], natives) for c in ordered]


def resubscribe_book(symbol: str) -> list[str]:
    """Kraken serves no REST snapshot to bridge; a new subscription starts with one."""
    natives = [native_symbol(symbol)]
    return [_request("unsubscribe", "book", natives), _request("subscribe", "book", natives)]
