"""The replay server speaking OKX v5's protocol on both endpoints, over a recording written here
in OKX's documented formats, read by clients that subscribe the OKX way."""

from __future__ import annotations

import asyncio
import binascii
import struct
from pathlib import Path

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from marketstream.ingest.books import BookKeeper
from marketstream.ingest.processor import FrameProcessor, Rejected
from marketstream.replay.dialect import EVERYONE, Route
from marketstream.replay.recording_format import RecordedFrame
from marketstream.replay.server import ReplayServer
from marketstream.schemas.records import (
    Book,
    Candle,
    Funding,
    Liquidation,
    OpenInterest,
    Quote,
    Record,
    Trade,
)
from marketstream.venues.base.venue import Subscription
from marketstream.venues.okx.replay import OkxDialect
from marketstream.venues.okx.venue import OKX
from marketstream.venues.registry import DIALECTS
from tests.replay.helpers import message_of, receive, receive_n, wait_until
from tests.venues.okx.captures import okx_instruments

PUBLIC = "wss://ws.okx.com:8443/ws/v5/public"
BUSINESS = "wss://ws.okx.com:8443/ws/v5/business"
T0 = 1_700_000_000_000_000_000
LEAD_IN_NS = 500_000_000  # recorded pause after the first frame: time for every client to subscribe

BIDS = [("37000.1", "0.50"), ("36999.9", "1.2")]
ASKS = [("37000.2", "0.010"), ("37001", "3")]


