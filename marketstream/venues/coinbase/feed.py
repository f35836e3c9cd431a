"""Coinbase Exchange's feed rules (`wss://ws-feed.exchange.coinbase.com`): one subscribe
request for every product and channel, on the configured URL."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import orjson

from marketstream.schemas.instruments import Channel
from marketstream.venues.base.feed import check_channels
from marketstream.venues.base.venue import Subscription
from marketstream.venues.coinbase.symbols import NAME, native_symbol

CHANNELS: Final[frozenset[Channel]] = frozenset(("trades", "quotes", "books"))
# `level2` needs authentication now; `level2_batch` is the same book, batched, and public.
_FEED_CHANNELS: Final[Mapping[Channel, str]] = MappingProxyType(
    {"trades": "matches", "quotes": "ticker", "books": "level2_batch"}
)


def subscribe_messages(subscription: Subscription) -> list[str]:
    """One subscribe request for every product and channel, plus heartbeats."""
    channels = check_channels(NAME, subscription.channels, CHANNELS)
    request = {
        "type": "subscribe",
        "product_ids": [native_symbol(symbol) for symbol in subscription.symbols],
        # `heartbeat` sends one message per product per second, so a quiet product does not
        # look like a dead connection to the staleness watchdog.
        "channels": [_FEED_CHANNELS[channel] for channel in channels] + ["heartbeat"],
    }
    return [orjson.dumps(request).decode()]
