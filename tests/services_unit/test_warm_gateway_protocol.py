"""The warm gateway's HTTP-side parsing, without an engine: statements, bodies, errors."""

from __future__ import annotations

import gzip
import io
import socket
import zlib
from collections.abc import Iterator
from pathlib import Path

import lz4.frame  # type: ignore[import-untyped]
import pytest
from backports import zstd

from marketstream.config import S3Config, WarmGatewayConfig
from marketstream.errors import ServiceError
from marketstream.gateway.policy import Refused, SourcePolicy, literal_string, parse_ast
from marketstream.gateway.server import (
    BodyError,
    DataInsert,
    QueryError,
    RequestBody,
    engine_error,
    first_word,
    loopback_host,
    split_statement,
)
from marketstream.services.gateway_process import GatewaySetup, spawn_warm_server, warm_server_argv
from marketstream.services.process import LOOPBACK

NATIVE_BLOCK = b"\n\x02\x01a\x06UInt64" + bytes(range(40))  # starts with a newline byte (10 cols)


def _pieces(data: bytes, size: int) -> Iterator[bytes]:
    return iter([data[i : i + size] for i in range(0, len(data), size)])


def _insert(prefix: bytes, body: bytes, size: int = 1 << 20) -> DataInsert:
    statement = split_statement(prefix, _pieces(body, size))
    assert isinstance(statement, DataInsert), statement
    return statement


def _data(insert: DataInsert) -> bytes:
    return insert.head + b"".join(insert.rest)


def test_an_insert_in_the_body_is_split_from_its_binary_data() -> None:
    body = b"INSERT INTO db.t (`a`, `b`) FORMAT Native\n" + NATIVE_BLOCK
    insert = _insert(b"", body)
    assert (insert.statement, insert.format) == ("INSERT INTO db.t (`a`, `b`)", "Native")
    assert _data(insert) == NATIVE_BLOCK  # only the one line break after the format is dropped


@pytest.mark.parametrize("size", [1, 3, 7, 64])
def test_a_statement_cut_anywhere_between_chunks_is_read_on(size: int) -> None:
    body = b"-- archive\n/* day */ INSERT INTO t FORMAT Arrow\r\n" + NATIVE_BLOCK
    insert = _insert(b"", body, size)
    assert (insert.statement, insert.format) == ("INSERT INTO t", "Arrow")
    assert _data(insert) == NATIVE_BLOCK


def test_the_query_parameter_ends_with_a_line_break_as_in_clickhouse() -> None:
    insert = _insert(b"INSERT INTO t FORMAT Native\n", NATIVE_BLOCK)
    assert _data(insert) == NATIVE_BLOCK
    empty = _insert(b"INSERT INTO t SETTINGS async_insert=0 FORMAT CSV\n", b"")
    assert (empty.statement, empty.format, _data(empty)) == (
        "INSERT INTO t SETTINGS async_insert=0",
        "CSV",
        b"",
    )


@pytest.mark.parametrize(
    "sql",
    [
        b"INSERT INTO t VALUES (1, 'FORMAT x\n')",
        b"INSERT INTO t SELECT * FROM s",
        b"INSERT INTO t FROM INFILE 'a.csv' FORMAT CSV\n",
        b"SELECT 1 FORMAT Native\n",
        b"  CREATE TABLE t (format String) ENGINE = Memory",
    ],
)
def test_other_statements_are_read_whole_as_sql(sql: bytes) -> None:
    assert split_statement(b"", _pieces(sql, 5)) == sql


def test_a_column_named_format_does_not_end_the_statement() -> None:
    insert = _insert(b"", b"INSERT INTO t (id, format) FORMAT TSV\n1\tx\n")
    assert (insert.statement, insert.format, _data(insert)) == (
        "INSERT INTO t (id, format)",
        "TSV",
        b"1\tx\n",
    )


def test_first_word_skips_comments() -> None:
    assert first_word("-- a\n /* b */ use db") == "USE"
    assert first_word("  ") == ""


def _body(data: bytes, **headers: str) -> RequestBody:
    lower = {name.replace("_", "-").lower(): value for name, value in headers.items()}
    return RequestBody(io.BytesIO(data), lower)


