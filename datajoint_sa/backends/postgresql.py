"""PostgreSQL through psycopg 3: schemas are schemas; no unsigned integers, no native enum use."""

from __future__ import annotations

import importlib.util
import itertools
import json
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection as SAConnection

from ..errors import DataJointError
from . import adbc, pg_binary
from .base import Backend, _insert_sql, create_statements, with_on_conflict
from .base import values_sql as _values_sql
from .rows import arrow_batch, flat_values, reordered

_SQLSTATE_KINDS = {
    "23505": "duplicate",
    "23503": "foreign_key",
    "23502": "not_null",
    "23514": "check",
    "22003": "check",  # numeric value out of range
    "22001": "data",  # string too long
    "22P02": "data",  # invalid text representation
    "22007": "data",  # invalid datetime format
    "22008": "data",  # datetime field overflow
    "42501": "access",
    "42703": "unknown_column",
    "42P01": "missing_table",
    "3F000": "missing_table",  # the schema itself is missing
    "42883": "unknown_function",
    "57P01": "lost",  # admin shutdown: pg_terminate_backend, a server restart
    "57P02": "lost",
    "57P03": "lost",
}
#: psycopg.pq.Format.BINARY (not imported: the backend loads without psycopg installed)
BINARY = 1
#: below this many rows one multi-row INSERT beats setting up a COPY
COPY_MIN_ROWS = 200
#: bind parameters of one statement (the protocol counts them in 16 bits)
MAX_PARAMETERS = 65535


def _advance_sequence(conn: SAConnection, table: sa.Table, columns: Sequence[str]) -> None:
    """After explicit values went into an auto-increment column, move its sequence past
    them (never back), so later generated keys do not collide: MySQL and SQLite behave
    this way by themselves."""
    column = table.autoincrement_column
    if column is None or column.name not in columns:
        return
    sequence = sa.func.pg_get_serial_sequence(
        conn.dialect.identifier_preparer.format_table(table), column.name)
    highest = sa.select(sa.func.max(column)).scalar_subquery()
    used = sa.func.coalesce(sa.func.pg_sequence_last_value(sa.cast(sequence, pg.REGCLASS)), 0)
    conn.execute(sa.select(sa.func.setval(sequence, highest)).where(highest > used))


#: a row whose binary values pass this size goes by executemany: text-format COPY would
#: hex-encode every byte in Python, where executemany binds bytea in binary (4x faster)
LARGE_BINARY = 64 * 1024


def _binary_size(value: Any) -> int:
    value = getattr(value, "obj", value)  # psycopg.Binary wraps the bound bytes
    return len(value) if isinstance(value, (bytes, bytearray, memoryview)) else 0


def _carries_large_binary(rows: Sequence[Sequence[Any]]) -> bool:
    return bool(rows) and sum(map(_binary_size, rows[0])) > LARGE_BINARY


#: where a DBAPI connection's record keeps whether its server has lz4 TOAST compression
_LZ4_INFO = "dj_toast_lz4"


def _fast_toast(conn: SAConnection) -> None:
    """Let this transaction's large values be TOAST-compressed with lz4 instead of pglz.

    A value over ~2 KB is compressed by the server before it is stored out of line. A blob
    is zlib-compressed by its codec already where that pays, so what arrives is mostly
    incompressible; pglz gives up on such data within its first KB only when that KB has no
    repeats, and a blob's header has runs of zero bytes: pglz then scans ~75% of the value
    before it gives up (~20 ms per MiB, 4x the time of storing it). lz4 fails fast on
    incompressible data and compresses the rest as well (the value reads back the same).
    SET LOCAL ends with the transaction; servers without lz4 (built without it, or older
    than 14) keep their default.
    """
    info = conn.connection.info
    if _LZ4_INFO not in info:
        info[_LZ4_INFO] = bool(conn.exec_driver_sql(
            "SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression' "
            "AND 'lz4' = ANY(enumvals)").first())
    if info[_LZ4_INFO]:
        conn.exec_driver_sql("SET LOCAL default_toast_compression = lz4")


#: rows per Arrow batch converted for a COPY (bounds the memory the values take)
CSV_ROWS = 100_000
#: rows per piece of CSV text sent: the server parses one piece while Arrow writes the next
#: (one piece of a whole batch kept the server idle until all the text was written)
CSV_PIECE_ROWS = 2_000


