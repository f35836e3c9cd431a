"""`marketstream write-hot --exchanges`: names checked before anything starts."""

from __future__ import annotations

import pytest

from marketstream.cli import main


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("okx,ftx", "unknown exchange 'ftx': expected one of binance, binance-usdm, coinbase, "
         "kraken, okx, bybit"),
        (",", "expected one or more exchange names, got ','"),
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
