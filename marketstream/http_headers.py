"""Reading HTTP response headers every REST client here shares (no HTTP library needed).

`retry_after_s` lives here rather than with the backfill's token bucket (`quality/`) so that
the polled sources, which must not depend on `quality/`, read `Retry-After` the same way.
"""

from __future__ import annotations

import re
from email.utils import parsedate_to_datetime
from typing import Final

# RFC 9110 says delta-seconds are whole; a fraction ("0.5") is accepted too, which only our
# own replay server sends (to inject sub-second backoffs in tests).
_DELTA: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def retry_after_s(value: str | None, now_s: float) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP date; None if absent/bad."""
    if value is None:
        return None
    text = value.strip()
    if _DELTA.fullmatch(text):
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, moment.timestamp() - now_s)
