"""Jupiter Price API v3 answers -> `Price` records (pure).

The answer is a JSON object keyed by mint, no wrapper and no server time
(https://dev.jup.ag/docs/price-api/v3): `{"<mint>": {"usdPrice", "blockId" (nullable),
"liquidity", "decimals", "priceChange24h" (nullable), "createdAt"}, ...}`. A token without a
reliable price is left out, or (older answers) has `null`: it is reported as unpriced, not as
an error. `blockId` is the Solana block the price was computed at, kept as `block`; there is
no price time, so `source_ts` stays empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from marketstream.schemas.records import Price
from marketstream.sources.base.answers import (
    load_object,
    number,
    optional_int,
    optional_number,
    priced,
)
from marketstream.sources.base.source import Mapped

NAME: Final = "jupiter"
_EXPECTED: Final = "a JSON object keyed by mint"


def map_answer(body: bytes, symbols_by_id: Mapping[str, str], tick_ns: int, recv_ns: int) -> Mapped:
    """The prices of the mints asked for (`symbols_by_id`), in that order; mints the answer
    holds but were not asked for are ignored. Prices <= 0 are kept: validation dead-letters
    them with its own reason."""
    answer = load_object(NAME, body, _EXPECTED)
    unpriced: list[str] = []
    prices = [
        Price(
            exchange=NAME,
            symbol=symbol,
            ts=tick_ns,
            recv_ts=recv_ns,
            price=number(NAME, mint, "usdPrice", raw),
            block=optional_int(NAME, mint, "blockId", entry.get("blockId")),
            liquidity=optional_number(NAME, mint, "liquidity", entry.get("liquidity")),
            change_24h=optional_number(NAME, mint, "priceChange24h", entry.get("priceChange24h")),
        )
        for mint, symbol, entry, raw in priced(NAME, answer, symbols_by_id, "usdPrice", unpriced)
    ]
    return Mapped(prices, tuple(unpriced))
