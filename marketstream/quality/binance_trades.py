"""Binance (spot and USD-M) past trades over REST: `aggTrades`, by id or by time.

The REST answer holds the same fields as the WebSocket `aggTrade` event (`a`, `p`, `q`,
`f`, `l`, `T`, `m`), so each one is mapped by the feed's own mapper and becomes exactly the
Trade that ingest would have published: same symbol, id, side and time, hence the same
dedup key in QuestDB.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import orjson

from marketstream.errors import MarketStreamError
from marketstream.ingest.exchanges import get_exchange
from marketstream.ingest.exchanges.binance import native_symbol
from marketstream.quality.rest import RestClient
from marketstream.schemas.records import Trade

PAGE_LIMIT: Final = 1000  # the most aggTrades one request returns
MAX_WINDOW_MS: Final = 3_600_000  # startTime..endTime must span less than an hour
NS_PER_MS: Final = 1_000_000


@dataclass(frozen=True, slots=True)
class BinanceMarket:
    """What differs between the markets' aggTrades endpoints (Binance's published limits)."""

    exchange: str
    path: str
    weight: int  # per aggTrades request
    weight_limit_per_minute: int  # REQUEST_WEIGHT per IP


MARKETS: Final[dict[str, BinanceMarket]] = {
    "binance": BinanceMarket("binance", "/api/v3/aggTrades", 4, 6000),
    "binance-usdm": BinanceMarket("binance-usdm", "/fapi/v1/aggTrades", 20, 2400),
}
USED_WEIGHT_HEADER: Final = "x-mbx-used-weight-1m"


class BinanceTrades:
    """Pages of one instrument's trades; each page is a list of Trades in id order."""

    def __init__(
        self,
        market: BinanceMarket,
        symbol: str,
        rest_url: str,
        client: RestClient,
        clock_ns: Callable[[], int],
    ) -> None:
        self.market = market
        self.symbol = symbol
        self.native = native_symbol(symbol)
        # The mapper refuses a symbol of the other market (BTC-USDT-PERP on spot): ConfigError.
        self._mapper = get_exchange(market.exchange).make_mapper([symbol])
        self._base = rest_url.rstrip("/")
        self._client = client
        self._clock_ns = clock_ns

    def by_ids(self, first: int, last: int) -> Iterator[list[Trade]]:
        """Trades with first <= id <= last."""
        from_id = first
        while from_id <= last:
            page = self._page(fromId=from_id, limit=PAGE_LIMIT)
            if not page:
                return
            yield [t for t in self._trades(page) if int(t.trade_id) <= last]
            if len(page) < PAGE_LIMIT:
                return  # the newest trade so far: nothing beyond it yet
            from_id = _agg_id(page[-1]) + 1

    def by_time(self, start_ns: int, end_ns: int) -> Iterator[list[Trade]]:
        """Trades with start_ns <= ts < end_ns: hour windows until the first trade, then
        pages by id (one request per 1,000 trades) until a trade is past the end."""
        last_ms = -(-end_ns // NS_PER_MS) - 1
        page = self._first_page(-(-start_ns // NS_PER_MS), last_ms)
        by_window = True
        while page:
            yield [t for t in self._trades(page) if start_ns <= t.ts < end_ns]
            if _agg_time_ms(page[-1]) > last_ms or (not by_window and len(page) < PAGE_LIMIT):
                return  # past the end, or no newer trade yet
            page = self._page(fromId=_agg_id(page[-1]) + 1, limit=PAGE_LIMIT)
            by_window = False

    def _first_page(self, first_ms: int, last_ms: int) -> list[dict[str, Any]]:
        """The first trades at or after first_ms, looking an hour at a time up to last_ms."""
        window = first_ms
        while window <= last_ms:
            window_end = min(window + MAX_WINDOW_MS - 1, last_ms)
            page = self._page(startTime=window, endTime=window_end, limit=PAGE_LIMIT)
            if page:
                return page
            window = window_end + 1
        return []

    def _page(self, **params: int) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"symbol": self.native, **params})
        url = f"{self._base}{self.market.path}?{query}"
        answer = self._client.get_json(url, self.market.weight)
        if not isinstance(answer, list) or not all(isinstance(item, dict) for item in answer):
            raise MarketStreamError(
                f"{self.market.exchange}: {self.market.path} answered {str(answer)[:120]!r}: "
                "expected a list of aggregate trades"
            )
        return answer

    def _trades(self, page: list[dict[str, Any]]) -> list[Trade]:
        recv_ts = self._clock_ns()
        trades: list[Trade] = []
        for item in page:
            frame = orjson.dumps({**item, "e": "aggTrade", "s": self.native})
            try:
                mapped = self._mapper(frame, recv_ts)
            except ValueError as exc:  # FrameError: a field missing or of the wrong kind
                raise MarketStreamError(f"{self.market.path}: {exc}") from None
            trades.extend(t for t in mapped if isinstance(t, Trade))
        return trades


def _agg_id(item: dict[str, Any]) -> int:
    value = item.get("a")
    if type(value) is not int:
        raise MarketStreamError(f"aggTrades: id 'a' {value!r} is not an integer")
    return value


def _agg_time_ms(item: dict[str, Any]) -> int:
    value = item.get("T")
    if type(value) is not int:
        raise MarketStreamError(f"aggTrades: time 'T' {value!r} is not an integer")
    return value
