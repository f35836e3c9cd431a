"""`record` against the replay server: what is captured is what was served."""

from __future__ import annotations

import asyncio
import io
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest

from marketstream.config import PipelineConfig
from marketstream.errors import MarketStreamError
from marketstream.ingest.normalize import normalize_recording
from marketstream.ingest.recorder import RecordTarget, record, resolve_target
from marketstream.instruments.recorded import is_instrument_answer
from marketstream.replay.recording_format import RecordedFrame, RecordingWriter, read_recording
from marketstream.replay.server import ReplayServer
from marketstream.replay.source import request_target, scan_recording
from marketstream.schemas.instruments import Exchange as ExchangeName
from marketstream.venues.base.venue import Subscription
from marketstream.venues.registry import DIALECTS, VENUES
from tests.replay.helpers import WAIT_S, frames_of, message_of, wait_until

CAPTURES = Path(__file__).resolve().parents[1] / "data" / "captures"


def captured_instrument_answers(exchange: str) -> list[RecordedFrame]:
    """The real instrument lists captured from `exchange` (tests/data/captures): served by
    the replay server, so the recorder records them as it would from the exchange."""
    venue = VENUES[exchange]
    return [
        frame
        for path in sorted(CAPTURES.glob("*-rest.jsonl"))
        for frame in read_recording(path)
        if frame.exchange == exchange and frame.is_rest and is_instrument_answer(venue, frame.url)
    ]


def instrument_answers(captured: list[RecordedFrame], exchange: str) -> list[str]:
    venue = VENUES[exchange]
    return sorted(f.frame for f in captured if f.is_rest and is_instrument_answer(venue, f.url))


USDM_SYMBOLS = ["SUSHI-USDT-PERP", "AKRO-USDT-PERP", "KEEP-USDT-PERP", "CTK-USDT-PERP"]


def no_config() -> PipelineConfig:
    raise AssertionError("everything was given: the configuration must not be read")


def with_snapshots(usdm: Path, out: Path) -> list[RecordedFrame]:
    """The usdm recording plus one REST depth snapshot per symbol, as our recorder writes."""
    frames = frames_of(usdm)
    snapshots = [
        RecordedFrame(
            frames[0].recv_ns,
            "binance-usdm",
            f"https://fapi.binance.com/fapi/v1/depth?symbol={native}&limit=1000",
            f'{{"lastUpdateId":{i},"bids":[["1.0","2"]],"asks":[]}}',
        )
        for i, native in enumerate(("SUSHIUSDT", "AKROUSDT", "KEEPUSDT", "CTKUSDT"))
    ]
    with RecordingWriter(out) as writer:
        for frame in [*captured_instrument_answers("binance-usdm"), *snapshots, *frames]:
            writer.write(frame)
    return snapshots


async def test_record_then_replay_round_trip(usdm: Path, tmp_path: Path) -> None:
    snapshots = with_snapshots(usdm, tmp_path / "served.jsonl")
    served = [f.frame for f in frames_of(usdm)]
    warnings: list[str] = []
    async with ReplayServer(tmp_path / "served.jsonl", DIALECTS, max_speed=True) as server:
        target = resolve_target(
            "binance-usdm",
            url=server.ws_url,
            rest_url=server.http_url,
            symbols=USDM_SYMBOLS,
            channels=["trades", "quotes", "candles", "books"],
            load_config=no_config,
        )
        answers = len(target.exchange.subscribe_messages(target.subscription))
        out = tmp_path / "captured.jsonl"
        stats = await asyncio.wait_for(
            record(target, out, max_frames=len(served) + answers, warn=warnings.append), WAIT_S
        )
        assert server.finished.is_set()
    captured = list(read_recording(out))
    websocket = [f for f in captured if not f.is_rest]
    assert [f.frame for f in websocket[answers:]] == served
    assert [message_of(f.frame) for f in websocket[:answers]] == [{"result": None, "id": 1}]
    assert {f.url for f in websocket} == {server.ws_url}
    assert {f.exchange for f in captured} == {"binance-usdm"}
    usdm_answers = [f.frame for f in captured_instrument_answers("binance-usdm")]
    assert instrument_answers(captured, "binance-usdm") == sorted(usdm_answers)
    assert stats.instrument_lists == len(usdm_answers) == 1
    rest = sorted(
        (f for f in captured if f.is_rest and f.frame not in usdm_answers), key=lambda f: f.url
    )
    assert [f.frame for f in rest] == [s.frame for s in sorted(snapshots, key=lambda s: s.url)]
    assert all(f.url.startswith(f"{server.http_url}/fapi/v1/depth?symbol=") for f in rest)
    assert (stats.frames, stats.snapshots, stats.connections) == (len(served) + answers, 4, 1)
    assert warnings == []
    replayable = scan_recording(out, DIALECTS)  # the capture replays: its answers are not resent
    assert (replayable.total, replayable.ignored, len(replayable.rest)) == (
        len(served),
        1,
        4 + len(usdm_answers),
    )


