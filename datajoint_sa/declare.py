"""Definition text -> TableSpec -> sqlalchemy.Table, without touching a database.

`parse` reads the definition language into plain dataclasses; `compile` turns a spec into a
`sqlalchemy.Table` inside a schema's `MetaData`. The same MetaData serves table creation,
the dependency graph, diagrams and Alembic's comparison with the live database.
"""

from __future__ import annotations

import ast
import datetime
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from .backends import BACKENDS, Backend
from .errors import DataJointError, DefinitionError
from .heading import Attribute, Heading
from .types import TypeInfo, resolve_type

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    # the parent is part of the name: two foreign keys may share their columns (a diamond)
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
ATTRIBUTE_NAME = re.compile(r"[a-z][a-z0-9_]*")
MAX_NAME_LENGTH = 64
CURRENT_TIMESTAMP = "CURRENT_TIMESTAMP"
FK_OPTIONS = {"nullable", "unique"}
#: storage categories that cannot be primary keys or indexed on every backend
UNKEYABLE = {"json", "bytes", "text"}


def new_metadata() -> sa.MetaData:
    return sa.MetaData(naming_convention=NAMING_CONVENTION)


@dataclass
class ForeignKeySpec:
    """`-> Parent` (possibly renamed, nullable, unique) as it applies to the child."""

    parent: Any  # the parent table class or instance (has .heading and ._sa_table)
    attributes: list[str]  # child attribute names, in the parent's primary-key order
    parent_attributes: list[str]
    in_key: bool
    nullable: bool = False
    unique: bool = False
    line: str = ""


@dataclass
class IndexSpec:
    attributes: list[str]
    unique: bool = False
    line: str = ""


@dataclass
class TableSpec:
    """Everything a definition says about a table."""

    schema: str
    name: str
    comment: str = ""
    attributes: list[Attribute] = field(default_factory=list)
    foreign_keys: list[ForeignKeySpec] = field(default_factory=list)
    indexes: list[IndexSpec] = field(default_factory=list)

    @property
    def heading(self) -> Heading:
        return Heading(self.attributes, self.comment)

    @property
    def primary_key(self) -> list[str]:
        return [a.name for a in self.attributes if a.in_key]


# ---------------------------------------------------------------------------- parsing

def _split_unquoted(text: str, separator: str) -> tuple[str, str | None]:
    """Split at the first `separator` outside quotes and parentheses."""
    first = text.find(separator)
    if first < 0:
        return text, None
    if not any(ch in "'\"()" for ch in text[:first]):  # nothing before it can hide it
        return text[:first], text[first + 1 :]
    return _split_by_scan(text, separator)


def _split_by_scan(text: str, separator: str) -> tuple[str, str | None]:
    """`_split_unquoted` the long way: a character scan tracking quotes and parentheses."""
    quote: str | None = None
    depth = 0
    for i, ch in enumerate(text):
        if quote:
            if ch == "\\":
                continue
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == separator and depth == 0:
            return text[:i], text[i + 1 :]
    return text, None


