"""What the integration fixtures hand to tests: the running services' addresses and clients."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from marketstream.services.process import LOOPBACK
from marketstream.tiers.questdb import QuestDBHttp
from marketstream.writers.hot_writer_questdb import wal_applied

REPO = Path(__file__).resolve().parents[2]
CONFIG_FILE = REPO / "configs" / "pipeline.yaml"


@dataclass(frozen=True)
class QuestDBEndpoints:
    """A running QuestDB: its URLs and ports, and an SQL-over-HTTP client."""

    http_url: str
    ilp_conf: str  # for questdb.Sender.from_conf: ILP over HTTP
    pg_port: int
    ilp_tcp_port: int
    http: QuestDBHttp

    @property
    def pg_url(self) -> str:
        """The PG-wire endpoint (`endpoints.questdb_pg`), default credentials."""
        return f"postgresql://{LOOPBACK}:{self.pg_port}/qdb"

    def wait_applied(self, timeout_s: float = 60.0) -> None:
        """Until QuestDB has applied every write to its tables (the test fails after
        `timeout_s`): what was flushed is then what queries see."""
        deadline = time.monotonic() + timeout_s
        while not wal_applied(self.http):
            if time.monotonic() > deadline:
                pytest.fail(f"QuestDB did not apply the writes within {timeout_s} s")
            time.sleep(0.05)


@dataclass(frozen=True)
class S3Endpoint:
    """A moto S3 API server and a boto3 client for it."""

    endpoint_url: str
    client: Any  # boto3's S3 client (boto3 ships no type information)
