"""Birdeye `/defi/multi_price` answers -> `Price` records (pure).

The answer (https://docs.birdeye.so/docs/multi_price-1) is `{"success": true, "data":
{"<mint>": {"value", "updateUnixTime", "priceChange24h", "liquidity", ...} | null}}`.
`value` is the USD price; `updateUnixTime` (seconds) the time Birdeye's price is of, kept as
`source_ts` (so the age of a price at fetch is `recv_ts - source_ts`); `liquidity` comes only
with `include_liquidity=true`, which the request sets. An unknown token is `null` or left
out (as is a null `value`): reported as unpriced, not as an error. `success: false` or any
other shape is a `SourceAnswerError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from marketstream.schemas.records import Price
from marketstream.sources.base.answers import (
    NS_PER_S,
    load_object,
    number,
    optional_number,
    priced,
    show,
)
from marketstream.sources.base.source import Mapped, SourceAnswerError

NAME: Final = "birdeye"
_EXPECTED: Final = 'a JSON object {"success": true, "data": {<mint>: {...} | null}}'


def _data(body: bytes) -> dict[str, object]:
    answer = load_object(NAME, body, _EXPECTED)
    success = answer.get("success")
    if success is False:
        message = answer.get("message")
        raise SourceAnswerError(
            f"{NAME}: the answer says success false: "
            f"{message if isinstance(message, str) else show(message)}"[:200]
        )
    data = answer.get("data")
    if success is not True or type(data) is not dict:
        raise SourceAnswerError(
            f"{NAME}: expected {_EXPECTED}, got success {show(success)} and data of type "
            f"{type(data).__name__}"
        )
    return data


def _source_ts(mint: str, value: object) -> int | None:
    """`updateUnixTime` (seconds) as ns; whole seconds exactly, a fraction to the
    microsecond (all a float of today's seconds holds)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value * NS_PER_S
    seconds = optional_number(NAME, mint, "updateUnixTime", value)
    return None if seconds is None else round(seconds * 1_000_000) * 1_000


def map_answer(body: bytes, symbols_by_id: Mapping[str, str], tick_ns: int, recv_ns: int) -> Mapped:
    """The prices of the mints asked for (`symbols_by_id`), in that order; mints the answer
    holds but were not asked for are ignored. Prices <= 0 are kept: validation dead-letters
    them with its own reason."""
    data = _data(body)
    unpriced: list[str] = []
    prices = [
        Price(
            exchange=NAME,
            symbol=symbol,
            ts=tick_ns,
            recv_ts=recv_ns,
            price=number(NAME, mint, "value", raw),
            source_ts=_source_ts(mint, entry.get("updateUnixTime")),
            liquidity=optional_number(NAME, mint, "liquidity", entry.get("liquidity")),
            change_24h=optional_number(NAME, mint, "priceChange24h", entry.get("priceChange24h")),
        )
        for mint, symbol, entry, raw in priced(NAME, data, symbols_by_id, "value", unpriced)
    ]
    return Mapped(prices, tuple(unpriced))
