"""Dead letters (`md:dlq`) in a time range, counted per exchange, reason and instrument.

An entry's time is its stream id: the moment it was added to Redis, in milliseconds, a few
ms after the frame was received. Entries are read in pages, so a full stream (bounded by
`streams.dlq_maxlen`) is counted without being held in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final, cast

import orjson
import redis

from marketstream.errors import ServiceError
from marketstream.tiers.redis_bus import DLQ_STREAM, Entry, SyncRedis

NS_PER_MS: Final = 1_000_000
PAGE: Final = 1000
UNKNOWN: Final = "?"


@dataclass(slots=True)
class ExchangeDeadLetters:
    total: int = 0
    reasons: dict[str, int] = field(default_factory=dict)  # reason kind -> entries


@dataclass(slots=True)
class DeadLetterCounts:
    """Entries per exchange (with their reason kinds) and per instrument where known."""

    exchanges: dict[str, ExchangeDeadLetters] = field(default_factory=dict)
    instruments: dict[tuple[str, str], int] = field(default_factory=dict)

    def add(self, fields: dict[bytes, bytes]) -> None:
        exchange = _text(fields.get(b"exchange")) or UNKNOWN
        per_exchange = self.exchanges.setdefault(exchange, ExchangeDeadLetters())
        per_exchange.total += 1
        kind = reason_kind(_text(fields.get(b"reason")) or "", exchange)
        per_exchange.reasons[kind] = per_exchange.reasons.get(kind, 0) + 1
        symbol = _record_symbol(fields.get(b"record"))
        if symbol is not None:
            key = (exchange, symbol)
            self.instruments[key] = self.instruments.get(key, 0) + 1


def reason_kind(reason: str, exchange: str) -> str:
    """The first word of a reason after the mapper's `<exchange>: ` prefix.

    Reasons name the field or the check first (`price -1.0 is not a positive...`, `symbol
    'X' is not configured...`, `unknown event type...`, `QuestDB rejected the row: ...`), so
    the first word groups them without the values that make each reason unique.
    """
    text = reason.strip().removeprefix(f"{exchange}: ")
    word = text.split(maxsplit=1)[0] if text else ""
    return word.rstrip(":,") or UNKNOWN


def count_dead_letters(
    entries: Iterable[dict[bytes, bytes]], exchange: str | None = None
) -> DeadLetterCounts:
    """Count entries, only those of `exchange` when given."""
    counts = DeadLetterCounts()
    wanted = None if exchange is None else exchange.encode()
    for fields in entries:
        if wanted is None or fields.get(b"exchange") == wanted:
            counts.add(fields)
    return counts


def id_bounds(since_ns: int, until_ns: int) -> tuple[str, str]:
    """XRANGE bounds for entries added in [since, until): whole milliseconds inside it."""
    first_ms = -(-since_ns // NS_PER_MS)
    last_ms = -(-until_ns // NS_PER_MS) - 1
    return f"{first_ms}-0", str(last_ms)  # a bare end id includes every entry of its ms


def read_dead_letters(
    client: SyncRedis, since_ns: int, until_ns: int, *, key: str = DLQ_STREAM
) -> Iterator[dict[bytes, bytes]]:
    """The fields of every entry added in [since, until), oldest first, read in pages."""
    start, end = id_bounds(since_ns, until_ns)
    while True:
        try:
            page = cast(list[Entry], client.xrange(key, start, end, count=PAGE) or [])
        except redis.RedisError as exc:
            raise ServiceError(f"Redis: reading {key} failed: {exc}") from None
        for _, fields in page:
            yield fields
        if len(page) < PAGE:
            return
        start = "(" + page[-1][0].decode()


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode(errors="replace")


def _record_symbol(record: bytes | None) -> str | None:
    if record is None:
        return None
    try:
        value = orjson.loads(record)
    except orjson.JSONDecodeError:
        return None
    symbol = value.get("symbol") if isinstance(value, dict) else None
    return symbol if isinstance(symbol, str) else None
