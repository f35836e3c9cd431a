"""The cold store on a local directory and on a real S3 API server (moto), and ClickHouse over it.

Every behaviour runs on both backends: write, read, list, delete, idempotent overwrite,
range reads with pushdown, the ClickHouse table function and the `*_all` views (on the
session's in-process chdb engine, one database per test).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from clickhouse_connect.driver.client import Client

from marketstream.config import S3Config
from marketstream.errors import ConfigError, ServiceError
from marketstream.schemas.arrow import from_arrow, to_arrow
from marketstream.schemas.columns import SPECS, TRADES, TableSpec
from marketstream.schemas.records import Record, Trade
from marketstream.services import process
from marketstream.tiers import clickhouse_tables
from marketstream.tiers.clickhouse_views import create_all_views_sql
from marketstream.tiers.cold_parquet import decode, encode_partition
from marketstream.tiers.cold_store import ColdInputError, ColdStore, S3ColdStore, day_of
from tests.integration.endpoints import S3Endpoint
from tests.integration.test_store_layouts import sample_records

pytestmark = pytest.mark.integration

DAY_NS = 86_400 * 10**9
D0 = 1_732_147_200 * 10**9  # 2024-11-21T00:00:00Z
DAY0 = date(2024, 11, 21)
MOTO_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def _s3_config(s3: S3Endpoint) -> S3Config:
    return S3Config(endpoint_url=s3.endpoint_url, region="us-east-1")


def _new_bucket(s3: S3Endpoint) -> str:
    bucket = f"cold-{uuid.uuid4().hex[:12]}"
    s3.client.create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture(params=["local", "s3"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> ColdStore:
    """An empty store: a fresh directory, or a fresh bucket with a prefix.

    The engine of this process reads s3() with the credentials of its environment, as a
    ClickHouse server does: the views hold none.
    """
    if request.param == "local":
        root = tmp_path / "cold dir's"  # a space and a quote: paths in SQL must be escaped
        root.mkdir()
        return ColdStore.from_location(str(root), S3Config(), environ={})
    s3: S3Endpoint = request.getfixturevalue("s3")
    location = f"s3://{_new_bucket(s3)}/archive/v1"
    for name, value in MOTO_KEYS.items():
        monkeypatch.setenv(name, value)
    return ColdStore.from_location(location, _s3_config(s3), environ=MOTO_KEYS)


@pytest.fixture
def database(clickhouse: Client) -> Iterator[str]:
    """A database of its own on the shared engine, with the warm tables."""
    name = f"cold_{uuid.uuid4().hex[:10]}"
    clickhouse.command(f"CREATE DATABASE IF NOT EXISTS {name}")
    for sql in clickhouse_tables.create_all_sql(name):
        clickhouse.command(sql)
    yield name
    clickhouse.command(f"DROP DATABASE IF EXISTS {name}")


def _trades(exchange: str, symbol: str, start_ns: int, count: int, step_ns: int) -> list[Trade]:
    return [
        Trade(exchange, symbol, start_ns + i * step_ns, start_ns + i * step_ns + 7, f"{i}",
              100.0 + i, 0.5, "buy" if i % 2 else "sell")
        for i in range(count)
    ]  # fmt: skip


def _write_days(store: ColdStore, records: list[Trade]) -> None:
    """Partition trades by (exchange, UTC day), as the archiver does."""
    parts: dict[tuple[str, date], list[Record]] = {}
    for trade in records:
        parts.setdefault((trade.exchange, day_of(trade.ts)), []).append(trade)
    for (exchange, day), rows in parts.items():
        data = encode_partition(TRADES, to_arrow(TRADES, rows))
        store.write_partition(TRADES.table, exchange, day, data)


def _sort_key(record: Record) -> str:
    return repr(record)


def test_write_read_list_delete(store: ColdStore) -> None:
    assert store.partitions("trades") == []
    assert store.read_partition("trades", "binance", DAY0) is None
    written = {}
    for exchange, day in (("okx", DAY0), ("binance", DAY0 + timedelta(days=1)), ("binance", DAY0)):
        start = D0 + (day - DAY0).days * DAY_NS
        rows = _trades(exchange, "BTC-USDT", start, 5, 1)
        data = encode_partition(TRADES, to_arrow(TRADES, rows))
        written[exchange, day] = (store.write_partition("trades", exchange, day, data), data)

    parts = store.partitions("trades")
    assert [(p.exchange, p.day) for p in parts] == [
        ("binance", DAY0),
        ("binance", DAY0 + timedelta(days=1)),
        ("okx", DAY0),
    ]
    for part in parts:
        path, data = written[part.exchange, part.day]
        assert part.path == path
        assert path.endswith(f"/trades/exchange={part.exchange}/date={part.day}/part-0.parquet")
        assert part.size_bytes == len(data)
        assert store.read_partition("trades", part.exchange, part.day) == data
    assert store.total_bytes("trades") == sum(len(d) for _, d in written.values())
    assert [p.day for p in store.partitions("trades", "okx")] == [DAY0]
    assert store.partitions("quotes") == []
    assert store.total_bytes("quotes") == 0

    assert store.delete_partition("trades", "okx", DAY0) is True
    assert store.delete_partition("trades", "okx", DAY0) is False
    assert store.read_partition("trades", "okx", DAY0) is None
    assert [p.exchange for p in store.partitions("trades")] == ["binance", "binance"]


def test_rewriting_a_partition_replaces_it(store: ColdStore) -> None:
    first = encode_partition(TRADES, to_arrow(TRADES, _trades("okx", "BTC-USDT", D0, 3, 1)))
    second = encode_partition(TRADES, to_arrow(TRADES, _trades("okx", "BTC-USDT", D0, 4, 1)))
    path = store.write_partition("trades", "okx", DAY0, first)
    assert store.write_partition("trades", "okx", DAY0, second) == path
    assert store.write_partition("trades", "okx", DAY0, second) == path
    assert store.read_partition("trades", "okx", DAY0) == second
    assert [(p.day, p.size_bytes) for p in store.partitions("trades")] == [(DAY0, len(second))]


def test_local_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    store = ColdStore.from_location(str(tmp_path), S3Config(), environ={})
    data = encode_partition(TRADES, to_arrow(TRADES, _trades("okx", "BTC-USDT", D0, 3, 1)))
    for _ in range(3):
        store.write_partition("trades", "okx", DAY0, data)
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert files == ["trades/exchange=okx/date=2024-11-21/part-0.parquet"]
    store.delete_partition("trades", "okx", DAY0)
    assert list(tmp_path.iterdir()) == [tmp_path / "trades"]  # empty partition folders go


def test_read_range_reads_the_days_exchange_and_symbol_asked_for(store: ColdStore) -> None:
    hour = 3600 * 10**9
    records = (
        _trades("binance", "BTC-USDT", D0 - DAY_NS, 48, hour)  # 2024-11-20 and 21
        + _trades("binance", "ETH-USDT", D0, 48, hour)  # 21 and 22
        + _trades("okx", "BTC-USDT", D0, 24, hour)
    )
    _write_days(store, records)

    # Half-open [start, end): across midnight, one exchange and symbol.
    start, end = D0 - 2 * hour, D0 + 3 * hour
    table = store.read_range(TRADES, start, end, "binance", "BTC-USDT")
    expected = [
        t
        for t in records
        if start <= t.ts < end and t.exchange == "binance" and t.symbol == "BTC-USDT"
    ]
    assert len(expected) == 5
    assert from_arrow(TRADES, table) == sorted(expected, key=lambda t: t.ts)
    assert table.schema.field("ts").type == pa.timestamp("ns", tz="UTC")

    everything = store.read_range(TRADES, D0 - DAY_NS, D0 + 3 * DAY_NS)
    assert sorted(from_arrow(TRADES, everything), key=_sort_key) == sorted(records, key=_sort_key)
    nanos = everything.column("ts").cast(pa.int64()).to_numpy()
    assert (nanos[1:] >= nanos[:-1]).all()

    day_two = store.read_range(TRADES, D0 + DAY_NS, D0 + 2 * DAY_NS, symbol="ETH-USDT")
    assert day_two.num_rows == 24
    assert store.read_range(TRADES, D0, D0, "binance").num_rows == 0  # empty range
    assert store.read_range(TRADES, D0 + 10 * DAY_NS, D0 + 11 * DAY_NS).num_rows == 0
    assert store.read_range(TRADES, D0, D0 + DAY_NS, "kraken").num_rows == 0


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.table)
def test_clickhouse_reads_every_table_exactly(
    store: ColdStore, clickhouse: Client, spec: TableSpec
) -> None:
    records = sample_records()[spec.table]
    _write_all_days(store, spec, records)
    source = store.clickhouse_source(spec.table)
    columns = ", ".join(spec.names)
    back = from_arrow(spec, clickhouse.query_arrow(f"SELECT {columns} FROM {source}"))
    assert sorted(back, key=_sort_key) == sorted(records, key=_sort_key)
    nanos = clickhouse.query(f"SELECT toUnixTimestamp64Nano(ts) FROM {source}").result_rows
    assert sorted(row[0] for row in nanos) == sorted(r.ts for r in records)


def _write_all_days(store: ColdStore, spec: TableSpec, records: list[Record]) -> None:
    parts: dict[tuple[str, date], list[Record]] = {}
    for record in records:
        parts.setdefault((record.exchange, day_of(record.ts)), []).append(record)
    for (exchange, day), rows in parts.items():
        store.write_partition(
            spec.table, exchange, day, encode_partition(spec, to_arrow(spec, rows))
        )


def test_views_union_warm_and_cold_with_warm_types(
    store: ColdStore, clickhouse: Client, database: str
) -> None:
    for sql in create_all_views_sql(store, database):
        clickhouse.command(sql)
    for spec in SPECS:  # no cold file yet: the views read the warm tables alone
        assert clickhouse.command(f"SELECT count() FROM {database}.{spec.table}_all") == 0
        view = clickhouse.query(f"DESCRIBE {database}.{spec.table}_all").result_rows
        warm = clickhouse.query(f"DESCRIBE {database}.{spec.table}").result_rows
        assert [row[:2] for row in view] == [row[:2] for row in warm]

    samples = sample_records()
    for spec in SPECS:
        warm_rows, cold_rows = samples[spec.table][:1], samples[spec.table][1:]
        clickhouse.insert_arrow(f"{database}.{spec.table}", to_arrow(spec, warm_rows))
        _write_all_days(store, spec, cold_rows)
        answer = clickhouse.query_arrow(f"SELECT * FROM {database}.{spec.table}_all")
        back = from_arrow(spec, answer)
        assert sorted(back, key=_sort_key) == sorted(samples[spec.table], key=_sort_key)

    count = clickhouse.command(
        f"SELECT count() FROM {database}.trades_all WHERE symbol = 'ETH-USD' AND ts >= "
        "toDateTime64('2024-11-21 00:00:00', 9, 'UTC')"
    )
    assert count == 1


def test_views_see_files_written_after_they_were_created(
    store: ColdStore, clickhouse: Client, database: str
) -> None:
    for sql in create_all_views_sql(store, database):
        clickhouse.command(sql)
    _write_days(store, _trades("kraken", "XBT-USD", D0, 10, 10**9))
    assert clickhouse.command(f"SELECT count() FROM {database}.trades_all") == 10
    assert clickhouse.command(f"SELECT max(price) FROM {database}.trades_all") == 109.0


def test_cold_files_round_trip_through_the_store(store: ColdStore) -> None:
    records = sample_records()["books"]
    _write_all_days(store, _spec("books"), records)
    back: list[Record] = []
    for part in store.partitions("books"):
        data = store.read_partition("books", part.exchange, part.day)
        assert data is not None
        back += from_arrow(_spec("books"), decode(data))
    assert sorted(back, key=_sort_key) == sorted(records, key=_sort_key)


def _spec(table: str) -> TableSpec:
    return next(spec for spec in SPECS if spec.table == table)


def test_names_that_would_escape_the_layout_are_refused(store: ColdStore) -> None:
    with pytest.raises(ColdInputError, match="unknown table 'orders'"):
        store.write_partition("orders", "okx", DAY0, b"x")
    with pytest.raises(ColdInputError, match=r"exchange '\.\./okx' is not a valid partition name"):
        store.write_partition("trades", "../okx", DAY0, b"x")
    with pytest.raises(ColdInputError, match="unknown table"):
        store.clickhouse_source("trades'); DROP TABLE x; --")


def test_missing_bucket_is_a_clear_error(s3: S3Endpoint) -> None:
    store = ColdStore.from_location("s3://no-such-bucket/cold", _s3_config(s3), MOTO_KEYS)
    message = "bucket 'no-such-bucket' does not exist at http://127.0.0.1:.*expected an existing"
    with pytest.raises(ServiceError, match=f"cold store s3://no-such-bucket/cold: .*{message}"):
        store.check()
    with pytest.raises(ServiceError, match=f"cannot write trades/exchange=okx/.*{message}"):
        store.write_partition("trades", "okx", DAY0, b"data")
    with pytest.raises(ServiceError, match=message):
        store.read_partition("trades", "okx", DAY0)
    with pytest.raises(ServiceError, match=message):
        store.partitions("trades")  # never an empty listing
    with pytest.raises(ServiceError, match=message):
        store.delete_partition("trades", "okx", DAY0)


def test_unreachable_s3_is_a_clear_error() -> None:
    port = process.free_port()  # nothing listens there
    config = S3Config(endpoint_url=f"http://127.0.0.1:{port}")
    store = ColdStore.from_location("s3://cold/archive", config, MOTO_KEYS)
    message = f"S3 endpoint http://127.0.0.1:{port} not reachable .*: expected an S3 API there"
    with pytest.raises(ServiceError, match=f"cold store s3://cold/archive: .*{message}"):
        store.partitions("trades")
    with pytest.raises(ServiceError, match="not reachable"):
        store.check()


def test_wrong_locations_are_clear_errors(tmp_path: Path) -> None:
    cases = {
        str(tmp_path / "absent"): "does not exist: expected an existing directory",
        "ftp://host/dir": "unsupported cold location 'ftp://host/dir': expected a directory",
        "": "unsupported cold location ''",
        "s3://": "names no valid bucket: expected s3://bucket/prefix",
        "s3://Bad_Bucket/x": "names no valid bucket",
        "s3://bucket/a//b": "expected a prefix of letters",
        "s3://bucket/a/*": "expected a prefix of letters",
        str(tmp_path / "{a,b}"): "expected a path without glob characters",
    }
    for location, message in cases.items():
        with pytest.raises(ServiceError, match=message.replace("(", r"\(")):
            ColdStore.from_location(location, S3Config(), environ={})
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ServiceError, match="is not a directory"):
        ColdStore.from_location(str(a_file), S3Config(), environ={})


def test_s3_source_names_endpoint_bucket_prefix_and_no_keys(s3: S3Endpoint) -> None:
    keys = {"AWS_ACCESS_KEY_ID": "AKIA'x", "AWS_SECRET_ACCESS_KEY": "se\\cr'et"}
    store = ColdStore.from_location("s3://my-bucket/a/b", _s3_config(s3), environ=keys)
    source = store.clickhouse_source("funding")
    assert source.startswith(  # no keys: a view would keep them in its definition
        f"s3('{s3.endpoint_url}/my-bucket/a/b/funding/*/*/*.parquet', "
        "'Parquet', 'exchange LowCardinality(String), "
    )
    assert "AKIA" not in source
    assert "cr" not in source.split("'Parquet'")[0]
    aws = ColdStore.from_location("s3://my-bucket", S3Config(region="eu-west-1"), environ={})
    assert aws.clickhouse_source("trades").startswith(
        "s3('https://my-bucket.s3.eu-west-1.amazonaws.com/trades/*/*/*.parquet', 'Parquet', "
    )


def test_credentials_come_in_pairs_and_never_print() -> None:
    with pytest.raises(ConfigError, match="AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY"):
        ColdStore.from_location("s3://b-1/x", S3Config(), {"AWS_ACCESS_KEY_ID": "k"})
    store = ColdStore.from_location(
        "s3://b-1/x",
        S3Config(),
        {**MOTO_KEYS, "AWS_SECRET_ACCESS_KEY": "hush", "AWS_SESSION_TOKEN": "tok"},
    )
    assert isinstance(store, S3ColdStore)
    assert "hush" not in repr(store.credentials)
    source = store.clickhouse_source("trades")  # what a view stores: no key, no token
    assert not any(secret in source for secret in ("testing", "hush", "tok"))
