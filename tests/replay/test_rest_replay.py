"""The REST replay server of a polled source, over real HTTP on a free port: answers by target
at the replay position, looping, faults every N-th request, the control endpoints, held
answers that hold nobody else, and keep-alive."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path

import httpx
import orjson
import pytest

from marketstream.replay.faults import FaultPlan
from marketstream.replay.recording_format import RecordedFrame
from marketstream.replay.rest_server import RestReplayServer
from tests.replay.helpers import WAIT_S, wait_until
from tests.replay.rest_helpers import (
    PAIR,
    SINGLE,
    SOURCE,
    T0,
    FakeClock,
    price_in,
    price_of,
    rest_frames,
    write_recording,
)

WALL_NOW = 1_760_000_123.5


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    return write_recording(tmp_path / "prices.jsonl", rest_frames())


def client(server: RestReplayServer, **kwargs: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.http_url, timeout=WAIT_S, **kwargs)  # type: ignore[arg-type]


class Faults:
    """A source's own fault shape, recording what it was asked for."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, float, float]] = []

    def __call__(self, status: int, after: float, now: float) -> tuple[Mapping[str, str], bytes]:
        self.calls.append((status, after, now))
        headers = {"x-ratelimit-reset": str(int(now + after)), "content-type": "text/plain"}
        return headers, f"injected {status}".encode()


async def test_each_target_answers_what_was_recorded_at_the_position(recording: Path) -> None:
    clock = FakeClock()
    async with RestReplayServer(recording, clock=clock) as server, client(server) as http:
        seen = []
        for elapsed in (0.0, 0.9, 1.5, 2.5, 3.1, 4.2):  # one cycle is 3.03 s
            clock.now = 1000.0 + elapsed
            pair, single = await http.get(PAIR), await http.get(SINGLE)
            assert (pair.status_code, single.status_code) == (200, 200)
            seen.append((price_in(pair.content), price_in(single.content)))
        assert seen == [
            (price_of(PAIR, 0), price_of(SINGLE, 0)),  # before the first answers: the first
            (price_of(PAIR, 0), price_of(SINGLE, 0)),
            (price_of(PAIR, 1), price_of(SINGLE, 1)),
            (price_of(PAIR, 2), price_of(SINGLE, 2)),
            (price_of(PAIR, 0), price_of(SINGLE, 0)),  # looped
            (price_of(PAIR, 1), price_of(SINGLE, 1)),
        ]
        status = (await http.get("/_control/status")).json()
        assert status == {
            "mode": "rest",
            "exchange": SOURCE,
            "recording": str(recording),
            "answers": 6,
            "targets": sorted([PAIR, SINGLE]),
            "speed": 1.0,
            "loop": True,
            "loops": 1,
            "position_ns": T0 + 50_000_000 + 1_170_000_000,  # 4.2 s - one cycle of 3.03 s
            "cycle_ns": 3_030_000_000,
            "ended": False,
            "requests": 12,
            "connections": 1,
            "connections_total": 1,
        }


async def test_the_query_matches_in_any_order_and_encoding(tmp_path: Path) -> None:
    frames = [
        RecordedFrame(T0, SOURCE, "https://p/defi/multi_price?list_address=a,b&x=1", '{"n":1}')
    ]
    path = write_recording(tmp_path / "r.jsonl", frames)
    async with RestReplayServer(path) as server, client(server) as http:
        answer = await http.get("/defi/multi_price", params={"x": "1", "list_address": "a,b"})
        assert (answer.status_code, answer.content) == (200, b'{"n":1}')
        assert answer.headers["content-type"] == "application/json"


async def test_an_unknown_target_is_a_404_naming_it(recording: Path) -> None:
    async with RestReplayServer(recording) as server, client(server) as http:
        answer = await http.get("/price/v3?ids=UNKNOWNMINT")
        assert answer.status_code == 404
        assert answer.json() == {"error": "no recorded answer for GET /price/v3?ids=UNKNOWNMINT"}
        assert (await http.post(PAIR)).status_code == 405
        assert server.counters.not_found == 1


