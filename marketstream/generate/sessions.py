"""Deterministic exchange sessions in the documented wire formats of Kraken v2, OKX v5, Bybit v5.

The repository ships real captures of Binance and Coinbase only (`tests/data/recordings`), and
exchanges cannot be reached offline to capture more. These sessions stand in for Kraken, OKX and
Bybit in `marketstream demo`, the end-to-end tests and the benchmarks: a random-walk order book
whose levels keep their exact text (checksums are computed over it with each exchange's own
function), trades, quotes, candles and funding, stamped like the exchange stamps them. `gap_at`
removes one book delta and sends a fresh snapshot `resnapshot_after` steps later, as the
exchange would after a resubscribe.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from marketstream.ingest.exchanges import kraken, okx
from marketstream.ingest.recording import RecordedFrame

T0_MS = 1_763_000_000_000  # 2025-11-13, in milliseconds
STEP_MS = 100
RECV_DELAY_NS = 3_000_000

KRAKEN_URL = "wss://ws.kraken.com/v2"
OKX_PUBLIC = "wss://ws.okx.com:8443/ws/v5/public"
OKX_BUSINESS = "wss://ws.okx.com:8443/ws/v5/business"
BYBIT_SPOT = "wss://stream.bybit.com/v5/public/spot"
BYBIT_LINEAR = "wss://stream.bybit.com/v5/public/linear"

Text = tuple[str, str]


@dataclass
class SimBook:
    """A book of exact price/size texts that moves a little every step."""

    rng: random.Random
    mid: float
    tick: float
    price_places: int
    size_places: int
    depth: int = 30
    bids: dict[str, str] = field(default_factory=dict)
    asks: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for k in range(1, self.depth + 1):
            self.bids[self._price(self.mid - k * self.tick)] = self._size()
            self.asks[self._price(self.mid + k * self.tick)] = self._size()

    def _price(self, value: float) -> str:
        return f"{value:.{self.price_places}f}"

    def _size(self) -> str:
        return f"{self.rng.uniform(0.001, 5):.{self.size_places}f}"

    def zero(self) -> str:
        return f"{0:.{self.size_places}f}"

    def step(self, *, touch_top: bool = False) -> tuple[list[Text], list[Text]]:
        """Change a few levels; return the changes per side (size zero removes a level).

        `touch_top` also changes the best bid, so that losing this update is visible to a
        checksum over the top levels (a missed deep-level change is not, on a real feed either).
        """
        changes: tuple[list[Text], list[Text]] = ([], [])
        if touch_top:
            best = max(self.bids, key=float)
            self.bids[best] = self._size()
            changes[0].append((best, self.bids[best]))
        for side, levels, sign in ((0, self.bids, -1), (1, self.asks, 1)):
            for _ in range(self.rng.randint(1, 3)):
                k = self.rng.randint(1, self.depth + 2)
                price = self._price(self.mid + sign * k * self.tick)
                if price in levels and self.rng.random() < 0.3:
                    del levels[price]
                    changes[side].append((price, self.zero()))
                else:
                    levels[price] = self._size()
                    changes[side].append((price, levels[price]))
        return changes

    def top(self, n: int) -> tuple[list[Text], list[Text]]:
        bids = sorted(self.bids.items(), key=lambda level: -float(level[0]))[:n]
        asks = sorted(self.asks.items(), key=lambda level: float(level[0]))[:n]
        return bids, asks

    def best(self) -> tuple[Text, Text]:
        bids, asks = self.top(1)
        return bids[0], asks[0]


@dataclass
class Session:
    frames: list[RecordedFrame] = field(default_factory=list)

    def add(self, exchange: str, url: str, at_ms: int, frame: str | bytes) -> None:
        text = frame.decode() if isinstance(frame, bytes) else frame
        self.frames.append(RecordedFrame(at_ms * 1_000_000 + RECV_DELAY_NS, exchange, url, text))


def _iso(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    from datetime import UTC, datetime  # noqa: PLC0415 - only the Kraken stamps need it

    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}000Z"


# --- Kraken v2 --------------------------------------------------------------------------------


def _kraken_levels(levels: list[Text]) -> str:
    return ",".join(f'{{"price":{p},"qty":{q}}}' for p, q in levels)  # numbers, full precision


def _kraken_book(
    kind: str, pair: str, bids: list[Text], asks: list[Text], *, crc: int, ms: int
) -> str:
    return (
        f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"{pair}",'
        f'"bids":[{_kraken_levels(bids)}],"asks":[{_kraken_levels(asks)}],'
        f'"checksum":{crc},"timestamp":"{_iso(ms)}"}}]}}'
    )


def kraken_session(
    steps: int, *, seed: int = 1, gap_at: int | None = None, resnapshot_after: int = 5
) -> list[RecordedFrame]:
    session = Session()
    rng = random.Random(seed)
    pairs = {"BTC/USD": 97000.0, "ETH/USD": 3100.0}
    books = {p: SimBook(rng, mid, 0.1, 1, 8, depth=30) for p, mid in pairs.items()}
    trade_id = 1000

    def snapshot(pair: str, ms: int) -> None:
        book = books[pair]
        bids, asks = book.top(25)
        crc = kraken.checksum(*book.top(10))
        session.add(
            "kraken", KRAKEN_URL, ms, _kraken_book("snapshot", pair, bids, asks, crc=crc, ms=ms)
        )

    for pair in pairs:
        snapshot(pair, T0_MS)
    for step in range(1, steps + 1):
        ms = T0_MS + step * STEP_MS
        for pair, book in books.items():
            bids, asks = book.step(touch_top=gap_at == step)
            if gap_at == step and pair == "BTC/USD":
                continue  # this update never arrives
            if gap_at is not None and step == gap_at + resnapshot_after and pair == "BTC/USD":
                snapshot(pair, ms)  # what the resubscribe brings
                continue
            crc = kraken.checksum(*book.top(10))
            frame = _kraken_book("update", pair, bids, asks, crc=crc, ms=ms)
            session.add("kraken", KRAKEN_URL, ms, frame)
            (bid, bid_qty), (ask, ask_qty) = book.best()
            if step % 2 == 0:
                ticker = {"symbol": pair, "bid": float(bid), "bid_qty": float(bid_qty),
                          "ask": float(ask), "ask_qty": float(ask_qty), "last": float(ask),
                          "volume": 100.0, "vwap": float(bid), "low": float(bid),
                          "high": float(ask), "change": 0.0, "change_pct": 0.0,
                          "timestamp": _iso(ms)}  # fmt: skip
                session.add(
                    "kraken",
                    KRAKEN_URL,
                    ms,
                    orjson.dumps({"channel": "ticker", "type": "update", "data": [ticker]}),
                )
            if step % 3 == 0:
                trade_id += 1
                trade = {"symbol": pair, "side": rng.choice(["buy", "sell"]), "price": float(ask),
                         "qty": round(rng.uniform(0.001, 1), 8), "ord_type": "market",
                         "trade_id": trade_id, "timestamp": _iso(ms)}  # fmt: skip
                session.add(
                    "kraken",
                    KRAKEN_URL,
                    ms,
                    orjson.dumps({"channel": "trade", "type": "update", "data": [trade]}),
                )
            if step % 10 == 0:
                begin = ms - ms % 60_000
                ohlc = {"symbol": pair, "open": float(bid), "high": float(ask), "low": float(bid),
                        "close": float(ask), "trades": 5, "volume": 1.5, "vwap": float(bid),
                        "interval_begin": _iso(begin), "interval": 1,
                        "timestamp": _iso(ms)}  # fmt: skip
                session.add(
                    "kraken",
                    KRAKEN_URL,
                    ms,
                    orjson.dumps({"channel": "ohlc", "type": "update", "data": [ohlc]}),
                )
    return session.frames


# --- OKX v5 -----------------------------------------------------------------------------------


def _okx(channel: str, inst_id: str, data: list[object], **extra: object) -> bytes:
    return orjson.dumps({"arg": {"channel": channel, "instId": inst_id}, **extra, "data": data})


def okx_session(
    steps: int, *, seed: int = 2, gap_at: int | None = None, resnapshot_after: int = 5
) -> list[RecordedFrame]:
    session = Session()
    rng = random.Random(seed)
    instruments = {"BTC-USDT": 97000.0, "BTC-USDT-SWAP": 97010.0}
    books = {i: SimBook(rng, mid, 0.1, 1, 4, depth=30) for i, mid in instruments.items()}
    seq = dict.fromkeys(instruments, 1000)
    trade_id = 5000

    def okx_levels(levels: list[Text]) -> list[list[str]]:
        return [[p, s, "0", "1"] for p, s in levels]

    def snapshot(inst: str, ms: int) -> None:
        book = books[inst]
        seq[inst] += 1
        bids, asks = book.top(30)
        data = {"asks": okx_levels(asks), "bids": okx_levels(bids), "ts": str(ms),
                "checksum": okx.checksum(*book.top(25)), "prevSeqId": -1,
                "seqId": seq[inst]}  # fmt: skip
        session.add("okx", OKX_PUBLIC, ms, _okx("books", inst, [data], action="snapshot"))

    for inst in instruments:
        snapshot(inst, T0_MS)
    for step in range(1, steps + 1):
        ms = T0_MS + step * STEP_MS
        for inst, book in books.items():
            bids, asks = book.step(touch_top=gap_at == step)
            previous = seq[inst]
            seq[inst] += 1
            if gap_at == step and inst == "BTC-USDT":
                continue
            if gap_at is not None and step == gap_at + resnapshot_after and inst == "BTC-USDT":
                snapshot(inst, ms)
                continue
            data = {"asks": okx_levels(asks), "bids": okx_levels(bids), "ts": str(ms),
                    "checksum": okx.checksum(*book.top(25)), "prevSeqId": previous,
                    "seqId": seq[inst]}  # fmt: skip
            session.add("okx", OKX_PUBLIC, ms, _okx("books", inst, [data], action="update"))
            (bid, bid_sz), (ask, ask_sz) = book.best()
            if step % 2 == 0:
                ticker = {"instId": inst, "last": ask, "askPx": ask, "askSz": ask_sz,
                          "bidPx": bid, "bidSz": bid_sz, "ts": str(ms)}  # fmt: skip
                session.add("okx", OKX_PUBLIC, ms, _okx("tickers", inst, [ticker]))
            if step % 3 == 0:
                trade_id += 1
                trade = {"instId": inst, "tradeId": str(trade_id), "px": ask, "sz": "0.01",
                         "side": rng.choice(["buy", "sell"]), "ts": str(ms)}  # fmt: skip
                session.add("okx", OKX_PUBLIC, ms, _okx("trades", inst, [trade]))
            if step % 10 == 0:
                begin = ms - ms % 60_000
                candle = [str(begin), bid, ask, bid, ask, "12", "1.2", "1.2", "0"]
                session.add("okx", OKX_BUSINESS, ms, _okx("candle1m", inst, [candle]))
            if step % 10 == 5 and inst.endswith("-SWAP"):
                funding = {"instId": inst, "instType": "SWAP", "fundingRate": "0.0001",
                           "fundingTime": str(ms + 3_600_000),
                           "nextFundingTime": str(ms + 7_200_000), "ts": str(ms)}  # fmt: skip
                session.add("okx", OKX_PUBLIC, ms, _okx("funding-rate", inst, [funding]))
    return session.frames


# --- Bybit v5 ---------------------------------------------------------------------------------


def bybit_session(
    steps: int, *, seed: int = 3, gap_at: int | None = None, resnapshot_after: int = 5
) -> list[RecordedFrame]:
    session = Session()
    rng = random.Random(seed)
    markets = {BYBIT_SPOT: 97000.0, BYBIT_LINEAR: 97020.0}
    books = {url: SimBook(rng, mid, 0.5, 2, 3, depth=50) for url, mid in markets.items()}
    update_id = dict.fromkeys(markets, 100)
    topic = "orderbook.50.BTCUSDT"

    def message(url: str, ms: int, payload: dict[str, object]) -> None:
        session.add("bybit", url, ms, orjson.dumps({**payload, "ts": ms}))

    def snapshot(url: str, ms: int) -> None:
        update_id[url] += 1
        bids, asks = books[url].top(50)
        data = {"s": "BTCUSDT", "b": [list(b) for b in bids], "a": [list(a) for a in asks],
                "u": update_id[url], "seq": update_id[url] * 10}  # fmt: skip
        message(url, ms, {"topic": topic, "type": "snapshot", "data": data, "cts": ms})

    for url in markets:
        snapshot(url, T0_MS)
    for step in range(1, steps + 1):
        ms = T0_MS + step * STEP_MS
        for url, book in books.items():
            bids, asks = book.step(touch_top=gap_at == step)
            update_id[url] += 1
            if gap_at == step and url == BYBIT_SPOT:
                continue
            if gap_at is not None and step == gap_at + resnapshot_after and url == BYBIT_SPOT:
                snapshot(url, ms)
                continue
            data = {"s": "BTCUSDT", "b": [list(b) for b in bids], "a": [list(a) for a in asks],
                    "u": update_id[url], "seq": update_id[url] * 10}  # fmt: skip
            message(url, ms, {"topic": topic, "type": "delta", "data": data, "cts": ms})
            (bid, bid_sz), (ask, ask_sz) = book.best()
            top = {"s": "BTCUSDT", "b": [[bid, bid_sz]], "a": [[ask, ask_sz]],
                   "u": step, "seq": step}  # fmt: skip
            if step % 2 == 0:
                message(url, ms, {"topic": "orderbook.1.BTCUSDT", "type": "snapshot",
                                  "data": top, "cts": ms})  # fmt: skip
            if step % 3 == 0:
                trade = {"T": ms, "s": "BTCUSDT", "S": rng.choice(["Buy", "Sell"]), "v": "0.010",
                         "p": ask, "L": "PlusTick", "i": f"{url[-6:]}-{step}",
                         "BT": False}  # fmt: skip
                message(url, ms, {"topic": "publicTrade.BTCUSDT", "type": "snapshot",
                                  "data": [trade]})  # fmt: skip
            if step % 10 == 0:
                begin = ms - ms % 60_000
                kline = {"start": begin, "end": begin + 59_999, "interval": "1", "open": bid,
                         "close": ask, "high": ask, "low": bid, "volume": "1.5",
                         "turnover": "150000", "confirm": False, "timestamp": ms}  # fmt: skip
                message(url, ms, {"topic": "kline.1.BTCUSDT", "type": "snapshot",
                                  "data": [kline]})  # fmt: skip
            if step % 10 == 5 and url == BYBIT_LINEAR:
                ticker = {"symbol": "BTCUSDT", "fundingRate": "0.0001", "markPrice": ask,
                          "indexPrice": bid,
                          "nextFundingTime": str(ms + 3_600_000)}  # fmt: skip
                message(url, ms, {"topic": "tickers.BTCUSDT", "type": "snapshot",
                                  "data": ticker})  # fmt: skip
    return session.frames


SESSIONS: dict[str, Callable[..., list[RecordedFrame]]] = {
    "kraken": kraken_session,
    "okx": okx_session,
    "bybit": bybit_session,
}


def write_session(path: str, frames: list[RecordedFrame]) -> None:
    with open(path, "wb") as out:
        for frame in frames:
            out.write(frame.to_json_line())
