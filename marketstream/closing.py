"""`with` for objects that own one resource (a connection, a file) and free it in `close()`."""

from __future__ import annotations

from typing import Self


class Closing:
    """Entering returns the object; leaving, however the block ends, calls `close()`."""

    __slots__ = ()

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