async def test_the_recorder_reconnects_and_misses_nothing(coinbase: Path, tmp_path: Path) -> None:
    products = {"SKL-USD", "DASH-BTC"}
    served = [
        f.frame
        for f in frames_of(coinbase)
        if message_of(f.frame)["type"] in {"match", "last_match", "ticker"}
        and message_of(f.frame)["product_id"] in products
    ]
    out = tmp_path / "captured.jsonl"
    stop = asyncio.Event()
    warnings: list[str] = []

    def captured() -> list[str]:
        frames = [f.frame for f in read_recording(out)] if out.exists() else []
        return [f for f in frames if message_of(f)["type"] != "subscriptions"]

    async with ReplayServer(coinbase, DIALECTS, max_speed=True, drop_every=40) as server:
        target = resolve_target(
            "coinbase",
            url=server.ws_url,
            symbols=sorted(products),
            channels=["trades", "quotes"],
            load_config=no_config,
        )
        recording = asyncio.create_task(record(target, out, stop=stop, warn=warnings.append))
        await wait_until(server.finished.is_set)
        await wait_until(lambda: len(captured()) >= len(served))  # flushed within a second
        stop.set()
        stats = await asyncio.wait_for(recording, WAIT_S)
    assert captured() == served
    assert stats.connections == len(served) // 40 + 1
    assert len(warnings) == stats.connections - 1
    assert all("closed the connection (1001)" in w for w in warnings)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_an_unreachable_feed_is_one_clear_error(tmp_path: Path) -> None:
    url = f"ws://127.0.0.1:{free_port()}"
    target = resolve_target(
        "coinbase", url=url, symbols=["BTC-USD"], channels=["trades"], load_config=no_config
    )
    with pytest.raises(MarketStreamError, match=f"^cannot connect to {url}: "):
        await asyncio.wait_for(record(target, tmp_path / "r.jsonl"), WAIT_S)


@pytest.mark.parametrize(
    ("name", "symbols", "channels", "message"),
    [
        ("nasdaq", ["BTC-USD"], ["trades"], "unknown exchange 'nasdaq'"),
        ("coinbase", ["btc-usd"], ["trades"], "not normalized"),
        ("coinbase", ["BTC-USD"], ["funding"], "channel 'funding' is not offered"),
        ("binance-usdm", ["BTC-USDT"], ["trades"], "BTC-USDT"),
    ],
)
def test_bad_targets_are_refused(
    name: str, symbols: list[str], channels: list[str], message: str
) -> None:
    with pytest.raises(MarketStreamError, match=message):
        resolve_target(
            name, url="ws://x", symbols=symbols, channels=channels, load_config=no_config
        )


def test_missing_values_come_from_the_configuration(shipped_config: PipelineConfig) -> None:
    target = resolve_target("binance", load_config=lambda: shipped_config)
    configured = shipped_config.exchanges["binance"]
    assert target.url == configured.url
    assert target.rest_url == configured.rest_url
    assert target.subscription.symbols == configured.symbols
    assert target.subscription.channels == configured.channels


# --- subscriptions the exchange splits across endpoints --------------------------------------


OKX_SYMBOLS = ("BTC-USDT", "ETH-USDT", "BTC-USDT-PERP", "ETH-USDT-PERP")
SHIPPED_CHANNELS = ("trades", "quotes", "candles", "books", "funding")
DERIVATIVE_ONLY = ("liquidations", "open_interest")  # also in the shipped configuration


