"""Commands packed by hiredis: the bytes redis-py's own packer makes, the same errors, and
every kind of connection a URL may choose (TCP, TLS, Unix socket) kept."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import DataError

from marketstream.tiers.redis_bus import connect_async, connect_bus_async
from marketstream.tiers.redis_packing import _HiredisPacking, _packing

COMMANDS: list[tuple[Any, ...]] = [
    ("XACK", "md:{binance}:trades", "hot-writer", *(b"1700000000000-%d" % i for i in range(5000))),
    ("EVAL", "return 1", 1, "md:{binance}:quotes", b'{"type":"quote"}', "é€", b"\x00\xff"),
    ("XREADGROUP", "GROUP", "g", "c", "COUNT", 20000, "BLOCK", 5, "STREAMS", "k", ">"),
    ("SET", "price:{binance}:BTC-USDT", b"x" * 200_000),  # above redis-py's chunking cutoff
    ("ZADD", "z", 0.1, "a", 1e20, "b", -5, "c", 2**70, "d"),
    ("SET", "k", memoryview(b"view")),
    (b"GET", b"k"),
    ("CONFIG GET", "maxmemory"),  # redis-py splits the name: so does this packer, through it
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: str(args[0]))
def test_the_bytes_are_redis_pys(args: tuple[Any, ...]) -> None:
    ours = b"".join(_packing(Connection)().pack_command(*args))
    assert ours == b"".join(Connection().pack_command(*args))


def test_a_value_redis_py_refuses_is_refused_the_same_way() -> None:
    with pytest.raises(DataError, match="Invalid input of type: 'bool'"):
        _packing(Connection)().pack_command("SET", "k", True)


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("redis://127.0.0.1:6379/0", Connection),
        ("rediss://127.0.0.1:6380/0", SSLConnection),
        ("unix:///tmp/redis.sock", UnixDomainSocketConnection),
    ],
)
def test_every_url_keeps_its_kind_of_connection(url: str, kind: type) -> None:
    made = connect_async(url).connection_pool.connection_class
    assert issubclass(made, _HiredisPacking)
    assert issubclass(made, kind)
    assert _packing(made) is made  # applied once, however often asked


def test_a_cluster_client_packs_on_the_nodes_it_discovers_too() -> None:
    client = connect_bus_async("redis+cluster://127.0.0.1:7000")
    assert isinstance(client, redis.asyncio.RedisCluster)
    manager = client.nodes_manager
    assert all(
        issubclass(n.connection_class, _HiredisPacking) for n in manager.startup_nodes.values()
    )
    assert issubclass(manager.connection_kwargs["connection_class"], _HiredisPacking)
