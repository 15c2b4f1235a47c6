"""Rows in any accepted form -> checked, converted columns -> the backend's bulk path, atomically.

Rows are turned into columns once (dicts, sequences, records, DataFrames); each column is
checked and converted as a whole (numpy does the numeric work, codecs encode per value, the
dialect's bind processors run per column); the row tuples then go to the backend's fastest
path (COPY, multi-row INSERT, executemany) inside one transaction, so a failing row anywhere
leaves nothing written.
"""

from __future__ import annotations

import logging
import math
import random
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from functools import partial
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa

from .backends.rows import ColumnRows
from .codecs import CodecContext
from .connection import label
from .errors import DataJointError, MissingAttributeError
from .expression import QueryExpression
from .fetch import gc_paused
from .settings import config
from .transfers import encode_all
from .values import (
    FLOAT_CATEGORIES,
    INTEGER_CATEGORIES,
    NATIVE,
    check_column,
    coerce,
    family_of,
    is_pandas_missing,
)

if TYPE_CHECKING:
    from .connection import Connection
    from .heading import Attribute, Heading
    from .table import Table

logger = logging.getLogger("datajoint_sa")


#: row groups: the attributes given, and the rows (tuples in that order) that give them
Groups = list[tuple[list[str], Sequence[tuple[Any, ...]]]]


class _Missing:
    """Marks an attribute a row does not give (the column default applies)."""

    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()


class Columns:
    """Rows in one shape: row tuples (from dicts and sequences, kept as they are so that a
    clean batch reaches the driver without being transposed twice) or one sequence per
    attribute (from records and DataFrames)."""

    def __init__(self, names: list[str], length: int, *, values: list[Any] | None = None,
                 rows: list[tuple[Any, ...]] | None = None) -> None:
        self.names = names
        self.length = length
        self.values = values
        self.rows = rows

    def column(self, position: int) -> Any:
        if self.values is not None:
            return self.values[position]
        assert self.rows is not None
        return list(map(itemgetter(position), self.rows))


# ------------------------------------------------------------------------- rows -> columns

def to_columns(table: Table, rows: Any, *, ignore_extra_fields: bool) -> Columns:
    """Columns from dicts, sequences in heading order, records, a DataFrame or an Arrow
    table (or record batch)."""
    if type(rows) in (list, tuple) and rows and type(rows[0]) is dict:  # a make's rows
        return _dict_columns(table, rows if type(rows) is list else list(rows),
                             ignore_extra_fields)
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(rows, pandas.DataFrame):
        frame = rows.reset_index() if any(n is not None for n in rows.index.names) else rows
        names = [str(c) for c in frame.columns]
        if len(set(names)) != len(names):
            raise DataJointError(f"{label(table)}: the DataFrame has duplicate column names")
        values = [_series_values(frame.iloc[:, i]) for i in range(len(names))]
        return _known(table, names, values, len(frame), ignore_extra_fields)
    if _is_arrow(rows):
        names = list(rows.schema.names)
        values = [_arrow_values(rows.column(i)) for i in range(len(names))]
        return _known(table, names, values, rows.num_rows, ignore_extra_fields)
    if isinstance(rows, np.ndarray) and rows.dtype.names is not None:
        array = rows.reshape(-1)
        names = list(array.dtype.names or ())
        return _known(table, names, [array[n] for n in names], len(array), ignore_extra_fields)
    if isinstance(rows, (Mapping, str, bytes)):
        raise DataJointError(f"{label(table)}: insert takes a collection of rows; "
                             "use insert1 for a single row")
    try:
        rows = rows if isinstance(rows, list) else list(rows)
    except TypeError:
        raise DataJointError(f"{label(table)}: cannot insert {type(rows).__name__} "
                             "(expected rows: dicts, sequences, records or a DataFrame)") from None
    if not rows:
        return Columns([], 0, values=[])
    first = rows[0]
    if isinstance(first, np.void) and first.dtype.names:
        try:
            records = np.array(rows, dtype=first.dtype)
        except (TypeError, ValueError):  # records of differing dtypes: read them as dicts
            return _dict_columns(table, rows, ignore_extra_fields)
        return to_columns(table, records, ignore_extra_fields=ignore_extra_fields)
    if isinstance(first, Mapping):
        return _dict_columns(table, rows, ignore_extra_fields)
    return _sequence_columns(table, rows)


