"""A migration that fails part-way leaves the tables as they were, on every backend.

MySQL commits each schema change at once, so a failed step there undoes the applied ones;
PostgreSQL and SQLite roll the whole migration back. Type conversions are checked against
the stored values before the first change.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

import datajoint_sa as dj
from datajoint_sa.migrate import MigrationRefused
from datajoint_sa.migrate import plan as migrate_plan

BASE = """
id : int32
---
v : int32
label = "" : varchar(16)
"""


def _columns(table: Any) -> list[str]:
    connection = table.connection
    sa_table = table._sa_table
    with connection.session(write=False) as sa_conn:
        inspector = sa.inspect(sa_conn)
        names = [c["name"] for c in inspector.get_columns(sa_table.name, schema=sa_table.schema)]
        indexes = inspector.get_indexes(sa_table.name, schema=sa_table.schema)
    return names + [f"index:{','.join(str(c) for c in i['column_names'])}" for i in indexes]


def _declared(schema: dj.Schema) -> Any:
    @schema
    class Item(dj.Manual):
        definition = BASE

    Item.insert([{"id": 1, "v": 7, "label": "a "}, {"id": 2, "v": 7, "label": "b"}])
    return Item


def test_failure_at_a_middle_step_leaves_the_table_as_before(schema: dj.Schema,
                                                             backend: str) -> None:
    """Two columns are added, then a unique index meets duplicate values on the server."""
    Item = _declared(schema)
    before = _columns(Item)
    Item.definition = BASE + "a = null : int32\nb = null : int32\nunique index(v)\n"
    with pytest.raises(dj.DataJointError) as raised:
        Item.alter(prompt=False, force=True)  # force: skip the review that sees duplicates
    message = str(raised.value)
    if backend == "mysql":
        assert "failed at step 3 of 3" in message and "2 step(s) already applied were " \
            "undone" in message and "as before" in message
    else:
        assert "rolled back; nothing was changed" in message
    assert _columns(Item) == before
    assert sorted(Item.fetch("id")) == [1, 2]
    assert set(Item.heading.names) == {"id", "v", "label"}


def test_a_failing_step_is_undone_even_when_the_server_would_accept_it(
        schema: dj.Schema, backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure injected at step 2 of 3 (MySQL's step-by-step path; the others run the
    whole plan in one transaction and are covered by the test above)."""
    Item = _declared(schema)
    before = _columns(Item)
    calls: list[str] = []
    real = migrate_plan.run_step

    def failing(operations: Any, op: Any) -> None:
        calls.append(type(op).__name__)
        if len(calls) == 2:
            raise RuntimeError("injected failure")
        real(operations, op)

    monkeypatch.setattr(migrate_plan, "run_step", failing)
    monkeypatch.setattr(type(Item.connection.backend_impl), "transactional_ddl", False)
    Item.definition = BASE + "a = null : int32\nb = null : int32\nindex(v)\n"
    with pytest.raises(dj.DataJointError, match=r"step 2 of \d+ \(AddColumn .*item\.b\): "
                       "injected failure.*1 step.*undone"):
        Item.alter(prompt=False)
    assert calls[:3] == ["AddColumnOp", "AddColumnOp", "DropColumnOp"], calls
    assert _columns(Item) == before
    monkeypatch.undo()
    assert Item.alter(prompt=False)  # the same change applies once nothing fails
    assert {"a", "b"} <= set(_columns(Item))


def test_conversions_are_checked_against_the_stored_values(schema: dj.Schema) -> None:
    Item = _declared(schema)
    Item.definition = BASE.replace('label = "" : varchar(16)', 'label = "" : char(4)')
    with pytest.raises(MigrationRefused, match="trailing spaces.*1 value"):
        Item.alter(prompt=False)  # 'a ' would lose its space
    Item.definition = BASE.replace("v : int32", "v : int8")
    assert Item.alter(prompt=False)  # every value fits: no refusal
    (Item & {"id": 1}).delete_quick()
    Item.definition = BASE.replace('label = "" : varchar(16)', 'label = "" : char(4)')
    assert Item.alter(prompt=False)
    assert sorted(Item.fetch("label")) == ["b"]
