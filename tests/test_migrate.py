"""Schema evolution with Alembic, on every backend.

For each kind of change: declare version 1 and fill it, declare version 2 (declare-only, as
the migration environment does), autogenerate a revision, upgrade, check shape and data,
downgrade, check again, and check that nothing is left to change at either end. Then the
programmatic path (`T.alter()`, `schema.migrate()`) with its refusals, the environment
template, and the Alembic command line run as a user runs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

import datajoint_sa as dj
from datajoint_sa.errors import DataJointError
from datajoint_sa.migrate import (
    TEMPLATE_DIR,
    MigrationRefused,
    Review,
    Scope,
    cli,
    init_environment,
    load_pipeline,
    produce,
    steps,
)
from datajoint_sa.schema import declare_only

from .conftest import unique_name

REPO = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------- helpers

def declare(schema: dj.Schema, definitions: dict[str, str]) -> dict[str, Any]:
    """Declare Manual classes from {name: definition}, in order, into `schema`."""
    classes: dict[str, Any] = {}
    for name, definition in definitions.items():
        cls = type(name, (dj.Manual,), {"definition": definition, "__module__": __name__})
        schema(cls, context=classes)
        classes[name] = cls
    return classes


def version(connection: dj.Connection, name: str, definitions: dict[str, str]
            ) -> tuple[dj.Schema, dict[str, Any]]:
    """A later version of schema `name`: declared, not created (as env.py declares it)."""
    with declare_only():
        schema = dj.Schema(name, connection=connection)
        return schema, declare(schema, definitions)


class Env:
    """An Alembic environment written from the package's template, driven in-process."""

    def __init__(self, directory: Path, connection: dj.Connection) -> None:
        self.ini = init_environment(directory)
        self.connection = connection

    def config(self, schema: dj.Schema) -> Config:
        config = Config(str(self.ini))
        config.attributes.update(connection=self.connection, schemas=[schema],
                                 configure_logger=False)
        return config

    def revision(self, schema: dj.Schema, message: str) -> str:
        script = command.revision(self.config(schema), message=message, autogenerate=True)
        assert script is not None and not isinstance(script, list)
        return Path(script.path).read_text()

    def upgrade(self, schema: dj.Schema, target: str = "head") -> None:
        command.upgrade(self.config(schema), target)

    def downgrade(self, schema: dj.Schema, target: str = "-1") -> None:
        command.downgrade(self.config(schema), target)


class Look:
    """What the database holds for one schema: columns, keys, indexes, comments, rows."""

    def __init__(self, connection: dj.Connection, schema: str) -> None:
        self.connection, self.schema = connection, schema
        self.backend = connection.backend_impl

    def ident(self, table: str) -> tuple[str | None, str]:
        return self.backend.table_identity(self.schema, table)

    def inspector(self, conn: Any) -> Any:
        return sa.inspect(conn)

    def tables(self) -> set[str]:
        with self.connection.session(write=False) as conn:
            return {t for t in self.backend.list_tables(conn, self.schema)
                    if not t.startswith("~")}

    def columns(self, table: str) -> dict[str, dict[str, Any]]:
        sa_schema, sa_name = self.ident(table)
        with self.connection.session(write=False) as conn:
            return {c["name"]: c for c in sa.inspect(conn).get_columns(sa_name, schema=sa_schema)}

    def primary_key(self, table: str) -> list[str]:
        sa_schema, sa_name = self.ident(table)
        with self.connection.session(write=False) as conn:
            return list(sa.inspect(conn).get_pk_constraint(sa_name, schema=sa_schema)
                        ["constrained_columns"])

    def foreign_keys(self, table: str) -> list[tuple[list[str], str, list[str]]]:
        sa_schema, sa_name = self.ident(table)
        with self.connection.session(write=False) as conn:
            found = sa.inspect(conn).get_foreign_keys(sa_name, schema=sa_schema)
        return sorted((fk["constrained_columns"],
                       self.backend.split_identity(fk.get("referred_schema") or sa_schema,
                                                   fk["referred_table"])[1],
                       fk["referred_columns"]) for fk in found)

    def indexes(self, table: str) -> set[tuple[tuple[str, ...], bool]]:
        sa_schema, sa_name = self.ident(table)
        with self.connection.session(write=False) as conn:
            found = sa.inspect(conn).get_indexes(sa_name, schema=sa_schema)
        fk_columns = {tuple(fk[0]) for fk in self.foreign_keys(table)}
        return {(tuple(i["column_names"]), bool(i["unique"])) for i in found
                if tuple(i["column_names"]) not in fk_columns}  # MySQL's FK indexes aside

    def comments(self, table: str) -> tuple[str, dict[str, str]]:
        scope = Scope(self.backend, [self.schema], [])
        sa_schema, sa_name = self.ident(table)
        with self.connection.session(write=False) as conn:
            scope.default_schema = conn.dialect.default_schema_name
            return scope.stored_comments(conn, sa_schema, sa_name)

    def insert(self, table: str, rows: list[dict[str, Any]]) -> None:
        sa_schema, sa_name = self.ident(table)
        with self.connection.session(write=True) as conn:
            reflected = sa.Table(sa_name, sa.MetaData(), schema=sa_schema, autoload_with=conn)
            conn.execute(reflected.insert(), rows)

    def rows(self, table: str) -> list[dict[str, Any]]:
        sa_schema, sa_name = self.ident(table)
        with self.connection.session(write=False) as conn:
            reflected = sa.Table(sa_name, sa.MetaData(), schema=sa_schema, autoload_with=conn)
            result = conn.execute(sa.select(reflected)).mappings().all()
        return sorted((dict(r) for r in result), key=lambda r: [str(v) for v in r.values()])


