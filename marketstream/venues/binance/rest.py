"""Binance's REST API: order book snapshots, and past trades (`aggTrades`) for backfill.

The depth stream sends deltas only, so every book starts from `GET .../depth` (fetched by the
runner, or recorded alongside a capture), joined to the deltas by `lastUpdateId`.

The aggTrades answer holds the same fields as the WebSocket `aggTrade` event (`a`, `p`, `q`,
`f`, `l`, `T`, `m`), so each one is mapped by the feed's own mapper and becomes exactly the
Trade that ingest would have published: same symbol, id, side and time, hence the same
dedup key in QuestDB.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import orjson

from marketstream.errors import MarketStreamError
from marketstream.schemas.records import Instrument, Trade
from marketstream.venues.base.mapper import BookUpdate, FrameError, in_venue
from marketstream.venues.base.parsing import integer, levels
from marketstream.venues.base.venue import JsonGetter, SnapshotRequest
from marketstream.venues.binance.mapper import event_time, listing, make_mapper, rest_answer
from marketstream.venues.binance.markets import Market

SNAPSHOT_LIMIT: Final = 1000  # levels per side in a REST snapshot
PAGE_LIMIT: Final = 1000  # the most aggTrades one request returns
MAX_WINDOW_MS: Final = 3_600_000  # startTime..endTime must span less than an hour
NS_PER_MS: Final = 1_000_000
USED_WEIGHT_HEADER: Final = "x-mbx-used-weight-1m"


# --- order book snapshots ----------------------------------------------------------------------


def snapshot_requests(
    market: Market, rest_base: str, symbols: Sequence[str]
) -> list[SnapshotRequest]:
    base = rest_base.rstrip("/")
    return [
        SnapshotRequest(
            symbol,
            f"{base}{market.depth_path}?symbol={market.native(symbol)}&limit={SNAPSHOT_LIMIT}",
        )
        for symbol in symbols
    ]


def snapshot_symbol(
    market: Market, url: str, instruments: Sequence[Instrument] = (), symbols: Sequence[str] = ()
) -> str:
    """The symbol a snapshot URL asks for, so that recorded snapshots normalize offline: its
    native name looked up in the market's instruments and the configured symbols, as the
    mapper names frames (`mapper.listing`)."""
    natives = parse_qs(urlsplit(url).query).get("symbol")
    if not natives:
        raise FrameError(f"{market.name}: snapshot URL {url!r} has no symbol parameter")
    listed = listing(market, symbols, instruments).get(natives[0])
    if listed is None:
        raise FrameError(
            f"{market.name}: snapshot URL {url!r} asks for {natives[0]!r}, which is neither "
            "configured nor in the instrument list (`marketstream instruments refresh`)"
        )
    return listed.symbol


def map_snapshot(
    market: Market,
    body: str | bytes,
    symbol: str,
    recv_ts: int,
    instruments: Sequence[Instrument] = (),
) -> BookUpdate:
    what = "depth snapshot"
    try:
        data = rest_answer(body)
        ts = event_time(data, what) if "T" in data or "E" in data else recv_ts
        return BookUpdate(
            market.name,
            symbol,
            ts,
            recv_ts,
            levels(data, "bids", what),
            levels(data, "asks", what),
            is_snapshot=True,
            last_seq=integer(data, "lastUpdateId", what),
        )
    except FrameError as exc:
        raise in_venue(market.name, exc) from None


# --- past trades ---------------------------------------------------------------------------------


class BinanceTrades:
    """Pages of one instrument's trades; each page is a list of Trades in id order."""

    def __init__(
        self,
        market: Market,
        symbol: str,
        rest_url: str,
        client: JsonGetter,
        clock_ns: Callable[[], int],
    ) -> None:
        self.market = market
        self.symbol = symbol
        # The mapper refuses a symbol of the other market (BTC-USDT-PERP on spot): ConfigError.
        self._mapper = make_mapper(market, [symbol])
        self.native = market.native(symbol)
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
        url = f"{self._base}{self.market.trades_path}?{query}"
        answer = self._client.get_json(url, self.market.trades_weight)
        if not isinstance(answer, list) or not all(isinstance(item, dict) for item in answer):
            raise MarketStreamError(
                f"{self.market.name}: {self.market.trades_path} answered {str(answer)[:120]!r}: "
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
                raise MarketStreamError(f"{self.market.trades_path}: {exc}") from None
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
