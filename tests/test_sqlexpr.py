"""datajoint_sa.sqlexpr against real SQLite, PostgreSQL and MySQL/MariaDB databases.

Every fragment is run on all three backends and must give the same rows/values.
"""

from __future__ import annotations

import datetime as dt
import math
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from datajoint_sa.errors import DataJointError, QueryError, UnknownAttributeError
from datajoint_sa.sqlexpr import Fragment, fragment_clause, parse_fragment

from .conftest import BACKENDS, MYSQL_URL, POSTGRES_URL

ROWS: list[dict[str, Any]] = [
    dict(
        id=1,
        x=1,
        y=1.26,
        a=10,
        b=3,
        grp=1,
        name="Alice",
        session_date=dt.date(2023, 12, 31),
        ts=dt.datetime(2023, 12, 31, 10, 15, 30),
        duration=2.0,
    ),
    dict(
        id=2,
        x=2,
        y=2.71,
        a=11,
        b=4,
        grp=1,
        name="bob",
        session_date=dt.date(2024, 1, 1),
        ts=dt.datetime(2024, 1, 1, 0, 0, 0),
        duration=4.0,
    ),
    dict(
        id=3,
        x=3,
        y=-3.14,
        a=12,
        b=0,
        grp=2,
        name="Anna",
        session_date=dt.date(2024, 2, 15),
        ts=dt.datetime(2024, 2, 15, 23, 59, 59),
        duration=6.0,
    ),
    dict(
        id=4,
        x=4,
        y=None,
        a=13,
        b=5,
        grp=2,
        name="carl",
        session_date=dt.date(2024, 3, 1),
        ts=dt.datetime(2024, 3, 1, 12, 0, 0),
        duration=None,
    ),
    dict(
        id=5,
        x=None,
        y=0.0,
        a=14,
        b=7,
        grp=3,
        name="A%b_c",
        session_date=dt.date(2025, 6, 30),
        ts=dt.datetime(2025, 6, 30, 6, 7, 8),
        duration=10.0,
    ),
]
ATTRS = [c for c in ROWS[0]]


@dataclass
class DB:
    name: str
    engine: sa.Engine
    table: sa.Table

    @property
    def cols(self) -> dict[str, sa.ColumnElement[Any]]:
        return {c.name: c for c in self.table.c}

    def clause(self, text: str) -> sa.ColumnElement[Any]:
        return fragment_clause(parse_fragment(text, ATTRS, context="item"), self.cols)

    def ids(self, text: str, *, condition: bool = False) -> list[int]:
        """Primary keys of the rows the fragment restricts to (``condition``: read as a
        restriction, where a number means "not zero")."""
        clause = fragment_clause(
            parse_fragment(text, ATTRS, context="item", condition=condition), self.cols)
        stmt = sa.select(self.table.c.id).where(clause).order_by(self.table.c.id)
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(stmt)]

    def values(self, text: str) -> list[Any]:
        """The fragment computed for every row, ordered by id."""
        stmt = (
            sa.select(self.clause(text).label("v"))
            .select_from(self.table)
            .order_by(self.table.c.id)
        )
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(stmt)]

    def grouped(self, text: str) -> list[Any]:
        """The fragment aggregated per ``grp``, ordered by grp."""
        t = self.table
        stmt = (
            sa.select(self.clause(text).label("v"))
            .select_from(t)
            .group_by(t.c.grp)
            .order_by(t.c.grp)
        )
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(stmt)]


def _make_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "item",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("x", sa.Integer),
        sa.Column("y", sa.Float),
        sa.Column("a", sa.Integer),
        sa.Column("b", sa.Integer),
        sa.Column("grp", sa.Integer),
        sa.Column("name", sa.String(40)),
        sa.Column("session_date", sa.Date),
        sa.Column("ts", sa.DateTime),
        sa.Column("duration", sa.Float),
    )


