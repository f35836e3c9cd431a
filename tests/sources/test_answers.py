"""The helpers every source shares: Retry-After both ways, typed fields."""

from __future__ import annotations

import pytest

from marketstream.http_headers import retry_after_s
from marketstream.quality.ratelimit import retry_after_s as quality_retry_after_s
from marketstream.sources.base.answers import number, optional_int, retry_after_header
from marketstream.sources.base.source import SourceAnswerError


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("7", 7.0),
        ("0.5", 0.5),  # only our replay server sends a fraction: sub-second backoffs in tests
        (" 120 ", 120.0),
        ("Thu, 01 Jan 1970 00:20:00 GMT", 200.0),
        ("Thu, 01 Jan 1970 00:10:00 GMT", 0.0),  # past: at once
        ("-3", None),
        ("1e3", None),
        ("soon", None),
        (None, None),
    ],
)
def test_retry_after_as_seconds_or_a_date(value: str | None, seconds: float | None) -> None:
    assert retry_after_s(value, now_s=1000.0) == seconds


def test_quality_reads_retry_after_with_the_same_parser() -> None:
    assert quality_retry_after_s is retry_after_s


@pytest.mark.parametrize(("after", "header"), [(2.0, "2"), (0.25, "0.25"), (1.5, "1.5"), (-1, "0")])
def test_retry_after_written_as_it_is_read(after: float, header: str) -> None:
    assert retry_after_header(after) == header
    assert retry_after_s(header, 0.0) == max(0.0, after)


def test_digits_that_are_not_ascii_are_an_answer_error_not_a_crash() -> None:
    with pytest.raises(SourceAnswerError, match=r"^s: token t: field 'blockId': expected an int"):
        optional_int("s", "t", "blockId", "²")
    assert optional_int("s", "t", "blockId", "42") == 42
    assert number("s", "t", "usdPrice", 3) == 3.0
    assert type(number("s", "t", "usdPrice", 3)) is float
