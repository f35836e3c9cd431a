"""Redis: the stream bus and the latest-price cache. This module owns the public contract.

Keys (documented in the README, read by users with plain XREAD and GET):
- `md:<table>:<exchange>`: one stream per record type and exchange; entry field `d` holds
  the record as JSON (`marketstream.schemas.codec`).
- `md:dlq`: rejected input, with the raw frame, the exchange and the reason.
- `price:<exchange>:<symbol>`: the latest price as JSON.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, cast

import orjson
import redis
import redis.asyncio

from marketstream.errors import ServiceError

DLQ_STREAM: Final = "md:dlq"
HOT_WRITER_GROUP: Final = "hot-writer"
TRIM_SCAN_LIMIT: Final = 100_000  # entries inspected per trim: trims run often, overflow is small


Entry = tuple[bytes, dict[bytes, bytes]]  # (entry id, fields) as XRANGE returns them


def stream_key(table: str, exchange: str) -> str:
    return f"md:{table}:{exchange}"


def price_key(exchange: str, symbol: str) -> str:
    return f"price:{exchange}:{symbol}"


def connect(url: str, *, timeout_s: float = 5.0) -> redis.Redis:
    """A client for a redis://, rediss:// or unix:// URL; connects lazily on first command.

    Socket timeouts keep a dead server from hanging a command forever.
    """
    try:
        return redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    except ValueError as exc:
        raise ServiceError(f"Redis URL {url!r} is not valid: {exc}") from None


def connect_async(url: str, *, timeout_s: float = 5.0) -> redis.asyncio.Redis:
    """The asyncio client the ingest and hot-writer loops use (hiredis parses replies)."""
    try:
        return redis.asyncio.Redis.from_url(
            url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s
        )
    except ValueError as exc:
        raise ServiceError(f"Redis URL {url!r} is not valid: {exc}") from None


@dataclass(slots=True)
class LatestPrice:
    """What `GET price:<exchange>:<symbol>` returns.

    `price` is the last trade price; before the first trade it is the quote's last price, or
    the mid of bid and ask. `ts` is the exchange time of the newest update, in nanoseconds.
    """

    price: float
    ts: int
    bid: float | None = None
    ask: float | None = None

    def encode(self) -> bytes:
        fields: dict[str, Any] = {"price": self.price, "ts": self.ts}
        if self.bid is not None:
            fields["bid"] = self.bid
        if self.ask is not None:
            fields["ask"] = self.ask
        return orjson.dumps(fields)


def dead_letter_fields(
    *, exchange: str, reason: str, frame: str | bytes, recv_ts: int, record: bytes | None = None
) -> dict[bytes, bytes]:
    """An `md:dlq` entry: enough to see what was rejected, why, and to replay it by hand."""
    fields = {
        b"exchange": exchange.encode(),
        b"reason": reason.encode(),
        b"recv_ts": str(recv_ts).encode(),
        b"frame": frame.encode() if isinstance(frame, str) else frame,
    }
    if record is not None:
        fields[b"record"] = record
    return fields


def parse_id(entry_id: bytes | str) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def _format_id(parsed: tuple[int, int]) -> str:
    return f"{parsed[0]}-{parsed[1]}"


async def read_range(
    client: redis.asyncio.Redis,
    key: str,
    start: str | bytes = "-",
    end: str | bytes = "+",
    count: int | None = None,
) -> list[Entry]:
    """XRANGE with the reply typed as it is (redis-py annotates every reply as optional)."""
    return cast(list[Entry], await client.xrange(key, start, end, count=count) or [])


async def oldest_unacknowledged(client: redis.asyncio.Redis, key: str) -> tuple[int, int] | None:
    """The smallest entry id some consumer group still needs; None when no group exists.

    A group needs its pending entries (delivered, not acknowledged) and everything after its
    last delivered id; entries below both have been acknowledged.

    Read in two steps that others may run between: XINFO GROUPS, then XPENDING. Both only
    move forward (the group's last delivered id grows; a pending entry is acknowledged), so
    an entry delivered after XINFO is above the last delivered id it reported, and an entry
    still pending at XPENDING is at or above the minimum XPENDING reports. A group whose
    pending entries were all acknowledged in between (XPENDING's minimum is then null)
    needs nothing below its last delivered id.
    """
    groups = await client.xinfo_groups(key)
    oldest: tuple[int, int] | None = None
    for group in groups:
        last = parse_id(group["last-delivered-id"])
        needed = (last[0], last[1] + 1)  # a group created at 0 and never read: 0-1, everything
        if group["pending"]:
            summary = await client.xpending(key, group["name"])
            smallest = summary.get("min") if summary else None
            if smallest is not None:
                needed = min(needed, parse_id(smallest))
        oldest = needed if oldest is None else min(oldest, needed)
    return oldest


async def declare_groups(
    client: redis.asyncio.Redis, keys: Iterable[str], groups: Iterable[str]
) -> int:
    """Create each consumer group on each stream at id 0, the stream too if it is missing
    (XGROUP CREATE ... 0 MKSTREAM), in one round trip; an existing group is left as it is.

    Done before a stream's first entry is written, so that trimming (which keeps what a
    group has not acknowledged) never drops an entry no consumer has read. Returns the
    number of groups created.
    """
    pipe = client.pipeline(transaction=False)
    pairs = [(key, group) for key in keys for group in groups]
    for key, group in pairs:
        pipe.xgroup_create(key, group, id="0", mkstream=True)
    if not pairs:
        return 0
    replies = await pipe.execute(raise_on_error=False)
    created = 0
    for reply in replies:
        if isinstance(reply, Exception):
            if isinstance(reply, redis.ResponseError) and "BUSYGROUP" in str(reply):
                continue
            raise reply
        created += 1
    return created


async def trim_stream(client: redis.asyncio.Redis, key: str, maxlen: int) -> int:
    """Bound a stream to about `maxlen` entries without dropping an unacknowledged one.

    XTRIM MAXLEN ignores consumer groups (before Redis 8.2), so the cut is computed here: the
    id that keeps `maxlen` entries, lowered to the oldest entry a group still needs, applied
    with MINID (which never removes an id at or above the cut). Returns entries removed.
    """
    length = await client.xlen(key)
    overflow = length - maxlen
    if overflow <= 0:
        return 0
    entries = await read_range(client, key, count=min(overflow, TRIM_SCAN_LIMIT) + 1)
    if not entries:
        return 0
    cut = parse_id(entries[-1][0])
    needed = await oldest_unacknowledged(client, key)
    if needed is not None:
        cut = min(cut, needed)
    removed: int = await client.xtrim(key, minid=_format_id(cut), approximate=False)
    return removed