def _is_arrow(rows: Any) -> bool:
    pyarrow = sys.modules.get("pyarrow")
    return pyarrow is not None and isinstance(rows, (pyarrow.Table, pyarrow.RecordBatch))


def _arrow_values(column: Any) -> Any:
    """An Arrow column as numpy (numbers without NULLs: no Python object per value) or as
    its Python values (the types the row insert takes: Decimal, datetime, UUID ...)."""
    pyarrow = sys.modules["pyarrow"]
    kind = column.type
    if not column.null_count and (pyarrow.types.is_integer(kind)
                                  or pyarrow.types.is_floating(kind)):
        return column.to_numpy()
    return column.to_pylist()


def _series_values(series: Any) -> Any:
    """A DataFrame column as an ndarray (extension dtypes give objects with None for NA)."""
    if isinstance(series.dtype, np.dtype):
        return series.to_numpy()
    return series.to_numpy(dtype=object, na_value=None)


def _dict_columns(table: Table, rows: list[Any], ignore_extra: bool) -> Columns:
    first = rows[0]
    names = list(first.keys())
    width = len(names)
    if width and set(map(len, rows)) == {width}:
        # the common case, every row with the same keys: one C-level pass per attribute picks
        # its column (the checks and the bulk paths read columns: no tuple per row is made)
        kept = table._row_names(names, ignore_extra=ignore_extra)
        try:
            picked = [list(map(itemgetter(name), rows)) for name in kept]
        except (KeyError, TypeError, IndexError, ValueError):
            pass
        else:
            return Columns(kept, len(rows), values=picked)
    # rows with differing keys: the union of names, _MISSING where a row lacks one
    seen: dict[str, None] = {}
    dicts = []
    for index, row in enumerate(rows):
        if isinstance(row, np.void) and row.dtype.names:
            row = {n: row[n] for n in row.dtype.names}
        if not isinstance(row, Mapping):
            raise DataJointError(f"{label(table)}: row {index} is a {type(row).__name__} "
                                 "among dict rows")
        seen.update(dict.fromkeys(row))
        dicts.append(row)
    names = list(seen)
    values = [[row.get(name, _MISSING) for row in dicts] for name in names]
    return _known(table, names, values, len(rows), ignore_extra)


def _sequence_columns(table: Table, rows: list[Any]) -> Columns:
    names = table.heading.names
    kinds = set(map(type, rows))
    if any(issubclass(k, (str, bytes, Mapping)) for k in kinds):
        raise DataJointError(f"{label(table)}: rows must all be dicts or all be sequences "
                             "in heading order")
    try:
        tuples = list(map(tuple, rows))
    except TypeError:
        raise DataJointError(f"{label(table)}: a row is neither a dict nor a sequence") from None
    lengths = set(map(len, tuples))
    if lengths != {len(names)}:
        bad = next(n for n in lengths if n != len(names))
        raise DataJointError(
            f"{label(table)}: a row has {bad} values but the heading has {len(names)} "
            f"attributes ({', '.join(names)})")
    return Columns(list(names), len(rows), rows=tuples)


def _known(table: Table, names: list[str], values: list[Any], length: int,
           ignore_extra: bool) -> Columns:
    kept = set(table._row_names(names, ignore_extra=ignore_extra))
    pairs = [(n, v) for n, v in zip(names, values) if n in kept]
    return Columns([n for n, _ in pairs], length, values=[v for _, v in pairs])


# ------------------------------------------------------------------------- column conversion

