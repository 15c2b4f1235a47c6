"""Reflection: table classes and definitions rebuilt from what the database holds.

One path serves `VirtualModule`, `Schema.spawn_missing_classes` and `Schema.code`:

1. `Catalog` reads each table once through SQLAlchemy's Inspector (columns, primary key,
   foreign keys, indexes) plus the stored comments. A column comment `:type:comment` gives
   the declared type; a column without a marker (DataJoint 0.14, or foreign-key columns as
   DataJoint 2.x writes them, or tables made by other tools) gets its type from the native
   SQL type.
2. `definition()` writes the definition text of a table: `-> Parent` where a foreign key
   covers exactly the parent's primary key (with `.proj(new='old')` for renames), attribute
   lines for the rest, indexes last.
3. `Spawner` builds classes of the tier that the table name's prefix says, nests parts in
   their masters, and declares them through the ordinary `Schema` machinery without DDL, so
   reflected classes are ordinary declared classes.
"""

from __future__ import annotations

import graphlib
import logging
import re
import sys
import types
import warnings
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .errors import DataJointError
from .heading import split_comment
from .legacy_external import EXTERNAL_PREFIX, LEGACY_CODECS
from .naming import from_camel_case, to_camel_case
from .schema import Schema
from .table import Table
from .tiers import Computed, Imported, Lookup, Manual, Part
from .types import TypeInfo, resolve_type

if TYPE_CHECKING:
    from .connection import Connection
    from .schema import Schema
    from .table import Table

logger = logging.getLogger("datajoint_sa")

HIDDEN_PREFIX = "~"
_WORD = r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*"
TABLE_NAME = re.compile(rf"(?P<prefix>#|__|_)?(?P<master>{_WORD})(?:__(?P<part>{_WORD}))?")
TIER_OF_PREFIX: dict[str, type[Table]] = {"": Manual, "#": Lookup, "_": Imported,
                                          "__": Computed}
TIER_NAMES = {Manual: "Manual", Lookup: "Lookup", Imported: "Imported", Computed: "Computed",
              Part: "Part"}
_NUMERIC_CATEGORIES = {"float32", "float64", "decimal", "bool"}
_LEGACY_EXTERNAL = re.compile(r"<?(blob|attach|filepath)@(\w+)>?")


class ReflectionWarning(UserWarning):
    """A table or a foreign key that reflection cannot express and leaves out."""


# ---------------------------------------------------------------------------- what is stored

@dataclass
class ColumnInfo:
    name: str
    type: str  # the declared DataJoint type
    nullable: bool = False
    default: str | None = None  # as definition text: quoted for strings
    comment: str = ""
    autoincrement: bool = False


@dataclass
class ForeignKeyInfo:
    parent: str  # "schema.table"
    columns: list[str]  # in the child
    parent_columns: list[str]

    @property
    def renames(self) -> dict[str, str]:
        return {c: p for c, p in zip(self.columns, self.parent_columns) if c != p}


