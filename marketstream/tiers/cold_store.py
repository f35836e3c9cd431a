"""Where cold Parquet files live: a local directory or an S3 bucket (AWS, MinIO, moto).

One file per table, exchange and UTC day, in a Hive layout that ClickHouse, pyarrow and
Spark all read as partitions:

    <root>/<table>/exchange=<exchange>/date=<YYYY-MM-DD>/part-0.parquet

The name is deterministic, so writing a partition again replaces it: the archiver can redo
a move without duplicates. Each write is atomic: a local file is written under a temporary
name, synced and renamed; an S3 object becomes visible only once its upload completes.

S3 goes through boto3 for listing, whole-object reads, writes and deletes: pyarrow's
S3FileSystem reports a missing bucket or an unreachable endpoint as "not found", which
would make a broken cold tier look empty. Range reads (`read_range`) use pyarrow's
S3FileSystem on keys boto3 has just listed, so that only the footers and the row groups a
filter keeps cross the network.
"""

from __future__ import annotations

import os
import re
import secrets
import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from pyarrow import fs as pafs

from marketstream.config import S3Config
from marketstream.errors import ConfigError, MarketStreamError, ServiceError
from marketstream.schemas.arrow import arrow_schema
from marketstream.schemas.columns import SPEC_BY_TABLE, TableSpec
from marketstream.tiers.clickhouse_tables import clickhouse_type

PART_FILE: Final = "part-0.parquet"
NS_PER_DAY: Final = 86_400 * 1_000_000_000
EPOCH: Final = date(1970, 1, 1)

S3_CONNECT_TIMEOUT_S: Final = 5.0
S3_READ_TIMEOUT_S: Final = 60.0
S3_MAX_ATTEMPTS: Final = 3  # transient S3 errors (503 SlowDown) are retried with backoff

ACCESS_KEY_ENV: Final = "AWS_ACCESS_KEY_ID"
SECRET_KEY_ENV: Final = "AWS_SECRET_ACCESS_KEY"  # noqa: S105 - the variable's name
SESSION_TOKEN_ENV: Final = "AWS_SESSION_TOKEN"  # noqa: S105 - the variable's name

_EXCHANGE: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_BUCKET: Final = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PREFIX: Final = re.compile(r"[A-Za-z0-9._=-]+(/[A-Za-z0-9._=-]+)*")
# Characters ClickHouse's file()/s3() expand as globs: a root holding them would read the
# wrong files.
_GLOB_CHARS: Final = frozenset("*?{}[]")
_PARTITION_KEY: Final = re.compile(
    r"(?P<table>[a-z_]+)/exchange=(?P<exchange>[a-z0-9][a-z0-9_-]*)"
    r"/date=(?P<day>\d{4}-\d{2}-\d{2})/" + re.escape(PART_FILE)
)


class ColdInputError(MarketStreamError, ValueError):
    """An unknown table, a malformed exchange name or day; the message says what was expected."""


@dataclass(frozen=True, slots=True)
class ColdPartition:
    """One stored file: its partition, where it is (path or s3:// URL) and its size."""

    exchange: str
    day: date
    path: str
    size_bytes: int


@dataclass(frozen=True, slots=True)
class S3Credentials:
    """Keys from the environment; None: boto3's and ClickHouse's own credential chains."""

    access_key: str | None = None
    secret_key: str | None = None
    session_token: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> S3Credentials:
        access, secret = environ.get(ACCESS_KEY_ENV) or None, environ.get(SECRET_KEY_ENV) or None
        if (access is None) != (secret is None):
            have, missing = (
                (ACCESS_KEY_ENV, SECRET_KEY_ENV) if access else (SECRET_KEY_ENV, ACCESS_KEY_ENV)
            )
            raise ConfigError(f"{have} is set but {missing} is not: set both or neither")
        return cls(access, secret, environ.get(SESSION_TOKEN_ENV) or None)

    def __repr__(self) -> str:  # never print a secret in a traceback or a log
        return f"S3Credentials(access_key={self.access_key!r}, secret_key=..., session_token=...)"


