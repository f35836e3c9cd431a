"""Feed rules every venue shares: the channel check and the plain connect URL."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import cast

from marketstream.errors import ConfigError
from marketstream.schemas.instruments import Channel
from marketstream.venues.base.venue import Subscription


def check_channels(venue: str, channels: Iterable[str], offered: Collection[str]) -> list[Channel]:
    """The channels, each one the venue offers; else a ConfigError naming the first that is
    not and the ones that are (a subscription is checked before anything connects)."""
    checked: list[Channel] = []
    for channel in channels:
        if channel not in offered:
            raise ConfigError(
                f"{venue}: channel {channel!r} is not offered: expected one of "
                f"{', '.join(sorted(offered))}"
            )
        checked.append(cast(Channel, channel))
    return checked


def connect_to_base(base: str, subscription: Subscription) -> str:
    """For feeds subscribed by message: the configured URL is the one to connect to."""
    return base
