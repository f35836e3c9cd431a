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
from marketstream.venues.okx.venue import OKX
from marketstream.venues.registry import VENUES
from tests.instruments.okx_answers import CAPTURE, captured_answers

REPO = Path(__file__).resolve().parents[2]
TRADES = CAPTURE.with_name("okx-trades.jsonl")


def test_the_configured_instruments_are_kept_and_the_missing_named() -> None:
    wanted = {
        "okx": frozenset({"BTC-USDT", "BTC-USDT-PERP", "BTC-USD-20220527", "XYZ-USDT"}),
        "kraken": frozenset({"BTC-USD"}),
    }
    venues = {"okx": OKX, "kraken": VENUES["kraken"]}
    build = build_snapshot([TRADES, CAPTURE], wanted, venues)  # frames are ignored
    assert sorted(i.symbol for i in build.instruments) == [
        "BTC-USD-20220527",
        "BTC-USDT",
        "BTC-USDT-PERP",
    ]
    # Kraken parses instrument lists, but these files hold none of its answers
    assert build.missing == {"okx": ["XYZ-USDT"], "kraken": ["BTC-USD"]}
    assert build.unparsed == []
    spot_read_ns = captured_answers()[0][1]  # an instrument is as of the answer listing it
    assert next(i for i in build.instruments if i.symbol == "BTC-USDT").ts == spot_read_ns


# Exchanges no captured answer covers yet, and why their configured symbols work without it.
UNCOVERED: dict[str, str] = {
    "bybit": "no whole v5 instruments-info answer is captured; Bybit fixes the size unit of "
    "every instrument on an endpoint, so configured symbols are named and sized without it",
}


def test_the_shipped_snapshot_covers_the_configured_instruments() -> None:
    """Every configured symbol of every venue that parses instrument lists is shipped,
    except on the exchanges named in UNCOVERED (whose symbols must all be missing: a
    captured answer for them means the exception is to be removed)."""
    config = load_config(REPO / "configs" / "pipeline.yaml", environ={})
    shipped = Catalog(load_shipped(SHIPPED_SNAPSHOT))
    for name, symbols in configured_symbols(config).items():
        assert VENUES[name].parse_instruments is not None, name
        missing = sorted(s for s in symbols if shipped.get(name, s) is None)
        expected = sorted(symbols) if name in UNCOVERED else []
        assert missing == expected, f"{name}: run `make instruments-snapshot` ({missing})"
