"""The venue registry and the layout rule it stands for: each exchange in one folder."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import marketstream
from marketstream.errors import MarketStreamError
from marketstream.schemas.instruments import EXCHANGES as EXCHANGE_NAMES
from marketstream.venues.registry import VENUES, get_venue


def test_registry_holds_each_exchange_under_its_own_name() -> None:
    assert set(VENUES) == set(EXCHANGE_NAMES)  # every exchange the schema knows is served
    for name, exchange in VENUES.items():
        assert exchange.name == name
        assert name in EXCHANGE_NAMES  # records carry a name validation accepts
        assert get_venue(name) is exchange


def test_unknown_exchange_lists_the_known_ones() -> None:
    with pytest.raises(
        MarketStreamError,
        match=r"^unknown exchange 'ftx': expected one of binance, binance-usdm, bybit, "
        r"coinbase, kraken, okx$",
    ):
        get_venue("ftx")


# --- the layout: one folder per exchange, dependencies one way ---------------------------------

PACKAGE = Path(marketstream.__file__).resolve().parent
VENUE_NAME = re.compile("|".join(re.escape(n.split("-")[0]) for n in EXCHANGE_NAMES), re.I)
# Besides the venue packages, only these may name an exchange in code.
NAMING_ALLOWED = {PACKAGE / "venues" / "registry.py", PACKAGE / "schemas" / "instruments.py"}


def _venue_package(path: Path) -> bool:
    parts = path.relative_to(PACKAGE).parts
    return len(parts) > 2 and parts[0] == "venues" and parts[1] != "base"


def _code_words(tree: ast.AST) -> list[tuple[int, str]]:
    """Identifiers, imported names and string literals, docstrings left out (they are docs)."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    words: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in docstrings:
                words.append((line, node.value))
        elif isinstance(node, ast.Name):
            words.append((line, node.id))
        elif isinstance(node, ast.Attribute):
            words.append((line, node.attr))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            words.append((line, node.name))
        elif isinstance(node, ast.ImportFrom):
            words.append((line, node.module or ""))
        elif isinstance(node, ast.alias):
            words.append((line, f"{node.name} {node.asname or ''}"))
        elif isinstance(node, ast.arg | ast.keyword) and node.arg is not None:
            words.append((line, node.arg))
    return words


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at module level or inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_no_code_outside_the_venue_packages_names_an_exchange() -> None:
    """Adding an exchange is one folder, one registry line and one config entry: code anywhere
    else that names an exchange (a string, an identifier) would be one more place to edit."""
    mentions = [
        f"{path.relative_to(PACKAGE.parent)}:{line}: {word!r}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if not _venue_package(path) and path not in NAMING_ALLOWED
        for line, word in _code_words(ast.parse(path.read_text()))
        if VENUE_NAME.search(word)
    ]
    assert mentions == []


def test_every_venue_package_is_registered() -> None:
    venues = (PACKAGE / "venues").iterdir()
    packages = sorted(p.name for p in venues if p.name != "base" and (p / "venue.py").is_file())
    assert packages == ["binance", "bybit", "coinbase", "kraken", "okx"]
    registry = _imports(PACKAGE / "venues" / "registry.py")
    assert {f"marketstream.venues.{package}.venue" for package in packages} <= registry


@pytest.mark.parametrize(
    ("room", "never"),
    [
        ("replay", ("marketstream.venues", "marketstream.ingest")),  # dialects import its base
        ("venues", ("marketstream.ingest", "marketstream.tiers", "marketstream.quality")),
        ("schemas", ("marketstream.venues", "marketstream.replay", "marketstream.ingest")),
    ],
)
def test_dependencies_flow_one_way(room: str, never: tuple[str, ...]) -> None:
    wrong = [
        f"{path.relative_to(PACKAGE.parent)} imports {module}"
        for path in sorted((PACKAGE / room).rglob("*.py"))
        for module in sorted(_imports(path))
        if module.startswith(never)
    ]
    assert wrong == []
