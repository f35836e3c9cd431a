"""`marketstream generate`'s command-line inputs: parsed, or refused in one line naming the
value and what was expected, before QuestDB is asked."""

from __future__ import annotations

from datetime import date

import pytest

from marketstream.cli import main
from marketstream.cli.generate import day_range, parse_count, parse_day, parse_names
from marketstream.generate.history import ANCHOR, HistoryInputError


def test_command_line_values_are_parsed_or_named() -> None:
    assert parse_names("BTC-USDT, ETH-USDT", "--symbols") == ("BTC-USDT", "ETH-USDT")
    assert parse_count("12", "--days") == 12
    assert parse_day("2025-01-31", "--end") == date(2025, 1, 31)
    for call, message in (
        (lambda: parse_names("BTC-USDT,,ETH-USDT", "--symbols"), "--symbols 'BTC-USDT,,ETH"),
        (lambda: parse_count("0", "--days"), "--days '0' is not valid: expected an integer"),
        (lambda: parse_count("1e3", "--days"), "--days '1e3' is not valid"),
        (lambda: parse_day("2025-02-30", "--end"), "--end '2025-02-30' is not a day"),
        (lambda: parse_day("2025-W01-1", "--end"), "--end '2025-W01-1' is not a day"),
    ):
        with pytest.raises(HistoryInputError, match=message):
            call()


def test_the_day_range_ends_yesterday_by_default_and_only_in_the_past() -> None:
    today = date(2026, 1, 15)
    assert day_range(1, None, today) == (date(2026, 1, 14), date(2026, 1, 14))
    assert day_range(10, date(2025, 12, 31), today) == (date(2025, 12, 22), date(2025, 12, 31))
    with pytest.raises(HistoryInputError, match="--end 2026-01-15 is not a past day"):
        day_range(1, today, today)
    with pytest.raises(HistoryInputError, match=f"would be before {ANCHOR}"):
        day_range(10_000, None, today)


@pytest.mark.parametrize(
    ("argv", "starts"),
    [
        (["--days", "0"], "--days '0' is not valid"),
        (["--days", "2", "--symbols", "BTCUSDT"], "symbol 'BTCUSDT' is not normalized"),
        (["--days", "2", "--exchanges", "binance,ftx"], "exchange 'ftx' is not known"),
        (["--days", "2", "--end", "31/01/2025"], "--end '31/01/2025' is not a day"),
        (["--days", "2", "--end", "2999-01-01"], "--end 2999-01-01 is not a past day"),
        (["--days", "2", "--trades-per-day", "-5"], "--trades-per-day '-5' is not valid"),
        (["--days", "2", "--seed", "x"], "--seed 'x' is not valid"),
    ],
)
def test_the_command_rejects_bad_input_in_one_line_before_asking_questdb(
    argv: list[str], starts: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"marketstream: error: {starts}"), err[0]
