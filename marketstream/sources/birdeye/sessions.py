"""Generated multi_price answers in the documented shape (see `base/sessions.py` for why).

Every field of Birdeye's Solana example is present (`isScaledUiToken`, `value`,
`updateUnixTime`, `updateHumanTime`, `priceInNative`, `priceChange24h`, `liquidity`).
`updateUnixTime` lags the tick by 0-30 s: each token is updated on its own period (5-30 s,
seeded), so its time steps forward in a sawtooth, never back.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from marketstream.sources.base.sessions import SOL_MINT, change_24h, token_facts, walk_price

MAX_LAG_S: Final = 30


def _period_and_phase(mint: str, seed: int) -> tuple[int, int]:
    rng = random.Random(f"update/{seed}/{mint}")  # noqa: S311 - made-up times, no secret
    period = rng.randint(5, MAX_LAG_S + 1)
    return period, rng.randrange(period)


def update_time_s(mint: str, tick_ns: int, seed: int = 0) -> int:
    """When Birdeye last updated the token's price, at a tick: 0-30 s before it."""
    tick_s = tick_ns // 1_000_000_000
    period, phase = _period_and_phase(mint, seed)
    return tick_s - (tick_s + phase) % period


def answer_body(
    ids: Sequence[str],
    tick_index: int,
    tick_ns: int,
    seed: int = 0,
    *,
    unpriced: Collection[str] = (),
) -> bytes:
    """The answer to `GET /defi/multi_price?list_address=...` for `ids` at a tick; ids in
    `unpriced` are `null`, as Birdeye answers for a token it does not know."""
    sol = walk_price(SOL_MINT, tick_index, seed)
    data: dict[str, Any] = {}
    for mint in ids:
        if mint in unpriced:
            data[mint] = None
            continue
        facts = token_facts(mint, seed)
        price = walk_price(mint, tick_index, seed)
        updated = update_time_s(mint, tick_ns, seed)
        data[mint] = {
            "isScaledUiToken": False,
            "value": price,
            "updateUnixTime": updated,
            "updateHumanTime": datetime.fromtimestamp(updated, UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "priceInNative": price / sol,
            "priceChange24h": change_24h(mint, tick_index, seed),
            "liquidity": round(facts.liquidity * price / facts.price, 2),
        }
    return orjson.dumps({"success": True, "data": data})