@pytest.mark.parametrize(
    ("name", "urls", "parts"),
    [
        (
            "okx",
            ["wss://ws.okx.com:8443/ws/v5/public", "wss://ws.okx.com:8443/ws/v5/business"],
            [
                (OKX_SYMBOLS, ("trades", "quotes", "books", "funding", *DERIVATIVE_ONLY)),
                (OKX_SYMBOLS, ("candles",)),
            ],
        ),
        (
            "bybit",
            ["wss://stream.bybit.com/v5/public/spot", "wss://stream.bybit.com/v5/public/linear"],
            [
                (("BTC-USDT", "ETH-USDT"), ("trades", "quotes", "candles", "books")),
                (("BTC-USDT-PERP", "ETH-USDT-PERP"), (*SHIPPED_CHANNELS, *DERIVATIVE_ONLY)),
            ],
        ),
    ],
)
def test_a_split_subscription_resolves_to_one_connection_per_part(
    shipped_config: PipelineConfig,
    name: ExchangeName,
    urls: list[str],
    parts: list[tuple[tuple[str, ...], tuple[str, ...]]],
) -> None:
    target = resolve_target(name, load_config=lambda: shipped_config)
    configured = shipped_config.exchanges[name]
    assert target.subscription == Subscription(configured.symbols, configured.channels)
    assert [p.url for p in target.parts] == urls
    assert [(p.subscription.symbols, p.subscription.channels) for p in target.parts] == parts
    assert target.url == ", ".join(urls)  # what `marketstream record` reports
    assert target.rest_url == configured.rest_url


def test_a_subscription_with_nothing_to_subscribe_is_refused() -> None:
    with pytest.raises(MarketStreamError, match="okx: nothing to subscribe for funding of"):
        resolve_target(
            "okx", url="ws://x", symbols=["BTC-USDT"], channels=["funding"], load_config=no_config
        )


T0 = 1_700_000_000_000_000_000
LEAD_IN_NS = 1_000_000_000  # recorded pause after the first frame: both parts subscribe in it


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


def _okx(channel: str, inst_id: str, data: list[object], **extra: object) -> str:
    return _json({"arg": {"channel": channel, "instId": inst_id}, **extra, "data": data})


def _okx_trade(inst_id: str, trade_id: str) -> str:
    data = {"instId": inst_id, "tradeId": trade_id, "px": "37000.2", "sz": "0.01",
            "side": "buy", "ts": "1700000000050"}  # fmt: skip
    return _okx("trades", inst_id, [data])


def _okx_book_update(inst_id: str, prev: int, bid: str) -> str:
    data = {"asks": [], "bids": [[bid, "1", "0", "1"]], "ts": "1700000000300",
            "prevSeqId": prev, "seqId": prev + 1}  # fmt: skip
    return _okx("books", inst_id, [data], action="update")


def _okx_candle(inst_id: str) -> str:
    row = ["1700000000000", "37000", "37010", "36990", "37005", "12.5", "462500", "462500", "0"]
    return _okx("candle1m", inst_id, [row])


def _okx_rest(seq_id: int, bid: str, ask: str) -> str:
    book = {"asks": [[ask, "1", "0", "1"]], "bids": [[bid, "1", "0", "1"]],
            "ts": "1700000000000", "seqId": seq_id}  # fmt: skip
    return _json({"code": "0", "msg": "", "data": [book]})


OKX_BASE = "wss://ws.okx.com:8443/ws/v5"
OKX_PUBLIC, OKX_BUSINESS = f"{OKX_BASE}/public", f"{OKX_BASE}/business"
OKX_REST = "https://www.okx.com/api/v5/market/books?sz=400&instId="
# What OKX's shipped configuration receives, on both endpoints, after a lead-in frame of an
# instrument nobody subscribes (the replay skips it), plus the REST snapshots of its books.
OKX_SERVED = [
    (OKX_PUBLIC, _okx_trade("XRP-USDT", "1")),
    (OKX_PUBLIC, _okx_trade("BTC-USDT", "2")),
    (OKX_BUSINESS, _okx_candle("BTC-USDT")),
    (OKX_PUBLIC, _okx_book_update("BTC-USDT", 100, "36999.5")),
    (OKX_PUBLIC, _okx("tickers", "ETH-USDT-SWAP", [{
        "instId": "ETH-USDT-SWAP", "last": "2000.1", "askPx": "2000.2", "askSz": "30",
        "bidPx": "2000.1", "bidSz": "12", "ts": "1700000000200"}])),
    (OKX_BUSINESS, _okx_candle("ETH-USDT-SWAP")),
    (OKX_PUBLIC, _okx("funding-rate", "BTC-USDT-SWAP", [{
        "instId": "BTC-USDT-SWAP", "fundingRate": "0.0001", "fundingTime": "1700006400000",
        "nextFundingTime": "1700035200000", "ts": "1700000000300"}])),
    (OKX_PUBLIC, _okx_book_update("ETH-USDT", 200, "1999.5")),
    (OKX_PUBLIC, _okx_trade("ETH-USDT-SWAP", "3")),
]  # fmt: skip
OKX_SNAPSHOTS = [
    (f"{OKX_REST}BTC-USDT", _okx_rest(100, "37000.1", "37000.2")),
    (f"{OKX_REST}ETH-USDT", _okx_rest(200, "2000.1", "2000.2")),
    (f"{OKX_REST}BTC-USDT-SWAP", _okx_rest(300, "37001.1", "37001.2")),
    (f"{OKX_REST}ETH-USDT-SWAP", _okx_rest(400, "2001.1", "2001.2")),
]


