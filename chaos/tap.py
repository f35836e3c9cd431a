"""The tap: every entry ingest published, read through a consumer group of its own.

The group `chaos-tap` is created on every stream the run's configuration implies, at id 0
and before ingest starts, so stream trimming (which never drops what a group has not
acknowledged) cannot cut an entry before the tap has read it. An entry is acknowledged only
after it is recorded; after a Redis restart the tap re-reads its pending entries first.
Entries are kept by (stream, id), so a redelivery is recorded once.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import redis

from marketstream.schemas.codec import ENTRY_FIELD
from marketstream.tiers.redis_bus import connect

TAP_GROUP = "chaos-tap"
TAP_CONSUMER = "tap"


def parse_entry_id(entry_id: bytes) -> tuple[int, int]:
    millis, _, seq = entry_id.partition(b"-")
    return int(millis), int(seq or 0)


@dataclass
class Tap:
    url: str
    streams: list[str]
    entries: dict[tuple[str, tuple[int, int]], bytes] = field(default_factory=dict)
    reconnects: int = 0
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def create_groups(self) -> None:
        client = connect(self.url)
        try:
            for stream in self.streams:
                try:
                    client.xgroup_create(stream, TAP_GROUP, id="0", mkstream=True)
                except redis.ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise
        finally:
            client.close()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="chaos-tap", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.entries)

    def snapshot(self) -> dict[tuple[str, tuple[int, int]], bytes]:
        with self._lock:
            return dict(self.entries)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                client = connect(self.url, timeout_s=5.0)
                try:
                    self._read(client, "0")  # pending first: what was read but not acked
                    while not self._stop.is_set():
                        if not self._read(client, ">", block_ms=500):
                            continue
                finally:
                    client.close()
            except (redis.RedisError, OSError) as exc:
                self.reconnects += 1
                if len(self.errors) < 20:
                    self.errors.append(f"{type(exc).__name__}: {exc}"[:200])
                time.sleep(0.3)

    def _read(self, client: redis.Redis, start: str, block_ms: int | None = None) -> int:
        while True:
            reply: Any = client.xreadgroup(
                TAP_GROUP,
                TAP_CONSUMER,
                dict.fromkeys(self.streams, start),
                count=2000,
                block=block_ms,
            )
            got = 0
            for raw_stream, items in reply or []:
                stream = raw_stream.decode() if isinstance(raw_stream, bytes) else raw_stream
                ids = []
                with self._lock:
                    for entry_id, fields in items:
                        ids.append(entry_id)
                        if fields:  # None: deleted after delivery (trimmed): nothing to keep
                            key = (stream, parse_entry_id(entry_id))
                            self.entries[key] = fields[ENTRY_FIELD]
                if ids:
                    client.xack(stream, TAP_GROUP, *ids)
                    got += len(ids)
            if start == ">" or got == 0:
                return got
