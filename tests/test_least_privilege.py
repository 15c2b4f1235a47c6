"""The pipeline as a lab's database user runs it: no superuser, no global privileges.

The rest of the suite connects as the servers' superusers. Here a fixture uses those admin
URLs to create a user as docs/backends.md tells admins to: on PostgreSQL a role with only
`GRANT CREATE, CONNECT ON DATABASE`; on MySQL/MariaDB a user with only
`GRANT ALL PRIVILEGES ON `<user>\\_%`.*` (no PROCESS, no access to `mysql.*`), whose schemas
are named `<user>_...`. Each test then works as that user through the paths that read
privileged catalogs or other sessions: foreign keys into another schema, delete and its
cascade (MySQL's InnoDB dictionary needs PROCESS: the standard view is read instead),
dropping schemas, job reservations of a session that is gone (PostgreSQL's
pg_stat_activity, MySQL's PROCESSLIST), an ALTER through Alembic, PostgreSQL's COPY and
ADBC reads. Afterwards the user's schemas and the user are dropped.

SQLite has no users or privileges (whoever can write the file can do everything), so the
module runs on the two server backends only.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa

import datajoint_sa as dj
from datajoint_sa.backends import adbc
from datajoint_sa.errors import AccessError, DataJointError
from datajoint_sa.insert import STREAM_PIECE_ROWS

from .conftest import BACKENDS, backend_url

SERVER_BACKENDS = [b for b in ("postgresql", "mysql") if b in BACKENDS]


@dataclass
class Lab:
    """A least-privileged user: its URL, a connection as it, and its schemas."""

    backend: str
    user: str
    url: sa.URL
    connection: dj.Connection
    admin: sa.Engine
    schemas: list[dj.Schema] = field(default_factory=list)

    def schema(self) -> dj.Schema:
        """A new schema of the user, named as its grant allows (`<user>_...`)."""
        schema = dj.Schema(f"{self.user}_{uuid.uuid4().hex[:8]}", connection=self.connection)
        self.schemas.append(schema)
        return schema


def _admin(url: str) -> sa.Engine:
    return sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


def _run(conn: sa.Connection, sql: str) -> Any:
    """One admin statement as written (PyMySQL would read its `%` as a placeholder)."""
    return conn.exec_driver_sql(sql, execution_options={"no_parameters": True})


#: PostgreSQL keeps a database's grants in one catalog row: two sessions granting or revoking
#: on it at once fail with "tuple concurrently updated", so the suite's workers take turns
_DATABASE_GRANTS_LOCK = 0x646A7361  # an advisory-lock key of this module's own


@contextlib.contextmanager
def _database_grants(conn: sa.Connection) -> Iterator[None]:
    """One test process at a time changes the database's grants (PostgreSQL)."""
    _run(conn, f"SELECT pg_advisory_lock({_DATABASE_GRANTS_LOCK})")
    try:
        yield
    finally:
        _run(conn, f"SELECT pg_advisory_unlock({_DATABASE_GRANTS_LOCK})")


