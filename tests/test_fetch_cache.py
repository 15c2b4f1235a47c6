"""Cached statements (statements.py): the same results as a query built and compiled afresh,
for every kind of value, on every backend; compiled once per shape; never stale after a table
changes; and values always bound, never written into the SQL."""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

import datajoint_sa as dj
from datajoint_sa import statements

NASTY = ["O'Brien", "'; DROP TABLE thing; --", 'say "hi"', "back\\slash", "50% off %s %(x)s",
         ":name ?", "multi\nline", "ünïcødé ✓"]
UIDS = [uuid.UUID(int=i * 7919) for i in range(len(NASTY))]


@pytest.fixture
def t(schema: dj.Schema) -> SimpleNamespace:
    @schema
    class Thing(dj.Manual):
        definition = """
        name : varchar(64)
        seen : datetime(6)
        ---
        amount = null : decimal(10,3)
        uid = null : uuid
        born = null : date
        n = null : int32
        flag = null : bool
        data = null : <blob>
        meta = null : json
        """

    @schema
    class Event(dj.Manual):
        definition = """
        -> Thing
        event : int16
        ---
        score : float64
        """

    start = datetime.datetime(2024, 5, 1, 12, 30, 0, 123456)
    rows = []
    for i, name in enumerate(NASTY):
        rows.append(dict(name=name, seen=start + datetime.timedelta(days=i, microseconds=i),
                         amount=None if i % 3 == 0 else decimal.Decimal(f"{i}.125"),
                         uid=UIDS[i], born=None if i % 2 else datetime.date(2020, 1, 1 + i),
                         n=None if i == 1 else i, flag=None if i == 2 else bool(i % 2),
                         data=None if i == 3 else np.arange(i + 1.0),
                         meta=None if i == 4 else {"k": i, "s": f"v{i % 2}"}))
    Thing.insert(rows)
    Event.insert([dict(name=r["name"], seen=r["seen"], event=e, score=i * 10.0 + e)
                  for i, r in enumerate(rows) for e in range(3)])
    return SimpleNamespace(Thing=Thing, Event=Event, rows=rows)


@contextmanager
def uncached(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Queries built and compiled afresh, as before statements were cached."""
    with monkeypatch.context() as patch:
        patch.setattr(statements, "lookup", lambda *args, **kwargs: None)
        yield


@contextmanager
def compiles(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """The statements compiled inside the block."""
    made: list[Any] = []
    original = statements.compile_statement

    def counting(*args: Any, **kwargs: Any) -> Any:
        made.append(args[0])
        return original(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(statements, "compile_statement", counting)
        yield made


@contextmanager
def sent(connection: dj.Connection) -> Iterator[list[tuple[str, Any]]]:
    """(SQL text, parameters) of every statement sent inside the block."""
    log: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *rest: Any) -> None:
        log.append((statement, parameters))

    sa.event.listen(connection.engine, "before_cursor_execute", record)
    try:
        yield log
    finally:
        sa.event.remove(connection.engine, "before_cursor_execute", record)


def same(a: Any, b: Any) -> bool:
    """Equal values of equal types, arrays compared element by element."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and a.shape == b.shape and (a == b).all() if a.dtype != object else
                isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
                and same(a.tolist(), b.tolist()))
    return type(a) is type(b) and (a == b or (a != a and b != b))


