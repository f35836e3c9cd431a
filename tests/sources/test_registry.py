"""The source registry and the layout rule it stands for: each source in one folder, names
nowhere else, and dependencies one way."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from marketstream.errors import MarketStreamError
from marketstream.schemas.instruments import SOURCES
from marketstream.sources.base.source import PolledSource
from marketstream.sources.registry import SESSIONS, SOURCE_DEFS, get_session, get_source
from tests.venues.test_registry import PACKAGE, _code_words, _imports


def test_registry_holds_each_source_under_its_own_name() -> None:
    assert set(SOURCE_DEFS) == set(SOURCES)  # every source the schema knows is polled
    assert set(SESSIONS) == set(SOURCES)  # and can be generated for tests, demo and bench
    for name, source in SOURCE_DEFS.items():
        assert isinstance(source, PolledSource)
        assert source.name == name
        assert get_source(name) is source
        assert get_session(name) is SESSIONS[name]
        assert source.quote == "USD"


def test_unknown_source_lists_the_known_ones() -> None:
    with pytest.raises(
        MarketStreamError, match=r"^unknown source 'pyth': expected one of jupiter, birdeye$"
    ):
        get_source("pyth")
    with pytest.raises(MarketStreamError, match=r"^unknown source 'pyth'"):
        get_session("pyth")


# --- the layout: one folder per source, dependencies one way -----------------------------------

SOURCE_NAME = re.compile("|".join(re.escape(name) for name in SOURCES), re.I)
# Besides the source packages, only these may name a source in code.
NAMING_ALLOWED = {PACKAGE / "sources" / "registry.py", PACKAGE / "schemas" / "instruments.py"}


def _source_package(path: Path) -> bool:
    parts = path.relative_to(PACKAGE).parts
    return len(parts) > 2 and parts[0] == "sources" and parts[1] != "base"


def test_no_code_outside_the_source_packages_names_a_source() -> None:
    """Adding a source is one folder, one registry line and one config entry: code anywhere
    else that names a source (a string, an identifier) would be one more place to edit."""
    mentions = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {word!r}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if not _source_package(path) and path not in NAMING_ALLOWED
        for line, word in _code_words(ast.parse(path.read_text()))
        if SOURCE_NAME.search(word)
    ]
    assert mentions == []


def test_the_naming_rule_sees_a_source_named_in_code() -> None:
    """The rule above would pass on a check that finds nothing: it must see these."""
    code = 'NAME = "Jupiter"\nbirdeye_key = 1\nfrom marketstream.sources.jupiter import x\n'
    words = {word for _, word in _code_words(ast.parse(code)) if SOURCE_NAME.search(word)}
    assert words == {"Jupiter", "birdeye_key", "marketstream.sources.jupiter"}
    assert _code_words(ast.parse('"""Docs may name Jupiter."""\n')) == []


def test_every_source_package_is_registered() -> None:
    folders = (PACKAGE / "sources").iterdir()
    packages = sorted(p.name for p in folders if p.name != "base" and (p / "source.py").is_file())
    assert packages == sorted(SOURCES)
    registry = _imports(PACKAGE / "sources" / "registry.py")
    assert {f"marketstream.sources.{package}.source" for package in packages} <= registry


NEVER = tuple(
    f"marketstream.{room}" for room in ("ingest", "tiers", "quality", "venues", "writers", "serve")
)


def test_sources_depend_on_no_runtime_part() -> None:
    """Sources are the API's rules as data and pure functions: the poller, the recorder and
    the replay server use them, never the other way round."""
    wrong = [
        f"{path.relative_to(PACKAGE.parent)} imports {module}"
        for path in sorted((PACKAGE / "sources").rglob("*.py"))
        for module in sorted(_imports(path))
        if module.startswith(NEVER)
    ]
    assert wrong == []
