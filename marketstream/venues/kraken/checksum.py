"""Kraken's book checksum: a CRC32 over the exact text of the top ten levels per side.

Kraken numbers nothing, so this is the integrity check of its book; the book keeper verifies
it after every update that carries one.
"""

from __future__ import annotations

import zlib
from functools import lru_cache
from typing import Final

from marketstream.venues.base.mapper import LevelText

CHECKSUM_DEPTH: Final = 10  # levels per side Kraken's checksum covers, whatever the depth


def checksum(bids: list[LevelText], asks: list[LevelText]) -> int:
    """Kraken's CRC32 over the top levels, as its book checksum guides (v1 and v2) define it.

    Asks low to high, then bids high to low; each level adds its price then its size, both
    with the decimal point and the leading zeros removed ("0.00100000" -> "100000"). The
    keeper passes the best `CHECKSUM_DEPTH` levels of each side, best first.
    """
    parts = [_level_digits(price, size) for price, size in asks]
    parts.extend(_level_digits(price, size) for price, size in bids)
    return zlib.crc32("".join(parts).encode())


@lru_cache(maxsize=65_536)
def _level_digits(price: str, size: str) -> str:
    """Cached: the top levels mostly stay put between updates, and this runs on every one."""
    return price.replace(".", "").lstrip("0") + size.replace(".", "").lstrip("0")
