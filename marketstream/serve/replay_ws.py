"""`/v1/replay`: a historical range of several instruments, exchanges and record types from
every tier, merged in time order, at `speed` times the recorded pace or (`speed=0`) as fast
as the client reads.

Parameters: `channels=trades:binance:BTC-USDT,trades:okx:BTC-USDT` (or `exchanges=`,
`symbols=`, `types=` whose combinations are replayed; `types` defaults to trades), `start`,
`end` (ISO-8601 or epoch ns; end exclusive), `speed` (default 0), `gaps` (default true).
Messages: `{"type":"replay",...}` first, `records` batches in time order, `gap` markers (the
quality report's minutes without a trade, before the first trade after them), and `end` with
the counts. Each day is read from the hottest tier holding it (`TieredQueries`), one page per
instrument at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Final

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from marketstream.query.hot_queries import (
    QueryInputError,
    check_exchange,
    check_symbol,
    format_ns,
    parse_time,
)
from marketstream.schemas.arrow import from_arrow
from marketstream.schemas.codec import encode_record
from marketstream.schemas.columns import SPEC_BY_TABLE, SPEC_BY_TYPE, TableSpec
from marketstream.schemas.records import Record
from marketstream.serve.channels import STREAM_TABLES, ChannelError, parse_channel
from marketstream.serve.context import ServeContext, context_of
from marketstream.serve.limits import LimitExceeded, check_range_days, client_id, close_reason
from marketstream.serve.replay_merge import (
    Gap,
    Merged,
    MinuteGaps,
    Pacer,
    PageReader,
    SourceKey,
    merge,
    paged,
)

log = logging.getLogger(__name__)
router = APIRouter(tags=["websocket"])

# Every record table with a time range per instrument (`TieredQueries.range_table`); candles
# are the exchange's own bars, one row per bar.
REPLAY_TYPES: Final[dict[str, TableSpec]] = {t: SPEC_BY_TABLE[t] for t in STREAM_TABLES}
MAX_SOURCES: Final = 64  # instruments x types in one replay
WS_INTERNAL_ERROR: Final = 1011
GAP_REASON: Final = "quality: whole UTC minutes without a trade (quality.gaps.minute_coverage)"


@dataclass(frozen=True, slots=True)
class ReplayRequest:
    sources: tuple[SourceKey, ...]
    start_ns: int
    end_ns: int
    speed: float
    gaps: bool


def _table(kind: str) -> str:
    table = kind if kind in SPEC_BY_TABLE else None
    if table is None and kind in SPEC_BY_TYPE:
        table = SPEC_BY_TYPE[kind].table
    if table not in REPLAY_TYPES:
        raise QueryInputError(
            f"type {kind!r} cannot be replayed: expected one of {', '.join(REPLAY_TYPES)}"
        )
    return table


def _list(text: str | None) -> list[str]:
    return [item.strip() for item in (text or "").split(",") if item.strip()]


def _sources(params: dict[str, str]) -> dict[SourceKey, None]:
    sources: dict[SourceKey, None] = {}
    if "channels" in params:
        for text in _list(params["channels"]):
            channel = parse_channel(text)
            if channel.exchange is None or channel.symbol is None:
                raise ChannelError(
                    f"channel {text!r}: a replay names its exchange and symbol (no *)"
                )
            sources[SourceKey(_table(channel.table), channel.exchange, channel.symbol)] = None
    else:
        exchanges = [check_exchange(e) for e in _list(params.get("exchanges"))]
        symbols = [check_symbol(s) for s in _list(params.get("symbols"))]
        tables = [_table(t) for t in _list(params.get("types", "trades"))]
        for table in tables:
            for exchange in exchanges:
                for symbol in symbols:
                    sources[SourceKey(table, exchange, symbol)] = None
    return sources


def parse_request(
    params: dict[str, str], *, max_speed: float, max_range_days: float
) -> ReplayRequest:
    """The query parameters checked; QueryInputError or LimitExceeded names the bad one."""
    sources = _sources(params)
    if not sources:
        raise QueryInputError(
            "nothing to replay: expected channels=trades:<exchange>:BTC-USDT,... or "
            "exchanges=...&symbols=...[&types=trades]"
        )
    if len(sources) > MAX_SOURCES:
        raise QueryInputError(f"{len(sources)} instruments and types: at most {MAX_SOURCES}")
    for name in ("start", "end"):
        if name not in params:
            raise QueryInputError(f"{name} is missing: expected ISO-8601 or epoch nanoseconds")
    start_ns, end_ns = parse_time(params["start"], "start"), parse_time(params["end"], "end")
    if start_ns >= end_ns:
        raise QueryInputError(
            f"start {format_ns(start_ns)} is not before end {format_ns(end_ns)}: "
            "expected start < end"
        )
    check_range_days(start_ns, end_ns, max_range_days)
    speed = _speed(params.get("speed", "0"), max_speed)
    gaps = params.get("gaps", "true").lower()
    if gaps not in ("true", "false", "1", "0"):
        raise QueryInputError(f"gaps {gaps!r} is not a boolean: expected true or false")
    return ReplayRequest(tuple(sources), start_ns, end_ns, speed, gaps in ("true", "1"))


def _speed(text: str, max_speed: float) -> float:
    try:
        speed = float(text)
    except ValueError:
        speed = float("nan")
    if not speed >= 0:
        raise QueryInputError(
            f"speed {text!r} is not a factor: expected 0 (as fast as the client reads) or a "
            "positive number (1: the recorded pace)"
        )
    if speed > max_speed:
        raise LimitExceeded("replay_max_speed", f"{max_speed:g}", f"speed={text}")
    return speed


def _page_reader(context: ServeContext, key: SourceKey, end_ns: int) -> PageReader:
    """Pages of one source read on a worker thread with a tier reader from the pool."""
    spec = REPLAY_TYPES[key.table]

    def read(start_ns: int, limit: int) -> list[Record]:
        with context.tiered() as tiered:
            table = tiered.range_table(
                spec, key.exchange, key.symbol, start_ns, end_ns, limit=limit
            )
        return from_arrow(spec, table)

    async def read_async(start_ns: int, limit: int) -> Sequence[Record]:
        return await asyncio.to_thread(read, start_ns, limit)

    return read_async


async def replay_messages(
    context: ServeContext, request: ReplayRequest
) -> AsyncGenerator[str, None]:
    """The replay's JSON messages, paced; one page per source in memory."""
    settings = context.settings
    page = settings.replay_page
    sources = [
        (key, paged(_page_reader(context, key, request.end_ns), request.start_ns, page))
        for key in request.sources
    ]

    def gaps_for(key: SourceKey) -> MinuteGaps | None:
        if not request.gaps or key.table != "trades":
            return None
        return MinuteGaps(key.exchange, key.symbol, request.start_ns, request.end_ns)

    pacer = Pacer(request.speed, time.monotonic)
    counts = dict.fromkeys((k.text for k in request.sources), 0)
    gap_count, batch = 0, list[bytes]()
    yield orjson.dumps(
        {
            "type": "replay",
            "channels": list(counts),
            "start": request.start_ns,
            "end": request.end_ns,
            "speed": request.speed,
        }
    ).decode()
    async for event in merge(sources, gaps_for=gaps_for):
        if isinstance(event, Gap):
            if batch:
                yield _records(batch)
                batch = []
            gap_count += 1
            yield _gap(event)
            continue
        assert isinstance(event, Merged)
        wait = pacer.wait_s(event.record.ts)
        if wait > 0:
            if batch:
                yield _records(batch)
                batch = []
            await asyncio.sleep(wait)
        batch.append(encode_record(event.record))
        counts[event.source.text] += 1
        if len(batch) >= settings.stream_batch:
            yield _records(batch)
            batch = []
    if batch:
        yield _records(batch)
    yield orjson.dumps(
        {"type": "end", "records": sum(counts.values()), "gaps": gap_count, "by_channel": counts}
    ).decode()


