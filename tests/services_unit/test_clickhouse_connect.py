"""Connecting to ClickHouse: a bad DSN or a server that is not there is one clear line."""

from __future__ import annotations

import pytest

from marketstream.errors import ServiceError
from marketstream.services.process import free_port
from marketstream.tiers import clickhouse


def test_a_server_that_is_not_there_is_named_with_the_reason() -> None:
    dsn = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServiceError) as caught:
        clickhouse.connect(dsn, connect_timeout_s=2)
    assert str(caught.value) == f"ClickHouse at {dsn} unreachable: Connection refused"


@pytest.mark.parametrize("dsn", ["chdb://relative/path", "tcp://127.0.0.1:9000"])
def test_a_dsn_of_another_form_says_what_was_expected(dsn: str) -> None:
    with pytest.raises(ServiceError, match="expected chdb:///absolute/path"):
        clickhouse.connect(dsn)
