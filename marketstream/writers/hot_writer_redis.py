"""The hot writer's Redis side: stream discovery, the consumer group, reads, claims and acks.

Every command here works on the group `hot-writer`; the writer's loop decides when to call
them. Replies are typed as Redis sends them (RESP2, as `redis_bus.connect_async` speaks).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

import redis.asyncio
from redis.exceptions import ResponseError
from redis.typing import KeyT, StreamIdT

from marketstream.schemas.codec import ENTRY_FIELD
from marketstream.schemas.columns import SPEC_BY_TABLE
from marketstream.schemas.records import Record
from marketstream.tiers.redis_bus import (
    DLQ_STREAM,
    HOT_WRITER_GROUP,
    dead_letter_fields,
    read_range,
)

STREAM_PATTERN: Final = "md:*"
SCAN_COUNT: Final = 1000
LAG_SCAN_LIMIT: Final = 100_000  # entries counted when Redis cannot tell a group's lag

RawEntry = tuple[bytes, dict[bytes, bytes] | None]


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """One entry of a `md:<table>:<exchange>` stream as XREADGROUP/XAUTOCLAIM returned it;
    `fields` is empty when the entry was deleted after it was delivered."""

    stream: str
    id: bytes
    fields: dict[bytes, bytes]

    @property
    def exchange(self) -> str:
        return self.stream.split(":", 2)[-1]

    @property
    def added_ns(self) -> int:
        """When the entry entered Redis (its id's milliseconds), in nanoseconds."""
        return int(self.id.partition(b"-")[0]) * 1_000_000


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An entry the writer cannot store, bound for `md:dlq` with why; `record` when it
    decoded (QuestDB or the ILP encoder refused it)."""

    entry: StreamEntry
    cause: str  # undecodable | unencodable | rejected
    reason: str
    record: Record | None = None


def is_record_stream(key: str) -> bool:
    """`md:<table>:<exchange>` for a known table; `md:dlq` and strangers are not ours."""
    parts = key.split(":")
    return len(parts) == 3 and parts[0] == "md" and parts[1] in SPEC_BY_TABLE and bool(parts[2])


async def discover_streams(client: redis.asyncio.Redis) -> set[str]:
    """Every record stream that exists now (SCAN, so Redis is never blocked on a large DB)."""
    found: set[str] = set()
    async for key in client.scan_iter(match=STREAM_PATTERN, count=SCAN_COUNT, _type="stream"):
        name = key.decode() if isinstance(key, bytes) else str(key)
        if name != DLQ_STREAM and is_record_stream(name):
            found.add(name)
    return found


async def ensure_group(client: redis.asyncio.Redis, key: str) -> bool:
    """Create the group at the stream's start (a new group reads everything); True if new."""
    try:
        await client.xgroup_create(key, HOT_WRITER_GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
        return False
    return True


def _entries(key: str, raw: Iterable[RawEntry]) -> list[StreamEntry]:
    return [StreamEntry(key, entry_id, fields or {}) for entry_id, fields in raw]


async def read_group(
    client: redis.asyncio.Redis,
    consumer: str,
    cursors: Mapping[str, str | bytes],
    *,
    count: int,
    block_ms: int | None,
) -> dict[str, list[StreamEntry]]:
    """XREADGROUP: cursor `>` reads new entries, an id re-reads this consumer's own pending
    entries after it. COUNT applies per stream. A history read answers every stream asked,
    an empty list meaning "nothing more pending"."""
    streams: dict[KeyT, StreamIdT] = {key: cursor for key, cursor in cursors.items()}
    reply = await client.xreadgroup(
        HOT_WRITER_GROUP, consumer, streams, count=count, block=block_ms
    )
    result: dict[str, list[StreamEntry]] = {}
    for key, raw in cast(list[tuple[bytes, list[RawEntry]]], reply or []):
        name = key.decode()
        result[name] = _entries(name, raw)
    return result


async def claim_idle(
    client: redis.asyncio.Redis,
    key: str,
    consumer: str,
    *,
    min_idle_ms: int,
    start: bytes,
    count: int,
) -> tuple[bytes, list[StreamEntry]]:
    """XAUTOCLAIM: take over entries pending longer than min_idle_ms (their writer died).

    Returns the cursor for the next call (`0-0`: the scan is complete) and the entries now
    ours. Entries deleted from the stream meanwhile are dropped from the group by Redis.
    """
    reply: list[Any] = await client.xautoclaim(
        key, HOT_WRITER_GROUP, consumer, min_idle_ms, start_id=start, count=count
    )
    cursor = cast(bytes, reply[0])
    return cursor, _entries(key, cast(list[RawEntry], reply[1]))


async def acknowledge(client: redis.asyncio.Redis, entries: Sequence[StreamEntry]) -> None:
    """XACK the entries, one command per stream, in one round trip."""
    by_stream: dict[str, list[bytes]] = {}
    for entry in entries:
        by_stream.setdefault(entry.stream, []).append(entry.id)
    if not by_stream:
        return
    pipe = client.pipeline(transaction=False)
    for key, ids in by_stream.items():
        pipe.xack(key, HOT_WRITER_GROUP, *ids)
    await pipe.execute()


def dead_letter_entry(letter: DeadLetter) -> dict[bytes, bytes]:
    """The `md:dlq` entry of the README, plus where it came from (`stream`, `id`).

    `frame` is what the stream held; `record` repeats it when it was a record. `recv_ts` is
    the record's own where it has one, else when the entry entered Redis.
    """
    entry = letter.entry
    data = entry.fields.get(ENTRY_FIELD)
    recv_ts = getattr(letter.record, "recv_ts", None)
    fields = dead_letter_fields(
        exchange=letter.record.exchange if letter.record is not None else entry.exchange,
        reason=letter.reason,
        frame=data if data is not None else repr(entry.fields).encode(),
        recv_ts=recv_ts if isinstance(recv_ts, int) else entry.added_ns,
        record=data if letter.record is not None else None,
    )
    fields[b"stream"] = entry.stream.encode()
    fields[b"id"] = entry.id
    return fields


async def send_dead_letters(
    client: redis.asyncio.Redis, letters: Sequence[dict[bytes, bytes]], maxlen: int
) -> None:
    """XADD to md:dlq in one round trip; raises if any of them failed (nothing is acked then)."""
    pipe = client.pipeline(transaction=False)
    for fields in letters:
        pipe.xadd(DLQ_STREAM, fields, maxlen=maxlen, approximate=True)  # type: ignore[arg-type]
    await pipe.execute()


@dataclass(frozen=True, slots=True)
class GroupState:
    """The group on one stream: entries not yet delivered (lag) and delivered, not acked."""

    lag: int
    pending: int


async def group_states(
    client: redis.asyncio.Redis, keys: Sequence[str]
) -> dict[str, GroupState | None]:
    """XINFO GROUPS for each stream; None where the stream has no hot-writer group (yet).

    Redis reports the lag as null when deletions make it unknowable; it is counted then.
    """
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.xinfo_groups(key)
    replies = await pipe.execute(raise_on_error=False)
    states: dict[str, GroupState | None] = {}
    for key, reply in zip(keys, replies, strict=True):
        if isinstance(reply, ResponseError):  # the stream is gone
            states[key] = None
            continue
        if isinstance(reply, Exception):
            raise reply
        group = next((g for g in reply if _text(g["name"]) == HOT_WRITER_GROUP), None)
        if group is None:
            states[key] = None
            continue
        lag = group.get("lag")
        if lag is None:
            after = b"(" + _bytes(group["last-delivered-id"])
            lag = len(await read_range(client, key, after, "+", count=LAG_SCAN_LIMIT))
        states[key] = GroupState(lag=int(lag), pending=int(group["pending"]))
    return states


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()