@pytest.fixture(scope="module", params=BACKENDS)
def db(request: pytest.FixtureRequest) -> Iterator[DB]:
    """A filled ``item`` table on one backend, in a private schema/database dropped afterwards."""
    backend = request.param
    private = f"sqlexpr_test_{uuid.uuid4().hex[:12]}"
    if backend == "sqlite":
        engine = sa.create_engine("sqlite://")
        schema = None
    else:
        engine = sa.create_engine(POSTGRES_URL if backend == "postgresql" else MYSQL_URL)
        try:
            with engine.begin() as conn:
                if backend == "postgresql":
                    conn.execute(sa.text(f'CREATE SCHEMA "{private}"'))
                else:
                    conn.execute(sa.text(f"CREATE DATABASE `{private}`"))
        except sa.exc.OperationalError as e:  # an unreachable server fails, never skips
            engine.dispose()
            pytest.fail(f"{backend} not reachable: {e}")
        schema = private
    metadata = sa.MetaData(schema=schema)
    table = _make_table(metadata)
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(table.insert(), ROWS)
        yield DB(backend, engine, table)
    finally:
        if backend == "postgresql":
            with engine.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{private}" CASCADE'))
        elif backend == "mysql":
            with engine.begin() as conn:
                conn.execute(sa.text(f"DROP DATABASE `{private}`"))
        engine.dispose()


def approx(values: list[Any]) -> list[Any]:
    return [None if v is None else pytest.approx(v) for v in values]


def floats(values: list[Any]) -> list[float | None]:
    """Decimal (PostgreSQL numeric, MySQL DECIMAL) and float results compared alike."""
    return [None if v is None else float(v) for v in values]


def as_bool(values: list[Any]) -> list[bool | None]:
    return [None if v is None else bool(v) for v in values]


# ---------------------------------------------------------------------------------------------
# restrictions: same rows everywhere
# ---------------------------------------------------------------------------------------------

RESTRICTIONS: list[tuple[str, list[int]]] = [
    ('session_date > "2024-01-01"', [3, 4, 5]),
    ("session_date >= '2024-01-01'", [2, 3, 4, 5]),
    ("x*2 > 4", [3, 4]),
    ("x IS NULL", [5]),
    ("x IS NOT NULL", [1, 2, 3, 4]),
    ('name LIKE "A%"', [1, 3, 5]),
    ('name LIKE "a%"', [1, 3, 5]),
    ('name NOT LIKE "A%"', [2, 4]),
    ('name LIKE "A\\%b%"', [5]),
    ('name LIKE "_ob"', [2]),
    ("id IN (1,2,3)", [1, 2, 3]),
    ("id NOT IN (1,2,3)", [4, 5]),
    ("x BETWEEN 2 AND 3", [2, 3]),
    ("a % 2 = 0", [1, 3, 5]),
    ("mod(a, 2) = 1", [2, 4]),
    ("a DIV 4 = 3", [3, 4, 5]),
    ("if(x > 1, 1, 0) = 1", [2, 3, 4]),
    ("coalesce(x, 0) = 0", [5]),
    ("length(name) = 3", [2]),
    ('lower(name) = "carl"', [4]),
    ("round(y, 1) = 2.7", [2]),
    ("abs(y) > 3", [3]),
    ("sqrt(x) = 2", [4]),
    ("floor(y) = -4", [3]),
    ('date(ts) = "2024-01-01"', [2]),
    ("year(session_date) = 2024", [2, 3, 4]),
    ("month(session_date) = 2", [3]),
    ("day(session_date) = 1", [2, 4]),
    ("hour(ts) = 12", [4]),
    ('datediff(session_date, "2024-01-01") > 30', [3, 4, 5]),
    ('substring(name, 1, 2) = "An"', [3]),
    ("NOT (x > 2)", [1, 2]),
    ("x <> 3", [1, 2, 4]),
    ("x != 3", [1, 2, 4]),
    ("(a > 11 AND b < 5) OR x = 1", [1, 3]),
    ("a > 11 AND (b < 5 OR x = 1)", [3]),
    ("CASE WHEN x > 2 THEN 1 ELSE 0 END = 1", [3, 4]),
    ('`name` = "bob"', [2]),
    ("TRUE", [1, 2, 3, 4, 5]),
    ("FALSE", []),
    ('name REGEXP "^a"', [1, 3, 5]),
    ('name REGEXP "o"', [2]),
    ('name NOT REGEXP "^a"', [2, 4]),
    ('name RLIKE "L+"', [1, 4]),
    ('concat(name, "!") = "bob!"', [2]),
    ("x/2 = 1.5", [3]),
    ("x/0 IS NULL", [1, 2, 3, 4, 5]),
    ("x % 0 IS NULL", [1, 2, 3, 4, 5]),
    ("NOW() > ts", [1, 2, 3, 4, 5]),
    ("CURRENT_DATE >= session_date", [1, 2, 3, 4, 5]),
    ("-x < -2", [3, 4]),
    ("x + 0.5 > 3", [3, 4]),
    ("y > 1e0", [1, 2]),
    ("X = 2", [2]),
    ("x > 1 -- trailing comment", [2, 3, 4]),
]


