"""When a batch in hand is due: `batch_wait_ms` after its first entry, or once a read found
nothing new `batch_quiet_ms` after its last entry came."""

from __future__ import annotations

from marketstream.writers.hot_writer import _Batch
from marketstream.writers.hot_writer_redis import StreamEntry


def _entry(n: int) -> StreamEntry:
    return StreamEntry("md:{unit}:trades", f"{n}-0".encode(), {b"d": b"{}"})


def test_a_read_waits_until_quiet_or_until_the_wait_is_over() -> None:
    batch = _Batch()
    batch.add_new([_entry(1)])
    first = batch.started
    assert batch.grown == first
    assert batch.deadline(wait_s=0.25, quiet_s=0.025) == first + 0.025  # quiet first
    batch.grown = first + 0.24  # entries kept coming: the wait ends it
    assert batch.deadline(wait_s=0.25, quiet_s=0.025) == first + 0.25


def test_time_alone_never_makes_a_batch_quiet() -> None:
    """A writer busy building rows for a while has entries waiting in Redis: only a read
    that found none may call the batch quiet."""
    batch = _Batch()
    assert not batch.due(now=1e9, wait_s=0.25)  # empty: never due
    batch.add_new([_entry(1)])
    assert not batch.due(now=batch.started + 0.2, wait_s=0.25)
    batch.quiet = True
    assert batch.due(now=batch.started + 0.2, wait_s=0.25)
    batch.add_new([_entry(2)])  # more came: no longer quiet
    assert not batch.quiet
    assert batch.due(now=batch.started + 0.25, wait_s=0.25)


def test_entries_added_later_move_the_quiet_deadline_not_the_start() -> None:
    batch = _Batch()
    batch.add_new([_entry(1)])
    first = batch.started
    later = _Batch()
    later.add_new([_entry(2)])
    batch.extend(later)
    assert batch.started == first
    assert batch.grown >= later.grown >= first
    assert len(batch) == 2
