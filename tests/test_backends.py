"""Each `Backend` hook, called directly on its own backend (as Alembic's per-dialect tests and
SQLAlchemy's test/dialect/ do): what the rest of the package relies on every backend to do."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

import datajoint_sa as dj
from datajoint_sa.backends import BACKENDS, Backend, get_backend
from datajoint_sa.errors import (
    DataJointError,
    DuplicateError,
    IntegrityError,
    MissingAttributeError,
    MissingTableError,
    QueryError,
    UnknownAttributeError,
)

from .conftest import unique_name

#: MySQL keeps unsigned integers, enums and lengths natively; PostgreSQL keeps lengths;
#: SQLite keeps none of them, so CHECK constraints enforce them
CHECKED = {
    "sqlite": {"uint8": True, "enum": True, "varchar": True, "int64": True},
    "postgresql": {"uint8": True, "enum": True, "varchar": False, "char": False},
    "mysql": {"uint8": False, "enum": False, "varchar": False, "int64": False},
}


@pytest.fixture
def impl(connection: dj.Connection) -> Backend:
    return connection.backend_impl


@pytest.fixture
def own_schema(connection: dj.Connection, impl: Backend) -> Iterator[str]:
    name = unique_name("hook")
    with connection.session(write=True) as sa_conn:
        impl.create_schema(sa_conn, name)
    yield name
    with connection.session(write=True) as sa_conn:
        if impl.schema_exists(sa_conn, name):
            impl.drop_schema(sa_conn, name)


def test_backend_names(backend: str, impl: Backend) -> None:
    assert impl.name == backend and get_backend(backend) is impl
    assert get_backend("mariadb") is BACKENDS["mysql"]
    with pytest.raises(DataJointError, match="Unsupported"):
        get_backend("oracle")
    assert impl.sqlglot_dialect


def test_identity_round_trip(impl: Backend) -> None:
    for schema, table in [("lab", "subject"), ("lab", "_session"), ("a_b", "__c__part")]:
        assert impl.split_identity(*impl.table_identity(schema, table)) == (schema, table)


def test_check_identifier(impl: Backend) -> None:
    limit = impl.max_identifier_length
    impl.check_identifier("a" * limit, "table")
    with pytest.raises(DataJointError, match=f"at most {limit}"):
        impl.check_identifier("a" * (limit + 1), "table")


def test_schema_hooks(connection: dj.Connection, impl: Backend, own_schema: str) -> None:
    with connection.session(write=True) as sa_conn:
        assert impl.schema_exists(sa_conn, own_schema)
        assert own_schema in impl.list_schemas(sa_conn)
        assert impl.list_tables(sa_conn, own_schema) == []
        sa_schema, sa_name = impl.table_identity(own_schema, "thing")
        table = sa.Table(sa_name, sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True,
                                                           autoincrement=False),
                         sa.Column("word", sa.String(8), comment="a word"),
                         schema=sa_schema, comment="things")
        table.create(sa_conn)
        impl.after_create(sa_conn, table)
        assert impl.list_tables(sa_conn, own_schema) == ["thing"]
        found = impl.read_comments(sa_conn, own_schema, "thing")
        if impl.native_comments:  # the server keeps them: read through SQLAlchemy
            inspector = sa.inspect(sa_conn)
            assert found is None
            found = (inspector.get_table_comment(sa_name, schema=sa_schema)["text"],
                     {c["name"]: c.get("comment") for c in
                      inspector.get_columns(sa_name, schema=sa_schema)})
        assert found is not None
        assert found[0] == "things" and found[1].get("word") == "a word"
        impl.before_drop(sa_conn, table)
        table.drop(sa_conn)
        assert impl.list_tables(sa_conn, own_schema) == []
        impl.drop_schema(sa_conn, own_schema)
        assert not impl.schema_exists(sa_conn, own_schema)


def test_needs_check_matrix(backend: str, impl: Backend) -> None:
    for category, checked in CHECKED[backend].items():
        assert impl.needs_check(category) is checked, category


def test_type_hooks(impl: Backend) -> None:
    for category in ("uint8", "int64", "float32", "bool", "uuid", "json", "bytes"):
        variant = impl.type_variant(category, ())
        assert variant is None or isinstance(variant, sa.types.TypeEngine)
    auto = impl.autoincrement_type()
    assert auto is None or isinstance(auto, sa.types.TypeEngine)
    assert isinstance(impl.table_options(autoincrement=True), dict)
    assert isinstance(impl.result_options([sa.LargeBinary()]), dict)
    assert isinstance(impl.engine_options(sa.make_url(f"{impl.name}://")), dict)


def test_sessions(connection: dj.Connection, impl: Backend) -> None:
    with connection.session(write=False) as sa_conn:
        own = impl.session_id(sa_conn)
        live = impl.live_session_ids(sa_conn)
    assert isinstance(own, int)
    assert live is None or own in live
    with connection.session(write=True) as sa_conn:
        impl.relax_durability(sa_conn)
    with impl.writer_turn(connection.url):
        pass


def _error(connection: dj.Connection, sql: str, table: sa.Table | None = None
           ) -> BaseException:
    try:
        with connection.session(write=True) as sa_conn:
            sa_conn.execute(sa.text(sql))
    except sa.exc.DBAPIError as error:
        return error
    raise AssertionError(f"no error from {sql}")


def test_error_kinds(schema: dj.Schema, impl: Backend) -> None:
    """Real driver errors of each kind, classified by the backend's own table."""
    @schema
    class Parent(dj.Manual):
        definition = """
        pid : int32
        """

    @schema
    class Child(dj.Manual):
        definition = """
        -> Parent
        cid : int32
        ---
        word : varchar(8)
        """

    Parent.insert1((1,))
    Child.insert1((1, 1, "a"))
    connection = schema.connection
    preparer = connection.engine.dialect.identifier_preparer
    parent = preparer.format_table(Parent._sa_table)
    child = preparer.format_table(Child._sa_table)
    cases = {
        f"INSERT INTO {parent} (pid) VALUES (1)": DuplicateError,
        f"INSERT INTO {child} (pid, cid, word) VALUES (9, 1, 'x')": IntegrityError,
        f"INSERT INTO {child} (pid, cid, word) VALUES (1, 2, NULL)": MissingAttributeError,
        f"SELECT nope FROM {parent}": UnknownAttributeError,
        f"SELECT * FROM {unique_name('gone')}": MissingTableError,
        "SELECT no_such_function_xyz(1)": QueryError,
    }
    for sql, kind in cases.items():
        error = _error(connection, sql)
        classified = impl.classify_error(error, "T")
        assert isinstance(classified, kind), (sql, classified, error)
        assert "in T" in str(classified)
        assert not impl.is_transient(error)
    assert impl.classify_error(ValueError("not the driver's")) is None


