"""Columnar fetches: `fetch(format="arrow" | "polars")`, and DataFrames built from Arrow.

Where the backend has a columnar driver (ADBC: PostgreSQL reads the result as binary COPY)
and no transaction is open, the query's SQL (compiled from the expression exactly as the row
fetch compiles it) runs there and its columns arrive as Arrow arrays filled in C. Every
column then takes the Arrow type its attribute has on every backend (`arrow_type`): columns
that already have it, or reach it by an exact cast (int64 -> int16, numeric text ->
decimal128), stay in Arrow; the others (blobs and other codecs, json ...) go through the
same result processors and codecs as the row fetch. Elsewhere (MySQL, SQLite, inside a
transaction, no driver installed) the rows are read from a server-side cursor in batches,
each decoded as the row fetch decodes it and appended at once to Arrow columns (a
DataFrame's numbers to numpy arrays), so only one batch of Python objects is alive at a
time; a result with a codec is read whole by the row fetch (decoding may query the
database, which a pending streamed result forbids on MySQL). Either way the values are those
of the plain fetch; a value the attribute's Arrow type cannot hold exactly is refused with a
DataJointError naming the attribute.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from . import fetch as fetching
from .backends import Backend
from .errors import DataJointError
from .fetch import (
    _NUMPY_TYPES,
    _PANDAS_NULLABLE,
    _category,
    _codec_options,
    _decimal_to_int,
    build_select,
    frame_from,
    gc_paused,
    query_columns,
    to_numpy,
)
from .settings import config

if TYPE_CHECKING:
    from .expression import QueryExpression
    from .heading import Attribute

#: the widest decimal Arrow's decimal128 holds
_DECIMAL128_DIGITS = 38


def _pyarrow() -> Any:
    try:
        import pyarrow as pa
    except ImportError:
        raise DataJointError("Arrow results need pyarrow: pip install pyarrow") from None
    return pa


def arrow_type(attr: Attribute) -> Any | None:
    """The Arrow type an attribute's values take on every backend, or None where they have
    none fixed (codecs, json, time, untyped attributes): their values decide."""
    pa = _pyarrow()
    category = _category(attr)
    if category is None or attr.codec is not None:
        return None
    if category in _NUMPY_TYPES:
        return pa.from_numpy_dtype(np.dtype(_NUMPY_TYPES[category]))
    if category == "decimal":
        precision, scale = attr.type_info.args
        return pa.decimal128(precision, scale) if precision <= _DECIMAL128_DIGITS else None
    return {"varchar": pa.string(), "char": pa.string(), "text": pa.string(),
            "enum": pa.string(), "date": pa.date32(), "datetime": pa.timestamp("us"),
            "timestamp": pa.timestamp("us"), "uuid": pa.uuid(), "bytes": pa.binary()
            }.get(category)


def _exact_cast(source: Any, target: Any) -> bool:
    """Whether a driver's Arrow type reaches the attribute's by a cast that changes no value
    (a safe cast refuses what would not fit)."""
    pa = _pyarrow()
    t = pa.types
    if t.is_null(source):
        return True
    if t.is_integer(target):
        return bool(t.is_integer(source) or t.is_string(source))
    if t.is_floating(target):
        return bool(t.is_floating(source))
    if t.is_boolean(target):
        return bool(t.is_integer(source))
    if t.is_decimal(target):
        return bool(t.is_string(source))
    return False


_FORMATS = (*fetching._FORMATS, "arrow", "polars")


def fetch(expr: QueryExpression, *attrs: str, format: str | None = None,
          as_dict: bool | None = None, batch_size: int | None = None, squeeze: bool = False,
          download_path: str | None = None, **select_options: Any) -> Any:
    """`fetch` with the columnar formats: "arrow" (a pyarrow Table) and "polars"; and
    "frame" built from Arrow where a columnar driver reads the result. The primary key is
    among the columns of a table format. Everything else is the row fetch (fetch.py).
    Whole rows without a format or `as_dict` come as dj.config["fetch_format"] says."""
    if format is None and not attrs and not as_dict and config["fetch_format"] == "frame":
        format = "frame"
    fetching.check_format(format, as_dict, _FORMATS)
    columnar_frame = format == "frame" and batch_size is None and _frame_from_arrow(expr, attrs)
    if format not in ("arrow", "polars") and not columnar_frame:
        return fetching.fetch(expr, *attrs, format=format, as_dict=as_dict,
                              batch_size=batch_size, squeeze=squeeze,
                              download_path=download_path, **select_options)
    names = fetching.fetch_names(expr, attrs, format)
    shape = {"arrow": to_arrow_table, "polars": polars_frame, "frame": pandas_frame}[format or ""]
    if batch_size is not None:
        fetching.check_batch_size(batch_size)
        return _batches(expr, names, batch_size, shape, squeeze=squeeze,
                        download_path=download_path, **select_options)
    return shape(expr, fetch_result(expr, names, squeeze=squeeze, download_path=download_path,
                                    frame=format == "frame", **select_options))


def _batches(expr: QueryExpression, names: list[str], batch_size: int, shape: Any,
             **options: Any) -> Iterator[Any]:
    """Streamed batches (the row fetch's server-side cursor) shaped as Arrow or polars."""
    for columns in fetching.iter_columns(expr, names, batch_size, **options):
        yield shape(expr, ArrowResult(names, columns.length,
                                      {n: list(columns.column(n)) for n in names}))


def columnar_reader(expr: QueryExpression) -> bool:
    """Whether a DataFrame is best built from Arrow columns: a columnar driver reads the
    result (outside a transaction) and pyarrow is there to hold them."""
    connection = expr.connection
    if connection.in_transaction:
        return False
    if type(connection.backend_impl).read_arrow is Backend.read_arrow:
        return False
    return importlib.util.find_spec("pyarrow") is not None


def _frame_from_arrow(expr: QueryExpression, attrs: Sequence[str]) -> bool:
    """Whether a DataFrame is built from Arrow columns: where a columnar driver reads the
    result, or where the rows can be read in batches into Arrow columns (`_streamed`): a
    whole list of row tuples would hold a Python object per value, several times the
    frame's own size, until the frame is built."""
    if columnar_reader(expr):
        return True
    if importlib.util.find_spec("pyarrow") is None:
        return False
    return _streams(expr, fetching.fetch_names(expr, attrs, "frame"))


def to_arrow(expr: QueryExpression, **kwargs: Any) -> Any:
    """A pyarrow Table of the query (needs pyarrow)."""
    return fetch(expr, format="arrow", **kwargs)


def to_polars(expr: QueryExpression, **kwargs: Any) -> Any:
    """A polars DataFrame of the query (needs polars)."""
    return fetch(expr, format="polars", **kwargs)


def to_pandas(expr: QueryExpression, **kwargs: Any) -> Any:
    """A DataFrame indexed by the primary key."""
    return fetch(expr, format="frame", **kwargs)


class ArrowResult:
    """A fetched result per attribute: an Arrow array of the attribute's Arrow type, or a
    list of decoded Python values (the row fetch's values)."""

    def __init__(self, names: list[str], length: int, columns: dict[str, Any]) -> None:
        self.names = names
        self.length = length
        self.columns = columns


def fetch_result(expr: QueryExpression, names: list[str], *, squeeze: bool = False,
                 download_path: str | None = None, frame: bool = False,
                 **select_options: Any) -> ArrowResult:
    """The result of the query: from the columnar driver where there is one, else rows,
    read in batches into Arrow columns (`frame`: shaped for a DataFrame, see `_streamed`)."""
    result = _read_columnar(expr, names, squeeze=squeeze, download_path=download_path,
                            **select_options)
    if result is not None:
        return result
    if _streams(expr, names):
        connection = expr.connection
        return connection.retrying(lambda: _streamed(expr, names, frame=frame,
                                                         **select_options))
    columns = query_columns(expr, names, squeeze=squeeze, download_path=download_path,
                            **select_options)
    return ArrowResult(list(names), columns.length,
                       {n: list(columns.column(n)) for n in names})


#: rows read from the cursor at a time when a result is built into Arrow columns from rows
ROW_BATCH = 20_000


def _streams(expr: QueryExpression, names: list[str]) -> bool:
    """Whether the result can be read in batches from a server-side cursor: not with codecs,
    whose decoding may query the database (external tables) while the cursor still holds the
    session (MySQL refuses that)."""
    heading = expr.heading
    return not any(heading[n].codec is not None for n in names)


def _streamed(expr: QueryExpression, names: list[str], *, frame: bool = False,
              **select_options: Any) -> ArrowResult:
    """The result read `ROW_BATCH` rows at a time from a server-side cursor, each batch
    decoded as the row fetch decodes it and its columns appended at once to columns of the
    attributes' Arrow types: the Python objects of only one batch are alive, so the peak
    memory is about the columns' own size (a whole list of row tuples is several times
    that). A column whose values Arrow cannot hold exactly stays a list of the decoded
    values (the row fetch's values, as in `fetch_result`). For a DataFrame (`frame`), numbers
    go straight into the numpy array the frame keeps and text into large_string, which a
    DataFrame holds without a copy."""
    pa = _pyarrow()
    pool = pa.system_memory_pool()  # chunks freed while a frame is built: memory numpy reuses
    heading = expr.heading
    columns = [_collector(pa, pool, heading[n], frame) for n in names]
    length = 0
    with gc_paused():
        for batch in _row_batches(expr, names, **select_options):
            length += batch.length
            for i, name in enumerate(names):
                columns[i] = columns[i].add(batch.column(name))
            del batch
    return ArrowResult(list(names), length,
                       {n: c.result() for n, c in zip(names, columns)})


def _collector(pa: Any, pool: Any, attr: Attribute, frame: bool) -> Any:
    """What collects one attribute's batches: numpy for a frame's numbers, Arrow chunks for
    values of a fixed Arrow type, else a list."""
    target = arrow_type(attr)
    if target is None:
        return _Values([])
    category = _category(attr) or ""
    if frame and category in _NUMPY_TYPES and category != "bool":
        return _Numbers(pa, pool, target, np.dtype(_NUMPY_TYPES[category]))
    if frame and target == pa.string():
        target = pa.large_string()
    return _Chunks(pa, pool, target)


class _Values:
    """Decoded Python values, as the row fetch gives them."""

    def __init__(self, values: list[Any]) -> None:
        self.values = values

    def add(self, values: Sequence[Any]) -> _Values:
        self.values.extend(values)
        return self

    def result(self) -> list[Any]:
        return self.values


class _Chunks:
    """Arrow chunks of one type; values it cannot hold exactly turn it into _Values."""

    def __init__(self, pa: Any, pool: Any, target: Any) -> None:
        self.pa, self.pool, self.target = pa, pool, target
        self.chunks: list[Any] = []

    def add(self, values: Sequence[Any]) -> _Chunks | _Values:
        pa = self.pa
        try:
            self.chunks.append(pa.array(values, type=self.target, from_pandas=False,
                                        memory_pool=self.pool))
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            held = [v for chunk in self.chunks for v in chunk.to_pylist()]
            return _Values(held).add(values)
        return self

    def result(self) -> Any:
        return self.pa.chunked_array(self.chunks, type=self.target)


class _Numbers:
    """A frame's numeric column as one numpy array, grown in place (realloc: no second copy
    while it grows), so the frame takes it as it is. Float NULLs are NaN, as in the row
    fetch's frame; an integer NULL (or a value the dtype cannot hold) turns it into Arrow
    chunks, which the frame shapes as the row fetch does."""

    def __init__(self, pa: Any, pool: Any, target: Any, dtype: np.dtype[Any]) -> None:
        self.pa, self.pool, self.target = pa, pool, target
        self.array = np.empty(0, dtype=dtype)
        self.size = 0

    def add(self, values: Sequence[Any]) -> _Numbers | _Chunks | _Values:
        try:
            batch = np.array(values, dtype=self.array.dtype)
        except (TypeError, ValueError, OverflowError):
            chunks = _Chunks(self.pa, self.pool, self.target)
            chunks.chunks.append(self.pa.array(self.array[:self.size], type=self.target))
            return chunks.add(values)
        end = self.size + len(batch)
        if end > len(self.array):
            self.array.resize(max(end, 2 * len(self.array)), refcheck=False)
        self.array[self.size:end] = batch
        self.size = end
        return self

    def result(self) -> np.ndarray:
        self.array.resize(self.size, refcheck=False)
        return self.array


def _row_batches(expr: QueryExpression, names: list[str], **select_options: Any
                 ) -> Iterator[fetching.Columns]:
    """The decoded columns of the query, `ROW_BATCH` rows at a time, read from the driver's
    server-side cursor as plain tuples (SQLAlchemy's Row objects would cost more than the
    driver's own read); the first row is the one SQLAlchemy reads ahead, taken through its
    result and so already processed."""
    select = fetching._prepared(expr, names, **select_options).execution_options(
        stream_results=True, max_row_buffer=ROW_BATCH)
    connection = expr.connection
    with connection.translating(), connection.session(write=False) as sa_conn:
        result = sa_conn.execute(select)
        try:
            first = result.fetchone()
            if first is None:
                return
            yield fetching.decode_rows(expr, names, select, [tuple(first)], None)
            cursor = result.cursor
            description = cursor.description
            fetch_rows = connection.backend_impl.fetch_rows
            while rows := fetch_rows(cursor, ROW_BATCH):
                yield fetching.decode_rows(expr, names, select, list(rows), description)
        finally:
            result.close()


def _read_columnar(expr: QueryExpression, names: list[str], *, squeeze: bool,
                   download_path: str | None, **select_options: Any) -> ArrowResult | None:
    connection = expr.connection
    if connection.in_transaction:  # the reader's own session would not see the writes
        return None
    _pyarrow()
    select = build_select(expr, names, **select_options)
    backend = connection.backend_impl
    table = backend.read_arrow(connection.url, select, connection.engine.dialect)
    if table is None or table.num_columns != len(names):
        return None
    try:
        return _normalized(expr, names, select, table, squeeze=squeeze,
                           download_path=download_path)
    except DataJointError:
        raise
    except Exception:  # a driver value of an unforeseen form: the row path decides
        return None


def _normalized(expr: QueryExpression, names: list[str], select: Any, table: Any, *,
                squeeze: bool, download_path: str | None) -> ArrowResult:
    """The driver's Arrow columns with each attribute's Arrow type, or decoded as rows are."""
    heading = expr.heading
    connection = expr.connection
    dialect = connection.engine.dialect
    backend = connection.backend_impl
    selected = select.selected_columns
    columns: dict[str, Any] = {}
    pending: list[int] = []
    for i, name in enumerate(names):
        column = table.column(i)  # chunked as read: joining the chunks would copy them
        target = arrow_type(heading[name])
        if target is not None and column.type == target:
            columns[name] = column
        elif target is not None and _exact_cast(column.type, target):
            columns[name] = column.cast(target, safe=True)
        else:
            pending.append(i)
    keys = None
    with gc_paused():
        for i in pending:
            name = names[i]
            attr = heading[name]
            values = backend.arrow_driver_values(table.schema.field(i),
                                                 table.column(i).to_pylist())
            category = _category(attr)
            if category in _NUMPY_TYPES and category != "bool":
                if category == "uint64":
                    values = [_decimal_to_int(v) for v in values]
            else:
                processor = selected[i].type.dialect_impl(dialect).result_processor(
                    dialect, None)
                if processor is not None:
                    values = [processor(v) for v in values]
                codec = attr.codec if category is not None else None
                if codec is not None:
                    if keys is None:
                        keys = _row_keys(expr, names, columns, table)
                    values = _decoded(expr, attr, codec, values, keys, download_path)
                    if squeeze:
                        values = [v.squeeze() if isinstance(v, np.ndarray) else v
                                  for v in values]
            columns[name] = values
    return ArrowResult(list(names), table.num_rows, columns)


def _row_keys(expr: QueryExpression, names: list[str], columns: dict[str, Any], table: Any
              ) -> list[dict[str, Any]] | None:
    """The primary key of every row (codecs are given it), when the key was fetched."""
    key = expr.primary_key
    if not key or not all(k in names for k in key):
        return None
    values = []
    for k in key:
        column = columns.get(k)
        if column is None:  # not decoded yet: the driver's values (keys need no decoding)
            column = table.column(names.index(k))
        values.append(column if isinstance(column, list) else column.to_pylist())
    return [dict(zip(key, k)) for k in zip(*values)]


def _decoded(expr: QueryExpression, attr: Attribute, codec: Any, values: list[Any],
             keys: list[dict[str, Any]] | None, download_path: str | None) -> list[Any]:
    decode = codec.decode
    options = _codec_options(expr, attr, download_path)
    if keys is not None:
        return [None if v is None else decode(v, key=k, **options) for v, k in zip(values, keys)]
    return [None if v is None else decode(v, **options) for v in values]


# ------------------------------------------------------------------------- shapes

def to_arrow_table(expr: QueryExpression, result: ArrowResult) -> Any:
    """A pyarrow Table; decoded values are given the attribute's Arrow type (or Arrow's
    inference where it has none), and refused when that type cannot hold them exactly."""
    pa = _pyarrow()
    arrays = []
    for name in result.names:
        column = result.columns[name]
        if isinstance(column, list):
            attr = expr.heading[name]
            target = arrow_type(attr)
            try:
                column = pa.array(column, type=target, from_pandas=False)
            except (pa.ArrowException, TypeError, ValueError, OverflowError) as error:
                raise DataJointError(
                    f"fetch(format='arrow'): attribute {name} ({attr.type}) has values "
                    f"Arrow{' type ' + str(target) if target else ''} cannot hold exactly: "
                    f"{error}") from error
        arrays.append(column)
    return pa.table(arrays, names=result.names)


def pandas_frame(expr: QueryExpression, result: ArrowResult) -> Any:
    """The DataFrame `fetch(format='frame')` returns, built from the Arrow columns."""
    import pandas as pd

    data: dict[str, Any] = {}
    with gc_paused():
        for name in result.names:
            attr = expr.heading[name]
            column = result.columns.pop(name)  # each Arrow column freed once converted
            category = _category(attr) or ""
            if isinstance(column, np.ndarray):  # a frame's numbers, read as numpy
                data[name] = column
            elif isinstance(column, list):
                array = to_numpy(attr, column)
                nullable = _PANDAS_NULLABLE.get(category)
                data[name] = pd.array(array.tolist(), dtype=nullable) if (
                    array.dtype == object and nullable is not None) else array
            elif category in _NUMPY_TYPES:
                data[name] = _numeric_series(column, category)
            else:
                data[name] = column.to_pandas()
    return frame_from(expr, data, result.names)


def _numeric_series(column: Any, category: str) -> Any:
    """A numeric Arrow column as the row fetch shapes it: its numpy dtype, NaN for a float
    NULL, pandas' nullable integer and boolean types where NULLs are."""
    import pandas as pd

    if not column.null_count:
        return column.to_numpy(zero_copy_only=False)
    if category.startswith("float"):
        return column.to_numpy(zero_copy_only=False)
    mask = column.is_null().to_numpy(zero_copy_only=False)
    filled = column.fill_null(False if category == "bool" else 0).to_numpy(zero_copy_only=False)
    if category == "bool":
        return pd.arrays.BooleanArray(filled, mask)
    return pd.arrays.IntegerArray(filled.astype(_NUMPY_TYPES[category], copy=False), mask)


def polars_frame(expr: QueryExpression, result: ArrowResult) -> Any:
    """A polars DataFrame: Arrow columns as they are; decoded values that Arrow cannot hold
    (blobs as numpy arrays) as polars objects."""
    try:
        import polars as pl
    except ImportError:
        raise DataJointError("polars results need polars: pip install polars") from None
    pa = _pyarrow()
    series = []
    for name in result.names:
        column = result.columns[name]
        if isinstance(column, list):
            series.append(_object_series(pl, pa, expr.heading[name], name, column))
        elif isinstance(column.type, pa.UuidType):  # polars has no uuid: Python objects
            series.append(pl.Series(name, column.to_pylist(), dtype=pl.Object))
        else:
            series.append(pl.Series(name, column))
    return pl.DataFrame(series)


def _object_series(pl: Any, pa: Any, attr: Attribute, name: str, values: Sequence[Any]
                   ) -> Any:
    target = arrow_type(attr)
    if target == pa.uuid() or any(isinstance(v, np.ndarray) for v in values):
        return pl.Series(name, values, dtype=pl.Object)
    try:
        return pl.Series(name, pa.array(values, type=target, from_pandas=False))
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return pl.Series(name, list(values), dtype=pl.Object)
