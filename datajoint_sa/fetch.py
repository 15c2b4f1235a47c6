"""Query results -> numpy structured arrays, pandas DataFrames, dicts, Arrow and Polars.

One query per fetch: SQLAlchemy compiles and executes it, and the row tuples are read
straight from the driver's cursor (no Row objects). Rows that need no decoding go as they are
into dicts or, in one numpy call, into a structured array (and from its fields a DataFrame);
otherwise they are turned into columns once and decoded column by column (the dialect's
result processors, then codecs such as blobs). A NULL never turns an integer into garbage:
integer columns holding NULL become object arrays of ints and None, or pandas' nullable
integer types in a DataFrame.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from itertools import repeat
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa

from . import statements
from .codecs import CodecContext
from .errors import DataJointError
from .transfers import decode_all
from .values import FLOAT_CATEGORIES

if TYPE_CHECKING:
    from .connection import Connection
    from .expression import QueryExpression
    from .heading import Attribute

_NUMPY_TYPES = {
    "bool": "bool", "int8": "int8", "uint8": "uint8", "int16": "int16", "uint16": "uint16",
    "int24": "int32", "uint24": "uint32", "int32": "int32", "uint32": "uint32",
    "int64": "int64", "uint64": "uint64", "float32": "float32", "float64": "float64",
    "year": "int16",
}
_PANDAS_NULLABLE = {
    "int8": "Int8", "uint8": "UInt8", "int16": "Int16", "uint16": "UInt16", "int24": "Int32",
    "uint24": "UInt32", "int32": "Int32", "uint32": "UInt32", "int64": "Int64",
    "uint64": "UInt64", "bool": "boolean", "year": "Int16",
}
_FORMATS = (None, "array", "frame")


class Columns:
    """A result, held as the driver's row tuples and/or as decoded columns.

    Rows that need no decoding stay the driver's tuples: dicts and structured arrays are
    built from them directly; columns are made (once) only when something needs them.
    """

    def __init__(self, names: list[str], length: int, *, rows: list[Any] | None = None,
                 values: list[Sequence[Any]] | None = None) -> None:
        self.names = names
        self.length = length
        self.rows = rows
        self._values = values

    @property
    def values(self) -> list[Sequence[Any]]:
        if self._values is None:
            rows = self.rows or []
            self._values = list(zip(*rows)) if rows else [() for _ in self.names]
        return self._values

    def column(self, name: str) -> Sequence[Any]:
        return self.values[self.names.index(name)]

    def subset(self, names: list[str]) -> Columns:
        return Columns(names, self.length, values=[self.column(n) for n in names])

    def dicts(self, names: list[str] | None = None) -> list[dict[str, Any]]:
        names = self.names if names is None else names
        if names == self.names and self.rows is not None:  # map: no bytecode per row
            return list(map(dict, map(zip, repeat(names), self.rows)))
        picked = [self.column(n) for n in names]
        return [dict(zip(names, row)) for row in zip(*picked)] if picked else \
            [{} for _ in range(self.length)]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Bulk conversions allocate many containers and no cycles: the cyclic garbage
    collector would only rescan them again and again, so it waits until they are done."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# ------------------------------------------------------------------------- the query

def _category(attr: Attribute) -> str | None:
    if not attr.type:
        return None
    try:
        return attr.type_info.fetched_as
    except DataJointError:
        return None


def build_select(expr: QueryExpression, names: list[str], *, order_by: Any = None,
                 limit: int | None = None, offset: int | None = None,
                 any_order: bool = False) -> sa.Select[Any]:
    """The expression's Select narrowed to `names`, ordered and paged like `dj.Top`
    (`QueryExpression.sorted_select`: NULLs and ties ordered the same on every backend).
    `any_order`: a limit without an order needs no sort (fetch1 only needs to see whether a
    second row exists, and a sort would cost the server work)."""
    return expr.sorted_select(order_by, limit, offset, names=names, any_order=any_order)


def _prepared(expr: QueryExpression, names: list[str], **select_options: Any
              ) -> sa.Select[Any]:
    """The Select of a fetch with the backend's result options (bytea in binary...)."""
    select = build_select(expr, names, **select_options)
    options = expr.connection.backend_impl.result_options(
        [c.type for c in select.selected_columns])
    return select.execution_options(**options) if options else select


