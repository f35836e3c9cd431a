"""Which writer owns which stream: `--shard I/N` gives writer I of N a fixed share of them.

Entries of one stream handed to two writers can reach QuestDB out of order, and where later
entries overwrite earlier ones under the same dedup key (a candle re-sent while its bar forms,
a funding or open-interest update) QuestDB keeps the one written last, an older value. So each
stream has one owner: the writer whose index its (exchange, table) hashes to. The owner reads
and claims its streams alone; a restart under the same `--consumer` name resumes its own
pending entries first, in stream order. Both key versions of one (exchange, table) land on the
same writer, so a migration keeps them together.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Final

from marketstream.tiers.redis_bus import parse_stream_key

SHARD_PATTERN: Final = re.compile(r"^(\d+)/(\d+)$")


@dataclass(frozen=True, slots=True)
class StreamShard:
    """Writer `index` (from 1) of `count`; 1/1 owns every stream."""

    index: int = 1
    count: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.count:
            raise ValueError(f"shard {self.index}/{self.count}: expected I/N with 1 <= I <= N")

    @classmethod
    def parse(cls, text: str) -> StreamShard:
        """`I/N`, e.g. `2/3`; a ValueError naming the text otherwise."""
        found = SHARD_PATTERN.match(text.strip())
        if found is None:
            raise ValueError(f"shard {text!r}: expected I/N, e.g. 1/2")
        return cls(int(found[1]), int(found[2]))

    def owns(self, stream: str) -> bool:
        if self.count == 1:
            return True
        parsed = parse_stream_key(stream)
        identity = f"{parsed[1]}:{parsed[0]}" if parsed else stream
        return zlib.crc32(identity.encode()) % self.count == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"
