"""Bybit v5's feed rules: one connection per market, topic subscriptions, pings and resyncs.

A subscription is split by market (`split`: spot, linear, inverse) and each part connects to
its market's URL; requests are `{"op": "subscribe", "args": [topics]}` in chunks the market
accepts. Quotes come from `orderbook.1` (a snapshot, then top-of-book deltas the mapper
applies); `tickers` serves funding and open interest, `allLiquidation` liquidations.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final
from urllib.parse import urlsplit, urlunsplit

import orjson

from marketstream.errors import ConfigError
from marketstream.schemas.instruments import DERIVATIVE_CHANNELS, Channel
from marketstream.venues.base.feed import check_channels
from marketstream.venues.base.venue import Subscription
from marketstream.venues.bybit.markets import (
    MARKETS,
    NAME,
    Market,
    market_of,
    market_of_symbol,
    native,
)

CHANNELS: Final[frozenset[Channel]] = frozenset(
    ("trades", "quotes", "candles", "books", "funding", "liquidations", "open_interest")
)
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
        "open_interest": "tickers",
        "liquidations": "allLiquidation",
    }
)


def split(subscription: Subscription) -> list[Subscription]:
    """One part per market (spot, linear, inverse), in that order; the derivative channels
    (funding, liquidations, open interest) on derivatives only."""
    parts: list[Subscription] = []
    for market in MARKETS.values():
        symbols = tuple(s for s in subscription.symbols if market_of_symbol(s) is market)
        if not symbols:
            continue
        channels = subscription.channels
        if not market.perp:
            channels = tuple(c for c in channels if c not in DERIVATIVE_CHANNELS)
            if not channels:
                raise ConfigError(
                    f"{NAME}: spot symbols {list(symbols)} have no channel: "
                    f"{', '.join(sorted(DERIVATIVE_CHANNELS))} are offered for derivatives only"
                )
        parts.append(Subscription(symbols, channels))
    return parts


def connect_url(base: str, subscription: Subscription) -> str:
    """`<base>/spot`, `<base>/linear` or `<base>/inverse` by the subscription's symbols (a
    trailing market in the configured URL is replaced, so either form of the base works)."""
    market = market_of(subscription.symbols)
    parts = urlsplit(base)
    path = parts.path.rstrip("/")
    head, _, last = path.rpartition("/")
    if last in MARKETS:
        path = head
    return urlunsplit(parts._replace(path=f"{path}/{market.name}"))


def _topics(market: Market, subscription: Subscription) -> list[str]:
    channels = check_channels(NAME, subscription.channels, CHANNELS)
    if not market.perp:
        spot_only = [c for c in channels if c in DERIVATIVE_CHANNELS]
        if spot_only:
            raise ConfigError(f"{NAME}: {spot_only[0]} is offered for derivatives only, not spot")
    topics = {  # a dict keeps the order; funding and open interest share `tickers`
        f"{_TOPICS[channel]}.{native(symbol)}": None
        for symbol in subscription.symbols
        for channel in channels
    }
    return list(topics)


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
    topic = f"{_TOPICS['books']}.{native(symbol)}"
    return [_request("unsubscribe", [topic]), _request("subscribe", [topic])]
