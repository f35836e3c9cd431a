"""Does an endpoint answer? One check per kind of endpoint, each returning None or why not.

Checks never raise for an unreachable service: `services status` reports every endpoint,
including the ones that are down.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from marketstream.config import PipelineConfig, S3Config
from marketstream.errors import ServiceError
from marketstream.services.process import tcp_error
from marketstream.services.questdb_server import questdb_error
from marketstream.services.redis_server import redis_error
from marketstream.tiers import clickhouse

S3_TIMEOUT_S = 3.0


def tcp_url_error(url: str) -> str | None:
    """For postgresql:// and tcp:// endpoints: does a TCP connection to host:port succeed?"""
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if not parts.hostname or port is None:
        return f"{url} names no host:port"
    return tcp_error(parts.hostname, port)


def clickhouse_error(dsn: str) -> str | None:
    """Open the engine (chdb) or connect (HTTP) and run SELECT 1."""
    try:
        client = clickhouse.connect(dsn, connect_timeout_s=3.0)
    except clickhouse.EngineInUseError:
        return clickhouse.ENGINE_IN_USE
    except ServiceError as exc:
        return str(exc)
    try:
        client.command("SELECT 1")
    except Exception as exc:  # any failure of the query means "not answering"
        return f"SELECT 1 failed: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}"
    finally:
        client.close()
    return None


def cold_error(location: str, s3: S3Config) -> str | None:
    """A local directory must exist and be writable; s3://bucket/... must answer head_bucket."""
    if location.startswith("s3://"):
        return _s3_bucket_error(location, s3)
    if "://" in location:
        return f"unsupported cold location {location!r}: expected a directory or s3://bucket/prefix"
    path = Path(location)
    if not path.is_dir():
        return f"directory {path} does not exist"
    if not os.access(path, os.W_OK | os.X_OK):
        return f"directory {path} is not writable"
    return None


def _s3_bucket_error(location: str, s3: S3Config) -> str | None:
    # Imported on use: boto3 takes longer to import than every local check takes to run.
    import boto3  # noqa: PLC0415
    from botocore.config import Config  # noqa: PLC0415
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    bucket = urllib.parse.urlsplit(location).netloc
    if not bucket:
        return f"{location} names no bucket: expected s3://bucket/prefix"
    client = boto3.client(
        "s3",
        endpoint_url=s3.endpoint_url,
        region_name=s3.region,
        config=Config(
            connect_timeout=S3_TIMEOUT_S,
            read_timeout=S3_TIMEOUT_S,
            retries={"max_attempts": 1},
        ),
    )
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "?")
        return f"bucket {bucket}: {code}" + (" (no such bucket)" if code == "404" else "")
    except BotoCoreError as exc:
        return f"bucket {bucket}: {exc}"
    return None


def endpoint_checks(config: PipelineConfig) -> dict[str, Callable[[str], str | None]]:
    """The check for each endpoint name in ENDPOINT_NAMES."""
    return {
        "redis": redis_error,
        "questdb_http": questdb_error,
        "questdb_pg": tcp_url_error,
        "questdb_ilp": tcp_url_error,
        "clickhouse": clickhouse_error,
        "cold": lambda location: cold_error(location, config.s3),
    }
