"""`/v1/stream` channels (`trades:<exchange>:BTC-USDT`, `quotes:*:*`) and resume ids: parsing and
checking, pure.

A channel names a record table (`trades`; the record type `trade` is accepted too), an exchange
or `*`, and a normalized symbol or `*`. The streams a subscription reads are the contract-v2
streams `md:{<exchange>}:<table>`; the symbol is filtered on the server, since one stream holds
every symbol of its exchange.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from marketstream.query.hot_queries import QueryInputError, check_exchange, check_symbol
from marketstream.schemas.columns import SPEC_BY_TABLE, SPEC_BY_TYPE
from marketstream.tiers.redis_bus import parse_stream_key, stream_key

WILDCARD: Final = "*"
# Tables a live stream carries (instruments are metadata: `GET /v1/...` serves them).
STREAM_TABLES: Final[tuple[str, ...]] = tuple(t for t in SPEC_BY_TABLE if t != "instruments")
_ENTRY_ID_RE: Final = re.compile(r"^[0-9]{1,20}-[0-9]{1,20}$")
MAX_CHANNELS: Final = 256  # a subscription names a few; more is a mistake or an abuse


class ChannelError(QueryInputError):
    """A channel or resume id the client sent is not acceptable; the message names it."""


@dataclass(frozen=True, slots=True)
class Channel:
    """One `table:exchange:symbol`; `exchange`/`symbol` None for the `*` wildcard."""

    table: str
    exchange: str | None
    symbol: str | None

    @property
    def text(self) -> str:
        return f"{self.table}:{self.exchange or WILDCARD}:{self.symbol or WILDCARD}"

    def matches_stream(self, key: str) -> bool:
        """Whether the contract-v2 stream `key` carries this channel's records."""
        parsed = parse_stream_key(key)
        if parsed is None or not key.startswith("md:{"):
            return False
        table, exchange = parsed
        return table == self.table and self.exchange in (None, exchange)


def parse_channel(text: str) -> Channel:
    """`trades:<exchange>:BTC-USDT`, with `*` for any exchange or symbol. ChannelError names the
    channel and the part that is wrong."""
    if not isinstance(text, str):
        raise ChannelError(f"channel {text!r} is not a string: expected type:exchange:symbol")
    parts = text.strip().split(":")
    if len(parts) != 3:
        raise ChannelError(
            f"channel {text!r} is not type:exchange:symbol, e.g. trades:<exchange>:BTC-USDT "
            "(* for any exchange or symbol)"
        )
    kind, exchange, symbol = parts
    table = kind if kind in SPEC_BY_TABLE else None
    if table is None and kind in SPEC_BY_TYPE:
        table = SPEC_BY_TYPE[kind].table
    if table is None or table not in STREAM_TABLES:
        raise ChannelError(
            f"channel {text!r}: type {kind!r} is not streamed: expected one of "
            f"{', '.join(STREAM_TABLES)}"
        )
    try:
        ex = None if exchange == WILDCARD else check_exchange(exchange)
        sym = None if symbol == WILDCARD else check_symbol(symbol)
    except QueryInputError as exc:
        raise ChannelError(f"channel {text!r}: {exc}") from None
    return Channel(table, ex, sym)


def parse_channels(texts: Iterable[str]) -> tuple[Channel, ...]:
    """Each channel checked, duplicates dropped, in the order given; at least one."""
    found: dict[Channel, None] = {}
    for text in texts:
        if not text.strip():
            continue
        found[parse_channel(text)] = None
    if not found:
        raise ChannelError(
            "no channel given: expected channels such as trades:<exchange>:BTC-USDT "
            "(query ?channels=a,b or a subscribe message)"
        )
    if len(found) > MAX_CHANNELS:
        raise ChannelError(f"{len(found)} channels given: at most {MAX_CHANNELS} per stream")
    return tuple(found)


def check_entry_id(stream: str, entry_id: str) -> str:
    """A Redis stream entry id `<ms>-<seq>` as the server sent it."""
    if not isinstance(entry_id, str) or not _ENTRY_ID_RE.match(entry_id):
        raise ChannelError(
            f"last id {entry_id!r} of stream {stream!r} is not a stream entry id: expected "
            "<ms>-<seq> as a record message's `id` carried it"
        )
    return entry_id


def parse_last_ids(raw: Mapping[str, str] | None) -> dict[str, str]:
    """The client's `{stream: last entry id}`; every stream must be a contract-v2 record
    stream (as the server names them in its messages)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ChannelError(
            f"last_ids {raw!r} is not an object: expected {{stream: entry id}}, e.g. "
            '{"md:{<exchange>}:trades": "1700000000000-0"}'
        )
    ids: dict[str, str] = {}
    for stream, entry_id in raw.items():
        parsed = parse_stream_key(stream) if isinstance(stream, str) else None
        if parsed is None or not stream.startswith("md:{") or parsed[0] not in STREAM_TABLES:
            raise ChannelError(
                f"last_ids names {stream!r}, which is not a record stream: expected "
                "md:{<exchange>}:<table> as the server's messages name it"
            )
        ids[stream] = check_entry_id(stream, entry_id)
    return ids


def parse_last_ids_param(text: str | None) -> dict[str, str]:
    """The `last_ids` query parameter: `stream=id` pairs separated by commas, e.g.
    `md:{binance}:trades=1700000000000-0,md:{okx}:trades=1700000000001-3`."""
    if not text:
        return {}
    pairs: dict[str, str] = {}
    for item in text.split(","):
        stream, sep, entry_id = item.strip().rpartition("=")
        if not sep or not stream:
            raise ChannelError(
                f"last_ids item {item!r} is not stream=id, e.g. "
                "md:{<exchange>}:trades=1700000000000-0"
            )
        pairs[stream] = entry_id
    return parse_last_ids(pairs)


def explicit_streams(channels: Iterable[Channel]) -> set[str]:
    """The streams named outright (no exchange wildcard)."""
    return {stream_key(c.table, c.exchange) for c in channels if c.exchange is not None}


def wildcard_tables(channels: Iterable[Channel]) -> set[str]:
    """Tables whose streams must be discovered (an exchange wildcard)."""
    return {c.table for c in channels if c.exchange is None}


def symbol_filter(channels: Iterable[Channel], stream: str) -> frozenset[str] | None:
    """The symbols wanted from `stream`; None when every symbol is (a `*` channel)."""
    symbols: set[str] = set()
    for channel in channels:
        if not channel.matches_stream(stream):
            continue
        if channel.symbol is None:
            return None
        symbols.add(channel.symbol)
    return frozenset(symbols)


def entry_order(entry_id: str) -> tuple[int, int]:
    """An entry id as a comparable pair (ids compare by milliseconds, then sequence)."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