def _csv_type(type_: sa.types.TypeEngine[Any]) -> Any | None:
    """The Arrow type whose CSV text PostgreSQL reads back as exactly the value psycopg would
    send for a column of this type, or None (the column's rows go by write_row). Text input
    is the same function in text and CSV COPY; only the quoting differs, and Arrow quotes
    every string (so an empty string is "" and a NULL the empty field)."""
    import pyarrow as pa

    impl = getattr(type_, "impl_instance", type_)
    if isinstance(impl, sa.Boolean):
        return pa.bool_()
    if isinstance(impl, (sa.Enum, sa.types.SchemaType)):
        return None
    if isinstance(impl, sa.Integer):
        return pa.int64()
    if isinstance(impl, sa.Float):  # floats print as their shortest exact form
        return pa.float64()
    if isinstance(impl, sa.String):
        return pa.string()
    if isinstance(impl, sa.DateTime) and not impl.timezone:
        return pa.timestamp("us")
    if isinstance(impl, sa.Date):
        return pa.date32()
    return None


Pieces = Iterable[Sequence[Sequence[Any]]]


def _csv_blocks(table: sa.Table, columns: Sequence[str], first: Sequence[Sequence[Any]],
                rest: Iterator[Sequence[Sequence[Any]]]) -> Iterator[Any] | None:
    """The rows of every piece (`first`, then `rest`) as blocks of CSV, each built in C by
    Arrow (a column at a time), or None where a column's type or the first batch's values
    are not plainly Arrow's (no pyarrow, decimals, bytea, uuid, json ...: write_row then
    dumps them)."""
    if importlib.util.find_spec("pyarrow") is None:
        return None
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    types = [_csv_type(table.c[c].type) for c in columns]
    if any(t is None for t in types):
        return None
    options = pa_csv.WriteOptions(include_header=False, quoting_style="needed")

    def texts(batch: Any) -> Iterator[Any]:
        for offset in range(0, batch.num_rows, CSV_PIECE_ROWS):
            sink = pa.BufferOutputStream()
            pa_csv.write_csv(batch.slice(offset, CSV_PIECE_ROWS), sink, options)
            yield sink.getvalue()

    try:  # the values Arrow cannot take show here, before the COPY starts
        converted = arrow_batch(pa, first[:CSV_ROWS], types)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return None

    def batches(rows: Sequence[Sequence[Any]], start: int) -> Iterator[Any]:
        for offset in range(start, len(rows), CSV_ROWS):
            try:  # checked values convert; anything else fails the COPY with a clear error
                batch = arrow_batch(pa, rows[offset:offset + CSV_ROWS], types)
            except (pa.ArrowException, TypeError, ValueError, OverflowError) as error:
                raise DataJointError(f"{table.name}: a value of a bulk load cannot be "
                                     f"written for COPY ({error}); nothing was inserted"
                                     ) from error
            yield from texts(batch)

    def blocks() -> Iterator[Any]:
        yield from texts(converted)
        yield from batches(first, CSV_ROWS)
        for piece in rest:
            yield from batches(piece, 0)

    return blocks()


def _copy(conn: SAConnection, table: sa.Table, target: str, columns: Sequence[str],
          pieces: Pieces) -> None:
    """COPY the rows of every piece into `target`, as one load, through psycopg on the
    transaction's own connection: as CSV that Arrow writes where every column allows it
    (about a tenth of write_row's time per row), else row by row. A piece is sent as soon
    as the iterator gives it, so the server stores it while the caller makes the next."""
    preparer = conn.dialect.identifier_preparer
    sql = f"COPY {target} ({', '.join(preparer.quote(c) for c in columns)}) FROM STDIN"
    rest = iter(pieces)
    first = next(rest, ())
    blocks = _csv_blocks(table, columns, first, rest)
    cursor = conn.connection.cursor()
    try:
        if blocks is not None:
            with cursor.copy(sql + " WITH (FORMAT csv)") as copy:
                for data in blocks:
                    copy.write(memoryview(data))
            return
        with cursor.copy(sql) as copy:
            write = copy.write_row
            for piece in itertools.chain([first], rest):
                for row in piece:
                    write(row)
    finally:
        cursor.close()