def test_rename_and_charset_hooks(schema: dj.Schema, connection: dj.Connection,
                                  impl: Backend, backend: str) -> None:
    """`rename_constraint` renames an index in place where the backend can (PostgreSQL,
    MySQL) and says False where it cannot (SQLite: the caller re-creates it); the charset
    hooks exist on MySQL only."""
    item = type("Item", (dj.Manual,), {"definition": "item : int16\n---\nlabel : varchar(8)\n"
                                                     "index(label)\n"})
    schema(item)
    sa_schema, sa_name = impl.table_identity(schema.database, "item")
    old, new = f"ix_{sa_name}_label", f"ix_{sa_name}_renamed"
    with connection.session(write=True) as conn:
        done = impl.rename_constraint(conn, sa_schema, sa_name, "index", old, new)
    with connection.session(write=False) as conn:
        names = {i["name"] for i in sa.inspect(conn).get_indexes(sa_name, schema=sa_schema)}
        charsets = impl.charsets(conn, schema.database)
    assert done == (backend != "sqlite")
    assert names == ({new} if done else {old})
    if backend == "mysql":
        assert charsets in (("utf8mb4", "utf8mb4_nopad_bin"), ("utf8mb4", "utf8mb4_0900_bin"))
        with connection.session(write=False) as conn:
            assert impl.charset_problem(conn, schema.database, "utf8mb4", None) is None
    else:
        assert charsets is None
        with connection.session(write=False) as conn, pytest.raises(DataJointError):
            impl.charset_problem(conn, schema.database, "utf8mb4", None)