def crc(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> int:
    """OKX's checksum, written out for two levels a side: bid1:ask1:bid2:ask2."""
    text = ":".join(f"{b[0]}:{b[1]}:{a[0]}:{a[1]}" for b, a in zip(bids, asks, strict=True))
    signed: int = struct.unpack("<i", struct.pack("<I", binascii.crc32(text.encode())))[0]
    return signed


def push(channel: str, inst_id: str, data: list[object], **extra: object) -> str:
    return orjson.dumps(
        {"arg": {"channel": channel, "instId": inst_id}, **extra, "data": data}
    ).decode()


def trade(inst_id: str, trade_id: str, ts: str) -> str:
    data = {"instId": inst_id, "tradeId": trade_id, "px": "37000.2", "sz": "0.01", "side": "buy",
            "ts": ts}  # fmt: skip
    return push("trades", inst_id, [data])


def book(
    action: str,
    bids: list[tuple[str, str]],
    asks: list[tuple[str, str]],
    *,
    seq: int,
    prev: int,
    checksum: int,
    ts: str,
) -> str:
    data = {
        "asks": [[p, s, "0", "1"] for p, s in asks],
        "bids": [[p, s, "0", "1"] for p, s in bids],
        "ts": ts, "checksum": checksum, "prevSeqId": prev, "seqId": seq,
    }  # fmt: skip
    return push("books", "BTC-USDT", [data], action=action)


def candle(confirm: str) -> str:
    row = ["1700000000000", "37000", "37010", "36990", "37005", "12.5", "462500", "462500", confirm]
    return push("candle1m", "BTC-USDT", [row])


NEW_BIDS = [("37000.1", "0.75"), ("36999.9", "1.2")]
# (endpoint, frame) in recorded order; None: frames this server answers itself, never sent.
RECORDED: list[tuple[str, str, bool]] = [
    (PUBLIC, trade("XRP-USDT", "1", "1700000000000"), True),  # the lead-in nobody subscribes
    (PUBLIC, '{"event":"subscribe","arg":{"channel":"trades","instId":"BTC-USDT"},"connId":"1"}',
     False),
    (PUBLIC, trade("BTC-USDT", "100", "1700000000050"), True),
    (PUBLIC, book("snapshot", BIDS, ASKS, seq=10, prev=-1, checksum=crc(BIDS, ASKS),
          ts="1700000000100"), True),
    (BUSINESS, '{"event":"subscribe","arg":{"channel":"candle1m","instId":"BTC-USDT"}}', False),
    (BUSINESS, candle("0"), True),
    (PUBLIC, push("tickers", "ETH-USDT-SWAP", [{
        "instType": "SWAP", "instId": "ETH-USDT-SWAP", "last": "2000.1", "lastSz": "1",
        "askPx": "2000.2", "askSz": "30", "bidPx": "2000.1", "bidSz": "12", "ts": "1700000000200",
    }]), True),
    (PUBLIC, book("update", [("37000.1", "0.75")], [], seq=12, prev=10,
                  checksum=crc(NEW_BIDS, ASKS), ts="1700000000250"), True),
    (PUBLIC, "pong", False),
    (PUBLIC, push("funding-rate", "ETH-USDT-SWAP", [{
        "instId": "ETH-USDT-SWAP", "instType": "SWAP", "fundingRate": "0.0001",
        "fundingTime": "1700006400000", "nextFundingTime": "1700035200000", "ts": "1700000000300",
    }]), True),
    (BUSINESS, candle("1"), True),
    (PUBLIC, trade("BTC-USDT", "101", "1700000000400"), True),
]  # fmt: skip


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    path = tmp_path / "okx.jsonl"
    with path.open("wb") as out:
        for i, (url, frame, _) in enumerate(RECORDED):
            recv_ns = T0 + (0 if i == 0 else LEAD_IN_NS + i * 1_000_000)
            out.write(RecordedFrame(recv_ns, "okx", url, frame).to_json_line())
    return path


def recorded(channels: set[str], inst_ids: set[str]) -> list[str]:
    out = []
    for _, frame, sendable in RECORDED:
        if sendable:
            arg = orjson.loads(frame)["arg"]
            if arg["channel"] in channels and arg["instId"] in inst_ids:
                out.append(frame)
    return out


def subscribe(op: str, *args: tuple[str, str]) -> str:
    return orjson.dumps({"op": op, "args": [{"channel": c, "instId": i} for c, i in args]}).decode()


# --- over a socket -------------------------------------------------------------------------


async def test_subscribed_channels_of_one_instrument_in_recorded_order(recording: Path) -> None:
    expected = recorded({"trades", "books"}, {"BTC-USDT"})
    assert len(expected) == 4
    async with ReplayServer(recording, DIALECTS, max_speed=True) as server:
        assert server.ws_url == f"ws://127.0.0.1:{server.port}/ws/v5"
        async with connect(f"{server.ws_url}/public") as ws:
            await ws.send(subscribe("subscribe", ("trades", "BTC-USDT"), ("books", "BTC-USDT")))
            assert [message_of(m) for m in await receive_n(ws, 2)] == [
                {"event": "subscribe", "arg": {"channel": "trades", "instId": "BTC-USDT"}},
                {"event": "subscribe", "arg": {"channel": "books", "instId": "BTC-USDT"}},
            ]
            assert await receive_n(ws, len(expected)) == expected
            await ws.send("ping")
            assert await receive(ws) == "pong"
            await wait_until(server.finished.is_set)
            assert server.sent == len(expected)
            assert server.status()["ignored"] == 3  # two recorded answers and a pong
            assert server.total == 9


async def test_wrong_endpoint_and_bad_requests_are_answered_and_the_connection_stays(
    recording: Path,
) -> None:
    async with ReplayServer(recording, DIALECTS, max_speed=True) as server:
        async with connect(f"{server.ws_url}/public") as ws:
            await ws.send(subscribe("subscribe", ("candle1m", "BTC-USDT")))
            error = message_of(await receive(ws))
            assert (error["event"], error["code"]) == ("error", "60018")
            assert "candle1m" in error["msg"]
            await ws.send('{"op":"subscribe"}')
            assert message_of(await receive(ws))["code"] == "60012"
            await ws.send(subscribe("subscribe", ("trades", "BTC-USDT")))
            assert message_of(await receive(ws))["event"] == "subscribe"
            assert await receive_n(ws, 2) == recorded({"trades"}, {"BTC-USDT"})
        with pytest.raises(InvalidStatus, match="404"):
            async with connect(server.ws_url):  # the base alone is no endpoint
                pass


async def test_the_okx_exchange_rules_replay_both_endpoints_into_records(recording: Path) -> None:
    """Split, connect_url, subscribe_messages, ping and the mapper against the replay server:
    what `marketstream ingest` would do, minus the runner."""
    configured = Subscription(
        ("BTC-USDT", "ETH-USDT-PERP"), ("trades", "quotes", "candles", "books", "funding")
    )
    public, business = OKX.split(configured) if OKX.split is not None else []
    processor = FrameProcessor(
        OKX.make_mapper(configured.symbols, okx_instruments()),
        BookKeeper(OKX.name, OKX.book_rules, depth=5, interval_ns=1),
        max_future_skew_ns=10**19,
        known_symbols=set(configured.symbols),
    )
    async with ReplayServer(recording, DIALECTS, speed=1.0) as server:
        public_url = OKX.connect_url(server.ws_url, public)
        business_url = OKX.connect_url(server.ws_url, business)
        assert (public_url, business_url) == (
            f"{server.ws_url}/public",
            f"{server.ws_url}/business",
        )
        async with connect(public_url) as pub, connect(business_url) as bus:

            async def session(ws: ClientConnection, part: Subscription, frames: int) -> list[str]:
                for message in OKX.subscribe_messages(part):
                    await ws.send(message)
                received = await receive_n(ws, frames)
                assert OKX.ping_message is not None
                await ws.send(OKX.ping_message)
                return [*received, await receive(ws)]

            public_frames, business_frames = await asyncio.gather(
                session(pub, public, 7 + 6),  # 7 subscribe answers (no spot funding), 6 pushes
                session(bus, business, 2 + 2),
            )
    assert public_frames[-1] == business_frames[-1] == "pong"
    records: list[Record] = []
    rejected: list[Rejected] = []
    verified = 0
    for i, frame in enumerate([*public_frames, *business_frames]):
        out = processor.process(frame, T0 + i)
        records += out.records
        rejected += out.rejected
        verified += out.checksums_verified
        assert (out.gaps, out.checksum_failures) == ((), ())
    assert rejected == []
    assert verified == 2  # the snapshot and the update
    assert [type(r).__name__ for r in records] == [
        "Trade", "Book", "Quote", "Book", "Funding", "Trade", "Candle", "Candle",
    ]  # fmt: skip
    by_type = {type(r): r for r in records}
    assert by_type[Book] == Book(
        "okx", "BTC-USDT", 1700000000250 * 1_000_000, T0 + 10, 12,
        [(37000.1, 0.75), (36999.9, 1.2)], [(37000.2, 0.01), (37001.0, 3.0)],
    )  # fmt: skip
    quote = by_type[Quote]
    assert isinstance(quote, Quote)
    assert quote.symbol == "ETH-USDT-PERP"
    # ETH-USDT-SWAP contracts are 0.1 ETH: 12 and 30 contracts are 1.2 and 3 ETH
    assert quote.bid_sz == pytest.approx(1.2)
    assert quote.ask_sz == 3.0
    assert isinstance(by_type[Funding], Funding)
    assert isinstance(by_type[Trade], Trade)
    candle_record = by_type[Candle]
    assert isinstance(candle_record, Candle)
    assert candle_record.closed


def _liquidation(inst_type: str, inst_id: str, ts: str) -> str:
    detail = {"bkLoss": "0", "bkPx": "37000", "ccy": "", "posSide": "long", "side": "sell",
              "sz": "250", "ts": ts}  # fmt: skip
    data = {"details": [detail], "instFamily": "BTC-USDT", "instId": inst_id,
            "instType": inst_type, "uly": "BTC-USDT"}  # fmt: skip
    return orjson.dumps(
        {"arg": {"channel": "liquidation-orders", "instType": inst_type}, "data": [data]}
    ).decode()


async def test_liquidations_by_inst_type_and_open_interest_replay_into_records(
    tmp_path: Path,
) -> None:
    """`liquidation-orders` is subscribed by instType: the SWAP subscription gets the swaps'
    liquidations, not the futures'; the mapper keeps the configured swap's only."""
    oi = push("open-interest", "BTC-USDT-SWAP", [{"instId": "BTC-USDT-SWAP", "instType": "SWAP",
              "oi": "250000", "oiCcy": "2500", "ts": "1700000000100"}])  # fmt: skip
    frames = [
        _liquidation("FUTURES", "BTC-USDT-220527", "1700000000050"),  # not subscribed
        oi,
        _liquidation("SWAP", "ETH-USDT-SWAP", "1700000000150"),  # subscribed, not configured
        _liquidation("SWAP", "BTC-USDT-SWAP", "1700000000200"),
    ]
    path = tmp_path / "okx.jsonl"
    path.write_bytes(
        b"".join(
            RecordedFrame(T0 + LEAD_IN_NS * (i > 0) + i, "okx", PUBLIC, f).to_json_line()
            for i, f in enumerate([trade("XRP-USDT", "1", "1700000000000"), *frames])
        )
    )
    configured = Subscription(("BTC-USDT-PERP",), ("liquidations", "open_interest"))
    [message] = OKX.subscribe_messages(configured)
    assert orjson.loads(message)["args"] == [
        {"channel": "liquidation-orders", "instType": "SWAP"},
        {"channel": "open-interest", "instId": "BTC-USDT-SWAP"},
    ]
    async with (
        ReplayServer(path, DIALECTS, speed=1.0) as server,
        connect(OKX.connect_url(server.ws_url, configured)) as ws,
    ):
        await ws.send(message)
        answers = [message_of(m) for m in await receive_n(ws, 2)]
        assert [a["event"] for a in answers] == ["subscribe", "subscribe"]
        received = await receive_n(ws, 3)
    assert received == frames[1:]
    mapper = OKX.make_mapper(configured.symbols, okx_instruments())
    records = [r for frame in received for r in mapper(frame, T0)]
    assert records == [
        # oiCcy is the open interest in coins; no oiUsd in this push, and a linear contract
        OpenInterest("okx", "BTC-USDT-PERP", 1700000000100 * 1_000_000, T0, 2500.0, None),
        # 250 contracts x ctVal 0.01 BTC = 2.5 BTC
        Liquidation("okx", "BTC-USDT-PERP", 1700000000200 * 1_000_000, T0, "sell", 37000.0, 2.5),
    ]


# --- the dialect without sockets -----------------------------------------------------------


def test_the_dialect_is_registered() -> None:
    assert isinstance(DIALECTS["okx"], OkxDialect)


@pytest.mark.parametrize(
    ("path", "accepted"),
    [("/ws/v5/public", True), ("/ws/v5/business", True), ("/ws/v5/public?x=1", True),
     ("/ws/v5", False), ("/ws/v5/private", False), ("/", False)],
)  # fmt: skip
def test_paths(path: str, accepted: bool) -> None:
    assert OkxDialect().accepts_path(path) is accepted


def test_frames_route_by_channel_and_instrument() -> None:
    dialect = OkxDialect()
    assert dialect.route(trade("BTC-USDT", "1", "1")) == Route("BTC-USDT", frozenset({"trades"}))
    assert dialect.route(candle("1")) == Route("BTC-USDT", frozenset({"candle1m"}))
    assert dialect.route('{"event":"error","code":"60012","msg":"x"}') is None
    assert dialect.route("pong") is None
    assert dialect.route("{not json") == EVERYONE
    assert dialect.route('{"arg":{"channel":7},"data":[]}') == EVERYONE


def test_a_session_subscribes_and_unsubscribes_per_argument() -> None:
    session = OkxDialect().open_session("/ws/v5/public")
    assert not session.active
    answers = session.on_message(subscribe("subscribe", ("trades", "A-B"), ("books", "A-B")))
    assert [orjson.loads(a)["event"] for a in answers] == ["subscribe", "subscribe"]
    assert session.active
    assert session.wants(Route("A-B", frozenset({"books"})))
    assert not session.wants(Route("C-D", frozenset({"books"})))
    [answer] = session.on_message(subscribe("unsubscribe", ("books", "A-B")))
    assert orjson.loads(answer) == {
        "event": "unsubscribe",
        "arg": {"channel": "books", "instId": "A-B"},
    }
    assert not session.wants(Route("A-B", frozenset({"books"})))
    assert session.on_message("ping") == ["pong"]


def test_the_business_endpoint_serves_candles_only() -> None:
    session = OkxDialect().open_session("/ws/v5/business")
    [ok, wrong] = session.on_message(subscribe("subscribe", ("candle1m", "A-B"), ("trades", "A-B")))
    assert orjson.loads(ok)["event"] == "subscribe"
    assert orjson.loads(wrong)["code"] == "60018"
    assert not session.wants(Route("A-B", frozenset({"trades"})))