def _insert_values(conn: SAConnection, backend: Backend, table: sa.Table,
                   columns: Sequence[str], rows: Sequence[Sequence[Any]], *, mode: str,
                   key: Sequence[str]) -> None:
    """Small batches as multi-row INSERTs: one round trip, where psycopg's executemany
    pipelines one statement per row (a populate's make inserts a few part rows per key)."""
    sql, order = _insert_sql(backend, conn.dialect, table, tuple(columns), mode, tuple(key))
    if list(order) != list(columns):
        rows = reordered(rows, [list(columns).index(name) for name in order])
    step = max(1, MAX_PARAMETERS // max(1, len(columns)))
    cursor = conn.connection.cursor()
    try:
        for start in range(0, len(rows), step):
            chunk = rows[start:start + step]
            cursor.execute(_values_sql(sql, len(chunk)), flat_values(chunk, len(columns)))
    finally:
        cursor.close()


_NUMBERED: dict[type, Any] = {}


def _numbered_dialect(kind: type) -> Any:
    """The psycopg dialect with $1 placeholders (what the ADBC driver binds)."""
    if kind not in _NUMBERED:
        _NUMBERED[kind] = kind(paramstyle="numeric_dollar")
    return _NUMBERED[kind]


#: binary COPY kinds by the server type's name (pg_binary.WIRE_DTYPES, "text")
_BINARY_KINDS = {"SMALLINT": "int2", "INTEGER": "int4", "BIGINT": "int8", "REAL": "float4",
                 "DOUBLE PRECISION": "float8", "BOOLEAN": "bool", "VARCHAR": "text",
                 "TEXT": "text"}


def _column_values(column: Any) -> list[Any]:
    """A checked column's values as Python objects (None for NULL)."""
    values: list[Any] = (column.values.to_pylist() if column.kind == "text"
                         else column.values.tolist())
    if column.kind == "float4":
        values = column.values.astype(np.float32).astype(np.float64).tolist()
    if column.nulls is not None:
        for i in np.flatnonzero(column.nulls).tolist():
            values[i] = None
    return values


_SCHEMA_EXISTS = sa.text("SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = :name")


class UInt64(sa.types.TypeDecorator[int]):
    """uint64 as NUMERIC(20): PostgreSQL has no unsigned bigint; values come back as int."""

    impl = sa.Numeric(20, 0, asdecimal=True)
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Any) -> int | None:
        return None if value is None else int(value)


def _binary_safe(type_: sa.types.TypeEngine[Any]) -> bool:
    """Whether psycopg's binary loader returns exactly what its text loader does: real
    (float32) would come back widened, enums and unknown types as raw bytes."""
    impl = getattr(type_, "impl_instance", type_)
    if isinstance(impl, sa.Enum):
        return False
    if isinstance(impl, sa.Float) and not isinstance(impl, sa.Numeric | sa.Double):
        return type(impl) is sa.Float and impl.precision is None  # FLOAT: double precision
    return isinstance(impl, sa.LargeBinary | sa.Integer | sa.Double | sa.Numeric | sa.String
                      | sa.Date | sa.DateTime | sa.Boolean | sa.Uuid)


def _binary_results(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                    executemany: bool) -> None:
    if context is not None and context.execution_options.get("dj_binary_results"):
        cursor.format = BINARY


