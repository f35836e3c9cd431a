"""The archiver under faults, on real QuestDB, the ClickHouse engine and an S3 API server:
a destination that alters a value, a QuestDB table whose WAL is not applied, a store error on
one table, two archivers at once, a nightly run that raises. Each test uses its own days and
symbol; nothing it breaks outlives it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import date, datetime, timedelta

import pyarrow as pa
import pytest

from marketstream.archiver import runner
from marketstream.archiver.health import LAST_RUN_FILE, ArchiverHealth
from marketstream.archiver.runner import Archiver
from marketstream.cli import archive as cli_archive
from marketstream.config import ServicesConfig
from marketstream.generate.history import HistoryConfig
from marketstream.schemas.arrow import conform
from marketstream.schemas.checksum import row_checksum
from marketstream.schemas.columns import CANDLES, QUOTES, SPECS, TRADES, TableSpec
from marketstream.services import process
from marketstream.tiers.clickhouse_partitions import WarmTier
from marketstream.tiers.cold_parquet import decode, encode_partition, file_checksum, read_metadata
from marketstream.tiers.questdb_partitions import HotTier
from tests.integration.archive_tiers import (
    Tiers,
    archive,
    archive_command,
    load,
    start_tiers,
    utc_today,
    wait_applied,
)
from tests.integration.endpoints import REPO, S3Endpoint


@pytest.fixture(scope="module")
def tiers(
    services_config: ServicesConfig, tmp_path_factory: pytest.TempPathFactory, s3: S3Endpoint
) -> Iterator[Tiers]:
    yield from start_tiers(services_config, tmp_path_factory, s3, "archive-faults")


def _archiver(tiers: Tiers) -> Archiver:
    health = ArchiverHealth(path=tiers.state_dir / LAST_RUN_FILE)
    archiver = Archiver(tiers.config, HotTier(tiers.http), tiers.warm, tiers.cold, health=health)
    archiver.prepare()
    return archiver


def _history(symbol: str) -> HistoryConfig:
    return HistoryConfig(exchanges=("bybit",), symbols=(symbol,), trades_per_day=200)


def _cold_day(tiers: Tiers, spec: TableSpec, day: date) -> pa.Table | None:
    data = tiers.cold.read_partition(spec.table, "bybit", day)
    return conform(spec, decode(data)) if data is not None else None


# --- item 2: every column is verified before a drop ----------------------------------------


def test_a_price_changed_in_the_warm_tier_fails_verification_and_keeps_the_source(
    tiers: Tiers, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = utc_today() - timedelta(days=20)
    load(tiers, _history("ALTP-USDT"), day, day)
    hot = HotTier(tiers.http)
    source = row_checksum(TRADES, hot.read_day(TRADES, day))
    stage_days = WarmTier.stage_days

    def stage_then_alter_one_price(self: WarmTier, spec: TableSpec, rows: pa.Table) -> None:
        stage_days(self, spec, rows)
        if spec is TRADES:  # the destination now holds one price 0.01 off
            stage = "default.trades__stage"
            first = self.client.query(f"SELECT trade_id FROM {stage} ORDER BY ts LIMIT 1")
            self.client.command(
                f"ALTER TABLE {stage} UPDATE price = price + 0.01 "
                "WHERE trade_id = {id:String} SETTINGS mutations_sync = 2",
                parameters={"id": first.result_rows[0][0]},
            )

    monkeypatch.setattr(WarmTier, "stage_days", stage_then_alter_one_price)
    archiver = _archiver(tiers)
    report = archiver.run_once()

    failed = [f for f in report.failed if f.table == TRADES.table]
    assert [(f.hop, f.day) for f in failed] == [("hot->warm", day.isoformat())], report.failed
    assert "the staged day" in failed[0].error
    assert "the source is kept" in failed[0].error
    assert day in hot.partitions(TRADES)
    assert row_checksum(TRADES, hot.read_day(TRADES, day)) == source
    assert day not in tiers.warm.partitions(TRADES)  # the stage was never swapped in
    assert day in tiers.warm.partitions(QUOTES)
    assert day not in hot.partitions(QUOTES)
    ok, detail = archiver.health.snapshot()
    assert not ok
    assert detail["last_run"]["failed"] == 1

    monkeypatch.undo()  # the next run retries the day
    again = archiver.run_once()
    assert again.failed == []
    assert row_checksum(TRADES, tiers.warm.read_day(TRADES, day)) == source
    assert day not in hot.partitions(TRADES)
    assert archiver.health.snapshot()[0]


def test_a_null_changed_in_the_cold_file_fails_verification_and_keeps_the_warm_day(
    tiers: Tiers, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = utc_today() - timedelta(days=390)  # past both horizons: hot -> warm -> cold
    load(tiers, _history("ALTN-USDT"), day, day)
    hot = HotTier(tiers.http)
    source = row_checksum(QUOTES, hot.read_day(QUOTES, day))
    write_partition = tiers.cold.write_partition

    def write_with_one_null_filled(table: str, exchange: str, on: date, data: bytes) -> str:
        if table == QUOTES.table:  # the first quote of a day has no last price: give it one
            rows = decode(data)
            values = rows.column("last_px").to_pylist()
            values[values.index(None)] = 1.0
            index = rows.schema.get_field_index("last_px")
            rows = rows.set_column(index, "last_px", pa.array(values, pa.float64()))
            data = encode_partition(QUOTES, rows, checksum=file_checksum(read_metadata(data)))
        return write_partition(table, exchange, on, data)

    monkeypatch.setattr(tiers.cold, "write_partition", write_with_one_null_filled)
    archiver = _archiver(tiers)
    report = archiver.run_once()

    failed = [(f.hop, f.table, f.day) for f in report.failed]
    assert failed == [("warm->cold", "quotes", day.isoformat())], report.failed
    assert day in tiers.warm.partitions(QUOTES)  # kept: the cold file is not what was copied
    assert row_checksum(QUOTES, tiers.warm.read_day(QUOTES, day)) == source
    assert day in tiers.warm.partitions(TRADES) or _cold_day(tiers, TRADES, day) is not None

    monkeypatch.undo()
    again = archiver.run_once()
    assert again.failed == []
    assert day not in tiers.warm.partitions(QUOTES)
    cold = _cold_day(tiers, QUOTES, day)
    assert cold is not None
    assert row_checksum(QUOTES, cold) == source


# --- item 1: QuestDB's WAL is applied before a move -----------------------------------------


def _candle(tiers: Tiers, symbol: str, day: date) -> list[object]:
    answer = tiers.http.exec(
        "SELECT exchange, symbol, interval, ts, open, high, low, close, volume, trades, closed "
        f"FROM candles WHERE symbol = '{symbol}' AND ts IN '{day.isoformat()}' "
        "ORDER BY ts LIMIT 1"
    )
    row: list[object] = answer["dataset"][0]
    return row


def _update_candle(tiers: Tiers, symbol: str, day: date) -> float:
    """Commit an update of the day's first bar (same key, a new high, not closed): the row
    count stays the same. Returns the new high."""
    exchange, _, interval, ts, open_, high, low, close, volume, trades, _closed = _candle(
        tiers, symbol, day
    )
    new_high = float(str(high)) + 1.0
    tiers.http.exec(
        "INSERT INTO candles (exchange, symbol, interval, ts, open, high, low, close, "
        f"volume, trades, closed) VALUES ('{exchange}', '{symbol}', '{interval}', '{ts}', "
        f"{open_}, {new_high}, {low}, {close}, {volume}, {trades}, false)"
    )
    return new_high


def test_a_suspended_wal_fails_the_table_and_an_unapplied_candle_update_is_not_lost(
    tiers: Tiers,
) -> None:
    symbol, day = "WALX-USDT", utc_today() - timedelta(days=25)
    load(tiers, _history(symbol), day, day)
    tiers.http.exec("ALTER TABLE candles SUSPEND WAL")
    try:
        updated_high = _update_candle(tiers, symbol, day)  # committed, not applied
        run = archive(tiers, "--once")
    finally:
        tiers.http.exec("ALTER TABLE candles RESUME WAL")
    assert run.returncode == 1, run.stdout + run.stderr
    failures = [line for line in run.stderr.splitlines() if line.startswith("FAILED")]
    assert len(failures) == 1, run.stderr
    assert "candles" in failures[0]
    assert "suspended" in failures[0]
    hot = HotTier(tiers.http)
    assert day not in hot.partitions(TRADES)
    assert day in tiers.warm.partitions(TRADES)

    wait_applied(tiers)
    assert _candle(tiers, symbol, day)[5] == updated_high  # applied now, never dropped
    applied = row_checksum(CANDLES, hot.read_day(CANDLES, day))
    rerun = archive(tiers, "--once")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert day not in hot.partitions(CANDLES)
    assert row_checksum(CANDLES, tiers.warm.read_day(CANDLES, day)) == applied


def test_a_candle_updated_during_the_move_keeps_its_day_for_the_next_run(
    tiers: Tiers, monkeypatch: pytest.MonkeyPatch
) -> None:
    symbol, day = "UPDT-USDT", utc_today() - timedelta(days=35)
    load(tiers, _history(symbol), day, day)
    commit_days = WarmTier.commit_days
    updated: list[float] = []

    def commit_then_update(self: WarmTier, spec: TableSpec, days: list[date]) -> None:
        commit_days(self, spec, days)
        if spec is CANDLES:  # after the export, before the drop: a bar's late update
            updated.append(_update_candle(tiers, symbol, day))

    monkeypatch.setattr(WarmTier, "commit_days", commit_then_update)
    archiver = _archiver(tiers)
    report = archiver.run_once()
    moves = [m for m in report.moved if (m.table, m.day) == (CANDLES.table, day)]
    assert len(moves) == 1, report.moved
    assert not moves[0].dropped
    assert "changed during the move" in moves[0].note
    hot = HotTier(tiers.http)
    assert day in hot.partitions(CANDLES)
    assert _candle(tiers, symbol, day)[5] == updated[0]

    monkeypatch.undo()
    applied = row_checksum(CANDLES, hot.read_day(CANDLES, day))
    again = archiver.run_once()
    assert again.failed == []
    assert day not in hot.partitions(CANDLES)
    assert row_checksum(CANDLES, tiers.warm.read_day(CANDLES, day)) == applied


# --- item 4: one failing table or day does not end a run ------------------------------------


def test_a_failing_table_is_counted_shown_and_retried_while_the_rest_moves(
    tiers: Tiers,
) -> None:
    day = utc_today() - timedelta(days=30)
    load(tiers, _history("FAIL-USDT"), day, day)
    hot = HotTier(tiers.http)
    source = row_checksum(TRADES, hot.read_day(TRADES, day))
    others = {
        (s.table, day.isoformat()) for s in SPECS if s is not TRADES and day in hot.partitions(s)
    }
    assert others, "the generated day has only trades"
    # A real store error: the staging table no longer has the warm table's structure, so
    # ClickHouse refuses REPLACE PARTITION (not one of our errors: a store's own).
    tiers.warm.client.command("ALTER TABLE default.trades__stage ADD COLUMN extra Int8")
    try:
        run = archive(tiers, "--once", "--json")
        status = archive(tiers, "status", "--json")
        archiver = _archiver(tiers)
        archiver.run_once()
        healthy, detail = archiver.health.snapshot()
    finally:
        tiers.warm.client.command("ALTER TABLE default.trades__stage DROP COLUMN extra")
    assert run.returncode == 1, run.stdout + run.stderr
    body = json.loads(run.stdout)
    assert [(f["table"], f["day"]) for f in body["failed"]] == [("trades", day.isoformat())]
    moved = {(m["table"], m["day"]) for m in body["moved"]}
    assert others <= moved
    assert day in hot.partitions(TRADES)

    assert status.returncode == 0, status.stderr
    last_run = json.loads(status.stdout)["last_run"]
    assert last_run["ok"] is False
    assert last_run["failed"] == 1
    assert last_run["failures"][0]["table"] == "trades"
    assert last_run["failures"][0]["day"] == day.isoformat()
    assert not healthy
    assert detail["last_run"]["failures"][0]["table"] == "trades"

    rerun = archive(tiers, "--once")  # the store is repaired: the day is retried and moves
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert day not in hot.partitions(TRADES)
    assert row_checksum(TRADES, tiers.warm.read_day(TRADES, day)) == source
    text = archive(tiers, "status")
    assert "0 failed, ok" in text.stdout, text.stdout


# --- item 3: one archiver at a time ----------------------------------------------------------


def _healthz(port: int) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
        body: dict[str, object] = json.loads(answer.read())
    return body


def _wait_healthz(port: int, first: subprocess.Popen[str]) -> dict[str, object]:
    deadline = time.monotonic() + 120
    while True:
        assert first.poll() is None, "the first archiver exited"
        try:
            return _healthz(port)
        except OSError:
            assert time.monotonic() < deadline, "the first archiver never served /healthz"
            time.sleep(0.2)


def test_a_second_archiver_exits_with_one_line_and_a_killed_one_leaves_no_lock(
    tiers: Tiers,
) -> None:
    port = process.free_port()
    argv, env = archive_command(tiers, "--metrics-port", str(port))
    first = subprocess.Popen(  # the nightly loop: holds the lock while it waits
        argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True
    )
    try:
        health = _wait_healthz(port, first)
        for args in (("--once",), ("--metrics-port", "0")):  # a run, a second nightly loop
            second = archive(tiers, *args, timeout_s=120)
            assert second.returncode == 2, (args, second.stdout, second.stderr)
            lines = second.stderr.strip().splitlines()
            assert len(lines) == 1, second.stderr
            assert f"another archiver holds the lock (pid {first.pid} since " in lines[0]
            assert second.stdout == ""
        assert (health["status"], health["loop"]) == ("ok", "waiting"), health
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    after = archive(tiers, "--once", timeout_s=300)  # the kernel released the lock
    assert after.returncode == 0, after.stdout + after.stderr


# --- item 5: the nightly loop cannot die silently --------------------------------------------


async def test_the_nightly_loop_outlives_a_run_that_raises_and_healthz_tells(
    tiers: Tiers, monkeypatch: pytest.MonkeyPatch
) -> None:
    archiver = _archiver(tiers)
    waits = iter([0.01, 0.01])
    monkeypatch.setattr(runner, "seconds_until", lambda _at, _now: next(waits, 3600.0))
    partitions = archiver.hot.partitions
    calls = 0

    def fails_once(spec: TableSpec) -> dict[date, int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a store's surprise")
        return partitions(spec)

    monkeypatch.setattr(archiver.hot, "partitions", fails_once)
    seen: list[tuple[bool, dict[str, object]]] = []
    run_finished = ArchiverHealth.run_finished

    def record(self: ArchiverHealth, *args: object) -> None:
        run_finished(self, *args)  # type: ignore[arg-type]
        seen.append(self.snapshot())

    monkeypatch.setattr(ArchiverHealth, "run_finished", record)
    stop = asyncio.Event()
    loop = asyncio.create_task(archiver.run_nightly(stop))
    deadline = time.monotonic() + 120
    while len(seen) < 2 or archiver.health.loop != "waiting":
        assert not loop.done(), loop
        assert time.monotonic() < deadline, seen
        await asyncio.sleep(0.02)
    (first_ok, first), (second_ok, _second) = seen
    assert not first_ok
    last_run = first["last_run"]
    assert isinstance(last_run, dict)
    assert "RuntimeError: a store's surprise" in last_run["error"]
    assert second_ok
    assert archiver.health.snapshot()[0]
    stop.set()
    await loop
    assert archiver.health.loop == "stopped"


def test_a_dead_nightly_loop_is_unhealthy_and_the_process_exits_non_zero(
    tiers: Tiers, monkeypatch: pytest.MonkeyPatch
) -> None:
    archiver = _archiver(tiers)

    def broken(_at: str, _now: datetime) -> float:
        raise ValueError("a bug in the schedule")

    monkeypatch.setattr(runner, "seconds_until", broken)
    with pytest.raises(ValueError, match="a bug in the schedule"):
        asyncio.run(archiver.run_nightly(asyncio.Event()))
    healthy, detail = archiver.health.snapshot()
    assert not healthy
    assert detail["loop"] == "dead: ValueError: a bug in the schedule"
    assert cli_archive._run_nightly(archiver, tiers.config, 0) == 1
