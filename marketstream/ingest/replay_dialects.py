"""The server side of each exchange's WebSocket protocol, as the replay server speaks it.

A dialect knows two things: which subscription a recorded frame belongs to (`route`, once
per frame), and how one connection subscribes (`Session`: answers the client's messages and
says whether it wants a frame). The replay server does the rest, the same for all dialects.
Adding Kraken, OKX or Bybit means one more `Dialect` here and an entry in `DIALECTS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Protocol
from urllib.parse import parse_qs, urlsplit

import orjson

from marketstream.ingest.replay_dialects_bybit import BybitDialect
from marketstream.ingest.replay_dialects_kraken import KrakenDialect
from marketstream.ingest.replay_dialects_okx import OkxDialect


@dataclass(frozen=True, slots=True)
class Route:
    """What a subscription must name for a recorded frame to be sent.

    `topic` is the exchange's own name for the subscribed thing (a Binance stream, a
    Coinbase product id); `channels` the channels that carry the frame where the exchange
    subscribes to topic and channel separately (Coinbase), empty otherwise.
    """

    topic: str
    channels: frozenset[str] = frozenset()
    # A frame the dialect cannot place (not JSON, unknown shape): every subscribed connection
    # gets it, as a live feed's garbage reaches whoever listens. Never dropped silently.
    everyone: bool = False


EVERYONE: Final = Route("", everyone=True)


class Session(Protocol):
    """One connection's subscriptions."""

    @property
    def active(self) -> bool:
        """Subscribed to something: the replay advances only while some session is."""
        ...

    def on_message(self, text: str) -> list[str]:
        """Apply a client message; return the answers to send, in order."""
        ...

    def wants(self, route: Route) -> bool: ...

    def render(self, frame: str) -> str:
        """The text to send for a wanted recorded frame (usually the frame itself)."""
        ...


class Dialect(Protocol):
    # Path of the WebSocket URL the server advertises ("" for the root).
    @property
    def ws_path(self) -> str: ...

    def accepts_path(self, path: str) -> bool:
        """Whether a WebSocket upgrade to this path (with query) is a feed connection."""
        ...

    def route(self, frame: str, url: str = "") -> Route | None:
        """Where a recorded frame goes; None for the frames this server generates itself
        (subscription answers a capture recorded), which are never sent. `url` is the URL the
        frame was recorded on: where one topic exists on several endpoints (Bybit spot and
        linear) it tells them apart."""
        ...

    def open_session(self, path: str) -> Session: ...