def pending(connection: dj.Connection, schema: dj.Schema) -> list[str]:
    """What still differs between the schema's declarations and the database, in words."""
    scope = Scope(connection.backend_impl, [schema.database], [schema.metadata])
    upgrade = produce(connection, scope)
    with connection.session(write=False) as conn:
        return Review(scope, conn).words(steps(upgrade))


# ---------------------------------------------------------------------------- the changes

SUBJECT = """
# subjects
subject_id : int32
---
name = "" : varchar(32)  # full name
weight = null : float32
"""
SUBJECT_ROWS = [dict(subject_id=1, name="Ada", weight=20.5),
                dict(subject_id=2, name="Bo", weight=None)]


def _rows(look: Look, table: str, *names: str) -> list[tuple[Any, ...]]:
    return sorted(tuple(r[n] for n in names) for r in look.rows(table))


@dataclass
class Change:
    v1: dict[str, str]
    v2: dict[str, str]
    rows: dict[str, list[dict[str, Any]]]
    expect: list[str]
    after_upgrade: Callable[[Look, dict[str, Any]], None]
    after_downgrade: Callable[[Look], None]
    absent: list[str] = field(default_factory=list)


def _add_table_up(look: Look, v2: dict[str, Any]) -> None:
    assert "session" in look.tables()
    v2["Session"].insert1(dict(subject_id=1, session=1))
    assert _rows(look, "subject", "subject_id", "name") == [(1, "Ada"), (2, "Bo")]
    v2["Session"].delete_quick()


def _drop_table_down(look: Look) -> None:
    assert "note" in look.tables() and look.rows("note") == []


def _add_attribute_up(look: Look, v2: dict[str, Any]) -> None:
    assert _rows(look, "subject", "subject_id", "mood", "age") == [(1, "calm", None),
                                                                   (2, "calm", None)]


def _drop_attribute_up(look: Look, v2: dict[str, Any]) -> None:
    assert "weight" not in look.columns("subject")
    assert _rows(look, "subject", "subject_id", "name") == [(1, "Ada"), (2, "Bo")]


def _drop_attribute_down(look: Look) -> None:
    assert "weight" in look.columns("subject")
    assert _rows(look, "subject", "subject_id", "name") == [(1, "Ada"), (2, "Bo")]


def _rename_up(look: Look, v2: dict[str, Any]) -> None:
    assert "name" not in look.columns("subject")
    assert _rows(look, "subject", "subject_id", "full_name") == [(1, "Ada"), (2, "Bo")]
    assert "renamed from name" in look.comments("subject")[1]["full_name"]


