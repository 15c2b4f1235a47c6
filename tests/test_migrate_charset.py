"""Converting a latin1 MySQL schema to utf8mb4 in place, as a migration operation, checked
first (values that would not survive, keys that would outgrow InnoDB's limit), and back on
the downgrade. SQLite and PostgreSQL store text in one encoding: the operation refuses."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import datajoint_sa as dj
from datajoint_sa.errors import DataJointError
from datajoint_sa.migrate import CharsetRefused, convert_charset

from .conftest import unique_name
from .test_migrate import Env, pending

SUBJECTS = [dict(subject_id=1, site="Köln", name="Zoë Ångström", note="café au lait, 5 €"),
            dict(subject_id=2, site="Köln", name="Straße", note=None),
            dict(subject_id=3, site="Paris", name="plain ascii", note="¿qué? «ok» ±1°")]


@pytest.fixture
def latin1(make_schema: Callable[..., dj.Schema], connection: dj.Connection, backend: str
           ) -> tuple[dj.Schema, str | None]:
    """A schema in a database created latin1 (as 0.14-era lab databases are); elsewhere a
    plain schema. make_schema drops either after the test."""
    if backend != "mysql":
        return make_schema(), None
    name = unique_name()
    with connection.session(write=True) as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET latin1 "
                             "COLLATE latin1_swedish_ci"))
    return make_schema(name), name


def charsets(connection: dj.Connection, name: str) -> set[str]:
    """The character sets of the database default, its tables and text columns."""
    with connection.session(write=False) as conn:
        found = {conn.execute(sa.text(
            "SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA "
            "WHERE SCHEMA_NAME = :s"), {"s": name}).scalar_one()}
        found |= {r[0] for r in conn.execute(sa.text(
            "SELECT k.CHARACTER_SET_NAME FROM information_schema.TABLES t JOIN "
            "information_schema.COLLATIONS k ON k.COLLATION_NAME = t.TABLE_COLLATION "
            "WHERE t.TABLE_SCHEMA = :s"), {"s": name})}
        found |= {r[0] for r in conn.execute(sa.text(
            "SELECT CHARACTER_SET_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = :s "
            "AND CHARACTER_SET_NAME IS NOT NULL"), {"s": name})}
    return found


def declare(schema: dj.Schema) -> dict[str, Any]:
    classes: dict[str, Any] = {}
    site = type("Site", (dj.Lookup,), {"definition": "site : varchar(32)\n",
                                       "contents": [("Köln",), ("Paris",)],
                                       "__module__": __name__})
    schema(site, context=classes)
    classes["Site"] = site
    subject = type("Subject", (dj.Manual,), {"definition": """
        subject_id : int32
        ---
        -> Site
        name : varchar(64)
        note = null : varchar(255)
        kind = "wild" : enum('wild', 'lab')
        data = null : blob
        unique index(name)
        """, "__module__": __name__})
    schema(subject, context=classes)
    classes["Subject"] = subject
    return classes


def test_charset_conversion_upgrade_downgrade(latin1: Any, connection: dj.Connection,
                                              backend: str, tmp_path: Path) -> None:
    schema, name = latin1
    if backend != "mysql":
        with pytest.raises(DataJointError, match="one encoding"):
            convert_charset(schema)
        return
    classes = declare(schema)
    Subject = classes["Subject"]
    Subject.insert([dict(row, data=[1, 2, 3]) for row in SUBJECTS])
    assert charsets(connection, name) == {"latin1"}
    before = Subject.fetch(as_dict=True, order_by="subject_id")

    env = Env(tmp_path / "migrations", connection)
    config = env.config(schema)
    from alembic import command

    script = command.revision(config, message="utf8mb4")
    assert script is not None and not isinstance(script, list)
    text = Path(script.path).read_text()
    text = text.replace("    pass", f"    op.dj_convert_charset({name!r}, 'utf8mb4', "
                                   "previous='latin1', previous_collation='latin1_swedish_ci')",
                        1)
    text = text.replace("    pass", "    op.dj_convert_charset("
                                   f"{name!r}, 'latin1', collation='latin1_swedish_ci', "
                                   "previous='utf8mb4')", 1)
    Path(script.path).write_text(text)

    env.upgrade(schema)
    assert charsets(connection, name) == {"utf8mb4"}
    assert Subject.fetch(as_dict=True, order_by="subject_id") == before
    assert pending(connection, schema) == []
    with pytest.raises(DataJointError):  # the foreign key to Site still holds
        Subject.insert1(dict(subject_id=9, site="Nowhere", name="x"))
    Subject.insert1(dict(subject_id=4, site="Paris", name="東京 🐭"))  # utf8mb4 holds it

    # the way back refuses a value latin1 cannot hold, naming where it is; nothing changes
    with pytest.raises(CharsetRefused, match=rf"{name}.subject.name.*subject_id=4"):
        env.downgrade(schema)
    assert charsets(connection, name) == {"utf8mb4"}
    (Subject & {"subject_id": 4}).delete_quick()
    env.downgrade(schema)
    assert charsets(connection, name) == {"latin1"}
    assert Subject.fetch(as_dict=True, order_by="subject_id") == before


def test_charset_conversion_refuses_keys_too_long(latin1: Any, connection: dj.Connection,
                                                  backend: str) -> None:
    schema, name = latin1
    if backend != "mysql":
        with pytest.raises(DataJointError, match="one encoding"):
            convert_charset(schema, "latin1")
        return
    wide = type("Wide", (dj.Manual,), {"definition": """
        a : varchar(255)
        b : varchar(255)
        c : varchar(255)
        d : varchar(255)
        """, "__module__": __name__})
    schema(wide)
    wide.insert1(dict(a="ä", b="b", c="c", d="d"))
    with pytest.raises(CharsetRefused, match=r"primary key of .*wide.*4080 bytes"):
        convert_charset(schema)
    assert charsets(connection, name) == {"latin1"}
    assert wide.fetch1("a") == "ä"
