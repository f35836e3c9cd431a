"""The instrument cache and the catalog loader: what is read back is what was written, and a
cached instrument replaces its shipped record."""

from __future__ import annotations

from pathlib import Path

import msgspec.structs
import pytest

from marketstream.errors import MarketStreamError
from marketstream.instruments.catalog import Catalog
from marketstream.instruments.snapshot import SHIPPED_SNAPSHOT, load_catalog, overlay
from marketstream.instruments.store import read_instruments, write_instruments
from marketstream.schemas.codec import encode_record
from marketstream.schemas.records import Instrument, Trade

BTC_PERP = Instrument(
    exchange="okx",
    symbol="BTC-USDT-PERP",
    ts=1_652_459_223_338_643_600,
    native_symbol="BTC-USDT-SWAP",
    kind="linear_perpetual",
    base="BTC",
    quote="USDT",
    settle="USDT",
    contract_value=0.01,
    contract_multiplier=1.0,
    tick_size=0.1,
    lot_size=1.0,
    expiry=None,
    status="live",
)
BTC_SPOT = msgspec.structs.replace(
    BTC_PERP, symbol="BTC-USDT", native_symbol="BTC-USDT", kind="spot", contract_value=1.0
)


def sorted_(catalog: Catalog) -> list[Instrument]:
    return sorted(catalog, key=lambda i: (i.exchange, i.symbol))


def test_written_instruments_read_back_sorted(tmp_path: Path) -> None:
    path = tmp_path / "state" / "instruments.jsonl"
    assert write_instruments(path, [BTC_PERP, BTC_SPOT]) == 2
    assert read_instruments(path) == [BTC_SPOT, BTC_PERP]  # by exchange, then symbol
    assert [p.name for p in path.parent.iterdir()] == ["instruments.jsonl"]  # no temp file left


def test_a_rewrite_replaces_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "instruments.jsonl"
    write_instruments(path, [BTC_PERP, BTC_SPOT])
    write_instruments(path, [BTC_SPOT])
    assert read_instruments(path) == [BTC_SPOT]


def test_a_bad_line_is_named_with_its_file_and_number(tmp_path: Path) -> None:
    path = tmp_path / "instruments.jsonl"
    trade = Trade("okx", "BTC-USDT", 1, 1, "1", 1.0, 1.0, "buy")
    path.write_bytes(encode_record(BTC_SPOT) + b"\n\n" + encode_record(trade) + b"\n")
    with pytest.raises(MarketStreamError, match=r"instruments.jsonl line 3: expected an instr"):
        read_instruments(path)
    path.write_bytes(b"{not json\n")
    with pytest.raises(MarketStreamError, match=r"instruments.jsonl line 1: not JSON"):
        read_instruments(path)


def test_a_write_that_cannot_happen_names_the_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(MarketStreamError, match=r"cannot write instruments .*file/inst"):
        write_instruments(blocker / "instruments.jsonl", [BTC_SPOT])


def test_the_cache_lies_over_the_shipped_snapshot(tmp_path: Path) -> None:
    shipped, cache = tmp_path / "shipped.jsonl", tmp_path / "cache.jsonl"
    newer_value = msgspec.structs.replace(BTC_PERP, ts=BTC_PERP.ts + 1, contract_value=0.001)
    write_instruments(shipped, [BTC_PERP, BTC_SPOT])
    assert sorted_(load_catalog(None, shipped)) == [BTC_SPOT, BTC_PERP]
    assert sorted_(load_catalog(tmp_path / "absent.jsonl", shipped)) == [BTC_SPOT, BTC_PERP]
    write_instruments(cache, [newer_value])
    assert sorted_(load_catalog(cache, shipped)) == [BTC_SPOT, newer_value]


def test_an_unreadable_cache_falls_back_to_the_snapshot(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shipped, cache = tmp_path / "shipped.jsonl", tmp_path / "cache.jsonl"
    write_instruments(shipped, [BTC_SPOT])
    cache.write_text("garbage\n")
    assert list(load_catalog(cache, shipped)) == [BTC_SPOT]
    assert "ignoring the cache" in caplog.text
    assert "cache.jsonl line 1" in caplog.text


def test_overlay_prefers_the_newer_source_whatever_its_time() -> None:
    """A recording's own (older) answer must win over a shipped record read later."""
    older = msgspec.structs.replace(BTC_PERP, ts=1, contract_value=0.1)
    assert Catalog([BTC_PERP]).merged([older]).get("okx", "BTC-USDT-PERP") == BTC_PERP
    assert overlay(Catalog([BTC_PERP, BTC_SPOT]), [older]).get("okx", "BTC-USDT-PERP") == older
    assert overlay(Catalog([BTC_PERP, BTC_SPOT]), [older]).get("okx", "BTC-USDT") == BTC_SPOT


def test_the_shipped_snapshot_is_package_data_and_readable() -> None:
    """Listed in pyproject's package-data, so an install carries it; every line decodes."""
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"defaults/instruments.jsonl"' in pyproject
    assert SHIPPED_SNAPSHOT.is_file()
    read_instruments(SHIPPED_SNAPSHOT)