def _bybit_trade(native: str, price: str, ms: int) -> str:
    trade = {"T": ms, "s": native, "S": "Buy", "v": "0.01", "p": price, "i": f"t{ms}"}
    return _json({"topic": f"publicTrade.{native}", "type": "snapshot", "ts": ms, "data": [trade]})


def _bybit_book(depth: int, native: str, kind: str, u: int, ms: int) -> str:
    data = {"s": native, "b": [["16493.50", "0.006"]], "a": [["16611.00", "0.029"]], "u": u,
            "seq": u}  # fmt: skip
    return _json({"topic": f"orderbook.{depth}.{native}", "type": kind, "ts": ms, "data": data})


BYBIT_BASE = "wss://stream.bybit.com/v5/public"
BYBIT_SPOT, BYBIT_LINEAR = f"{BYBIT_BASE}/spot", f"{BYBIT_BASE}/linear"
MS0 = 1_700_000_000_000
# BTCUSDT's trades are on both endpoints: the recorded URL says which is the perpetual.
BYBIT_SERVED = [
    (BYBIT_SPOT, _bybit_trade("XRPUSDT", "0.5", MS0)),
    (BYBIT_SPOT, _bybit_trade("BTCUSDT", "16578.50", MS0 + 1)),
    (BYBIT_LINEAR, _bybit_trade("BTCUSDT", "16580.00", MS0 + 2)),
    (BYBIT_SPOT, _bybit_book(1, "ETHUSDT", "snapshot", 900, MS0 + 3)),
    (BYBIT_LINEAR, _bybit_book(50, "BTCUSDT", "snapshot", 70, MS0 + 4)),
    (BYBIT_LINEAR, _json({"topic": "tickers.ETHUSDT", "type": "snapshot", "ts": MS0 + 5,
                          "data": {"symbol": "ETHUSDT", "fundingRate": "-0.000212",
                                   "nextFundingTime": "1700006400000"}})),
    (BYBIT_SPOT, _json({"topic": "kline.1.BTCUSDT", "type": "snapshot", "ts": MS0 + 6, "data": [{
        "start": MS0, "end": MS0 + 59_999, "interval": "1", "open": "16649.5", "close": "16677",
        "high": "16677", "low": "16608", "volume": "2.081", "confirm": False}]})),
    (BYBIT_LINEAR, _bybit_book(50, "BTCUSDT", "delta", 71, MS0 + 7)),
    (BYBIT_SPOT, _bybit_trade("ETHUSDT", "2000.50", MS0 + 8)),
]  # fmt: skip


@dataclass(frozen=True)
class SplitCase:
    name: str
    base: str  # the URL the frames were recorded under: the replay server's ws_url serves it
    served: list[tuple[str, str]]  # (recorded url, frame), the first one a lead-in
    snapshots: list[tuple[str, str]]  # (REST url, body)
    trades: set[str]  # the symbols normalize must find trades of


SPLIT_CASES = [
    SplitCase("okx", OKX_BASE, OKX_SERVED, OKX_SNAPSHOTS, {"BTC-USDT", "ETH-USDT-PERP"}),
    SplitCase("bybit", BYBIT_BASE, BYBIT_SERVED, [], {"BTC-USDT", "BTC-USDT-PERP", "ETH-USDT"}),
]


def split_recording(case: SplitCase, path: Path) -> None:
    lines = captured_instrument_answers(case.name)
    lines += [RecordedFrame(T0 - 1, case.name, url, body) for url, body in case.snapshots]
    lines += [
        RecordedFrame(T0 + (i and LEAD_IN_NS + i * 1_000_000), case.name, url, frame)
        for i, (url, frame) in enumerate(case.served)
    ]
    path.write_bytes(b"".join(line.to_json_line() for line in lines))


def answers_to(target: RecordTarget) -> int:
    """How many answers the replay server sends to the parts' subscribe requests (OKX
    answers each argument, Bybit each request): the capture holds them too."""
    dialect = DIALECTS[target.exchange.name]
    return sum(
        len(dialect.open_session(urlsplit(part.url).path).on_message(request))
        for part in target.parts
        for request in target.exchange.subscribe_messages(part.subscription)
    )


