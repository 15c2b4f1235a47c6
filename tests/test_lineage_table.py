"""The `~lineage` table DataJoint 2.3 reads: written with each table we create, on every
backend, emptied of a table's rows when the table is dropped."""

from __future__ import annotations

import sqlalchemy as sa

import datajoint_sa as dj
from datajoint_sa.lineage import lineage_table


def rows(schema: dj.Schema) -> set[tuple[str, str, str]]:
    table = lineage_table(schema.connection.backend_impl, schema.database)
    return {tuple(r) for r in schema.connection.query(  # type: ignore[misc]
        sa.select(table.c.table_name, table.c.attribute_name, table.c.lineage))}


def test_lineage_rows_follow_declare_and_drop(schema: dj.Schema) -> None:
    @schema
    class Subject(dj.Manual):
        definition = """
        subject_id : int32
        ---
        name : varchar(20)
        """

    @schema
    class Session(dj.Manual):
        definition = """
        -> Subject
        session : int16
        ---
        note = "" : varchar(20)
        """

        class Trial(dj.Part):
            definition = """
            -> master
            trial : int16
            """

    @schema
    class Pairing(dj.Manual):
        definition = """
        pairing : int16
        ---
        -> Subject.proj(partner='subject_id')
        """

    db = schema.database
    assert rows(schema) == {
        ("subject", "subject_id", f"{db}.subject.subject_id"),
        ("session", "subject_id", f"{db}.subject.subject_id"),
        ("session", "session", f"{db}.session.session"),
        ("session__trial", "subject_id", f"{db}.subject.subject_id"),
        ("session__trial", "session", f"{db}.session.session"),
        ("session__trial", "trial", f"{db}.session__trial.trial"),
        ("pairing", "pairing", f"{db}.pairing.pairing"),
        ("pairing", "partner", f"{db}.subject.subject_id"),
    }  # native secondary attributes (name, note) have no lineage
    assert "~lineage" not in schema.list_tables()
    Pairing.drop(force=True)
    Session.drop(force=True)
    assert {r[0] for r in rows(schema)} == {"subject"}
