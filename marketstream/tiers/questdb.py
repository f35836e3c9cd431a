"""QuestDB, the hot tier: SQL over the HTTP `/exec` endpoint, and the ILP sender's address.

Rows are written with the `questdb` client over ILP/HTTP (the same HTTP port); this module
only sends GETs (`marketstream.http_client`), so checks and small queries stay cheap.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from marketstream import http_client
from marketstream.config import redact_url
from marketstream.errors import ServiceError


class QuestDBHttp:
    """SQL over QuestDB's HTTP API at base_url (`http://host:port`)."""

    def __init__(self, base_url: str, *, timeout_s: float = 10.0) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.port is None:
            raise ServiceError(
                f"QuestDB URL {redact_url(base_url)!r} is not valid: expected http://host:port"
            )
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._scheme = parts.scheme
        self._netloc = parts.netloc

    def sender_conf(self) -> str:
        """The `questdb.Sender.from_conf` string for ILP over HTTP on this server."""
        return f"{self._scheme}::addr={self._netloc};"

    def export(self, sql: str, *, fmt: str = "parquet", timeout_s: float = 300.0) -> bytes:
        """The rows of a query as one file (`/exp`): Parquet keeps nanosecond timestamps and
        array columns exactly and reads straight into Arrow, unlike CSV or paged JSON."""
        query = urllib.parse.urlencode({"query": sql, "fmt": fmt})
        return self._get(f"{self.base_url}/exp?{query}", sql, timeout_s)

    def exec(self, sql: str) -> dict[str, Any]:
        """Run one statement; the decoded JSON answer (`columns`, `dataset`, `count`, or `ddl`).

        QuestDB answers an SQL error with HTTP 400 and a JSON `error`; that becomes a
        ServiceError naming the URL and the statement.
        """
        url = f"{self.base_url}/exec?{urllib.parse.urlencode({'query': sql})}"
        body = self._get(url, sql, self.timeout_s)
        try:
            answer = json.loads(body)
        except ValueError:
            raise ServiceError(
                f"QuestDB at {self.base_url} answered {_short(sql)!r} with non-JSON: {body[:120]!r}"
            ) from None
        if not isinstance(answer, dict):
            raise ServiceError(f"QuestDB at {self.base_url}: unexpected answer {answer!r:.120}")
        if "error" in answer:
            raise ServiceError(
                f"QuestDB at {self.base_url} rejected {_short(sql)!r}: {answer['error']}"
            )
        return answer

    def _get(self, url: str, sql: str, timeout_s: float) -> bytes:
        try:
            answer = http_client.get(url, timeout_s)
        except OSError as exc:
            raise ServiceError(f"QuestDB at {self.base_url} unreachable: {exc}") from None
        if not 200 <= answer.status < 300:
            detail = _error_text(answer.body) or f"HTTP {answer.status} {answer.reason}"
            raise ServiceError(
                f"QuestDB at {self.base_url} rejected {_short(sql)!r}: {detail}"
            ) from None
        return answer.body


def _error_text(body: bytes) -> str | None:
    try:
        answer = json.loads(body)
    except ValueError:
        return body.decode(errors="replace").strip()[:200] or None
    if isinstance(answer, dict) and "error" in answer:
        return str(answer["error"])
    return None


def _short(sql: str, limit: int = 120) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
