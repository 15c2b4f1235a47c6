"""The `~lineage` table DataJoint 2.3 reads to match attributes in joins.

DataJoint 2.3 keeps, per schema, a hidden table `~lineage(table_name, attribute_name,
lineage)` with the origin ("schema.table.attribute") of every primary-key and
foreign-key attribute of the schema's tables (native secondary attributes have none), and
refuses joins on PostgreSQL in a schema without it. Our headings carry the same lineage
(declare.py), so each table we create writes its rows here, in the transaction that creates
it, and a table we drop takes its rows with it: DataJoint 2.3 then joins our tables too.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .backends.base import fixed_table_ddl
from .errors import DataJointError

if TYPE_CHECKING:
    from .backends import Backend
    from .heading import Heading

LINEAGE_TABLE = "~lineage"


def _build_lineage_table(backend: Backend, schema: str) -> sa.Table:
    sa_schema, sa_name = backend.table_identity(schema, LINEAGE_TABLE)
    return sa.Table(
        sa_name, sa.MetaData(),
        sa.Column("table_name", sa.String(64), primary_key=True,
                  comment="table name within the schema"),
        sa.Column("attribute_name", sa.String(64), primary_key=True, comment="attribute name"),
        sa.Column("lineage", sa.String(255), nullable=False,
                  comment="origin: schema.table.attribute"),
        schema=sa_schema)


#: one Table object per schema, so that SQLAlchemy's compiled cache serves its statements
lineage_table = functools.lru_cache(maxsize=256)(_build_lineage_table)


def entries(schema: str, table: str, heading: Heading) -> list[dict[str, str]]:
    """The rows DataJoint 2.3 expects for one table: key attributes and attributes that
    came through a foreign key, each with its origin."""
    rows = []
    for attr in heading.attributes:
        native = f"{schema}.{table}.{attr.name}"
        if attr.name.startswith("_") or not attr.lineage:
            continue
        if attr.in_key or attr.lineage != native:
            rows.append({"table_name": table, "attribute_name": attr.name,
                         "lineage": attr.lineage})
    return rows


#: sa connection info: lineage tables seen to exist in an earlier transaction
SEEN = "dj_lineage_tables"


def _ensure(sa_conn: Any, table: sa.Table) -> None:
    # remembered only when found in place (committed), not when created here: a rollback
    # would take the new one away; forgotten when a declaration fails or a schema is dropped
    seen = sa_conn.info.setdefault(SEEN, set())
    if (table.schema, table.name) in seen:
        return
    if sa.inspect(sa_conn).has_table(table.name, schema=table.schema):
        seen.add((table.schema, table.name))
        return
    # IF NOT EXISTS: another session may be creating it right now (no savepoint needed,
    # which MySQL's implicit commit of DDL would end anyway)
    sa_conn.execute(sa.schema.CreateTable(table, if_not_exists=True))


def create_ddl(backend: Backend, dialect: Any, schema: str) -> str:
    """The CREATE TABLE IF NOT EXISTS of a schema's lineage table: `CreateTable`'s text,
    compiled once per dialect (`fixed_table_ddl`), not for every new schema."""
    return fixed_table_ddl(dialect, LINEAGE_TABLE,
                           functools.partial(_build_lineage_table, backend),
                           backend.table_identity(schema, LINEAGE_TABLE))


def create(sa_conn: Any, backend: Backend, schema: str) -> None:
    """Create the lineage table of a schema being created (in the same transaction)."""
    sa_conn.exec_driver_sql(create_ddl(backend, sa_conn.dialect, schema),
                            execution_options={"no_parameters": True})


def mark_seen(sa_conn: Any, backend: Backend, schema: str) -> None:
    """Remember a lineage table created by a committed transaction: no catalog query."""
    sa_conn.info.setdefault(SEEN, set()).add(backend.table_identity(schema, LINEAGE_TABLE))


def forget_seen(sa_conn: Any) -> None:
    """Ask the catalog again for lineage tables (after a failure, or a schema dropped)."""
    sa_conn.info.pop(SEEN, None)


def insert(backend: Backend, dialect: Any, schema: str, table: str, heading: Heading
           ) -> str | None:
    """The INSERT of a new table's lineage rows as SQL text with its values inline, for
    `dialect` (None: it has none); a backend may send it with the CREATE TABLE
    (`Backend.create_table(then=...)`). Rendered here, not compiled by SQLAlchemy: a
    multi-row INSERT with inline values is compiled anew for every table (its values are
    part of the statement), which cost as much as the CREATE TABLE's own compile."""
    rows = entries(schema, table, heading)
    if not rows:
        return None
    sa_schema, sa_name = backend.table_identity(schema, LINEAGE_TABLE)
    quote = dialect.identifier_preparer.quote
    values = ", ".join(
        f"({_literal(row['table_name'])}, {_literal(row['attribute_name'])}, "
        f"{_literal(row['lineage'])})" for row in rows)
    target = dialect.identifier_preparer.format_table(sa.table(sa_name, schema=sa_schema))
    return (f"INSERT INTO {target} "
            f"({quote('table_name')}, {quote('attribute_name')}, {quote('lineage')}) "
            f"VALUES {values}")


def _literal(value: str | None) -> str:
    """A string literal every backend reads alike (None: NULL). Lineage values are made of
    schema, table and attribute names, which have no quotes, backslashes or percent signs;
    a value with one is refused rather than escaped per backend."""
    if value is None:
        return "NULL"
    if any(ch in value for ch in "'\\%\0"):
        raise DataJointError(f"Cannot record the lineage value {value!r}: it holds a quote, "
                             "backslash, percent sign or NUL")
    return f"'{value}'"


def record(sa_conn: Any, backend: Backend, schema: str, table: str, heading: Heading
           ) -> None:
    """Write the lineage rows of a table just created (replacing any left behind)."""
    target = lineage_table(backend, schema)
    _ensure(sa_conn, target)
    sa_conn.execute(sa.delete(target).where(target.c.table_name == table))
    rows = entries(schema, table, heading)
    if rows:
        sa_conn.execute(sa.insert(target), rows)


def forget(sa_conn: Any, backend: Backend, schema: str, table: str) -> None:
    """Remove the lineage rows of a dropped table, where the schema has the table."""
    if table.startswith("~"):
        return
    target = lineage_table(backend, schema)
    if sa.inspect(sa_conn).has_table(target.name, schema=target.schema):
        sa_conn.execute(sa.delete(target).where(target.c.table_name == table))


def rename(sa_conn: Any, backend: Backend, schema: str, old: str, new: str) -> None:
    """A renamed table keeps its rows, and every origin `schema.old.attribute` (its own and
    its dependents') becomes `schema.new.attribute`."""
    target = lineage_table(backend, schema)
    if not sa.inspect(sa_conn).has_table(target.name, schema=target.schema):
        return
    sa_conn.execute(sa.update(target).where(target.c.table_name == old)
                    .values(table_name=new))
    head, new_head = f"{schema}.{old}.", f"{schema}.{new}."
    rows = sa_conn.execute(sa.select(target.c.table_name, target.c.attribute_name,
                                     target.c.lineage)
                           .where(target.c.lineage.startswith(head, autoescape=True))).all()
    for table_name, attribute, origin in rows:
        sa_conn.execute(sa.update(target).where(target.c.table_name == table_name,
                                                target.c.attribute_name == attribute)
                        .values(lineage=new_head + origin[len(head):]))
