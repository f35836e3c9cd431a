"""Redis: the stream bus and the latest-price cache. This module owns the connection."""

from __future__ import annotations

import redis

from marketstream.errors import ServiceError


def connect(url: str, *, timeout_s: float = 5.0) -> redis.Redis:
    """A client for a redis://, rediss:// or unix:// URL; connects lazily on first command.

    Socket timeouts keep a dead server from hanging a command forever.
    """
    try:
        return redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    except ValueError as exc:
        raise ServiceError(f"Redis URL {url!r} is not valid: {exc}") from None
