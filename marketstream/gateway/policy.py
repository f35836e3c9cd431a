"""What a statement sent to the warm gateway may reach: its own tables and the cold tier only.

A ClickHouse server confines `file()` to its `user_files_path`, checks `url()`, `s3()`,
`remote()`... against `remote_url_allow_hosts` and grants, and refuses `INTO OUTFILE`. The
embedded engine runs as clickhouse-local, where none of that applies (`user_files_path` is
accepted but absolute paths are read anywhere; a config file is not read), so the gateway
asks the engine's own parser for the statement's syntax tree (`formatQuery`, then
`EXPLAIN AST`) and refuses what a server configured for this pipeline would refuse:

- more than one statement (ClickHouse's HTTP interface runs one);
- `file()` (table function or scalar) outside the cold directory, `s3()` outside the cold
  bucket and prefix, any other table function that reaches files, hosts or programs;
- table and database engines other than local ones (MergeTree family, Memory, Log, ...);
- dictionary sources, BACKUP/RESTORE, `INTO OUTFILE`, `FROM INFILE`, `ATTACH ... FROM path`;
- expressions in VALUES data (the parser does not see them, the engine would run them): the
  connection settings turning them off cannot be changed.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from marketstream.tiers.cold_store import ColdStore, LocalColdStore, S3ColdStore

# Settings pinned on every engine connection: VALUES data holds only literals.
PINNED_SETTINGS: Final = {
    "input_format_values_interpret_expressions": "0",
    "input_format_values_deduce_templates_of_expressions": "0",
}
SAFE_TABLE_FUNCTIONS: Final = frozenset(
    {
        "numbers", "numbers_mt", "zeros", "zeros_mt", "generaterandom", "generate_series",
        "generateseries", "values", "view", "viewifpermitted", "viewexplain", "merge", "input",
        "null", "format", "loop", "dictionary", "mergetreeindex", "mergetreeprojection",
    }
)  # fmt: skip
SAFE_ENGINES: Final = frozenset(
    {
        "memory", "log", "tinylog", "stripelog", "null", "set", "join", "buffer", "dictionary",
        "merge", "view", "materializedview", "generaterandom", "atomic", "ordinary", "lazy",
    }
)  # fmt: skip
FILE_FUNCTIONS: Final = frozenset({"file", "filecluster"})
S3_FUNCTIONS: Final = frozenset({"s3"})
TABLE_PARENTS: Final = ("TableExpression", "CreateQuery", "InsertQuery", "AttachQuery")

ACCESS_DENIED: Final = (497, "ACCESS_DENIED")
DATABASE_ACCESS_DENIED: Final = (291, "DATABASE_ACCESS_DENIED")
UNACCEPTABLE_URL: Final = (491, "UNACCEPTABLE_URL")
SYNTAX_ERROR: Final = (62, "SYNTAX_ERROR")
INTO_OUTFILE_NOT_ALLOWED: Final = (642, "INTO_OUTFILE_NOT_ALLOWED")
SETTING_CONSTRAINT_VIOLATION: Final = (452, "SETTING_CONSTRAINT_VIOLATION")

_TWO_WORD_KINDS: Final = (
    "Storage definition", "Columns definition", "Dictionary definition", "Dictionary layout",
    "Dictionary lifetime", "Dictionary range", "Dictionary settings",
)  # fmt: skip
_CHILDREN: Final = re.compile(r"\s*\(children \d+\)\s*\Z")
_ALIAS: Final = re.compile(r"\s*\(alias [^)]*\)")
_STRING: Final = re.compile(r"'((?:[^'\\]|\\.)*)'", re.DOTALL)
_ESCAPES: Final = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t", "r": "\r", "0": "\0"}
_FILE_CLAUSES: Final = re.compile(
    r"\bINTO\s+OUTFILE\b|\bFROM\s+INFILE\b|\A\s*ATTACH\b[^(]*?\bFROM\s+'", re.IGNORECASE
)


class Refused(Exception):  # noqa: N818 - a refusal, named as the gateway answers it
    """A statement the gateway will not run: ClickHouse's code and name, and why."""

    def __init__(self, error: tuple[int, str], message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message


@dataclass
class Node:
    """One node of `EXPLAIN AST`: its kind (`Function`, `Literal`, ...), text and children."""

    kind: str
    text: str
    children: list[Node] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.text.split(" ", 1)[0].lower() if self.text else ""


def parse_ast(dump: str) -> Node:
    """The tree of an `EXPLAIN AST` dump: one node a line, one space of indent per level."""
    root = Node("", "")
    stack: list[tuple[int, Node]] = [(-1, root)]
    for line in dump.splitlines():
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip(" "))
        body = _ALIAS.sub("", _CHILDREN.sub("", line.strip()))
        kind = next((k for k in _TWO_WORD_KINDS if body.startswith(k)), body.split(" ", 1)[0])
        text = body[len(kind) :]
        node = Node(kind, text.strip())
        while stack[-1][0] >= depth:
            stack.pop()
        stack[-1][1].children.append(node)
        stack.append((depth, node))
    return root


def literal_string(node: Node) -> str | None:
    """The value of a string Literal node, None for anything else."""
    if node.kind != "Literal":
        return None
    match = _STRING.fullmatch(node.text)
    if match is None:
        return None
    out, chars = [], iter(match.group(1))
    for char in chars:
        if char == "\\":
            escaped = next(chars, "")
            if escaped not in _ESCAPES:
                return None  # an escape a path never needs: refuse rather than guess
            out.append(_ESCAPES[escaped])
        else:
            out.append(char)
    return "".join(out)


