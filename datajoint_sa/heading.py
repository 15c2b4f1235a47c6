"""Heading and Attribute: what a table or query result holds, independent of any backend."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np

from .errors import UnknownAttributeError
from .fetch import _NUMPY_TYPES, _category
from .types import TypeInfo, resolve_type

TYPE_MARKER = re.compile(r"^:(?P<type>[^:]+(?:\([^)]*\))?[^:]*):(?P<comment>.*)$", re.DOTALL)


@dataclass(frozen=True)
class Attribute:
    """One attribute of a heading.

    `lineage` names the table attribute this one originates from ("schema.table.attr");
    joins compare it to refuse matching unrelated attributes that merely share a name.
    `expression` is set for computed attributes of projections (a sqlexpr fragment).
    """

    name: str
    type: str
    in_key: bool = False
    nullable: bool = False
    default: Any = None  # the default as written in the definition, or None
    comment: str = ""
    autoincrement: bool = False
    lineage: str | None = None
    expression: Any = None

    @cached_property
    def type_info(self) -> TypeInfo:
        return resolve_type(self.type)

    @property
    def codec(self) -> Any:
        return self.type_info.codec if self.type else None

    @property
    def is_blob(self) -> bool:
        return bool(self.type) and self.type_info.is_blob

    @property
    def sql_comment(self) -> str:
        """The column comment: the declared type as a `:type:` marker, then the comment."""
        return f":{self.type}:{self.comment}"

    def renamed(self, name: str) -> Attribute:
        return replace(self, name=name)

    def __repr__(self) -> str:
        key = "*" if self.in_key else ""
        return f"Attribute({key}{self.name}: {self.type})"


def split_comment(sql_comment: str | None) -> tuple[str | None, str]:
    """(declared type or None, comment) from a stored column comment."""
    text = sql_comment or ""
    m = TYPE_MARKER.match(text)
    if m:
        return m.group("type"), m.group("comment")
    return None, text


class Heading(Mapping[str, Attribute]):
    """An ordered mapping of attribute names to attributes; never changed once made, so
    what is derived from it (names, key, which attributes are json) is worked out once and
    kept in `memo` (queries build several headings per operator, and read them often)."""

    def __init__(self, attributes: Iterable[Attribute], table_comment: str = "") -> None:
        self._attributes: dict[str, Attribute] = {a.name: a for a in attributes}
        self.table_comment = table_comment
        self._key = [a.name for a in self._attributes.values() if a.in_key]
        #: values derived from the heading by other modules (condition.json_names ...)
        self.memo: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Attribute:
        return self._attributes[name]

    def __contains__(self, name: object) -> bool:
        return name in self._attributes

    def __iter__(self) -> Iterator[str]:
        return iter(self._attributes)

    def __len__(self) -> int:
        return len(self._attributes)

    def __repr__(self) -> str:
        lines = [f"# {self.table_comment}"] if self.table_comment else []
        lines += [f"{a.name}: {a.type}" for a in self.attributes if a.in_key]
        lines.append("---")
        lines += [f"{a.name}: {a.type}" for a in self.attributes if not a.in_key]
        return "\n".join(lines)

    @property
    def attributes(self) -> list[Attribute]:
        return list(self._attributes.values())

    @property
    def names(self) -> list[str]:
        return list(self._attributes)

    @property
    def primary_key(self) -> list[str]:
        return self._key.copy()

    @property
    def secondary_attributes(self) -> list[str]:
        return [a.name for a in self._attributes.values() if not a.in_key]

    @property
    def blobs(self) -> list[str]:
        return [a.name for a in self._attributes.values() if a.is_blob]

    @property
    def as_dtype(self) -> Any:
        """The numpy structured dtype of a fetched record array: numbers and booleans as
        their numpy types, everything else as objects."""
        return np.dtype([(a.name, _NUMPY_TYPES.get(_category(a) or "", "O"))
                         for a in self._attributes.values()])

    @property
    def name_set(self) -> frozenset[str]:
        """The attribute names as a frozenset (made once: fragments are parsed and cached
        by the names they may read)."""
        names = self.memo.get("names")
        if names is None:
            names = self.memo["names"] = frozenset(self._attributes)
        return names

    def check(self, names: Iterable[str], context: str = "") -> None:
        """Raise UnknownAttributeError for any name not in the heading."""
        unknown = [n for n in names if n not in self._attributes]
        if unknown:
            where = f" of {context}" if context else ""
            raise UnknownAttributeError(
                f"Unknown attribute{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(repr(u) for u in unknown)}{where}; "
                f"known: {', '.join(self._attributes)}"
            )

    def select(self, names: Iterable[str]) -> Heading:
        names = list(names)
        self.check(names)
        return Heading((self._attributes[n] for n in names), self.table_comment)

    def with_key(self, key: Iterable[str]) -> Heading:
        """The same attributes with `key` as the primary key, key attributes first."""
        key = list(key)
        self.check(key)
        first = [replace(self._attributes[n], in_key=True) for n in key]
        rest = [replace(a, in_key=False) for n, a in self._attributes.items() if n not in key]
        return Heading(first + rest, self.table_comment)
