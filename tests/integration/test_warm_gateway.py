"""The warm gateway: the real chdb engine in its own process, reached with clickhouse-connect's
HTTP client exactly as a ClickHouse server is, from as many processes as like."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import clickhouse_connect
import pyarrow as pa
import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError
from clickhouse_connect.driver.summary import QuerySummary

from marketstream.config import PipelineConfig
from marketstream.errors import ServiceError
from marketstream.services import process
from marketstream.services.checks import clickhouse_error
from marketstream.services.gateway_process import spawn_warm_server
from marketstream.services.manager import services_status, start_services, stop_services
from marketstream.services.state import StateLayout, load_record
from marketstream.tiers import clickhouse

pytestmark = pytest.mark.integration

T0 = 1_732_180_000_123_456_789  # nanoseconds must survive the trip
START_TIMEOUT_S = 60.0
WORKER_TIMEOUT_S = 120.0


def _table(client: Client, name: str, columns: str, order_by: str) -> None:
    client.command(f"DROP TABLE IF EXISTS {name}")
    client.command(f"CREATE TABLE {name} ({columns}) ENGINE = MergeTree ORDER BY {order_by}")


def test_mergetree_arrow_in_and_out(warm_gateway: str) -> None:
    client = clickhouse.connect(warm_gateway)  # the project's own connect(), http:// DSN
    _table(
        client,
        "gw_trades",
        "symbol LowCardinality(String), ts DateTime64(9, 'UTC'), price Float64, "
        "size Nullable(Float64), levels Array(Float64)",
        "(symbol, ts)",
    )
    table = pa.table(
        {
            "symbol": ["BTC-USDT", "ETH-USDT", "BTC-USDT"],
            "ts": pa.array([T0, T0 + 1, T0 + 86_400 * 10**9], pa.timestamp("ns", tz="UTC")),
            "price": [97250.1, 3100.5, 97251.0],
            "size": [0.015, None, 1e-8],
            "levels": [[1.0, 2.0], [], [3.5]],
        }
    )
    summary = client.insert_arrow("gw_trades", table)
    assert summary.written_rows == 3
    out = client.query_arrow(
        "SELECT symbol, toUnixTimestamp64Nano(ts) AS ts_ns, price, size, levels "
        "FROM gw_trades ORDER BY ts"
    )
    assert out.column("ts_ns").to_pylist() == [T0, T0 + 1, T0 + 86_400 * 10**9]
    assert out.column("symbol").to_pylist() == ["BTC-USDT", "ETH-USDT", "BTC-USDT"]
    assert out.column("size").to_pylist() == [0.015, None, 1e-8]
    assert out.column("levels").to_pylist() == [[1.0, 2.0], [], [3.5]]
    client.close()


def test_rows_parameters_and_command_results(warm_gateway: str) -> None:
    client = clickhouse.connect(warm_gateway)
    _table(client, "gw_candles", "symbol String, ts Int64, close Float64", "(symbol, ts)")
    rows = [["BTC-USDT", T0, 37000.5], ["ETH-USDT", T0 + 60, 2050.25]]
    summary = client.insert("gw_candles", rows, column_names=["symbol", "ts", "close"])
    assert summary.written_rows == 2  # a Native body, lz4-compressed by the client's default
    result = client.query("SELECT symbol, ts, close FROM gw_candles ORDER BY symbol")
    assert [list(row) for row in result.result_rows] == rows
    bound = client.query(
        "SELECT close FROM gw_candles WHERE symbol = {symbol:String}",
        parameters={"symbol": "ETH-USDT"},
    )
    assert bound.result_rows == [(2050.25,)]
    assert client.query("SELECT * FROM gw_candles LIMIT 0").column_names == (
        "symbol",
        "ts",
        "close",
    )
    assert client.command("SELECT count() FROM gw_candles") == 2
    assert client.command("SELECT symbol FROM gw_candles WHERE 0") == ""  # a result, no rows
    assert isinstance(client.command("OPTIMIZE TABLE gw_candles FINAL"), QuerySummary)
    assert client.raw_query("SELECT 1 AS one FORMAT JSONEachRow") == b'{"one":1}\n'
    with client.query_row_block_stream("SELECT number FROM numbers(100000)") as stream:
        assert sum(len(block) for block in stream) == 100_000
    client.close()
    form = clickhouse_connect.get_client(dsn=warm_gateway, form_encode_query_params=True)
    assert form.query("SELECT {n:UInt32} + 1", parameters={"n": 41}).result_rows == [(42,)]
    form.close()


@pytest.mark.parametrize("compress", [True, False, "lz4", "zstd", "gzip"])
def test_every_client_compression_is_accepted(warm_gateway: str, compress: bool | str) -> None:
    client = clickhouse_connect.get_client(dsn=warm_gateway, compress=compress)
    table = f"gw_compress_{str(compress).lower()}"
    _table(client, table, "n UInt64, s String", "n")
    client.insert(table, [[n, f"row {n}"] for n in range(5000)], column_names=["n", "s"])
    assert client.command(f"SELECT count(), sum(n) FROM {table}") == ["5000", "12497500"]
    client.close()


def test_bad_sql_is_a_database_error_with_code_and_name(warm_gateway: str) -> None:
    client = clickhouse.connect(warm_gateway)
    with pytest.raises(DatabaseError, match=r"Code: 62\. DB::Exception: Syntax error") as bad:
        client.command("SELEC 1")
    assert (bad.value.code, bad.value.name) == (62, "SYNTAX_ERROR")
    with pytest.raises(DatabaseError, match="UNKNOWN_TABLE") as missing:
        client.insert_arrow("gw_no_such_table", pa.table({"n": [1]}))
    assert missing.value.code == 60
    _table(client, "gw_typed", "n UInt64", "n")
    with pytest.raises(DatabaseError) as bad_data:
        client.raw_insert("gw_typed", ["n"], b"not a number\n", fmt="TabSeparated")
    assert bad_data.value.code is not None
    assert client.command("SELECT count() FROM gw_typed") == 0  # nothing half-written
    assert client.command("SELECT 1") == 1  # the connection carries on after errors
    client.close()


def test_sessions_keep_use_and_set_apart(warm_gateway: str) -> None:
    first, second = clickhouse.connect(warm_gateway), clickhouse.connect(warm_gateway)
    first.command("CREATE DATABASE IF NOT EXISTS gw_other")
    first.command("USE gw_other")
    first.command("SET max_block_size = 1234")
    assert first.command("SELECT currentDatabase()") == "gw_other"
    assert second.command("SELECT currentDatabase()") == "default"
    setting = "SELECT getSetting('max_block_size')"
    assert first.command(setting) == 1234
    assert second.command(setting) != 1234
    assert first.command(setting, settings={"max_block_size": 99}) == 99  # this request only
    assert first.command(setting) == 1234
    first.close()
    second.close()


WORKER = """
import sys
import pyarrow as pa
from marketstream.tiers import clickhouse