def _subject_back(look: Look) -> None:
    assert _rows(look, "subject", "subject_id", "name", "weight") == [(1, "Ada", 20.5),
                                                                     (2, "Bo", None)]


def _types_up(look: Look, v2: dict[str, Any]) -> None:
    v2["Sample"].insert1(dict(sample=9, count=100_000, label="x" * 60, kind="c"))
    assert look.comments("sample")[1]["count"].startswith(":int32:")
    assert _rows(look, "sample", "sample", "count") == [(1, 7), (9, 100_000)]
    (v2["Sample"] & "sample = 9").delete_quick()


def _types_down(look: Look) -> None:
    assert look.comments("sample")[1]["count"].startswith(":int16:")
    assert _rows(look, "sample", "sample", "count", "label", "kind") == [(1, 7, "short", "b")]


def _nullability_up(look: Look, v2: dict[str, Any]) -> None:
    columns = look.columns("sample")
    assert columns["count"]["nullable"] is False and columns["label"]["nullable"] is True
    v2["Sample"].insert1(dict(sample=9, count=1, label=None))
    (v2["Sample"] & "sample = 9").delete_quick()


def _nullability_down(look: Look) -> None:
    columns = look.columns("sample")
    assert columns["count"]["nullable"] is True and columns["label"]["nullable"] is False


def _default_up(look: Look, v2: dict[str, Any]) -> None:
    v2["Sample"].insert1(dict(sample=9))
    assert _rows(look, "sample", "sample", "label") == [(1, "short"), (9, "changed")]
    (v2["Sample"] & "sample = 9").delete_quick()


def _indexes_up(look: Look, v2: dict[str, Any]) -> None:
    assert look.indexes("subject") == {(("weight",), False), (("name",), True)}


def _indexes_down(look: Look) -> None:
    assert look.indexes("subject") == {(("name",), False)}


def _fk_added(look: Look, v2: dict[str, Any]) -> None:
    assert look.foreign_keys("subject") == [(["rig"], "rig", ["rig"])]
    with pytest.raises(DataJointError):
        v2["Subject"].insert1(dict(subject_id=3, rig="nowhere"))
    assert _rows(look, "subject", "subject_id", "rig") == [(1, "r1"), (2, None)]


def _fk_absent(look: Look) -> None:
    assert look.foreign_keys("subject") == []
    assert _rows(look, "subject", "subject_id", "rig") == [(1, "r1"), (2, None)]


def _fk_removed(look: Look, v2: dict[str, Any]) -> None:
    _fk_absent(look)


def _fk_present(look: Look) -> None:
    assert look.foreign_keys("subject") == [(["rig"], "rig", ["rig"])]


def _comments_up(look: Look, v2: dict[str, Any]) -> None:
    table, columns = look.comments("subject")
    assert table == "all subjects" and columns["name"] == ":varchar(32):given and family name"


def _comments_down(look: Look) -> None:
    table, columns = look.comments("subject")
    assert table == "subjects" and columns["name"] == ":varchar(32):full name"


def _key_up(look: Look, v2: dict[str, Any]) -> None:
    assert look.primary_key("subject") == ["subject_id", "name"]
    v2["Subject"].insert1(dict(subject_id=1, name="Ada II"))  # the same id, another name
    (v2["Subject"] & {"name": "Ada II"}).delete_quick()


def _key_down(look: Look) -> None:
    assert look.primary_key("subject") == ["subject_id"]


def _key_dependents_up(look: Look, v2: dict[str, Any]) -> None:
    assert look.primary_key("subject") == ["subject_id", "lab"]
    assert look.primary_key("session") == ["subject_id", "lab", "session"]
    assert look.foreign_keys("session") == [(["subject_id", "lab"], "subject",
                                             ["subject_id", "lab"])]
    assert _rows(look, "session", "subject_id", "lab", "session") == [
        (1, "north", 1), (1, "north", 2), (2, "south", 1)]
    with pytest.raises(DataJointError):
        v2["Session"].insert1(dict(subject_id=1, lab="south", session=3))


