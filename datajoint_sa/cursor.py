"""Raw SQL the classic way: `conn.query(sql, args, as_dict=...)` and its cursor-like result.

Classic DataJoint handed `query` to PyMySQL, so classic code writes `%s` and `%(name)s`
placeholders (and `%%` for a literal percent). They are turned into SQLAlchemy bind
parameters here, so the same text runs on every driver whatever its own paramstyle.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from .errors import DataJointError

#: %% (a percent), %s (the next positional argument) or %(name)s (a named one)
_PLACEHOLDER = re.compile(r"%(?:(%)|s|\((\w+)\)s)")
#: a colon SQLAlchemy's text() would read as a bind parameter
_COLON = re.compile(r"(?<![:\w\\]):(?=\w)")


def classic_text(sql: str, args: Any) -> tuple[sa.TextClause, dict[str, Any]]:
    """`sql` with PyMySQL-style placeholders as a text() clause and its parameters."""
    sql = _COLON.sub(r"\\:", sql)
    if args is None:
        return sa.text(sql), {}
    named = isinstance(args, Mapping)
    positional: Sequence[Any] = (() if named else
                                 args if isinstance(args, (list, tuple)) else (args,))
    params: dict[str, Any] = {}
    used = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal used
        if match.group(1):
            return "%"
        name = match.group(2)
        if name is not None:
            if not named or name not in args:
                raise DataJointError(f"query: no value for the placeholder %({name})s")
            params[name] = args[name]
            return f":{name}"
        if named:
            raise DataJointError("query: %s placeholders need a sequence of args, not a dict")
        if used >= len(positional):
            raise DataJointError(f"query: more %s placeholders than the {len(positional)} "
                                 "args given")
        params[f"_arg{used}"] = positional[used]
        used += 1
        return f":_arg{used - 1}"

    text = _PLACEHOLDER.sub(replace, sql)
    if not named and used != len(positional):
        raise DataJointError(f"query: {len(positional)} args given for {used} %s placeholders")
    return sa.text(text), params


class QueryResult:
    """The rows of a statement, read like a DB-API cursor (`fetchone`, `fetchall`,
    `fetchmany`, iteration, `rowcount`, `description`) and also indexable like a list.
    Rows are tuples, or dicts when the query asked `as_dict=True`."""

    def __init__(self, result: sa.CursorResult[Any], *, as_dict: bool = False) -> None:
        self.rowcount: int = result.rowcount
        self.lastrowid: Any = None
        self.description: list[tuple[Any, ...]] | None = None
        rows: list[Any] = []
        if result.returns_rows:
            keys = list(result.keys())
            self.description = [(k, None, None, None, None, None, None) for k in keys]
            rows = ([dict(zip(keys, r)) for r in result] if as_dict
                    else [tuple(r) for r in result])
        else:
            try:
                self.lastrowid = result.lastrowid
            except Exception:  # drivers without it; classic callers rarely read it
                self.lastrowid = None
        self._rows = rows
        self._next = 0

    def fetchone(self) -> Any:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchmany(self, size: int = 1) -> list[Any]:
        chunk = self._rows[self._next:self._next + size]
        self._next += len(chunk)
        return chunk

    def fetchall(self) -> list[Any]:
        rest = self._rows[self._next:]
        self._next = len(self._rows)
        return rest

    def __iter__(self) -> Iterator[Any]:
        while (row := self.fetchone()) is not None:
            yield row

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index: Any) -> Any:
        return self._rows[index]

    def close(self) -> None:
        self._next = len(self._rows)