client = clickhouse.connect(sys.argv[1])
table = sys.argv[2]
client.command(f"DROP TABLE IF EXISTS {table}")
client.command(f"CREATE TABLE {table} (n UInt64, s String) ENGINE = MergeTree ORDER BY n")
print("ready", flush=True)
sys.stdin.readline()  # the test starts both workers together
batch = pa.table({"n": pa.array(range(1000), pa.uint64()), "s": [str(n) for n in range(1000)]})
for _ in range(20):
    client.insert_arrow(table, batch)
    client.query_arrow(f"SELECT n, s FROM {table} WHERE n < 10")
print(client.command(f"SELECT count() FROM {table}"), flush=True)
"""


def test_two_processes_write_and_read_at_once(warm_gateway: str) -> None:
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, warm_gateway, f"gw_worker_{n}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(2)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert worker.stdout.readline().strip() == "ready"
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        reader = clickhouse.connect(warm_gateway)  # and this process reads meanwhile
        for _ in range(20):
            assert reader.command("SELECT count() FROM system.tables WHERE name LIKE 'gw_worker_%'")
        reader.close()
        results = [worker.communicate(timeout=WORKER_TIMEOUT_S) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    for worker, (out, err) in zip(workers, results, strict=True):
        assert worker.returncode == 0, err
        assert out.strip() == "20000"


def _post(dsn: str, sql: str, query: str = "") -> tuple[int, dict[str, str], bytes]:
    url = f"{dsn}/?{query}"  # the gateway's http:// DSN
    request = urllib.request.Request(url, data=sql.encode(), method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_http_answers_look_like_clickhouse(warm_gateway: str) -> None:
    with urllib.request.urlopen(f"{warm_gateway}/ping", timeout=10) as ping:  # noqa: S310
        assert ping.read() == b"Ok.\n"
    status, headers, body = _post(warm_gateway, "SELECT 1 AS one", "query_id=gw-q1")
    assert (status, body) == (200, b"1\n")
    assert headers["X-ClickHouse-Format"] == "TabSeparated"
    assert headers["X-ClickHouse-Query-Id"] == "gw-q1"
    assert headers["X-ClickHouse-Timezone"]
    assert json.loads(headers["X-ClickHouse-Summary"])["result_rows"] == "1"
    status, headers, body = _post(warm_gateway, "SELECT * FROM gw_missing")
    assert status == 500
    assert headers["X-ClickHouse-Exception-Code"] == "60"
    assert body.startswith(b"Code: 60. DB::Exception: ")
    status, headers, body = _post(warm_gateway, "SELECT 1", "compress=1")
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (501, "48")


def test_a_session_runs_one_statement_at_a_time(warm_gateway: str) -> None:
    session = "session_id=gw-busy"
    assert _post(warm_gateway, "SELECT 1", session)[0] == 200
    answers: list[tuple[int, dict[str, str], bytes]] = []
    slow = threading.Thread(
        target=lambda: answers.append(_post(warm_gateway, "SELECT sleep(2)", session))
    )
    slow.start()
    time.sleep(0.5)  # the slow statement holds the session by now
    status, headers, _ = _post(warm_gateway, "SELECT 1", session)
    slow.join()
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (500, "373")  # SESSION_IS_LOCKED
    assert answers[0][0] == 200
    assert _post(warm_gateway, "SELECT 1", session)[0] == 200  # free again


def test_idle_sessions_expire(warm_gateway: str) -> None:
    session = "session_id=gw-idle&session_timeout=1"
    assert _post(warm_gateway, "SET max_block_size = 77", session)[0] == 200
    assert _post(warm_gateway, "SELECT getSetting('max_block_size')", session)[2] == b"77\n"
    time.sleep(2.5)  # the timeout, and the gateway's once-a-second look for idle sessions
    status, headers, _ = _post(warm_gateway, "SELECT 1", f"{session}&session_check=1")
    assert (status, headers["X-ClickHouse-Exception-Code"]) == (500, "372")  # SESSION_NOT_FOUND


def test_status_check_answers_through_the_gateway(warm_gateway: str) -> None:
    assert clickhouse_error(warm_gateway) is None


def test_the_gateway_owns_its_directory_and_keeps_data_across_restarts(tmp_path: Path) -> None:
    layout = StateLayout(tmp_path)

    def start() -> str:
        server = process.started(
            spawn_warm_server(
                layout.data_dir("clickhouse"),
                port=process.free_port(),
                log_path=layout.log_path("clickhouse"),
                pid_path=layout.pid_path("clickhouse"),
            ),
            START_TIMEOUT_S,
        )
        servers.append(server.process)
        return server.url

    servers: list[process.ServiceProcess] = []
    try:
        first = clickhouse.connect(start())
        _table(first, "kept", "n UInt64", "n")
        first.insert("kept", [[1], [2], [3]], column_names=["n"])
        with pytest.raises(ServiceError, match=rf"engine in use .*pid {servers[0].pid} holds it"):
            start()  # a second gateway on the same directory exits, naming the holder
        assert process.stop(servers[0].pid, servers[0].marker)  # SIGTERM: a clean close
        again = clickhouse.connect(start())
        assert again.command("SELECT sum(n) FROM kept") == 6
    finally:
        for server in servers:
            process.stop(server.pid, server.marker)


def test_services_start_runs_the_gateway_and_stop_ends_it(
    tmp_path: Path, pipeline_config: PipelineConfig
) -> None:
    unreachable = {  # served elsewhere: only the gateway and the cold directory start here
        "redis": "redis://127.0.0.1:1/0",
        "questdb_http": "http://127.0.0.1:1",
        "questdb_pg": "postgresql://127.0.0.1:1/qdb",
        "questdb_ilp": "tcp://127.0.0.1:1",
    }
    config = pipeline_config.model_copy(
        update={"endpoints": pipeline_config.endpoints.model_copy(update=unreachable)}
    )
    state = tmp_path / "state"
    try:
        status = start_services(config, state)
        url = status.services["clickhouse"].url
        assert url is not None
        assert url.startswith(f"http://{process.LOOPBACK}:")
        assert status.services["clickhouse"].answering, status.services["clickhouse"].error
        record = load_record(state)
        assert record is not None
        assert list(record.processes) == ["clickhouse"]
        pid = record.processes["clickhouse"].pid
        start_services(config, state)  # idempotent: the running gateway is reused
        again = load_record(state)
        assert again is not None
        assert again.processes["clickhouse"].pid == pid
        assert again.endpoints["clickhouse"] == url
    finally:
        lines = stop_services(config, state)
    assert f"clickhouse: stopped (pid {pid})" in lines
    assert not process.is_running(pid)
    after = services_status(config, state).services["clickhouse"]
    assert not after.answering
    assert after.error is not None
    assert after.error.startswith("services stopped")
