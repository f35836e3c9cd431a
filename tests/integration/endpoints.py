"""What the integration fixtures hand to tests: the running services' addresses and clients."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from marketstream.tiers.questdb import QuestDBHttp

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


@dataclass(frozen=True)
class S3Endpoint:
    """A moto S3 API server and a boto3 client for it."""

    endpoint_url: str
    client: Any  # boto3's S3 client (boto3 ships no type information)
