"""SQL fragments reach nothing but their own rows, on every backend (issue 16, item 1).

Every hostile fragment below is refused with a DataJointError that names the offending
item, in a restriction, a proj and an aggr, and no SQL at all reaches the server while it is
refused.  Every function on the allow-list runs on every backend, and fragments that only
look dangerous (a function name inside a string, an attribute called `version`) still work.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

import datajoint_sa as dj
from datajoint_sa.errors import DataJointError, UnsafeFragmentError
from datajoint_sa.sqlexpr.functions import FUNCTIONS
from datajoint_sa.viz.query import restrict_by_filters

from .conftest import BACKENDS, backend_url, unique_name

#: (fragment, what the error must name)
HOSTILE: list[tuple[str, str]] = [
    # PostgreSQL server functions: files, other schemas, the pooled session, the server
    ("pg_read_file('/etc/passwd') is not null", "pg_read_file"),
    ("pg_read_binary_file('/etc/passwd') is not null", "pg_read_binary_file"),
    ("pg_ls_dir('.') is not null", "pg_ls_dir"),
    ("pg_stat_file('postgresql.conf') is not null", "pg_stat_file"),
    ("query_to_xml('select * from other.secret', true, true, '') is not null", "query_to_xml"),
    ("set_config('search_path', 'other', false) = 'other'", "set_config"),
    ("current_setting('data_directory') <> ''", "current_setting"),
    ("pg_sleep(10) is null", "pg_sleep"),
    ("lo_import('/etc/passwd') > 0", "lo_import"),
    ("lo_export(1, '/tmp/x') > 0", "lo_export"),
    ("dblink('host=evil.example', 'select 1') is null", "dblink"),
    ("pg_terminate_backend(1)", "pg_terminate_backend"),
    ("pg_cancel_backend(1)", "pg_cancel_backend"),
    ("pg_reload_conf()", "pg_reload_conf"),
    ("inet_server_addr() is not null", "inet_server_addr"),
    ("txid_current() > 0", "txid_current"),
    ("nextval('some_sequence') > 0", "nextval"),
    ("setval('some_sequence', 1) > 0", "setval"),
    ("to_regclass('pg_shadow') is not null", "to_regclass"),
    ("has_table_privilege('other.secret', 'select')", "has_table_privilege"),
    ("pg_advisory_lock(1) is null", "pg_advisory_lock"),
    ("current_database() <> ''", "current_database"),
    ("version() like '%'", "version"),
    ("current_user = 'postgres'", "current_user"),
    ("session_user = 'postgres'", "session_user"),
    # MySQL/MariaDB server functions
    ("load_file('/etc/passwd') is not null", "load_file"),
    ("sleep(5) = 0", "sleep"),
    ("get_lock('x', 10) = 1", "get_lock"),
    ("release_lock('x') = 1", "release_lock"),
    ("benchmark(1000000, md5('x')) = 0", "benchmark"),
    ("user() like 'root%'", "user"),
    ("system_user() like 'root%'", "system_user"),
    ("database() = 'test'", "database"),
    ("schema() = 'test'", "schema"),
    ("connection_id() > 0", "connection_id"),
    ("last_insert_id() >= 0", "last_insert_id"),
    ("row_count() >= 0", "row_count"),
    ("found_rows() >= 0", "found_rows"),
    ("master_pos_wait('log', 1) is null", "master_pos_wait"),
    ("extractvalue(1, concat('~', name)) is null", "extractvalue"),
    ("updatexml(1, '/a', name) is null", "updatexml"),
    ("sys_exec('id') = 0", "sys_exec"),
    ("md5(name) = ''", "md5"),
    ("uuid() = ''", "uuid"),
    ("rand() < 0.5", "rand"),
    # SQLite functions that reach files or the engine
    ("load_extension('evil') is null", "load_extension"),
    ("readfile('/etc/passwd') is not null", "readfile"),
    ("writefile('/tmp/x', name) > 0", "writefile"),
    ("sqlite_version() <> ''", "sqlite_version"),
    ("randomblob(10) is not null", "randomblob"),
    # session, user and server variables
    ("@x = 1", "@x"),
    ("x = @last_id", "@last_id"),
    ("@@version like '%'", "@@version"),
    ("@@global.secure_file_priv is null", "@@global.secure_file_priv"),
    ("@@session.sql_mode <> ''", "@@session.sql_mode"),
    # subqueries and system tables
    ("x in (select 1)", "subquery"),
    ("exists (select 1 from information_schema.tables)", "subquery"),
    ("(select count(*) from mysql.user) > 0", "subquery"),
    ("x = (select max(usesysid) from pg_catalog.pg_user)", "subquery"),
    ("name in (select name from sqlite_master)", "subquery"),
    ("x in (1, (select 2))", "subquery"),
    # schema-qualified names
    ("information_schema.tables.table_name = 'x'", "information_schema.tables.table_name"),
    ("mysql.user.authentication_string <> ''", "mysql.user.authentication_string"),
    ("other_schema.secret.value = 1", "other_schema.secret.value"),
    ("item.x = 1", "item.x"),
    ("pg_catalog.pg_read_file('x') is null", "pg_catalog.pg_read_file"),
    # statements
    ("x = 1; drop table item", ";"),
    ("drop table item", "drop table item"),
    ("delete from item", "delete from item"),
    ("insert into item values (1)", "insert into item values (1)"),
    ("grant all on *.* to evil", "grant all on *.* to evil"),
    ("set @x = 1", "set @x = 1"),
    ("1 = 1 union select password from mysql.user", "1 = 1 union select password"),
    ("x > 1 into outfile '/tmp/x'", "into outfile"),
]


@pytest.fixture(scope="module", params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[SimpleNamespace]:
    connection = dj.Connection(backend_url(request.param, tmp_path_factory))
    schema = dj.Schema(unique_name("fragsec"), connection=connection)

    @schema
    class Grp(dj.Manual):
        definition = """
        grp : int32
        """

    @schema
    class Item(dj.Manual):
        definition = """
        -> Grp
        id : int32
        ---
        x = null : int32
        y = null : float64
        a : int32
        b : int32
        version : int32
        name : varchar(40)
        session_date : date
        ts : datetime
        """

    Grp.insert([(1,), (2,)])
    Item.insert([
        dict(grp=1, id=1, x=1, y=1.26, a=10, b=3, version=1, name="Alice",
             session_date=dt.date(2023, 12, 31), ts=dt.datetime(2023, 12, 31, 10, 15, 30)),
        dict(grp=1, id=2, x=2, y=2.71, a=11, b=4, version=2, name="sleep(1)",
             session_date=dt.date(2024, 1, 1), ts=dt.datetime(2024, 1, 1, 0, 0, 0)),
        dict(grp=2, id=3, x=None, y=-3.14, a=12, b=0, version=3, name="@x; select",
             session_date=dt.date(2024, 2, 15), ts=dt.datetime(2024, 2, 15, 23, 59, 59)),
    ])
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    sa.event.listen(connection.engine, "before_cursor_execute", record)
    yield SimpleNamespace(backend=request.param, connection=connection, Grp=Grp, Item=Item,
                          sent=sent)
    sa.event.remove(connection.engine, "before_cursor_execute", record)
    schema.drop(force=True)
    connection.close()


def _refused(db: SimpleNamespace, build: Any, offending: str) -> None:
    """`build()` raises a DataJointError naming `offending`, and sends no SQL."""
    db.sent.clear()
    with pytest.raises(DataJointError) as caught:
        build()
    assert offending.lower() in str(caught.value).lower()
    assert db.sent == []


@pytest.mark.parametrize(("text", "offending"), HOSTILE, ids=[t for t, _ in HOSTILE])
def test_hostile_restriction(db: SimpleNamespace, text: str, offending: str) -> None:
    _refused(db, lambda: db.Item & text, offending)
    _refused(db, lambda: db.Item - text, offending)


@pytest.mark.parametrize(("text", "offending"), HOSTILE, ids=[t for t, _ in HOSTILE])
def test_hostile_proj_and_aggr(db: SimpleNamespace, text: str, offending: str) -> None:
    _refused(db, lambda: db.Item.proj(v=text), offending)
    _refused(db, lambda: db.Grp.aggr(db.Item, v=text), offending)


@pytest.mark.parametrize("text", [t for t, _ in HOSTILE[:20]] + ["x desc, sleep(1)"])
def test_hostile_order_by(db: SimpleNamespace, text: str) -> None:
    _refused(db, lambda: db.Item.fetch(order_by=text), "order_by")
    _refused(db, lambda: db.Item.fetch(order_by=["x", text]), "order_by")


def test_function_refusals_are_unsafe_fragment_errors(db: SimpleNamespace) -> None:
    for text in ("pg_read_file('x') is null", "@@version = 1", "x in (select 1)"):
        with pytest.raises(UnsafeFragmentError):
            db.Item & text


_SAMPLES = [(category, name, sample) for category, group in FUNCTIONS.items()
            for name, sample in group.items()]


@pytest.mark.parametrize(("category", "name", "sample"), _SAMPLES,
                         ids=[name for _, name, _ in _SAMPLES])
def test_every_allowed_function_runs(db: SimpleNamespace, category: str, name: str,
                                     sample: str) -> None:
    if category == "aggregates":
        rows = db.Grp.aggr(db.Item, v=sample).fetch("v", order_by="grp")
        assert len(rows) == 2
    else:
        rows = db.Item.proj(v=sample).fetch("v", order_by="KEY")
        assert len(rows) == 3
        assert len(db.Item & f"({sample}) is not null or ({sample}) is null") == 3


LEGITIMATE: list[tuple[str, list[int]]] = [
    ('name = "sleep(1)"', [2]),
    ("name like '%select%'", [3]),
    ('name = "@x; select"', [3]),
    ("version > 1", [2, 3]),
    ("x in (1, 2)", [1, 2]),
    ("x is null", [3]),
    ("coalesce(x, 0) + a > 11", [2, 3]),
    ("if(x > 1, 1, 0) = 1", [2]),
    ("CASE WHEN y > 0 THEN 1 ELSE 0 END = 0", [3]),
    ('lower(name) = "alice"', [1]),
    ("year(session_date) = 2024 and month(session_date) = 2", [3]),
    ("datediff(session_date, '2024-01-01') >= 0", [2, 3]),
    ('date(ts) = "2024-01-01"', [2]),
    ("ts < now()", [1, 2, 3]),
    ("a div 4 = 2", [1, 2]),
    ("a % 5 = 0", [1]),
    ("abs(y) > 3", [3]),
    ("round(y, 1) = 2.7", [2]),
    ("cast(a AS char) = '10'", [1]),
    ("name regexp '^a'", [1]),
    ("length(name) = 5", [1]),
]


@pytest.mark.parametrize(("text", "expected"), LEGITIMATE, ids=[t for t, _ in LEGITIMATE])
def test_legitimate_fragments_work(db: SimpleNamespace, text: str, expected: list[int]) -> None:
    assert sorted((db.Item & text).fetch("id")) == expected


def test_legitimate_aggregates_work(db: SimpleNamespace) -> None:
    result = db.Grp.aggr(db.Item, n="count(*)", top="max(a)", avg="avg(b)").fetch(
        order_by="grp", as_dict=True)
    assert [(r["n"], r["top"], pytest.approx(r["avg"])) for r in result] == [
        (2, 11, 3.5), (1, 12, 0.0)]


@pytest.mark.parametrize("text", ["sleep(1)", "'; drop table item; --", "@@version",
                                  "x in (select 1)", "pg_read_file('/etc/passwd')",
                                  ">1; drop table item", "1..(select 2)"])
def test_web_filters_bind_hostile_text(db: SimpleNamespace, text: str) -> None:
    """The web app's column filters never become SQL text: hostile input is a bound value
    that matches nothing (or is refused as a value of the column's type)."""
    db.sent.clear()
    try:
        restricted = restrict_by_filters(db.Item, {"name": text}, ["name", "a"])
        assert all(text.lower() in name.lower() for name in restricted.fetch("name"))
    except DataJointError:
        pass
    try:
        restricted = restrict_by_filters(db.Item, {"a": text}, ["name", "a"])
        assert len(restricted) == 0
    except (DataJointError, ValueError):
        pass
    assert not any(text in statement for statement in db.sent)


def test_docs_list_exactly_the_allowed_functions() -> None:
    text = (Path(__file__).parent.parent / "docs" / "fragments.md").read_text()
    for category, group in FUNCTIONS.items():
        row = re.search(rf"^\| {re.escape(category)} \|(.*)\|$", text, re.MULTILINE)
        assert row is not None, f"docs/fragments.md has no row for {category!r}"
        assert re.findall(r"`(\w+)`", row.group(1)) == list(group), category
