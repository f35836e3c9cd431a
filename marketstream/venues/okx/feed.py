"""OKX v5's feed rules: endpoints, subscribe requests, pings and book resubscription.

Candle channels live on the `/business` endpoint since OKX moved them there in June 2023;
everything else here is on `/public`, so a subscription with candles is split in two
connections. Funding, liquidations and open interest exist for derivatives only: spot symbols
are not subscribed to them. `liquidation-orders` takes an instType, not an instId (the mapper
keeps the configured instruments' liquidations).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import orjson

from marketstream.errors import ConfigError
from marketstream.schemas.instruments import DERIVATIVE_CHANNELS, Channel, parse_symbol
from marketstream.venues.base.feed import check_channels
from marketstream.venues.base.parsing import JsonObject
from marketstream.venues.base.venue import Subscription
from marketstream.venues.okx.symbols import NAME, native_symbol

CHANNELS: Final[frozenset[Channel]] = frozenset(
    ("trades", "quotes", "candles", "books", "funding", "liquidations", "open_interest")
)
_FEED_CHANNELS: Final[Mapping[Channel, str]] = MappingProxyType(
    {
        "trades": "trades",
        "quotes": "tickers",
        "candles": "candle1m",
        "books": "books",  # 400 levels: a snapshot, then changes every 100 ms
        "funding": "funding-rate",
        "liquidations": "liquidation-orders",  # by instType: every swap's (or future's)
        "open_interest": "open-interest",
    }
)
PUBLIC_PATH: Final = "/public"
BUSINESS_PATH: Final = "/business"
_BUSINESS_CHANNELS: Final[frozenset[Channel]] = frozenset(("candles",))
BOOK_DEPTH: Final = 400  # levels the `books` channel keeps, and the most REST returns
# OKX caps a request at 64 KB (4 KB in earlier versions of its docs): 4 KB fits either.
SUBSCRIBE_MAX_BYTES: Final = 4096
PING: Final = "ping"  # OKX answers the text `ping` with `pong`


def _endpoint(channel: Channel) -> str:
    return BUSINESS_PATH if channel in _BUSINESS_CHANNELS else PUBLIC_PATH


def split(subscription: Subscription) -> list[Subscription]:
    """Candles on `/business`, the rest on `/public`; a part with nothing to subscribe (funding
    of spot symbols only) is dropped, since OKX closes a connection that subscribes nothing."""
    public = tuple(c for c in subscription.channels if _endpoint(c) == PUBLIC_PATH)
    business = tuple(c for c in subscription.channels if _endpoint(c) == BUSINESS_PATH)
    parts = [Subscription(subscription.symbols, channels) for channels in (public, business)]
    return [part for part in parts if part.channels and _args(part)]


def connect_url(base: str, subscription: Subscription) -> str:
    """`<base>/public` or `<base>/business`, by the channels (see `split`)."""
    paths = {_endpoint(channel) for channel in subscription.channels}
    if len(paths) > 1:
        raise ConfigError(
            f"{NAME}: channels {', '.join(subscription.channels)} are served on different "
            f"endpoints ({PUBLIC_PATH}, {BUSINESS_PATH}): split the subscription first"
        )
    root = base.rstrip("/")
    for path in (PUBLIC_PATH, BUSINESS_PATH):
        root = root.removesuffix(path)  # a configured endpoint URL is taken as its base
    return root + (paths.pop() if paths else PUBLIC_PATH)


def _args(subscription: Subscription) -> list[JsonObject]:
    channels = check_channels(NAME, subscription.channels, CHANNELS)
    args: list[JsonObject] = []
    inst_types: dict[str, None] = {}  # liquidation-orders: one argument per instType
    for symbol in subscription.symbols:
        parts = parse_symbol(symbol)
        for channel in channels:
            if channel in DERIVATIVE_CHANNELS and not parts.derivative:
                continue  # spot has no funding, liquidations or open interest
            if channel == "funding" and not parts.perp:
                continue  # futures settle at expiry: no funding rate
            if channel == "liquidations":
                inst_type = "SWAP" if parts.perp else "FUTURES"
                if inst_type not in inst_types:
                    inst_types[inst_type] = None
                    args.append({"channel": _FEED_CHANNELS[channel], "instType": inst_type})
                continue
            args.append({"channel": _FEED_CHANNELS[channel], "instId": native_symbol(symbol)})
    return args


def subscribe_messages(subscription: Subscription) -> list[str]:
    """`{"op": "subscribe", "args": [...]}` requests of at most SUBSCRIBE_MAX_BYTES each."""
    messages: list[str] = []
    chunk: list[bytes] = []
    size = 0
    envelope = len(_request("subscribe", []))
    for arg in _args(subscription):
        encoded = orjson.dumps(arg)
        if chunk and envelope + size + len(encoded) + len(chunk) > SUBSCRIBE_MAX_BYTES:
            messages.append(_request("subscribe", chunk))
            chunk, size = [], 0
        chunk.append(encoded)
        size += len(encoded)
    if chunk:
        messages.append(_request("subscribe", chunk))
    return messages


def _request(op: str, encoded_args: list[bytes]) -> str:
    return f'{{"op":"{op}","args":[{b",".join(encoded_args).decode()}]}}'


def resubscribe_book(symbol: str) -> list[str]:
    """Unsubscribe and subscribe the symbol's book: OKX answers with a fresh snapshot."""
    arg = [orjson.dumps({"channel": _FEED_CHANNELS["books"], "instId": native_symbol(symbol)})]
    return [_request("unsubscribe", arg), _request("subscribe", arg)]
