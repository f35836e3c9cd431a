"""Logs: JSON lines off a terminal, text on one, context fields, environment overrides."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from datetime import date
from typing import Any

import orjson
import pytest

from marketstream.errors import ConfigError
from marketstream.logs import FORMAT_ENV, LEVEL_ENV, context_logger, setup_logging

NAME = "marketstream.test_logs"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text")


@pytest.fixture(autouse=True)
def _restore_root_logger(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """setup_logging changes the process's root logger: put it back after each test."""
    monkeypatch.delenv(LEVEL_ENV, raising=False)
    monkeypatch.delenv(FORMAT_ENV, raising=False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_off_a_terminal_each_record_is_one_json_line() -> None:
    out = io.StringIO()
    setup_logging(stream=out)
    logging.getLogger(NAME).warning("%s: snapshot %s failed: %s", "binance-usdm", "u", "HTTP 404")
    (entry,) = json_lines(out)
    assert entry == {
        "ts": entry["ts"],
        "level": "WARNING",
        "logger": NAME,
        "msg": "binance-usdm: snapshot u failed: HTTP 404",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["ts"])


def test_context_logger_merges_its_context_with_the_call_extra() -> None:
    out = io.StringIO()
    setup_logging(stream=out)
    log = context_logger(NAME, exchange="okx")
    log.warning("gap", extra={"symbol": "BTC-USDT"})
    log.bind(symbol="ETH-USDT").info("resync")
    log.info("override", extra={"exchange": "bybit"})
    gap, resync, override = json_lines(out)
    assert (gap["exchange"], gap["symbol"], gap["msg"]) == ("okx", "BTC-USDT", "gap")
    assert (resync["exchange"], resync["symbol"]) == ("okx", "ETH-USDT")
    assert override["exchange"] == "bybit"
    assert "symbol" not in override


def test_context_fields_come_first_then_other_extras() -> None:
    out = io.StringIO()
    setup_logging(stream=out)
    extra = {"rows": 3, "day": date(2024, 5, 1), "table": "trades", "hop": "hot->warm"}
    logging.getLogger(NAME).error("archive failed", extra=extra)
    (entry,) = json_lines(out)
    assert list(entry) == ["ts", "level", "logger", "msg", "table", "hop", "day", "rows"]
    assert entry["day"] == "2024-05-01"
    assert entry["rows"] == 3


def test_extras_json_cannot_hold_are_written_as_text() -> None:
    out = io.StringIO()
    setup_logging(stream=out)
    extra = {"path": Unprintable(), "big": 2**70, "where": {1: object()}, "ts": "mine"}
    logging.getLogger(NAME).info("odd extras", extra=extra)
    (entry,) = json_lines(out)
    assert entry["path"] == "<unprintable Unprintable>"
    assert entry["big"] == str(2**70)
    assert entry["where"]["1"].startswith("<object object at")
    assert entry["ts_"] == "mine"  # an extra never hides a core field
    assert entry["ts"].endswith("Z")


def test_an_exception_goes_in_exc_with_its_traceback() -> None:
    out = io.StringIO()
    setup_logging(stream=out)
    try:
        raise ValueError("bad frame")
    except ValueError:
        context_logger(NAME, stream="md:trades:okx").exception("write failed")
    (entry,) = json_lines(out)
    assert entry["msg"] == "write failed"
    assert entry["stream"] == "md:trades:okx"
    assert entry["exc"].startswith("Traceback (most recent call last):")
    assert entry["exc"].endswith("ValueError: bad frame")


def test_on_a_terminal_records_are_text_with_the_context_at_the_end() -> None:
    out = Terminal()
    setup_logging(stream=out)
    try:
        raise KeyError("x")
    except KeyError:
        context_logger(NAME, exchange="kraken").error("book gap", extra={"symbol": "XBT-USD"})
        context_logger(NAME).exception("plain")
    lines = out.getvalue().splitlines()
    assert re.fullmatch(
        rf"\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d,\d{{3}} ERROR {NAME}: book gap "
        r"\[exchange=kraken symbol=XBT-USD\]",
        lines[0],
    )
    assert lines[1].endswith(f"ERROR {NAME}: plain")
    assert lines[2] == "Traceback (most recent call last):"
    assert lines[-1] == "KeyError: 'x'"


@pytest.mark.parametrize(
    ("variable", "stream", "expect_json"),
    [
        ("json", Terminal(), True),
        ("TEXT", io.StringIO(), False),
        ("auto", Terminal(), False),
        ("", io.StringIO(), True),
    ],
)
def test_the_format_variable_overrides_the_terminal_check(
    monkeypatch: pytest.MonkeyPatch, variable: str, stream: io.StringIO, expect_json: bool
) -> None:
    monkeypatch.setenv(FORMAT_ENV, variable)
    setup_logging(stream=stream)
    logging.getLogger(NAME).warning("hello")
    assert stream.getvalue().startswith("{") is expect_json


def test_an_explicit_format_argument_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FORMAT_ENV, "json")
    out = io.StringIO()
    setup_logging(stream=out, json_format=False)
    logging.getLogger(NAME).warning("hello")
    assert out.getvalue().rstrip().endswith(f"WARNING {NAME}: hello")


def test_level_from_the_argument_and_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    setup_logging("warning", stream=out)
    logging.getLogger(NAME).info("hidden")
    monkeypatch.setenv(LEVEL_ENV, "debug")
    setup_logging("ERROR", stream=out)  # the variable wins
    logging.getLogger(NAME).debug("shown")
    assert [entry["msg"] for entry in json_lines(out)] == ["shown"]
    assert logging.getLogger().level == logging.DEBUG


def test_a_second_setup_replaces_the_first_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    setup_logging(stream=first)
    handler = setup_logging(stream=second)
    logging.getLogger(NAME).warning("once")
    assert first.getvalue() == ""
    assert len(json_lines(second)) == 1
    assert logging.getLogger().handlers.count(handler) == 1


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (LEVEL_ENV, "loud", "MARKETSTREAM_LOG_LEVEL='loud': expected a log level"),
        (FORMAT_ENV, "xml", "MARKETSTREAM_LOG_FORMAT='xml': expected json, text or auto"),
    ],
)
def test_a_wrong_variable_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=re.escape(message)):
        setup_logging(stream=io.StringIO())