def _create_user(backend: str, admin: sa.Engine, user: str, password: str) -> sa.URL:
    url = admin.url.set(username=user, password=password)
    with admin.connect() as conn:
        if backend == "postgresql":
            database = _run(conn, "SELECT current_database()").scalar_one()
            _run(conn, f"CREATE ROLE {user} LOGIN PASSWORD '{password}'")
            with _database_grants(conn):
                _run(conn, f'GRANT CREATE, CONNECT ON DATABASE "{database}" TO {user}')
            return url
        _run(conn, f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
        _run(conn, f"GRANT ALL PRIVILEGES ON `{user}\\_%`.* TO '{user}'@'%'")
    return url._replace(database=None)  # the URL's database is not the user's to open


def _drop_user(backend: str, admin: sa.Engine, user: str) -> None:
    """The user's sessions ended, its schemas dropped, the user dropped."""
    with admin.connect() as conn:
        if backend == "postgresql":
            if not _run(conn, f"SELECT 1 FROM pg_roles WHERE rolname = '{user}'").first():
                return  # never created
            _run(conn,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE usename = '{user}' AND pid <> pg_backend_pid()")
            with _database_grants(conn):
                _run(conn, f"DROP OWNED BY {user} CASCADE")  # its schemas and grants
                _run(conn, f"DROP ROLE {user}")
            return
        for (session,) in _run(conn,
                f"SELECT ID FROM information_schema.PROCESSLIST WHERE USER = '{user}'").all():
            with contextlib.suppress(sa.exc.DBAPIError):  # it may have ended meanwhile
                _run(conn, f"KILL {int(session)}")
        schemas = _run(conn,
            "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA "
            f"WHERE SCHEMA_NAME LIKE '{user}\\\\_%'").scalars().all()
        _run(conn, "SET FOREIGN_KEY_CHECKS = 0")  # in any order
        for schema in schemas:
            _run(conn, f"DROP DATABASE `{schema}`")
        _run(conn, f"DROP USER IF EXISTS '{user}'@'%'")


@contextlib.contextmanager
def _least_privileged(backend: str, admin: sa.Engine) -> Iterator[Lab]:
    """A new user as docs/backends.md has admins create them, a connection as it; then the
    user's schemas and the user dropped."""
    user = f"djsa_lab_{uuid.uuid4().hex[:10]}"
    try:
        url = _create_user(backend, admin, user, uuid.uuid4().hex)
        connection = dj.Connection(url)
        try:
            yield Lab(backend, user, url, connection, admin)
        finally:
            connection.close()
    finally:
        _drop_user(backend, admin, user)


@pytest.fixture(params=SERVER_BACKENDS)
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[Lab]:
    """A connection as a new least-privileged user (made with the suite's admin URL)."""
    backend = str(request.param)
    admin = _admin(backend_url(backend, tmp_path_factory))
    try:
        with _least_privileged(backend, admin) as lab:
            yield lab
    finally:
        admin.dispose()


@pytest.fixture
def colleague(lab: Lab) -> Iterator[Lab]:
    """A second user of the same kind on the same server (dropped before `lab`)."""
    with _least_privileged(lab.backend, lab.admin) as colleague:
        yield colleague


def _animals(schema: dj.Schema) -> Any:
    @schema
    class Animal(dj.Manual):
        definition = """
        animal : int32
        ---
        name = "" : varchar(16)
        """

    Animal.insert([(1, "ada"), (2, "bo"), (3, "cy")])
    return Animal


def _tags(schema: dj.Schema, Animal: Any) -> Any:
    @schema
    class Tag(dj.Manual):
        definition = """
        -> Animal
        tag : varchar(8)
        """

    Tag.insert([(2, "x"), (3, "y")])
    return Tag


def _ask(connection: dj.Connection, ask: Callable[[Any, Any], Any]) -> Any:
    """What the backend reads in the catalog as the connection's user: ask(backend, conn)."""
    with connection.session(write=False) as sa_conn:
        return ask(connection.backend_impl, sa_conn)


# ------------------------------------------------------------------------------ the user

def test_the_lab_user_has_no_privilege_beyond_its_schemas(lab: Lab) -> None:
    """The fixture's user is what the other tests need it to be: it cannot create a role,
    nor (MySQL) a schema outside its names or read InnoDB's foreign-key dictionary
    (PROCESS), so delete and drop take the standard view. A schema it may not create
    raises an AccessError naming the privilege."""
    with pytest.raises(AccessError):
        lab.connection.query(sa.text(f"CREATE ROLE {lab.user}_other"))
    if lab.backend == "mysql":
        with pytest.raises(AccessError, match="PROCESS"):
            lab.connection.query(sa.text(
                "SELECT 1 FROM information_schema.INNODB_SYS_FOREIGN LIMIT 1"))
        name = f"djtest_{uuid.uuid4().hex[:8]}"  # not the user's prefix
    else:
        with lab.admin.connect() as conn:
            with _database_grants(conn):
                _run(conn, f'REVOKE CREATE ON DATABASE "{lab.url.database}" FROM {lab.user}')
        name = f"{lab.user}_{uuid.uuid4().hex[:8]}"
    with pytest.raises(AccessError, match=rf"Cannot create schema '{name}': .* CREATE on"):
        dj.Schema(name, connection=lab.connection)


# ------------------------------------------------------------------- keys and their catalog

def test_foreign_key_into_another_schema_of_the_same_user(lab: Lab) -> None:
    upstream, downstream, bystander = lab.schema(), lab.schema(), lab.schema()
    Animal = _animals(upstream)
    Tag = _tags(downstream, Animal)
    assert Animal.full_table_name in Tag.parents()
    assert sorted((Animal * Tag).fetch("name", "tag", as_dict=True),
                  key=lambda r: r["tag"]) == [{"name": "bo", "tag": "x"},
                                              {"name": "cy", "tag": "y"}]
    with pytest.raises(DataJointError):
        Tag.insert1((9, "z"))  # no such animal
    assert _ask(lab.connection, lambda b, c: b.referencing_schemas(c, upstream.database)) == {
        downstream.database}
    assert _ask(lab.connection, lambda b, c: b.referencing_schemas(c, downstream.database)) == set()
    assert _ask(lab.connection, lambda b, c: b.referencing_schemas(c, bystander.database)) == set()
    assert _ask(lab.connection, lambda b, c: b.is_referenced(c, upstream.database, "animal"))
    assert not _ask(lab.connection, lambda b, c: b.is_referenced(c, downstream.database, "tag"))


def test_delete_rows_referenced_or_not(lab: Lab) -> None:
    Animal = _animals(lab.schema())
    Tag = _tags(lab.schema(), Animal)
    assert (Animal & {"animal": 1}).delete(safemode=False) == 1  # nothing refers to it
    with pytest.raises(DataJointError):
        (Animal & {"animal": 2}).delete_quick()  # a tag refers to it: no cascade here
    assert sorted(Animal.fetch("animal")) == [2, 3]
    (Animal & {"animal": 2}).delete(safemode=False)  # the cascade takes its tag
    assert sorted(Animal.fetch("animal")) == [3] and Tag.fetch("tag").tolist() == ["y"]
    assert (Tag & {"animal": 3}).delete(safemode=False) == 1  # a table nothing refers to


def test_a_cascading_key_in_another_schema_is_seen_before_deleting(
        lab: Lab, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A table of the user's other schema refers to Animal with ON DELETE CASCADE: only the
    catalog tells that a plain DELETE would take its rows unseen; the cascade previews them
    and declining keeps them."""
    Animal = _animals(lab.schema())
    other = lab.schema()
    sa_schema, sa_name = lab.connection.backend_impl.table_identity(other.database, "sighting")
    sighting = sa.Table(
        sa_name, sa.MetaData(), sa.Column("sighting", sa.Integer, primary_key=True),
        sa.Column("animal", sa.Integer, nullable=False),
        sa.ForeignKeyConstraint(["animal"], [Animal._sa_table.c.animal], ondelete="CASCADE"),
        schema=sa_schema)
    with lab.connection.transaction:
        sighting.create(lab.connection.sa)
        lab.connection.execute(sa.insert(sighting), [{"sighting": 1, "animal": 1}])
    monkeypatch.setattr("builtins.input", lambda prompt="": "no")
    assert Animal.delete(safemode=True) == 0
    shown = capsys.readouterr().out
    assert "sighting" in shown, shown
    count = sa.select(sa.func.count()).select_from(sighting)
    assert (len(Animal), lab.connection.query(count)[0][0]) == (3, 1)


def test_a_colleagues_key_into_the_users_table(lab: Lab, colleague: Lab) -> None:
    """Another user's table refers to one of this user's. MySQL's standard view shows a
    user only the keys of tables it holds privileges on, so nothing tells of it there;
    PostgreSQL's catalog does, and the cascade then needs the privilege to delete from the
    colleague's table. Either way the delete of a referred-to row and the drop of the
    schema are refused, as DataJointErrors, and change nothing."""
    schema = lab.schema()
    Animal = _animals(schema)
    if lab.backend == "mysql":
        with lab.admin.connect() as conn:
            _run(conn, f"GRANT SELECT, REFERENCES ON `{schema.database}`.* "
                       f"TO '{colleague.user}'@'%'")
    else:
        lab.connection.query(sa.text(f'GRANT USAGE ON SCHEMA "{schema.database}" '
                                     f"TO {colleague.user}"))
        lab.connection.query(sa.text(f'GRANT REFERENCES ON "{schema.database}".animal '
                                     f"TO {colleague.user}"))
    theirs = colleague.schema()
    sa_schema, sa_name = colleague.connection.backend_impl.table_identity(
        theirs.database, "sighting")
    sighting = sa.Table(
        sa_name, sa.MetaData(), sa.Column("animal", sa.Integer, primary_key=True),
        sa.ForeignKeyConstraint(["animal"], [Animal._sa_table.c.animal]), schema=sa_schema)
    with colleague.connection.transaction:
        sighting.create(colleague.connection.sa)
        colleague.connection.execute(sa.insert(sighting), [{"animal": 1}])
    if lab.backend == "mysql":  # the key is not shown: a plain DELETE, the server's check
        assert (Animal & {"animal": 2}).delete(safemode=False) == 1
    else:  # the cascade's DELETE from the colleague's table is refused, naming it
        with pytest.raises(AccessError, match=theirs.database):
            (Animal & {"animal": 2}).delete(safemode=False)
    with pytest.raises(DataJointError):
        (Animal & {"animal": 1}).delete(safemode=False)
    with pytest.raises(DataJointError):
        schema.drop(force=True)
    assert schema.exists and schema.list_tables() == ["animal"]
    assert sorted(Animal.fetch("animal")) == ([1, 3] if lab.backend == "mysql" else [1, 2, 3])


def test_cascade_delete_through_three_schemas(lab: Lab) -> None:
    upstream, middle, downstream = lab.schema(), lab.schema(), lab.schema()
    Animal = _animals(upstream)
    Tag = _tags(middle, Animal)

    @downstream
    class Seen(dj.Manual):
        definition = """
        -> Tag
        day : int16
        """

    Seen.insert([(2, "x", 1), (2, "x", 2), (3, "y", 1)])
    (Animal & {"animal": 2}).delete(safemode=False)
    assert (sorted(Animal.fetch("animal")), Tag.fetch("animal").tolist(),
            Seen.fetch("day").tolist()) == ([1, 3], [3], [1])


def test_drop_schemas_referenced_or_not(lab: Lab) -> None:
    upstream, downstream, bystander = lab.schema(), lab.schema(), lab.schema()
    Animal = _animals(upstream)
    _tags(downstream, Animal)

    @downstream
    class Note(dj.Manual):
        definition = """
        note : int32
        """

    @bystander
    class Other(dj.Manual):
        definition = """
        other : int32
        """

    Note.insert1((1,))
    bystander.drop(force=True)  # nothing refers to it: dropped alone
    assert not bystander.exists
    upstream.drop(force=True)  # the tags refer to it: they go first
    assert not upstream.exists
    assert downstream.list_tables() == ["note"] and len(Note) == 1
    downstream.drop(force=True)
    assert not downstream.exists
    assert not {s.database for s in lab.schemas} & set(dj.list_schemas(lab.connection))


# ------------------------------------------------------------------------------ jobs

def _squares(schema: dj.Schema) -> tuple[Any, Any]:
    @schema
    class Item(dj.Manual):
        definition = """
        item : int32
        """

    @schema
    class Square(dj.Computed):
        definition = """
        -> Item
        ---
        square : int64
        """

        def make(self, key: dict[str, Any]) -> None:
            self.insert1(dict(key, square=key["item"] ** 2))

    Item.insert([(i,) for i in range(3)])
    return Item, Square


def _wait_until_ended(connection: dj.Connection, session: int) -> None:
    """Until the server no longer lists `session` (a closed session ends asynchronously)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        live = _ask(connection, lambda b, c: b.live_session_ids(c))
        if live is None or session not in live:
            return
        time.sleep(0.05)
    raise AssertionError(f"session {session} still listed after 30 s")


def test_populate_recovers_the_reservation_of_a_session_that_is_gone(lab: Lab) -> None:
    """A worker reserves a key and its session ends (in this process, so its pid lives on
    and only the session tells): the reservation stays taken until `clear_stale` reads the
    server's live sessions (pg_stat_activity; PROCESSLIST lists a user without PROCESS its
    own sessions, and only the user's own reservations are judged by session)."""
    schema = lab.schema()
    _, Square = _squares(schema)
    worker = dj.Connection(lab.url)
    try:
        assert dj.Schema(schema.database, connection=worker).jobs.reserve(
            Square.table_name, {"item": 0})
    finally:
        worker.close()
    jobs = schema.jobs
    gone = int((jobs & {"status": "reserved"}).fetch1("connection_id"))
    _wait_until_ended(lab.connection, gone)
    assert Square.populate(reserve_jobs=True)["success_count"] == 2  # item 0 is taken
    assert jobs.reserve(Square.table_name, {"item": 7})  # ours: its session is alive
    assert jobs.clear_stale() == 1
    assert [k["item"] for k in jobs.fetch("key")] == [7]
    assert Square.populate(reserve_jobs=True)["success_count"] == 1
    assert sorted(Square.fetch("square")) == [0, 1, 4]


# ------------------------------------------------------------------- alter, load, read

def test_alter_adds_a_column_to_a_table_another_schema_refers_to(lab: Lab) -> None:
    Animal = _animals(lab.schema())
    Tag = _tags(lab.schema(), Animal)
    Animal.definition = Animal.definition + "weight = null : float64\n"
    done = Animal.alter(prompt=False)
    assert any("add attribute" in d and "weight" in d for d in done), done
    assert Animal.heading.names == ["animal", "name", "weight"]
    assert sorted(Animal.fetch("name")) == ["ada", "bo", "cy"]
    with pytest.raises(DataJointError):
        Tag.insert1((9, "z"))  # the key into the altered table is still enforced
    assert Animal.alter(prompt=False) == []


def test_large_insert(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """At least two pieces of rows: PostgreSQL streams them into one COPY."""
    @lab.schema()
    class Reading(dj.Manual):
        definition = """
        reading : int32
        ---
        value : float64
        label : varchar(16)
        """

    backend = type(lab.connection.backend_impl)
    pieces: list[int] = []
    original = backend.insert_pieces

    def spy(self: Any, conn: Any, table: Any, columns: Any, stream: Any) -> Any:
        def counted() -> Iterator[Any]:
            for piece in stream:
                pieces.append(len(piece))
                yield piece
        return original(self, conn, table, columns, counted())

    monkeypatch.setattr(backend, "insert_pieces", spy)
    rows = 2 * STREAM_PIECE_ROWS + 17
    Reading.insert([(i, i / 2, f"r{i}") for i in range(rows)])
    assert len(Reading) == rows
    assert (Reading & {"reading": rows - 1}).fetch1("label") == f"r{rows - 1}"
    if lab.backend == "postgresql":
        assert sum(pieces) == rows and len(pieces) >= 2, pieces
    else:
        assert pieces == []  # MySQL writes multi-row INSERTs


def test_fetch_arrow(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL reads Arrow through ADBC, a second session as the same user."""
    Animal = _animals(lab.schema())
    reads: list[bool] = []
    original = adbc.read

    def spy(*args: Any) -> Any:
        table = original(*args)
        reads.append(table is not None)
        return table

    monkeypatch.setattr(adbc, "read", spy)
    table = Animal.fetch(format="arrow", order_by="animal")
    assert table.column("name").to_pylist() == ["ada", "bo", "cy"]
    if lab.backend == "postgresql" and _have_adbc():
        assert reads == [True]
    else:
        assert reads == []


def _have_adbc() -> bool:
    import importlib.util

    return importlib.util.find_spec("adbc_driver_postgresql") is not None
