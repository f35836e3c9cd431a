"""The replay server frames its messages itself: byte for byte what websockets would send."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode

from marketstream.replay.server import _text_header


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70_000])
def test_a_text_frame_is_framed_as_websockets_frames_it(size: int) -> None:
    payload = b"x" * size
    expected = Frame(Opcode.TEXT, payload).serialize(mask=False)
    assert _text_header(size) + payload == expected
