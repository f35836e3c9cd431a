"""OKX v5's side of the replay server: `{"op": "subscribe", "args": [...]}` per connection.

A recording may hold frames of both OKX endpoints, `/ws/v5/public` and `/ws/v5/business`
(each line's url says which). Every push names its channel and instrument, and each channel
lives on one endpoint, so frames are routed by (channel, instId), or by (channel, instType)
for channels subscribed by type (`liquidation-orders`); a session accepts only the
channels of the endpoint it connected to, answering the others with OKX's own error, so that
a client using the wrong URL fails here as it would live.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

from marketstream.replay.dialect import EVERYONE, Route, dumps, loads

WS_BASE_PATH: Final = "/ws/v5"
PUBLIC_PATH: Final = f"{WS_BASE_PATH}/public"
BUSINESS_PATH: Final = f"{WS_BASE_PATH}/business"
# Channels OKX serves on /business among the public market data (candles since June 2023).
_BUSINESS_PREFIXES: Final = ("candle", "mark-price-candle", "index-candle", "trades-all")
_INVALID_REQUEST: Final = "60012"  # OKX's error codes for bad requests
_WRONG_URL_OR_CHANNEL: Final = "60018"


def _on_business(channel: str) -> bool:
    return channel.startswith(_BUSINESS_PREFIXES)


class OkxDialect:
    """OKX v5 public market data on its two endpoints."""

    # The base the configured URL names; clients append /public or /business to it.
    ws_path = WS_BASE_PATH

    def accepts_path(self, path: str) -> bool:
        return urlsplit(path).path in (PUBLIC_PATH, BUSINESS_PATH)

    def route(self, frame: str, url: str = "") -> Route | None:
        if frame == "pong":
            return None  # a recorded answer to the recorder's ping: this server makes its own
        message = loads(frame)
        if not isinstance(message, dict):
            return EVERYONE
        if "event" in message:
            return None  # recorded (un)subscribe answers, errors and notices
        arg = message.get("arg")
        if isinstance(arg, dict) and "data" in message:
            channel, topic = arg.get("channel"), _topic(arg)
            if isinstance(channel, str) and isinstance(topic, str):
                return Route(topic, frozenset((channel,)))
        return EVERYONE

    def open_session(self, path: str) -> OkxSession:
        return OkxSession(business=urlsplit(path).path == BUSINESS_PATH)


class OkxSession:
    """Channel -> instIds, changed by subscribe/unsubscribe; `ping` is answered `pong`."""

    def __init__(self, *, business: bool) -> None:
        self._business = business
        self._subscribed: dict[str, dict[str, None]] = {}  # dicts: subscription order

    @property
    def active(self) -> bool:
        return any(self._subscribed.values())

    def wants(self, route: Route) -> bool:
        return any(route.topic in self._subscribed.get(c, ()) for c in route.channels)

    def render(self, frame: str) -> str:
        return frame

    def on_message(self, text: str) -> list[str]:
        if text == "ping":
            return ["pong"]
        request = loads(text)
        op = request.get("op") if isinstance(request, dict) else None
        args = request.get("args") if isinstance(request, dict) else None
        if op not in ("subscribe", "unsubscribe") or not isinstance(args, list) or not args:
            return [_error(_INVALID_REQUEST, f"Invalid request: {text}")]
        return [self._apply(op, arg) for arg in args]

    def _apply(self, op: str, arg: object) -> str:
        """One argument: OKX answers each one of a request separately."""
        if not isinstance(arg, dict) or not isinstance(arg.get("channel"), str):
            return _error(_INVALID_REQUEST, f"Invalid request: {dumps(arg)}")
        channel, inst_id = arg["channel"], _topic(arg)
        if not isinstance(inst_id, str) or _on_business(channel) != self._business:
            return _error(
                _WRONG_URL_OR_CHANNEL,
                f"Wrong URL or channel:{channel},instId:{inst_id} doesn't exist. Please use "
                "the correct URL, channel and parameters referring to API document.",
            )
        if op == "subscribe":
            self._subscribed.setdefault(channel, {})[inst_id] = None
        else:
            self._subscribed.get(channel, {}).pop(inst_id, None)
        return dumps({"event": op, "arg": arg})


def _topic(arg: dict[str, object]) -> object:
    """What a push or subscription is about: its instId, or its instType for channels
    subscribed by type (`liquidation-orders`)."""
    return arg.get("instId") or arg.get("instType", "")


def _error(code: str, message: str) -> str:
    return dumps({"event": "error", "code": code, "msg": message})
