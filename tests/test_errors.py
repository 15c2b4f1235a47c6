"""Driver errors reach the user as DataJointError subclasses that say what to do, through one
funnel (`Connection.translating`), on every backend: missing tables, unknown functions and
collations, list values in dict restrictions, bad limits, dropped sessions (reconnected once
outside a transaction) and names over the backend's length limit."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa

import datajoint_sa as dj
from datajoint_sa.errors import (
    DataJointError,
    DuplicateError,
    LostConnectionError,
    MissingTableError,
    QueryError,
)

from .conftest import unique_name


@pytest.fixture
def thing(schema: dj.Schema) -> type[dj.Manual]:
    @schema
    class Thing(dj.Manual):
        definition = """
        thing_id : int32
        ---
        word = null : varchar(16)
        """

    Thing.insert([dict(thing_id=i, word=f"w{i}") for i in range(5)])
    return Thing


def _drop_behind_its_back(table: type[dj.Manual]) -> None:
    sa_table = table._sa_table
    assert sa_table is not None
    with table.connection.session(write=True) as sa_conn:
        sa_table.drop(sa_conn)


def test_missing_table(thing: type[dj.Manual], connection: dj.Connection) -> None:
    with pytest.raises(MissingTableError, match="declare it"):
        connection.query(sa.text(f"SELECT * FROM {unique_name('nothere')}"))
    _drop_behind_its_back(thing)
    with pytest.raises(MissingTableError):
        thing.fetch()
    with pytest.raises(MissingTableError, match="Thing"):
        thing.insert1(dict(thing_id=9))
    with pytest.raises(MissingTableError):
        len(thing())


def test_unknown_function_and_collation(thing: type[dj.Manual],
                                        connection: dj.Connection) -> None:
    with pytest.raises(QueryError, match="no such function|does not exist|function"):
        connection.query(sa.text("SELECT no_such_function_xyz(1)"))
    with pytest.raises(QueryError, match="collation"):
        connection.query(sa.text("SELECT 'a' < 'b' COLLATE no_such_collation_xyz"))
    with pytest.raises(QueryError):  # a fragment: refused before SQL or translated after
        (thing & "no_such_function_xyz(thing_id) > 1").fetch()


def test_dict_value_that_is_a_list(thing: type[dj.Manual]) -> None:
    for value in ([1, 2], (1, 2), {1}, {"a": 1}):
        with pytest.raises(QueryError, match="list of dicts"):
            len(thing & {"thing_id": value})
    assert len(thing & [{"thing_id": 1}, {"thing_id": 2}]) == 2


@pytest.mark.parametrize("kwargs", [dict(limit=-1), dict(limit="3"), dict(limit=2.5),
                                    dict(offset=-2), dict(offset="1"), dict(order_by=3),
                                    dict(order_by="thing_id sideways")])
def test_bad_limit_offset_order(thing: type[dj.Manual], kwargs: dict) -> None:
    with pytest.raises(QueryError):
        thing.fetch(**kwargs)


def test_duplicate_names_the_key(thing: type[dj.Manual]) -> None:
    with pytest.raises(DuplicateError, match="primary key: thing_id"):
        thing.insert1(dict(thing_id=1))


def _kill(connection: dj.Connection, backend: str, db_url: str) -> None:
    """End `connection`'s server session from a second connection (SQLite has no server:
    its file handle is closed under SQLAlchemy instead)."""
    if backend == "sqlite":
        connection.sa.connection.dbapi_connection.close()  # type: ignore[union-attr]
        return
    with connection.session(write=False) as sa_conn:
        session = connection.backend_impl.session_id(sa_conn)
    killer = dj.Connection(db_url)
    try:
        with killer.session(write=True) as sa_conn:
            if backend == "postgresql":
                sa_conn.exec_driver_sql(f"SELECT pg_terminate_backend({session})")
            else:
                sa_conn.exec_driver_sql(f"KILL {session}")
    finally:
        killer.close()


def test_lost_session_reconnects_outside_a_transaction(
        thing: type[dj.Manual], connection: dj.Connection, backend: str, db_url: str,
        caplog: pytest.LogCaptureFixture) -> None:
    for operation in (lambda: len(thing.fetch()), lambda: len(thing()),
                      lambda: thing.insert1(dict(thing_id=50)) or 5):
        _kill(connection, backend, db_url)
        with caplog.at_level(logging.WARNING, logger="datajoint_sa"):
            assert operation() == 5
        assert "reconnecting once" in caplog.text
        caplog.clear()
    assert 50 in thing.fetch("thing_id")


def test_lost_session_inside_a_transaction_is_reported(
        thing: type[dj.Manual], connection: dj.Connection, backend: str, db_url: str) -> None:
    with pytest.raises(LostConnectionError, match="repeat the transaction"):
        with connection.transaction:
            thing.insert1(dict(thing_id=60))
            _kill(connection, backend, db_url)
            thing.insert1(dict(thing_id=61))
    connection.close()  # the dead session is forgotten; the next use opens a new one
    assert not (thing & "thing_id >= 60")
    assert len(thing()) == 5


def test_names_over_the_length_limit(connection: dj.Connection, backend: str) -> None:
    limit = connection.backend_impl.max_identifier_length
    name = "s" + "x" * limit
    before = dj.list_schemas(connection)
    with pytest.raises(DataJointError, match=f"at most {limit}"):
        dj.Schema(name, connection=connection)
    assert name not in dj.list_schemas(connection) and len(dj.list_schemas(connection)) == \
        len(before) - 0


def test_table_and_attribute_names_over_the_length_limit(schema: dj.Schema) -> None:
    limit = schema.connection.backend_impl.max_identifier_length
    long_class = type("L" + "o" * limit, (dj.Manual,), {"definition": "id : int32\n"})
    with pytest.raises(DataJointError, match=f"at most {limit}"):
        schema(long_class)
    long_attribute = type("Short", (dj.Manual,), {
        "definition": f"id : int32\n---\n{'a' * (limit + 1)} : int32\n"})
    # the definition's own rule (64 characters) may refuse it first
    with pytest.raises(DataJointError, match=f"at most {limit}|invalid attribute name"):
        schema(long_attribute)
    assert schema.list_tables() == []
