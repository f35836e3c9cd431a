"""The Bybit v5 public feed as the replay server speaks it: `<prefix>/spot`, `<prefix>/linear`
and `<prefix>/inverse`.

Clients subscribe with `{"op": "subscribe", "args": [topics]}` and ping with
`{"op": "ping"}`, answered as Bybit does. The markets share topic names
(`publicTrade.BTCUSDT` is a pair on one endpoint and a perpetual on the other), so a frame
is routed by its topic and by the market of the URL it was recorded from, and a session
wants it only when its own path is of that market. A frame whose recorded URL is not given
is offered to every market.
"""

from __future__ import annotations

from typing import Any, Final

from marketstream.replay.dialect import EVERYONE, Route, Session, dumps, loads
from marketstream.venues.bybit.markets import MARKETS, market_of_url

MARKET_NAMES: Final = frozenset(MARKETS)
SPOT_ARGS_PER_REQUEST: Final = 10  # Bybit refuses larger spot subscribe requests


def market_of_path(path: str) -> str | None:
    """`spot`, `linear` or `inverse` from a URL or request path ending in it, else None."""
    market = market_of_url(path)
    return market.name if market is not None else None


class BybitDialect:
    """Bybit v5 public endpoints; the advertised URL is the prefix the markets hang off."""

    ws_path = "/v5/public"

    def accepts_path(self, path: str) -> bool:
        return market_of_path(path) is not None

    def route(self, frame: str, url: str = "") -> Route | None:
        """By topic, for the market of the recorded `url` (every market when it names none);
        recorded answers to subscribe and ping are None: this server makes its own."""
        message = loads(frame)
        if not isinstance(message, dict):
            return EVERYONE
        topic = message.get("topic")
        if isinstance(topic, str) and topic:
            market = market_of_path(url)
            return Route(topic, frozenset({market}) if market is not None else MARKET_NAMES)
        if topic is None and ("op" in message or "success" in message):
            return None
        return EVERYONE

    def open_session(self, path: str) -> Session:
        return BybitSession(market_of_path(path) or "")


class BybitSession:
    """One connection's topics on one market's endpoint."""

    def __init__(self, market: str) -> None:
        self.market = market
        self._topics: dict[str, None] = {}  # a dict keeps subscription order

    @property
    def active(self) -> bool:
        return bool(self._topics)

    def wants(self, route: Route) -> bool:
        return route.topic in self._topics and self.market in route.channels

    def render(self, frame: str) -> str:
        return frame

    def on_message(self, text: str) -> list[str]:
        request = loads(text)
        if not isinstance(request, dict):
            return [self._answer({}, "", success=False, message="request is not a JSON object")]
        op = request.get("op")
        if op == "ping":
            return [self._answer(request, "ping", success=True, message="pong")]
        if op not in ("subscribe", "unsubscribe"):
            return [self._answer(request, str(op), success=False, message=f"unknown op {op!r}")]
        topics = request.get("args")
        if not isinstance(topics, list) or not all(isinstance(t, str) and "." in t for t in topics):
            reason = "args must be a list of topics like publicTrade.BTCUSDT"
            return [self._answer(request, op, success=False, message=reason)]
        if self.market == "spot" and len(topics) > SPOT_ARGS_PER_REQUEST:
            reason = f"spot accepts at most {SPOT_ARGS_PER_REQUEST} args per request"
            return [self._answer(request, op, success=False, message=reason)]
        for topic in topics:
            if op == "subscribe":
                self._topics[topic] = None
            else:
                self._topics.pop(topic, None)
        # Bybit's spot endpoint echoes the op in ret_msg; linear leaves it empty.
        message = op if self.market == "spot" else ""
        return [self._answer(request, op, success=True, message=message)]

    def _answer(self, request: dict[str, Any], op: str, *, success: bool, message: str) -> str:
        answer: dict[str, object] = {
            "success": success,
            "ret_msg": message,
            "conn_id": f"replay-{self.market}",
        }
        if "req_id" in request:
            answer["req_id"] = request["req_id"]
        answer["op"] = op
        return dumps(answer)
