"""The archiver end to end on real QuestDB, the ClickHouse engine (behind the warm gateway,
in its own process) and an S3 API server: 400 generated days tiered by one run, checked
day by day against the generator's truth, and kill -9 at each step of a move then a re-run.

The module has its own QuestDB and gateway: archiving moves every old day of every table,
and other tests' data (2021 recordings) must not be moved under them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from marketstream.archiver.days import day_start_ns, horizon_day
from marketstream.archiver.hot_side import HotTier
from marketstream.archiver.moves import FAILPOINT_ENV
from marketstream.archiver.warm_side import WarmTier
from marketstream.config import PipelineConfig, S3Config, ServicesConfig, load_config
from marketstream.generate.history import HistoryConfig, generate
from marketstream.generate.hot_load import load_history
from marketstream.schemas.arrow import conform, to_arrow
from marketstream.schemas.checksum import key_checksum
from marketstream.schemas.columns import SPEC_BY_TABLE, TRADES, TableSpec
from marketstream.services import process
from marketstream.services.questdb_server import QuestDBPorts, start_questdb
from marketstream.services.warm_server import GatewaySetup, start_warm_server
from marketstream.tiers import clickhouse
from marketstream.tiers.all_tiers import TieredQueries, ohlcv_from_trades
from marketstream.tiers.cold_parquet import decode
from marketstream.tiers.cold_store import ColdStore
from marketstream.tiers.hot_queries import HotQueries
from marketstream.tiers.hot_writer_questdb import wal_applied
from marketstream.tiers.questdb import QuestDBHttp
from tests.integration.endpoints import CONFIG_FILE, REPO, S3Endpoint

BUCKET = "archive-test"
DAYS = 400
Truth = dict[str, dict[date, tuple[int, int]]]


@dataclass
class Tiers:
    config: PipelineConfig
    environ: dict[str, str]  # for `marketstream archive` in a subprocess
    http: QuestDBHttp
    pg_url: str
    warm: WarmTier
    cold: ColdStore


@pytest.fixture(scope="module")
def tiers(
    services_config: ServicesConfig, tmp_path_factory: pytest.TempPathFactory, s3: S3Endpoint
) -> Iterator[Tiers]:
    root = tmp_path_factory.mktemp("archive")
    questdb = start_questdb(
        services_config,
        root / "questdb",
        ports=QuestDBPorts.pick(),
        log_path=root / "questdb.log",
        pid_path=root / "questdb.pid",
    )
    keys = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    gateway = start_warm_server(
        root / "clickhouse",
        port=process.free_port(),
        log_path=root / "gateway.log",
        pid_path=root / "gateway.pid",
        timeout_s=services_config.start_timeout_s,
        setup=GatewaySetup(  # s3() may read the cold bucket, with the engine's own keys
            cold=f"s3://{BUCKET}/cold", s3=S3Config(endpoint_url=s3.endpoint_url)
        ),
        env={**os.environ, **keys},
    )
    s3.client.create_bucket(Bucket=BUCKET)
    environ = {
        "MARKETSTREAM_ENDPOINTS__QUESTDB_HTTP": questdb.http_url,
        "MARKETSTREAM_ENDPOINTS__QUESTDB_PG": f"postgresql://127.0.0.1:{questdb.ports.pg}/qdb",
        "MARKETSTREAM_ENDPOINTS__CLICKHOUSE": gateway.url,
        "MARKETSTREAM_ENDPOINTS__COLD": f"s3://{BUCKET}/cold",
        "MARKETSTREAM_S3__ENDPOINT_URL": s3.endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    config = load_config(CONFIG_FILE, environ=environ)
    client = clickhouse.connect(gateway.url)
    try:
        yield Tiers(
            config=config,
            environ=environ,
            http=QuestDBHttp(questdb.http_url),
            pg_url=environ["MARKETSTREAM_ENDPOINTS__QUESTDB_PG"],
            warm=WarmTier(client),
            cold=ColdStore.from_location(f"s3://{BUCKET}/cold", config.s3, environ),
        )
    finally:
        client.close()
        process.stop(gateway.process.pid, gateway.process.marker)
        process.stop(questdb.process.pid, questdb.process.marker)


def _today() -> date:
    return datetime.now(UTC).date()


def _load(tiers: Tiers, history: HistoryConfig, start: date, end: date) -> Truth:
    summary = load_history(tiers.http, generate(history, start, end))
    _wait_applied(tiers)
    return summary.truth


def _wait_applied(tiers: Tiers) -> None:
    deadline = time.monotonic() + 60
    while not wal_applied(tiers.http):
        assert time.monotonic() < deadline, "QuestDB did not apply the generated rows in 60 s"
        time.sleep(0.05)


def _archive(
    tiers: Tiers, *args: str, failpoint: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETSTREAM_")}
    env |= tiers.environ
    if failpoint is not None:
        env[FAILPOINT_ENV] = failpoint
    return subprocess.run(
        [sys.executable, "-m", "marketstream", "archive", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def _hot_days(tiers: Tiers, spec: TableSpec) -> dict[date, tuple[int, int]]:
    hot = HotTier(tiers.http)
    return {day: key_checksum(spec, hot.read_day(spec, day)) for day in hot.partitions(spec)}


def _warm_days(tiers: Tiers, spec: TableSpec) -> dict[date, tuple[int, int]]:
    return {day: tiers.warm.day_checksum(spec, day) for day in tiers.warm.partitions(spec)}


def _cold_days(tiers: Tiers, spec: TableSpec) -> dict[date, tuple[int, int]]:
    days: dict[date, tuple[int, int]] = {}
    for part in tiers.cold.partitions(spec.table):
        data = tiers.cold.read_partition(spec.table, part.exchange, part.day)
        assert data is not None
        rows, checksum = key_checksum(spec, conform(spec, decode(data)))
        old_rows, old_checksum = days.get(part.day, (0, 0))
        days[part.day] = (old_rows + rows, (old_checksum + checksum) % 2**64)
    return days


def _assert_tiered(tiers: Tiers, truth: Truth) -> None:
    """Every day in exactly the tier its age says, holding exactly the generated rows."""
    now = datetime.now(UTC).timestamp() * 1e9
    hot_horizon = horizon_day(int(now), tiers.config.horizons.hot_days)
    warm_horizon = horizon_day(int(now), tiers.config.horizons.warm_days)
    for table, days in truth.items():
        spec = SPEC_BY_TABLE[table]
        hot, warm, cold = _hot_days(tiers, spec), _warm_days(tiers, spec), _cold_days(tiers, spec)
        assert not set(hot) & set(warm)
        assert not set(warm) & set(cold)
        assert not set(hot) & set(cold)
        assert all(day >= hot_horizon for day in hot), table
        assert all(warm_horizon <= day < hot_horizon for day in warm), table
        assert all(day < warm_horizon for day in cold), table
        found = hot | warm | cold
        assert found == {day: value for day, value in days.items() if value[0] > 0}, table


def test_one_run_tiers_400_days_and_every_day_matches_the_truth(tiers: Tiers) -> None:
    history = HistoryConfig(exchanges=("binance", "okx"), symbols=("BTC-USDT",), trades_per_day=100)
    end = _today()
    truth = _load(tiers, history, end - timedelta(days=DAYS - 1), end)

    dry = _archive(tiers, "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    run = _archive(tiers, "--once")
    assert run.returncode == 0, run.stdout + run.stderr

    _assert_tiered(tiers, truth)
    assert _cold_days(tiers, TRADES), "nothing reached the cold tier"
    # A query over the whole range stitches the three tiers into the generated trades.
    first, after = day_start_ns(end - timedelta(days=DAYS - 1)), day_start_ns(end + timedelta(1))
    with HotQueries.connect(tiers.pg_url) as hot:
        queries = TieredQueries(hot, HotTier(tiers.http), tiers.warm, tiers.cold)
        trades = queries.trades("okx", "BTC-USDT", first, after, limit=1_000_000)
        candles = queries.ohlcv("okx", "BTC-USDT", "1d", first, after)
    generated = pa.concat_tables(
        day.trades.filter(pc.equal(day.trades["exchange"], pa.scalar("okx")))
        for day in generate(history, end - timedelta(days=DAYS - 1), end)
    )
    assert key_checksum(TRADES, to_arrow(TRADES, trades)) == key_checksum(TRADES, generated)
    assert [t.ts for t in trades] == sorted(t.ts for t in trades)
    expected = ohlcv_from_trades(generated, "okx", "BTC-USDT", "1d")
    assert [(c.ts, c.high, c.low, c.trades) for c in candles] == [
        (c.ts, c.high, c.low, c.trades) for c in expected
    ]
    assert [c.volume for c in candles] == pytest.approx([c.volume for c in expected])

    # The *_all views: the warm table and the cold files, every generated trade once.
    in_views = tiers.warm.client.query("SELECT count() FROM trades_all").result_rows[0][0]
    assert in_views == sum(rows for day, (rows, _) in truth["trades"].items()) - sum(
        rows for rows, _ in _hot_days(tiers, TRADES).values()
    )

    status = _archive(tiers, "status", "--json")
    assert status.returncode == 0, status.stderr
    assert '"tier": "cold"' in status.stdout

    again = _archive(tiers, "--once", "--json")
    assert again.returncode == 0
    assert '"moved": []' in again.stdout


@pytest.mark.parametrize("step", ["copied", "verified", "dropped"])
def test_killed_after_each_step_a_rerun_completes_with_no_loss_or_duplicate(
    tiers: Tiers, step: str
) -> None:
    # A symbol of its own, on two old days: one for warm, one all the way to cold.
    history = HistoryConfig(
        exchanges=("bybit",), symbols=(f"K{step.upper()}-USDT",), trades_per_day=300
    )
    today = _today()
    truth: Truth = {}
    for day in (today - timedelta(days=30), today - timedelta(days=380)):
        for table, days in _load(tiers, history, day, day).items():
            truth.setdefault(table, {}).update(days)

    killed = _archive(tiers, "--once", failpoint=step)
    assert killed.returncode == -9, killed.stdout + killed.stderr
    rerun = _archive(tiers, "--once")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr

    for table, days in truth.items():
        spec = SPEC_BY_TABLE[table]
        for day, expected in days.items():
            assert _symbol_day(tiers, spec, day, history.symbols[0]) == expected, (table, day)
            in_tier = _warm_days if day > today - timedelta(days=365) else _cold_days
            assert day in in_tier(tiers, spec), (table, day)
            assert day not in HotTier(tiers.http).partitions(spec), (table, day)


def _symbol_day(tiers: Tiers, spec: TableSpec, day: date, symbol: str) -> tuple[int, int]:
    """(rows, checksum) of one symbol's rows of a day, summed over every tier that has any."""
    tables = [tiers.warm.read_day(spec, day)]
    hot = HotTier(tiers.http)
    if day in hot.partitions(spec):
        tables.append(hot.read_day(spec, day))
    for part in tiers.cold.partitions(spec.table):
        if part.day == day:
            data = tiers.cold.read_partition(spec.table, part.exchange, day)
            assert data is not None
            tables.append(conform(spec, decode(data)))
    rows = checksum = 0
    for table in tables:
        mine = table.filter(pc.equal(table.column("symbol"), pa.scalar(symbol)))
        n, c = key_checksum(spec, mine)
        rows, checksum = rows + n, (checksum + c) % 2**64
    return rows, checksum
