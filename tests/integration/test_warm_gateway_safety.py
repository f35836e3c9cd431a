"""The warm gateway refuses what a ClickHouse server would: real HTTP to a real gateway process.

Each test here failed against the gateway before issue #12: a GET ran CREATE TABLE,
file('/etc/hostname') answered, url() reached other hosts, a forged Host was served, bodies
and sessions had no bound, and the `*_all` views stored the S3 keys.
"""

from __future__ import annotations

import gzip
import http.client
import os
import socket
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from marketstream.config import S3Config, ServicesConfig, WarmGatewayConfig
from marketstream.schemas.arrow import arrow_schema
from marketstream.schemas.columns import SPECS
from marketstream.services import process
from marketstream.services.gateway_process import GatewaySetup, WarmServer, spawn_warm_server
from marketstream.tiers import clickhouse, clickhouse_tables
from marketstream.tiers.clickhouse_views import create_all_views_sql
from marketstream.tiers.cold_parquet import encode_partition
from marketstream.tiers.cold_store import ColdStore
from tests.integration.endpoints import S3Endpoint

pytestmark = pytest.mark.integration

LIMIT = 1 << 20  # max_body_bytes of these gateways
MAX_SESSIONS = 6
KEYS = {"AWS_ACCESS_KEY_ID": "AKIAGATEWAYTEST", "AWS_SECRET_ACCESS_KEY": "gateway-secret-42"}


@dataclass(frozen=True)
class Gateway:
    server: WarmServer
    cold: Path

    @property
    def port(self) -> int:
        return self.server.port


def _start(root: Path, services: ServicesConfig, setup: GatewaySetup, **env: str) -> WarmServer:
    return process.started(
        spawn_warm_server(
            root / "clickhouse",
            port=process.free_port(),
            log_path=root / "gateway.log",
            pid_path=root / "gateway.pid",
            setup=setup,
            env={**os.environ, **env},
        ),
        services.start_timeout_s,
    )


