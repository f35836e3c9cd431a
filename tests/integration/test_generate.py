"""`marketstream generate` against a real QuestDB: per table and day, the rows QuestDB holds
match the truth (count and key checksum, computed from QuestDB's own rows), and a second run
with the same seed changes nothing (dedup keys).

The session's QuestDB is shared: this module writes days of its own (March 2011) for
exchanges and symbols of its own, counts only those, and drops those days' partitions
afterwards (never a table).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import orjson
import pyarrow as pa
import pytest

from marketstream.cli import main
from marketstream.generate import hot_load
from marketstream.generate.history import HistoryConfig, generate
from marketstream.generate.hot_load import LoadSummary, add_table, load_history
from marketstream.schemas.checksum import key_checksum, key_columns
from marketstream.schemas.columns import (
    CANDLES,
    LIQUIDATIONS,
    OPEN_INTEREST,
    QUOTES,
    TRADES,
    TableSpec,
)
from marketstream.schemas.records import Kind
from marketstream.tiers.questdb import QuestDBHttp
from marketstream.tiers.questdb_rows import parse_timestamp_ns
from marketstream.writers.hot_writer_questdb import wal_states
from tests.integration.endpoints import CONFIG_FILE, QuestDBEndpoints

pytestmark = pytest.mark.integration

WAIT_S = 120.0  # a bound for every wait on a loaded machine, never a timing assertion
POLL_S = 0.1
FIRST, LAST = date(2011, 3, 1), date(2011, 3, 10)
DAYS = [FIRST + timedelta(days=i) for i in range((LAST - FIRST).days + 1)]
CONFIG = HistoryConfig(
    exchanges=("bybit", "kraken"),
    symbols=("GENA-USDT", "GENB-USDT", "GENC-USDT-PERP"),
    trades_per_day=300,
    seed=11,
    gaps=True,
    spikes=True,
)
SPECS = (TRADES, QUOTES, CANDLES, LIQUIDATIONS, OPEN_INTEREST)
OURS = "exchange IN ('bybit', 'kraken') AND symbol IN ('GENA-USDT', 'GENB-USDT', 'GENC-USDT-PERP')"


def count(http: QuestDBHttp, spec: TableSpec, day: date) -> int:
    sql = f"SELECT count() FROM {spec.table} WHERE ts IN '{day}' AND {OURS}"
    return int(http.exec(sql)["dataset"][0][0])


def questdb_truth(http: QuestDBHttp, spec: TableSpec, day: date) -> tuple[int, int]:
    """(rows, key checksum) of the day's rows as QuestDB returns them (`/exec` JSON)."""
    names = key_columns(spec)
    sql = f"SELECT {', '.join(names)} FROM {spec.table} WHERE ts IN '{day}' AND {OURS}"
    answer = http.exec(sql)
    columns: dict[str, list[Any]] = {name: [] for name in names}
    for row in answer["dataset"]:
        for name, value in zip(names, row, strict=True):
            columns[name].append(value)
    arrays: dict[str, pa.Array[Any]] = {}
    for name in names:
        if spec.column(name).kind is Kind.TIMESTAMP:
            arrays[name] = pa.array([parse_timestamp_ns(v) for v in columns[name]], pa.int64())
        elif spec.column(name).kind is Kind.FLOAT:  # liquidations are keyed by price and size
            arrays[name] = pa.array(columns[name], pa.float64())
        else:
            arrays[name] = pa.array(columns[name], pa.string())
    return key_checksum(spec, pa.table(arrays))


