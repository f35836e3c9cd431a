"""Generated Kraken WebSocket v2 sessions (test data; see `venues/base/sessions.py`)."""

from __future__ import annotations

import random

import orjson

from marketstream.replay.recording_format import RecordedFrame
from marketstream.venues.base.sessions import (
    T0_MS,
    GeneratedSession,
    SimBook,
    Text,
    book_ticks,
    iso_ms,
)
from marketstream.venues.kraken.checksum import checksum

KRAKEN_URL = "wss://ws.kraken.com/v2"


def _kraken_levels(levels: list[Text]) -> str:
    return ",".join(f'{{"price":{p},"qty":{q}}}' for p, q in levels)  # numbers, full precision


def _kraken_book(
    kind: str, pair: str, bids: list[Text], asks: list[Text], *, crc: int, ms: int
) -> str:
    return (
        f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"{pair}",'
        f'"bids":[{_kraken_levels(bids)}],"asks":[{_kraken_levels(asks)}],'
        f'"checksum":{crc},"timestamp":"{iso_ms(ms)}"}}]}}'
    )


def kraken_session(
    steps: int, *, seed: int = 1, gap_at: int | None = None, resnapshot_after: int = 5
) -> list[RecordedFrame]:
    session = GeneratedSession()
    rng = random.Random(seed)
    pairs = {"BTC/USD": 97000.0, "ETH/USD": 3100.0}
    books = {p: SimBook(rng, mid, 0.1, 1, 8, depth=30) for p, mid in pairs.items()}
    trade_id = 1000

    def snapshot(pair: str, ms: int) -> None:
        book = books[pair]
        bids, asks = book.top(25)
        crc = checksum(*book.top(10))
        session.add(
            "kraken", KRAKEN_URL, ms, _kraken_book("snapshot", pair, bids, asks, crc=crc, ms=ms)
        )

    def update(ms: int, channel: str, item: dict[str, object]) -> None:
        message = {"channel": channel, "type": "update", "data": [item]}
        session.add("kraken", KRAKEN_URL, ms, orjson.dumps(message))

    for pair in pairs:
        snapshot(pair, T0_MS)
    ticks = book_ticks(books, steps, gap_at, resnapshot_after, gapped="BTC/USD")
    for step, ms, pair, book, bids, asks, lost, resnapshot in ticks:
        if lost:
            continue  # this update never arrives
        if resnapshot:
            snapshot(pair, ms)  # what the resubscribe brings
            continue
        crc = checksum(*book.top(10))
        frame = _kraken_book("update", pair, bids, asks, crc=crc, ms=ms)
        session.add("kraken", KRAKEN_URL, ms, frame)
        (bid, bid_qty), (ask, ask_qty) = book.best()
        if step % 2 == 0:
            ticker = {"symbol": pair, "bid": float(bid), "bid_qty": float(bid_qty),
                      "ask": float(ask), "ask_qty": float(ask_qty), "last": float(ask),
                      "volume": 100.0, "vwap": float(bid), "low": float(bid),
                      "high": float(ask), "change": 0.0, "change_pct": 0.0,
                      "timestamp": iso_ms(ms)}  # fmt: skip
            update(ms, "ticker", ticker)
        if step % 3 == 0:
            trade_id += 1
            trade = {"symbol": pair, "side": rng.choice(["buy", "sell"]), "price": float(ask),
                     "qty": round(rng.uniform(0.001, 1), 8), "ord_type": "market",
                     "trade_id": trade_id, "timestamp": iso_ms(ms)}  # fmt: skip
            update(ms, "trade", trade)
        if step % 10 == 0:
            begin = ms - ms % 60_000
            ohlc = {"symbol": pair, "open": float(bid), "high": float(ask), "low": float(bid),
                    "close": float(ask), "trades": 5, "volume": 1.5, "vwap": float(bid),
                    "interval_begin": iso_ms(begin), "interval": 1,
                    "timestamp": iso_ms(ms)}  # fmt: skip
            update(ms, "ohlc", ohlc)
    return session.frames