def _as_list(attr: Attribute, values: Any, where: str) -> list[Any]:
    """A column as a list of Python values; numpy does the conversion in bulk."""
    if not isinstance(values, np.ndarray):
        return values if type(values) is list else list(values)
    if attr.codec is not None:
        return list(values)  # one object per row (sub-arrays stay arrays)
    if values.ndim != 1:
        raise DataJointError(f"{where}: attribute {attr.name} ({attr.type}) got an array "
                             f"of shape {values.shape[1:]} per row")
    kind = values.dtype.kind
    if kind == "f":
        result = values.tolist()
        for i in np.flatnonzero(np.isnan(values)).tolist():
            result[i] = None
        return result
    if kind == "M":
        unit = "D" if attr.type_info.category == "date" else "us"
        return values.astype(f"datetime64[{unit}]").tolist()
    if kind == "m":
        return values.astype("timedelta64[us]").tolist()
    if kind == "O":
        return list(values)
    return values.tolist()


def _plain_scalars(values: list[Any]) -> list[Any]:
    return [v.item() if isinstance(v, np.generic) else v for v in values]


def codec_options(table: Table, attr: Attribute) -> dict[str, Any]:
    """The context a codec is given besides the value: where the value lives."""
    return {"context": CodecContext(schema=table.database if table._schema else "",
                                    table=type(table).__name__, attribute=attr.name,
                                    connection=table._connection)}


def convert_column(attr: Attribute, values: Any, where: str, *,
                   keys: Sequence[dict[str, Any]] | None = None,
                   options: Mapping[str, Any] | None = None) -> tuple[list[Any], Any]:
    """(values ready for the dialect's bind processing, mask of rows taking the default).

    NaN and None mean NULL; where the attribute has a default (or auto_increment) they mean
    "use the default", as a missing attribute does. Type checks look at the set of Python
    types in the column, so a clean column costs no per-value Python work.
    """
    values, missing, _ = _converted(attr, values, where, keys=keys, options=options)
    return values, missing


def _no_nan(values: list[float]) -> bool:
    """Whether a column of floats holds no NaN: a finite sum (one C loop) proves it; only
    an infinite or NaN sum needs the pass that looks at each value."""
    return math.isfinite(sum(values)) or not any(map(math.isnan, values))


def _converted(attr: Attribute, values: Any, where: str, *,
               keys: Sequence[dict[str, Any]] | None = None,
               options: Mapping[str, Any] | None = None
               ) -> tuple[list[Any], Any, set[type] | None]:
    """convert_column, plus the set of Python types of the values it returns (None where
    a codec made them): check_column then need not take that pass over the column again."""
    values = _as_list(attr, values, where)
    kinds = set(map(type, values))
    if any(map(is_pandas_missing, kinds)):  # NULL, as the DataFrame path reads them
        values = [None if is_pandas_missing(type(v)) else v for v in values]
        kinds = set(map(type, values))
    codec = attr.codec
    if codec is None and len(kinds) == 1 and (
            (int in kinds and attr.type_info.category in INTEGER_CATEGORIES)
            or (float in kinds and attr.type_info.category in FLOAT_CATEGORIES and _no_nan(values))):
        return values, None, kinds  # plain ints / finite-or-inf floats: nothing to convert
    if codec is not None:  # store objects of the column move concurrently (transfers)
        values = encode_all(codec, values, keys, dict(options or {}),
                            lambda v: v is None or v is _MISSING)
    else:
        given = values
        if any(issubclass(k, np.generic) for k in kinds):
            values = _plain_scalars(values)
            kinds = set(map(type, values))
        if float in kinds and (any(map(math.isnan, values)) if kinds <= {float, int, bool}
                               else any(v != v for v in values if type(v) is float)):
            values = [None if type(v) is float and v != v else v for v in values]
        family = family_of(attr.type_info.category)
        if family is not None:
            native = NATIVE[family] | {type(None), _Missing}
            if kinds - native:
                values = [v if type(v) in native else coerce(attr, family, v, where)
                          for v in values]
        if values is not given:
            kinds = set(map(type, values))
    known: set[type] | None = None if codec is not None else kinds
    missing = None
    if type(None) in kinds or _Missing in kinds:
        takes_default = attr.default is not None or attr.autoincrement
        if type(None) in kinds and not (takes_default or attr.nullable):
            row = next(i for i, v in enumerate(values) if v is None)
            raise MissingAttributeError(f"{where}: attribute {attr.name} ({attr.type}) needs a "
                                        f"value; row {row} has none")
        if takes_default:
            missing = np.fromiter((v is None or v is _MISSING for v in values), dtype=bool,
                                  count=len(values))
        elif _Missing in kinds:
            missing = np.fromiter((v is _MISSING for v in values), dtype=bool,
                                  count=len(values))
        if missing is not None:
            values = [None if v is _MISSING else v for v in values]
            if known is not None and _Missing in known:
                known = (known - {_Missing}) | {type(None)}
    return values, missing, known


