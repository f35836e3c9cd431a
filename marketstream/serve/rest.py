"""REST routes under /v1: latest prices from Redis, every record type over every tier (polled
source prices included, `/v1/prices`), the quality report and the archive status.

Inputs go through the checks `marketstream query` uses (`check_exchange`, `check_symbol`,
`parse_time`, `check_interval`), so only known names and integers reach a store, as bound
parameters. Range answers are paged (see `pages`) and come as JSON, NDJSON or an Arrow IPC
stream, by the Accept header.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Final, Literal

import orjson
import pyarrow as pa
from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response, StreamingResponse

from marketstream.query import hot_queries as hq
from marketstream.schemas.arrow import from_arrow
from marketstream.schemas.codec import encode_record
from marketstream.schemas.columns import CANDLES, SPEC_BY_TABLE, TableSpec
from marketstream.serve import status
from marketstream.serve.channels import STREAM_TABLES
from marketstream.serve.context import ServeContext, context_of
from marketstream.serve.limits import Refused, check_range_days, check_rows
from marketstream.serve.pages import Cursor, RangeRequest, decode_cursor, read_candles, read_page
from marketstream.tiers.redis_bus import price_key

router = APIRouter(prefix="/v1", tags=["data"])

ARROW_STREAM: Final = "application/vnd.apache.arrow.stream"
NDJSON: Final = "application/x-ndjson"
NEXT_CURSOR_HEADER: Final = "X-Next-Cursor"
TIME_HELP: Final = "ISO-8601 (2025-11-20T10:00:00Z; no offset means UTC) or epoch nanoseconds"
# Every record table by range; candles have a route of their own (bars from trades, or these).
RANGE_TABLES: Final[dict[str, TableSpec]] = {
    t: SPEC_BY_TABLE[t] for t in STREAM_TABLES if t != CANDLES.table
}
PRICE_SCAN_COUNT: Final = 1000
EXCHANGE_CANDLES: Final = "candles:exchange"  # what an exchange-bars cursor is bound to
DEFAULT_INTERVAL: Final = "1m"

Exchange = Annotated[
    str,
    Query(
        description="an exchange name as configured under `exchanges:`, or a polled price "
        "source's under `sources:` (its records carry the source's name as `exchange`)"
    ),
]
Symbol = Annotated[str, Query(description="normalized, e.g. BTC-USDT or BTC-USDT-PERP")]
Start = Annotated[str, Query(description=f"inclusive; {TIME_HELP}")]
End = Annotated[str, Query(description=f"exclusive; {TIME_HELP}")]
Limit = Annotated[int | None, Query(description="rows per page (default serve.default_limit)")]
CursorText = Annotated[str | None, Query(description="next_cursor of the previous page")]


# --- latest -----------------------------------------------------------------------------------


@router.get("/latest", summary="The latest price of every instrument (or of one), from Redis")
async def latest(
    request: Request, exchange: str | None = None, symbol: str | None = None
) -> Response:
    """`price:{<exchange>}:<symbol>` keys (Redis contract v2), sorted by exchange and symbol."""
    context = context_of(request)
    exchange = None if exchange is None else hq.check_exchange(exchange)
    symbol = None if symbol is None else hq.check_symbol(symbol)
    if exchange is not None and symbol is not None:
        keys = [price_key(exchange, symbol)]
    else:
        pattern = f"price:{{{exchange or '*'}}}:{symbol or '*'}"
        found = {key async for key in context.redis.scan_iter(pattern, count=PRICE_SCAN_COUNT)}
        keys = sorted(k.decode() if isinstance(k, bytes) else str(k) for k in found)
    pipe = context.redis.pipeline(transaction=False)  # one round trip (per node on a cluster)
    for key in keys:
        pipe.get(key)
    data = []
    for key, raw in zip(keys, await pipe.execute(), strict=True):
        if raw is None:
            continue  # expired or deleted since the scan
        ex, sym = _parse_price_key(key)
        data.append({"exchange": ex, "symbol": sym, **orjson.loads(raw)})
    data.sort(key=lambda row: (row["exchange"], row["symbol"]))
    return Response(orjson.dumps({"data": data}), media_type="application/json")


def _parse_price_key(key: str) -> tuple[str, str]:
    _, tagged, symbol = key.split(":", 2)
    return tagged.strip("{}"), symbol


# --- ranges -----------------------------------------------------------------------------------


def _range_route(table: str) -> None:
    spec = RANGE_TABLES[table]

    async def read(  # noqa: PLR0917 - the query parameters of the route
        request: Request,
        exchange: Exchange,
        symbol: Symbol,
        start: Start,
        end: End,
        limit: Limit = None,
        cursor: CursorText = None,
    ) -> Response:
        context = context_of(request)
        return await _range_answer(
            request, context, spec, table, exchange, symbol, start, end, limit, cursor
        )

    read.__name__ = table
    router.add_api_route(
        f"/{table}",
        read,
        methods=["GET"],
        summary=f"{table} of one instrument in [start, end), in time order, paged",
        description=f"Each UTC day from the hottest tier holding it. {_FORMATS_DOC}",
    )


async def _range_answer(  # noqa: PLR0917 - a route's query parameters, passed on
    request: Request,
    context: ServeContext,
    spec: TableSpec,
    name: str,
    exchange: str,
    symbol: str,
    start: str,
    end: str,
    limit: int | None,
    cursor: str | None,
) -> Response:
    """One page of `spec`'s rows, read from the tiers; `name` is what the cursor is bound to."""
    query, rows = _checked(context, name, exchange, symbol, start, end, limit)
    after = None if cursor is None else decode_cursor(cursor, query)

    def page() -> tuple[pa.Table, Cursor | None]:
        with context.tiered() as tiered:
            return read_page(tiered, spec, query, rows, after)

    table, following = await run_in_threadpool(page)
    return _answer(request, spec, table, _encoded(following, query))


