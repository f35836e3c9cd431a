"""How `marketstream query` prints rows: every timestamp column as ISO-8601 in a table."""

from __future__ import annotations

import pytest

from marketstream.cli.output import print_rows
from marketstream.schemas.records import Price

T0 = 1_763_596_800 * 10**9  # 2025-11-20T00:00:00Z


def test_a_table_shows_a_prices_source_time_as_iso_and_nulls_as_dashes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = [
        Price("birdeye", "BONK-USD", T0, T0 + 5, 1.6e-05, T0 - 7 * 10**9 - 1, None, None, -4.77),
        Price("jupiter", "SOL-USD", T0, T0 + 6, 147.48, None, 348004023),
    ]
    print_rows(rows, "table")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "exchange", "symbol", "ts", "recv_ts", "price", "source_ts", "block", "liquidity",
        "change_24h",
    ]  # fmt: skip
    assert lines[1].split() == [
        "birdeye", "BONK-USD", "2025-11-20T00:00:00.000000000Z", "2025-11-20T00:00:00.000000005Z",
        "1.6e-05", "2025-11-19T23:59:52.999999999Z", "-", "-", "-4.77",
    ]  # fmt: skip
    assert lines[2].split()[5:7] == ["-", "348004023"]