def _key_dependents_down(look: Look) -> None:
    assert look.primary_key("session") == ["subject_id", "session"]
    assert look.foreign_keys("session") == [(["subject_id"], "subject", ["subject_id"])]
    assert _rows(look, "session", "subject_id", "session") == [(1, 1), (1, 2), (2, 1)]


def _fk_changed_up(look: Look, v2: dict[str, Any]) -> None:
    assert look.foreign_keys("session") == [(["rig"], "room", ["room"])]
    assert _rows(look, "session", "session", "rig") == [(1, "r1")]


def _fk_changed_down(look: Look) -> None:
    assert look.foreign_keys("session") == [(["rig"], "rig", ["rig"])]


SAMPLE = """
sample : int16
---
count = 0 : int16
label = "short" : varchar(8)
kind = "a" : enum('a', 'b')
"""
RIG = "rig : varchar(16)\n"

CHANGES: dict[str, Change] = {
    "add_table": Change(
        {"Subject": SUBJECT},
        {"Subject": SUBJECT, "Session": "-> Subject\nsession : int16\n"},
        {"Subject": SUBJECT_ROWS}, ["create_table("], _add_table_up,
        lambda look: (look.tables() == {"subject"}) or pytest.fail(str(look.tables()))),
    "drop_table": Change(
        {"Subject": SUBJECT, "Note": "-> Subject\nnote : int16\n---\ntext : varchar(64)\n"},
        {"Subject": SUBJECT},
        {"Subject": SUBJECT_ROWS, "Note": [dict(subject_id=1, note=1, text="hi")]},
        ["drop_table("], lambda look, v2: None if "note" not in look.tables()
        else pytest.fail("note kept"), _drop_table_down),
    "add_attribute": Change(
        {"Subject": SUBJECT},
        {"Subject": SUBJECT + 'mood = "calm" : varchar(16)\nage = null : int16\n'},
        {"Subject": SUBJECT_ROWS}, ["add_column("], _add_attribute_up, _subject_back),
    "drop_attribute": Change(
        {"Subject": SUBJECT}, {"Subject": SUBJECT.replace("weight = null : float32\n", "")},
        {"Subject": SUBJECT_ROWS}, ["drop_column("], _drop_attribute_up, _drop_attribute_down),
    "rename_attribute": Change(
        {"Subject": SUBJECT},
        {"Subject": SUBJECT.replace('name = "" : varchar(32)  # full name',
                                    'full_name = "" : varchar(32)  # renamed from name')},
        {"Subject": SUBJECT_ROWS}, ["new_column_name='full_name'"], _rename_up, _subject_back,
        absent=["drop_column(", "add_column("]),
    "type_change": Change(
        {"Sample": SAMPLE},
        {"Sample": SAMPLE.replace(": int16\nlabel", ": int32\nlabel")
         .replace("varchar(8)", "varchar(64)").replace("'a', 'b')", "'a', 'b', 'c')")},
        {"Sample": [dict(sample=1, count=7, label="short", kind="b")]}, ["type_="],
        _types_up, _types_down),
    "nullability": Change(
        {"Sample": 'sample : int16\n---\ncount = null : int16\nlabel : varchar(8)\n'},
        {"Sample": 'sample : int16\n---\ncount : int16\nlabel = null : varchar(8)\n'},
        {"Sample": [dict(sample=1, count=7, label="x")]}, ["nullable="],
        _nullability_up, _nullability_down),
    "default": Change(
        {"Sample": 'sample : int16\n---\nlabel = "short" : varchar(8)\n'},
        {"Sample": 'sample : int16\n---\nlabel = "changed" : varchar(8)\n'},
        {"Sample": [dict(sample=1)]}, ["server_default="], _default_up,
        lambda look: None),
    "indexes": Change(
        {"Subject": SUBJECT + "index(name)\n"},
        {"Subject": SUBJECT + "index(weight)\nunique index(name)\n"},
        {"Subject": SUBJECT_ROWS}, ["create_index(", "drop_index("], _indexes_up, _indexes_down),
    "add_foreign_key": Change(
        {"Rig": RIG, "Subject": "subject_id : int32\n---\nrig = null : varchar(16)\n"},
        {"Rig": RIG, "Subject": "subject_id : int32\n---\n-> [nullable] Rig\n"},
        {"Rig": [dict(rig="r1")], "Subject": [dict(subject_id=1, rig="r1"),
                                              dict(subject_id=2, rig=None)]},
        ["create_foreign_key("], _fk_added, _fk_absent),
    "remove_foreign_key": Change(
        {"Rig": RIG, "Subject": "subject_id : int32\n---\n-> [nullable] Rig\n"},
        {"Rig": RIG, "Subject": "subject_id : int32\n---\nrig = null : varchar(16)\n"},
        {"Rig": [dict(rig="r1")], "Subject": [dict(subject_id=1, rig="r1"),
                                              dict(subject_id=2, rig=None)]},
        ["drop_constraint("], _fk_removed, _fk_present),
    "comments": Change(
        {"Subject": SUBJECT},
        {"Subject": SUBJECT.replace("# subjects", "# all subjects")
         .replace("# full name", "# given and family name")},
        {"Subject": SUBJECT_ROWS}, ["given and family name"], _comments_up, _comments_down),
    "primary_key": Change(
        {"Subject": "subject_id : int32\n---\nname : varchar(32)\n"},
        {"Subject": "subject_id : int32\nname : varchar(32)\n---\n"},
        {"Subject": [dict(subject_id=1, name="Ada"), dict(subject_id=2, name="Bo")]},
        ["create_primary_key("], _key_up, _key_down),
    "primary_key_with_dependents": Change(
        {"Subject": "subject_id : int32\n---\nlab : varchar(8)\n",
         "Session": "-> Subject\nsession : int16\n"},
        {"Subject": "subject_id : int32\nlab : varchar(8)\n---\n",
         "Session": "-> Subject\nsession : int16\n"},
        {"Subject": [dict(subject_id=1, lab="north"), dict(subject_id=2, lab="south")],
         "Session": [dict(subject_id=1, session=1), dict(subject_id=1, session=2),
                     dict(subject_id=2, session=1)]},
        ["dj_fill_from_parent("], _key_dependents_up, _key_dependents_down),
    "change_foreign_key": Change(
        {"Rig": RIG, "Room": "room : varchar(16)\n",
         "Session": "session : int16\n---\n-> Rig\n"},
        {"Rig": RIG, "Room": "room : varchar(16)\n",
         "Session": "session : int16\n---\n-> Room.proj(rig='room')\n"},
        {"Rig": [dict(rig="r1")], "Room": [dict(room="r1")],
         "Session": [dict(session=1, rig="r1")]},
        ["create_foreign_key("], _fk_changed_up, _fk_changed_down),
}