@pytest.mark.parametrize(("text", "expected"), RESTRICTIONS, ids=[t for t, _ in RESTRICTIONS])
def test_restriction(db: DB, text: str, expected: list[int]) -> None:
    assert db.ids(text) == expected


def test_hostile_string_literal_returns_nothing(db: DB) -> None:
    assert db.ids('name = "x\' OR 1=1 --"') == []
    assert db.ids("name = 'x\" OR 1=1 --'") == []
    assert db.ids("name = \"bob\\' OR '1'='1\"") == []


def test_two_fragments_in_one_statement(db: DB) -> None:
    t = db.table
    stmt = (
        sa.select(t.c.id, db.clause('concat(name, "?")').label("p"), db.clause("x * 10").label("q"))
        .where(db.clause("x > 1"), db.clause('name LIKE "%a%"'))
        .order_by(t.c.id)
    )
    with db.engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(stmt)]
    assert rows == [(3, "Anna?", 30), (4, "carl?", 40)]
    # the same Fragment twice: fresh binds per clause
    frag = parse_fragment("x > 1", ATTRS)
    stmt = sa.select(t.c.id).where(
        sa.or_(fragment_clause(frag, db.cols), fragment_clause(frag, db.cols))
    )
    with db.engine.connect() as conn:
        assert sorted(r[0] for r in conn.execute(stmt)) == [2, 3, 4]


def test_fragment_combined_with_sqlalchemy_operators(db: DB) -> None:
    t = db.table
    stmt = sa.select(t.c.id).where(~db.clause("x > 2 OR x = 1"), t.c.id < 5).order_by(t.c.id)
    with db.engine.connect() as conn:
        assert [r[0] for r in conn.execute(stmt)] == [2]
    stmt = sa.select(t.c.id).where(sa.or_(db.clause("x = 1"), db.clause("x = 4"))).order_by(t.c.id)
    with db.engine.connect() as conn:
        assert [r[0] for r in conn.execute(stmt)] == [1, 4]


def test_fragment_over_subquery_columns(db: DB) -> None:
    t = db.table
    sq = sa.select(t.c.id, (t.c.x + 1).label("x1"), t.c.name.label("nm")).subquery()
    frag = parse_fragment('x1 > 3 AND nm LIKE "%a%"', ["id", "x1", "nm"])
    stmt = sa.select(sq.c.id).where(fragment_clause(frag, sq.c)).order_by(sq.c.id)
    with db.engine.connect() as conn:
        assert [r[0] for r in conn.execute(stmt)] == [3, 4]


def test_fragment_follows_table_alias(db: DB) -> None:
    # SQLAlchemy's clause adaptation (used for aliases/subqueries) must reach the columns.
    from sqlalchemy.sql.util import ClauseAdapter

    alias = db.table.alias("other_name")
    clause = ClauseAdapter(alias).traverse(db.clause("x >= 3"))
    stmt = sa.select(alias.c.id).where(clause).order_by(alias.c.id)
    assert "other_name.x" in str(stmt.compile(db.engine))
    with db.engine.connect() as conn:
        assert [r[0] for r in conn.execute(stmt)] == [3, 4]