def _run(connection: Connection, select: sa.Select[Any], names: list[str]
         ) -> tuple[list[Any], Any]:
    """The rows and the cursor description of one read (driver errors translated)."""
    with connection.translating(), connection.session(write=False) as sa_conn:
        result = sa_conn.execute(select)
        cursor = getattr(result, "cursor", None)
        if cursor is not None and cursor.description is not None:
            rows = cursor.fetchall()
            if not isinstance(rows, list):  # PyMySQL gives a tuple, which numpy would read
                rows = list(rows)            # as one record
            description = cursor.description
            result.close()
        else:  # a driver without a plain cursor: go through SQLAlchemy's rows
            rows = [tuple(r) for r in result.all()]
            description = [(n, None) for n in names]
    return rows, description


def query_columns(expr: QueryExpression, names: list[str], *, order_by: Any = None,
                  limit: int | None = None, offset: int | None = None, squeeze: bool = False,
                  download_path: str | None = None, any_order: bool = False) -> Columns:
    """Run the query once and return its decoded columns: through its cached statement
    where its shape has one (statements.py), else built, compiled and run by SQLAlchemy."""
    select_options = {"order_by": order_by, "limit": limit, "offset": offset,
                      "any_order": any_order}
    connection = expr.connection
    order_key = tuple(order_by) if isinstance(order_by, list) else order_by
    cached = statements.lookup(expr, names, (order_key, limit, offset, any_order),
                               lambda slotted: _prepared(slotted, names, **select_options))
    if cached is not None:
        statement, values = cached
        rows, description = connection.retrying(
            lambda: statements.run(connection, statement, values))
        plan = statement.plan
        if plan is None:
            plan = statement.plan = decode_plan(expr, names, statement.types, description)
        return decode_planned(expr, names, plan, rows, squeeze=squeeze,
                              download_path=download_path)
    select = _prepared(expr, names, **select_options)
    rows, description = connection.retrying(lambda: _run(connection, select, names))
    return decode_rows(expr, names, select, rows, description, squeeze=squeeze,
                       download_path=download_path)


def query_rows(expr: QueryExpression, what: str,
               build: Callable[[QueryExpression], sa.Select[Any]]) -> list[Any]:
    """The driver's rows of a Select `build` makes of the expression (`len`, `bool`: `what`
    names it in the statement cache), through the cached statement of its shape where it
    has one."""
    connection = expr.connection
    cached = statements.lookup(expr, (what,), (), build)
    if cached is None:
        return list(connection.query(build(expr)))
    statement, values = cached
    rows, _ = connection.retrying(lambda: statements.run(connection, statement, values))
    statement.plan = ()  # nothing to decode: no description needed
    return rows


def iter_columns(expr: QueryExpression, names: list[str], batch_size: int, *,
                 order_by: Any = None, limit: int | None = None, offset: int | None = None,
                 squeeze: bool = False, download_path: str | None = None
                 ) -> Iterator[Columns]:
    """The decoded columns of the query, `batch_size` rows at a time, streamed from the
    server (a server-side cursor on PostgreSQL and MySQL): memory stays bounded by the
    batch, whatever the size of the result. The read transaction stays open until the
    iteration ends; do not run other queries on the connection meanwhile (MySQL refuses
    them while a streamed result is pending)."""
    check_batch_size(batch_size)
    select = _prepared(expr, names, order_by=order_by, limit=limit, offset=offset)
    select = select.execution_options(stream_results=True, max_row_buffer=batch_size)
    connection = expr.connection
    with connection.session(write=False) as sa_conn:
        # SQLAlchemy's rows: its streaming strategy buffers ahead of the driver's cursor, and
        # has already applied the result processors
        result = sa_conn.execute(select)
        try:
            for partition in result.partitions(batch_size):
                rows = [tuple(r) for r in partition]
                yield decode_rows(expr, names, select, rows, None, squeeze=squeeze,
                                  download_path=download_path)
        finally:
            result.close()


def decode_rows(expr: QueryExpression, names: list[str], select: sa.Select[Any],
                rows: list[Any], description: Any, *, squeeze: bool = False,
                download_path: str | None = None) -> Columns:
    """Driver rows of `select` as decoded columns (result processors, then codecs); without
    a cursor `description` the rows are SQLAlchemy's, already processed."""
    plan = decode_plan(expr, names, [c.type for c in select.selected_columns], description)
    return decode_planned(expr, names, plan, rows, squeeze=squeeze,
                          download_path=download_path)


