"""Declaring into a schema this Schema object created: one transaction per table and no
catalog reads; a table another session created meanwhile is bound, not re-created; a
declaration that fails half-way leaves nothing behind where DDL is transactional; and
Schema.drop is one transaction. On every backend."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

import datajoint_sa as dj
from datajoint_sa import lineage

from .conftest import unique_name

#: statements that read the catalog, on any of the three backends
CATALOG = re.compile(r"sqlite_master|pg_catalog|pg_namespace|pg_class|information_schema|"
                     r"^\s*(PRAGMA|SHOW|DESCRIBE)\b", re.IGNORECASE)


@contextmanager
def _counting(connection: dj.Connection) -> Iterator[dict[str, list[str]]]:
    seen: dict[str, list[str]] = {"statements": [], "commits": []}

    def statement(conn: Any, cursor: Any, text: str, *args: Any) -> None:
        seen["statements"].append(text)

    def commit(conn: Any) -> None:
        seen["commits"].append("COMMIT")

    engine = connection.engine
    sa.event.listen(engine, "before_cursor_execute", statement)
    sa.event.listen(engine, "commit", commit)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", statement)
        sa.event.remove(engine, "commit", commit)


def _pipeline(schema: dj.Schema) -> dict[str, Any]:
    @schema
    class Mouse(dj.Manual):
        definition = """
        # a mouse
        mouse : int32
        ---
        name : varchar(20)    # what we call it
        """

    @schema
    class Visit(dj.Manual):
        definition = """
        -> Mouse
        visit : int16
        ---
        note = null : varchar(40)
        index(note)
        """

    @schema
    class Score(dj.Computed):
        definition = """
        -> Visit
        ---
        score : float64
        """

        class Detail(dj.Part):
            definition = """
            -> master
            k : int16
            """

        def make(self, key: dict[str, Any]) -> None:
            self.insert1(dict(key, score=1.0))

    return {"Mouse": Mouse, "Visit": Visit, "Score": Score}


def test_new_schema_declares_without_catalog_reads(
        make_schema: Callable[..., dj.Schema]) -> None:
    schema = make_schema()
    connection = schema.connection
    with _counting(connection) as seen:
        tables = _pipeline(schema)
    reads = [s for s in seen["statements"] if CATALOG.search(s)]
    assert reads == []
    # one transaction per class (a master with its parts together where DDL is
    # transactional), else one per table: 3 masters and a part
    expected = 3 if connection.backend_impl.transactional_ddl else 4
    assert len(seen["commits"]) == expected
    # the tables work, with their comments and lineage rows, as declared the slow way
    tables["Mouse"].insert1((1, "Ann"))
    tables["Visit"].insert1((1, 2, None))
    tables["Score"].populate()
    assert tables["Score"].fetch1("score") == 1.0
    assert tables["Mouse"].heading["name"].comment == "what we call it"
    target = lineage.lineage_table(connection.backend_impl, schema.database)
    with connection.session(write=False) as sa_conn:
        rows = set(sa_conn.execute(sa.select(target.c.table_name, target.c.attribute_name,
                                             target.c.lineage)).all())
    db = schema.database
    assert (("visit", "mouse", f"{db}.mouse.mouse") in rows
            and ("__score__detail", "visit", f"{db}.visit.visit") in rows
            and ("mouse", "mouse", f"{db}.mouse.mouse") in rows)


def test_a_table_created_meanwhile_is_bound(make_schema: Callable[..., dj.Schema]) -> None:
    """Another Schema object (another session) creates the table after this one created
    the schema: this one's CREATE fails, and it binds to the table instead."""
    first = make_schema()
    other = dj.Schema(first.database, connection=dj.Connection(first.connection.url))
    try:
        @other
        class Cage(dj.Manual):
            definition = """
            cage : int32
            ---
            label : varchar(10)
            """

        Cage.insert1((7, "left"))
        cage_class = type("Cage", (dj.Manual,), {"definition": Cage.definition,
                                                 "__module__": __name__})
        bound = first(cage_class)
        assert bound.fetch1("label") == "left"
        bound.insert1((8, "right"))
        assert len(Cage()) == 2
    finally:
        other.connection.close()


def test_a_declaration_failing_half_way_leaves_nothing_behind(
        make_schema: Callable[..., dj.Schema], monkeypatch: pytest.MonkeyPatch) -> None:
    """The table, its comments and its lineage rows are one transaction: a failure after
    the CREATE rolls the CREATE back (MySQL commits DDL at once: the table stays there)."""
    schema = make_schema()
    connection = schema.connection

    def failing(schema: str, table: str, heading: Any) -> list[dict[str, Any]]:
        # a lineage row the database refuses (its origin is NOT NULL), after the CREATE
        return [{"table_name": table, "attribute_name": "box", "lineage": None}]

    monkeypatch.setattr(lineage, "entries", failing)
    with pytest.raises(dj.DataJointError, match="Cannot create table"):
        @schema
        class Box(dj.Manual):
            definition = """
            box : int32
            """
    monkeypatch.undo()
    left = "box" in schema.list_tables()
    assert left is not connection.backend_impl.transactional_ddl
    if not left:  # declared again, it is created whole
        @schema
        class Box(dj.Manual):  # noqa: F811
            definition = """
            box : int32
            """

        Box.insert1((1,))
        assert len(Box()) == 1


def test_drop_is_one_transaction(make_schema: Callable[..., dj.Schema]) -> None:
    schema, other = make_schema(), make_schema()
    tables = _pipeline(schema)
    tables["Mouse"].insert([(i, f"m{i}") for i in range(20)])
    tables["Visit"].insert([(i, 1, "x") for i in range(20)])

    @other
    class Bystander(dj.Manual):
        definition = """
        b : int32
        """

    Bystander.insert1((1,))
    with _counting(schema.connection) as seen:
        schema.drop(force=True)
    assert len(seen["commits"]) == 1
    assert not schema.exists and tables["Mouse"]._sa_table is None
    assert schema.database not in dj.list_schemas(schema.connection)
    assert len(Bystander()) == 1 and other.list_tables() == ["bystander"]
    schema.drop(force=True)  # dropping a dropped schema does nothing


def test_a_dropped_schema_declares_again(make_schema: Callable[..., dj.Schema]) -> None:
    name = unique_name()
    schema = make_schema(name)
    _pipeline(schema)
    schema.drop(force=True)
    again = make_schema(name)
    tables = _pipeline(again)
    tables["Mouse"].insert1((1, "Bo"))
    assert len(tables["Mouse"]()) == 1
