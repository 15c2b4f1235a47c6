"""Class names <-> table names, as the reference implementation spells them."""

from __future__ import annotations

import re

from .errors import DataJointError

_CAMEL = re.compile(r"[A-Z][A-Za-z0-9]*")


def from_camel_case(name: str) -> str:
    """`SessionTrial` -> `session_trial` (every capital letter starts a new word)."""
    if not _CAMEL.fullmatch(name):
        raise DataJointError(f"Table class name {name!r} must be CamelCase (e.g. SessionTrial)")
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def to_camel_case(name: str) -> str:
    """`session_trial` -> `SessionTrial`."""
    return "".join(word.capitalize() for word in name.split("_") if word)
