"""The recording format: strict reading with file and line in every error, safe writing."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketstream.errors import MarketStreamError
from marketstream.replay.recording_format import (
    RecordedFrame,
    RecordingWriter,
    read_recording,
    read_recording_lines,
)

FRAME = RecordedFrame(1626992741062170112, "binance-usdm", "wss://x/stream", '{"a":"é\\n"}')


def test_written_frames_read_back_equal(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "r.jsonl"  # the writer creates missing directories
    rest = RecordedFrame(2, "binance-usdm", "https://api/x?y=1", '{"bids":[]}')
    with RecordingWriter(path) as writer:
        writer.write(FRAME)
        writer.write(rest)
    assert list(read_recording(path)) == [FRAME, rest]
    assert [f.is_rest for f in read_recording(path)] == [False, True]


def test_the_writer_appends(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    for _ in range(2):
        with RecordingWriter(path) as writer:
            writer.write(FRAME)
    assert len(list(read_recording(path))) == 2


def test_the_real_recordings_read(recordings: Path) -> None:
    counts = {p.name: sum(1 for _ in read_recording(p)) for p in recordings.glob("*.jsonl")}
    assert counts == {"binance-spot.jsonl": 265, "binance-usdm.jsonl": 1535, "coinbase.jsonl": 9946}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "got a JSON array"),
        ('{"exchange":"x","url":"u","frame":"f"}', "recv_ns missing or not an integer"),
        ('{"recv_ns":true,"exchange":"x","url":"u","frame":"f"}', "recv_ns"),
        ('{"recv_ns":1.5,"exchange":"x","url":"u","frame":"f"}', "recv_ns"),
        ('{"recv_ns":1,"exchange":"x","url":"u","frame":{"a":1}}', "frame missing or not a string"),
        ('{"recv_ns":1,"url":"u","frame":"f"}', "exchange missing or not a string"),
    ],
)
def test_a_bad_line_is_named_by_file_and_number(tmp_path: Path, line: str, reason: str) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(FRAME.to_json_line() + b"\n" + FRAME.to_json_line() + line.encode() + b"\n")
    with pytest.raises(MarketStreamError) as caught:
        list(read_recording(path))
    message = str(caught.value)
    assert message.startswith(
        f"{path} line 4: expected a JSON object with recv_ns, exchange, url, frame"
    )
    assert reason in message
    assert "\n" not in message


def test_line_numbers_count_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"\n" + FRAME.to_json_line() + b"   \n" + FRAME.to_json_line())
    assert [number for number, _ in read_recording_lines(path)] == [2, 4]


@pytest.mark.parametrize("name", ["missing.jsonl", "."])
def test_an_unreadable_file_is_one_line(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    with pytest.raises(MarketStreamError, match=r"^cannot read recording .*: \w"):
        list(read_recording(path))


def test_an_unwritable_path_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(MarketStreamError, match=r"^cannot write recording "):
        RecordingWriter(tmp_path)  # a directory


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_lines_reach_the_file_within_the_flush_interval(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    clock = FakeClock()
    writer = RecordingWriter(path, flush_interval_s=1.0, clock=clock)
    writer.write(FRAME)
    clock.now += 0.5
    writer.write(FRAME)
    writer.flush_if_due()
    assert path.read_bytes() == b""  # the oldest line is younger than the interval
    clock.now += 0.5
    writer.flush_if_due()  # the owner's timer: a quiet feed is flushed too
    assert path.read_bytes() == FRAME.to_json_line() * 2
    writer.write(FRAME)
    clock.now += 1.0
    writer.write(FRAME)  # a write finds its predecessor due
    assert path.read_bytes() == FRAME.to_json_line() * 4
    writer.close()
    assert writer.frames_written == 4


def test_a_full_buffer_is_written_at_once(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    writer = RecordingWriter(path, max_buffer_bytes=1, clock=FakeClock())
    writer.write(FRAME)
    assert path.read_bytes() == FRAME.to_json_line()
    writer.close()


@pytest.mark.parametrize("recv_ns", [2**63 - 1, 2**63, 2**64 - 1, -(2**63)])
def test_lines_read_as_before_at_the_integer_limits(tmp_path: Path, recv_ns: int) -> None:
    """The typed decoder takes int64; a larger time JSON allows (up to 2**64 - 1, as orjson
    reads) is read the slow way, to the same frame."""
    path = tmp_path / "x.jsonl"
    path.write_bytes(RecordedFrame(recv_ns, "x", "u", "f").to_json_line())
    assert [f.recv_ns for f in read_recording(path)] == [recv_ns]


def test_a_time_past_what_json_integers_hold_here_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"recv_ns":%d,"exchange":"x","url":"u","frame":"f"}\n' % 2**64)
    with pytest.raises(MarketStreamError, match="recv_ns missing or not an integer"):
        list(read_recording(path))
