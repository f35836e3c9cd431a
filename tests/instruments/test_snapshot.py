"""Rebuilding the shipped snapshot from recorded instrument answers, over the registry."""

from __future__ import annotations

from pathlib import Path

from marketstream.config import load_config
from marketstream.instruments.catalog import Catalog
from marketstream.instruments.snapshot import (
    SHIPPED_SNAPSHOT,
    build_snapshot,
    configured_symbols,
    load_shipped,
)
from marketstream.venues.registry import VENUES
from tests.instruments.okx_format import CAPTURE, captured_answers, okx_with_instruments

REPO = Path(__file__).resolve().parents[2]
TRADES = CAPTURE.with_name("okx-trades.jsonl")


def test_the_configured_instruments_are_kept_and_the_missing_named() -> None:
    wanted = {
        "okx": frozenset({"BTC-USDT", "BTC-USDT-PERP", "BTC-USD-20220527", "XYZ-USDT"}),
        "kraken": frozenset({"BTC-USD"}),
    }
    venues = {"okx": okx_with_instruments(), "kraken": VENUES["kraken"]}
    build = build_snapshot([TRADES, CAPTURE], wanted, venues)  # frames are ignored
    assert sorted(i.symbol for i in build.instruments) == [
        "BTC-USD-20220527",
        "BTC-USDT",
        "BTC-USDT-PERP",
    ]
    assert build.missing == {"okx": ["XYZ-USDT"]}
    if VENUES["kraken"].parse_instruments is None:
        assert build.unparsed == ["kraken"]
    spot_read_ns = captured_answers()[0][1]  # an instrument is as of the answer listing it
    assert next(i for i in build.instruments if i.symbol == "BTC-USDT").ts == spot_read_ns


def test_the_shipped_snapshot_covers_the_configured_instruments() -> None:
    """For every configured exchange whose venue parses instrument lists (none on main when
    this was written: the snapshot was then empty), every configured symbol is shipped."""
    config = load_config(REPO / "configs" / "pipeline.yaml", environ={})
    shipped = Catalog(load_shipped(SHIPPED_SNAPSHOT))
    for name, symbols in configured_symbols(config).items():
        if VENUES[name].parse_instruments is None:
            continue
        missing = sorted(s for s in symbols if shipped.get(name, s) is None)
        assert missing == [], f"{name}: run `make instruments-snapshot` ({missing})"
