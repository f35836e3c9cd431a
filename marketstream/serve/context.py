"""What every route shares: the configuration, the Redis client, the tier readers, the limits.

One `ServeContext` per app (`app.state.context`); routes reach it with `context_of(request)`.
The tier readers (`TieredQueries`: a QuestDB PG-wire connection, a ClickHouse client, the
cold store) are blocking and not thread-safe, so each request borrows one from a small pool
and runs on a worker thread; one that failed is closed, not returned.
"""

from __future__ import annotations

import os
import queue
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.requests import HTTPConnection

from marketstream.config import PipelineConfig, ServeConfig
from marketstream.serve.auth import token_of
from marketstream.serve.limits import StreamSlots
from marketstream.tiers.redis_bus import AsyncRedis, connect_bus_async

if TYPE_CHECKING:
    from marketstream.query.all_tiers import TieredQueries

POOL_SIZE = 4  # idle tier readers kept open; more are opened under load and closed after


class _TieredPool:
    """Open `TieredQueries`, reused across requests (opening one connects to three stores)."""

    def __init__(self, config: PipelineConfig, state_dir: Path | None, size: int) -> None:
        self._config, self._state_dir = config, state_dir
        self._idle: queue.LifoQueue[tuple[TieredQueries, ExitStack]] = queue.LifoQueue(size)

    @contextmanager
    def borrow(self) -> Iterator[TieredQueries]:
        from marketstream.wiring import open_tiered  # noqa: PLC0415 - pyarrow, psycopg, chdb

        try:
            tiered, stack = self._idle.get_nowait()
        except queue.Empty:
            stack = ExitStack()
            try:
                tiered = stack.enter_context(open_tiered(self._config, self._state_dir))
            except BaseException:
                stack.close()
                raise
        try:
            yield tiered
        except BaseException:
            stack.close()  # a failed reader may hold a broken connection: never reuse it
            raise
        try:
            self._idle.put_nowait((tiered, stack))
        except queue.Full:
            stack.close()

    def close(self) -> None:
        while True:
            try:
                _, stack = self._idle.get_nowait()
            except queue.Empty:
                return
            stack.close()


@dataclass
class ServeContext:
    """The app's shared state. `token` is None when auth is off (loopback without a token)."""

    config: PipelineConfig
    settings: ServeConfig
    redis: AsyncRedis
    state_dir: Path | None
    token: str | None = None
    slots: StreamSlots = field(init=False)
    _pool: _TieredPool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.slots = StreamSlots(self.settings.max_streams_per_client)
        self._pool = _TieredPool(self.config, self.state_dir, POOL_SIZE)

    @classmethod
    def build(
        cls,
        config: PipelineConfig,
        state_dir: Path | None,
        environ: Mapping[str, str] | None = None,
    ) -> ServeContext:
        """From the configuration: Redis from `endpoints.redis` (or services.json; single
        server or cluster by the URL), the token from `$<serve.token_env>`."""
        from marketstream.wiring import endpoint  # noqa: PLC0415

        env = os.environ if environ is None else environ
        redis = connect_bus_async(endpoint(config, state_dir, "redis"))
        return cls(config, config.serve, redis, state_dir, token=token_of(config.serve, env))

    def tiered(self) -> AbstractContextManager[TieredQueries]:
        """QuestDB, ClickHouse and the cold store stitched by day (blocking: call it on a
        worker thread, e.g. `starlette.concurrency.run_in_threadpool`)."""
        return self._pool.borrow()

    async def aclose(self) -> None:
        self._pool.close()
        await self.redis.aclose()


def context_of(connection: HTTPConnection) -> ServeContext:
    """The context of the app serving a request or WebSocket."""
    context: ServeContext = connection.app.state.context
    return context