@router.get(
    "/candles",
    summary="OHLCV bars opening in [start, end): built from trades, or the exchange's own",
)
async def candles(  # noqa: PLR0917 - the query parameters of the route
    request: Request,
    exchange: Exchange,
    symbol: Symbol,
    start: Start,
    end: End,
    source: Annotated[
        Literal["trades", "exchange"],
        Query(
            description="trades: bars built from the trades, at `interval`; exchange: the "
            "bars the exchange sent (the `candles` table, one row per bar with its interval "
            "and `closed`), paged like the other record types"
        ),
    ] = "trades",
    interval: Annotated[
        str | None,
        Query(description="source=trades: 1s, 1m (default), 5m, 1h or 1d (UTC calendar)"),
    ] = None,
    limit: Limit = None,
    cursor: CursorText = None,
) -> Response:
    """Each UTC day from the hottest tier holding it, as JSON, NDJSON or Arrow."""
    context = context_of(request)
    if source == "exchange":
        if interval is not None:
            raise Refused(
                f"interval={interval} applies to source=trades: source=exchange returns the "
                "exchange's own bars, each with the interval it was sent at",
                status=400,
            )
        return await _range_answer(
            request, context, CANDLES, EXCHANGE_CANDLES, exchange, symbol, start, end, limit, cursor
        )
    interval = interval or DEFAULT_INTERVAL
    hq.check_interval(interval)
    query, rows = _checked(context, "candles", exchange, symbol, start, end, limit, interval)
    after = None if cursor is None else decode_cursor(cursor, query)

    def page() -> tuple[pa.Table, Cursor | None]:
        with context.tiered() as tiered:
            return read_candles(tiered, query, rows, after)

    table, following = await run_in_threadpool(page)
    return _answer(request, CANDLES, table, _encoded(following, query))


_FORMATS_DOC: Final = (
    f"JSON by default ({{'data': [...], 'next_cursor': ...}}); `Accept: {NDJSON}` streams one "
    f"record per line and `Accept: {ARROW_STREAM}` sends an Arrow IPC stream, both with the "
    f"next cursor in the `{NEXT_CURSOR_HEADER}` header (absent on the last page)."
)
for _table in RANGE_TABLES:
    _range_route(_table)


def _checked(  # noqa: PLR0917
    context: ServeContext,
    table: str,
    exchange: str,
    symbol: str,
    start: str,
    end: str,
    limit: int | None,
    interval: str | None = None,
) -> tuple[RangeRequest, int]:
    settings = context.settings
    exchange, symbol = hq.check_exchange(exchange), hq.check_symbol(symbol)
    start_ns, end_ns = hq.check_range(hq.parse_time(start, "start"), hq.parse_time(end, "end"))
    check_range_days(start_ns, end_ns, settings.max_range_days)
    rows = check_rows(settings.default_limit if limit is None else limit, settings.max_limit)
    return RangeRequest(table, exchange, symbol, start_ns, end_ns, interval), rows


def _encoded(cursor: Cursor | None, query: RangeRequest) -> str | None:
    return None if cursor is None else cursor.encode(query)


def _answer(
    request: Request, spec: TableSpec, table: pa.Table, next_cursor: str | None
) -> Response:
    accept = request.headers.get("accept", "")
    headers = {} if next_cursor is None else {NEXT_CURSOR_HEADER: next_cursor}
    if ARROW_STREAM in accept:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return Response(sink.getvalue().to_pybytes(), media_type=ARROW_STREAM, headers=headers)
    records = from_arrow(spec, table)
    if NDJSON in accept:

        def lines() -> Iterator[bytes]:
            for record in records:
                yield encode_record(record) + b"\n"

        return StreamingResponse(lines(), media_type=NDJSON, headers=headers)
    body = b'{"data":[' + b",".join(encode_record(r) for r in records) + b'],"next_cursor":'
    return Response(
        body + orjson.dumps(next_cursor) + b"}", media_type="application/json", headers=headers
    )


# --- reports ----------------------------------------------------------------------------------


@router.get(
    "/quality", summary="The quality report (as `marketstream quality report --format json`)"
)
async def quality(
    request: Request,
    *,
    since: Annotated[str, Query(description="e.g. 24h, 7d or a time")] = "24h",
    until: str | None = None,
    exchange: Annotated[
        str | None, Query(description="only this exchange or polled price source")
    ] = None,
    symbol: str | None = None,
    from_first_tick: Annotated[
        bool,
        Query(
            description="count a polled source's expected ticks from its first stored tick in "
            "the range (as --from-first-tick)"
        ),
    ] = False,
) -> Response:
    context = context_of(request)
    body: dict[str, Any] = await run_in_threadpool(
        status.quality_report,
        context,
        since,
        until,
        exchange,
        symbol,
        from_first_tick=from_first_tick,
    )
    return Response(orjson.dumps(body), media_type="application/json")


@router.get("/archive", summary="Archive status (as `marketstream archive status --json`)")
async def archive(request: Request, moves: Annotated[int, Query(ge=0, le=1000)] = 20) -> Response:
    context = context_of(request)
    body = await run_in_threadpool(status.archive_status, context, moves)
    return Response(orjson.dumps(body), media_type="application/json")