def decode_plan(expr: QueryExpression, names: list[str], types: Sequence[Any],
                description: Any) -> list[tuple[int, Any, Any]]:
    """How each column of a result is decoded: (position, result processor, codec) for the
    columns that need it. It depends on the heading, the selected types and the driver's
    type codes only, so a cached statement keeps it."""
    dialect = expr.connection.engine.dialect
    heading = expr.heading
    steps: list[tuple[int, Any, Any]] = []  # (position, result processor, codec)
    for i, name in enumerate(names):
        attr = heading[name]
        category = _category(attr)
        if category in _NUMPY_TYPES and category != "bool":
            # numbers come from the driver as they are (a float conversion would lose the
            # precision of 64-bit integers held as NUMERIC); only Decimals become ints
            if category == "uint64":
                steps.append((i, _decimal_to_int, None))
            continue
        processor = None if description is None else types[i].dialect_impl(
            dialect).result_processor(dialect, description[i][1])
        codec = attr.codec if category is not None else None
        if processor is not None or codec is not None:
            steps.append((i, processor, codec))
    return steps


def decode_planned(expr: QueryExpression, names: list[str], steps: list[tuple[int, Any, Any]],
                   rows: list[Any], *, squeeze: bool = False,
                   download_path: str | None = None) -> Columns:
    """Rows decoded by a `decode_plan`: the driver's tuples as they are when nothing needs
    decoding, else columns, each decoded once."""
    length = len(rows)
    if not steps or not length:
        return Columns(list(names), length, rows=rows)
    heading = expr.heading
    with gc_paused():
        values: list[Sequence[Any]] = list(zip(*rows))
        keys: list[dict[str, Any]] | None = None
        for i, processor, codec in steps:
            column = values[i]
            if processor is not None:
                column = [processor(v) for v in column]
            if codec is not None:  # store objects are read concurrently (transfers)
                options = _codec_options(expr, heading[names[i]], download_path)
                if keys is None:
                    keys = _row_keys(expr, names, values)
                column = decode_all(codec, column, keys, options)
                if squeeze:
                    column = [v.squeeze() if isinstance(v, np.ndarray) else v for v in column]
            values[i] = column
    return Columns(list(names), length, values=values)


def _decimal_to_int(value: Any) -> Any:
    return int(value) if type(value) is Decimal else value


def _codec_options(expr: QueryExpression, attr: Attribute, download_path: str | None
                   ) -> dict[str, Any]:
    """The context a codec is given besides the stored value: where the value lives and
    where fetched files go."""
    schema, table = "", ""
    if attr.lineage and attr.lineage.count(".") >= 2:
        schema, table, _ = attr.lineage.rsplit(".", 2)
    return {"context": CodecContext(schema=schema, table=table, attribute=attr.name,
                                    download_path=download_path,
                                    connection=expr._connection)}


def _row_keys(expr: QueryExpression, names: list[str], values: list[Sequence[Any]]
              ) -> list[dict[str, Any]] | None:
    """The primary key of every fetched row, when the key attributes were fetched."""
    key = expr.primary_key
    if not key or not all(k in names for k in key):
        return None
    return [dict(zip(key, k)) for k in zip(*(values[names.index(k)] for k in key))]


# ------------------------------------------------------------------------- shaping

def _inferred_dtype(values: Sequence[Any]) -> str | None:
    """For attributes without a declared type (computed ones): a numpy dtype when every
    value is a plain int, float or bool."""
    kinds = set(map(type, values))
    if not kinds:
        return None
    if kinds <= {bool}:
        return "bool"
    if kinds <= {int}:
        return "int64"
    if kinds <= {float, int, type(None)} and float in kinds:
        return "float64"
    return None


def to_numpy(attr: Attribute, values: Sequence[Any]) -> np.ndarray:
    """One column as a numpy array of the attribute's own dtype where one exists."""
    category = _category(attr)
    kind = _NUMPY_TYPES.get(category or "") if category else _inferred_dtype(values)
    count = len(values)
    if kind is not None:
        has_null = any(v is None for v in values) if count < 64 else None in values
        if not has_null:
            try:
                return np.array(values, dtype=kind)
            except (OverflowError, ValueError, TypeError):
                pass
        elif kind.startswith("float"):
            return np.fromiter((np.nan if v is None else v for v in values), dtype=kind,
                               count=count)
    return np.fromiter(values, dtype=object, count=count)


def _fixed_dtype(expr: QueryExpression, names: list[str]) -> list[tuple[str, str]] | None:
    """The structured dtype a result has whatever its values, or None when a column's dtype
    depends on them (booleans and integers that may hold NULL, untyped attributes)."""
    dtype = []
    for name in names:
        category = _category(expr.heading[name])
        if category is None or category == "bool":
            return None
        dtype.append((name, _NUMPY_TYPES.get(category, "O")))
    return dtype