@dataclass
class TableInfo:
    """Everything the database says about one table."""

    schema: str
    name: str
    comment: str = ""
    columns: list[ColumnInfo] = field(default_factory=list)
    primary_key: list[str] = field(default_factory=list)
    foreign_keys: list[ForeignKeyInfo] = field(default_factory=list)
    indexes: list[tuple[list[str], bool]] = field(default_factory=list)  # (columns, unique)

    @property
    def node(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def parsed(self) -> re.Match[str] | None:
        m = TABLE_NAME.fullmatch(self.name)
        if m is None:
            return None
        for word in (m.group("master"), m.group("part")):
            if word is not None and from_camel_case(to_camel_case(word)) != word:
                return None  # e.g. "session_2": no class name spells it
        return m

    @property
    def supported(self) -> bool:
        return self.parsed is not None and bool(self.primary_key)

    @property
    def is_part(self) -> bool:
        m = self.parsed
        return m is not None and m.group("part") is not None

    @property
    def master_name(self) -> str:
        """The table name of the master (the table itself when it is not a part)."""
        m = self.parsed
        assert m is not None
        return (m.group("prefix") or "") + m.group("master")

    @property
    def master_node(self) -> str:
        return f"{self.schema}.{self.master_name}"

    @property
    def class_name(self) -> str:
        """The class name (a part's own name, without its master)."""
        m = self.parsed
        assert m is not None
        return to_camel_case(m.group("part") or m.group("master"))

    @property
    def qualified_name(self) -> str:
        """`Master.Part` for parts, the class name otherwise."""
        m = self.parsed
        assert m is not None
        master = to_camel_case(m.group("master"))
        return f"{master}.{to_camel_case(m.group('part'))}" if m.group("part") else master

    @property
    def tier(self) -> type[Table]:
        m = self.parsed
        assert m is not None
        return Part if m.group("part") else TIER_OF_PREFIX[m.group("prefix") or ""]

    @property
    def column(self) -> dict[str, ColumnInfo]:
        return {c.name: c for c in self.columns}


def split_table_name(name: str) -> tuple[str, str, str | None] | None:
    """(tier name, class name, part class name or None) of a DataJoint table name."""
    info = TableInfo(schema="", name=name, primary_key=["-"])
    if not info.supported:
        return None
    m = info.parsed
    assert m is not None
    tier = "Part" if m.group("part") else TIER_NAMES[TIER_OF_PREFIX[m.group("prefix") or ""]]
    master = to_camel_case(m.group("master"))
    return tier, master, to_camel_case(m.group("part")) if m.group("part") else None


# ---------------------------------------------------------------------------- native types

def native_type(sa_type: sa.types.TypeEngine[Any]) -> str | None:
    """The DataJoint type of a column that carries no `:type:` marker, or None if unknown."""
    kind = type(sa_type).__visit_name__.upper()
    unsigned = " unsigned" if getattr(sa_type, "unsigned", False) else ""
    if kind == "BOOLEAN":
        return "bool"
    if kind == "TINYINT":
        return "bool" if getattr(sa_type, "display_width", None) == 1 and not unsigned \
            else "tinyint" + unsigned
    integers = {"SMALLINT": "smallint", "SMALL_INTEGER": "smallint", "MEDIUMINT": "mediumint",
                "INTEGER": "int", "INT": "int", "BIGINT": "bigint", "BIG_INTEGER": "bigint"}
    if kind in integers:
        return integers[kind] + unsigned
    if kind in ("REAL",):
        return "float"
    if kind in ("DOUBLE", "DOUBLE_PRECISION"):
        return "double"
    if kind == "FLOAT":
        precision = getattr(sa_type, "precision", None)
        return "double" if precision is not None and precision > 24 else "float"
    if kind in ("NUMERIC", "DECIMAL"):
        precision, scale = getattr(sa_type, "precision", None), getattr(sa_type, "scale", None)
        return f"decimal({precision},{scale or 0})" if precision else "double"
    if kind in ("CHAR", "NCHAR"):
        length = getattr(sa_type, "length", None)
        return f"char({length})" if length else "char(1)"
    if kind in ("VARCHAR", "NVARCHAR", "STRING"):
        length = getattr(sa_type, "length", None)
        return f"varchar({length})" if length else "text"
    if kind in ("TEXT", "TINYTEXT", "MEDIUMTEXT", "LONGTEXT", "CLOB"):
        return kind.lower() if kind != "CLOB" else "text"
    if kind == "ENUM":
        values = getattr(sa_type, "enums", None) or []
        return "enum(" + ",".join("'" + v.replace("'", "''") + "'" for v in values) + ")" \
            if values else None
    if kind == "DATE":
        return "date"
    if kind == "YEAR":
        return "year"
    if kind in ("DATETIME", "TIMESTAMP", "TIME"):
        precision = getattr(sa_type, "fsp", None) or getattr(sa_type, "precision", None)
        base = kind.lower()
        return f"{base}({precision})" if precision else base
    if kind == "UUID":
        return "uuid"
    if kind in ("JSON", "JSONB"):
        return "json"
    if kind in ("LONGBLOB", "MEDIUMBLOB", "BLOB", "TINYBLOB"):
        # DataJoint 0.14 keeps serialized objects here without a marker; values with a blob
        # header are decoded, anything else comes back as bytes
        return kind.lower()
    if kind in ("BYTEA", "BINARY", "VARBINARY", "LARGE_BINARY", "_BINARY"):
        return "bytes"
    return None


def _declared_type(marker: str | None, sa_type: sa.types.TypeEngine[Any], where: str
                   ) -> tuple[str, str]:
    """(declared type, a note when the type could not be kept) for one column."""
    legacy = _LEGACY_EXTERNAL.fullmatch(marker or "")
    if legacy is not None and native_type(sa_type) in ("bytes", "uuid"):
        # DataJoint 0.14 kept external attributes as a UUID into ~external_<store>
        return f"<{LEGACY_CODECS[legacy.group(1)]}@{legacy.group(2)}>", ""
    if marker is not None:
        try:
            return resolve_type(marker).type, ""
        except DataJointError as error:
            fallback = native_type(sa_type) or "bytes"
            if "codec" in str(error).lower():
                resolve_type(fallback)
                return fallback, f"{where}: {error}; read as {fallback}"
    found = native_type(sa_type)
    if found is None:
        return "text", f"{where}: no DataJoint type for SQL type {sa_type!r}; read as text"
    return found, ""


# ---------------------------------------------------------------------------- defaults

def _sql_literal(text: str) -> tuple[str | None, str]:
    """(string value, remainder) when `text` starts with an SQL string literal."""
    if not text.startswith("'"):
        return None, text
    i, out = 1, []
    while i < len(text):
        ch = text[i]
        if ch == "'":
            if text[i + 1:i + 2] == "'":
                out.append("'")
                i += 2
                continue
            return "".join(out), text[i + 1:]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    return None, text


def default_text(raw: Any, info: TypeInfo) -> str | None:
    """A server default as the definition language writes it, or None for no default."""
    if raw is None:
        return None
    text = str(raw).strip()
    while text.startswith("(") and text.endswith(")"):
        text = text[1:-1].strip()
    if not text or text.upper() == "NULL" or text.lower().startswith("nextval("):
        return None
    if re.fullmatch(r"(current_timestamp|now|localtimestamp)\s*(\(\s*\d*\s*\))?", text,
                    flags=re.IGNORECASE):
        return "CURRENT_TIMESTAMP"
    value, rest = _sql_literal(text)
    if value is None:
        value, _, _ = text.partition("::")  # PostgreSQL casts: 1.5::double precision
        value = value.strip()
        while value.startswith("(") and value.endswith(")"):
            value = value[1:-1].strip()
    elif rest.strip() and not rest.strip().startswith("::"):
        return None  # an expression we cannot write as a literal
    if value.upper() == "NULL":
        return None
    if info.category == "bool":
        return {"1": "true", "0": "false", "t": "true", "f": "false"}.get(value.lower(),
                                                                          value.lower())
    if info.is_integer or info.category in _NUMERIC_CATEGORIES:
        return value
    if '"' not in value:
        return f'"{value}"'
    return f"'{value}'"


# ---------------------------------------------------------------------------- the catalog

class Catalog:
    """TableInfo of every table of the schemas asked for, each schema read once."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._schemas: dict[str, dict[str, TableInfo]] = {}
        self.notes: list[str] = []

    def schema(self, name: str) -> dict[str, TableInfo]:
        if name not in self._schemas:
            self._schemas[name] = self._read(name)
        return self._schemas[name]

    def table(self, node: str) -> TableInfo | None:
        schema, _, name = node.partition(".")
        return self.schema(schema).get(name)

    def _read(self, schema: str) -> dict[str, TableInfo]:
        connection = self.connection
        backend = connection.backend_impl
        found: dict[str, TableInfo] = {}
        with connection.session(write=False) as sa_conn:
            if not backend.schema_exists(sa_conn, schema):
                return found
            names = [n for n in backend.list_tables(sa_conn, schema)
                     if not n.startswith(HIDDEN_PREFIX)]
            if not names:
                return found
            identities = {backend.table_identity(schema, n): n for n in names}
            sa_schema = next(iter(identities))[0]
            filter_names = [sa_name for _, sa_name in identities]
            inspector = sa.inspect(sa_conn)
            columns = inspector.get_multi_columns(schema=sa_schema, filter_names=filter_names)
            keys = inspector.get_multi_pk_constraint(schema=sa_schema, filter_names=filter_names)
            fks = inspector.get_multi_foreign_keys(schema=sa_schema, filter_names=filter_names)
            indexes = inspector.get_multi_indexes(schema=sa_schema, filter_names=filter_names)
            comments: Mapping[Any, Any] = {}
            stored: dict[str, tuple[str, dict[str, str]] | None] = {
                n: backend.read_comments(sa_conn, schema, n) for n in names}
            if any(v is None for v in stored.values()):
                comments = inspector.get_multi_table_comment(schema=sa_schema,
                                                             filter_names=filter_names)
            for (sa_schema_, sa_name), name in identities.items():
                ident = (sa_schema_, sa_name)
                table_columns = columns.get(ident, [])
                auto = backend.autoincrement_columns(
                    sa_conn, sa_schema_, sa_name, [dict(c) for c in table_columns])
                found[name] = self._table_info(
                    schema, name, table_columns, keys.get(ident) or {}, fks.get(ident, []),
                    indexes.get(ident, []), stored[name],
                    (comments.get(ident) or {}).get("text") or "", auto)
        return found

    def _table_info(self, schema: str, name: str, columns: list[Any], key: Mapping[str, Any],
                    fks: list[Any], indexes: list[Any],
                    stored: tuple[str, dict[str, str]] | None, native_comment: str,
                    autoincrement: set[str]) -> TableInfo:
        backend = self.connection.backend_impl
        table_comment = stored[0] if stored is not None else native_comment
        column_comments = stored[1] if stored is not None else {}
        info = TableInfo(schema=schema, name=name, comment=table_comment or "")
        info.primary_key = list(key.get("constrained_columns") or [])
        for column in columns:
            raw_comment = column_comments.get(column["name"]) if stored is not None \
                else column.get("comment")
            marker, comment = split_comment(raw_comment)
            where = f"{schema}.{name}.{column['name']}"
            declared, note = _declared_type(marker, column["type"], where)
            if note:
                self.notes.append(note)
            type_info = resolve_type(declared)
            is_auto = column["name"] in autoincrement
            info.columns.append(ColumnInfo(
                name=column["name"], type=declared, nullable=bool(column.get("nullable")),
                default=None if is_auto else default_text(column.get("default"), type_info),
                comment=" ".join(comment.split()), autoincrement=is_auto))
        for fk in fks:
            parent_schema, parent_table = backend.split_identity(
                fk.get("referred_schema") or backend.table_identity(schema, name)[0],
                fk["referred_table"])
            info.foreign_keys.append(ForeignKeyInfo(
                parent=f"{parent_schema}.{parent_table}",
                columns=list(fk["constrained_columns"]),
                parent_columns=list(fk["referred_columns"])))
        fk_columns = [fk.columns for fk in info.foreign_keys]
        for index in indexes:
            names = list(index.get("column_names") or [])
            if not names or any(n is None for n in names):
                continue  # expression indexes are not part of the definition language
            unique = bool(index.get("unique"))
            if not unique and names in fk_columns:
                continue  # the index MySQL (or DataJoint) adds for a foreign key
            if names == info.primary_key:
                continue
            info.indexes.append((names, unique))
        return info


# ---------------------------------------------------------------------------- definitions

def _attribute_line(column: ColumnInfo) -> str:
    default = " = null" if column.nullable else (
        f" = {column.default}" if column.default is not None else "")
    auto = " auto_increment" if column.autoincrement else ""
    comment = f"  # {column.comment}" if column.comment else ""
    return f"{column.name}{default} : {column.type}{auto}{comment}"


def expressible(fk: ForeignKeyInfo, catalog: Catalog) -> bool:
    """Whether `-> Parent` can say this foreign key: it covers exactly the parent's key."""
    parent = catalog.table(fk.parent)
    return (parent is not None and parent.supported
            and sorted(fk.parent_columns) == sorted(parent.primary_key)
            and len(set(fk.columns)) == len(fk.columns))


def definition(info: TableInfo, catalog: Catalog, reference: Callable[[str], str]) -> str:
    """The definition text of a reflected table; `reference(node)` names a parent."""
    key = set(info.primary_key)
    columns = info.column
    fks = []
    for fk in info.foreign_keys:
        if expressible(fk, catalog):
            fks.append(fk)
        elif fk.parent.partition(".")[2].startswith(EXTERNAL_PREFIX):
            pass  # a 0.14 external reference: the column's codec reads it
        else:
            catalog.notes.append(f"{info.node}: the foreign key ({', '.join(fk.columns)}) -> "
                                 f"{fk.parent} is not on the parent's primary key; its "
                                 "attributes are declared plainly")
    unique_sets = {frozenset(cols) for cols, unique in info.indexes if unique}
    fk_unique = {id(fk) for fk in fks if frozenset(fk.columns) in unique_sets}
    lines = [f"# {info.comment}"] if info.comment else []
    emitted: set[str] = set()
    done: set[int] = set()

    position = {c.name: i for i, c in enumerate(info.columns)}
    fks.sort(key=lambda fk: sorted(position.get(c, -1) for c in fk.columns))

    def section(names: list[str], in_key: bool) -> None:
        section_fks = [fk for fk in fks if all(c in key for c in fk.columns) == in_key]
        for name in names:
            if name in emitted and not in_key:
                continue
            here = [fk for fk in section_fks if name in fk.columns and id(fk) not in done]
            if not here:
                if name not in emitted:
                    lines.append(_attribute_line(columns[name]))
                    emitted.add(name)
                continue
            for fk in here:
                done.add(id(fk))
                options = []
                new = [c for c in fk.columns if c not in emitted]
                if not in_key and new and all(columns[c].nullable for c in new):
                    options.append("nullable")
                if id(fk) in fk_unique:
                    options.append("unique")
                option_text = f"[{', '.join(options)}] " if options else ""
                renames = fk.renames
                proj = "" if not renames else ".proj(" + ", ".join(
                    f"{new_name}='{old}'" for new_name, old in renames.items()) + ")"
                lines.append(f"-> {option_text}{reference(fk.parent)}{proj}")
                emitted.update(fk.columns)

    names = [c.name for c in info.columns]
    section([n for n in names if n in key], True)
    lines.append("---")
    section([n for n in names if n not in key], False)
    used_unique = {frozenset(fk.columns) for fk in fks if id(fk) in fk_unique}
    for cols, unique in info.indexes:
        if unique and frozenset(cols) in used_unique:
            continue
        lines.append(f"{'unique ' if unique else ''}index({', '.join(cols)})")
    return "\n".join(lines) + "\n"


def left_out(infos: Iterable[TableInfo]) -> list[str]:
    """Notes on the tables that reflection cannot make classes of."""
    notes = []
    for info in infos:
        if info.parsed is None:
            notes.append(f"{info.node}: the table name is not a DataJoint table name (no class "
                         "name spells it); the table is left out")
        elif not info.primary_key:
            notes.append(f"{info.node}: the table has no primary key; it is left out")
    return notes


def groups(infos: Iterable[TableInfo]) -> list[tuple[TableInfo, list[TableInfo]]]:
    """(master, parts) of one schema's supported tables, parents before children."""
    by_node = {i.node: i for i in infos if i.supported}
    masters = {n: i for n, i in by_node.items() if not i.is_part}
    parts: dict[str, list[TableInfo]] = {n: [] for n in masters}
    for info in by_node.values():
        if info.is_part:
            if info.master_node in parts:
                parts[info.master_node].append(info)
            else:
                logger.warning("Part table %s has no master table; it is left out", info.node)
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for node in sorted(masters):
        sorter.add(node)
        for member in [masters[node], *parts[node]]:
            for fk in member.foreign_keys:
                parent = by_node.get(fk.parent)
                if parent is not None:
                    parent_group = parent.master_node
                    if parent_group != node and parent_group in masters:
                        sorter.add(node, parent_group)
    order: list[str] = []
    sorter.prepare()
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        order.extend(ready)
        sorter.done(*ready)
    return [(masters[n], _order_parts(parts[n])) for n in order]


def _order_parts(parts: list[TableInfo]) -> list[TableInfo]:
    nodes = {p.node: p for p in parts}
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for node in sorted(nodes):
        sorter.add(node, *(fk.parent for fk in nodes[node].foreign_keys
                           if fk.parent in nodes and fk.parent != node))
    return [nodes[n] for n in sorter.static_order()]


def _part_reference(part: TableInfo, reference: Callable[[str], str]) -> Callable[[str], str]:
    """How a part names its parents: `master` for its own master."""
    def name(node: str) -> str:
        return "master" if node == part.master_node else reference(node)

    return name


def module_alias(schema: str, taken: Iterable[str] = ()) -> str:
    """The name under which another schema's module is referred to in definitions."""
    alias = schema
    while alias in {"dj", "schema", "master", *taken}:
        alias += "_"
    return alias


# ---------------------------------------------------------------------------- classes

class _Namespace:
    """Attribute access to a dict of classes (a context that is not a module)."""

    def __init__(self, names: Mapping[str, Any]) -> None:
        self.__dict__["_names"] = names

    def __getattr__(self, name: str) -> Any:
        try:
            return self._names[name]
        except KeyError:
            raise AttributeError(name) from None


class Spawner:
    """Builds and declares classes for reflected tables, parents first, across schemas."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.catalog = Catalog(connection)
        self.bound: dict[str, tuple[Schema, MutableMapping[str, Any]]] = {}
        self.classes: dict[str, type[Table]] = {}
        self._busy: set[str] = set()

    def bind(self, schema: Schema, namespace: MutableMapping[str, Any]) -> None:
        """Classes for `schema` go into `namespace`; those already there are reused."""
        self.bound[schema.database] = (schema, namespace)
        for value in list(namespace.values()):
            self._adopt(value)

    def _adopt(self, value: Any) -> None:
        if not (isinstance(value, type) and issubclass(value, Table)):
            return
        if value._schema is None or value._sa_table is None or not value.table_name:
            return
        if value._schema.connection is not self.connection:
            return
        self.classes.setdefault(f"{value._schema.database}.{value.table_name}", value)
        for part in getattr(value, "_parts", []):
            self._adopt(part)

    def namespace(self, schema_name: str) -> tuple[Schema, MutableMapping[str, Any]]:
        if schema_name not in self.bound:
            module = VirtualModule(schema_name, schema_name, connection=self.connection,
                                   _spawner=self, _spawn=False)
            self.bind(module.schema, module.__dict__)
        return self.bound[schema_name]

    def spawn(self, schema: Schema) -> list[str]:
        """Declare every table of `schema` that has no class yet; their class names."""
        made: list[str] = []
        infos = self.catalog.schema(schema.database).values()
        self.catalog.notes.extend(left_out(infos))
        for master, _ in groups(infos):
            if master.node not in self.classes:
                cls = self.ensure(master.node)
                if cls is not None:
                    made.append(cls.__name__)
        for note in self.catalog.notes:
            warnings.warn(note, ReflectionWarning, stacklevel=3)
        self.catalog.notes.clear()
        return made

    def ensure(self, node: str) -> type[Table] | None:
        """The class of table `node`, declaring it (and its parents) when needed."""
        if node in self.classes:
            return self.classes[node]
        info = self.catalog.table(node)
        if info is None or not info.supported:
            return None
        master_node = info.master_node
        if master_node in self._busy:
            return None
        master = self.catalog.table(master_node)
        if master is None or not master.supported:
            return None
        if master_node in self.classes:  # a declared master without this part
            return None
        self._busy.add(master_node)
        try:
            self._declare_group(master)
        finally:
            self._busy.discard(master_node)
        return self.classes.get(node)

    def _declare_group(self, master: TableInfo) -> None:
        schema, namespace = self.namespace(master.schema)
        infos = self.catalog.schema(master.schema)
        parts = [i for i in infos.values() if i.supported and i.is_part
                 and i.master_node == master.node]
        members = [master, *_order_parts(parts)]
        member_nodes = {m.node for m in members}
        for member in members:
            for fk in member.foreign_keys:
                if fk.parent not in member_nodes and expressible(fk, self.catalog):
                    self.ensure(fk.parent)
        existing = namespace.get(master.class_name)
        if existing is not None and existing not in self.classes.values():
            self.catalog.notes.append(f"{master.node}: the name {master.class_name} is already "
                                      "taken in the namespace; the table is left out")
            return
        context: dict[str, Any] = {}
        module_name = namespace.get("__name__", master.schema)

        def reference(node: str) -> str:
            parent = self.catalog.table(node)
            assert parent is not None
            if parent.schema == master.schema:
                return parent.qualified_name
            alias = module_alias(parent.schema, namespace)
            parent_schema, parent_namespace = self.namespace(parent.schema)
            context[alias] = parent_namespace.get("__module_object__") or _Namespace(
                parent_namespace)
            return f"{alias}.{parent.qualified_name}"

        body: dict[str, Any] = {"__module__": module_name,
                                "definition": definition(master, self.catalog, reference)}
        for part in members[1:]:
            text = definition(part, self.catalog, _part_reference(part, reference))
            body[part.class_name] = type(part.class_name, (Part,),
                                         {"__module__": module_name, "definition": text,
                                          "__qualname__": f"{master.class_name}."
                                                          f"{part.class_name}"})
        if master.comment:
            body["__doc__"] = master.comment
        cls = type(master.class_name, (master.tier,), body)
        declared = {n: c for n, c in namespace.items() if isinstance(c, type)}
        schema._declare_class(cls, {**declared, **context})
        namespace[master.class_name] = cls
        self.classes[master.node] = cls
        for part_cls in getattr(cls, "_parts", []):
            self.classes[f"{master.schema}.{part_cls.table_name}"] = part_cls


def spawn_missing_classes(schema: Schema, context: MutableMapping[str, Any]) -> list[str]:
    """Declare a class in `context` for every table of `schema` that has none there."""
    if not schema.is_activated:
        raise DataJointError("spawn_missing_classes needs an activated schema")
    spawner = Spawner(schema.connection)
    spawner.bind(schema, context)
    for cls in schema:  # classes already declared in this schema object
        spawner._adopt(cls)
    return spawner.spawn(schema)


# ---------------------------------------------------------------------------- VirtualModule

class VirtualModule(types.ModuleType):
    """A module whose table classes are built from the database alone.

    `dj.VirtualModule("lab", "lab_schema")` reflects every table of the schema; parts are
    nested in their masters (`lab.Session.Trial`), and `lab.schema` is the Schema.
    """

    def __init__(self, module_name: str, schema_name: str, *, create_schema: bool = False,
                 create_tables: bool = False, connection: Connection | None = None,
                 add_objects: Mapping[str, Any] | None = None,
                 _spawner: Spawner | None = None, _spawn: bool = True) -> None:
        super().__init__(module_name)
        schema = Schema(schema_name, connection=connection, create_schema=create_schema,
                        create_tables=create_tables)
        self.__dict__["schema"] = schema
        self.__dict__["__module_object__"] = self
        if add_objects:
            self.__dict__.update(add_objects)
        if _spawn:
            spawner = _spawner or Spawner(schema.connection)
            spawner.bind(schema, self.__dict__)
            spawner.spawn(schema)

    def __repr__(self) -> str:
        return f"<VirtualModule {self.__name__!r} of schema {self.schema.database!r}>"


# ---------------------------------------------------------------------------- code

def schema_code(schema: Schema) -> str:
    """Python source that re-declares `schema` (read from the database)."""
    catalog = Catalog(schema.connection)
    infos = catalog.schema(schema.database)
    catalog.notes.extend(left_out(infos.values()))
    ordered = groups(infos.values())
    class_names = {m.class_name for m, _ in ordered}
    aliases: dict[str, str] = {}

    def reference(node: str) -> str:
        parent = catalog.table(node)
        assert parent is not None
        if parent.schema == schema.database:
            return parent.qualified_name
        if parent.schema not in aliases:
            aliases[parent.schema] = module_alias(parent.schema,
                                                  [*class_names, *aliases.values()])
        return f"{aliases[parent.schema]}.{parent.qualified_name}"

    blocks: list[str] = []
    for master, parts in ordered:
        lines = ["", "", "", "@schema",
                 f"class {master.class_name}(dj.{TIER_NAMES[master.tier]}):",
                 *_definition_block(definition(master, catalog, reference), "    ")]
        for part in parts:
            text = definition(part, catalog, _part_reference(part, reference))
            lines += ["", f"    class {part.class_name}(dj.Part):",
                      *_definition_block(text, "        ")]
        blocks.append("\n".join(lines))
    for note in catalog.notes:
        warnings.warn(note, ReflectionWarning, stacklevel=3)
    header = [f'"""Schema `{schema.database}`: re-declares its tables '
              '(written by datajoint_sa from the database)."""', "",
              "import datajoint_sa as dj", ""]
    header += [f'{alias} = dj.VirtualModule("{alias}", "{name}")'
               for name, alias in sorted(aliases.items())]
    header += ["" if aliases else None, f'schema = dj.Schema("{schema.database}")']  # type: ignore[list-item]
    return "\n".join(h for h in header if h is not None) + "".join(blocks) + "\n"


def _definition_block(text: str, indent: str) -> list[str]:
    body = [f"{indent}{line}" if line else "" for line in text.rstrip("\n").splitlines()]
    escaped = [line.replace("\\", "\\\\").replace('"""', '\\"\\"\\"') for line in body]
    return [f'{indent}definition = """', *escaped, f'{indent}"""']


def caller_namespace(depth: int = 2) -> MutableMapping[str, Any]:
    """The namespace of the code that called the public function (its module globals when
    called at module level)."""
    return sys._getframe(depth).f_locals