@pytest.mark.parametrize("kind", list(CHANGES))
def test_autogenerate_upgrade_downgrade(kind: str, connection: dj.Connection,
                                        schema: dj.Schema, tmp_path: Path) -> None:
    change = CHANGES[kind]
    v1 = declare(schema, change.v1)
    for name, rows in change.rows.items():
        v1[name].insert(rows)
    env = Env(tmp_path / "migrations", connection)
    assert pending(connection, schema) == []  # version 1 is what the database has

    schema2, v2 = version(connection, schema.database, change.v2)
    script = env.revision(schema2, kind)
    upgrade_text = script.split("def upgrade")[1].split("def downgrade")[0]
    for expected in change.expect:
        assert expected in upgrade_text, upgrade_text
    for unexpected in change.absent:
        assert unexpected not in upgrade_text, upgrade_text

    look = Look(connection, schema.database)
    env.upgrade(schema2)
    change.after_upgrade(look, v2)
    assert pending(connection, schema2) == []

    env.downgrade(schema2)
    change.after_downgrade(look)
    assert pending(connection, schema) == []


# ---------------------------------------------------------------------------- alter / migrate

@pytest.fixture
def lab(schema: dj.Schema) -> dict[str, Any]:
    classes = declare(schema, {
        "Subject": SUBJECT,
        "Session": "-> Subject\nsession : int16\n---\nnote = null : varchar(64)\n",
    })
    classes["Subject"].insert(SUBJECT_ROWS)
    classes["Session"].insert([dict(subject_id=1, session=1, note="first"),
                               dict(subject_id=2, session=1)])
    return classes


