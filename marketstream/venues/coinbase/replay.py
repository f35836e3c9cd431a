"""The replay server's Coinbase Exchange dialect: channels per product, answered by
`subscriptions`, on the feed's root path."""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlsplit

from marketstream.replay.dialect import EVERYONE, Route, Session, dumps, loads

# Message type -> the channels that carry it.
_CHANNELS_OF_TYPE: Final[dict[str, frozenset[str]]] = {
    "match": frozenset({"matches", "full"}),
    "last_match": frozenset({"matches", "full"}),
    "ticker": frozenset({"ticker", "ticker_batch"}),
    "snapshot": frozenset({"level2", "level2_batch"}),
    "l2update": frozenset({"level2", "level2_batch"}),
    "heartbeat": frozenset({"heartbeat"}),
    "status": frozenset({"status"}),
    "received": frozenset({"full"}),
    "open": frozenset({"full"}),
    "done": frozenset({"full"}),
    "change": frozenset({"full"}),
    "activate": frozenset({"full"}),
}
_CHANNELS: Final = frozenset().union(*_CHANNELS_OF_TYPE.values())
_PRODUCTLESS: Final = frozenset({"status"})
_ANSWERS: Final = frozenset({"subscriptions", "error"})


class CoinbaseDialect:
    """Coinbase Exchange feed: subscribe to channels per product, answered by `subscriptions`."""

    ws_path = ""

    def accepts_path(self, path: str) -> bool:
        return urlsplit(path).path in ("", "/")

    def route(self, frame: str, url: str = "") -> Route | None:
        message = loads(frame)
        if not isinstance(message, dict):
            return EVERYONE
        kind = message.get("type")
        if kind in _ANSWERS:
            return None  # recorded answers to subscribe messages: this server makes its own
        channels = _CHANNELS_OF_TYPE.get(str(kind))
        product = message.get("product_id")
        if channels is None or not isinstance(product, str | None):
            return EVERYONE
        return Route(product or "", channels)

    def open_session(self, path: str) -> Session:
        return CoinbaseSession()


class CoinbaseSession:
    """Channel -> product ids, changed by subscribe/unsubscribe messages."""

    def __init__(self) -> None:
        # dicts rather than sets: answers list channels and products in subscription order
        self._products: dict[str, dict[str, None]] = {}

    @property
    def active(self) -> bool:
        return any(self._products.values()) or any(c in self._products for c in _PRODUCTLESS)

    def wants(self, route: Route) -> bool:
        for channel in route.channels:
            products = self._products.get(channel)
            if products is not None and (channel in _PRODUCTLESS or route.topic in products):
                return True
        return False

    def render(self, frame: str) -> str:
        return frame

    def on_message(self, text: str) -> list[str]:
        request = loads(text)
        if not isinstance(request, dict):
            return [_error("Malformed JSON", "expected a JSON object")]
        kind = request.get("type")
        if kind not in ("subscribe", "unsubscribe"):
            return [_error("Failed to subscribe", f"unknown message type {kind!r}")]
        try:
            wanted = _channel_products(request, subscribe=kind == "subscribe")
        except ValueError as exc:
            return [_error(f"Failed to {kind}", str(exc))]
        for channel, products in wanted.items():
            current = self._products.setdefault(channel, {})
            if kind == "subscribe":
                current.update(dict.fromkeys(products))
            else:
                for product in products:
                    current.pop(product, None)
                if not current or not products:  # no products: the whole channel
                    del self._products[channel]
        return [self._subscriptions()]

    def _subscriptions(self) -> str:
        channels = [
            {"name": channel, "product_ids": list(products)}
            for channel, products in self._products.items()
        ]
        return dumps({"type": "subscriptions", "channels": channels})


def _channel_products(request: dict[str, Any], *, subscribe: bool) -> dict[str, list[str]]:
    """channel -> product ids of a subscribe/unsubscribe; ValueError says what is wrong."""
    default = request.get("product_ids", [])
    if not _is_str_list(default):
        raise ValueError("product_ids must be a list of strings")
    channels = request.get("channels")
    if not isinstance(channels, list) or not channels:
        raise ValueError("channels must be a non-empty list")
    wanted: dict[str, list[str]] = {}
    for entry in channels:
        if isinstance(entry, str):
            name, products = entry, default
        elif isinstance(entry, dict) and isinstance(entry.get("name"), str):
            name, products = entry["name"], entry.get("product_ids", default)
            if not _is_str_list(products):
                raise ValueError(f"{name}: product_ids must be a list of strings")
        else:
            raise ValueError("a channel is a name or {name, product_ids}")
        if name not in _CHANNELS:
            raise ValueError(f"{name} is not a valid channel")
        if subscribe and not products and name not in _PRODUCTLESS:
            raise ValueError(f"{name}: no product ids")
        wanted.setdefault(name, []).extend(products)
    return wanted


def _is_str_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _error(message: str, reason: str) -> str:
    return dumps({"type": "error", "message": message, "reason": reason})