def wait_applied(http: QuestDBHttp) -> None:
    """Until QuestDB applied every committed write to the tables (WAL apply is async)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        states = wal_states(http)
        assert not any(s.suspended for s in states.values()), states
        if all(states[spec.table].unapplied == 0 for spec in SPECS):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"QuestDB did not apply the writes within {WAIT_S:g} s: {states}")
        time.sleep(POLL_S)


def truth_table(summary: LoadSummary) -> dict[str, dict[str, tuple[int, int]]]:
    return {
        name: {day.isoformat(): truth for day, truth in days.items()}
        for name, days in summary.truth.items()
    }


BATCH_ROWS = 97  # smaller than a day of any table: a day goes out in several requests
SENT: list[int] = []  # the rows of each ILP request the first run made


@pytest.fixture(scope="module")
def first_run(questdb: QuestDBEndpoints) -> Iterator[LoadSummary]:
    http = questdb.http
    with pytest.MonkeyPatch.context() as patch:

        def recorded(buffer: Any, spec: TableSpec, table: pa.Table) -> None:
            SENT.append(table.num_rows)
            add_table(buffer, spec, table)

        patch.setattr(hot_load, "add_table", recorded)
        summary = load_history(http, generate(CONFIG, FIRST, LAST), batch_rows=BATCH_ROWS)
    wait_applied(http)
    yield summary
    days = ", ".join(f"'{day}'" for day in DAYS)
    for spec in SPECS:  # this module's days only: no other test writes March 2011
        http.exec(f"ALTER TABLE {spec.table} DROP PARTITION LIST {days}")
    wait_applied(http)  # gone before the next module counts whole tables
    assert all(count(http, spec, day) == 0 for spec in SPECS for day in DAYS)


def test_every_table_and_day_was_written(first_run: LoadSummary) -> None:
    assert first_run.days == len(DAYS)
    for spec in SPECS:
        truth = first_run.truth[spec.table]
        assert sorted(truth) == DAYS
        # About one liquidation per 400 trades: a day of 300 may have none; the rest, rows.
        days_with_rows = sum(rows > 0 for rows, _ in truth.values())
        assert days_with_rows >= (1 if spec is LIQUIDATIONS else len(DAYS)), spec.table
        assert first_run.tables[spec.table].rows == sum(rows for rows, _ in truth.values())


def test_no_request_carries_more_than_batch_rows(first_run: LoadSummary) -> None:
    """A day bigger than a request may carry (500k trades: over QuestDB's 100 MB) is sliced."""
    assert max(SENT) <= BATCH_ROWS
    assert sum(SENT) == sum(load.rows for load in first_run.tables.values())
    assert max(rows for rows, _ in first_run.truth["quotes"].values()) > BATCH_ROWS


def test_questdb_holds_the_truth_per_table_and_day(
    first_run: LoadSummary, questdb: QuestDBEndpoints
) -> None:
    for spec in SPECS:
        for day in DAYS:
            expected = first_run.truth[spec.table][day]
            assert count(questdb.http, spec, day) == expected[0], (spec.table, day)
            assert questdb_truth(questdb.http, spec, day) == expected, (spec.table, day)


def test_a_second_run_through_the_command_writes_nothing_twice(
    first_run: LoadSummary,
    questdb: QuestDBEndpoints,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Any,
) -> None:
    monkeypatch.setenv("MARKETSTREAM_CONFIG", str(CONFIG_FILE))
    monkeypatch.setenv("MARKETSTREAM_ENDPOINTS__QUESTDB_HTTP", questdb.http_url)
    argv = [
        "generate",
        "--days", str(len(DAYS)),
        "--end", LAST.isoformat(),
        "--exchanges", ",".join(CONFIG.exchanges),
        "--symbols", ",".join(CONFIG.symbols),
        "--trades-per-day", str(CONFIG.trades_per_day),
        "--seed", str(CONFIG.seed),
        "--gaps", "--spikes",
        "--json",
        "--state-dir", str(tmp_path),
    ]  # fmt: skip
    assert main(argv) == 0
    out, err = capsys.readouterr()
    printed = orjson.loads(out)
    expected = {
        name: {day: {"rows": rows, "checksum": checksum} for day, (rows, checksum) in days.items()}
        for name, days in truth_table(first_run).items()
    }
    assert printed["truth"] == expected  # the same seed made the same rows
    assert printed["days"] == len(DAYS)
    assert [line.split(":")[0] for line in err.splitlines()[:5]] == [spec.table for spec in SPECS]

    wait_applied(questdb.http)
    for spec in SPECS:
        for day in DAYS:
            assert count(questdb.http, spec, day) == first_run.truth[spec.table][day][0]
    day = DAYS[4]
    for spec in SPECS:
        assert questdb_truth(questdb.http, spec, day) == first_run.truth[spec.table][day]


def test_an_unreachable_questdb_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    from marketstream.services import process  # noqa: PLC0415

    monkeypatch.setenv("MARKETSTREAM_CONFIG", str(CONFIG_FILE))
    url = f"http://{process.LOOPBACK}:{process.free_port()}"
    monkeypatch.setenv("MARKETSTREAM_ENDPOINTS__QUESTDB_HTTP", url)
    argv = ["generate", "--days", "1", "--end", "2011-02-01", "--state-dir", str(tmp_path)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"marketstream: error: QuestDB at {url} unreachable"), err[0]
