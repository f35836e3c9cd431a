"""Commands packed into RESP by hiredis (in C) on the asyncio clients of the hot path.

redis-py's asyncio connections pack every argument in Python: a hot writer's XACK of a
20,000-entry batch took 7.7 ms to pack (2.0 ms through hiredis), ingest's per-stream EVAL of
500 records 0.20 ms (0.05). The bytes are the same for what redis-py accepts (str, bytes,
int, float, memoryview); a command redis-py would split (`CONFIG GET`) or a value it refuses
(a bool: its DataError names it) goes through redis-py's own packer.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

import hiredis
import redis.asyncio
from redis.asyncio.connection import AbstractConnection


class _HiredisPacking(AbstractConnection):
    def pack_command(self, *args: Any) -> list[bytes]:
        name = args[0]
        if (isinstance(name, str) and " " in name) or (isinstance(name, bytes) and b" " in name):
            return super().pack_command(*args)
        try:
            return [hiredis.pack_command(args)]
        except TypeError:
            return super().pack_command(*args)


Conn = TypeVar("Conn", bound=AbstractConnection)
_MADE: dict[type, type] = {}  # one subclass per connection class


def _packing(connection_class: type[Conn]) -> type[Conn]:
    """The URL's connection class (TCP, TLS or Unix socket) packing through hiredis."""
    if issubclass(connection_class, _HiredisPacking):
        return connection_class
    made = _MADE.get(connection_class)
    if made is None:
        name = f"Hiredis{connection_class.__name__}"
        made = _MADE[connection_class] = type(name, (_HiredisPacking, connection_class), {})
    return cast(type[Conn], made)


Client = TypeVar("Client", redis.asyncio.Redis, redis.asyncio.RedisCluster)


def pack_with_hiredis(client: Client) -> Client:
    """Have the client's connections, made from now on, pack commands through hiredis."""
    if isinstance(client, redis.asyncio.RedisCluster):
        manager = client.nodes_manager
        for node in manager.startup_nodes.values():
            node.connection_class = _packing(node.connection_class)
        kwargs = manager.connection_kwargs  # the nodes it discovers are made with these
        kwargs["connection_class"] = _packing(kwargs["connection_class"])
        return client
    pool = client.connection_pool
    pool.connection_class = _packing(pool.connection_class)
    return client