class _Parser:
    def __init__(self, spec: TableSpec, table: str, context: Mapping[str, Any]) -> None:
        self.spec, self.table, self.context = spec, table, context
        self.lineno, self.line = 0, ""

    def error(self, what: str) -> DefinitionError:
        return DefinitionError(f"Table {self.table}, line {self.lineno}: {self.line.strip()!r}: "
                               f"{what}")

    def parse(self, definition: str) -> TableSpec:
        in_key = True
        seen_attribute = False
        divider_seen = False
        for self.lineno, self.line in enumerate(definition.splitlines(), start=1):
            line = self.line.strip()
            if not line:
                continue
            if line.startswith("#"):
                if not seen_attribute and not self.spec.comment:
                    self.spec.comment = line.lstrip("#").strip()
                continue
            seen_attribute = True
            if re.fullmatch(r"-{3,}", line.split("#")[0].strip()):
                if divider_seen:
                    raise self.error("a second '---' divider")
                in_key, divider_seen = False, True
            elif line.startswith("->"):
                self.foreign_key(line[2:].strip(), in_key)
            elif re.match(r"(unique\s+)?index\s*\(", line, flags=re.IGNORECASE):
                self.index(line)
            else:
                self.attribute(line, in_key)
        if not self.spec.primary_key:
            raise DefinitionError(f"Table {self.table}: the definition has no primary key "
                                  "(attributes above '---')")
        return self.spec

    # -- attributes
    def attribute(self, line: str, in_key: bool) -> None:
        declaration, comment = _split_unquoted(line, "#")
        left, type_text = _split_unquoted(declaration, ":")
        if type_text is None:
            raise self.error("expected 'name [= default] : type [# comment]'")
        name_text, default_text = _split_unquoted(left, "=")
        name = name_text.strip()
        if not ATTRIBUTE_NAME.fullmatch(name) or len(name) > MAX_NAME_LENGTH:
            raise self.error(f"invalid attribute name {name!r} (lowercase letters, digits and "
                             "underscores, starting with a letter)")
        type_text = type_text.strip()
        autoincrement = False
        m = re.fullmatch(r"(.*?)\s+auto_increment", type_text, flags=re.IGNORECASE)
        if m:
            type_text, autoincrement = m.group(1), True
        try:
            info = resolve_type(type_text)
        except DataJointError as error:
            raise self.error(str(error)) from None
        if in_key and info.category in UNKEYABLE:
            raise self.error(f"a primary-key attribute cannot be of type {info.type} "
                             "(blobs, json, text and bytes cannot be keys on every backend)")
        if autoincrement and not (info.is_integer and in_key):
            raise self.error("auto_increment needs an integer primary-key attribute")
        nullable, default = False, None
        if default_text is not None:
            default = default_text.strip()
            if default.lower() == "null":
                if in_key:
                    raise self.error("a primary-key attribute cannot be nullable")
                nullable, default = True, None
            else:
                try:
                    server_default_for(default, info)
                except DataJointError as error:
                    raise self.error(str(error)) from None
        attribute = Attribute(
            name=name, type=info.type, in_key=in_key, nullable=nullable, default=default,
            comment=(comment or "").strip(), autoincrement=autoincrement,
            lineage=f"{self.spec.schema}.{self.spec.name}.{name}",
        )
        # the resolved type is the attribute's (a cached property): compile() does not
        # resolve the written-back type again
        attribute.__dict__["type_info"] = info
        self.add(attribute)

    def add(self, attribute: Attribute) -> None:
        if any(a.name == attribute.name for a in self.spec.attributes):
            raise self.error(f"duplicate attribute {attribute.name!r}")
        self.spec.attributes.append(attribute)

    # -- foreign keys
    def foreign_key(self, text: str, in_key: bool) -> None:
        options: set[str] = set()
        m = re.match(r"\[([^\]]*)\]\s*(.*)", text)
        if m:
            options = {o.strip().lower() for o in m.group(1).split(",") if o.strip()}
            text = m.group(2)
            unknown = options - FK_OPTIONS
            if unknown:
                raise self.error(f"unknown foreign key option(s) {', '.join(sorted(unknown))}")
        if "nullable" in options and in_key:
            raise self.error("a primary-key foreign key cannot be nullable")
        parent, renames = self.resolve_parent(text)
        parent_heading: Heading = parent.heading
        parent_key = parent_heading.primary_key
        unknown_sources = [old for old in renames.values() if old not in parent_key]
        if unknown_sources:
            raise self.error(f"renamed attribute(s) {', '.join(unknown_sources)} are not in the "
                             f"primary key of {parent.__name__ if isinstance(parent, type) else parent}")
        reverse = {old: new for new, old in renames.items()}
        child_names = [reverse.get(p, p) for p in parent_key]
        existing = {a.name: a for a in self.spec.attributes}
        for child, source in zip(child_names, parent_key):
            ref = parent_heading[source]
            if child in existing:
                if existing[child].lineage != ref.lineage:
                    raise self.error(f"attribute {child!r} already exists and does not come from "
                                     "the same parent attribute")
                continue
            self.add(Attribute(
                name=child, type=ref.type, in_key=in_key, nullable="nullable" in options,
                default=None, comment=ref.comment, lineage=ref.lineage,
            ))
        self.spec.foreign_keys.append(ForeignKeySpec(
            parent=parent, attributes=child_names, parent_attributes=list(parent_key),
            in_key=in_key, nullable="nullable" in options, unique="unique" in options,
            line=self.line.strip(),
        ))

    def resolve_parent(self, text: str) -> tuple[Any, dict[str, str]]:
        """The parent table and {new_name: old_name} renames of `Parent[.proj(new='old')]`."""
        try:
            node = ast.parse(text.strip(), mode="eval").body
        except SyntaxError:
            raise self.error(f"cannot read the foreign key reference {text!r}") from None
        renames: dict[str, str] = {}
        if isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Attribute) and node.func.attr == "proj"):
                raise self.error("a foreign key reference may only be projected with .proj()")
            if node.args:
                raise self.error("only renames (new='old') are allowed in a foreign key .proj()")
            for kw in node.keywords:
                if kw.arg is None or not (isinstance(kw.value, ast.Constant)
                                          and isinstance(kw.value.value, str)):
                    raise self.error("foreign key renames must look like new_name='old_name'")
                renames[kw.arg] = kw.value.value
            node = node.func.value
        parts: list[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            raise self.error(f"cannot read the foreign key reference {text!r}")
        parts.append(node.id)
        parts.reverse()
        if parts[0] not in self.context:
            raise self.error(f"unknown parent table {'.'.join(parts)!r}")
        obj = self.context[parts[0]]
        for part in parts[1:]:
            obj = getattr(obj, part, None)
            if obj is None:
                raise self.error(f"unknown parent table {'.'.join(parts)!r}")
        if getattr(obj, "heading", None) is None or getattr(obj, "_sa_table", None) is None:
            raise self.error(f"{'.'.join(parts)!r} is not a declared table")
        return obj, renames

    # -- indexes
    def index(self, line: str) -> None:
        m = re.fullmatch(r"(unique\s+)?index\s*\(([^)]*)\)\s*(#.*)?", line, flags=re.IGNORECASE)
        if not m:
            raise self.error("expected 'index(attr, ...)' or 'unique index(attr, ...)'")
        names = [n.strip() for n in m.group(2).split(",") if n.strip()]
        known = {a.name for a in self.spec.attributes}
        unknown = [n for n in names if n not in known]
        if not names or unknown:
            raise self.error(f"index on unknown attribute(s) {', '.join(unknown) or '(none)'}")
        types = {a.name: a.type_info for a in self.spec.attributes}
        unindexable = [n for n in names if types[n].category in UNKEYABLE]
        if unindexable:
            raise self.error(f"cannot index {', '.join(unindexable)}: blobs, json, text and "
                             "bytes cannot be indexed on every backend")
        if len(set(names)) < len(names):
            raise self.error("an index names an attribute twice")
        self.spec.indexes.append(IndexSpec(names, unique=bool(m.group(1)), line=line))


def parse(definition: str, *, schema: str, name: str, context: Mapping[str, Any],
          display_name: str | None = None) -> TableSpec:
    """Parse a table definition; `context` resolves parent table names."""
    spec = TableSpec(schema=schema, name=name)
    return _Parser(spec, display_name or f"{schema}.{name}", context).parse(definition)


# ---------------------------------------------------------------------------- defaults

_TEMPORAL = {"date": datetime.date.fromisoformat, "datetime": datetime.datetime.fromisoformat,
             "timestamp": datetime.datetime.fromisoformat, "time": datetime.time.fromisoformat}


def server_default_for(default: str, info: TypeInfo) -> Any:
    """The DDL default of a declared default (validated; values are literals, not SQL)."""
    if default.upper() in (CURRENT_TIMESTAMP, "CURRENT_TIMESTAMP()", "NOW()"):
        if info.category not in ("datetime", "timestamp"):
            raise DataJointError(f"default {default} needs a datetime or timestamp attribute")
        return sa.text(CURRENT_TIMESTAMP)
    if info.codec is not None or info.category in ("json", "bytes"):
        raise DataJointError(f"attributes of type {info.type} may only default to null")
    m = re.fullmatch(r"""(['"])(.*)\1""", default, flags=re.DOTALL)
    if m:
        value = m.group(2)
        if info.category == "enum" and value not in info.enum_values:
            raise DataJointError(f"default {default} is not one of the enum values")
        if info.is_integer or info.category in ("float32", "float64", "decimal", "bool"):
            return server_default_for(value, info)
        if info.category in ("varchar", "char") and len(value) > info.args[0]:
            raise DataJointError(f"default {default} is longer than {info.type}")
        if info.category in _TEMPORAL:
            try:
                _TEMPORAL[info.category](value)
            except ValueError:
                raise DataJointError(f"default {default} is not a valid {info.type} "
                                     "(ISO format, e.g. 2024-01-31 12:00:00)") from None
        return value  # SQLAlchemy renders a properly quoted string literal
    if info.category == "bool":
        lowered = default.lower()
        if lowered in ("true", "1"):
            return sa.true()
        if lowered in ("false", "0"):
            return sa.false()
        raise DataJointError(f"bad default {default!r} for a bool attribute")
    try:
        number = Decimal(default)
    except InvalidOperation:
        raise DataJointError(f"bad default {default!r}: quote strings, or use a number, null "
                             "or CURRENT_TIMESTAMP") from None
    if not number.is_finite():
        raise DataJointError(f"bad default {default!r}")
    if info.is_integer:
        if number != number.to_integral_value():
            raise DataJointError(f"default {default} is not an integer")
        low, high = info.value_range or (None, None)
        if low is not None and high is not None and not low <= number <= high:
            raise DataJointError(f"default {default} is outside the range of {info.type}")
    elif info.category not in ("float32", "float64", "decimal"):
        return default  # e.g. a number as the default of a string attribute
    return sa.text(str(number))


# ---------------------------------------------------------------------------- compiling

@functools.cache
def _dialects_checking(category: str) -> tuple[str, ...]:
    return tuple(name for name, backend in BACKENDS.items() if backend.needs_check(category))


def _checked_where_needed(check: sa.CheckConstraint, category: str) -> sa.CheckConstraint:
    """Emit the CHECK only on backends whose column type does not already enforce it."""
    dialects = _dialects_checking(category)
    return check.ddl_if(dialect=dialects)  # type: ignore[arg-type]  # a tuple is documented


class AttributeCheck(ColumnElement[bool]):
    """The condition of a range or length CHECK on one attribute: `{} BETWEEN low AND
    high` or `length({}) <= n`, the attribute's column in the braces.

    It renders exactly what SQLAlchemy renders for `column.between(low, high)` and
    `func.length(column) <= n` with literal values, but is one small node instead of an
    expression tree of operators and bound parameters: building and copying those trees
    (a CheckConstraint copies its condition) was a third of the time of building a
    declared table's `sqlalchemy.Table`. Its column is a child, so the constraint still
    knows which column it checks (copies, Alembic's batch mode)."""

    __visit_name__ = "dj_attribute_check"
    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement),
                           ("template", InternalTraversal.dp_string)]

    def __init__(self, column: sa.ColumnClause[Any], template: str) -> None:
        self.column = column
        self.template = template


