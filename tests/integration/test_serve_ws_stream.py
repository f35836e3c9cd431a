"""`/v1/stream` of a real `marketstream serve` over real WebSockets, on the session's real Redis:
channel filtering, a client killed and resumed from its last ids, trimmed history as a `gap`,
a hundred clients on one stream, and the limits and the token refused."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import urllib.parse
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from marketstream.schemas.codec import decode_record, encode_record
from marketstream.schemas.columns import spec_of
from marketstream.schemas.records import Price, Quote, Record, Trade
from marketstream.tiers.redis_bus import stream_key
from tests.integration.serve_process import running_serve

TOKEN = "stream-test-token-0123456789"  # noqa: S105 - a test's own token
T0 = 1_765_000_000 * 10**9
WAIT_S = 60  # a hang guard, never a timing assertion
BTC = "trades:binance:BTC-USDT"


@pytest.fixture(scope="module")
def serving(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One serve with a token and at most 3 streams per client."""
    environ = {
        "MARKETSTREAM_ENDPOINTS__REDIS": redis_url,
        "MARKETSTREAM_API_TOKEN": TOKEN,
        "MARKETSTREAM_SERVE__MAX_STREAMS_PER_CLIENT": "3",
    }
    with running_serve(environ, tmp_path_factory.mktemp("serve-stream")) as (url, lines):
        yield url.replace("http://", "ws://")
        assert not [line for line in lines if "Traceback" in line], "".join(lines)


def trade(exchange: str, symbol: str, n: int) -> Trade:
    return Trade(exchange, symbol, T0 + n, T0 + n, f"{exchange}-{n}", 100.0 + n, 1.0, "buy")


def quote(exchange: str, symbol: str, n: int) -> Quote:
    return Quote(exchange, symbol, T0 + n, T0 + n, 99.0, 1.0, 101.0, 2.0, None)


async def publish(client: redis.asyncio.Redis, records: Sequence[Record]) -> list[str]:
    """XADD as the publisher writes (contract v2, field `d`); the entry ids."""
    ids = []
    for record in records:
        key = stream_key(spec_of(record).table, record.exchange)
        entry_id = await client.xadd(key, {"d": encode_record(record)})
        ids.append(entry_id.decode() if isinstance(entry_id, bytes) else entry_id)
    return ids


async def publish_many(client: redis.asyncio.Redis, records: Sequence[Record]) -> None:
    pipe = client.pipeline(transaction=False)
    for record in records:
        pipe.xadd(stream_key(spec_of(record).table, record.exchange), {"d": encode_record(record)})
    await pipe.execute()


def stream_url(base: str, channels: str | None = None, **params: str) -> str:
    query = {"token": TOKEN, **params} | ({"channels": channels} if channels else {})
    return f"{base}/v1/stream?{urllib.parse.urlencode(query)}"


@contextlib.asynccontextmanager
async def subscribed(
    url: str, message: dict[str, Any] | None = None
) -> AsyncIterator[ClientConnection]:
    async with connect(url, open_timeout=WAIT_S, max_size=None) as ws:
        if message is not None:
            await ws.send(orjson.dumps(message).decode())
        first = orjson.loads(await asyncio.wait_for(ws.recv(), WAIT_S))
        assert first["type"] == "subscribed", first
        yield ws


async def receive(ws: ClientConnection, until: int) -> list[dict[str, Any]]:
    """Messages' records (and gap messages) until `until` records arrived."""
    found: list[dict[str, Any]] = []
    while sum(1 for m in found if m["type"] == "record") < until:
        message = orjson.loads(await asyncio.wait_for(ws.recv(), WAIT_S))
        if message["type"] == "records":
            found += [{"type": "record", **item} for item in message["records"]]
        else:
            found.append(message)
    return found


