"""Errors whose message is meant for the user: the CLI prints them as one line, no traceback."""


class MarketStreamError(Exception):
    """Base for errors caused by input, configuration or an unreachable service."""


class ConfigError(MarketStreamError):
    """A configuration value is missing or wrong; the message names the key and the value."""


class ServiceError(MarketStreamError):
    """A local service could not be started, stopped or reached; the message says why."""
