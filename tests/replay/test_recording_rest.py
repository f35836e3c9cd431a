"""REST answers in the recording format: optional status and headers, old lines unchanged,
credentials never kept, and polled-source recordings checked whole."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from marketstream.errors import MarketStreamError
from marketstream.replay.recording_format import (
    RecordedFrame,
    parse_recorded_line,
    read_recording,
    without_secrets,
)
from marketstream.replay.rest_recording import recording_exchange, scan_rest_recording
from marketstream.replay.source import scan_recording
from marketstream.venues.registry import DIALECTS
from tests.replay.rest_helpers import (
    PAIR,
    SINGLE,
    SOURCE,
    T0,
    TICK_NS,
    price_in,
    rest_frames,
    write_recording,
)

OLD_LINE = b'{"recv_ns":5,"exchange":"coinbase","url":"https://api/x?a=1","frame":"{}"}'


def test_an_old_four_field_line_reads_as_a_200_without_headers() -> None:
    frame = parse_recorded_line(OLD_LINE, "old.jsonl", 1)
    assert (frame.status, frame.headers, frame.frame) == (200, {}, "{}")
    assert frame == RecordedFrame(5, "coinbase", "https://api/x?a=1", "{}")


def test_a_default_frame_is_written_with_the_four_fields_only() -> None:
    frame = RecordedFrame(5, "coinbase", "https://api/x?a=1", "{}")
    assert sorted(orjson.loads(frame.to_json_line())) == ["exchange", "frame", "recv_ns", "url"]


def test_status_and_headers_round_trip(tmp_path: Path) -> None:
    answer = RecordedFrame(
        7, SOURCE, "https://p/x?ids=a", '{"m":"x"}', 429, {"Retry-After": "2", "x-r": "é"}
    )
    path = write_recording(tmp_path / "r.jsonl", [answer, *rest_frames()])
    line = orjson.loads(path.read_bytes().splitlines()[0])
    assert (line["status"], line["headers"]) == (429, {"Retry-After": "2", "x-r": "é"})
    assert list(read_recording(path)) == [answer, *rest_frames()]


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ('"status":"429"', "optional status must be an integer 100-599, got '429'"),
        ('"status":700', "optional status must be an integer 100-599, got 700"),
        ('"status":true', "optional status must be an integer 100-599, got True"),
        ('"headers":["a"]', "optional headers must be an object of string values"),
        ('"headers":{"a":1}', "optional headers must be an object of string values"),
    ],
)
def test_a_bad_status_or_headers_is_named_by_file_and_line(
    tmp_path: Path, extra: str, reason: str
) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(OLD_LINE + b"\n" + OLD_LINE[:-1] + b"," + extra.encode() + b"}\n")
    with pytest.raises(MarketStreamError) as caught:
        list(read_recording(path))
    assert str(caught.value) == f"{path} line 2: {reason}"


def test_without_secrets_drops_credentials_whatever_their_case() -> None:
    headers = {
        "X-API-KEY": "k1",
        "x-api-key": "k2",
        "Authorization": "Bearer t",
        "Proxy-Authorization": "p",
        "Cookie": "c",
        "Set-Cookie": "s",
        "X-Auth-Token": "t",
        "x-ratelimit-remaining": "59",
        "x-ratelimit-reset": "1760000001",
        "Retry-After": "1",
        "Content-Type": "application/json",
        "x-api-gateway-request-id": "r",
    }
    assert without_secrets(headers) == {
        "x-ratelimit-remaining": "59",
        "x-ratelimit-reset": "1760000001",
        "Retry-After": "1",
        "Content-Type": "application/json",
        "x-api-gateway-request-id": "r",
    }


def test_a_polled_source_recording_scans_by_target(tmp_path: Path) -> None:
    path = write_recording(tmp_path / "r.jsonl", rest_frames())
    recording = scan_rest_recording(path)
    assert recording_exchange(path) == SOURCE
    assert (recording.exchange, len(recording), recording.targets) == (
        SOURCE,
        6,
        sorted([PAIR, SINGLE]),
    )
    # first answer to last, plus one tick: the last answer lasts as long as the others
    assert recording.cycle_ns == 2 * TICK_NS + 30_000_000 + TICK_NS
    in_tick_1 = T0 + TICK_NS + 500_000_000
    answer = recording.answer(f"/price/v3?ids={PAIR.split('=')[1].replace(',', '%2C')}", in_tick_1)
    assert answer is not None
    assert price_in(answer.body) == 101.0


def test_a_websocket_frame_in_a_source_recording_is_refused(tmp_path: Path) -> None:
    ws = RecordedFrame(T0, SOURCE, "wss://price.example/ws", "{}")
    path = write_recording(tmp_path / "r.jsonl", [*rest_frames()[:2], ws])
    with pytest.raises(MarketStreamError) as caught:
        scan_rest_recording(path)
    assert str(caught.value).startswith(
        f"{path} line 3: a WebSocket frame (wss://price.example/ws)"
    )


def test_the_websocket_server_points_a_source_recording_to_the_rest_server(tmp_path: Path) -> None:
    path = write_recording(tmp_path / "r.jsonl", rest_frames())
    with pytest.raises(MarketStreamError, match="RestReplayServer") as caught:
        scan_recording(path, DIALECTS)
    assert str(caught.value).startswith(f"{path} line 1: {SOURCE!r} is a polled source")


def test_an_exchange_recording_is_not_a_source_recording(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(OLD_LINE + b"\n")
    with pytest.raises(MarketStreamError, match="'coinbase' is not a polled source"):
        scan_rest_recording(path)
