"""The venues MarketStream connects to, by the name used in the configuration.

The one place outside `venues/<name>/` that names the venues: one line per venue. Everything
else (ingest, recorder, normalize, replay, quality, demo) finds a venue here by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from marketstream.errors import MarketStreamError
from marketstream.replay.dialect import Dialect
from marketstream.venues.base.venue import SessionGenerator, Venue
from marketstream.venues.binance.venue import BINANCE, BINANCE_USDM
from marketstream.venues.bybit.venue import BYBIT
from marketstream.venues.coinbase.venue import COINBASE
from marketstream.venues.kraken.venue import KRAKEN
from marketstream.venues.okx.venue import OKX

VENUES: Final[Mapping[str, Venue]] = MappingProxyType(
    {venue.name: venue for venue in (BINANCE, BINANCE_USDM, BYBIT, COINBASE, KRAKEN, OKX)}
)
# The replay server's protocols, by the exchange a recording names.
DIALECTS: Final[Mapping[str, Dialect]] = MappingProxyType(
    {name: venue.dialect for name, venue in VENUES.items()}
)
# Generated sessions of the venues that have them (the demo replays one where no capture is).
SESSIONS: Final[Mapping[str, SessionGenerator]] = MappingProxyType(
    {name: venue.session for name, venue in VENUES.items() if venue.session is not None}
)


def get_venue(name: str) -> Venue:
    """The venue named `name`; a MarketStreamError lists the known names otherwise."""
    try:
        return VENUES[name]
    except KeyError:
        raise MarketStreamError(
            f"unknown exchange {name!r}: expected one of {', '.join(VENUES)}"
        ) from None


def sequential_trade_id_venues() -> tuple[str, ...]:
    """The venues whose trade ids count up by one per instrument (quality's id gaps)."""
    return tuple(name for name, venue in VENUES.items() if venue.sequential_trade_ids)


def backfill_venue(name: str) -> Venue:
    """The venue named `name` if it serves past trades; else MarketStreamError naming those
    that do."""
    venue = VENUES.get(name)
    if venue is None or venue.trade_history is None:
        offering = ", ".join(n for n, v in VENUES.items() if v.trade_history is not None)
        raise MarketStreamError(
            f"backfill is not implemented for {name}: expected one of {offering}"
        )
    return venue