def sql_string(value: str) -> str:
    """A ClickHouse string literal for value: backslashes and quotes escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def clickhouse_structure(spec: TableSpec) -> str:
    """The table's columns as the `structure` argument of file()/s3(): the warm tier's types.

    Naming the types makes a cold tier without files an empty table rather than an error
    (ClickHouse cannot infer a schema from no files) and gives the `*_all` views one type per
    column across tiers.
    """
    return ", ".join(f"{c.name} {clickhouse_type(c)}" for c in spec.columns)


def day_of(ns: int) -> date:
    """The UTC day of a nanosecond timestamp: the partition that holds it."""
    return EPOCH + timedelta(days=ns // NS_PER_DAY)


def partition_key(table: str, exchange: str, day: date) -> str:
    """The file's path below the store's root (checked: names become paths and SQL)."""
    spec_of_table(table)
    if not _EXCHANGE.fullmatch(exchange):
        raise ColdInputError(
            f"exchange {exchange!r} is not a valid partition name: expected lowercase letters, "
            "digits, '-' or '_'"
        )
    if isinstance(day, datetime) or not isinstance(day, date):
        raise ColdInputError(f"day {day!r}: expected a datetime.date (a UTC day)")
    return f"{table}/exchange={exchange}/date={day.isoformat()}/{PART_FILE}"


def spec_of_table(table: str) -> TableSpec:
    spec = SPEC_BY_TABLE.get(table)
    if spec is None:
        raise ColdInputError(f"unknown table {table!r}: expected one of {', '.join(SPEC_BY_TABLE)}")
    return spec


def _glob_free(location: str, text: str) -> None:
    if _GLOB_CHARS & set(text):
        raise ServiceError(
            f"cold location {location!r} contains one of {''.join(sorted(_GLOB_CHARS))}: "
            "expected a path without glob characters (ClickHouse would expand them)"
        )


class ColdStore(ABC):
    """Cold Parquet files of every table; `from_location` picks the backend."""

    def __init__(self, location: str) -> None:
        self.location = location

    @staticmethod
    def from_location(
        location: str, s3: S3Config, environ: Mapping[str, str] | None = None
    ) -> ColdStore:
        """A store for `endpoints.cold`: a directory that exists, or s3://bucket[/prefix].

        No request is made for S3 (see `check`); credentials come from environ
        (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, optional AWS_SESSION_TOKEN).
        """
        env = os.environ if environ is None else environ
        if location.startswith("s3://"):
            parts = urllib.parse.urlsplit(location)
            bucket, prefix = parts.netloc, parts.path.strip("/")
            if not _BUCKET.fullmatch(bucket) or parts.query or parts.fragment:
                raise ServiceError(
                    f"cold location {location!r} names no valid bucket: expected "
                    "s3://bucket/prefix (bucket: 3-63 lowercase letters, digits, '.', '-')"
                )
            if prefix and not _PREFIX.fullmatch(prefix):
                raise ServiceError(
                    f"cold location {location!r}: expected a prefix of letters, digits and "
                    "'.', '_', '-', '=' separated by single '/'"
                )
            return S3ColdStore(location, bucket, prefix, s3, S3Credentials.from_environ(env))
        if not location or "://" in location:
            raise ServiceError(
                f"unsupported cold location {location!r}: expected a directory or "
                "s3://bucket/prefix"
            )
        root = Path(location).expanduser().absolute()
        _glob_free(location, str(root))
        store = LocalColdStore(location, root)
        store.check()
        return store

    # -- what a backend provides ---------------------------------------------------------

    @abstractmethod
    def check(self) -> None:
        """Raise ServiceError unless the store answers and can be written."""

    @abstractmethod
    def url(self, key: str) -> str:
        """Where a key lives, for messages and listings: an absolute path or s3:// URL."""

    @abstractmethod
    def _put(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def _get(self, key: str) -> bytes | None: ...

    @abstractmethod
    def _list(self, prefix: str) -> list[tuple[str, int]]:
        """(key, size) of every object below prefix ("<table>/..."), keys relative to root."""

    @abstractmethod
    def _delete(self, key: str) -> bool: ...

    @abstractmethod
    def _arrow_files(self, keys: list[str]) -> tuple[pafs.FileSystem, list[str]]:
        """A pyarrow filesystem and its paths for keys, for reads that skip row groups."""

    @abstractmethod
    def _table_function(self, glob_key: str, structure: str) -> str: ...

    # -- the store ------------------------------------------------------------------------

    def write_partition(self, table: str, exchange: str, day: date, data: bytes) -> str:
        """Store (or replace) one partition's file atomically; returns where it is."""
        key = partition_key(table, exchange, day)
        self._put(key, data)
        return self.url(key)

    def read_partition(self, table: str, exchange: str, day: date) -> bytes | None:
        """The partition's file, or None if the store has none."""
        return self._get(partition_key(table, exchange, day))

    def delete_partition(self, table: str, exchange: str, day: date) -> bool:
        """Remove a partition's file; False if there was none."""
        return self._delete(partition_key(table, exchange, day))

    def partitions(self, table: str, exchange: str | None = None) -> list[ColdPartition]:
        """The table's stored files, by exchange then day.

        Objects outside the layout (temporary files, directory markers, foreign files) are
        not partitions and are left out.
        """
        if exchange is None:
            prefix = f"{spec_of_table(table).table}/"
        else:  # one exchange's folder; partition_key checks both names first
            prefix = partition_key(table, exchange, EPOCH).rsplit("/", 2)[0] + "/"
        found = []
        for key, size in self._list(prefix):
            match = _PARTITION_KEY.fullmatch(key)
            if match is None or match["table"] != table:
                continue
            try:
                day = date.fromisoformat(match["day"])
            except ValueError:
                continue
            found.append(ColdPartition(match["exchange"], day, self.url(key), size))
        return sorted(found, key=lambda p: (p.exchange, p.day))

    def total_bytes(self, table: str) -> int:
        return sum(p.size_bytes for p in self.partitions(table))

    def read_range(
        self,
        spec: TableSpec,
        start_ns: int,
        end_ns: int,
        exchange: str | None = None,
        symbol: str | None = None,
    ) -> pa.Table:
        """Rows with start_ns <= ts < end_ns, of one exchange and symbol if given, in ts order.

        Only the files of the days the range touches are opened, and within them only the
        row groups whose ts/symbol statistics can match are read.
        """
        schema = arrow_schema(spec)
        if start_ns >= end_ns:
            return schema.empty_table()
        first, last = day_of(start_ns), day_of(end_ns - 1)
        keys = [
            partition_key(spec.table, p.exchange, p.day)
            for p in self.partitions(spec.table, exchange)
            if first <= p.day <= last
        ]
        if not keys:
            return schema.empty_table()
        ts_type = schema.field(spec.timestamp).type
        ts = pc.field(spec.timestamp)
        where = (ts >= pa.scalar(start_ns, ts_type)) & (ts < pa.scalar(end_ns, ts_type))
        if symbol is not None:
            where &= pc.field("symbol") == symbol
        filesystem, paths = self._arrow_files(keys)
        try:
            dataset = ds.dataset(paths, schema=schema, format="parquet", filesystem=filesystem)
            table = dataset.to_table(filter=where)
        except (OSError, pa.ArrowException) as exc:
            raise ServiceError(
                f"cold store {self.location}: cannot read {spec.table} "
                f"{first.isoformat()}..{last.isoformat()}: {exc}"
            ) from None
        order = [spec.timestamp, "exchange", "symbol"]
        order += [key for key in spec.dedup_keys if key not in order]
        return table.sort_by([(name, "ascending") for name in order]).cast(schema)

    def clickhouse_source(self, table: str) -> str:
        """The ClickHouse table function that reads every cold file of table.

        With no file yet it reads as an empty table of the warm tier's column types.
        """
        spec = spec_of_table(table)
        return self._table_function(f"{table}/*/*/*.parquet", clickhouse_structure(spec))


class LocalColdStore(ColdStore):
    """Files below a local directory, written with fsync + rename."""

    def __init__(self, location: str, root: Path) -> None:
        super().__init__(location)
        self.root = root

    def check(self) -> None:
        if not self.root.is_dir():
            what = "is not a directory" if self.root.exists() else "does not exist"
            raise ServiceError(
                f"cold directory {self.root} {what}: expected an existing directory "
                "(`marketstream services start` creates one) or s3://bucket/prefix"
            )
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise ServiceError(f"cold directory {self.root} is not writable")

    def url(self, key: str) -> str:
        return str(self.root / key)

    def _error(self, action: str, key: str, exc: OSError) -> ServiceError:
        return ServiceError(f"cold directory {self.root}: cannot {action} {key}: {exc}")

    def _put(self, key: str, data: bytes) -> None:
        self.check()
        path = self.root / key
        # Not named *.parquet: readers globbing the directory never see a half-written file.
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                with temporary.open("wb") as file:
                    file.write(data)
                    file.flush()
                    os.fsync(file.fileno())
                temporary.replace(path)
            finally:
                temporary.unlink(missing_ok=True)
            _fsync_directory(path.parent)  # the rename itself survives a crash
        except OSError as exc:
            raise self._error("write", key, exc) from None

    def _get(self, key: str) -> bytes | None:
        self.check()
        try:
            return (self.root / key).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._error("read", key, exc) from None

    def _list(self, prefix: str) -> list[tuple[str, int]]:
        self.check()
        base = self.root / prefix
        found = []
        try:
            for path in base.rglob(PART_FILE):
                found.append((path.relative_to(self.root).as_posix(), path.stat().st_size))
        except FileNotFoundError:
            pass  # no such table or exchange yet; a file deleted while listing is gone too
        except OSError as exc:
            raise self._error("list", prefix, exc) from None
        return found

    def _delete(self, key: str) -> bool:
        self.check()
        path = self.root / key
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise self._error("delete", key, exc) from None
        for directory in (path.parent, path.parent.parent):  # date=..., then exchange=...
            try:
                directory.rmdir()
            except OSError:
                break  # not empty: other days or exchanges remain
        return True

    def _arrow_files(self, keys: list[str]) -> tuple[pafs.FileSystem, list[str]]:
        return pafs.LocalFileSystem(), [str(self.root / key) for key in keys]

    def _table_function(self, glob_key: str, structure: str) -> str:
        # file() reads absolute paths in chdb (clickhouse-local); a ClickHouse server reads
        # only below its user_files_path.
        pattern = sql_string(str(self.root / glob_key))
        return f"file({pattern}, 'Parquet', {sql_string(structure)})"


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class S3ColdStore(ColdStore):
    """Objects below s3://bucket/prefix; boto3 for requests, pyarrow for range reads."""

    def __init__(
        self, location: str, bucket: str, prefix: str, s3: S3Config, credentials: S3Credentials
    ) -> None:
        super().__init__(location)
        self.bucket, self.prefix, self.s3, self.credentials = bucket, prefix, s3, credentials
        self._client: Any = None  # boto3 ships no types
        self._arrow_fs: pafs.S3FileSystem | None = None

    def _object_key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._object_key(key)}"

    @property
    def endpoint(self) -> str:
        return self.s3.endpoint_url or f"https://s3.{self.s3.region}.amazonaws.com"

    def client(self) -> Any:
        if self._client is None:
            # Imported on use: boto3 takes longer to import than the rest of this module.
            import boto3  # noqa: PLC0415
            from botocore.config import Config  # noqa: PLC0415

            self._client = boto3.client(
                "s3",
                endpoint_url=self.s3.endpoint_url,
                region_name=self.s3.region,
                aws_access_key_id=self.credentials.access_key,
                aws_secret_access_key=self.credentials.secret_key,
                aws_session_token=self.credentials.session_token,
                config=Config(
                    connect_timeout=S3_CONNECT_TIMEOUT_S,
                    read_timeout=S3_READ_TIMEOUT_S,
                    retries={"max_attempts": S3_MAX_ATTEMPTS, "mode": "standard"},
                ),
            )
        return self._client

    def _error(self, action: str, what: str, exc: Exception) -> ServiceError:
        from botocore.exceptions import ClientError, NoCredentialsError  # noqa: PLC0415

        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "?"))
            if code in ("NoSuchBucket", "404"):
                why = (
                    f"bucket {self.bucket!r} does not exist at {self.endpoint}: "
                    "expected an existing bucket"
                )
            elif code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
                why = (
                    f"access denied ({code}): expected credentials in {ACCESS_KEY_ENV}/"
                    f"{SECRET_KEY_ENV} allowed to {action} in bucket {self.bucket!r}"
                )
            else:
                why = f"{code}: {error.get('Message', exc)}"
        elif isinstance(exc, NoCredentialsError):
            why = f"no credentials: set {ACCESS_KEY_ENV} and {SECRET_KEY_ENV}"
        else:
            why = (
                f"S3 endpoint {self.endpoint} not reachable ({exc}): expected an S3 API there "
                "(s3.endpoint_url)"
            )
        return ServiceError(f"cold store {self.location}: cannot {action} {what}: {why}")

    def check(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        try:
            self.client().head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as exc:
            raise self._error("open", "the bucket", exc) from None

    def _put(self, key: str, data: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        try:
            self.client().put_object(Bucket=self.bucket, Key=self._object_key(key), Body=data)
        except (BotoCoreError, ClientError) as exc:
            raise self._error("write", key, exc) from None

    def _get(self, key: str) -> bytes | None:
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        try:
            answer = self.client().get_object(Bucket=self.bucket, Key=self._object_key(key))
            return bytes(answer["Body"].read())
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchKey":
                return None
            raise self._error("read", key, exc) from None
        except BotoCoreError as exc:
            raise self._error("read", key, exc) from None

    def _list(self, prefix: str) -> list[tuple[str, int]]:
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        start = len(self._object_key(""))
        found = []
        try:
            pages = self.client().get_paginator("list_objects_v2")
            for page in pages.paginate(Bucket=self.bucket, Prefix=self._object_key(prefix)):
                for item in page.get("Contents", []):
                    found.append((str(item["Key"])[start:], int(item["Size"])))
        except (BotoCoreError, ClientError) as exc:
            raise self._error("list", prefix, exc) from None
        return found

    def _delete(self, key: str) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        # A listing, not HEAD: a HEAD's 404 cannot tell a missing key from a missing bucket.
        if not any(found == key for found, _ in self._list(key)):
            return False
        try:
            self.client().delete_object(Bucket=self.bucket, Key=self._object_key(key))
        except (BotoCoreError, ClientError) as exc:
            raise self._error("delete", key, exc) from None
        return True

    def _arrow_files(self, keys: list[str]) -> tuple[pafs.FileSystem, list[str]]:
        if self._arrow_fs is None:
            keys_given = self.credentials.access_key is not None
            self._arrow_fs = pafs.S3FileSystem(
                access_key=self.credentials.access_key if keys_given else None,
                secret_key=self.credentials.secret_key if keys_given else None,
                session_token=self.credentials.session_token if keys_given else None,
                region=self.s3.region,
                endpoint_override=self.s3.endpoint_url,
                connect_timeout=S3_CONNECT_TIMEOUT_S,
                request_timeout=S3_READ_TIMEOUT_S,
                retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=S3_MAX_ATTEMPTS),
            )
        return self._arrow_fs, [f"{self.bucket}/{self._object_key(key)}" for key in keys]

    def _bucket_url(self) -> str:
        if self.s3.endpoint_url:  # MinIO, moto: path-style addressing
            base = f"{self.s3.endpoint_url.rstrip('/')}/{self.bucket}"
        else:
            base = f"https://{self.bucket}.s3.{self.s3.region}.amazonaws.com"
        _glob_free(self.location, base)
        return base

    def clickhouse_url(self) -> str:
        """The URL every s3() of this store starts with: the bucket and prefix, '/' ended."""
        return f"{self._bucket_url()}/{self._object_key('')}"

    def _table_function(self, glob_key: str, structure: str) -> str:
        # No keys in the SQL: a view would store them in its definition for anyone to read.
        # ClickHouse (the server, or the engine in the warm gateway) uses its own credentials:
        # AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in its environment, or an instance role.
        url = f"{self._bucket_url()}/{self._object_key(glob_key)}"
        return f"s3({sql_string(url)}, 'Parquet', {sql_string(structure)})"
