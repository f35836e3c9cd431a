"""`marketstream write-hot --exchanges` and ports: checked before anything starts."""

from __future__ import annotations

import pytest

from marketstream.cli import build_parser, main


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("okx,ftx", "unknown exchange or source 'ftx': expected an exchange (binance, "
         "binance-usdm, coinbase, kraken, okx, bybit) or a source (jupiter, birdeye)"),
        (",", "expected one or more exchange or source names, got ','"),
    ],
)  # fmt: skip
def test_a_writer_given_an_unknown_exchange_refuses_in_one_line(
    value: str, why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Otherwise it would run, serve no stream, and write nothing, silently."""
    with pytest.raises(SystemExit) as exit_info:
        main(["write-hot", "--exchanges", value])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"marketstream write-hot: error: argument --exchanges: {why}"
    )


def test_a_writer_may_serve_a_sources_streams() -> None:
    """A polled source owns `md:{jupiter}:prices` as an exchange owns its streams."""
    args = build_parser().parse_args(["write-hot", "--exchanges", "okx,jupiter"])
    assert args.exchanges == ["okx", "jupiter"]


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["serve", "--port", "99999"], "--port"),
        (["write-hot", "--metrics-port", "-1"], "--metrics-port"),
        (["replay-server", "--recording", "x.jsonl", "--port", "70000"], "--port"),
    ],
)
def test_a_port_out_of_range_is_refused_in_one_line(
    argv: list[str], option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """uvicorn took 99999 modulo 65536 and listened on 34463, silently."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.endswith(
        f"error: argument {option}: expected a port from 0 to 65535, got '{argv[-1]}'"
    )