def test_populate_speed_hooks(connection: dj.Connection, impl: Backend,
                              own_schema: str) -> None:
    """create_table (one script on PostgreSQL, with indexes and comments that hold % and
    quotes), referencing_schemas and drops_tables_with_schema (Schema.drop in one
    statement), defer/restore_durability (populate's loop)."""
    with connection.session(write=True) as sa_conn:
        sa_schema, sa_name = impl.table_identity(own_schema, "thing")
        table = sa.Table(sa_name, sa.MetaData(),
                         sa.Column("id", sa.Integer, primary_key=True, autoincrement=False,
                                   comment="50% of: it's %(x)s"),
                         sa.Column("word", sa.String(8), comment="a word"),
                         sa.Index(f"ix_{sa_name}_word", "word", unique=True),
                         schema=sa_schema, comment="things: 'q' %s")
        # rows sent with the CREATE (in its script on PostgreSQL), literal % and quotes kept
        target = sa_conn.dialect.identifier_preparer.format_table(table)
        row = f"INSERT INTO {target} (id, word) VALUES (9, '5% ''x''')"
        unsent = impl.create_table(sa_conn, table, then=[row])
        for text in unsent:
            sa_conn.exec_driver_sql(text, execution_options={"no_parameters": True})
        impl.after_create(sa_conn, table)
        assert impl.list_tables(sa_conn, own_schema) == ["thing"]
        assert sa_conn.execute(sa.select(table.c.word)).scalar_one() == "5% 'x'"
        sa_conn.execute(table.insert(), [{"id": 1, "word": "a"}])
        found = impl.read_comments(sa_conn, own_schema, "thing")
        if found is None:  # comments native to the server
            inspector = sa.inspect(sa_conn)
            found = (inspector.get_table_comment(sa_name, schema=sa_schema)["text"],
                     {c["name"]: c.get("comment") for c in
                      inspector.get_columns(sa_name, schema=sa_schema)})
            assert any(i["unique"] and i["column_names"] == ["word"]
                       for i in inspector.get_indexes(sa_name, schema=sa_schema))
        assert found[0] == "things: 'q' %s"
        assert found[1]["id"] == "50% of: it's %(x)s" and found[1]["word"] == "a word"
    with pytest.raises(sa.exc.IntegrityError):  # the unique index is there
        with connection.session(write=True) as sa_conn:
            sa_conn.execute(table.insert(), [{"id": 2, "word": "a"}])
    with connection.session(write=False) as sa_conn:
        referring = impl.referencing_schemas(sa_conn, own_schema)
    assert referring is None or referring == set()
    assert referring is not None or not impl.drops_tables_with_schema
    with connection.session(write=True) as sa_conn:
        previous = impl.defer_durability(sa_conn)
    with connection.session(write=True) as sa_conn:
        impl.restore_durability(sa_conn, previous)
    if previous is not None:  # the setting is back as it was
        assert impl.defer_durability(connection.sa) == previous
        impl.restore_durability(connection.sa, previous)
        connection.sa.commit()
    if impl.drops_tables_with_schema:
        with connection.session(write=True) as sa_conn:
            impl.drop_schema(sa_conn, own_schema)
            assert not impl.schema_exists(sa_conn, own_schema)