def _bind(column: sa.Column[Any], dialect: Any, values: list[Any], attr: Attribute,
          where: str) -> list[Any]:
    """Apply the dialect's bind processor of the column to a whole column.

    Integer, float and boolean columns are already plain Python numbers (convert_column
    checked them), which every driver binds as they are: their processors (SQLite's
    float() of every value, say) are skipped."""
    if attr.codec is None and family_of(attr.type_info.category) in ("int", "float", "bool"):
        return values
    processor = column.type.dialect_impl(dialect).bind_processor(dialect)
    if processor is None:
        return values
    try:
        return [None if v is None else processor(v) for v in values]
    except (TypeError, ValueError, LookupError, AttributeError, DataJointError) as error:
        bad = next((v for v in values if v is not None and _fails(processor, v)), None)
        raise DataJointError(f"{where}: invalid value {bad!r} for attribute {attr.name} "
                             f"({attr.type}): {error}") from error


def _fails(processor: Any, value: Any) -> bool:
    try:
        processor(value)
    except Exception:
        return True
    return False


# ------------------------------------------------------------------------- inserting

#: up to this many rows (a make's insert1 and small part inserts) the collector is not paused:
#: pausing and resuming it costs more than the few containers they allocate
FEW_ROWS = 16


def insert_rows(table: Table, rows: Any, *, skip_duplicates: bool = False,
                ignore_extra_fields: bool = False, replace: bool = False,
                chunk_size: int | None = None) -> None:
    """Insert rows into table in one transaction (see Table.insert)."""
    if skip_duplicates and replace:
        raise DataJointError("insert: skip_duplicates and replace exclude each other")
    mode = "replace" if replace else "skip" if skip_duplicates else "insert"
    if isinstance(rows, type) and issubclass(rows, QueryExpression):
        rows = rows()
    if isinstance(rows, QueryExpression):
        table.connection.retrying(lambda: _insert_select(
            table, rows, mode=mode, ignore_extra_fields=ignore_extra_fields))
        return
    where = label(table)
    few = type(rows) in (list, tuple) and len(rows) <= FEW_ROWS
    with nullcontext() if few else gc_paused():
        if not few and mode == "insert" and chunk_size is None and _streams(table, rows):
            try:
                table.connection.retrying(
                    partial(_write_streamed, table, rows, ignore_extra_fields, where))
                return
            except _Unstreamable:
                pass  # rolled back: the whole insert is checked and written as one below
        groups = _prepared_rows(table, rows, ignore_extra_fields, where)
        buffer = table.connection.write_buffer  # a grouped populate's make: written later
        if groups and not (buffer is not None and buffer.take(table, groups, mode)):
            table.connection.retrying(partial(_write, table, groups, mode, chunk_size))
        del groups  # freed while paused, so the collector never scans the row tuples


