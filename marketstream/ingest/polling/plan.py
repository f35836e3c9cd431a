"""Which polled sources `ingest` runs, with what URL and headers, checked before anything
starts: an unknown source, a missing key, or a cadence the account's request limit or credit
budget cannot carry is a one-line ConfigError naming the key and what to set."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from marketstream.config import PipelineConfig, SourceConfig
from marketstream.errors import ConfigError
from marketstream.ingest.polling.poller import budget_problem
from marketstream.sources.base.source import PolledSource
from marketstream.sources.registry import get_source


@dataclass(frozen=True, slots=True)
class PlannedSource:
    source: PolledSource
    config: SourceConfig
    base_url: str
    headers: Mapping[str, str]  # may hold the API key: never logged or shown

    def __repr__(self) -> str:  # the headers stay out of any log or traceback
        return f"PlannedSource({self.source.name}, {self.base_url})"


def plan_sources(
    config: PipelineConfig,
    environ: Mapping[str, str],
    only: Sequence[str] | None = None,
    group: str | None = None,
) -> list[PlannedSource]:
    """The enabled sources (of `group`), or exactly `only`; ConfigError on what cannot run."""
    enabled = config.enabled_sources(group)
    names = list(only) if only else list(enabled)
    planned: list[PlannedSource] = []
    for name in names:
        settings = config.sources.get(name)  # type: ignore[call-overload]
        source = get_source(name)  # an unknown name: a one-line error listing the known ones
        if settings is None:
            raise ConfigError(f"source {name!r} is not configured: add sources.{name}")
        problem = budget_problem(source, settings)
        if problem is not None:
            raise ConfigError(problem)
        planned.append(
            PlannedSource(
                source,
                settings,
                settings.url or source.default_url,
                {**source.headers, **_key_header(source, settings, environ)},
            )
        )
    return planned


def _key_header(
    source: PolledSource, settings: SourceConfig, environ: Mapping[str, str]
) -> dict[str, str]:
    variable = settings.api_key_env
    key = environ.get(variable, "").strip() if variable else ""
    if key:
        return {source.key_header: key}
    if source.key_required:
        where = (
            f"set the environment variable {variable}"
            if variable
            else f"set sources.{source.name}.api_key_env to the variable that holds it"
        )
        raise ConfigError(f"sources.{source.name}: {source.name} needs an API key: {where}")
    return {}