def blank_strings(sql: str) -> str:
    """sql with every string literal emptied: keywords are then found outside literals only."""
    return _STRING.sub("''", sql)


@dataclass(frozen=True)
class SourcePolicy:
    """Where the engine may read besides its tables: the cold directory or the cold bucket."""

    cold_root: Path | None = None  # a local cold directory (absolute)
    cold_url: str | None = None  # an S3 base URL, ending with '/'

    @classmethod
    def for_store(cls, store: ColdStore | None) -> SourcePolicy:
        """The policy of a gateway serving store (None: no cold tier, no file() or s3())."""
        if isinstance(store, LocalColdStore):
            return cls(cold_root=store.root.resolve())
        if isinstance(store, S3ColdStore):
            return cls(cold_url=store.clickhouse_url())
        return cls()

    def check_tree(self, root: Node) -> None:
        """Raise Refused for the first node that reaches outside this pipeline."""
        for parent, node in _walk(root, root):
            if node.kind in ("BackupQuery", "RestoreQuery"):
                raise Refused(ACCESS_DENIED, "BACKUP and RESTORE are not allowed here")
            if parent.kind == "Storage definition" and node is parent.children[0]:
                self._engine(node)
            elif parent.kind == "Dictionary definition" and node.kind.startswith("FunctionWith"):
                raise Refused(
                    ACCESS_DENIED,
                    f"dictionary source {node.name.upper()} is not allowed: dictionaries "
                    "may not reach other sources through the warm gateway",
                )
            elif node.kind == "Function":
                self._function(parent, node)

    def _engine(self, node: Node) -> None:
        name = node.name
        if node.kind != "Function" or not (name.endswith("mergetree") or name in SAFE_ENGINES):
            raise Refused(
                ACCESS_DENIED,
                f"engine {node.text.split(' ', 1)[0]} is not allowed: expected a local engine "
                "(MergeTree family, Memory, Log, Null, ...)",
            )

    def _function(self, parent: Node, node: Node) -> None:
        name = node.name
        if name in FILE_FUNCTIONS:
            self._file(node)
        elif name in S3_FUNCTIONS:
            self._s3(node)
        elif parent.kind in TABLE_PARENTS and name not in SAFE_TABLE_FUNCTIONS:
            raise Refused(
                ACCESS_DENIED,
                f"table function {node.text.split(' ', 1)[0]} is not allowed: the warm "
                "gateway reads its own tables and the cold tier only",
            )

    def _file(self, node: Node) -> None:
        path = _first_string(node)
        root = self.cold_root
        if path is None or root is None or not _inside(path, str(root)):
            where = f"inside {root}" if root is not None else "(no cold directory is served)"
            raise Refused(
                DATABASE_ACCESS_DENIED,
                f"file {path if path is not None else '<not a string literal>'} is not "
                f"allowed: expected an absolute path {where}",
            )

    def _s3(self, node: Node) -> None:
        url = _first_string(node)
        if url is None or self.cold_url is None or not _under_url(url, self.cold_url):
            where = self.cold_url or "(no cold bucket is served)"
            raise Refused(
                UNACCEPTABLE_URL,
                f"URL {url if url is not None else '<not a string literal>'} is not allowed: "
                f"expected one below {where}",
            )


def _walk(parent: Node, node: Node) -> Iterator[tuple[Node, Node]]:
    for child in node.children:
        yield node, child
        yield from _walk(node, child)


def _first_string(function: Node) -> str | None:
    arguments = function.children[0].children if function.children else []
    return literal_string(arguments[0]) if arguments else None


def _inside(path: str, root: str) -> bool:
    """path is absolute, names no parent directory, and lies below root."""
    if not path.startswith("/") or ".." in path:
        return False
    normal = posixpath.normpath(path)
    return normal.startswith(root.rstrip("/") + "/")


def _under_url(url: str, base: str) -> bool:
    return url.startswith(base) and ".." not in url[len(base) :] and "?" not in url


def check_statement(
    query: Callable[[bytes, Mapping[str, str]], bytes],
    sql: bytes,
    params: Mapping[str, str],
    policy: SourcePolicy,
) -> None:
    """Raise Refused unless sql is one statement within policy (query runs on the engine)."""
    formatted = query(b"SELECT formatQuery('" + _escape(sql) + b"')", {}).decode(
        "utf-8", errors="replace"
    )
    text = blank_strings(formatted)
    if _FILE_CLAUSES.search(text):
        raise Refused(
            INTO_OUTFILE_NOT_ALLOWED,
            "INTO OUTFILE, FROM INFILE and ATTACH ... FROM a path are not allowed: the "
            "server's files are not the client's",
        )
    lowered = text.lower()
    for name in PINNED_SETTINGS:
        if name in lowered:
            raise Refused(SETTING_CONSTRAINT_VIOLATION, f"Setting {name} should not be changed")
    dump = query(b"EXPLAIN AST " + formatted.encode(), params)
    policy.check_tree(parse_ast(dump.decode("utf-8", errors="replace")))


def pinned_setting(name: str) -> bool:
    return name.lower() in PINNED_SETTINGS


def _escape(sql: bytes) -> bytes:
    return sql.replace(b"\\", b"\\\\").replace(b"'", b"\\'")