def _records(batch: list[bytes]) -> str:
    return (b'{"type":"records","records":[%b]}' % b",".join(batch)).decode()


def _gap(gap: Gap) -> str:
    return orjson.dumps(
        {
            "type": "gap",
            "exchange": gap.exchange,
            "symbol": gap.symbol,
            "start": gap.start_ns,
            "end": gap.end_ns,
            "minutes": gap.minutes,
            "reason": GAP_REASON,
        }
    ).decode()


@router.websocket("/v1/replay")
async def replay(websocket: WebSocket) -> None:
    """A range replayed (see the module docstring); closes 1000 after `end`."""
    context = context_of(websocket)
    settings = context.settings
    async with context.slots.hold(client_id(websocket)):
        request = parse_request(
            dict(websocket.query_params),
            max_speed=settings.replay_max_speed,
            max_range_days=settings.max_range_days,
        )
        await websocket.accept()

        async def send() -> None:
            async with contextlib.aclosing(replay_messages(context, request)) as messages:
                async for message in messages:
                    await websocket.send_text(message)

        async def receive() -> None:
            while True:  # nothing is expected; reading notices the client leaving
                await websocket.receive_text()

        sender = asyncio.create_task(send(), name="serve-replay-send")
        receiver = asyncio.create_task(receive(), name="serve-replay-receive")
        try:
            done, _ = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sender, receiver):
                task.cancel()
            for task in (sender, receiver):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if sender not in done:
            return  # the client left
        exc = sender.exception()
        if exc is None:
            await _close(websocket, 1000, "replay complete")
        elif isinstance(exc, QueryInputError | LimitExceeded):
            raise exc
        elif not isinstance(exc, WebSocketDisconnect):
            log.error("a /v1/replay failed", exc_info=exc)
            await _close(websocket, WS_INTERNAL_ERROR, f"the replay failed: {exc}")


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.client_state == WebSocketState.CONNECTED:
        with contextlib.suppress(Exception):
            await websocket.close(code=code, reason=close_reason(reason))