@compiles(AttributeCheck)
def _compile_check(element: AttributeCheck, compiler: Any, **kw: Any) -> str:
    return element.template.format(compiler.process(element.column, **kw))


def range_check(name: str, low: int, high: int) -> AttributeCheck:
    """`name BETWEEN low AND high` (integers only: they render the same everywhere)."""
    return AttributeCheck(sa.column(name), f"{{}} BETWEEN {int(low)} AND {int(high)}")


def length_check(name: str, length: int) -> AttributeCheck:
    """`length(name) <= length`."""
    return AttributeCheck(sa.column(name), f"length({{}}) <= {int(length)}")


def compile(spec: TableSpec, metadata: sa.MetaData, backend: Backend) -> sa.Table:
    """The sqlalchemy.Table of a spec, added to `metadata`. Pure: no database round trip."""
    sa_schema, sa_name = backend.table_identity(spec.schema, spec.name)
    key = spec.primary_key
    single_int_key = len(key) == 1
    columns: list[sa.Column[Any]] = []
    constraints: list[Any] = []
    for attr in spec.attributes:
        info = attr.type_info
        sa_type = info.sa_type
        if attr.autoincrement:
            sa_type = _autoincrement_type(sa_type)
        server_default = None
        if attr.default is not None:
            server_default = server_default_for(attr.default, info)
        columns.append(sa.Column(
            attr.name, sa_type, primary_key=False, nullable=attr.nullable,
            server_default=server_default, comment=attr.sql_comment,
            autoincrement=attr.autoincrement if single_int_key else False,
        ))
        if info.value_range is not None and not attr.autoincrement:
            low, high = info.value_range
            constraints.append(_checked_where_needed(sa.CheckConstraint(
                range_check(attr.name, low, high), name=f"{attr.name}_range"), info.category))
        if info.enum_values:
            constraints.append(_checked_where_needed(sa.CheckConstraint(
                sa.column(attr.name).in_(info.enum_values), name=f"{attr.name}_enum"), "enum"))
        if info.category in ("varchar", "char"):
            constraints.append(_checked_where_needed(sa.CheckConstraint(
                length_check(attr.name, info.args[0]), name=f"{attr.name}_length"),
                info.category))
    constraints.append(sa.PrimaryKeyConstraint(*key))
    for fk in spec.foreign_keys:
        parent_table: sa.Table = fk.parent._sa_table
        constraints.append(sa.ForeignKeyConstraint(
            fk.attributes, [parent_table.c[p] for p in fk.parent_attributes],
            onupdate="CASCADE", ondelete="RESTRICT"))
        if fk.unique:
            constraints.append(sa.Index(None, *fk.attributes, unique=True))
    for index in spec.indexes:
        constraints.append(sa.Index(None, *index.attributes, unique=index.unique))
    autoincrement = any(a.autoincrement for a in spec.attributes) and single_int_key
    options: dict[str, Any] = {}
    for each in BACKENDS.values():  # the Table serves every dialect (e.g. migration scripts)
        options.update(each.table_options(autoincrement=autoincrement))
    return sa.Table(
        sa_name, metadata, *columns, *constraints, schema=sa_schema,
        comment=spec.comment or None, **options,
    )


def _autoincrement_type(sa_type: sa.types.TypeEngine[Any]) -> sa.types.TypeEngine[Any]:
    """The key's type with the variants backends need for auto-increment."""
    for dialect, each in BACKENDS.items():
        variant = each.autoincrement_type()
        if variant is not None:
            sa_type = sa_type.with_variant(variant, dialect)
    return sa_type