def to_recarray(expr: QueryExpression, columns: Columns) -> np.ndarray:
    """A structured array; straight from the driver's rows in one numpy call when no column
    needed decoding, column by column otherwise."""
    names = columns.names
    if columns.rows is not None:
        dtype = _fixed_dtype(expr, names)
        if dtype is not None:
            try:  # an integer NULL raises here, and the columns decide instead
                with gc_paused():
                    return np.array(columns.rows, dtype=dtype)
            except (TypeError, ValueError, OverflowError):
                pass
    with gc_paused():
        arrays = [to_numpy(expr.heading[n], columns.column(n)) for n in names]
        array = np.empty(columns.length, dtype=[(n, a.dtype) for n, a in zip(names, arrays)])
        for name, values in zip(names, arrays):
            array[name] = values
    return array


def to_frame(expr: QueryExpression, columns: Columns) -> Any:
    """A DataFrame indexed by the primary key (when the key attributes are all present);
    integer and boolean columns holding NULL take pandas' nullable dtypes."""
    import pandas as pd

    records = to_recarray(expr, columns)
    data: dict[str, Any] = {}
    for name in columns.names:
        array = records[name]
        nullable = _PANDAS_NULLABLE.get(_category(expr.heading[name]) or "")
        data[name] = pd.array(array.tolist(), dtype=nullable) if (
            array.dtype == object and nullable is not None) else array
    return frame_from(expr, data, columns.names)


def frame_from(expr: QueryExpression, data: dict[str, Any], names: list[str]) -> Any:
    """The DataFrame of fetched columns, indexed by the primary key when all of it is there
    (the one place both the row and the columnar fetch shape a frame)."""
    import pandas as pd

    key = expr.primary_key
    # Series would be aligned on the index below: their arrays are what is meant
    data = {n: v.array if isinstance(v, pd.Series) else v for n, v in data.items()}
    if key and all(k in names for k in key):
        # the index made from the key columns directly: set_index would copy the frame
        index = pd.MultiIndex.from_arrays([data.pop(k) for k in key], names=key) \
            if len(key) > 1 else pd.Index(data.pop(key[0]), name=key[0])
        rest = [n for n in names if n not in key]
        return pd.DataFrame(data, columns=rest, index=index, copy=False)
    return pd.DataFrame(data, columns=names, copy=False)


def check_format(format: str | None, as_dict: bool | None, formats: Sequence[str | None]
                 ) -> None:
    """Refuse an unknown format, or a table format asked for together with dicts."""
    if format not in formats:
        known = ", ".join(repr(f) for f in formats if f)
        raise DataJointError(f"fetch: format must be one of {known}, not {format!r}")
    if format is not None and format != "array" and as_dict:
        raise DataJointError(f"fetch: format={format!r} and as_dict=True exclude each other")


def check_batch_size(batch_size: Any) -> None:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise DataJointError(f"fetch: batch_size must be a positive integer, not {batch_size!r}")


def fetch_names(expr: QueryExpression, attrs: Sequence[str], format: str | None) -> list[str]:
    """The attributes a fetch reads: all, or those asked for ("KEY": the primary key), with
    the primary key too for a table format (it indexes a DataFrame)."""
    key = expr.primary_key
    expr.heading.check([a for a in attrs if a != "KEY"], context="fetch")
    if not attrs:
        return list(expr.heading.names)
    table_format = format is not None and format != "array"
    return list(dict.fromkeys([n for a in attrs for n in (key if a == "KEY" else [a])]
                              + (key if table_format else [])))


def fetch(expr: QueryExpression, *attrs: str, offset: int | None = None,
          limit: int | None = None, order_by: Any = None, format: str | None = None,
          as_dict: bool | None = None, squeeze: bool = False,
          download_path: str | None = None, batch_size: int | None = None) -> Any:
    """DataJoint's fetch.

    No attrs: a numpy structured array (`as_dict=True`: a list of dicts; `format='frame'`: a
    DataFrame indexed by the primary key). With attrs: one array per attribute ("KEY": the
    list of key dicts), or with `as_dict=True` a list of dicts of just those attributes.
    With `batch_size=N`: an iterator of such results of at most N rows each, streamed from
    the server, so memory stays bounded by the batch (see `iter_columns`).
    """
    check_format(format, as_dict, _FORMATS)
    names = fetch_names(expr, attrs, format)
    if batch_size is not None:
        check_batch_size(batch_size)
        batches = iter_columns(expr, names, batch_size, order_by=order_by, limit=limit,
                               offset=offset, squeeze=squeeze, download_path=download_path)
        return (_shaped(expr, c, attrs, names, format, as_dict) for c in batches)
    columns = query_columns(expr, names, order_by=order_by, limit=limit, offset=offset,
                            squeeze=squeeze, download_path=download_path)
    return _shaped(expr, columns, attrs, names, format, as_dict)


