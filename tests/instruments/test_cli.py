"""`marketstream instruments refresh|list` against our replay server serving the real
captured OKX answers."""

from __future__ import annotations

import asyncio
import csv
import io
import os
from pathlib import Path

import orjson
import pytest

from marketstream.cli import main
from marketstream.instruments.store import read_instruments
from marketstream.replay.recording_format import RecordedFrame, RecordingWriter
from marketstream.replay.server import ReplayServer
from marketstream.venues.registry import DIALECTS
from tests.instruments.okx_answers import CAPTURE

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / "configs" / "pipeline.yaml")


@pytest.fixture(autouse=True)
def no_environment_overlay(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("MARKETSTREAM_"):
            monkeypatch.delenv(name)


def cli(*argv: str) -> int:
    return main(["--config", CONFIG, *argv])


async def refresh(state: Path, rest_url: str, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("MARKETSTREAM_EXCHANGES__OKX__REST_URL", rest_url)
    monkeypatch.setenv("MARKETSTREAM_INSTRUMENTS__RETRIES", "0")
    argv = ("instruments", "refresh", "--exchange", "okx", "--state-dir", str(state))
    return await asyncio.to_thread(cli, *argv)  # the CLI runs its own event loop


async def test_refresh_writes_the_cache_and_list_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    async with ReplayServer(CAPTURE, DIALECTS) as server:
        assert await refresh(state, server.http_url, monkeypatch) == 0
    out = capsys.readouterr().out.splitlines()
    cached = read_instruments(state / "instruments.jsonl")
    refused = 783 - len(cached)  # listed in the three answers, kept or refused
    assert out == [
        f"okx: {len(cached)} instruments" + (f" ({refused} refused)" if refused else ""),
        f"wrote {len(cached)} instruments to {state / 'instruments.jsonl'}",
    ]
    assert {i.symbol for i in cached} >= {"BTC-USDT", "BTC-USDT-PERP", "BTC-USD-20220527"}

    assert (
        cli(
            "instruments",
            "list",
            "--state-dir",
            str(state),
            "--symbol",
            "BTC-USDT-SWAP",
            "--format",
            "json",
        )
        == 0
    )
    rows = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["type"], r["symbol"], r["contract_value"]) for r in rows] == [
        ("instrument", "BTC-USDT-PERP", 0.01)
    ]

    assert (
        cli(
            "instruments", "list", "--state-dir", str(state), "--exchange", "okx", "--format", "csv"
        )
        == 0
    )
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(table) == len(cached)
    future = next(r for r in table if r["symbol"] == "BTC-USD-20220527")
    assert (future["kind"], future["expiry"], future["contract_value"]) == (
        "inverse_future",
        "1653638400000000000",
        "100.0",
    )

    assert (
        cli("instruments", "list", "--state-dir", str(state), "--symbol", "BTC-USD-20220527") == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["exchange", "symbol", "ts"]
    assert "2022-05-27T08:00:00" in lines[1]  # the expiry, shown as a time


async def test_refresh_fails_in_one_line_when_every_fetch_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    feed = tmp_path / "feed.jsonl"
    with RecordingWriter(feed) as writer:
        writer.write(RecordedFrame(1, "okx", "wss://ws.okx.com:8443/ws/v5/public", "{}"))
    async with ReplayServer(feed, DIALECTS) as server:
        assert await refresh(tmp_path / "state", server.http_url, monkeypatch) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    url = f"{server.http_url}/api/v5/public/instruments?instType=SPOT"
    assert captured.err == (
        f"marketstream: error: every instrument fetch failed: okx: GET {url} failed: "
        "HTTP 404 Not Found\n"
    )
    assert not (tmp_path / "state" / "instruments.jsonl").exists()


def test_list_without_a_cache_shows_the_shipped_snapshot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from marketstream.instruments.snapshot import SHIPPED_SNAPSHOT  # noqa: PLC0415

    assert cli("instruments", "list", "--state-dir", str(tmp_path), "--format", "json") == 0
    shipped = read_instruments(SHIPPED_SNAPSHOT)
    assert len(capsys.readouterr().out.splitlines()) == len(shipped)


def test_an_unknown_exchange_is_one_line_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli("instruments", "list", "--exchange", "ftx")
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "marketstream instruments list: error: argument --exchange: unknown exchange 'ftx': "
        "expected one of binance, binance-usdm, coinbase, kraken, okx, bybit"
    )


def test_a_list_that_matches_nothing_says_so_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ("instruments", "list", "--exchange", "okx", "--symbol", "NOPE-USD")
    assert cli(*argv, "--state-dir", str(tmp_path)) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "marketstream: no known instrument matches exchange okx symbol NOPE-USD\n"