@pytest.mark.parametrize("case", SPLIT_CASES, ids=[case.name for case in SPLIT_CASES])
async def test_a_split_subscription_is_recorded_over_a_connection_per_part(
    case: SplitCase, shipped_config: PipelineConfig, tmp_path: Path
) -> None:
    """The shipped configuration recorded against the replay server: every part on its own
    endpoint at once, into one file that replays and normalizes both parts apart."""
    split_recording(case, tmp_path / "served.jsonl")
    pushes = case.served[1:]  # the lead-in is nobody's
    warnings: list[str] = []
    out = tmp_path / "captured.jsonl"
    async with ReplayServer(tmp_path / "served.jsonl", DIALECTS, speed=1.0) as server:
        target = resolve_target(
            case.name,
            url=server.ws_url,
            rest_url=server.http_url,
            load_config=lambda: shipped_config,
        )
        urls = [part.url for part in target.parts]
        assert len(urls) == 2
        answers = answers_to(target)
        stats = await asyncio.wait_for(
            record(
                target,
                out,
                max_frames=len(pushes) + answers,
                snapshot_interval_s=0.01,
                warn=warnings.append,
            ),
            WAIT_S,
        )
        assert server.finished.is_set()
    captured = list(read_recording(out))
    websocket = [f for f in captured if not f.is_rest]
    assert {f.url for f in websocket} == set(urls)
    pushed = {frame for _, frame in pushes}
    for url in urls:  # each connection's frames in the order served, under its own URL
        served_here = [f for u, f in pushes if u.replace(case.base, server.ws_url) == url]
        assert served_here
        assert [f.frame for f in websocket if f.url == url and f.frame in pushed] == served_here
    # One REST snapshot per book symbol, from the part with books only (the query's order
    # differs from the served URL's: the replay server looks them up sorted).
    served_lists = [f.frame for f in captured_instrument_answers(case.name)]
    assert instrument_answers(captured, case.name) == sorted(served_lists)
    rest = sorted(
        (request_target(f.url), f.frame)
        for f in captured
        if f.is_rest and f.frame not in served_lists
    )
    assert rest == sorted((request_target(url), body) for url, body in case.snapshots)
    assert all(f.url.startswith(server.http_url) for f in captured if f.is_rest)
    assert (stats.frames, stats.connections, stats.snapshots) == (
        len(pushes) + answers,
        2,
        len(case.snapshots),
    )
    # An instrument list the server does not hold (no Bybit v5 answer is captured) is a
    # warning naming its URL; the recording goes on without it.
    venue = VENUES[case.name]
    assert venue.instrument_urls is not None
    unserved = len(venue.instrument_urls(server.http_url)) - len(served_lists)
    assert len(warnings) == unserved
    assert all(w.startswith("instrument list not recorded: GET ") for w in warnings)
    assert all("404" in w for w in warnings)
    replayable = scan_recording(out, DIALECTS)
    assert (replayable.total, replayable.ignored, len(replayable.rest)) == (
        len(pushes),
        answers,
        len(case.snapshots) + len(served_lists),
    )
    normalized = io.BytesIO()
    configured = shipped_config.exchanges[case.name].symbols  # type: ignore[index]
    summary = normalize_recording(
        out, case.name, normalized, shipped_config.ingest, symbols=configured
    )
    assert (summary.rejected, summary.gaps, summary.books_waiting) == ({}, 0, 0)
    records = [orjson.loads(line) for line in normalized.getvalue().splitlines()]
    assert {r["symbol"] for r in records if r["type"] == "trade"} == case.trades
    if case.snapshots:  # every book of the configuration synced from its REST snapshot
        assert {r["symbol"] for r in records if r["type"] == "book"} == set(OKX_SYMBOLS)


async def test_max_frames_stops_every_part_at_the_limit(tmp_path: Path) -> None:
    """Both connections are mid-burst (their subscribe answers) when the limit is reached:
    the one that reaches it stops the other, and no part writes past it."""
    split_recording(SPLIT_CASES[0], tmp_path / "served.jsonl")
    out = tmp_path / "captured.jsonl"
    async with ReplayServer(tmp_path / "served.jsonl", DIALECTS, max_speed=True) as server:
        target = resolve_target(
            "okx",
            url=server.ws_url,
            symbols=OKX_SYMBOLS,
            channels=SHIPPED_CHANNELS,
            load_config=no_config,
        )
        assert answers_to(target) > 10
        warnings: list[str] = []
        stats = await asyncio.wait_for(
            record(target, out, max_frames=10, warn=warnings.append), WAIT_S
        )
    lines = list(read_recording(out))
    assert (stats.frames, len(lines), stats.connections) == (10, 10, 2)
    assert warnings == ["no REST URL (--rest-url): book snapshots are not recorded"]