def _shaped(expr: QueryExpression, columns: Columns, attrs: tuple[str, ...], names: list[str],
            format: str | None, as_dict: bool | None) -> Any:
    """Fetched columns in the form fetch was asked for."""
    heading = expr.heading
    key = expr.primary_key
    if format == "frame":
        if attrs:
            columns = columns.subset([n for n in names if n in attrs or n in key])
        return to_frame(expr, columns)
    if not attrs:
        if as_dict:
            with gc_paused():
                return columns.dicts()
        return to_recarray(expr, columns)
    if as_dict:
        with gc_paused():
            return columns.dicts(names)
    results = [columns.dicts(key) if a == "KEY" else to_numpy(heading[a], columns.column(a))
               for a in attrs]
    return results[0] if len(attrs) == 1 else tuple(results)


def fetch1(expr: QueryExpression, *attrs: str, squeeze: bool = False,
           download_path: str | None = None) -> Any:
    """Exactly one row: a dict (no attrs), one value, or a tuple of values ("KEY": the key
    dict). Zero rows or several are a DataJointError."""
    heading = expr.heading
    key = expr.primary_key
    heading.check([a for a in attrs if a != "KEY"], context="fetch1")
    names = list(dict.fromkeys(
        [n for a in attrs for n in (key if a == "KEY" else [a])])) if attrs else heading.names
    columns = query_columns(expr, names, limit=2, any_order=True, squeeze=squeeze,
                            download_path=download_path)
    if columns.length != 1:
        found = "no row" if columns.length == 0 else "more than one row"
        raise DataJointError(f"fetch1 expects exactly one row; the query returned {found}")
    row = columns.dicts()[0]
    if any(value is None for value in row.values()):
        _classic_nans(expr, row)
    if not attrs:
        return row
    values = tuple({k: row[k] for k in key} if a == "KEY" else row[a] for a in attrs)
    return values[0] if len(values) == 1 else values


def _classic_nans(expr: QueryExpression, row: dict[str, Any]) -> None:
    """NULL floats as NaN in a fetch1 of a table of a classic schema, as classic DataJoint
    gave them (Schema.fetch1_null_float_is_nan); a join or projection of several tables is
    not a table of one schema and keeps None."""
    schema = getattr(expr, "_schema", None)
    if schema is None or not schema.fetch1_null_float_is_nan:
        return
    heading = expr.heading
    for name, value in row.items():
        attr = heading[name]
        if value is None and attr.type and attr.type_info.category in FLOAT_CATEGORIES:
            row[name] = math.nan


# ------------------------------------------------------------------------- conveniences

def to_dicts(expr: QueryExpression, **kwargs: Any) -> list[dict[str, Any]]:
    """A list of dicts, one per row."""
    return fetch(expr, as_dict=True, **kwargs)


def to_pandas(expr: QueryExpression, **kwargs: Any) -> Any:
    """A DataFrame indexed by the primary key."""
    return fetch(expr, format="frame", **kwargs)


def to_arrays(expr: QueryExpression, *attrs: str, **kwargs: Any) -> Any:
    """A structured array (no attrs) or one array per named attribute."""
    return fetch(expr, *attrs, **kwargs)


def keys(expr: QueryExpression, **kwargs: Any) -> list[dict[str, Any]]:
    """The primary keys as a list of dicts."""
    return fetch(expr, "KEY", **kwargs)


def head(expr: QueryExpression, limit: int = 25, **kwargs: Any) -> Any:
    """The first rows in primary-key order (fetch's shapes; a structured array by default)."""
    return fetch(expr, order_by="KEY", limit=limit, **kwargs)


def tail(expr: QueryExpression, limit: int = 25, **kwargs: Any) -> Any:
    """The last rows in primary-key order (fetch's shapes; a structured array by default)."""
    result = fetch(expr, order_by="KEY DESC", limit=limit, **kwargs)
    if hasattr(result, "iloc"):
        return result.iloc[::-1]
    return result[::-1]