def _prepared_rows(table: Table, rows: Any, ignore_extra_fields: bool, where: str
                   ) -> Groups:
    """Row tuples in driver form, grouped by the attributes they give."""
    columns = to_columns(table, rows, ignore_extra_fields=ignore_extra_fields)
    if not columns.length:
        return []
    heading = table.heading
    names = columns.names
    missing_required(heading, names, where)
    sa_table = table._sa_table
    assert sa_table is not None
    dialect = table.connection.engine.dialect
    backend = table.connection.backend_impl
    originals = [columns.column(i) for i in range(len(names))]
    keys = None
    if any(heading[n].codec is not None for n in names) and all(
            k in names for k in table.primary_key):
        key_columns = [originals[names.index(k)] for k in table.primary_key]
        keys = [dict(zip(table.primary_key, k)) for k in zip(*key_columns)]
    values: list[list[Any]] = []
    masks: dict[str, Any] = {}
    drops = _drops_fractions(table)
    for name, column in zip(names, originals):
        attr = heading[name]
        converted, missing, kinds = _converted(
            attr, column, where, keys=keys,
            options=codec_options(table, attr) if attr.codec is not None else None)
        if missing is not None:
            masks[name] = missing
        converted = check_column(attr, converted, where, backend,
                                 drop_excess_fractions=drops, kinds=kinds)
        values.append(_bind(sa_table.c[name], dialect, converted, attr, where))
    if columns.rows is not None and not masks and all(
            v is o for v, o in zip(values, originals)):
        return [(names, columns.rows)]  # nothing changed: the rows go as they came
    groups = _group(names, values, masks, columns.length)
    for present, _ in groups:
        missing_required(heading, present, where)
    return groups


#: a plain insert of a list of at least two pieces of this many rows, outside a
#: transaction, on a backend whose bulk path streams, is checked and sent piece by piece
STREAM_PIECE_ROWS = 4_000


class _Unstreamable(Exception):
    """A piece the stream cannot take: rows that leave out attributes the first piece gave
    (they form groups of their own), or bad input. The streamed transaction is rolled back
    and the insert is redone whole, which then writes the groups or raises the error it
    always raised (same message, same row numbers)."""


def _streams(table: Table, rows: Any) -> bool:
    """Whether this insert is sent in pieces (`_write_streamed`): the backend's bulk path
    streams (PostgreSQL's COPY), the rows are a list of at least two pieces, no attribute
    has a codec (their values move to stores before the rows), and no transaction is
    open (a failed piece rolls back only what the insert itself began)."""
    connection = table.connection
    return (connection.backend_impl.bulk_streams
            and type(rows) in (list, tuple) and len(rows) >= 2 * STREAM_PIECE_ROWS
            and connection.write_buffer is None and not connection.in_transaction
            and all(a.codec is None for a in table.heading.attributes))


def _write_streamed(table: Table, rows: Sequence[Any], ignore_extra_fields: bool,
                    where: str) -> None:
    """Check, convert and send the rows piece by piece in one transaction and one bulk
    load (`Backend.insert_pieces`): the server stores a piece while the next is checked,
    where checking all first kept it idle. Raises _Unstreamable (nothing written) where a
    piece cannot go this way."""
    size = STREAM_PIECE_ROWS

    def prepared(start: int) -> Groups:
        try:
            return _prepared_rows(table, rows[start:start + size], ignore_extra_fields, where)
        except DataJointError as error:
            raise _Unstreamable() from error

    first = prepared(0)
    if len(first) != 1 or not first[0][0]:
        raise _Unstreamable()
    present, first_rows = first[0]

    def pieces() -> Iterator[Sequence[tuple[Any, ...]]]:
        yield first_rows
        for start in range(size, len(rows), size):
            groups = prepared(start)
            if len(groups) != 1 or groups[0][0] != present:
                raise _Unstreamable()
            yield groups[0][1]

    sa_table = table._sa_table
    assert sa_table is not None
    connection = table.connection

    def write() -> None:
        with connection.session(write=True) as sa_conn:
            connection.backend_impl.insert_pieces(sa_conn, sa_table, present, pieces())

    with connection.translating(table, "insert into"):
        _with_retries(connection, write)


#: how many times an insert outside a transaction runs when it keeps losing lock conflicts
WRITE_ATTEMPTS = 6