def test_alter_applies_and_keeps_data(lab: dict[str, Any], connection: dj.Connection,
                                      schema: dj.Schema, capsys: pytest.CaptureFixture[str]
                                      ) -> None:
    Subject = lab["Subject"]
    Subject.definition = SUBJECT.replace(
        'name = "" : varchar(32)  # full name',
        'full_name = "" : varchar(64)  # renamed from name') + "sex = 'U' : enum('F','M','U')\n"
    done = Subject.alter(prompt=False)
    shown = capsys.readouterr().out
    for text in ("rename attribute", "full_name", "varchar(32) to varchar(64)",
                 "add attribute", "sex"):
        assert text in shown and any(text in d for d in done), (text, shown)
    assert Subject.heading.names == ["subject_id", "full_name", "weight", "sex"]
    assert sorted(Subject.fetch("full_name", "sex", as_dict=True),
                  key=lambda r: r["full_name"]) == [
        {"full_name": "Ada", "sex": "U"}, {"full_name": "Bo", "sex": "U"}]
    assert pending(connection, schema) == []
    assert Subject.alter(prompt=False) == []  # nothing left to change


def test_alter_refuses_dropping_values(lab: dict[str, Any], connection: dj.Connection,
                                       schema: dj.Schema) -> None:
    Subject = lab["Subject"]
    before = Subject.heading.names
    Subject.definition = SUBJECT.replace("weight = null : float32\n", "")
    with pytest.raises(MigrationRefused, match=r"weight.*1 value"):
        Subject.alter(prompt=False)
    assert Subject.heading.names == before and "weight" in Look(
        connection, schema.database).columns("subject")
    Subject.alter(prompt=False, force=True)
    assert "weight" not in Subject.heading.names
    assert "weight" not in Look(connection, schema.database).columns("subject")


def test_alter_refuses_narrowing_and_null_violations(lab: dict[str, Any],
                                                     connection: dj.Connection) -> None:
    Subject = lab["Subject"]
    Subject.insert1(dict(subject_id=300, name="Constantine the Long"))  # fits neither
    Subject.definition = SUBJECT.replace("varchar(32)", "varchar(8)")
    with pytest.raises(MigrationRefused, match="shortens the text; 1 value"):
        Subject.alter(prompt=False)
    Subject.definition = SUBJECT.replace("int32", "int8")
    with pytest.raises(MigrationRefused, match="narrows the range"):
        Subject.alter(prompt=False)
    Subject.definition = SUBJECT.replace("weight = null : float32", "weight : float32")
    with pytest.raises(MigrationRefused, match="NULL"):
        Subject.alter(prompt=False)
    Subject.definition = SUBJECT + "birth : date\n"  # no value for the existing rows
    with pytest.raises(MigrationRefused, match="no default"):
        Subject.alter(prompt=False)
    Subject.definition = SUBJECT
    assert Subject.alter(prompt=False) == []


def test_alter_primary_key_with_dependents(lab: dict[str, Any], connection: dj.Connection,
                                           schema: dj.Schema) -> None:
    Subject, Session = lab["Subject"], lab["Session"]
    Subject.definition = "subject_id : int32\nname : varchar(32)\n---\nweight = null : float32\n"
    with pytest.raises(MigrationRefused, match="dependents"):
        Subject.alter(prompt=False)
    Subject.alter(prompt=False, force=True)  # the dependents follow the new key
    assert Session.primary_key == ["subject_id", "name", "session"]
    assert sorted(Session.fetch("subject_id", "name", "session", as_dict=True),
                  key=lambda r: r["subject_id"]) == [
        {"subject_id": 1, "name": "Ada", "session": 1},
        {"subject_id": 2, "name": "Bo", "session": 1}]
    assert pending(connection, schema) == []


