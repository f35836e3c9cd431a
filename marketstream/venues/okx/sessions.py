"""Generated OKX v5 sessions, public and business endpoints (test data; see
`venues/base/sessions.py`).

The swap's sizes are contracts, as OKX sends them: mapping them needs the swap's instrument
metadata (BTC-USDT-SWAP: ctVal 0.01 BTC, linear), which the shipped instrument snapshot
holds. The swap also gets open interest and liquidations, so the demo shows them.
"""

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
)
from marketstream.venues.okx.checksum import checksum

OKX_PUBLIC = "wss://ws.okx.com:8443/ws/v5/public"
OKX_BUSINESS = "wss://ws.okx.com:8443/ws/v5/business"


def _okx(channel: str, inst_id: str, data: list[object], **extra: object) -> bytes:
    return orjson.dumps({"arg": {"channel": channel, "instId": inst_id}, **extra, "data": data})


def okx_session(
    steps: int, *, seed: int = 2, gap_at: int | None = None, resnapshot_after: int = 5
) -> list[RecordedFrame]:
    session = GeneratedSession()
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
                "checksum": checksum(*book.top(25)), "prevSeqId": -1,
                "seqId": seq[inst]}  # fmt: skip
        session.add("okx", OKX_PUBLIC, ms, _okx("books", inst, [data], action="snapshot"))

    for inst in instruments:
        snapshot(inst, T0_MS)
    ticks = book_ticks(books, steps, gap_at, resnapshot_after, gapped="BTC-USDT")
    for step, ms, inst, book, bids, asks, lost, resnapshot in ticks:
        previous = seq[inst]
        seq[inst] += 1
        if lost:
            continue
        if resnapshot:
            snapshot(inst, ms)
            continue
        data = {"asks": okx_levels(asks), "bids": okx_levels(bids), "ts": str(ms),
                "checksum": checksum(*book.top(25)), "prevSeqId": previous,
                "seqId": seq[inst]}  # fmt: skip
        session.add("okx", OKX_PUBLIC, ms, _okx("books", inst, [data], action="update"))
        (bid, bid_sz), (ask, ask_sz) = book.best()
        if step % 2 == 0:
            ticker = {"instId": inst, "last": ask, "askPx": ask, "askSz": ask_sz,
                      "bidPx": bid, "bidSz": bid_sz, "ts": str(ms)}  # fmt: skip
            session.add("okx", OKX_PUBLIC, ms, _okx("tickers", inst, [ticker]))
        if step % 3 == 0:
            trade_id += 1
            size = "3" if inst.endswith("-SWAP") else "0.01"  # swap: contracts of 0.01 BTC
            trade = {"instId": inst, "tradeId": str(trade_id), "px": ask, "sz": size,
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
        if step % 10 == 7 and inst.endswith("-SWAP"):
            contracts = 250_000 + step
            interest = {"instId": inst, "instType": "SWAP", "oi": str(contracts),
                        "oiCcy": f"{contracts / 100:.2f}",
                        "oiUsd": f"{contracts / 100 * float(bid):.2f}",
                        "ts": str(ms)}  # fmt: skip
            session.add("okx", OKX_PUBLIC, ms, _okx("open-interest", inst, [interest]))
        if step % 20 == 13 and inst.endswith("-SWAP"):
            detail = {"bkLoss": "0", "bkPx": bid, "ccy": "", "posSide": "long",
                      "side": "sell", "sz": str(rng.randint(1, 40)), "ts": str(ms)}  # fmt: skip
            liquidation = {"details": [detail], "instFamily": "BTC-USDT", "instId": inst,
                           "instType": "SWAP", "uly": "BTC-USDT"}  # fmt: skip
            frame = orjson.dumps(
                {"arg": {"channel": "liquidation-orders", "instType": "SWAP"},
                 "data": [liquidation]}
            )  # fmt: skip
            session.add("okx", OKX_PUBLIC, ms, frame)
    return session.frames