def _with_retries(connection: Connection, write: Any) -> None:
    """Run `write` (one whole transaction) again when the server rolled it back for a lock
    conflict (deadlock, serialization failure, busy database): concurrent upserts of
    overlapping keys meet such conflicts as a matter of course. Inside a caller's transaction
    nothing is retried: the conflict rolled back the caller's work too, so it is theirs."""
    backend = connection.backend_impl
    for attempt in range(WRITE_ATTEMPTS):
        try:
            write()
            return
        except DataJointError:
            raise
        except Exception as error:
            if (connection.in_transaction or attempt + 1 == WRITE_ATTEMPTS
                    or not backend.is_transient(error)):
                raise
            logger.info("insert lost a lock conflict (%s); trying again",
                        type(getattr(error, "orig", None) or error).__name__)
            time.sleep(random.uniform(0.0, 0.02 * 2 ** attempt))  # jitter splits the rivals


def _in_key_order(names: list[str], rows: Sequence[tuple[Any, ...]], key: list[str]
                  ) -> Sequence[tuple[Any, ...]]:
    """Rows sorted by primary key, so concurrent upserts lock rows in one order (fewer
    deadlocks); left as they are when the key is incomplete or its values do not compare."""
    positions = [names.index(k) for k in key if k in names]
    if len(positions) != len(key) or len(rows) < 2:
        return rows
    try:
        return sorted(rows, key=lambda row: tuple(row[p] for p in positions))
    except TypeError:
        return rows


def _write(table: Table, groups: Groups, mode: str,
           chunk_size: int | None) -> None:
    """The backend's bulk path for every group, in one transaction."""
    sa_table = table._sa_table
    assert sa_table is not None
    connection = table.connection
    key = table.primary_key
    backend = connection.backend_impl
    size = chunk_size or (None if backend.bulk_streams else int(config["insert.chunk_size"]))
    if mode != "insert":
        groups = [(present, _in_key_order(
            present, _last_per_key(present, rows, key) if mode == "replace" else rows, key))
            for present, rows in groups]

    def write() -> None:
        with connection.session(write=True) as sa_conn:
            for present, group_rows in groups:
                if not present:  # all defaults: INSERT ... DEFAULT VALUES, row by row
                    for _ in group_rows:
                        sa_conn.execute(sa.insert(sa_table))
                    continue
                step = size or len(group_rows)
                for start in range(0, len(group_rows), step):
                    backend.insert_rows(sa_conn, sa_table, present,
                                        group_rows[start:start + step], mode=mode, key=key)

    with connection.translating(table, "insert into"):
        _with_retries(connection, write)


def _group(names: list[str], values: list[list[Any]], masks: dict[str, Any], length: int
           ) -> Groups:
    """Row tuples grouped by the attributes they give (rows lacking one leave it out)."""
    if not names:  # rows that give nothing: every attribute has a default or auto_increment
        return [([], [()] * length)]
    if not masks:
        return [(names, _rows(values, length))]
    masked = list(masks)
    pattern = np.zeros(length, dtype=np.int64)
    for bit, name in enumerate(masked):
        pattern |= masks[name].astype(np.int64) << bit
    groups = []
    for code in np.unique(pattern).tolist():
        rows = np.flatnonzero(pattern == code)
        omitted = {name for bit, name in enumerate(masked) if code >> bit & 1}
        present = [n for n in names if n not in omitted]
        chosen = [v for n, v in zip(names, values) if n not in omitted]
        if len(rows) == length:
            groups.append((present, _rows(chosen, length)))
        else:
            pick = rows.tolist()
            groups.append((present, list(zip(*([column[i] for i in pick]
                                                 for column in chosen)))))
    return groups


def _rows(values: list[list[Any]], length: int) -> Sequence[tuple[Any, ...]]:
    """Converted columns as the rows a backend takes: a few as tuples (a make's rows, which
    a grouped populate collects), more as the columns themselves (see backends.rows)."""
    if length <= FEW_ROWS:
        return list(zip(*values))
    return ColumnRows(values, length)