def _loads(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


# Binance ----------------------------------------------------------------------------------

_BINANCE_INVALID_JSON: Final = 3  # Binance's own error codes for the combined stream API
_BINANCE_INVALID_REQUEST: Final = 2
_BINANCE_ANSWER: Final = frozenset({"result", "error", "id"})


class BinanceDialect:
    """Binance spot and USD-M futures: `/stream` (combined, wrapped) and `/ws` (raw)."""

    ws_path = "/stream"

    def accepts_path(self, path: str) -> bool:
        base = urlsplit(path).path
        return base in ("/stream", "/ws") or base.startswith("/ws/")

    def route(self, frame: str, url: str = "") -> Route | None:
        message = _loads(frame)
        if isinstance(message, dict) and isinstance(message.get("stream"), str):
            return Route(message["stream"].lower())
        if isinstance(message, dict) and "id" in message and message.keys() <= _BINANCE_ANSWER:
            return None  # a recorded answer to SUBSCRIBE & co: this server makes its own
        return EVERYONE

    def open_session(self, path: str) -> Session:
        return BinanceSession(path)


class BinanceSession:
    """Subscriptions from the URL (`?streams=a/b`, `/ws/a`) and SUBSCRIBE messages."""

    def __init__(self, path: str) -> None:
        parts = urlsplit(path)
        self._raw = parts.path == "/ws" or parts.path.startswith("/ws/")
        self._streams: list[str] = []
        if parts.path.startswith("/ws/"):
            self._streams.extend(s for s in parts.path[len("/ws/") :].split("/") if s)
        for value in parse_qs(parts.query).get("streams", []):
            self._streams.extend(s for s in value.split("/") if s)
        self._wanted = {s.lower() for s in self._streams}

    @property
    def active(self) -> bool:
        return bool(self._streams)

    def wants(self, route: Route) -> bool:
        return route.topic in self._wanted

    def render(self, frame: str) -> str:
        return _unwrap_binance(frame) if self._raw else frame

    def on_message(self, text: str) -> list[str]:
        request = _loads(text)
        if not isinstance(request, dict):
            return [_binance_error(_BINANCE_INVALID_JSON, "Invalid JSON", None)]
        request_id = request.get("id")
        if not isinstance(request_id, int | str | None) or isinstance(request_id, bool):
            return [_binance_error(_BINANCE_INVALID_REQUEST, "Invalid request: bad id", None)]
        method = request.get("method")
        params = request.get("params", [])
        if method == "LIST_SUBSCRIPTIONS":
            return [_dumps({"result": list(self._streams), "id": request_id})]
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE"):
            reason = f"Invalid request: unknown method {method!r}"
            return [_binance_error(_BINANCE_INVALID_REQUEST, reason, request_id)]
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            reason = "Invalid request: params must be a list of stream names"
            return [_binance_error(_BINANCE_INVALID_REQUEST, reason, request_id)]
        if method == "SUBSCRIBE":
            for stream in params:
                if stream.lower() not in self._wanted:
                    self._streams.append(stream)
                    self._wanted.add(stream.lower())
        else:
            dropped = {p.lower() for p in params}
            self._streams = [s for s in self._streams if s.lower() not in dropped]
            self._wanted -= dropped
        return [_dumps({"result": None, "id": request_id})]


def _binance_error(code: int, message: str, request_id: object) -> str:
    return _dumps({"error": {"code": code, "msg": message}, "id": request_id})


def _unwrap_binance(frame: str) -> str:
    """The `data` of a combined-stream frame, byte for byte where the layout allows."""
    prefix_end = frame.find(',"data":')
    if frame.startswith('{"stream":"') and frame.endswith("}") and prefix_end > 0:
        return frame[prefix_end + len(',"data":') : -1]
    message = _loads(frame)
    if isinstance(message, dict) and "data" in message:
        return _dumps(message["data"])
    return frame


# Coinbase ---------------------------------------------------------------------------------

# Message type -> the channels that carry it.
_COINBASE_CHANNELS_OF_TYPE: Final[dict[str, frozenset[str]]] = {
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
_COINBASE_CHANNELS: Final = frozenset().union(*_COINBASE_CHANNELS_OF_TYPE.values())
_PRODUCTLESS: Final = frozenset({"status"})
_COINBASE_ANSWERS: Final = frozenset({"subscriptions", "error"})


class CoinbaseDialect:
    """Coinbase Exchange feed: subscribe to channels per product, answered by `subscriptions`."""

    ws_path = ""

    def accepts_path(self, path: str) -> bool:
        return urlsplit(path).path in ("", "/")

    def route(self, frame: str, url: str = "") -> Route | None:
        message = _loads(frame)
        if not isinstance(message, dict):
            return EVERYONE
        kind = message.get("type")
        if kind in _COINBASE_ANSWERS:
            return None  # recorded answers to subscribe messages: this server makes its own
        channels = _COINBASE_CHANNELS_OF_TYPE.get(str(kind))
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
        request = _loads(text)
        if not isinstance(request, dict):
            return [_coinbase_error("Malformed JSON", "expected a JSON object")]
        kind = request.get("type")
        if kind not in ("subscribe", "unsubscribe"):
            return [_coinbase_error("Failed to subscribe", f"unknown message type {kind!r}")]
        try:
            wanted = _coinbase_channel_products(request, subscribe=kind == "subscribe")
        except ValueError as exc:
            return [_coinbase_error(f"Failed to {kind}", str(exc))]
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
        return _dumps({"type": "subscriptions", "channels": channels})


def _coinbase_channel_products(request: dict[str, Any], *, subscribe: bool) -> dict[str, list[str]]:
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
        if name not in _COINBASE_CHANNELS:
            raise ValueError(f"{name} is not a valid channel")
        if subscribe and not products and name not in _PRODUCTLESS:
            raise ValueError(f"{name}: no product ids")
        wanted.setdefault(name, []).extend(products)
    return wanted


def _is_str_list(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _coinbase_error(message: str, reason: str) -> str:
    return _dumps({"type": "error", "message": message, "reason": reason})


def _dumps(value: object) -> str:
    return orjson.dumps(value).decode()


DIALECTS: Final[dict[str, Dialect]] = {
    "binance": BinanceDialect(),
    "binance-usdm": BinanceDialect(),
    "bybit": BybitDialect(),
    "coinbase": CoinbaseDialect(),
    "kraken": KrakenDialect(),
    "okx": OkxDialect(),
}
