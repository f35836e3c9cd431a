"""The hot writer's Redis side: stream discovery, the consumer group, reads, claims and acks.

Every command here works on the writers' group (`hot.group`, `hot-writer` by default); the
writer's loop decides when to call them. Replies are typed as Redis sends them (RESP2, as
`redis_bus.connect_bus_async` speaks).

The client may be a single server or a Redis Cluster. XREADGROUP over several streams must stay
within one hash slot on a cluster: `read_group` sends one per slot (one per exchange, whose
streams share the hash tag; one per version-1 stream still being drained), concurrently.
Pipelines split by node there (redis-py's cluster pipeline), and every other command names
one key.
XREADGROUP's replies are left as hiredis parsed them (`raw_stream_reads`), since building a
dict per entry cost more than the rest of reading.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

import msgspec
from redis.exceptions import ResponseError
from redis.typing import KeyT, StreamIdT

from marketstream.schemas.codec import ENTRY_FIELD
from marketstream.schemas.columns import SPEC_BY_TABLE
from marketstream.schemas.entry_structs import EntryRecord
from marketstream.tiers.redis_bus import (
    DLQ_STREAM,
    AsyncRedis,
    dead_letter_fields,
    is_cluster,
    parse_stream_key,
    read_range,
    slot_of,
    stream_pattern,
)
from marketstream.writers.stream_shard import StreamShard

ALL_STREAMS: Final = StreamShard()
ALL_PATTERN: Final = "md:*"  # both versions: version-1 `md:<table>:<exchange>` is drained too
SCAN_COUNT: Final = 1000
LAG_SCAN_LIMIT: Final = 100_000  # entries counted when Redis cannot tell a group's lag

RawEntry = tuple[bytes, dict[bytes, bytes] | None]
RawReadEntry = tuple[bytes, list[bytes] | None]  # XREADGROUP as Redis sends it: flat fields


class StreamEntry(msgspec.Struct, frozen=True, gc=False):
    """One entry of a `md:{<exchange>}:<table>` stream (or a version-1 `md:<table>:<exchange>`)
    as XREADGROUP/XAUTOCLAIM returned it; `fields` is empty when the entry was deleted after
    it was delivered. A msgspec Struct: a batch builds thousands, and a Struct is the cheapest
    immutable object to build (its dict of bytes holds no cycles, hence no GC tracking)."""

    stream: str
    id: bytes
    fields: dict[bytes, bytes]

    @property
    def exchange(self) -> str:
        parsed = parse_stream_key(self.stream)
        return parsed[1] if parsed else self.stream

    @property
    def added_ns(self) -> int:
        """When the entry entered Redis (its id's milliseconds), in nanoseconds."""
        return int(self.id.partition(b"-")[0]) * 1_000_000


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An entry the writer cannot store, bound for `md:dlq` with why; `record` when it
    decoded (QuestDB or the ILP encoder refused it)."""

    entry: StreamEntry
    cause: str  # undecodable | unencodable | rejected | undeliverable
    reason: str
    record: EntryRecord | None = None


def is_record_stream(key: str, exchanges: Iterable[str] = ()) -> bool:
    """`md:{<exchange>}:<table>` or version-1 `md:<table>:<exchange>` for a known table, and
    an exchange among `exchanges` (empty: any); `md:dlq` and strangers are not ours."""
    parsed = parse_stream_key(key)
    if parsed is None or parsed[0] not in SPEC_BY_TABLE:
        return False
    wanted = tuple(exchanges)
    return not wanted or parsed[1] in wanted


async def discover_streams(
    client: AsyncRedis, exchanges: Sequence[str] = (), shard: StreamShard = ALL_STREAMS
) -> set[str]:
    """Every record stream of `exchanges` (empty: all) that exists now and `shard` owns, both
    key versions (SCAN, so Redis is never blocked on a large DB; on a cluster every master is
    scanned)."""
    patterns = [ALL_PATTERN]
    if exchanges:
        patterns = [p for ex in exchanges for p in (stream_pattern(ex), f"md:*:{ex}")]
    found: set[str] = set()
    for pattern in patterns:
        async for key in client.scan_iter(match=pattern, count=SCAN_COUNT, _type="stream"):
            name = key.decode() if isinstance(key, bytes) else str(key)
            if is_record_stream(name, exchanges) and shard.owns(name):
                found.add(name)
    return found


async def ensure_group(client: AsyncRedis, key: str, group: str) -> bool:
    """Create the group at the stream's start (a new group reads everything); True if new."""
    try:
        await client.xgroup_create(key, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
        return False
    return True


def _entries(key: str, raw: Iterable[RawEntry]) -> list[StreamEntry]:
    return [StreamEntry(key, entry_id, fields or {}) for entry_id, fields in raw]


def raw_stream_reads(client: AsyncRedis) -> AsyncRedis:
    """Have the client hand XREADGROUP replies over as Redis sent them (hiredis-parsed
    lists), without redis-py building a dict per entry: `read_group` reads them directly."""
    client.set_response_callback("XREADGROUP", _as_sent)
    return client


def _as_sent(response: Any, **_options: Any) -> Any:
    return response


def _read_entries(key: str, raw: Iterable[RawReadEntry]) -> list[StreamEntry]:
    """Entries from XREADGROUP's flat field lists; the usual entry has the one field `d`."""
    entries = []
    for entry_id, flat in raw:
        if flat is None:
            fields = {}
        elif len(flat) == 2:
            fields = {flat[0]: flat[1]}
        else:
            fields = dict(zip(flat[::2], flat[1::2], strict=True))
        entries.append(StreamEntry(key, entry_id, fields))
    return entries


async def read_group(
    client: AsyncRedis,
    group: str,
    consumer: str,
    cursors: Mapping[str, str | bytes],
    *,
    count: int,
    block_ms: int | None,
) -> dict[str, list[StreamEntry]]:
    """XREADGROUP: cursor `>` reads new entries, an id re-reads this consumer's own pending
    entries after it. COUNT applies per stream. A history read answers every stream asked,
    an empty list meaning "nothing more pending". The client must read raw
    (`raw_stream_reads`).

    On a cluster, one XREADGROUP per hash slot, sent concurrently: first without blocking,
    and only if none had anything, again blocking `block_ms` (a blocked read of an idle
    exchange must not hold up the reads of a busy one)."""
    if not is_cluster(client):
        return await _read_group(client, group, consumer, cursors, count=count, block_ms=block_ms)
    by_slot: dict[int, dict[str, str | bytes]] = {}
    for key, cursor in cursors.items():
        by_slot.setdefault(slot_of(key), {})[key] = cursor
    result: dict[str, list[StreamEntry]] = {}
    for block in (None, block_ms) if block_ms is not None else (None,):
        replies = await asyncio.gather(
            *(
                _read_group(client, group, consumer, part, count=count, block_ms=block)
                for part in by_slot.values()
            )
        )
        for reply in replies:
            result.update(reply)
        if any(result.values()):
            break
    return result


async def _read_group(
    client: AsyncRedis,
    group: str,
    consumer: str,
    cursors: Mapping[str, str | bytes],
    *,
    count: int,
    block_ms: int | None,
) -> dict[str, list[StreamEntry]]:
    streams: dict[KeyT, StreamIdT] = {key: cursor for key, cursor in cursors.items()}
    reply: Any = await client.xreadgroup(group, consumer, streams, count=count, block=block_ms)
    # A map per stream over RESP3 (redis-py's default), a list of pairs over RESP2.
    streams_read = reply.items() if isinstance(reply, dict) else reply or []
    result: dict[str, list[StreamEntry]] = {}
    for key, raw in cast(Iterable[tuple[bytes, list[RawReadEntry]]], streams_read):
        name = key.decode()
        result[name] = _read_entries(name, raw)
    return result


async def claim_idle(
    client: AsyncRedis,
    key: str,
    group: str,
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
        key, group, consumer, min_idle_ms, start_id=start, count=count
    )
    cursor = cast(bytes, reply[0])
    return cursor, _entries(key, cast(list[RawEntry], reply[1]))


async def acknowledge(client: AsyncRedis, group: str, entries: Sequence[StreamEntry]) -> None:
    """XACK the entries, one command per stream, in one round trip."""
    by_stream = _ids_by_stream(entries)
    if not by_stream:
        return
    pipe = client.pipeline(transaction=False)
    for key, ids in by_stream.items():
        pipe.xack(key, group, *ids)
    await pipe.execute()


async def delivery_counts(
    client: AsyncRedis,
    group: str,
    consumer: str,
    entries: Sequence[StreamEntry],
    *,
    others: int,
) -> dict[tuple[str, bytes], int]:
    """How many times each entry (pending for `consumer`) has been delivered (XPENDING).

    One range per stream, from its first to its last entry here; `others` bounds how many
    other pending entries of the consumer may lie in between (the batch in hand). Entries
    no longer pending are left out.
    """
    by_stream = _ids_by_stream(entries)
    if not by_stream:
        return {}
    pipe = client.pipeline(transaction=False)
    for key, ids in by_stream.items():
        pipe.xpending_range(
            key, group, min(ids, key=_id_order), max(ids, key=_id_order), len(ids) + others,
            consumername=consumer,
        )  # fmt: skip
    counts: dict[tuple[str, bytes], int] = {}
    for key, reply in zip(by_stream, await pipe.execute(), strict=True):
        wanted = set(by_stream[key])
        for item in reply:
            entry_id = _bytes(item["message_id"])
            if entry_id in wanted:
                counts[(key, entry_id)] = int(item["times_delivered"])
    return counts


async def redeliver(
    client: AsyncRedis, group: str, consumer: str, entries: Sequence[StreamEntry]
) -> None:
    """XCLAIM the entries to the consumer again: Redis counts one more delivery of each (the
    count survives a crash of the writer) and their idle time starts over."""
    by_stream = _ids_by_stream(entries)
    if not by_stream:
        return
    pipe = client.pipeline(transaction=False)
    for key, ids in by_stream.items():
        pipe.xclaim(key, group, consumer, 0, ids)  # type: ignore[arg-type]
    await pipe.execute()


def _ids_by_stream(entries: Sequence[StreamEntry]) -> dict[str, list[bytes]]:
    """Entry ids grouped by stream, in order: one command per stream."""
    by_stream: dict[str, list[bytes]] = {}
    for entry in entries:
        by_stream.setdefault(entry.stream, []).append(entry.id)
    return by_stream


def _id_order(entry_id: bytes) -> tuple[int, int]:
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq or 0)


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
    client: AsyncRedis, letters: Sequence[dict[bytes, bytes]], maxlen: int
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
    client: AsyncRedis, keys: Sequence[str], group_name: str
) -> dict[str, GroupState | None]:
    """XINFO GROUPS for each stream; None where the stream has not the group (yet).

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
        group = next((g for g in reply if _text(g["name"]) == group_name), None)
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


async def streams_drained(
    client: AsyncRedis, group: str, exchanges: Sequence[str] = (), shard: StreamShard = ALL_STREAMS
) -> bool:
    """True when every record stream of `exchanges` (empty: all) that `shard` owns has been
    delivered to `group` and acknowledged: each record is in QuestDB or in md:dlq. A stream
    the group does not know yet counts as drained only while it is empty."""
    keys = sorted(await discover_streams(client, exchanges, shard))
    states = await group_states(client, keys, group)
    for key in keys:
        state = states[key]
        if state is None:
            if await client.xlen(key):
                return False  # not discovered by a writer yet
        elif state.lag or state.pending:
            return False
    return True
