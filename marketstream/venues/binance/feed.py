"""Binance's WebSocket feed rules: stream names and SUBSCRIBE requests.

Streams are subscribed by message on the configured URL (the combined-stream endpoint);
Binance pings at the WebSocket level and the client pongs, so no application ping is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import orjson

from marketstream.schemas.instruments import Channel
from marketstream.venues.base.feed import check_channels
from marketstream.venues.base.venue import Subscription
from marketstream.venues.binance.markets import Market

SUBSCRIBE_CHUNK: Final = 100  # streams per SUBSCRIBE message

_STREAMS: Final[Mapping[Channel, str]] = MappingProxyType(
    {
        "trades": "aggTrade",
        "quotes": "bookTicker",
        "candles": "kline_1m",
        "books": "depth@100ms",
        "funding": "markPrice@1s",
        "liquidations": "forceOrder",
    }
)
# Channels served over REST (polled by `ingest/rest_polls.py`), not by a stream.
POLLED: Final[frozenset[Channel]] = frozenset({"open_interest"})


def streams(market: Market, subscription: Subscription) -> list[str]:
    channels = check_channels(market.name, subscription.channels, market.channels)
    return [
        f"{market.native(symbol).lower()}@{_STREAMS[channel]}"
        for symbol in subscription.symbols
        for channel in channels
        if channel not in POLLED
    ]


def subscribe_messages(market: Market, subscription: Subscription) -> list[str]:
    """SUBSCRIBE requests of at most SUBSCRIBE_CHUNK streams each, numbered from 1."""
    names = streams(market, subscription)
    if not names:
        return []  # only polled channels: nothing to subscribe to
    chunks = [
        names[start : start + SUBSCRIBE_CHUNK] for start in range(0, len(names), SUBSCRIBE_CHUNK)
    ]
    return [
        orjson.dumps({"method": "SUBSCRIBE", "params": chunk, "id": request_id}).decode()
        for request_id, chunk in enumerate(chunks, start=1)
    ]
