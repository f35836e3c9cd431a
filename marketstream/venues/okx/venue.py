"""OKX v5 (spot, perpetual swaps and dated futures) as the registry lists it."""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from marketstream.venues.base.venue import Sequencing, Venue
from marketstream.venues.okx.checksum import CHECKSUM_DEPTH, checksum
from marketstream.venues.okx.feed import (
    BOOK_DEPTH,
    CHANNELS,
    PING,
    connect_url,
    resubscribe_book,
    split,
    subscribe_messages,
)
from marketstream.venues.okx.instruments import instrument_urls, parse_instruments
from marketstream.venues.okx.mapper import make_mapper
from marketstream.venues.okx.replay import OkxDialect
from marketstream.venues.okx.rest import map_snapshot, snapshot_requests, snapshot_symbol
from marketstream.venues.okx.sessions import okx_session
from marketstream.venues.okx.symbols import NAME

OKX: Final = Venue(
    name=NAME,
    connect_url=connect_url,
    subscribe_messages=subscribe_messages,
    make_mapper=make_mapper,
    sequencing=Sequencing.PREV_LAST,  # prevSeqId == the previous seqId (equal: no change)
    channels=CHANNELS,
    dialect=OkxDialect(),
    # OKX closes a connection that received nothing for 30 s; it answers the text `ping`.
    ping_message=PING,
    ping_interval_s=20.0,
    max_messages_per_s=3.0,  # OKX's documented subscribe rate
    # OKX documents no topic cap per connection; this keeps one connection's pushes moderate.
    max_streams_per_connection=200,
    # The feed stops sending a first book snapshot in August 2026: books start from REST
    # (where a rest_url is configured; else resubscribing, which works while it still does).
    snapshot_requests=snapshot_requests,
    map_snapshot=map_snapshot,
    snapshot_symbol=snapshot_symbol,
    resubscribe_book=resubscribe_book,
    split=split,
    checksum=checksum,
    checksum_depth=CHECKSUM_DEPTH,
    book_depth_limit=BOOK_DEPTH,
    # `trades` aggregates fills and sends the last id of each aggregate: ids skip by design.
    sequential_trade_ids=False,
    instrument_urls=instrument_urls,
    parse_instruments=parse_instruments,
    session=okx_session,
    tardis_ids=MappingProxyType(
        {
            "spot": "okex",
            "linear_perpetual": "okex-swap",
            "inverse_perpetual": "okex-swap",
            "linear_future": "okex-futures",
            "inverse_future": "okex-futures",
        }
    ),
)