async def test_without_loop_the_end_is_a_410_that_says_so(recording: Path) -> None:
    clock = FakeClock()
    async with (
        RestReplayServer(recording, clock=clock, loop=False) as server,
        client(server) as http,
    ):
        clock.now += 2.5
        assert price_in((await http.get(PAIR)).content) == price_of(PAIR, 2)
        clock.now += 1.0  # past the last answer plus one tick
        answer = await http.get(PAIR)
        assert answer.status_code == 410
        assert "has ended (the server runs without loop)" in answer.json()["error"]
        status = (await http.get("/_control/status")).json()
        assert (status["loop"], status["ended"], status["loops"]) == (False, True, 0)
        assert server.counters.ended == 1


async def test_recorded_status_and_headers_are_served(tmp_path: Path) -> None:
    frames = [
        RecordedFrame(
            T0,
            SOURCE,
            f"https://p{PAIR}",
            '{"ok":1}',
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "x-ratelimit-remaining": "59",
                "Content-Length": "9999",  # the recorded framing is not repeated
                "Content-Encoding": "gzip",  # the recorded body is already decoded
            },
        ),
        RecordedFrame(T0, SOURCE, f"https://p{SINGLE}", '{"message":"busy"}', 503, {}),
    ]
    path = write_recording(tmp_path / "r.jsonl", frames)
    async with RestReplayServer(path) as server, client(server) as http:
        ok = await http.get(PAIR)
        assert (ok.status_code, ok.content) == (200, b'{"ok":1}')
        assert ok.headers["content-type"] == "application/json; charset=utf-8"
        assert ok.headers["x-ratelimit-remaining"] == "59"
        assert ok.headers["content-length"] == "8"
        assert "content-encoding" not in ok.headers
        busy = await http.get(SINGLE)
        assert (busy.status_code, busy.json()) == (503, {"message": "busy"})
        assert server.counters.answered == 2  # a recorded 503 is an answer, not a fault


async def test_every_nth_request_fails_in_the_sources_own_shape(recording: Path) -> None:
    faults = Faults()
    plan = FaultPlan(fail_429_every=3, retry_after_s=2.0, fail_5xx_every=5, status_5xx=502)
    async with (
        RestReplayServer(
            recording, fault_answer=faults, faults=plan, wall_clock=lambda: WALL_NOW
        ) as server,
        client(server) as http,
    ):
        answers = [await http.get(PAIR) for _ in range(15)]
        assert [a.status_code for a in answers] == [
            200, 200, 429, 200, 502, 429, 200, 200, 429, 502, 200, 429, 200, 200, 429,
        ]  # fmt: skip
        assert answers[2].content == b"injected 429"
        assert answers[2].headers["x-ratelimit-reset"] == str(int(WALL_NOW + 2.0))
        assert answers[4].content == b"injected 502"
        assert faults.calls[:2] == [(429, 2.0, WALL_NOW), (502, 2.0, WALL_NOW)]
        counters = (await http.get("/_control/faults")).json()["counters"]
        assert counters == {
            "requests": 15,
            "since_plan": 15,
            "answered": 8,
            "injected_429": 5,  # the 15th is both: the 429 wins
            "injected_5xx": 2,
            "delayed": 0,
            "not_found": 0,
            "ended": 0,
        }


async def test_a_delayed_answer_is_still_answered_and_counted(recording: Path) -> None:
    plan = FaultPlan(latency_every=2, latency_ms=20, fail_429_every=4)
    async with RestReplayServer(recording, faults=plan) as server, client(server) as http:
        statuses = [(await http.get(PAIR)).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]  # the 4th is delayed and then a 429
        assert (server.counters.delayed, server.counters.answered) == (2, 3)


async def test_a_held_answer_holds_no_other_request(recording: Path) -> None:
    release = asyncio.Event()
    held: list[float] = []

    async def sleep(seconds: float) -> None:
        held.append(seconds)
        await release.wait()

    plan = FaultPlan(latency_every=2, latency_ms=800)
    async with (
        RestReplayServer(recording, faults=plan, sleep=sleep) as server,
        client(server) as first,
        client(server) as second,
    ):
        done: list[str] = []

        async def get(http: httpx.AsyncClient, name: str) -> httpx.Response:
            answer = await http.get(PAIR)
            done.append(name)
            return answer

        assert (await get(first, "1")).status_code == 200
        slow = asyncio.create_task(get(first, "2 (held)"))
        await wait_until(lambda: held == [0.8])
        assert (await get(second, "3")).status_code == 200
        assert not slow.done()
        release.set()
        assert (await slow).status_code == 200
        assert done == ["1", "3", "2 (held)"]
        assert server.counters.delayed == 1


