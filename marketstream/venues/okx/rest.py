"""OKX's REST order book snapshots: `GET /api/v5/market/books`.

From early August 2026 the `books` channels send no first snapshot and no checksum: the book
starts from this snapshot (fetched by the runner, or recorded alongside a capture), joined
to the updates by OKX's rule `prevSeqId <= snapshot seqId < seqId`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final
from urllib.parse import parse_qs, urlsplit

from marketstream.schemas.records import Instrument
from marketstream.venues.base.contracts import SizeRule, rule_for
from marketstream.venues.base.mapper import BookUpdate, FrameError, in_venue
from marketstream.venues.base.parsing import JsonObject, field, load_object, show
from marketstream.venues.base.venue import SnapshotRequest
from marketstream.venues.okx.feed import BOOK_DEPTH
from marketstream.venues.okx.mapper import book_update, objects
from marketstream.venues.okx.symbols import NAME, native_symbol, normalized_symbol

SNAPSHOT_PATH: Final = "/api/v5/market/books"  # REST order book snapshot


def snapshot_requests(rest_base: str, symbols: Sequence[str]) -> list[SnapshotRequest]:
    """`GET /api/v5/market/books?instId=...&sz=400`: as deep as the `books` channel keeps."""
    base = rest_base.rstrip("/")
    return [
        SnapshotRequest(
            symbol, f"{base}{SNAPSHOT_PATH}?instId={native_symbol(symbol)}&sz={BOOK_DEPTH}"
        )
        for symbol in symbols
    ]


def snapshot_symbol(
    url: str, instruments: Sequence[Instrument] = (), symbols: Sequence[str] = ()
) -> str:
    """The symbol a snapshot URL asks for, so that recorded snapshots normalize offline. An
    instId names its market itself (BTC-USDT-SWAP): no instruments or symbols are needed."""
    inst_ids = parse_qs(urlsplit(url).query).get("instId")
    if not inst_ids:
        raise FrameError(f"{NAME}: snapshot URL {url!r} has no instId parameter")
    try:
        return normalized_symbol(inst_ids[0])
    except FrameError as exc:
        raise FrameError(f"{NAME}: snapshot URL {url!r}: {exc}") from None


def map_snapshot(
    body: str | bytes, symbol: str, recv_ts: int, instruments: Sequence[Instrument] = ()
) -> BookUpdate:
    """`{"code": "0", "msg": "", "data": [{"asks", "bids", "ts", "seqId"}]}` -> a snapshot.

    OKX answers errors with HTTP 200 and a non-zero `code` (51001: no such instrument), so
    the code is checked before the data. `seqId` is what OKX's changelog joins the updates
    on; a body without it still syncs the book, and the next update's prevSeqId then
    anchors the chain. The snapshot carries no checksum. Sizes go to base units like the
    pushes' (a derivative's snapshot needs its instrument among `instruments`).
    """
    try:
        instrument = next(
            (i for i in instruments if i.exchange == NAME and i.symbol == symbol), None
        )
        return _map_snapshot(body, symbol, recv_ts, rule_for(symbol, instrument))
    except FrameError as exc:
        raise in_venue(NAME, exc) from None


def _map_snapshot(body: str | bytes, symbol: str, recv_ts: int, rule: SizeRule) -> BookUpdate:
    what = "books snapshot"
    message = load_object(body)
    code = field(message, "code", what)
    if code != "0" and (type(code) is not int or code != 0):
        raise FrameError(f"{what}: error {code}: {message.get('msg')}")
    items = objects(message, what)
    if len(items) != 1:
        raise FrameError(f"{what}: data holds {len(items)} books, expected one")
    item = items[0]
    return book_update(
        symbol,
        item,
        recv_ts,
        what,
        is_snapshot=True,
        last_seq=_rest_seq_id(item, what),
        rule=rule,
    )


def _rest_seq_id(item: JsonObject, what: str) -> int | None:
    """REST writes most numbers as strings: seqId is read as an integer or a digit string."""
    value = item.get("seqId")
    if value is None:
        return None
    if type(value) is str and value.isascii() and value.isdigit():
        return int(value)
    if type(value) is int and value >= 0:
        return value
    raise FrameError(f"{what}: seqId {show(value)} is not a sequence id")