def _last_per_key(names: list[str], rows: Sequence[tuple[Any, ...]], key: list[str]
                  ) -> Sequence[tuple[Any, ...]]:
    """For replace: one row per primary key, the last one given (as sequential upserts)."""
    positions = [names.index(k) for k in key if k in names]
    if len(positions) != len(key):
        return rows
    latest = {tuple(row[p] for p in positions): row for row in rows}
    return rows if len(latest) == len(rows) else list(latest.values())


def _insert_select(table: Table, expr: Any, *, mode: str, ignore_extra_fields: bool) -> None:
    """Server-side INSERT ... SELECT from a query expression."""
    where = label(table)
    names = table._row_names(expr.heading.names, ignore_extra=ignore_extra_fields)
    missing_required(table.heading, names, where)
    sa_table = table._sa_table
    assert sa_table is not None
    connection = table.connection

    def write() -> None:
        with connection.session(write=True) as sa_conn:
            connection.backend_impl.insert_select(sa_conn, sa_table, names, expr.to_select(),
                                                  mode=mode, key=table.primary_key)

    with connection.translating(table, "insert into"):
        _with_retries(connection, write)


def missing_required(heading: Heading, given: Iterable[str], table: str) -> None:
    """Raise MissingAttributeError for attributes that need a value and have none."""
    given = set(given)
    missing = [a.name for a in heading.attributes
               if a.name not in given and not a.nullable and a.default is None
               and not a.autoincrement]
    if missing:
        raise MissingAttributeError(
            f"Missing value{'s' if len(missing) > 1 else ''} for {', '.join(missing)} "
            f"in {table}")


# ------------------------------------------------------------------------- updating

def update_row(table: Table, row: Mapping[str, Any]) -> None:
    """Update secondary attributes of exactly one existing row, named by its primary key."""
    where = label(table)
    if not isinstance(row, Mapping):
        if isinstance(row, np.void) and row.dtype.names:
            row = {n: row[n] for n in row.dtype.names}
        else:
            raise DataJointError(f"update1 of {where} takes a dict with the primary key and "
                                 "the attributes to change")
    key = table.primary_key
    missing = [k for k in key if k not in row]
    if missing:
        raise DataJointError(f"update1 of {where} needs the whole primary key; missing "
                             f"{', '.join(missing)}")
    table._row_names(row.keys(), ignore_extra=False)
    heading = table.heading
    changes = [k for k in row if k not in key]
    if not changes:
        raise DataJointError(f"update1 of {where}: nothing to update")
    sa_table = table._sa_table
    assert sa_table is not None
    values: dict[str, Any] = {}
    for name in [*key, *changes]:
        attr = heading[name]
        converted, missing_mask = convert_column(
            attr, [row[name]], where, keys=[{k: row[k] for k in key}],
            options=codec_options(table, attr) if attr.codec is not None else None)
        if missing_mask is not None and missing_mask[0] and name in changes:
            if heading[name].nullable:
                converted = [None]
            else:
                raise MissingAttributeError(f"update1 of {where}: attribute {name} cannot be "
                                            "set to NULL")
        converted = check_column(attr, converted, where, table.connection.backend_impl,
                                 drop_excess_fractions=_drops_fractions(table))
        values[name] = converted[0]
    match = [sa_table.c[k] == values[k] for k in key]
    connection = table.connection
    with connection.translating(table, "update"):
        with connection.session(write=True) as sa_conn:
            found = sa_conn.execute(sa.select(sa.func.count()).select_from(sa_table)
                                    .where(*match)).scalar()
            if not found:
                raise DataJointError(f"update1 of {where}: no row with key "
                                     f"{ {k: row[k] for k in key} }")
            sa_conn.execute(sa.update(sa_table).where(*match)
                            .values({c: values[c] for c in changes}))


def _drops_fractions(table: Any) -> bool:
    """Whether the table's schema drops excess fractional seconds (classic tables)."""
    schema = table._schema
    return bool(schema is not None and schema.drops_excess_fractions)