@pytest.fixture(scope="module")
def gateway(
    services_config: ServicesConfig, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("gateway-safety")
    cold = root / "cold"
    (cold / "numbers").mkdir(parents=True)
    (cold / "numbers" / "n.csv").write_text("1\n2\n3\n")
    limits = WarmGatewayConfig(
        max_body_bytes=LIMIT, max_sessions=MAX_SESSIONS, max_session_timeout_s=120
    )
    server = _start(root, services_config, GatewaySetup(cold=str(cold), limits=limits))
    yield Gateway(server, cold)
    process.stop(server.process.pid, server.process.marker)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def code(self) -> str | None:
        return self.headers.get("X-ClickHouse-Exception-Code")


def _request(
    port: int,
    method: str,
    sql: str = "",
    *,
    params: dict[str, str] | None = None,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    query = {**({"query": sql} if method == "GET" and sql else {}), **(params or {})}
    path = "/?" + urllib.parse.urlencode(query)
    connection = http.client.HTTPConnection(process.LOOPBACK, port, timeout=30)
    try:
        payload = body if body is not None else (sql.encode() if method == "POST" else None)
        connection.request(method, path, body=payload, headers=headers or {})
        response = connection.getresponse()
        return Answer(response.status, dict(response.getheaders()), response.read())
    finally:
        connection.close()


def _post(port: int, sql: str, **params: str) -> Answer:
    return _request(port, "POST", sql, params=params)


def _get(port: int, sql: str, **params: str) -> Answer:
    return _request(port, "GET", sql, params=params)


def _table_exists(port: int, name: str) -> bool:
    answer = _post(port, f"EXISTS TABLE {name}")
    assert answer.status == 200, answer.body
    return answer.body == b"1\n"


# --- 1. GET is read-only ------------------------------------------------------------------


def test_get_is_read_only_and_post_writes(gateway: Gateway) -> None:
    port = gateway.port
    refused = _get(port, "CREATE TABLE gw_by_get (n UInt8) ENGINE = Memory")
    assert (refused.status, refused.code) == (500, "164")
    assert b"(READONLY)" in refused.body
    assert not _table_exists(port, "gw_by_get")
    assert _get(port, "SELECT 40 + 2").body == b"42\n"  # reads still work over GET

    assert _post(port, "CREATE TABLE gw_by_post (n UInt8) ENGINE = Memory").status == 200
    assert _get(port, "INSERT INTO gw_by_post VALUES (1)").code == "164"
    assert _get(port, "DROP TABLE gw_by_post").code == "164"
    assert _post(port, "INSERT INTO gw_by_post VALUES (1)").status == 200
    assert _get(port, "SELECT count() FROM gw_by_post").body == b"1\n"


def test_get_in_a_session_reads_its_database_but_cannot_write(gateway: Gateway) -> None:
    port, session = gateway.port, {"session_id": f"gw-{uuid.uuid4().hex}"}
    assert _post(port, "CREATE DATABASE IF NOT EXISTS gw_sessions").status == 200
    assert _post(port, "USE gw_sessions", **session).status == 200
    assert _get(port, "SELECT currentDatabase()", **session).body == b"gw_sessions\n"
    refused = _get(port, "CREATE TABLE in_session (n UInt8) ENGINE = Memory", **session)
    assert refused.code == "164"
    assert _post(port, "CREATE TABLE in_session (n UInt8) ENGINE = Memory", **session).status == 200


# --- 2. file() and files: the cold directory only ----------------------------------------


def test_file_reads_the_cold_directory_only(gateway: Gateway) -> None:
    port, cold = gateway.port, gateway.cold
    inside = _post(port, f"SELECT sum(n) FROM file('{cold}/numbers/*.csv', 'CSV', 'n UInt8')")
    assert (inside.status, inside.body) == (200, b"6\n")
    for sql in (
        "SELECT * FROM file('/etc/hostname', 'LineAsString')",
        f"SELECT * FROM file('{cold}/../../../../etc/hostname', 'LineAsString')",
        f"SELECT * FROM file('{cold}/{{numbers/n.csv,../../../../etc/hostname}}', 'CSV')",
        "SELECT file('/etc/hostname')",  # the scalar function too
        "SELECT * FROM file(concat('/etc/', 'hostname'), 'LineAsString')",
        "SELECT * FROM file('hostname', 'LineAsString')",
        "INSERT INTO FUNCTION file('/tmp/gw-written.tsv', 'TSV') SELECT 1",
        "CREATE VIEW gw_sneaky AS SELECT * FROM file('/etc/hostname', 'LineAsString')",
    ):
        for answer in (_post(port, sql), _get(port, sql)):
            assert answer.status == 500, (sql, answer.body)
            assert answer.code in ("291", "164"), (sql, answer.body)
            assert b"vm\n" not in answer.body
    bound = _request(
        port,
        "POST",
        "SELECT * FROM file({path:String}, 'LineAsString')",
        params={"param_path": "/etc/hostname"},
    )
    assert bound.code == "291"
    assert not Path("/tmp/gw-written.tsv").exists()  # what the refusal prevented


def test_file_engines_infile_outfile_and_values_expressions_are_refused(gateway: Gateway) -> None:
    port = gateway.port
    assert _post(port, "CREATE TABLE IF NOT EXISTS gw_s (s String) ENGINE = Memory").status == 200
    cases = {
        "CREATE TABLE gw_f (s String) ENGINE = File(LineAsString, '/etc/hostname')": "497",
        "CREATE DATABASE gw_fs ENGINE = Filesystem('/etc')": "497",
        "INSERT INTO gw_s FROM INFILE '/etc/hostname' FORMAT LineAsString": "642",
        "SELECT 1 INTO OUTFILE '/tmp/gw-out.tsv'": "642",
        "BACKUP TABLE gw_s TO File('/tmp/gw-backup')": "497",
        "INSERT INTO gw_s VALUES (file('/etc/hostname'))": "344",  # SUPPORT_IS_DISABLED
        "SET input_format_values_interpret_expressions = 1": "452",
        "SELECT 1; CREATE TABLE gw_multi (n UInt8) ENGINE = Memory": "62",  # one statement
    }
    for sql, code in cases.items():
        answer = _post(port, sql)
        assert (answer.status, answer.code) == (500, code), (sql, answer.body)
    assert not _table_exists(port, "gw_f")
    assert not _table_exists(port, "gw_multi")
    assert _post(port, "SELECT count() FROM gw_s").body == b"0\n"
    locked = _post(port, "SELECT 1", input_format_values_interpret_expressions="1")
    assert locked.code == "452"
    assert _post(port, "INSERT INTO gw_s VALUES ('plain literals are fine')").status == 200


# --- 3. url(), remote() and other sources are refused -------------------------------------


class Listener:
    """A TCP port that records whether anything connected to it."""

    def __init__(self) -> None:
        self.socket = socket.create_server((process.LOOPBACK, 0))
        self.port = self.socket.getsockname()[1]
        self.connections = 0
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self.socket.close()


def test_remote_sources_are_refused_before_any_connection(gateway: Gateway) -> None:
    listener = Listener()
    host = f"{process.LOOPBACK}:{listener.port}"
    try:
        cases = {
            f"SELECT * FROM url('http://{host}/x', 'LineAsString')": "497",
            f"SELECT * FROM remote('{host}', system.one)": "497",
            f"SELECT * FROM remoteSecure('{host}', system.one)": "497",
            f"SELECT * FROM mysql('{host}', 'db', 't', 'u', 'p')": "497",
            f"SELECT * FROM postgresql('{host}', 'db', 't', 'u', 'p')": "497",
            f"SELECT * FROM s3('http://{host}/bucket/x.parquet', 'Parquet')": "491",
            "SELECT * FROM executable('true', 'TSV', 'n UInt8')": "497",
            "SELECT * FROM cluster('default', system.one)": "497",
            f"SELECT * FROM hdfs('hdfs://{host}/x', 'TSV', 'n UInt8')": "497",
            f"CREATE TABLE gw_u (s String) ENGINE = URL('http://{host}/x', LineAsString)": "497",
            f"CREATE TABLE gw_u2 AS url('http://{host}/x', 'LineAsString', 's String')": "497",
            "CREATE DICTIONARY gw_d (k UInt64, v String) PRIMARY KEY k "
            f"SOURCE(HTTP(url 'http://{host}/d' format 'TSV')) LAYOUT(FLAT()) LIFETIME(0)": "497",
        }
        for sql, code in cases.items():
            answer = _post(gateway.port, sql)
            assert (answer.status, answer.code) == (500, code), (sql, answer.body)
    finally:
        listener.close()
    assert listener.connections == 0


# --- 4. Host header -----------------------------------------------------------------------


def test_only_loopback_host_headers_are_served(gateway: Gateway) -> None:
    port = gateway.port
    for host in ("evil.example", f"evil.example:{port}", f"127.0.0.1.evil.example:{port}"):
        answer = _request(port, "GET", "SELECT 1", headers={"Host": host})
        assert answer.status == 403, host
        assert b"not allowed" in answer.body
        ping = _request(port, "POST", "SELECT 1", headers={"Host": host})
        assert ping.status == 403
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", "localhost"):
        answer = _request(port, "GET", "SELECT 1", headers={"Host": host})
        assert (answer.status, answer.body) == (200, b"1\n"), host


# --- 5. bodies and sessions are bounded ---------------------------------------------------


def _raw_exchange(port: int, head: bytes) -> bytes:
    """Send request headers only, and read what the gateway answers before any body."""
    with socket.create_connection((process.LOOPBACK, port), timeout=30) as connection:
        connection.sendall(head)
        answer = b""
        while b"\r\n\r\n" not in answer:
            piece = connection.recv(65536)
            if not piece:
                break
            answer += piece
        return answer


def test_a_body_over_the_limit_is_refused_before_it_is_read(gateway: Gateway) -> None:
    head = (
        "POST /?query=INSERT%20INTO%20gw_big%20FORMAT%20TSV HTTP/1.1\r\n"
        f"Host: localhost:{gateway.port}\r\nContent-Length: {50 * LIMIT}\r\n\r\n"
    ).encode()
    answer = _raw_exchange(gateway.port, head)  # the body is never sent
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"Connection: close" in answer


def test_chunked_and_compressed_bodies_are_bounded_too(gateway: Gateway) -> None:
    port = gateway.port
    assert (
        _post(port, "CREATE TABLE IF NOT EXISTS gw_lines (s String) ENGINE = Memory").status == 200
    )
    insert = {"query": "INSERT INTO gw_lines FORMAT LineAsString"}
    line = b"x" * 1023 + b"\n"
    chunk = line * 64
    head = (
        "POST /?query=INSERT%20INTO%20gw_lines%20FORMAT%20LineAsString HTTP/1.1\r\n"
        f"Host: localhost:{port}\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunks = [f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"] * (LIMIT // len(chunk))
    # The chunk that crosses the limit is sent without its CRLF: the gateway has then read
    # all that was sent, and its answer cannot be lost to a reset.
    last = f"{len(chunk):x}\r\n".encode() + chunk
    answer = _raw_exchange(port, head + b"".join(chunks) + last)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    bomb = gzip.compress(line * (2 * LIMIT // len(line)))  # ~10 KB that expands to 2 MiB
    assert len(bomb) < LIMIT
    expanded = _request(
        port, "POST", params=insert, body=bomb, headers={"Content-Encoding": "gzip"}
    )
    assert expanded.status == 413
    assert _post(port, "SELECT count() FROM gw_lines").body == b"0\n"
    small = _request(
        port,
        "POST",
        params=insert,
        body=gzip.compress(line * 10),
        headers={"Content-Encoding": "gzip"},
    )
    assert small.status == 200
    assert _post(port, "SELECT count() FROM gw_lines").body == b"10\n"


def test_sessions_are_bounded_in_number_and_timeout(gateway: Gateway) -> None:
    port = gateway.port
    too_long = _post(port, "SELECT 1", session_id="gw-long", session_timeout="121")
    assert (too_long.status, too_long.code) == (400, "36")
    ids = [f"gw-many-{n}-{uuid.uuid4().hex[:6]}" for n in range(MAX_SESSIONS + 1)]
    answers = [_post(port, "SELECT 1", session_id=i, session_timeout="1") for i in ids]
    refused = [a for a in answers if a.status != 200]
    assert refused, "every session was opened: there is no bound"
    assert all((a.status, a.code) == (503, "202") for a in refused)


# --- 6. no secret in a view ----------------------------------------------------------------


def test_views_over_s3_hold_no_keys_and_read_with_the_engines_own(
    services_config: ServicesConfig, tmp_path: Path, s3: S3Endpoint
) -> None:
    bucket = f"gw-{uuid.uuid4().hex[:12]}"
    s3.client.create_bucket(Bucket=bucket)
    location, config = f"s3://{bucket}/cold", S3Config(endpoint_url=s3.endpoint_url)
    store = ColdStore.from_location(location, config, environ=KEYS)
    spec = next(spec for spec in SPECS if spec.table == "trades")
    empty = pa.Table.from_pylist([], schema=arrow_schema(spec))
    store.write_partition("trades", "binance", date(2024, 1, 2), encode_partition(spec, empty))
    server = _start(tmp_path, services_config, GatewaySetup(cold=location, s3=config), **KEYS)
    try:
        client = clickhouse.connect(server.url)
        for sql in clickhouse_tables.create_all_sql() + create_all_views_sql(store):
            client.command(sql)
        assert client.command("SELECT count() FROM trades_all") == 0  # it reads the bucket
        definitions = client.query(
            "SELECT name, create_table_query FROM system.tables WHERE name LIKE '%\\_all'"
        ).result_rows
        assert len(definitions) == len(SPECS)
        shown = str(client.command("SHOW CREATE TABLE trades_all"))
        for text in [shown] + [row[1] for row in definitions]:
            assert f"{s3.endpoint_url}/{bucket}/cold/" in text
            assert KEYS["AWS_ACCESS_KEY_ID"] not in text
            assert KEYS["AWS_SECRET_ACCESS_KEY"] not in text
        with pytest.raises(DatabaseError, match="UNACCEPTABLE_URL"):
            client.raw_query(f"SELECT * FROM s3('{s3.endpoint_url}/{bucket}-x/a', 'CSV')")
        client.close()
    finally:
        process.stop(server.process.pid, server.process.marker)