class PostgreSQLBackend(Backend):
    name = "postgresql"
    sqlglot_dialect = "postgres"
    max_identifier_length = 63
    bulk_streams = True

    def install_events(self, engine: sa.Engine) -> None:
        super().install_events(engine)
        sa.event.listen(engine, "before_cursor_execute", _binary_results)

    def result_options(self, types: Sequence[sa.types.TypeEngine[Any]]) -> dict[str, Any]:
        impls = [getattr(t, "impl_instance", t) for t in types]
        if any(isinstance(t, sa.LargeBinary) for t in impls) and all(map(_binary_safe, types)):
            return {"dj_binary_results": True}
        return {}

    def read_cursor(self, dbapi_connection: Any, options: Mapping[str, Any]) -> Any:
        cursor = dbapi_connection.cursor()
        if options.get("dj_binary_results"):
            cursor.format = BINARY
        return cursor

    def read_arrow(self, url: sa.URL, select: sa.Select[Any], dialect: Any) -> Any | None:
        """Through adbc-driver-postgresql, which reads the result as binary COPY."""
        compiled = adbc.positional(select, _numbered_dialect(type(dialect)))
        if compiled is None:
            return None
        uri = url.set(drivername="postgresql").render_as_string(hide_password=False)
        return adbc.read("postgresql", uri, *compiled)

    def arrow_driver_values(self, field: Any, values: list[Any]) -> list[Any]:
        """ADBC hands numeric as text and json/jsonb as text; psycopg gives Decimal and the
        parsed value."""
        kind = (field.metadata or {}).get(b"POSTGRESQL:type", b"")
        if kind == b"numeric":
            return [None if v is None else Decimal(v) for v in values]
        if kind in (b"json", b"jsonb"):
            return [None if v is None else json.loads(v) for v in values]
        return values

    def list_schemas(self, conn: SAConnection) -> list[str]:
        names = sa.inspect(conn).get_schema_names()
        return sorted(
            n for n in names if n != "information_schema" and not n.startswith("pg_")
        )

    def schema_exists(self, conn: SAConnection, schema: str) -> bool:
        # one catalog row, not the Inspector's listing (its reflection machinery cost more
        # Python than the rest of creating a schema); the same names as list_schemas
        if schema == "information_schema" or schema.startswith("pg_"):
            return False
        return conn.execute(_SCHEMA_EXISTS, {"name": schema}).first() is not None

    def drop_schema(self, conn: SAConnection, schema: str) -> None:
        conn.execute(sa.schema.DropSchema(schema, cascade=True, if_exists=True))

    def rename_constraint(self, conn: SAConnection, sa_schema: str | None, sa_table: str,
                          kind: str, old: str, new: str) -> bool:
        # every constraint renames in place (a key's or unique constraint's index with it)
        quote = conn.dialect.identifier_preparer.quote
        owner = f"{quote(sa_schema)}." if sa_schema else ""
        if kind == "index":
            conn.execute(sa.text(f"ALTER INDEX {owner}{quote(old)} RENAME TO {quote(new)}"))
        else:
            conn.execute(sa.text(f"ALTER TABLE {owner}{quote(sa_table)} "
                                 f"RENAME CONSTRAINT {quote(old)} TO {quote(new)}"))
        return True

    drops_tables_with_schema = True
    create_schema_privilege = "CREATE on the database (GRANT CREATE ON DATABASE ...)"

    def create_table(self, conn: SAConnection, table: sa.Table, *,
                     then: Sequence[str] = ()) -> list[str]:
        """SQLAlchemy's CREATE TABLE, CREATE INDEX and COMMENT ON statements sent as one
        script: one round trip per table instead of one per index and comment."""
        statements = create_statements(conn.dialect, table)
        if statements is None:  # types, sequences or listeners: as is
            return super().create_table(conn, table, then=then)
        # compiled for a driver that formats parameters, so literal percent signs are
        # doubled; the script goes without parameters (several statements), so undo that
        script = ";\n".join(str(s.compile(dialect=conn.dialect)).strip() for s in statements)
        script = script.replace("%%", "%") + "".join(";\n" + text for text in then)
        conn.exec_driver_sql(script, execution_options={"no_parameters": True})
        return []

    def referenced_condition(self, schema: str, table: str) -> sa.ColumnElement[bool]:
        # through pg_depend's index on the referenced object, then pg_constraint's on oid:
        # pg_constraint has no index on confrelid, and a scan of it grows with every table
        # ever dropped until a vacuum (3.6 ms over 111 live rows on a server without
        # autovacuum, against 0.07 ms this way). A missing table gives NULL: no reference.
        return sa.exists(sa.select(sa.text("1")).select_from(sa.text(
            "pg_depend d JOIN pg_constraint c ON c.oid = d.objid")).where(sa.text(
                "d.refclassid = 'pg_class'::regclass AND d.classid = 'pg_constraint'::regclass "
                "AND d.refobjid = to_regclass(format('%I.%I', CAST(:dj_ref_schema AS text), "
                "CAST(:dj_ref_table AS text))) AND c.contype = 'f' AND c.confrelid = d.refobjid"
            ).bindparams(dj_ref_schema=schema, dj_ref_table=table)))

    def is_referenced(self, conn: SAConnection, schema: str, table: str) -> bool:
        return bool(conn.execute(sa.select(self.referenced_condition(schema, table))).scalar())

    def referencing_schemas(self, conn: SAConnection, schema: str) -> set[str] | None:
        # index lookups all the way (see referenced_condition): the schema's tables by
        # their pg_depend rows on the namespace, the foreign keys by theirs on each table
        rows = conn.execute(sa.text(
            "SELECT DISTINCT n.nspname FROM pg_depend t "
            "JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass "
            "AND d.refobjid = t.objid AND d.classid = 'pg_constraint'::regclass "
            "JOIN pg_constraint c ON c.oid = d.objid "
            "JOIN pg_class ch ON ch.oid = c.conrelid "
            "JOIN pg_namespace n ON n.oid = ch.relnamespace "
            "WHERE t.refclassid = 'pg_namespace'::regclass AND t.classid = 'pg_class'::regclass "
            "AND t.refobjid = to_regnamespace(quote_ident(CAST(:schema AS text))) "
            "AND c.contype = 'f' AND c.confrelid = t.objid AND ch.relnamespace <> t.refobjid"),
            {"schema": schema})
        return {name for (name,) in rows}

    def type_variant(self, category: str, args: Sequence[Any]) -> sa.types.TypeEngine[Any] | None:
        if category in ("bytes", "blob"):
            return pg.BYTEA()
        if category == "uint64":
            return UInt64()
        if category == "datetime" and args:
            return pg.TIMESTAMP(precision=int(args[0]))
        if category == "timestamp":
            return pg.TIMESTAMP(precision=int(args[0]) if args else None)
        if category == "json":
            return pg.JSONB(none_as_null=True)
        if category == "float32":
            return sa.REAL()
        return None

    def insert_rows(
        self,
        conn: SAConnection,
        table: sa.Table,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        mode: str = "insert",
        key: Sequence[str] = (),
    ) -> None:
        """COPY for bulk loads; small batches take a plain (pipelined) executemany."""
        self._load(conn, table, columns, rows, mode=mode, key=key)
        _advance_sequence(conn, table, columns)

    def insert_pieces(self, conn: SAConnection, table: sa.Table, columns: Sequence[str],
                      pieces: Iterable[Sequence[Sequence[Any]]]) -> None:
        """One COPY for all the pieces, each sent as it comes (see Backend.insert_pieces);
        pieces of large binary values go one by one (insert_rows: TOAST settings)."""
        rest = iter(pieces)
        first = next(rest, None)
        if first is None:
            return
        if _carries_large_binary(first):
            super().insert_pieces(conn, table, columns, itertools.chain([first], rest))
            return
        _copy(conn, table, conn.dialect.identifier_preparer.format_table(table), columns,
              itertools.chain([first], rest))
        _advance_sequence(conn, table, columns)

    inserts_columns = True

    def column_kinds(self, table: sa.Table, columns: Sequence[str], dialect: Any
                     ) -> dict[str, str | None] | None:
        """The binary COPY form of each column's server type (as declared: the compiled
        type names it)."""
        if importlib.util.find_spec("pyarrow") is None:
            return None
        kinds = {}
        for name in columns:
            type_ = table.c[name].type
            kind = _BINARY_KINDS.get(type_.compile(dialect).split("(")[0])
            if kind == "text" and type_.dialect_impl(dialect).bind_processor(dialect):
                kind = None  # the row path's bind processing would change the values
            kinds[name] = kind
        return kinds

    def insert_columns(self, conn: SAConnection, table: sa.Table, columns: Sequence[Any],
                       length: int) -> None:
        """Binary COPY written from the columns (pg_binary), where the session's text
        arrives as UTF-8 (what Arrow holds); else the rows go by insert_rows."""
        names = [c.name for c in columns]
        raw: Any = conn.connection.driver_connection
        if raw.pgconn.parameter_status(b"client_encoding") not in (b"UTF8", b"UNICODE"):
            rows = list(zip(*(_column_values(c) for c in columns)))
            self.insert_rows(conn, table, names, rows)
            return
        sent = pg_binary.order(columns)
        preparer = conn.dialect.identifier_preparer
        sql = (f"COPY {preparer.format_table(table)} "
               f"({', '.join(preparer.quote(c.name) for c in sent)}) "
               "FROM STDIN WITH (FORMAT binary)")
        cursor = conn.connection.cursor()
        try:
            with cursor.copy(sql) as copy:
                for block in pg_binary.blocks(sent, length):
                    copy.write(block)
        finally:
            cursor.close()
        _advance_sequence(conn, table, names)

    def insert_select(
        self, conn: SAConnection, table: sa.Table, columns: Sequence[str],
        select: sa.Select[Any], *, mode: str, key: Sequence[str]
    ) -> None:
        super().insert_select(conn, table, columns, select, mode=mode, key=key)
        _advance_sequence(conn, table, columns)

    def _load(self, conn: SAConnection, table: sa.Table, columns: Sequence[str],
              rows: Sequence[Sequence[Any]], *, mode: str, key: Sequence[str]) -> None:
        large = _carries_large_binary(rows)
        if large:
            _fast_toast(conn)
        if len(rows) < COPY_MIN_ROWS or large:
            if 1 < len(rows) < COPY_MIN_ROWS and not large:
                _insert_values(conn, self, table, columns, rows, mode=mode, key=key)
                return
            super().insert_rows(conn, table, columns, rows, mode=mode, key=key)
            return
        preparer = conn.dialect.identifier_preparer
        if mode == "insert":
            _copy(conn, table, preparer.format_table(table), columns, [rows])
            return
        # COPY has no conflict handling: load a scratch table, then INSERT ... SELECT from it
        # with ON CONFLICT on the primary key
        scratch = sa.Table(f"dj_load_{uuid.uuid4().hex[:12]}", sa.MetaData(),
                           *(sa.Column(c, table.c[c].type) for c in columns))
        columns_sql = ", ".join(preparer.quote(c) for c in columns)
        conn.exec_driver_sql(
            f"CREATE TEMPORARY TABLE {preparer.format_table(scratch)} ON COMMIT DROP AS "
            f"SELECT {columns_sql} FROM {preparer.format_table(table)} WITH NO DATA")
        _copy(conn, table, preparer.format_table(scratch), columns, [rows])
        conn.execute(self.insert_select_statement(
            table, columns, sa.select(*scratch.c).order_by(  # rows lock in key order
                *(scratch.c[k] for k in key if k in columns)), mode=mode, key=key))
        # on an error the rollback removes the scratch table; on success drop it at once
        conn.exec_driver_sql(f"DROP TABLE {preparer.format_table(scratch)}")

    def insert_statement(
        self, table: sa.Table, columns: Sequence[str], *, mode: str, key: Sequence[str]
    ) -> sa.Insert:
        return with_on_conflict(pg_insert(table), columns, mode=mode, key=key)

    def error_kind(self, orig: BaseException) -> str | None:
        state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        if state in _SQLSTATE_KINDS:
            return _SQLSTATE_KINDS[state]
        if state and state.startswith("08"):
            return "lost"
        if state == "42704" and "collation" in str(orig):
            return "unknown_collation"
        if state and state.startswith("22"):
            return "data"
        return None

    def session_id(self, conn: SAConnection) -> int:
        return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())

    def live_session_ids(self, conn: SAConnection) -> set[int] | None:
        return {int(pid) for (pid,) in conn.exec_driver_sql("SELECT pid FROM pg_stat_activity")}

    def relax_durability(self, conn: SAConnection) -> None:
        conn.exec_driver_sql("SET synchronous_commit TO OFF")

    def defer_durability(self, conn: SAConnection) -> Any:
        return conn.exec_driver_sql(
            "SELECT current_setting('synchronous_commit'), "
            "set_config('synchronous_commit', 'off', false)").first()[0]  # type: ignore[index]

    def restore_durability(self, conn: SAConnection, previous: Any) -> None:
        # an xid makes the commit write a record, and wait for the log up to it to be flushed
        conn.execute(sa.text("SELECT set_config('synchronous_commit', :previous, false), "
                             "pg_current_xact_id()"), {"previous": str(previous)})

    def is_transient(self, error: BaseException) -> bool:
        orig = getattr(error, "orig", None) or error
        state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        return state in ("40001", "40P01", "55P03")  # serialization, deadlock, lock timeout
