"""Every HTTP GET of ours goes through `http_client` (httpx): one-line errors naming what
went wrong, error statuses kept as answers where the caller reads them, no urllib left."""

from __future__ import annotations

import ast
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import marketstream
from marketstream import http_client
from marketstream.http_client import HttpError
from marketstream.services.process import free_port

PACKAGE = Path(marketstream.__file__).resolve().parent


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path == "/ok" else 429
        body = self.headers.get("User-Agent", "").encode()
        self.send_response(status)
        self.send_header("Retry-After", "7")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def base_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_sync_get_keeps_an_error_status_as_an_answer(base_url: str) -> None:
    answer = http_client.get(f"{base_url}/busy", 5)
    assert (answer.status, answer.headers["retry-after"], answer.reason) == (
        429,
        "7",
        "Too Many Requests",
    )
    assert answer.body.decode().startswith("marketstream/")


async def test_an_async_get_wants_a_success(base_url: str) -> None:
    assert (await http_client.get_async(f"{base_url}/ok", 5)).startswith(b"marketstream/")
    with pytest.raises(HttpError, match=r"^HTTP 429 Too Many Requests$"):
        await http_client.get_async(f"{base_url}/busy", 5)


async def test_nothing_listening_is_one_line() -> None:
    with pytest.raises(OSError, match=r"^\S.*refused") as caught:
        await http_client.get_async(f"http://127.0.0.1:{free_port()}/x", 5)
    assert "\n" not in str(caught.value)


def test_a_url_that_is_not_http_is_named_without_its_password() -> None:
    with pytest.raises(HttpError) as caught:
        http_client.get("ftp://user:secret@example.invalid/x", 5)
    assert str(caught.value) == "not an http(s) URL: ftp://user:***@example.invalid/x"


def test_no_module_of_ours_speaks_http_through_urllib() -> None:
    offenders = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Import | ast.ImportFrom)
        and {"urllib.request", "urllib.error", "http.client"}
        & ({a.name for a in node.names} if isinstance(node, ast.Import) else {node.module or ""})
    )
    assert offenders == []