async def closed_by_server(ws: ClientConnection) -> ConnectionClosed:
    """Read until the server closes; the close it sent."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), WAIT_S)
    except ConnectionClosed as exc:
        return exc


def keys(items: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    return [
        (i["record"]["exchange"], i["record"].get("trade_id") or str(i["record"]["ts"]))
        for i in items
        if i["type"] == "record"
    ]


async def test_a_stream_carries_only_its_channels_records(
    serving: str, client: redis.asyncio.Redis
) -> None:
    url = stream_url(serving, "trades:binance:BTC-USDT,quotes:*:ETH-USDT")
    async with subscribed(url) as ws:
        await publish(
            client,
            [
                trade("binance", "BTC-USDT", 1),
                trade("binance", "ETH-USDT", 2),  # another symbol
                trade("okx", "BTC-USDT", 3),  # another exchange
                quote("okx", "ETH-USDT", 4),
                quote("binance", "BTC-USDT", 5),  # another symbol
                quote("kraken", "ETH-USDT", 6),  # a new exchange's stream: found by discovery
                trade("binance", "BTC-USDT", 7),
            ],
        )
        found = await receive(ws, 4)
    records = [item for item in found if item["type"] == "record"]
    assert sorted(
        (r["record"]["type"], r["record"]["exchange"], r["record"]["ts"] - T0) for r in records
    ) == [
        ("quote", "kraken", 6),
        ("quote", "okx", 4),
        ("trade", "binance", 1),
        ("trade", "binance", 7),
    ]
    assert {r["stream"] for r in records} == {
        "md:{binance}:trades",
        "md:{okx}:quotes",
        "md:{kraken}:quotes",
    }
    binance = [r["record"]["ts"] - T0 for r in records if r["stream"] == "md:{binance}:trades"]
    assert binance == [1, 7]  # in stream order


async def test_a_sources_prices_stream_live_with_their_nulls(
    serving: str, client: redis.asyncio.Redis
) -> None:
    """`md:{jupiter}:prices` is a stream like any: a polled source's channel carries it."""
    sol = [
        Price("jupiter", "SOL-USD", T0, T0 + 5, 147.48, None, 348004023, 6.2e8, 1.29),
        Price("jupiter", "SOL-USD", T0 + 10**9, T0 + 10**9 + 5, 147.5),  # no optional field
    ]
    async with subscribed(stream_url(serving, "prices:jupiter:SOL-USD")) as ws:
        await publish(
            client,
            [
                sol[0],
                Price("jupiter", "BONK-USD", T0, T0 + 6, 1.6e-05),  # another symbol
                Price("birdeye", "SOL-USD", T0, T0 + 7, 147.4, T0 - 10**9),  # another source
                sol[1],
            ],
        )
        found = await receive(ws, 2)
    assert [item["stream"] for item in found] == ["md:{jupiter}:prices"] * 2
    assert [decode_record(orjson.dumps(item["record"])) for item in found] == sol


async def test_a_killed_client_resumes_from_its_last_ids_missing_and_repeating_nothing(
    serving: str, client: redis.asyncio.Redis
) -> None:
    channels = "trades:binance:BTC-USDT,trades:okx:BTC-USDT"
    first_half = [trade(ex, "BTC-USDT", n) for n in range(40) for ex in ("binance", "okx")]
    second_half = [trade(ex, "BTC-USDT", n) for n in range(40, 90) for ex in ("okx", "binance")]
    last_ids: dict[str, str] = {}
    got: list[dict[str, Any]] = []
    async with subscribed(stream_url(serving, channels)) as ws:
        await publish(client, first_half)
        got += await receive(ws, 30)  # mid-stream: more are on their way
        ws.transport.abort()  # killed: no close handshake
    for item in got:
        last_ids[item["stream"]] = item["id"]
    await publish(client, second_half)  # while it is away
    async with subscribed(
        f"{serving}/v1/stream?token={TOKEN}",
        {"op": "subscribe", "channels": channels.split(","), "last_ids": last_ids},
    ) as ws:
        got += await receive(ws, len(first_half) + len(second_half) - len(got))
        sentinel = trade("binance", "BTC-USDT", 1000)
        await publish(client, [sentinel])
        tail = await receive(ws, 1)
    assert [i["type"] for i in got] == ["record"] * len(got)  # no gap: nothing was trimmed
    assert keys(tail) == [("binance", "binance-1000")]  # nothing repeated before it
    for exchange in ("binance", "okx"):
        sent = [r.trade_id for r in (*first_half, *second_half) if r.exchange == exchange]
        seen = [i["record"]["trade_id"] for i in got if i["record"]["exchange"] == exchange]
        assert seen == sent, exchange


async def test_history_trimmed_while_away_is_reported_as_a_gap(
    serving: str, client: redis.asyncio.Redis
) -> None:
    ids = await publish(client, [trade("okx", "ETH-USDT", n) for n in range(10)])
    await client.xtrim(stream_key("trades", "okx"), maxlen=3, approximate=False)
    url = stream_url(serving, "trades:okx:ETH-USDT", last_ids=f"md:{{okx}}:trades={ids[2]}")
    async with subscribed(url) as ws:
        found = await receive(ws, 3)
    assert found[0]["type"] == "gap"
    assert found[0]["stream"] == "md:{okx}:trades"
    assert found[0]["after"] == ids[2]
    assert found[0]["first_id"] == ids[7]
    assert "trimmed" in found[0]["reason"]
    assert [i["id"] for i in found[1:]] == ids[7:]


async def test_a_client_over_the_stream_limit_is_refused_naming_it(serving: str) -> None:
    url = stream_url(serving, "trades:binance:*")
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(3):
            await stack.enter_async_context(subscribed(url))
        async with connect(url, open_timeout=WAIT_S) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), WAIT_S)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008
    assert "max_streams_per_client is 3" in closed.value.rcvd.reason
    # the slots are given back: a new stream is accepted
    async with subscribed(url):
        pass