def test_statement_cache_reuses_shape_with_new_values(db: DB) -> None:
    # Same fragment text, different column targets and repeated execution: the cache key must
    # keep the bound values apart.
    assert db.ids("x = 1") == [1]
    assert db.ids("x = 2") == [2]
    assert db.ids("x = 1") == [1]
    assert db.values('concat(name, "-")')[:2] == ["Alice-", "bob-"]
    assert db.values('concat(name, "+")')[:2] == ["Alice+", "bob+"]


# ---------------------------------------------------------------------------------------------
# computed values: same values everywhere
# ---------------------------------------------------------------------------------------------

VALUES: list[tuple[str, list[Any]]] = [
    ("x*2", [2, 4, 6, 8, None]),
    ("x + a", [11, 13, 15, 17, None]),
    ("a DIV 3", [3, 3, 4, 4, 4]),
    ("-a DIV 3", [-3, -3, -4, -4, -4]),
    ("a % 3", [1, 2, 0, 1, 2]),
    ("mod(a, 3)", [1, 2, 0, 1, 2]),
    ("coalesce(x, 0)", [1, 2, 3, 4, 0]),
    ("length(name)", [5, 3, 4, 4, 5]),
    ("lower(name)", ["alice", "bob", "anna", "carl", "a%b_c"]),
    ("upper(name)", ["ALICE", "BOB", "ANNA", "CARL", "A%B_C"]),
    ("substring(name, 2, 3)", ["lic", "ob", "nna", "arl", "%b_"]),
    ("concat(name, '-', x)", ["Alice-1", "bob-2", "Anna-3", "carl-4", None]),
    ("concat(x, a)", ["110", "211", "312", "413", None]),
    ('if(x > 1, "big", "small")', ["small", "big", "big", "big", "small"]),
    (
        'CASE WHEN x > 2 THEN "hi" WHEN x = 2 THEN "mid" ELSE "lo" END',
        ["lo", "mid", "hi", "hi", "lo"],
    ),
    ("year(session_date)", [2023, 2024, 2024, 2024, 2025]),
    ("month(session_date)", [12, 1, 2, 3, 6]),
    ("day(session_date)", [31, 1, 15, 1, 30]),
    ("year(ts)", [2023, 2024, 2024, 2024, 2025]),
    ("hour(ts)", [10, 0, 23, 12, 6]),
    ("minute(ts)", [15, 0, 59, 0, 7]),
    ("second(ts)", [30, 0, 59, 0, 8]),
    ("dayofweek(session_date)", [1, 2, 5, 6, 2]),
    ("date(ts)", [r["session_date"] for r in ROWS]),
    ('datediff(session_date, "2024-01-01")', [-1, 0, 45, 60, 546]),
    ("datediff(ts, session_date)", [0, 0, 0, 0, 0]),
    ('date_format(session_date, "%Y-%m")', ["2023-12", "2024-01", "2024-02", "2024-03", "2025-06"]),
    ("floor(y)", [1, 2, -4, None, 0]),
    ("ceil(y)", [2, 3, -3, None, 0]),
    ("floor(x)", [1, 2, 3, 4, None]),
    ("abs(b - 4)", [1, 0, 4, 1, 3]),
]
APPROX_VALUES: list[tuple[str, list[Any]]] = [
    ("x/2", [0.5, 1.0, 1.5, 2.0, None]),
    ("x/4", [0.25, 0.5, 0.75, 1.0, None]),
    ("a/b", [10 / 3, 11 / 4, None, 13 / 5, 2.0]),
    ("round(y, 1)", [1.3, 2.7, -3.1, None, 0.0]),
    ("abs(y)", [1.26, 2.71, 3.14, None, 0.0]),
    ("sqrt(x)", [1.0, math.sqrt(2), math.sqrt(3), 2.0, None]),
    ("y * 2.5", [3.15, 6.775, -7.85, None, 0.0]),
    ("x * 0.1", [0.1, 0.2, 0.3, 0.4, None]),
]
BOOL_VALUES: list[tuple[str, list[Any]]] = [
    ("x > 2", [False, False, True, True, None]),
    ("NOT (x > 2)", [True, True, False, False, None]),
    ("x IS NULL", [False, False, False, False, True]),
    ("id IN (1, 2)", [True, True, False, False, False]),
    ('name LIKE "a%"', [True, False, True, False, True]),
    ('name REGEXP "^b"', [False, True, False, False, False]),
    ("x BETWEEN 2 AND 3", [False, True, True, False, None]),
    ("TRUE", [True] * 5),
    ("FALSE", [False] * 5),
]


