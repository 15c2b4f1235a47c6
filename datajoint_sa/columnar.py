"""Columnar fetches: `fetch(format="arrow" | "polars")`, and DataFrames built from Arrow.

Where the backend has a columnar driver (ADBC: PostgreSQL reads the result as binary COPY,
SQLite) and no transaction is open, the query's SQL (compiled from the expression exactly as
the row fetch compiles it) runs there and its columns arrive as Arrow arrays filled in C.
Every column then takes the Arrow type its attribute has on every backend (`arrow_type`):
columns that already have it, or reach it by an exact cast (int64 -> int16, numeric text ->
decimal128), stay in Arrow; the others (blobs and other codecs, json, SQLite's dates held
as text ...) go through the same result processors and codecs as the row fetch. Elsewhere
(MySQL, inside a transaction, no driver installed) the row fetch's decoded columns are
converted. Either way the values are those of the plain fetch; a value the attribute's Arrow
type cannot hold exactly is refused with a DataJointError naming the attribute.
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
    among the columns of a table format. Everything else is the row fetch (fetch.py)."""
    fetching.check_format(format, as_dict, _FORMATS)
    columnar_frame = format == "frame" and batch_size is None and columnar_reader(expr)
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
                                    **select_options))


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
                 download_path: str | None = None, **select_options: Any) -> ArrowResult:
    """The result of the query: from the columnar driver where there is one, else rows."""
    result = _read_columnar(expr, names, squeeze=squeeze, download_path=download_path,
                            **select_options)
    if result is not None:
        return result
    columns = query_columns(expr, names, squeeze=squeeze, download_path=download_path,
                            **select_options)
    return ArrowResult(list(names), columns.length,
                       {n: list(columns.column(n)) for n in names})


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
            if isinstance(column, list):
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
