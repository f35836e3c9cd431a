"""Bybit's hot push payload (`publicTrade`) as a msgspec Struct, decoded in one C pass.

Only the fields the mapper reads are declared, in the order it reads them. Decoding is lax
(`strict=False`): Bybit's decimal strings become floats in C. The side, the time (an integer,
never a string) and the id stay as sent (`str`, `Any`): the mapper checks them itself, with
the messages it always gave. Other topics are read as JSON.
"""

from __future__ import annotations

from typing import Any

import msgspec


class Push(msgspec.Struct):
    """A topic push; `data` is decoded once the topic says what it holds."""

    topic: str
    data: msgspec.Raw


class Trade(msgspec.Struct):
    S: str  # the taker's side, "Buy" or "Sell"
    p: float
    v: float
    T: Any  # milliseconds, an integer
    i: Any  # the id, published as text