@pytest.mark.parametrize(("text", "expected"), VALUES, ids=[t for t, _ in VALUES])
def test_value(db: DB, text: str, expected: list[Any]) -> None:
    assert db.values(text) == expected


@pytest.mark.parametrize(("text", "expected"), APPROX_VALUES, ids=[t for t, _ in APPROX_VALUES])
def test_value_approx(db: DB, text: str, expected: list[Any]) -> None:
    assert floats(db.values(text)) == approx(expected)


@pytest.mark.parametrize(("text", "expected"), BOOL_VALUES, ids=[t for t, _ in BOOL_VALUES])
def test_value_bool(db: DB, text: str, expected: list[Any]) -> None:
    assert as_bool(db.values(text)) == expected


def test_value_types(db: DB) -> None:
    assert all(isinstance(v, bool) for v in db.values("x > 0") if v is not None)
    assert all(type(v) is int for v in db.values("year(ts)"))
    assert all(type(v) is int for v in db.values("a DIV 3"))
    assert all(type(v) is float for v in db.values("x / 2") if v is not None)
    assert all(type(v) is dt.date for v in db.values("date(ts)"))


def test_now(db: DB) -> None:
    (now,) = db.values("NOW()")[:1]
    assert isinstance(now, dt.datetime)
    # MySQL's NOW() is local wall-clock time on every backend
    assert abs(now.replace(tzinfo=None) - dt.datetime.now()) < dt.timedelta(minutes=5)


# ---------------------------------------------------------------------------------------------
# aggregates: same groups everywhere
# ---------------------------------------------------------------------------------------------

AGGREGATES: list[tuple[str, list[Any]]] = [
    ("count(*)", [2, 2, 1]),
    ("count(x)", [2, 2, 0]),
    ("count(distinct b)", [2, 2, 1]),
    ("sum(x)", [3, 7, None]),
    ("sum(a) + 1", [22, 26, 15]),
    ("max(x) - min(x)", [1, 1, None]),
    ("min(name)", ["Alice", "Anna", "A%b_c"]),
    ("count(*) * 10", [20, 20, 10]),
    ("sum(if(x > 1, 1, 0))", [1, 2, 0]),
]
APPROX_AGGREGATES: list[tuple[str, list[Any]]] = [
    ("avg(duration)", [3.0, 6.0, 10.0]),
    ("avg(x)", [1.5, 3.5, None]),
    ("std(x)", [0.5, 0.5, None]),
    ("stddev(x)", [0.5, 0.5, None]),
    ("stddev_pop(a)", [0.5, 0.5, 0.0]),
    ("stddev_samp(a)", [math.sqrt(0.5), math.sqrt(0.5), None]),
    ("variance(a)", [0.25, 0.25, 0.0]),
    ("var_samp(a)", [0.5, 0.5, None]),
    ("sum(y) / count(*)", [(1.26 + 2.71) / 2, -3.14 / 2, 0.0]),
]


@pytest.mark.parametrize(("text", "expected"), AGGREGATES, ids=[t for t, _ in AGGREGATES])
def test_aggregate(db: DB, text: str, expected: list[Any]) -> None:
    assert parse_fragment(text, ATTRS).has_aggregate
    assert db.grouped(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"), APPROX_AGGREGATES, ids=[t for t, _ in APPROX_AGGREGATES]
)
def test_aggregate_approx(db: DB, text: str, expected: list[Any]) -> None:
    assert parse_fragment(text, ATTRS).has_aggregate
    assert floats(db.grouped(text)) == approx(expected)


