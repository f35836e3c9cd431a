"""Redis: the stream bus and the latest-price cache. This module owns the public contract.

Keys (Redis contract version 2, documented in the README, read with plain XREAD and GET):
- `md:{<exchange>}:<table>`: one stream per record type and exchange; entry field `d` holds
  the record as JSON (`marketstream.schemas.codec`). The exchange is a hash tag: on a Redis
  Cluster every stream of an exchange lives in one slot, so one XREADGROUP reads them all.
- `md:dlq`: rejected input, with the raw frame, the exchange and the reason (one key).
- `price:{<exchange>}:<symbol>`: the latest price as JSON.

Version 1 named them `md:<table>:<exchange>` and `price:<exchange>:<symbol>`; the hot writer
still drains version-1 streams (`parse_stream_key` reads both), and the publisher can keep
writing version-1 price keys for a transition (`streams.legacy_price_keys`).

`connect_bus`/`connect_bus_async` choose a single server or a cluster by the URL's scheme:
`redis+cluster://host:port` (or `rediss+cluster://`) starts from that node and discovers the rest.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, TypeAlias, cast

import orjson
import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from redis.crc import key_slot

from marketstream.config import redact_url
from marketstream.errors import ServiceError
from marketstream.tiers.redis_packing import pack_with_hiredis

DLQ_STREAM: Final = "md:dlq"
HOT_WRITER_GROUP: Final = "hot-writer"
TRIM_SCAN_LIMIT: Final = 100_000  # entries inspected per trim: trims run often, overflow is small


Entry = tuple[bytes, dict[bytes, bytes]]  # (entry id, fields) as XRANGE returns them


CONTRACT_VERSION: Final = 2  # the key names; the entry layout (field `d`) is unchanged
CLUSTER_SCHEMES: Final = ("redis+cluster://", "rediss+cluster://")

# A single server or a cluster: the commands used here behave alike on both, except that a
# command over several keys must stay within one hash slot on a cluster.
AsyncRedis: TypeAlias = redis.asyncio.Redis | redis.asyncio.RedisCluster
SyncRedis: TypeAlias = redis.Redis | redis.RedisCluster


def stream_key(table: str, exchange: str) -> str:
    """`md:{binance}:trades`: the exchange is the hash tag (one slot per exchange)."""
    return f"md:{{{exchange}}}:{table}"


def legacy_stream_key(table: str, exchange: str) -> str:
    """The version-1 name, `md:trades:binance`, still drained by the hot writer."""
    return f"md:{table}:{exchange}"


def price_key(exchange: str, symbol: str) -> str:
    return f"price:{{{exchange}}}:{symbol}"


def legacy_price_key(exchange: str, symbol: str) -> str:
    """The version-1 name, written too while `streams.legacy_price_keys` is on."""
    return f"price:{exchange}:{symbol}"


def stream_pattern(exchange: str | None = None) -> str:
    """SCAN pattern of version-2 streams (`{` is not special in Redis patterns)."""
    return f"md:{{{exchange}}}:*" if exchange else "md:{*}:*"


def parse_stream_key(key: str) -> tuple[str, str] | None:
    """(table, exchange) of a stream name of either version; None for anything else
    (`md:dlq` included). The table is not checked against the known ones here."""
    parts = key.split(":")
    if len(parts) != 3 or parts[0] != "md":
        return None
    middle, last = parts[1], parts[2]
    if middle.startswith("{") and middle.endswith("}"):
        exchange = middle[1:-1]
        return (last, exchange) if exchange and last else None
    if "{" in middle or "}" in middle or "{" in last or "}" in last:
        return None
    return (middle, last) if middle and last else None


def is_cluster_url(url: str) -> bool:
    return url.startswith(CLUSTER_SCHEMES)


def _plain_url(url: str) -> str:
    return url.replace("+cluster://", "://", 1)


def connect(url: str, *, timeout_s: float = 5.0) -> redis.Redis:
    """A client for a redis://, rediss:// or unix:// URL; connects lazily on first command.

    Socket timeouts keep a dead server from hanging a command forever.
    """
    try:
        return redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    except ValueError as exc:
        raise ServiceError(f"Redis URL {redact_url(url)!r} is not valid: {exc}") from None


def connect_async(url: str, *, timeout_s: float = 5.0) -> redis.asyncio.Redis:
    """The asyncio client for one server (hiredis packs commands and parses replies)."""
    try:
        client = redis.asyncio.Redis.from_url(
            url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s
        )
    except ValueError as exc:
        raise ServiceError(f"Redis URL {redact_url(url)!r} is not valid: {exc}") from None
    return pack_with_hiredis(client)


def connect_bus(url: str, *, timeout_s: float = 5.0) -> SyncRedis:
    """`connect`, or a cluster client for a redis+cluster:// URL (it reads the slot map from
    that node on first command and follows the cluster from there)."""
    if not is_cluster_url(url):
        return connect(url, timeout_s=timeout_s)
    try:
        return redis.cluster.RedisCluster.from_url(
            _plain_url(url), socket_connect_timeout=timeout_s, socket_timeout=timeout_s
        )
    except (ValueError, redis.RedisError) as exc:
        raise ServiceError(f"Redis URL {redact_url(url)!r} is not valid: {exc}") from None


def connect_bus_async(url: str, *, timeout_s: float = 5.0) -> AsyncRedis:
    """The asyncio client the ingest and hot-writer loops use: `connect_async`, or a cluster
    client for a redis+cluster:// URL."""
    if not is_cluster_url(url):
        return connect_async(url, timeout_s=timeout_s)
    try:
        cluster = redis.asyncio.cluster.RedisCluster.from_url(
            _plain_url(url), socket_connect_timeout=timeout_s, socket_timeout=timeout_s
        )
    except (ValueError, redis.RedisError) as exc:
        raise ServiceError(f"Redis URL {redact_url(url)!r} is not valid: {exc}") from None
    return pack_with_hiredis(cluster)


def is_cluster(client: AsyncRedis | SyncRedis) -> bool:
    return isinstance(client, redis.asyncio.RedisCluster | redis.RedisCluster)


def slot_of(key: str) -> int:
    """The cluster hash slot of a key (its hash tag's, when it has one)."""
    return key_slot(key.encode())


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
    client: AsyncRedis,
    key: str,
    start: str | bytes = "-",
    end: str | bytes = "+",
    count: int | None = None,
) -> list[Entry]:
    """XRANGE with the reply typed as it is (redis-py annotates every reply as optional)."""
    return cast(list[Entry], await client.xrange(key, start, end, count=count) or [])


async def oldest_unacknowledged(client: AsyncRedis, key: str) -> tuple[int, int] | None:
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


async def declare_groups(client: AsyncRedis, keys: Iterable[str], groups: Iterable[str]) -> int:
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


async def trim_stream(client: AsyncRedis, key: str, maxlen: int) -> int:
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