async def test_a_posted_plan_replaces_the_running_one(recording: Path) -> None:
    async with RestReplayServer(recording) as server, client(server) as http:
        assert [(await http.get(PAIR)).status_code for _ in range(3)] == [200, 200, 200]
        posted = await http.post("/_control/faults", json={"fail_429_every": 2, "latency_ms": 5})
        assert posted.status_code == 200
        assert posted.json()["plan"] == {
            "fail_429_every": 2,
            "retry_after_s": 1.0,
            "fail_5xx_every": 0,
            "status_5xx": 503,
            "latency_every": 0,
            "latency_ms": 5.0,
        }
        # counted again from the new plan: its 2nd, 4th and 6th requests fail
        answers = [await http.get(PAIR) for _ in range(6)]
        assert [a.status_code for a in answers] == [200, 429, 200, 429, 200, 429]
        assert (answers[1].headers["retry-after"], answers[1].content) == ("1", b"")  # default
        state = (await http.get("/_control/faults")).json()
        assert state["counters"]["requests"] == 9
        assert state["counters"]["since_plan"] == 6
        assert state["counters"]["injected_429"] == 3


@pytest.mark.parametrize(
    ("plan", "reason"),
    [
        (b'{"fail_429_every": -1}', "fail_429_every must be 0 (off) or a positive count"),
        (b'{"fail_5xx_every": "2"}', "Expected `int`, got `str` - at `$.fail_5xx_every`"),
        (b'{"status_5xx": 404}', "status_5xx must be 500-599, got 404"),
        (b'{"every": 2}', "Object contains unknown field `every`"),
        (b"[1]", "Expected `object`, got `array`"),
        (b"{oops", "expected a JSON object"),
    ],
)
async def test_a_bad_plan_is_refused_and_the_old_one_kept(
    recording: Path, plan: bytes, reason: str
) -> None:
    running = FaultPlan(fail_429_every=7)
    async with RestReplayServer(recording, faults=running) as server, client(server) as http:
        answer = await http.post("/_control/faults", content=plan)
        assert answer.status_code == 400
        assert reason in answer.json()["error"]
        assert server.faults == running


async def test_one_connection_serves_many_requests(recording: Path) -> None:
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with RestReplayServer(recording) as server, client(server, limits=limits) as http:
        for _ in range(50):
            assert (await http.get(PAIR)).status_code == 200
        assert (await http.get("/_control/status")).json()["connections_total"] == 1
        assert server.counters.answered == 50


async def test_a_client_asking_to_close_is_closed(recording: Path) -> None:
    async with RestReplayServer(recording) as server:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(f"GET {PAIR} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        raw = await asyncio.wait_for(reader.read(), WAIT_S)  # to EOF: the server closed
        writer.close()
        head, _, payload = raw.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK")
        assert price_in(payload) == price_of(PAIR, 0)
        await wait_until(lambda: server.status()["connections"] == 0)


async def test_a_malformed_request_is_a_400(recording: Path) -> None:
    async with RestReplayServer(recording) as server:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        raw = await asyncio.wait_for(reader.read(), WAIT_S)
        writer.close()
        assert raw.startswith(b"HTTP/1.1 400 ")
        assert b"bad HTTP request" in raw


async def test_a_broken_fault_answer_is_a_500_and_the_server_goes_on(recording: Path) -> None:
    def broken(status: int, after: float, now: float) -> tuple[Mapping[str, str], bytes]:
        raise RuntimeError("bug")

    plan = FaultPlan(fail_429_every=2)
    async with (
        RestReplayServer(recording, faults=plan, fault_answer=broken) as server,
        client(server) as http,
    ):
        answers = [await http.get(PAIR) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 500, 200, 500]
        assert orjson.loads(answers[1].content) == {"error": f"replay server failed on GET {PAIR}"}