def test_group_concat(db: DB) -> None:
    assert [sorted(v.split(",")) for v in db.grouped("group_concat(name)")] == [
        ["Alice", "bob"],
        ["Anna", "carl"],
        ["A%b_c"],
    ]
    assert [sorted(v.split(",")) for v in db.grouped("group_concat(x)") if v is not None] == [
        ["1", "2"],
        ["3", "4"],
    ]
    ordered = 'group_concat(name ORDER BY id SEPARATOR ";")'
    if db.name == "sqlite" and sqlite3.sqlite_version_info < (3, 44):
        with pytest.raises(QueryError, match="3.44"):
            db.grouped(ordered)
    else:
        assert db.grouped(ordered) == ["Alice;bob", "Anna;carl", "A%b_c"]


def test_aggregate_without_group_by_and_having(db: DB) -> None:
    t = db.table
    with db.engine.connect() as conn:
        assert conn.execute(sa.select(db.clause("count(*)")).select_from(t)).scalar() == 5
        assert conn.execute(sa.select(db.clause("max(x) - min(x)"))).scalar() == 3
        stmt = (
            sa.select(t.c.grp).group_by(t.c.grp).having(db.clause("count(*) > 1")).order_by(t.c.grp)
        )
        assert [r[0] for r in conn.execute(stmt)] == [1, 2]
        stmt = sa.select(t.c.grp, db.clause("count(*) > 1").label("v")).group_by(t.c.grp)
        assert sorted((g, bool(v)) for g, v in conn.execute(stmt)) == [
            (1, True),
            (2, True),
            (3, False),
        ]


# ---------------------------------------------------------------------------------------------
# bound values, percent signs, errors
# ---------------------------------------------------------------------------------------------


def test_values_are_bound(db: DB) -> None:
    t = db.table
    stmt = sa.select(t.c.id).where(
        db.clause('name = "secretvalue"'), db.clause("x > 12345"), db.clause("y < 6.25e3")
    )
    compiled = stmt.compile(db.engine)
    sql = str(compiled)
    for literal in ("secretvalue", "12345", "6.25", "6250"):
        assert literal not in sql
    assert "secretvalue" in compiled.params.values()
    assert 12345 in compiled.params.values()
    with db.engine.connect() as conn:
        assert conn.execute(stmt).all() == []


def test_percent_modulo_and_like_with_pyformat_drivers(db: DB) -> None:
    # psycopg and pymysql use %-style placeholders: literal % in SQL text must be doubled.
    t = db.table
    stmt = sa.select(t.c.id).where(db.clause('a % 2 = 0 AND name LIKE "A%"')).order_by(t.c.id)
    with db.engine.connect() as conn:
        assert [r[0] for r in conn.execute(stmt)] == [1, 3, 5]
    assert db.values('date_format(ts, "%H:%i")')[0] == "10:15"


def test_literal_binds_rendering(db: DB) -> None:
    stmt = sa.select(db.table.c.id).where(db.clause('name = "it\'s" AND x > 2'))
    sql = str(stmt.compile(db.engine, compile_kwargs={"literal_binds": True}))
    assert "'it''s'" in sql or "'it\\'s'" in sql


def test_unknown_attribute() -> None:
    with pytest.raises(UnknownAttributeError) as e:
        parse_fragment("nonesuch > 3 AND x < 2", ATTRS, context="lab.item")
    assert "nonesuch" in str(e.value)
    assert "lab.item" in str(e.value)
    assert "nonesuch > 3" in str(e.value)
    with pytest.raises(UnknownAttributeError, match="other"):
        parse_fragment("x = 1 OR other IS NULL", ATTRS)
    with pytest.raises(UnknownAttributeError, match="t.x"):
        parse_fragment("t.x > 1", ATTRS)
    with pytest.raises(UnknownAttributeError):
        parse_fragment("unquoted_word", ATTRS)
    with pytest.raises(UnknownAttributeError, match="y"):
        fragment_clause(parse_fragment("y > 1", ATTRS), {"x": sa.column("x")})