def test_chunked_and_multi_frame_compressed_bodies_are_decoded() -> None:
    blocks = [b"first block " * 100, b"second block " * 100]
    lz4_body = b"".join(lz4.frame.compress(block) for block in blocks)  # one frame per block
    chunked = b"".join(
        f"{len(piece):x}\r\n".encode() + piece + b"\r\n" for piece in _pieces(lz4_body, 333)
    )
    body = _body(chunked + b"0\r\n\r\n", transfer_encoding="chunked", content_encoding="lz4")
    assert body.read_all() == b"".join(blocks)
    zstd_body = b"".join(zstd.compress(block) for block in blocks)
    assert _body(zstd_body, content_length=str(len(zstd_body)), content_encoding="zstd").read_all()
    for encoding, packed in (
        ("gzip", gzip.compress(blocks[0])),
        ("deflate", zlib.compress(blocks[0])),
    ):
        decoded = _body(packed, content_length=str(len(packed)), content_encoding=encoding)
        assert decoded.read_all() == blocks[0]


def test_bad_bodies_are_refused_with_a_reason() -> None:
    with pytest.raises(QueryError, match="Content-Encoding 'br' is not supported"):
        _body(b"x", content_length="1", content_encoding="br").read_all()
    cut = lz4.frame.compress(b"x" * 1000)[:-5]
    with pytest.raises(QueryError, match="lz4 body ends inside a frame"):
        _body(cut, content_length=str(len(cut)), content_encoding="lz4").read_all()
    with pytest.raises(BodyError, match="the body ended early"):
        _body(b"short", content_length="10").read_all()
    with pytest.raises(BodyError, match="bad chunk size line"):
        _body(b"zz\r\n", transfer_encoding="chunked").read_all()


def test_engine_errors_keep_their_code_and_text() -> None:
    error = engine_error(
        RuntimeError("Streaming insert append failed: Code: 33. DB::Exception: Cannot read all "
                     "data. (CANNOT_READ_ALL_DATA) (version 26.9.2.1)")
    )  # fmt: skip
    assert (error.code, error.status) == (33, 500)
    assert error.text.startswith("Code: 33. DB::Exception: Cannot read all data.")
    unknown = engine_error(RuntimeError("engine gone"))
    assert (unknown.code, unknown.text) == (
        1001,
        "Code: 1001. DB::Exception: engine gone. (STD_EXCEPTION)",
    )


def test_the_gateway_command_line_names_its_directory_and_loopback(tmp_path: Path) -> None:
    argv = warm_server_argv(tmp_path / "clickhouse", 8124)
    assert argv[1:4] == ["-m", "marketstream", "warm-server"]
    assert str(tmp_path / "clickhouse") in argv  # stop() finds the process by this marker
    assert argv[argv.index("--host") + 1] == LOOPBACK
    assert argv[argv.index("--port") + 1] == "8124"


def test_a_busy_port_is_refused_before_spawning(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind((LOOPBACK, 0))
        listener.listen()
        busy = listener.getsockname()[1]
        with pytest.raises(ServiceError, match=f"warm gateway: port {LOOPBACK}:{busy} is in use"):
            spawn_warm_server(
                tmp_path / "ch", port=busy, log_path=tmp_path / "l", pid_path=tmp_path / "p"
            )


def test_only_loopback_host_headers_pass() -> None:
    for host in ("localhost", "localhost:8123", "127.0.0.1:1", "[::1]:8123", "[::1]", None):
        assert loopback_host(host), host
    for host in ("evil.example", "evil.example:8123", "localhost.evil:80", "127.0.0.1:x", ""):
        assert not loopback_host(host), host


def test_the_syntax_tree_dump_is_read_with_its_two_word_kinds() -> None:
    root = parse_ast(
        "CreateQuery t (children 2)\n"
        " Identifier t\n"
        " Storage definition (children 2)\n"
        "  Function URL (children 1)\n"
        "   ExpressionList (children 1)\n"
        "    Literal 'http://x/it\\'s'\n"
        "  Function tuple (alias k)\n"
    )
    storage = root.children[0].children[1]
    assert (storage.kind, [c.name for c in storage.children]) == (
        "Storage definition",
        ["url", "tuple"],
    )
    literal = storage.children[0].children[0].children[0]
    assert literal_string(literal) == "http://x/it's"
    with pytest.raises(Refused, match="engine URL is not allowed"):
        SourcePolicy().check_tree(root)


def test_the_gateway_is_told_its_cold_tier_and_bounds(tmp_path: Path) -> None:
    setup = GatewaySetup(
        cold="s3://bucket/cold",
        s3=S3Config(endpoint_url="http://127.0.0.1:9000"),
        limits=WarmGatewayConfig(max_body_bytes=1024, max_sessions=3),
    )
    argv = warm_server_argv(tmp_path / "clickhouse", 8124, setup)
    pairs = dict(zip(argv[4::2], argv[5::2], strict=True))
    assert pairs["--cold"] == "s3://bucket/cold"
    assert pairs["--s3-endpoint"] == "http://127.0.0.1:9000"
    assert (pairs["--max-body-bytes"], pairs["--max-sessions"]) == ("1024", "3")
