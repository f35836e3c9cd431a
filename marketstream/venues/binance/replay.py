"""The replay server's Binance dialect: spot and USD-M futures share one stream protocol.

`/stream` serves combined streams (each frame wrapped as `{"stream", "data"}`), `/ws` raw
ones; subscriptions come from the URL (`?streams=a/b`, `/ws/a`) and from SUBSCRIBE messages.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import parse_qs, urlsplit

from marketstream.replay.dialect import EVERYONE, Route, Session, dumps, loads

_INVALID_JSON: Final = 3  # Binance's own error codes for the combined stream API
_INVALID_REQUEST: Final = 2
_ANSWER_KEYS: Final = frozenset({"result", "error", "id"})
_STREAM_PREFIX: Final = '{"stream":"'


class BinanceDialect:
    """Binance spot and USD-M futures: `/stream` (combined, wrapped) and `/ws` (raw)."""

    ws_path = "/stream"

    def accepts_path(self, path: str) -> bool:
        base = urlsplit(path).path
        return base in ("/stream", "/ws") or base.startswith("/ws/")

    def __init__(self) -> None:
        self._routes: dict[str, Route] = {}  # by stream name as written: a handful

    def route(self, frame: str, url: str = "") -> Route | None:
        # Combined-stream frames name their stream first: read it without decoding the
        # frame (the server routes every frame it sends), so one whose data is malformed
        # goes to its stream's subscribers, as live. Anything else is decoded.
        if frame.startswith(_STREAM_PREFIX) and frame.endswith("}"):
            end = frame.find('"', len(_STREAM_PREFIX))
            if end > 0 and frame.startswith(',"data":', end + 1):
                stream = frame[len(_STREAM_PREFIX) : end]
                route = self._routes.get(stream)
                if route is None and "\\" not in stream:
                    route = self._routes[stream] = Route(stream.lower())
                if route is not None:
                    return route
        message = loads(frame)
        if isinstance(message, dict) and isinstance(message.get("stream"), str):
            return Route(message["stream"].lower())
        if isinstance(message, dict) and "id" in message and message.keys() <= _ANSWER_KEYS:
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
        return _unwrap(frame) if self._raw else frame

    def on_message(self, text: str) -> list[str]:
        request = loads(text)
        if not isinstance(request, dict):
            return [_error(_INVALID_JSON, "Invalid JSON", None)]
        request_id = request.get("id")
        if not isinstance(request_id, int | str | None) or isinstance(request_id, bool):
            return [_error(_INVALID_REQUEST, "Invalid request: bad id", None)]
        method = request.get("method")
        params = request.get("params", [])
        if method == "LIST_SUBSCRIPTIONS":
            return [dumps({"result": list(self._streams), "id": request_id})]
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE"):
            reason = f"Invalid request: unknown method {method!r}"
            return [_error(_INVALID_REQUEST, reason, request_id)]
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            reason = "Invalid request: params must be a list of stream names"
            return [_error(_INVALID_REQUEST, reason, request_id)]
        if method == "SUBSCRIBE":
            for stream in params:
                if stream.lower() not in self._wanted:
                    self._streams.append(stream)
                    self._wanted.add(stream.lower())
        else:
            dropped = {p.lower() for p in params}
            self._streams = [s for s in self._streams if s.lower() not in dropped]
            self._wanted -= dropped
        return [dumps({"result": None, "id": request_id})]


def _error(code: int, message: str, request_id: object) -> str:
    return dumps({"error": {"code": code, "msg": message}, "id": request_id})


def _unwrap(frame: str) -> str:
    """The `data` of a combined-stream frame, byte for byte where the layout allows."""
    prefix_end = frame.find(',"data":')
    if frame.startswith('{"stream":"') and frame.endswith("}") and prefix_end > 0:
        return frame[prefix_end + len(',"data":') : -1]
    message = loads(frame)
    if isinstance(message, dict) and "data" in message:
        return dumps(message["data"])
    return frame