@pytest.mark.parametrize(
    "text",
    [
        "x > ",
        "",
        "   ",
        "x >> > 1",
        "; DROP TABLE x",
        "x > 1; DROP TABLE item",
        "x > 1;",
        "DROP TABLE item",
        "SELECT 1",
        "(SELECT 1)",
        "x IN (SELECT id FROM item)",
        "EXISTS (SELECT 1)",
        "x > (SELECT max(x) FROM item)",
        "x AS y",
        "x > @v",
        "x > @@version",
        "x > ?",
        "x > :p",
        "x := 1",
        "*",
        "DELETE FROM item",
        "INSERT INTO item VALUES (1)",
        "UPDATE item SET x = 1",
        "djsa0phv0(x)",
    ],
)
def test_not_an_expression(text: str) -> None:
    with pytest.raises(QueryError):
        parse_fragment(text, ATTRS)


def test_errors_are_datajoint_errors() -> None:
    assert issubclass(QueryError, DataJointError)
    with pytest.raises(DataJointError):
        parse_fragment(42, ATTRS)  # type: ignore[arg-type]


def test_fragment_metadata() -> None:
    f = parse_fragment("max(x) - min(`X`) > a", ATTRS)
    assert isinstance(f, Fragment)
    assert f.text == "max(x) - min(`X`) > a"
    assert f.attributes == frozenset({"x", "a"})
    assert f.has_aggregate
    assert not parse_fragment("x + 1", ATTRS).has_aggregate
    assert parse_fragment("count(*)", ATTRS).has_aggregate
    assert parse_fragment("x + 1", ATTRS) == parse_fragment("x + 1", ["x"])
    assert isinstance(parse_fragment("count(*)", ATTRS).type, sa.Integer)
    assert isinstance(parse_fragment("x > 1", ATTRS).type, sa.Boolean)
    assert isinstance(parse_fragment("avg(x)", ATTRS).type, sa.Float)
    assert isinstance(parse_fragment("x + 1", ATTRS).type, sa.types.NullType)
    clause = fragment_clause(f, {c: sa.column(c) for c in ATTRS})
    assert isinstance(clause.type, sa.Boolean)



# ---------------------------------------------------------------------------------------------
# fragments classic (MySQL) code writes: the same rows on every backend (issue 15)
# ---------------------------------------------------------------------------------------------

CLASSIC: list[tuple[str, list[int]]] = [
    # an integer attribute as a truth value (b is 0 in row 3; x is NULL in row 5)
    ("b", [1, 2, 4, 5]),
    ("not b", [3]),
    ("NOT (b)", [3]),
    ("b and x > 1", [2, 4]),
    ("x > 3 or not b", [3, 4]),
    ("x", [1, 2, 3, 4]),
    ("b % 2", [1, 4, 5]),
    ("if(b, 1, 0) = 0", [3]),
    ("CASE WHEN b THEN 0 ELSE 1 END = 1", [3]),
    ("y", [1, 2, 3]),
    # interval arithmetic relative to today (every row lies in the past)
    ("session_date > curdate() - interval 30 day", []),
    ("session_date > curdate() - interval 3000 day", [1, 2, 3, 4, 5]),
    ("ts < now() - interval 1 hour", [1, 2, 3, 4, 5]),
    ("ts > now() - interval 100000 hour", [1, 2, 3, 4, 5]),
    ("date_sub(curdate(), interval 1 day) < curdate()", [1, 2, 3, 4, 5]),
    # date +/- interval, date_add, date_sub
    ('session_date + interval 1 day = "2024-01-01"', [1]),
    ('interval 1 day + session_date = "2024-01-01"', [1]),
    ('session_date - interval 1 year < "2023-01-01"', [1]),
    ('date_sub(session_date, interval 1 month) < "2024-01-01"', [1, 2]),
    ('date_add(session_date, interval 2 week) > "2024-03-01"', [4, 5]),
    ('date_add(ts, interval 2 hour) >= "2024-01-01"', [2, 3, 4, 5]),
    ('date_add(session_date, interval 2 month) = "2024-02-29"', [1]),
    ('date_add(session_date, interval 1 quarter) = "2024-03-31"', [1]),
    ('date_sub(session_date, interval 1 year) = "2023-02-15"', [3]),
    ('date_add(ts, interval 1 month) = "2024-02-29 23:59:59"', []),
    ('date(date_add(ts, interval 2 month)) = "2024-02-29"', [1]),
    ('date_add(ts, interval -1 month) < "2024-01-01"', [1, 2]),
    ('ts - interval 30 minute < "2024-01-01"', [1, 2]),
    ('ts + interval x day > "2024-03-02"', [4]),
    ('date_add("2024-01-01", interval a day) <= "2024-01-12"', [1, 2]),
    ('date(date_add(ts, interval 14 hour)) = "2024-01-01"', [1, 2]),
    # timestampdiff(unit, start, end): whole units, truncated
    ("timestampdiff(hour, session_date, ts) >= 12", [3, 4]),
    ("timestampdiff(minute, session_date, ts) = 615", [1]),
    ("timestampdiff(second, ts, session_date) = -86399", [3]),
    ('timestampdiff(day, session_date, "2024-01-31") = 30', [2]),
    ('timestampdiff(month, session_date, "2024-03-01") = 2', [1, 2]),
    ('timestampdiff(year, session_date, "2025-01-01") >= 1', [1, 2]),
    ('timestampdiff(week, "2024-01-01", session_date) = 6', [3]),
    # to_days
    ("to_days(session_date) = 739251", [2]),
    ("to_days(ts) - to_days(session_date) = 0", [1, 2, 3, 4, 5]),
    ("to_days(session_date) > to_days('2024-02-01')", [3, 4, 5]),
    ("to_days(session_date) - to_days('2023-12-01') = 30", [1]),
]


