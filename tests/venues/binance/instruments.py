"""Binance instruments for the venue tests, parsed by our parser from the real exchangeInfo
answers in tests/data/captures (spot 2021-10, cut to the symbols in use; USD-M 2021-07)."""

from __future__ import annotations

from pathlib import Path

import orjson

from marketstream.schemas.records import Instrument
from marketstream.venues.binance.venue import BINANCE, BINANCE_USDM

CAPTURES = Path(__file__).resolve().parents[2] / "data" / "captures"


def parsed(file: str, spot: bool) -> tuple[Instrument, ...]:
    recorded = orjson.loads((CAPTURES / file).read_bytes())
    venue = BINANCE if spot else BINANCE_USDM
    assert venue.parse_instruments is not None
    return tuple(venue.parse_instruments(recorded["url"], recorded["frame"], recorded["recv_ns"]))


SPOT_INSTRUMENTS = parsed("binance-spot-exchangeinfo-rest.jsonl", spot=True)
USDM_INSTRUMENTS = parsed("binance-usdm-exchangeinfo-rest.jsonl", spot=False)
