"""OKX's book checksum: a CRC32 over the text of the top 25 levels per side, interleaved."""

from __future__ import annotations

import zlib
from itertools import zip_longest
from typing import Final

from marketstream.venues.base.mapper import LevelText

CHECKSUM_DEPTH: Final = 25  # levels per side OKX's book checksum covers


def checksum(bids: list[LevelText], asks: list[LevelText]) -> int:
    """OKX's CRC32 of `bid1px:bid1sz:ask1px:ask1sz:bid2px:...` over the top 25 levels per side.

    The sides are interleaved level by level; where one side runs out, the other's remaining
    levels follow alone. OKX sends the value as a signed 32-bit integer, so it is returned so.
    """
    parts: list[str] = []
    for bid, ask in zip_longest(bids[:CHECKSUM_DEPTH], asks[:CHECKSUM_DEPTH]):
        if bid is not None:
            parts += bid
        if ask is not None:
            parts += ask
    value = zlib.crc32(":".join(parts).encode())
    return value - 0x1_0000_0000 if value & 0x8000_0000 else value
