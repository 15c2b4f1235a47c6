"""A definition that re-declares a table, from its spec (declared) or heading (reflected)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .declare import ForeignKeySpec
    from .table import Table


def _parent_name(parent: object, child: type) -> str:
    cls = parent if isinstance(parent, type) else type(parent)
    master = getattr(child, "master", None)
    if master is not None and cls is master:
        return "master"
    name = cls.__qualname__.rsplit("<locals>.", 1)[-1]
    if cls.__module__ != child.__module__:
        return f"{cls.__module__.rsplit('.', 1)[-1]}.{name}"
    return name


def _attribute_line(name: str, type_: str, default: str | None, nullable: bool,
                    comment: str, autoincrement: bool) -> str:
    default_text = " = null" if nullable else f" = {default}" if default is not None else ""
    auto = " auto_increment" if autoincrement else ""
    comment_text = f"  # {comment}" if comment else ""
    return f"{name}{default_text} : {type_}{auto}{comment_text}"


def describe_table(table: Table) -> str:
    cls = type(table)
    spec = cls._spec
    heading = table.heading
    lines: list[str] = []
    if heading.table_comment:
        lines.append(f"# {heading.table_comment}")
    fk_of: dict[str, ForeignKeySpec] = {}
    if spec is not None:
        for fk in spec.foreign_keys:
            for name in fk.attributes:
                fk_of.setdefault(name, fk)
    written: set[int] = set()
    in_key = True
    for attribute in heading.attributes:
        if in_key and not attribute.in_key:
            lines.append("---")
            in_key = False
        found = fk_of.get(attribute.name)
        if found is not None:
            fk = found
            if id(fk) in written:
                continue
            written.add(id(fk))
            options = [o for o, on in (("nullable", fk.nullable), ("unique", fk.unique)) if on]
            option_text = f"[{', '.join(options)}] " if options else ""
            renames = {c: p for c, p in zip(fk.attributes, fk.parent_attributes) if c != p}
            proj = ""
            if renames:
                proj = ".proj(" + ", ".join(f"{c}='{p}'" for c, p in renames.items()) + ")"
            lines.append(f"-> {option_text}{_parent_name(fk.parent, cls)}{proj}")
            continue
        lines.append(_attribute_line(attribute.name, attribute.type, attribute.default,
                                     attribute.nullable, attribute.comment,
                                     attribute.autoincrement))
    if in_key:
        lines.append("---")
    if spec is not None:
        for index in spec.indexes:
            unique = "unique " if index.unique else ""
            lines.append(f"{unique}index({', '.join(index.attributes)})")
    return "\n".join(lines) + "\n"