def queries(t: SimpleNamespace, row: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    """Every common shape, restricted by the values of one row."""
    key = {"name": row["name"], "seen": row["seen"]}
    Thing, Event = t.Thing, t.Event
    return {
        "fetch1 row": lambda: (Thing & key).fetch1(),
        "fetch1 attrs": lambda: (Thing & key).fetch1("amount", "uid", "born", "data", "meta"),
        "fetch1 KEY": lambda: (Thing & key).fetch1("KEY"),
        "fetch attr": lambda: (Thing & key).fetch("n"),
        "to_dicts": lambda: (Event & key).to_dicts(order_by="event"),
        "fetch KEY": lambda: (Event & key).fetch("KEY"),
        "by uid": lambda: (Thing & {"uid": row["uid"]}).fetch1("name"),
        "by decimal": lambda: (Thing & {"amount": row["amount"]}).fetch("name", order_by="KEY"),
        "by date": lambda: (Thing & {"born": row["born"]}).fetch("name", order_by="KEY"),
        "by int as text": lambda: (Thing & {"n": None if row["n"] is None else str(row["n"])}
                                   ).fetch("name", order_by="KEY"),
        "by bool": lambda: (Thing & {"flag": row["flag"]}).fetch("name", order_by="KEY"),
        "json path": lambda: (Thing & {"meta.k": None if row["meta"] is None
                                       else row["meta"]["k"]}).fetch("name", order_by="KEY"),
        "key list": lambda: (Thing & [key, {"name": NASTY[0], "seen": t.rows[0]["seen"]}]
                             ).fetch("n", order_by="KEY"),
        "join restrict proj": lambda: ((Thing & key) * Event & "score >= 10").proj(
            "amount", "score").to_dicts(order_by="KEY"),
        "semijoin": lambda: (Thing & (Event & key & {"event": 2})).fetch("KEY"),
        "antijoin": lambda: (Thing - (Event & key)).fetch("name", order_by="KEY"),
        "top": lambda: (Event & key & dj.Top(2, "score desc")).fetch("score"),
        "aggr": lambda: (Thing & key).aggr(Event, total="sum(score)").fetch1("total"),
        "union": lambda: ((Thing & key).proj("n") + (Thing & {"n": 5}).proj("n")).fetch(
            "n", order_by="KEY"),
        "union of extended": lambda: ((Thing & key).proj("n", "flag") + (
            Thing & [key, {"n": 6}]).proj("n", "born")).to_dicts(order_by="KEY"),
        "dj.U": lambda: (dj.U("event") & (Event & key)).fetch("event"),
        "dj.U aggr": lambda: dj.U("event").aggr(Event & key & {"event": 1},
                                                n="count(*)").to_dicts(),
        "order limit": lambda: (Event & key).fetch("score", order_by="score desc", limit=2),
        "len": lambda: len(Event & key & "score > 10"),
        "len of join": lambda: len((Thing & key) * Event),
        "bool": lambda: bool(Thing & key & {"n": 3}),
        "in": lambda: key in Thing,
        "in a projection": lambda: {"name": row["name"]} in Thing.proj(),
    }


def test_cached_results_equal_uncached_for_every_value(t: SimpleNamespace,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    statements.clear()
    for row in t.rows:
        for name, query in queries(t, row).items():
            with uncached(monkeypatch):
                expected = query()
            got = query()
            assert same(got, expected), (name, row["name"], got, expected)
    # each value was found where it was stored
    for row in t.rows:
        found = (t.Thing & {"name": row["name"], "seen": row["seen"]}).fetch1()
        assert found["uid"] == row["uid"] and found["amount"] == row["amount"]
        assert (found["data"] is None) == (row["data"] is None)


def test_a_shape_compiles_once(t: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    statements.clear()
    with compiles(monkeypatch) as made:
        names = [(t.Thing & {"name": r["name"], "seen": r["seen"]}).fetch1("name")
                 for r in t.rows]
        assert names == NASTY
        assert len(made) == 1
        # a NULL is another shape (IS NULL), and so is another set of attributes
        assert len((t.Thing & {"n": None}).fetch("name")) == 1
        assert len((t.Thing & {"n": 3}).fetch("name")) == 1
        assert len((t.Thing & {"n": 4}).fetch("name")) == 1
        assert len(made) == 3
        assert [len(t.Event & {"name": r["name"]}) for r in t.rows] == [3] * len(NASTY)
        assert all({"name": r["name"], "seen": r["seen"]} in t.Thing for r in t.rows)
        assert len(made) == 5


def test_values_are_bound_never_written_into_the_sql(t: SimpleNamespace) -> None:
    statements.clear()
    connection = t.Thing.connection
    with sent(connection) as log:
        for row in t.rows:
            assert (t.Thing & {"name": row["name"], "seen": row["seen"]}).fetch1("name") == \
                row["name"]
    reads = [sql for sql, _ in log if sql.lstrip().upper().startswith("SELECT")]
    assert len(reads) == len(NASTY) and len(set(reads)) == 1  # one text, many values
    for value in NASTY:
        assert all(value not in sql for sql in reads)
    assert len(t.Thing()) == len(NASTY)  # nothing was dropped


def test_a_redeclared_table_is_not_read_with_old_statements(schema: dj.Schema) -> None:
    @schema
    class Box(dj.Manual):
        definition = """
        box : int32
        ---
        size : decimal(8,2)
        """

    Box.insert1(dict(box=1, size=decimal.Decimal("1.50")))
    assert (Box & {"box": 1}).fetch1("size") == decimal.Decimal("1.50")
    assert (Box & {"box": 1}).fetch1() == {"box": 1, "size": decimal.Decimal("1.50")}
    Box.drop_quick()

    @schema  # type: ignore[no-redef]
    class Box(dj.Manual):
        definition = """
        box : varchar(10)
        ---
        size : float64
        label = "" : varchar(20)
        """

    Box.insert1(dict(box="1", size=2.5, label="new"))
    size = (Box & {"box": "1"}).fetch1("size")
    assert size == 2.5 and type(size) is float
    assert (Box & {"box": "1"}).fetch1() == {"box": "1", "size": 2.5, "label": "new"}


def test_an_altered_table_is_not_read_with_old_statements(schema: dj.Schema) -> None:
    @schema
    class Jar(dj.Manual):
        definition = """
        jar : int32
        ---
        volume : decimal(8,2)
        """

    Jar.insert1(dict(jar=1, volume=decimal.Decimal("1.50")))
    assert (Jar & {"jar": 1}).fetch1("volume") == decimal.Decimal("1.50")
    Jar.definition = Jar.definition.replace("decimal(8,2)", "float64") + \
        'note = "x" : varchar(8)\n'
    Jar.alter(prompt=False, force=True)
    volume = (Jar & {"jar": 1}).fetch1("volume")
    assert volume == 1.5 and type(volume) is float
    assert (Jar & {"jar": 1}).fetch1() == {"jar": 1, "volume": 1.5, "note": "x"}


def test_long_key_lists_and_sqlalchemy_clauses_are_read_the_usual_way(
        t: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = t.Thing.fetch("KEY")
    many = keys + [dict(keys[0], name=f"nobody {i}") for i in range(40)]  # more rows than
    # a cached IN holds
    with compiles(monkeypatch) as made:
        assert len((t.Thing & many).fetch("KEY")) == len(NASTY)
        column = t.Thing._sa_table.c.n
        assert sorted((t.Thing & (column > 5)).fetch("n")) == [6, 7]
        assert made == []


def test_errors_are_translated_on_the_cached_path(schema: dj.Schema,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    @schema
    class Lone(dj.Manual):
        definition = """
        lone : int32
        """

    Lone.insert1({"lone": 1})
    assert (Lone & {"lone": 1}).fetch1("KEY") == {"lone": 1}  # its statement is cached
    schema.connection.query(f"DROP TABLE {Lone.full_table_name}")
    with pytest.raises(dj.DataJointError) as cached_error:
        (Lone & {"lone": 1}).fetch1("KEY")
    with uncached(monkeypatch), pytest.raises(dj.DataJointError) as usual_error:
        (Lone & {"lone": 1}).fetch1("KEY")
    assert type(cached_error.value) is type(usual_error.value)
    assert (Lone & {"lone": 1}).fetch1 is not None  # the connection still works
    assert len(schema.connection.query("SELECT 1")) == 1


def test_a_cached_read_in_a_transaction_sees_its_writes(t: SimpleNamespace) -> None:
    connection = t.Thing.connection
    key = {"name": "new one", "seen": datetime.datetime(2025, 1, 1)}
    (t.Thing & {"name": NASTY[0], "seen": t.rows[0]["seen"]}).fetch1("n")  # the shape cached

    class Undo(Exception):
        pass

    with pytest.raises(Undo):
        with connection.transaction:
            t.Thing.insert1(dict(key, n=99))
            assert (t.Thing & key).fetch1("n") == 99
            raise Undo
    assert len(t.Thing & key) == 0
    with sent(connection) as log:
        assert (t.Thing & {"name": NASTY[1], "seen": t.rows[1]["seen"]}).fetch1("n") is None
    begins = [sql for sql, _ in log if sql.lstrip().upper().startswith("BEGIN")]
    if connection.backend_impl.reads_in_autocommit:  # one SELECT, no transaction around it
        assert begins == [] and len(log) == 1


def test_tables_of_one_definition_share_statements(make_schema: Callable[..., dj.Schema],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Statements are compiled over stand-in tables: a pipeline declared again in another
    schema (the same definitions) reuses them, each run reading its own tables."""
    statements.clear()
    pairs = []
    for number in range(3):
        schema = make_schema()

        @schema
        class Subject(dj.Manual):
            definition = """
            subject_id : int32
            ---
            weight : float64
            """

        @schema
        class Session(dj.Manual):
            definition = """
            -> Subject
            session : int16
            """

        Subject.insert([(i, 20.0 + number) for i in range(4)])
        Session.insert([(i, s) for i in range(4) for s in range(number + 1)])
        pairs.append((Subject, Session))
    with compiles(monkeypatch) as made:
        for number, (Subject, Session) in enumerate(pairs):
            assert (Subject & {"subject_id": 2}).fetch1("weight") == 20.0 + number
            rows = ((Subject & "subject_id < 3") * Session & "weight >= 20").to_dicts()
            assert len(rows) == 3 * (number + 1)
            assert len(Session & {"subject_id": 1}) == number + 1
        assert len(made) == 3  # one per shape, not per schema
    assert statements.count() == 3  # and each one kept (its text checked)


def test_a_table_read_twice_is_not_read_with_the_statement_of_two_tables(
        schema: dj.Schema, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two tables of one definition share a shape's statement; the same table in both places
    is another query (SQLAlchemy has to tell the two apart, or a semijoin of a table with
    itself would correlate with nothing and keep every row)."""
    @schema
    class Left(dj.Manual):
        definition = """
        p : int32
        ---
        v : int32
        """

    @schema
    class Right(dj.Manual):
        definition = """
        p : int32
        ---
        v : int32
        """

    Left.insert([(i, i * 10) for i in range(1, 4)])
    Right.insert([(i, i * 10) for i in range(1, 4)])
    statements.clear()
    # `^` and `@`: without the semantic check (each `p` comes from its own table)
    assert list((Left ^ (Right & {"p": 1}).proj()).fetch("p")) == [1]
    assert list((Left ^ (Left & {"p": 2}).proj()).fetch("p")) == [2]
    assert list((Right ^ (Right & {"p": 3}).proj()).fetch("p")) == [3]
    assert list((Right ^ (Left & {"p": 1}).proj()).fetch("p")) == [1]
    with uncached(monkeypatch):
        assert list((Left ^ (Left & {"p": 2}).proj()).fetch("p")) == [2]
    for first, second in ((Left, Right), (Left, Left)):
        rows = (first.proj(a="v") @ (second & {"p": 2}).proj(b="v")).to_dicts()
        assert rows == [{"p": 2, "a": 20, "b": 20}]


def test_a_stand_in_name_is_kept_only_as_a_table_reference() -> None:
    """A shape is compiled once over stand-in tables; its text may name the real tables only
    where the stand-ins are table references (a label or alias made from a table's name
    would come out differently for the real table)."""
    name = "djsa0tabc123"
    kept = statements._references_only
    assert kept(f"SELECT {name}.a, {name}.b \nFROM {name} JOIN x ON {name}.a = x.a", name)
    assert kept(f"SELECT x.a \nFROM x, {name} \nWHERE x.a = {name}.a", name)
    assert kept(f"SELECT 1 \nFROM x LEFT OUTER JOIN {name} ON x.a = {name}.a", name)
    assert not kept(f"SELECT {name}.a AS {name}_a \nFROM {name}", name)
    assert not kept(f"SELECT x.a \nFROM y AS {name}", name)
    assert not kept(f'SELECT "{name}".a \nFROM "{name}"', name)
    assert not kept(f"SELECT a.{name}.b \nFROM a.{name}", name)
