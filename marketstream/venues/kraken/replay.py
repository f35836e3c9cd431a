"""The replay server's Kraken dialect: WebSocket v2 and v1 on one endpoint.

Captures exist in both protocols and clients speak either, so a session accepts v2
requests (`{"method": "subscribe", "params": {...}}`) and v1 requests (`{"event":
"subscribe", ...}`), answers each in its own protocol, and is sent every recorded frame of
what it subscribed to, whichever protocol recorded it: frames are routed by channel and
pair, with v1's XBT and XDG read as BTC and DOGE so that XBT/USD and BTC/USD meet.
Book depths are not matched (a depth-25 subscription gets a recorded book-1000 feed);
candle intervals are, being different data.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

from marketstream.replay.dialect import EVERYONE, Route, Session, dumps, loads
from marketstream.venues.kraken.symbols import V1_ASSETS

_CHANNELS: Final = frozenset({"trade", "ticker", "book", "ohlc"})
_V1_CHANNELS: Final = _CHANNELS | {"spread"}
_V2_STATUS: Final = "status"  # sent on connecting: this server sends none
_V1_ANSWERS: Final = frozenset({"systemStatus", "subscriptionStatus", "pong"})
_V1_BOOK_DEPTH: Final = 10  # Kraken's defaults when a request names none
_V2_BOOK_DEPTH: Final = 10
_OHLC_INTERVAL: Final = 1


def canonical_pair(pair: str) -> str:
    """XBT/USD -> BTC/USD: the name v1 and v2 frames of one instrument share."""
    base, slash, quote = pair.partition("/")
    if not slash:
        return pair
    return f"{V1_ASSETS.get(base, base)}/{V1_ASSETS.get(quote, quote)}"


def _name(value: object) -> str:
    """A name from a decoded message, "" when it is not a string (a list is unhashable)."""
    return value if isinstance(value, str) else ""


def _ohlc(interval: object) -> str:
    return f"ohlc-{interval}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class KrakenDialect:
    """Kraken spot: `/v2` (live) and `/` (v1) both speak both protocols."""

    ws_path = "/v2"

    def accepts_path(self, path: str) -> bool:
        return urlsplit(path).path in ("", "/", "/v2")

    def route(self, frame: str, url: str = "") -> Route | None:
        message = loads(frame)
        if isinstance(message, list):
            return _route_v1(message)
        if not isinstance(message, dict):
            return EVERYONE
        channel, event = _name(message.get("channel")), _name(message.get("event"))
        if channel == "heartbeat" or event == "heartbeat":
            return EVERYONE  # every subscribed connection gets Kraken's heartbeats
        if channel == _V2_STATUS or event in _V1_ANSWERS or "method" in message:
            return None  # connection status and answers: this server makes its own
        if channel in _CHANNELS:
            return _route_v2(channel, message)
        return EVERYONE

    def open_session(self, path: str) -> Session:
        return KrakenSession()


def _route_v1(frame: list[Any]) -> Route:
    """`[channelID, payload..., channelName, pair]`; book-N goes to any book subscription."""
    if len(frame) < 4 or not isinstance(frame[-2], str) or not isinstance(frame[-1], str):
        return EVERYONE
    name, _, suffix = frame[-2].partition("-")
    if name not in _V1_CHANNELS:
        return EVERYONE
    channel = _ohlc(suffix) if name == "ohlc" else name
    return Route(canonical_pair(frame[-1]), frozenset({channel}))


def _route_v2(channel: str, message: dict[str, Any]) -> Route:
    """One symbol per message, as Kraken sends them: the first data item names it."""
    data = message.get("data")
    item = data[0] if isinstance(data, list) and data else None
    if not isinstance(item, dict) or not isinstance(item.get("symbol"), str):
        return EVERYONE
    key = _ohlc(item.get("interval")) if channel == "ohlc" else channel
    return Route(canonical_pair(item["symbol"]), frozenset({key}))


class KrakenSession:
    """The (channel, pair) pairs subscribed, from v1 and v2 requests alike."""

    def __init__(self) -> None:
        self._subscribed: set[tuple[str, str]] = set()
        self._channel_ids = itertools.count(1)

    @property
    def active(self) -> bool:
        return bool(self._subscribed)

    def wants(self, route: Route) -> bool:
        return any((channel, route.topic) in self._subscribed for channel in route.channels)

    def render(self, frame: str) -> str:
        return frame

    def on_message(self, text: str) -> list[str]:
        request = loads(text)
        if not isinstance(request, dict):
            return [dumps({"error": "Malformed request: not a JSON object", "success": False})]
        if "method" in request:
            return self._v2(request)
        if "event" in request:
            return self._v1(request)
        return [dumps({"error": "Malformed request: no method or event", "success": False})]

    # v2 --------------------------------------------------------------------------------

    def _v2(self, request: dict[str, Any]) -> list[str]:
        time_in = _now()
        method = request.get("method")
        extra = {"req_id": request["req_id"]} if "req_id" in request else {}
        if method == "ping":
            return [dumps({"method": "pong", **extra, "time_in": time_in, "time_out": _now()})]
        if method not in ("subscribe", "unsubscribe"):
            return [_v2_error(method, f"Method {method!r} not supported", extra, time_in)]
        params = request.get("params")
        if not isinstance(params, dict):
            return [_v2_error(method, "params must be an object", extra, time_in)]
        channel, symbols = _name(params.get("channel")), params.get("symbol")
        if channel not in _CHANNELS:
            reason = f"Channel {params.get('channel')!r} not supported"
            return [_v2_error(method, reason, extra, time_in)]
        if (
            not isinstance(symbols, list)
            or not symbols
            or not all(isinstance(s, str) for s in symbols)
        ):
            return [_v2_error(method, "symbol must be a non-empty list of pairs", extra, time_in)]
        result: dict[str, Any] = {"channel": channel}
        key = channel
        if channel == "book":
            result["depth"] = params.get("depth", _V2_BOOK_DEPTH)
        elif channel == "ohlc":
            result["interval"] = params.get("interval", _OHLC_INTERVAL)
            key = _ohlc(result["interval"])
        result["snapshot"] = params.get("snapshot", channel != "trade")  # Kraken's defaults
        answers = []
        for symbol in symbols:
            self._apply(method, key, symbol)
            answer = {"method": method, "result": {**result, "symbol": symbol}, "success": True}
            answers.append(dumps({**answer, **extra, "time_in": time_in, "time_out": _now()}))
        return answers

    # v1 --------------------------------------------------------------------------------

    def _v1(self, request: dict[str, Any]) -> list[str]:
        event = request.get("event")
        extra = {"reqid": request["reqid"]} if "reqid" in request else {}
        if event == "ping":
            return [dumps({"event": "pong", **extra})]
        if event not in ("subscribe", "unsubscribe"):
            return [
                dumps({"errorMessage": f"Unsupported event {event!r}", "event": "error", **extra})
            ]
        subscription, pairs = request.get("subscription"), request.get("pair")
        if (
            not isinstance(subscription, dict)
            or _name(subscription.get("name")) not in _V1_CHANNELS
        ):
            return [_v1_error("Subscription name invalid", subscription, None, extra)]
        name = subscription["name"]
        if not isinstance(pairs, list) or not pairs or not all(isinstance(p, str) for p in pairs):
            return [_v1_error("Pair(s) not found", subscription, None, extra)]
        key, channel_name = name, name
        if name == "book":
            channel_name = f"book-{subscription.get('depth', _V1_BOOK_DEPTH)}"
        elif name == "ohlc":
            key = channel_name = _ohlc(subscription.get("interval", _OHLC_INTERVAL))
        status = "subscribed" if event == "subscribe" else "unsubscribed"
        answers = []
        for pair in pairs:
            self._apply(event, key, pair)
            answer = {
                "channelID": next(self._channel_ids),
                "channelName": channel_name,
                "event": "subscriptionStatus",
                "pair": pair,
                "status": status,
                "subscription": subscription,
            }
            answers.append(dumps({**answer, **extra}))
        return answers

    def _apply(self, method: str, channel: str, pair: str) -> None:
        wanted = (channel, canonical_pair(pair))
        if method == "subscribe":
            self._subscribed.add(wanted)
        else:
            self._subscribed.discard(wanted)


def _v2_error(method: object, error: str, extra: dict[str, Any], time_in: str) -> str:
    answer = {"error": error, "method": method, "success": False, **extra}
    return dumps({**answer, "time_in": time_in, "time_out": _now()})


def _v1_error(message: str, subscription: object, pair: object, extra: dict[str, Any]) -> str:
    answer = {
        "errorMessage": message,
        "event": "subscriptionStatus",
        "pair": pair,
        "status": "error",
        "subscription": subscription,
    }
    return dumps({**answer, **extra})