@pytest.mark.parametrize(("text", "expected"), CLASSIC, ids=[t for t, _ in CLASSIC])
def test_classic_restriction(db: DB, text: str, expected: list[int]) -> None:
    assert db.ids(text, condition=True) == expected


CLASSIC_VALUES: list[tuple[str, list[Any]]] = [
    ("to_days(session_date)", [739250, 739251, 739296, 739311, 739797]),
    ("timestampdiff(hour, session_date, ts)", [10, 0, 23, 12, 6]),
    ("timestampdiff(month, session_date, '2024-06-30')", [5, 5, 4, 3, -12]),
]


@pytest.mark.parametrize(("text", "expected"), CLASSIC_VALUES,
                         ids=[t for t, _ in CLASSIC_VALUES])
def test_classic_value(db: DB, text: str, expected: list[Any]) -> None:
    assert [None if v is None else int(v) for v in db.values(text)] == expected


def test_min_max_keep_the_attribute_type(db: DB) -> None:
    """min/max of a datetime or date come back as datetime/date (SQLite stores text)."""
    assert db.grouped("max(ts)") == [dt.datetime(2024, 1, 1), dt.datetime(2024, 3, 1, 12),
                                     dt.datetime(2025, 6, 30, 6, 7, 8)]
    assert db.grouped("min(session_date)") == [dt.date(2023, 12, 31), dt.date(2024, 2, 15),
                                               dt.date(2025, 6, 30)]


def test_a_process_loads_only_the_dialects_it_uses() -> None:
    """Each dialect module loads a sqlglot dialect (tens of milliseconds on a process's first
    fragment): a SQLite process needs the reader's (MySQL's grammar) and SQLite's, not
    PostgreSQL's; and every backend still finds its own compiler."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from datajoint_sa.sqlexpr import parse_fragment, render\n"
        "from datajoint_sa.backends import get_backend\n"
        "f = parse_fragment('x < 3', ['x'], condition=True)\n"
        "f.sql_template(get_backend('sqlite'))\n"
        "print(sorted(m for m in sys.modules if m.startswith('sqlglot.dialects.')))\n"
        "names = {b: render.compiler_for(get_backend(b).sqlglot_dialect).name\n"
        "         for b in ('sqlite', 'postgresql', 'mysql')}\n"
        "print(names, render.compiler_for('nosuch').name == '')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    loaded, found = done.stdout.splitlines()
    assert loaded == str(["sqlglot.dialects.dialect", "sqlglot.dialects.mysql",
                          "sqlglot.dialects.sqlite"])
    assert found == str({"sqlite": "sqlite", "postgresql": "postgres", "mysql": "mysql"}) \
        + " True"
