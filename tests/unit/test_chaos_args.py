"""`python -m chaos` refuses settings that would make a meaningless run, in one line."""

from __future__ import annotations

import pytest

from chaos.run import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--minutes", "-1"], "argument --minutes: expected a positive number, got '-1'"),
        (["--maxlen", "0"], "argument --maxlen: expected a positive integer, got '0'"),
        (["--pause", "nan"], "argument --pause: expected a positive number, got 'nan'"),
    ],
)
def test_bad_settings_are_refused_before_anything_starts(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
