"""Each local service is the real thing: written through the client the pipeline uses, read back."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client
from questdb import Sender, TimestampNanos

from marketstream.config import S3Config, ServicesConfig
from marketstream.services.checks import clickhouse_error, cold_error
from marketstream.services.process import LOOPBACK, tcp_error
from marketstream.services.state import ENDPOINT_NAMES, StateLayout, load_record
from marketstream.tiers import redis_bus
from marketstream.tiers.clickhouse import ENGINE_IN_USE, engine_holder
from marketstream.tiers.questdb import QuestDBHttp
from tests.integration.endpoints import CONFIG_FILE, REPO, QuestDBEndpoints, S3Endpoint

pytestmark = pytest.mark.integration

WAL_APPLY_TIMEOUT_S = 30.0  # QuestDB applies WAL rows asynchronously; bounded, not a timing check
CLI_TIMEOUT_S = 300.0


def test_redis_streams_and_keys(redis_url: str) -> None:
    client = redis_bus.connect(redis_url)
    entry_id = client.xadd("md:trades:test", {"price": "37000.5", "size": "0.25", "side": "buy"})
    entries = client.xrange("md:trades:test")
    assert entries == [(entry_id, {b"price": b"37000.5", b"size": b"0.25", b"side": b"buy"})]
    client.set("price:test:BTC-USDT", '{"price":37000.5}')
    assert client.get("price:test:BTC-USDT") == b'{"price":37000.5}'
    assert client.config_get("appendonly") == {"appendonly": "yes"}  # durable like production
    client.close()


def _count_when_applied(http: QuestDBHttp, count_sql: str, expected: int) -> int:
    deadline = time.monotonic() + WAL_APPLY_TIMEOUT_S
    while True:
        count = int(http.exec(count_sql)["dataset"][0][0])
        if count >= expected or time.monotonic() >= deadline:
            return count
        time.sleep(0.1)


def test_questdb_ilp_over_http_into_a_wal_table(questdb: QuestDBEndpoints) -> None:
    questdb.http.exec(
        "CREATE TABLE it_trades (exchange SYMBOL, symbol SYMBOL, price DOUBLE, size DOUBLE, "
        "trade_id VARCHAR, ts TIMESTAMP) TIMESTAMP(ts) PARTITION BY DAY WAL"
    )
    first_ns = 1_700_000_000_123_456_000
    with Sender.from_conf(questdb.ilp_conf) as sender:
        for offset, (price, trade_id) in enumerate([(37000.5, "t-1"), (37001.25, "t-2")]):
            sender.row(
                "it_trades",
                symbols={"exchange": "binance", "symbol": "BTC-USDT"},
                columns={"price": price, "size": 0.25, "trade_id": trade_id},
                at=TimestampNanos(first_ns + offset * 1_000),
            )
        sender.flush()

    assert _count_when_applied(questdb.http, "SELECT count() FROM it_trades", 2) == 2
    answer = questdb.http.exec(
        "SELECT exchange, symbol, price, size, trade_id, cast(ts AS LONG) "
        "FROM it_trades ORDER BY ts"
    )
    assert answer["dataset"] == [
        ["binance", "BTC-USDT", 37000.5, 0.25, "t-1", first_ns // 1_000],
        ["binance", "BTC-USDT", 37001.25, 0.25, "t-2", first_ns // 1_000 + 1],
    ]


def test_questdb_logs_only_the_configured_levels(
    questdb: QuestDBEndpoints, service_layout: StateLayout, services_config: ServicesConfig
) -> None:
    """The default leaves INFO out (it logs every WAL commit); advisories at start-up remain."""
    assert "INFO" not in services_config.questdb.log_levels.split(",")
    questdb.http.exec("CREATE TABLE IF NOT EXISTS it_levels (x LONG, ts TIMESTAMP) TIMESTAMP(ts)")
    lines = service_layout.log_path("questdb").read_text(errors="replace").splitlines()
    markers = {line.split(" ", 2)[1] for line in lines if re.match(r"^\d{4}-\S+Z [A-Z] ", line)}
    assert "A" in markers  # the log is there and parsed
    assert "I" not in markers


def test_questdb_runs_with_the_configured_server_conf(
    questdb: QuestDBEndpoints, services_config: ServicesConfig
) -> None:
    """Every setting of services.questdb.server_conf is one QuestDB knows and took from us
    (a misspelt key would be ignored by QuestDB without a word)."""
    wanted = services_config.questdb.server_conf
    assert wanted, "configs/pipeline.yaml sets QuestDB's idle workers: none found"
    answer = questdb.http.exec("SHOW PARAMETERS")
    names = [c["name"] for c in answer["columns"]]
    rows = {row[names.index("property_path")]: row for row in answer["dataset"]}
    for key, value in wanted.items():
        assert key in rows, f"QuestDB has no setting {key}"
        row = rows[key]
        assert row[names.index("value_source")] == "env", key
        expected = str(value).lower() if isinstance(value, bool) else str(value)
        assert row[names.index("value")] == expected, key


def test_questdb_pg_and_ilp_tcp_ports_listen(questdb: QuestDBEndpoints) -> None:
    assert tcp_error(LOOPBACK, questdb.pg_port) is None
    assert tcp_error(LOOPBACK, questdb.ilp_tcp_port) is None


def test_clickhouse_mergetree_insert_and_read_back(clickhouse: Client) -> None:
    clickhouse.command(
        "CREATE TABLE it_candles (symbol LowCardinality(String), ts DateTime64(9, 'UTC'), "
        "close Float64) ENGINE = MergeTree ORDER BY (symbol, ts)"
    )
    # int64 nanoseconds, as every tier stores time
    rows = [
        ["BTC-USDT", 1_700_000_000_123_456_789, 37000.5],
        ["ETH-USDT", 1_700_000_060 * 10**9, 2050.25],
    ]
    clickhouse.insert("it_candles", rows, column_names=["symbol", "ts", "close"])
    result = clickhouse.query(
        "SELECT symbol, toUnixTimestamp64Nano(ts), close FROM it_candles ORDER BY symbol"
    )
    assert [list(row) for row in result.result_rows] == rows


def test_clickhouse_path_held_by_another_process_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "engine"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, clickhouse_connect\n"
            f"client = clickhouse_connect.get_client(dsn='chdb://{path}')\n"
            "client.command('SELECT 1'); print('open', flush=True); sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "open"
        assert clickhouse_error(f"chdb://{path}") == ENGINE_IN_USE
    finally:
        holder.communicate(timeout=60)
    # Released when the holder exits (not opened here: this process has the fixture's engine).
    assert engine_holder(path) is None


def test_s3_put_and_get_through_moto_server(s3: S3Endpoint) -> None:
    s3.client.create_bucket(Bucket="marketstream-cold")
    key = "trades/exchange=binance/date=2023-11-14/part-0.parquet"
    s3.client.put_object(Bucket="marketstream-cold", Key=key, Body=b"PAR1 test bytes")
    body = s3.client.get_object(Bucket="marketstream-cold", Key=key)["Body"].read()
    assert body == b"PAR1 test bytes"


def test_cold_s3_location_check_uses_head_bucket(
    s3: S3Endpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    s3.client.create_bucket(Bucket="cold-check")
    settings = S3Config(endpoint_url=s3.endpoint_url)
    assert cold_error("s3://cold-check/archive", settings) is None
    assert cold_error("s3://no-such-bucket/archive", settings) == (
        "bucket no-such-bucket: 404 (no such bucket)"
    )


# --- the `marketstream services` commands, as a user runs them -----------------------------


def _marketstream(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARKETSTREAM_")}
    return subprocess.run(
        [sys.executable, "-m", "marketstream", "--config", str(CONFIG_FILE), *args],
        cwd=REPO,  # services.cache_dir is relative: the jar cache of this checkout
        env=env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


def _recorded_pids(state: Path) -> dict[str, int]:
    record = load_record(state)
    assert record is not None
    return {name: p.pid for name, p in record.processes.items()}


def _alive(pid: int) -> bool:
    """True unless the pid is gone or a zombie (dead, waiting for its parent to reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_cli_start_status_stop(tmp_path: Path) -> None:
    state = tmp_path / "state"
    started = _marketstream("services", "start", "--state-dir", str(state))
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert len(started.stdout.splitlines()) == len(ENDPOINT_NAMES)
        assert "NOT answering" not in started.stdout

        status = _marketstream("services", "status", "--json", "--state-dir", str(state))
        assert status.returncode == 0, status.stdout + status.stderr
        report = json.loads(status.stdout)
        assert report["state_dir"] == str(state)
        assert list(report["services"]) == list(ENDPOINT_NAMES)
        for name, entry in report["services"].items():
            assert entry == {"url": entry["url"], "answering": True, "error": None}, name

        questdb_url = report["services"]["questdb_http"]["url"]
        assert QuestDBHttp(questdb_url).exec("SELECT 1")["dataset"] == [[1]]
        pids = _recorded_pids(state)
        assert sorted(pids) == ["clickhouse", "questdb", "redis"]
        assert all(_alive(pid) for pid in pids.values())
    finally:
        stopped = _marketstream("services", "stop", "--state-dir", str(state))
    assert stopped.returncode == 0, stopped.stderr
    assert all(not _alive(pid) for pid in pids.values())
    record = load_record(state)
    assert record is not None
    assert record.state == "stopped"

    after = _marketstream("services", "status", "--json", "--state-dir", str(state))
    assert after.returncode != 0
    assert json.loads(after.stdout)["services"]["redis"]["answering"] is False


def test_cli_second_start_reuses_running_services(tmp_path: Path) -> None:
    state = tmp_path / "state"
    try:
        first = _marketstream("services", "start", "--state-dir", str(state))
        assert first.returncode == 0, first.stdout + first.stderr
        pids = _recorded_pids(state)
        second = _marketstream("services", "start", "--state-dir", str(state))
        assert second.returncode == 0, second.stdout + second.stderr
        assert _recorded_pids(state) == pids
        assert second.stdout == first.stdout  # same endpoints, all answering
    finally:
        stopped = _marketstream("services", "stop", "--state-dir", str(state))
    assert stopped.returncode == 0, stopped.stderr
