"""`datajoint.utils`: the helpers classic pipelines import."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

from ..errors import DataJointError
from ..naming import from_camel_case, to_camel_case


def is_camel_case(name: str) -> bool:
    """Whether `name` is a class name in CamelCase, as table classes must be."""
    return re.fullmatch(r"[A-Z][a-zA-Z0-9]*", name) is not None


def user_choice(prompt: str, choices: tuple[str, ...] = ("yes", "no"),
                default: str | None = None) -> str:
    """Ask until the answer is one of `choices` (case-insensitive); Enter gives `default`."""
    assert default is None or default in choices
    options = ", ".join(c.upper() if c == default else c for c in choices)
    while True:
        answer = input(f"{prompt} [{options}]: ").strip().lower()
        if not answer and default is not None:
            return default
        if answer in choices:
            return answer


def get_master(full_table_name: str) -> str:
    """The full name of the master of a part table (`schema`.`master__part`), or ""."""
    quote = full_table_name[-1] if full_table_name[-1:] in ('`', '"') else ""
    schema, _, table = full_table_name.rpartition(".")
    name = table.strip('`"')
    if "__" not in name.lstrip("_#"):
        return ""
    prefix = name[: len(name) - len(name.lstrip("_#"))]
    master = prefix + name[len(prefix):].split("__", 1)[0]
    return f"{schema}.{quote}{master}{quote}" if schema else f"{quote}{master}{quote}"


def safe_write(filepath: str | os.PathLike[str], blob: bytes) -> None:
    """Write `blob` to `filepath` through a temporary file, so a reader never sees half."""
    path = Path(filepath)
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".saving")
    temporary.write_bytes(blob)
    temporary.replace(path)


def safe_copy(src: str | os.PathLike[str], dest: str | os.PathLike[str],
              overwrite: bool = False) -> None:
    """Copy `src` to `dest` through a temporary file; an existing `dest` is kept unless
    `overwrite`."""
    source, target = Path(src), Path(dest)
    if not source.is_file():
        raise DataJointError(f"safe_copy: {source} is not a file")
    if target.exists() and not overwrite:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(target.suffix + ".copying")
    shutil.copyfile(source, temporary)
    temporary.replace(target)


class ClassProperty:
    """A read-only property of a class (classic utils.ClassProperty)."""

    def __init__(self, getter: Any) -> None:
        self.getter = getter

    def __get__(self, obj: Any, owner: Any) -> Any:
        return self.getter(owner)


__all__ = ["ClassProperty", "from_camel_case", "get_master", "is_camel_case", "safe_copy", "safe_write",
           "to_camel_case", "user_choice"]
