"""Bybit v5's feed rules: one connection per market, topic subscriptions, pings and resyncs.

A subscription is split by market (`split`) and each part connects to its market's URL;
requests are `{"op": "subscribe", "args": [topics]}` in chunks the market accepts.
Quotes come from `orderbook.1` rather than `tickers`: depth 1 sends only snapshots, while
`tickers` sends deltas with just the changed fields, which a pure mapper cannot complete.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final
from urllib.parse import urlsplit, urlunsplit

import orjson

from marketstream.errors import ConfigError
from marketstream.schemas.instruments import Channel, parse_symbol
from marketstream.venues.base.feed import check_channels
from marketstream.venues.base.symbols import joined_symbol
from marketstream.venues.base.venue import Subscription
from marketstream.venues.bybit.markets import MARKETS, NAME, Market, market_of

CHANNELS: Final[frozenset[Channel]] = frozenset(("trades", "quotes", "candles", "books", "funding"))
BOOK_DEPTH: Final = 50  # levels per side of the `orderbook.50` topic
PING: Final = '{"op":"ping"}'
PING_INTERVAL_S: Final = 20.0  # Bybit's advice; without pings the server drops the socket
# Bybit caps a public connection's topics at 21,000 characters of "args"; 400 topics of up
# to ~40 characters each ("orderbook.50.1000000BABYDOGEUSDT" and quoting) stay below it.
MAX_TOPICS_PER_CONNECTION: Final = 400
# No documented rate for public subscribe requests; this keeps well clear of a flood.
MAX_MESSAGES_PER_S: Final = 10.0

_TOPICS: Final[Mapping[Channel, str]] = MappingProxyType(
    {
        "trades": "publicTrade",
        "quotes": "orderbook.1",
        "candles": "kline.1",
        "books": f"orderbook.{BOOK_DEPTH}",
        "funding": "tickers",
    }
)


def split(subscription: Subscription) -> list[Subscription]:
    """Spot symbols and -PERP symbols on their own connections; funding on perps only."""
    spot = tuple(s for s in subscription.symbols if not parse_symbol(s).perp)
    perps = tuple(s for s in subscription.symbols if parse_symbol(s).perp)
    parts: list[Subscription] = []
    if spot:
        channels = tuple(c for c in subscription.channels if c != "funding")
        if not channels:
            raise ConfigError(
                f"{NAME}: spot symbols {list(spot)} have no channel: funding is offered for "
                "perpetual swaps only"
            )
        parts.append(Subscription(spot, channels))
    if perps:
        parts.append(Subscription(perps, subscription.channels))
    return parts


def connect_url(base: str, subscription: Subscription) -> str:
    """`<base>/spot` or `<base>/linear` by the subscription's symbols (a trailing market
    in the configured URL is replaced, so either form of the base works)."""
    market = market_of(subscription.symbols)
    parts = urlsplit(base)
    path = parts.path.rstrip("/")
    head, _, last = path.rpartition("/")
    if last in MARKETS:
        path = head
    return urlunsplit(parts._replace(path=f"{path}/{market.name}"))


def _topics(market: Market, subscription: Subscription) -> list[str]:
    channels = check_channels(NAME, subscription.channels, CHANNELS)
    if "funding" in channels and not market.perp:
        raise ConfigError(f"{NAME}: funding is offered for perpetual swaps only, not spot")
    return [
        f"{_TOPICS[channel]}.{joined_symbol(symbol)}"
        for symbol in subscription.symbols
        for channel in channels
    ]


def _request(op: str, topics: list[str]) -> str:
    return orjson.dumps({"op": op, "args": topics}).decode()


def subscribe_messages(subscription: Subscription) -> list[str]:
    """Subscribe requests of at most the market's args per request."""
    market = market_of(subscription.symbols)
    topics = _topics(market, subscription)
    step = market.topics_per_request
    return [_request("subscribe", topics[i : i + step]) for i in range(0, len(topics), step)]


def resubscribe_book(symbol: str) -> list[str]:
    """Unsubscribe and subscribe the symbol's book again: the feed answers with a snapshot."""
    topic = f"{_TOPICS['books']}.{joined_symbol(symbol)}"
    return [_request("unsubscribe", [topic]), _request("subscribe", [topic])]