def test_alter_refuses_duplicates_under_a_new_key(schema: dj.Schema) -> None:
    classes = declare(schema, {"Trial": "trial : int16\n---\nblock : int16\n"})
    Trial = classes["Trial"]
    Trial.insert([dict(trial=1, block=1), dict(trial=2, block=1)])
    Trial.definition = "block : int16\n---\ntrial : int16\n"
    with pytest.raises(MigrationRefused, match="not unique"):
        Trial.alter(prompt=False)
    assert Trial.primary_key == ["trial"]


def test_alter_asks_first(lab: dict[str, Any], connection: dj.Connection, schema: dj.Schema,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    Subject = lab["Subject"]
    Subject.definition = SUBJECT + "mood = null : varchar(16)\n"
    monkeypatch.setattr("builtins.input", lambda prompt="": "no")
    assert Subject.alter() == []
    assert "mood" not in Subject.heading.names
    assert "mood" not in Look(connection, schema.database).columns("subject")
    monkeypatch.setattr("builtins.input", lambda prompt="": "yes")
    done = Subject.alter()
    assert done[0] == f"add attribute {schema.database}.subject.mood : varchar(16) (nullable)"
    assert "mood" in Subject.heading.names


def test_schema_migrate(lab: dict[str, Any], connection: dj.Connection,
                        schema: dj.Schema) -> None:
    Subject, Session = lab["Subject"], lab["Session"]
    Subject.definition = SUBJECT + "index(weight)\n"
    Session.definition = "-> Subject\nsession : int16\n---\nnote = null : varchar(255)\n"
    done = schema.migrate(prompt=False)
    assert any("add index (weight)" in d for d in done)
    assert any("varchar(64) to varchar(255)" in d for d in done)
    assert pending(connection, schema) == []
    assert Session.fetch("note", order_by="subject_id").tolist() == ["first", None]
    assert schema.migrate(prompt=False) == []


def test_foreign_keys_stay_enforced_after_alter(lab: dict[str, Any],
                                                connection: dj.Connection,
                                                backend: str) -> None:
    """On SQLite a change copies the parent table (batch mode) with foreign keys switched off
    meanwhile; the dependents' foreign keys must be enforced again afterwards. The other
    backends alter in place, and the same checks hold."""
    Subject, Session = lab["Subject"], lab["Session"]
    Subject.definition = SUBJECT.replace("float32", "float64")
    Subject.alter(prompt=False)
    with pytest.raises(DataJointError):
        Session.insert1(dict(subject_id=99, session=1))
    with pytest.raises(DataJointError):
        (Subject & {"subject_id": 1}).delete_quick()
    if backend == "sqlite":
        with connection.session(write=False) as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


# ---------------------------------------------------------------------------- the environment

def test_migrations_directory_is_built_from_the_template(tmp_path: Path) -> None:
    ini = init_environment(tmp_path / "env", "examples.university.activated")
    for name in ("env.py", "script.py.mako", "README"):
        assert (REPO / "migrations" / name).read_text() == (TEMPLATE_DIR / name).read_text()
        assert (ini.parent / name).read_text() == (TEMPLATE_DIR / name).read_text()
    assert (REPO / "migrations" / "alembic.ini").read_text() == ini.read_text()
    assert "script_location = %(here)s" in ini.read_text()
    assert (REPO / "migrations" / "versions").is_dir()


def test_cli_init_and_template(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["--help"]) == 0 and "revision" in capsys.readouterr().out
    assert cli(["upgrade", "--no-such-option"]) == 2
    assert cli(["template"]) == 0
    assert capsys.readouterr().out.strip() == str(TEMPLATE_DIR)
    assert cli(["init", str(tmp_path / "m"), "--pipeline", "mylab.pipeline"]) == 0
    assert "pipeline = mylab.pipeline" in (tmp_path / "m" / "alembic.ini").read_text()
    capsys.readouterr()
    assert cli(["init", str(tmp_path / "m")]) == 1  # not empty: says what to do instead
    error = capsys.readouterr().err
    assert "already holds an Alembic environment" in error
    assert "migrate revision -m" in error and "migrate init m_new" in error
    assert cli(["upgrade", "-c", str(tmp_path / "missing.ini")]) == 1
    assert "datajoint-sa migrate: error" in capsys.readouterr().err


PIPELINE_V1 = '''
import datajoint_sa as dj

schema = dj.Schema("{name}")


@schema
class Species(dj.Lookup):
    definition = """
    species : varchar(32)
    """
    contents = [("mouse",), ("rat",)]


@schema
class Subject(dj.Manual):
    definition = """
    # animals
    subject_id : int32
    ---
    -> Species
    name = "" : varchar(32)
    """

    class Weighing(dj.Part):
        definition = """
        -> master
        weighed : date
        ---
        grams : float32
        """
'''


def _write_pipeline(directory: Path, module: str, text: str) -> None:
    (directory / f"{module}.py").write_text(textwrap.dedent(text))
    for cached in directory.glob(f"__pycache__/{module}.*"):
        cached.unlink()


def test_load_pipeline_declares_without_writing(db_url: str, tmp_path: Path,
                                                make_schema: Callable[..., dj.Schema],
                                                connection: dj.Connection,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    name = unique_name("djmig")
    module = f"pipeline_{name}"
    _write_pipeline(tmp_path, module, PIPELINE_V1.format(name=name))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        schemas = load_pipeline(module, db_url)
        tables = {t.name for t in schemas[0].metadata.sorted_tables}
        expected = {"#species", "subject", "subject__weighing"}
        assert {connection.backend_impl.split_identity(None, t)[1] if "." in t else t
                for t in tables} == expected
        with connection.session(write=False) as conn:
            assert name not in connection.backend_impl.list_schemas(conn)
    finally:
        sys.modules.pop(module, None)


def _alembic(ini: Path, cwd: Path, url: str, *args: str) -> str:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(cwd), str(REPO)]))
    env.pop("DJ_DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(ini), "-x", f"url={url}", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


def _body(script: str) -> str:
    return script.split("def upgrade() -> None:")[1]


def test_alembic_command_line_on_the_example_sqlite(tmp_path: Path) -> None:
    """The user's path, as shell commands: upgrade, autogenerate, upgrade, downgrade.

    It runs the example (examples/migration) on SQLite only: shell commands cost a Python
    start each, the environment is the same on every backend (the in-process tests above run
    it on all three), and the example's scripts were generated on SQLite (a script is
    written for the backend it was generated against). Regenerating the example's second
    migration from `lab.py` must give the shipped script."""
    example = REPO / "examples" / "migration" / "migrations"
    shutil.copytree(example, tmp_path / "migrations", ignore=shutil.ignore_patterns(
        "__pycache__", "0002_*"))
    ini = tmp_path / "migrations" / "alembic.ini"
    url = f"sqlite:///{tmp_path / 'lab.db'}"
    _alembic(ini, tmp_path, url, "upgrade", "head")  # 0001: the tables before the change
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql('INSERT INTO "migration_lab.subject" VALUES (1, \'Ada\', \'F\')')
        conn.exec_driver_sql(
            'INSERT INTO "migration_lab.session" VALUES (1, 1, \'2024-05-01\')')

    _alembic(ini, tmp_path, url, "revision", "--autogenerate", "--rev-id", "0002", "-m",
             "subject details and rigs")
    [written] = (tmp_path / "migrations" / "versions").glob("0002_*.py")
    [shipped] = (example / "versions").glob("0002_*.py")
    assert _body(written.read_text()) == _body(shipped.read_text())

    _alembic(ini, tmp_path, url, "upgrade", "head")
    with engine.begin() as conn:
        assert conn.exec_driver_sql(
            'SELECT subject_id, full_name, sex, weight FROM "migration_lab.subject"'
        ).all() == [(1, "Ada", "F", None)]
        assert conn.exec_driver_sql('SELECT rig FROM "migration_lab.session"').all() == [
            (None,)]
        assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
    _alembic(ini, tmp_path, url, "downgrade", "-1")
    with engine.begin() as conn:
        assert conn.exec_driver_sql(
            'SELECT subject_id, name, sex FROM "migration_lab.subject"').all() == [
            (1, "Ada", "F")]
        names = {r[0] for r in conn.exec_driver_sql("SELECT name FROM sqlite_master")}
    engine.dispose()
    assert "migration_lab.rig" not in names
