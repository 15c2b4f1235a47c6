"""What a migration run compares: the pipeline's schemas and tables, and how to compare them.

A `Scope` is handed to Alembic in the migration context's options (key `datajoint_sa`). It
decides which database objects belong to the pipeline (`include_name`, `include_object`), and
compares types and defaults through what the definition declared rather than through what
each database reports back (`compare_type`, `compare_server_default`): the column comment
holds the declared type (`:int16:comment`; on SQLite the same text lives in the hidden
`~comments` table), so a declared type is compared with a declared type on every backend.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection as SAConnection

from ..backends import Backend
from ..errors import DataJointError
from ..heading import split_comment
from ..types import TypeInfo, resolve_type

OPTION = "datajoint_sa"
#: the version table lives, hidden, in the pipeline's first schema
VERSION_TABLE = "~alembic_version"
HIDDEN_PREFIX = "~"
FK_PREFIX = "fk_"  # declare.NAMING_CONVENTION names foreign keys fk_<table>_<columns>
#: `new_name : type  # ... renamed from old_name` marks a rename in a definition
RENAME_HINT = re.compile(r"\brenamed\s+from\s+([a-z][a-z0-9_]*)\b", re.IGNORECASE)

TableKey = tuple[str | None, str]


@dataclass
class Scope:
    """The schemas and tables one comparison may touch, and the comparison hooks."""

    backend: Backend
    schemas: list[str]
    metadata: list[sa.MetaData]
    #: restrict the comparison to these tables ((schema, name) as SQLAlchemy names)
    only: set[TableKey] | None = None
    default_schema: str | None = None
    #: tables the user names as renamed ("Subject=Animal", "#subject=animal"): a dropped and
    #: a created table so named are one renamed table
    renames: list[tuple[str, str]] = field(default_factory=list)
    #: asked whether a dropped and a created table of the same heading are one renamed
    #: table (None: they are not)
    confirm: Callable[[str], bool] | None = None
    _comments: dict[TableKey, tuple[str, dict[str, str]]] = field(default_factory=dict)

    # ---- identity -----------------------------------------------------------------------
    @property
    def batch(self) -> bool:
        """Whether tables are changed by copying them (SQLite)."""
        return self.backend.alters_by_copy

    @property
    def prefixed(self) -> bool:
        """Whether schemas are name prefixes in the default schema (SQLite)."""
        return self.backend.table_identity("s", "t")[0] is None

    def key(self, sa_schema: str | None, sa_name: str) -> TableKey:
        return (sa_schema if sa_schema is not None else self.default_schema, sa_name)

    def identity(self, sa_schema: str | None, sa_name: str) -> tuple[str, str]:
        """(schema, table) of a table as DataJoint names it."""
        schema = sa_schema if sa_schema is not None else self.default_schema
        return self.backend.split_identity(schema, sa_name)

    def node(self, sa_schema: str | None, sa_name: str) -> str:
        schema, table = self.identity(sa_schema, sa_name)
        return f"{schema}.{table}"

    @property
    def metadata_tables(self) -> list[sa.Table]:
        return [t for m in self.metadata for t in m.sorted_tables]

    @property
    def metadata_keys(self) -> set[TableKey]:
        return {self.key(t.schema, t.name) for t in self.metadata_tables}

    @property
    def version_identity(self) -> tuple[str | None, str]:
        """(version_table_schema, version_table) for Alembic."""
        return self.backend.table_identity(self.schemas[0], VERSION_TABLE)

    def owns(self, sa_schema: str | None, sa_name: str) -> bool:
        """Whether a database table belongs to the pipeline (hidden tables only when the
        pipeline declares them)."""
        try:
            schema, table = self.identity(sa_schema, sa_name)
        except Exception:
            return False
        if schema not in self.schemas or not table:
            return False
        key = self.key(sa_schema, sa_name)
        if self.only is not None and key not in self.only:
            return False
        if table.startswith(HIDDEN_PREFIX) and key not in self.metadata_keys:
            return False
        return True

    # ---- Alembic filters ----------------------------------------------------------------
    def include_name(self, name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
        if type_ == "schema":
            if self.prefixed:
                return name is None
            return (name if name is not None else self.default_schema) in self.schemas
        if type_ == "table":
            assert name is not None
            return self.owns(parent_names.get("schema_name"), name)
        return True

    def include_object(self, obj: Any, name: str | None, type_: str, reflected: bool,
                       compare_to: Any) -> bool:
        if type_ == "table" and not reflected and self.only is not None:
            return self.key(obj.schema, obj.name) in self.only
        if type_ == "index" and reflected and compare_to is None and name:
            # an index named like a foreign key that the definition does not declare is the
            # one MySQL made to support it; it stays when the foreign key goes (harmless)
            return not name.startswith(FK_PREFIX)
        return True

    # ---- stored comments (the stored definition) ----------------------------------------
    def reset(self) -> None:
        self._comments.clear()

    def stored_comments(self, conn: SAConnection, sa_schema: str | None, sa_name: str
                        ) -> tuple[str, dict[str, str]]:
        """(table comment, {column: comment}) as stored in the database."""
        key = self.key(sa_schema, sa_name)
        if key not in self._comments:
            schema, table = self.identity(sa_schema, sa_name)
            found = None
            if not self.backend.native_comments:
                try:
                    found = self.backend.read_comments(conn, schema, table)
                except sa.exc.DBAPIError:
                    found = ("", {})
            if found is None:
                inspector = sa.inspect(conn)
                try:
                    columns = {c["name"]: c.get("comment") or ""
                               for c in inspector.get_columns(sa_name, schema=sa_schema)}
                    text = inspector.get_table_comment(sa_name, schema=sa_schema).get("text")
                except sa.exc.NoSuchTableError:
                    columns, text = {}, ""
                found = (text or "", columns)
            self._comments[key] = found
        return self._comments[key]

    def stored_type(self, conn: SAConnection, column: sa.Column[Any]) -> str | None:
        """The declared type of a reflected column, from its stored comment."""
        table = column.table
        assert isinstance(table, sa.Table)
        comment = column.comment
        if not self.backend.native_comments or comment is None:
            comment = self.stored_comments(conn, table.schema, table.name)[1].get(column.name)
        return split_comment(comment)[0] if comment else None

    # ---- comparison hooks ---------------------------------------------------------------
    def compare_type(self, context: Any, inspected_column: sa.Column[Any],
                     metadata_column: sa.Column[Any], inspected_type: Any,
                     metadata_type: Any) -> bool | None:
        """Declared type against declared type; None lets Alembic compare (no marker)."""
        new = declared_type(metadata_column.comment)
        old = self.stored_type(context.bind, inspected_column) if new else None
        if new is not None and old is None:
            # a table another writer created (DataJoint 0.14 leaves no declared type):
            # a native enum is compared by its values, anything else as Alembic does
            info = type_info(new)
            values = getattr(inspected_type, "enums", None)
            if info is not None and info.category == "enum" and values is not None:
                return set(values) != set(info.enum_values)
        if new is None or old is None:
            return None
        old_storage = storage_type(old, context.dialect)
        new_storage = storage_type(new, context.dialect)
        if old_storage is None or new_storage is None:
            return None
        return old_storage != new_storage

    def compare_server_default(self, context: Any, inspected_column: sa.Column[Any],
                               metadata_column: sa.Column[Any], inspected_default: str | None,
                               metadata_default: Any, rendered_metadata_default: str | None
                               ) -> bool:
        return normalize_default(inspected_default) != normalize_default(
            rendered_metadata_default)

    def render_item(self, type_: str, obj: Any, autogen_context: Any) -> str | bool:
        """Foreign keys to dotted table names (SQLite) name their columns through
        `referent()`; our read-back decorators render as the column type they store;
        everything else renders as Alembic does."""
        storage = getattr(obj, "migration_type", None)
        if type_ == "type" and storage is not None:
            from alembic.autogenerate.render import _repr_type

            return str(_repr_type(storage(), autogen_context))
        if type_ != "foreign_key":
            return False
        try:
            target = obj.elements[0].column.table
        except Exception:
            return False
        if "." not in target.name:
            return False
        autogen_context.imports.add("from datajoint_sa.migrate.operations import referent")
        options = []
        if obj.name:
            name = repr(str(obj.name))
            options.append(f"name=op.f({name})" if isinstance(obj.name, sa.sql.elements.conv)
                           else f"name={name}")
        for option in ("onupdate", "ondelete", "initially", "deferrable", "match"):
            value = getattr(obj, option, None)
            if value:
                options.append(f"{option}={value!r}")
        local = [e.parent.name for e in obj.elements]
        remote = [e.column.name for e in obj.elements]
        schema = f", schema={target.schema!r}" if target.schema else ""
        return (f"sa.ForeignKeyConstraint({local!r}, referent({target.name!r}, {remote!r}"
                f"{schema}), {', '.join(options)})")

    def options(self) -> dict[str, Any]:
        """Keyword arguments of `context.configure` / `MigrationContext.configure` opts."""
        version_schema, version_table = self.version_identity
        return {
            OPTION: self,
            "include_schemas": not self.prefixed,
            "include_name": self.include_name,
            "include_object": self.include_object,
            "compare_type": self.compare_type,
            "compare_server_default": self.compare_server_default,
            "render_as_batch": self.batch,
            "render_item": self.render_item,
            "version_table": version_table,
            "version_table_schema": version_schema,
            "autogenerate_plugins": ["alembic.autogenerate.*", "datajoint_sa.*"],
            **({"transactional_ddl": True} if self.batch else {}),
        }


def scope_of(context: Any) -> Scope | None:
    """The Scope of a migration or autogenerate context (None outside datajoint_sa runs)."""
    opts = getattr(context, "opts", None) or {}
    scope = opts.get(OPTION)
    return scope if isinstance(scope, Scope) else None


# ---- declared types ---------------------------------------------------------------------

def declared_type(comment: str | None) -> str | None:
    return split_comment(comment)[0] if comment else None


def type_info(declared: str | None) -> TypeInfo | None:
    if not declared:
        return None
    try:
        return resolve_type(declared)
    except DataJointError:
        return None


def storage_type(declared: str, dialect: sa.Dialect) -> str | None:
    """The column type a declared type becomes on this dialect, as DDL text."""
    info = type_info(declared)
    if info is None:
        return None
    return str(info.sa_type.compile(dialect=dialect))


def check_signature(declared: str | None) -> tuple[Any, ...] | None:
    """What the value checks of a declared type enforce (range, enum values, length)."""
    info = type_info(declared)
    if info is None:
        return None
    length = info.args[0] if info.category in ("char", "varchar") else None
    return (info.value_range, info.enum_values, length)


def user_comment(comment: str | None) -> str:
    return split_comment(comment)[1]


def rename_hint(column: sa.Column[Any]) -> str | None:
    """`old_name` of a column whose comment says `renamed from old_name`."""
    m = RENAME_HINT.search(user_comment(column.comment))
    return m.group(1).lower() if m else None


def renames_between(existing: set[str], table: sa.Table) -> dict[str, str]:
    """{old: new} for columns of `table` that are renames of existing columns."""
    declared = {c.name for c in table.columns}
    found: dict[str, str] = {}
    for column in table.columns:
        old = rename_hint(column)
        if (old and old in existing and column.name not in existing and old not in declared
                and old not in found):
            found[old] = column.name
    return found


# ---- defaults ---------------------------------------------------------------------------

_CAST = re.compile(r"::\s*[a-z_][a-z0-9_ ]*(\(\s*\d+\s*(,\s*\d+\s*)?\))?(\[\])?\s*$", re.I)
_NOW = {"current_timestamp", "current_timestamp()", "now()", "localtimestamp",
        "localtimestamp()", "current_timestamp(6)"}


def _strip_parentheses(text: str) -> str:
    if not (text.startswith("(") and text.endswith(")")):
        return text
    depth = 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and i < len(text) - 1:
            return text  # "(a) + (b)": the outer parentheses are not a pair
    return text[1:-1].strip()


def normalize_default(text: Any) -> str | None:
    """A server default as one canonical string, so that `'0'::integer` (PostgreSQL),
    `0` (MySQL) and `'0'` (SQLite) compare equal."""
    if text is None:
        return None
    value = str(text).strip()
    while True:
        before = value
        value = _strip_parentheses(_CAST.sub("", value).strip())
        if value == before:
            break
    m = re.fullmatch(r"'(.*)'", value, flags=re.DOTALL)
    if m:
        value = m.group(1).replace("''", "'")
    lowered = value.lower()
    if lowered in _NOW:
        return "CURRENT_TIMESTAMP"
    if lowered == "true":
        return "1"
    if lowered == "false":
        return "0"
    try:
        number = Decimal(value)
    except InvalidOperation:
        return value
    if not number.is_finite():
        return value
    if number == number.to_integral_value():
        return str(int(number))
    return format(number.normalize(), "f")
