"""HTTP GETs over `httpx`: one place for the user agent, the scheme check and the one-line
errors that name the URL (its credentials redacted) and what was expected.

Async code uses `get_async` (`httpx.AsyncClient`), sync code `get` (`httpx.Client`). Both
raise `HttpError` (an OSError, as connection failures always were here) when nothing usable
came back; `get` returns error statuses as answers for callers that read them (Retry-After).
"""

from __future__ import annotations

import functools
import logging
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import certifi
import httpx

from marketstream import __version__
from marketstream.config import redact_url

USER_AGENT: Final = f"marketstream/{__version__}"
_HEADERS: Final = {"User-Agent": USER_AGENT}
# httpx logs every request at INFO: a line per REST snapshot is noise in ingest's log.
logging.getLogger("httpx").setLevel(logging.WARNING)


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every client: building one loads the CA bundle (~20 ms), which
    must not block the event loop on each snapshot request."""
    return ssl.create_default_context(cafile=certifi.where())


class HttpError(OSError):
    """A GET that gave nothing usable; the message is one line. `status` is the HTTP status
    when one came back (None: no answer at all), so callers can tell what is worth retrying."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    headers: Mapping[str, str]  # names in lower case
    body: bytes
    reason: str = ""  # the status line's phrase


def check_http_url(url: str) -> None:
    if not url.startswith(("http://", "https://")):
        raise HttpError(f"not an http(s) URL: {redact_url(url)}")


def get(url: str, timeout_s: float, *, accept: str | None = None) -> HttpAnswer:
    """One GET; an HTTP error status is an answer too. HttpError when nothing came back."""
    check_http_url(url)
    headers = dict(_HEADERS) if accept is None else {**_HEADERS, "Accept": accept}
    try:
        with httpx.Client(timeout=timeout_s, headers=headers, verify=_tls()) as client:
            response = client.get(url)
    except httpx.HTTPError as exc:
        raise HttpError(_reason(exc)) from None
    return _answer(response)


async def get_async(url: str, timeout_s: float) -> bytes:
    """One GET whose answer must be 2xx (a snapshot: an error body would not be one)."""
    check_http_url(url)
    try:
        async with httpx.AsyncClient(timeout=timeout_s, headers=_HEADERS, verify=_tls()) as client:
            response = await client.get(url)
    except httpx.HTTPError as exc:
        raise HttpError(_reason(exc)) from None
    if not response.is_success:
        raise HttpError(
            f"HTTP {response.status_code} {response.reason_phrase}", response.status_code
        )
    return response.content


def open_async_client(
    base_url: str, headers: Mapping[str, str], timeout_s: float
) -> httpx.AsyncClient:
    """A client kept for many requests to one API (a polled source): one TLS handshake, then
    kept-alive connections, our user agent beside the given headers (which may hold a key:
    they are never logged)."""
    check_http_url(base_url)
    return httpx.AsyncClient(
        base_url=base_url,
        headers={**_HEADERS, **headers},
        timeout=timeout_s,
        verify=_tls(),
        limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
    )


async def get_answer(client: httpx.AsyncClient, target: str) -> HttpAnswer:
    """One GET of `target` (path and query) on a kept client; any status is an answer.
    HttpError when nothing came back (refused, timed out, cut)."""
    try:
        response = await client.get(target)
    except httpx.HTTPError as exc:
        raise HttpError(_reason(exc)) from None
    return _answer(response)


def _answer(response: httpx.Response) -> HttpAnswer:
    headers = {k.lower(): v for k, v in response.headers.items()}
    return HttpAnswer(response.status_code, headers, response.content, response.reason_phrase)


def _reason(exc: httpx.HTTPError) -> str:
    """What went wrong, in one line: the system error at the bottom where there is one (the
    async client words a refused connection differently from the sync one), else httpx's."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno is not None:
            return f"[Errno {cause.errno}] {os.strerror(cause.errno)}"
        cause = cause.__cause__ or cause.__context__
    return " ".join(str(exc).split()) or type(exc).__name__