@pytest.mark.parametrize(
    ("url_of", "named"),
    [
        (lambda base: f"{base}/v1/stream?channels=trades:binance:BTC-USDT", "missing bearer token"),
        (
            lambda base: f"{base}/v1/stream?channels=trades:binance:BTC-USDT&token=wrong",
            "wrong bearer token",
        ),
        (lambda base: stream_url(base, "trades:nasdaq:BTC-USDT"), "'trades:nasdaq:BTC-USDT'"),
        (
            lambda base: stream_url(base, "trades:binance:BTC-USDT", last_ids="md:dlq=1-0"),
            "'md:dlq'",
        ),
    ],
)
async def test_a_bad_request_is_closed_with_1008_naming_the_problem(
    serving: str, url_of: Any, named: str
) -> None:
    async with connect(url_of(serving), open_timeout=WAIT_S) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), WAIT_S)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008
    assert named in closed.value.rcvd.reason


async def test_a_hundred_clients_each_get_every_record(
    redis_url: str, client: redis.asyncio.Redis, tmp_path: Path
) -> None:
    environ = {
        "MARKETSTREAM_ENDPOINTS__REDIS": redis_url,
        "MARKETSTREAM_SERVE__MAX_STREAMS_PER_CLIENT": "128",
        "MARKETSTREAM_SERVE__STREAM_BATCH": "50",
    }
    with running_serve(environ, tmp_path) as (url, lines):
        base = url.replace("http://", "ws://")
        records = [trade("bybit", "SOL-USDT", n) for n in range(300)]
        async with contextlib.AsyncExitStack() as stack:
            sockets = [
                await stack.enter_async_context(
                    subscribed(f"{base}/v1/stream?channels=trades:bybit:SOL-USDT")
                )
                for _ in range(100)
            ]
            await publish(client, records)
            received = await asyncio.gather(*(receive(ws, len(records)) for ws in sockets))
        assert not [line for line in lines if "Traceback" in line], "".join(lines)
    wanted = [r.trade_id for r in records]
    for found in received:
        assert [i["record"]["trade_id"] for i in found] == wanted


async def test_a_client_that_does_not_read_is_closed_as_too_slow(
    redis_url: str, client: redis.asyncio.Redis, tmp_path: Path
) -> None:
    environ = {
        "MARKETSTREAM_ENDPOINTS__REDIS": redis_url,
        "MARKETSTREAM_SERVE__STREAM_QUEUE": "100",
        "MARKETSTREAM_SERVE__STREAM_BATCH": "10",
    }
    with running_serve(environ, tmp_path) as (url, _lines):
        parts = urllib.parse.urlsplit(url)
        # A client that upgrades and then reads nothing: a small receive buffer (no kernel
        # autotuning) and a stream reader that stops the socket at its 64 KiB limit, so the
        # server's sends block and its queue for this client fills up.
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.connect((parts.hostname, parts.port))
        reader, writer = await asyncio.open_connection(sock=sock)
        writer.write(
            b"GET /v1/stream?channels=trades:kraken:* HTTP/1.1\r\nHost: %b\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            % parts.netloc.encode()
        )
        await writer.drain()
        assert b" 101 " in await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT_S)
        padding = "x" * 2000
        for start in range(0, 20_000, 1000):
            await publish_many(
                client,
                [
                    Trade("kraken", "BTC-USD", T0 + n, T0 + n, f"{n}{padding}", 1.0, 1.0, "buy")
                    for n in range(start, start + 1000)
                ],
            )
        code, reason = await asyncio.wait_for(close_frame(reader), WAIT_S)
        writer.close()
        async with httpx.AsyncClient(base_url=url, timeout=WAIT_S) as http:
            metrics = (await http.get("/metrics")).text
    assert "marketstream_serve_stream_slow_closes_total 1.0" in metrics
    assert "marketstream_serve_stream_entries_total 0.0" not in metrics
    assert code == 1013
    assert "client too slow" in reason
    assert "serve.stream_queue" in reason


async def close_frame(reader: asyncio.StreamReader) -> tuple[int, str]:
    """Read the server's (unmasked) frames until its close frame: (code, reason)."""
    while True:
        head = await reader.readexactly(2)
        length = head[1] & 0x7F
        if length == 126:
            length = int.from_bytes(await reader.readexactly(2))
        elif length == 127:
            length = int.from_bytes(await reader.readexactly(8))
        payload = await reader.readexactly(length)
        if head[0] & 0x0F == 0x8:
            return int.from_bytes(payload[:2]), payload[2:].decode()
