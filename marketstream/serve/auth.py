"""Bearer-token authentication: off on loopback without a token, required anywhere else.

The token comes from the environment variable `serve.token_env` names, never from a file or
a log. When it is set, every HTTP route and WebSocket except /healthz asks for
`Authorization: Bearer <token>` (a WebSocket may send `?token=` instead, which browsers can);
a missing or wrong token gets 401 (WebSocket close 1008). Comparison is constant-time.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping
from typing import Final

from starlette.requests import HTTPConnection

from marketstream.config import ServeConfig
from marketstream.errors import ConfigError

OPEN_PATHS: Final = frozenset({"/healthz"})


def token_of(settings: ServeConfig, environ: Mapping[str, str]) -> str | None:
    """The configured token, or None when its variable is unset or empty."""
    return environ.get(settings.token_env) or None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_start(host: str, token: str | None, token_env: str) -> None:
    """Refuse to serve beyond loopback without a token (one line, no secret)."""
    if token is None and not is_loopback(host):
        raise ConfigError(
            f"serve: host {host} is not loopback and ${token_env} is empty: set a bearer token "
            f"in ${token_env} to serve beyond this machine, or bind 127.0.0.1"
        )


def presented_token(connection: HTTPConnection) -> str | None:
    """The bearer token a request carries (a WebSocket: the header, else `?token=`)."""
    header = connection.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if connection.scope["type"] == "websocket":
        return connection.query_params.get("token") or None
    return None


def authorized(connection: HTTPConnection, token: str | None) -> bool:
    """True when no token is configured, for the open paths, or for the right token."""
    if token is None or connection.url.path in OPEN_PATHS:
        return True
    given = presented_token(connection)
    return given is not None and hmac.compare_digest(given.encode(), token.encode())
