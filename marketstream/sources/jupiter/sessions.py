"""Generated Price API v3 answers in the documented shape (see `base/sessions.py` for why).

Every field of the v3 schema is present (`createdAt`, `liquidity`, `usdPrice`, `blockId`,
`decimals`, `priceChange24h`); `blockId` follows the tick's wall time at ~2.5 blocks a
second, a block or two behind for some tokens, as an aggregator's per-token update is.
"""

from __future__ import annotations

import zlib
from collections.abc import Collection, Sequence
from typing import Any, Final

import orjson

from marketstream.sources.base.sessions import change_24h, token_facts, walk_price

BLOCKS_PER_S: Final = 2.5
_GENESIS_S: Final = 1_584_316_800  # 2020-03-16, where the block count starts (illustrative)
CREATED_AT: Final = "2024-06-05T08:55:25.527Z"  # the documented example's creation time


def block_at(tick_ns: int) -> int:
    """The chain block at a time: ~2.5 a second."""
    return max(0, int((tick_ns / 1e9 - _GENESIS_S) * BLOCKS_PER_S))


def _lag(mint: str, tick_index: int, seed: int) -> int:
    """0-2 blocks: the token's price was computed a little before the newest block."""
    return zlib.crc32(f"{seed}/{mint}/{tick_index}".encode()) % 3


def answer_body(
    ids: Sequence[str],
    tick_index: int,
    tick_ns: int,
    seed: int = 0,
    *,
    unpriced: Collection[str] = (),
) -> bytes:
    """The answer to `GET /price/v3?ids=...` for `ids` at a tick; ids in `unpriced` are left
    out, as Jupiter leaves out tokens it has no reliable price for."""
    block = block_at(tick_ns)
    answer: dict[str, Any] = {}
    for mint in ids:
        if mint in unpriced:
            continue
        facts = token_facts(mint, seed)
        price = walk_price(mint, tick_index, seed)
        answer[mint] = {
            "createdAt": CREATED_AT,
            "liquidity": round(facts.liquidity * price / facts.price, 2),
            "usdPrice": price,
            "blockId": max(0, block - _lag(mint, tick_index, seed)),
            "decimals": facts.decimals,
            "priceChange24h": change_24h(mint, tick_index, seed),
        }
    return orjson.dumps(answer)
