"""Rows in any accepted form -> checked, encoded columns -> the backend's bulk path, atomically."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa

from .errors import DataJointError
from .settings import config

if TYPE_CHECKING:
    from .table import Table


def normalize_rows(table: Table, rows: Any, *, ignore_extra_fields: bool
                   ) -> tuple[list[str], list[tuple[Any, ...]]]:
    """(attribute names, row tuples) from dicts, sequences, records or a DataFrame."""
    heading = table.heading
    name = type(table).__name__
    try:
        import pandas as pd

        if isinstance(rows, pd.DataFrame):
            frame = rows.reset_index() if rows.index.names[0] is not None else rows
            rows = frame.to_dict("records")
    except ImportError:  # pragma: no cover
        pass
    if isinstance(rows, np.ndarray) and rows.dtype.names is not None:
        names = table._row_names(rows.dtype.names, ignore_extra=ignore_extra_fields)
        return names, [tuple(record[n] for n in names) for record in rows]
    rows = list(rows) if not isinstance(rows, list) else rows
    if not rows:
        return heading.names, []
    first = rows[0]
    if isinstance(first, Mapping) or (isinstance(first, np.void) and first.dtype.names):
        names_seen: dict[str, None] = {}
        for row in rows:
            keys = row.dtype.names if isinstance(row, np.void) else row.keys()
            names_seen.update(dict.fromkeys(keys))
        names = table._row_names(names_seen, ignore_extra=ignore_extra_fields)
        out = []
        for row in rows:
            if isinstance(row, np.void):
                row = {n: row[n] for n in row.dtype.names}
            out.append(tuple(row.get(n, _MISSING) for n in names))
        return names, out
    names = heading.names
    out = []
    for row in rows:
        values = tuple(row)
        if len(values) != len(names):
            raise DataJointError(
                f"{name}: a row has {len(values)} values but the heading has {len(names)} "
                f"attributes ({', '.join(names)})")
        out.append(values)
    return names, out


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()


def _plain(value: Any) -> Any:
    """numpy scalars -> Python scalars, so every driver binds them."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def encode_columns(table: Table, names: list[str], rows: list[tuple[Any, ...]]
                   ) -> list[tuple[Any, ...]]:
    heading = table.heading
    codecs = [heading[n].codec for n in names]
    encoded = []
    for row in rows:
        values = []
        for value, codec in zip(row, codecs):
            if value is _MISSING:
                values.append(value)
            elif value is None:
                values.append(None)
            elif codec is not None:
                values.append(codec.encode(value))
            else:
                values.append(_plain(value))
        encoded.append(tuple(values))
    return encoded


def insert_rows(table: Table, rows: Any, *, skip_duplicates: bool = False,
                ignore_extra_fields: bool = False, replace: bool = False,
                chunk_size: int | None = None) -> None:
    from .expression import QueryExpression
    from .table import missing_required

    if isinstance(rows, QueryExpression) and not isinstance(rows, type(table)) or (
            isinstance(rows, type) and issubclass(rows, QueryExpression)):
        raise DataJointError("INSERT ... SELECT from a query is not supported yet")
    name = type(table).__name__
    names, values = normalize_rows(table, rows, ignore_extra_fields=ignore_extra_fields)
    if not values:
        return
    missing_required(table.heading, names, name)
    values = encode_columns(table, names, values)
    # rows that lack some attributes are grouped by the attributes they have
    groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
    for row in values:
        present = tuple(n for n, v in zip(names, row) if v is not _MISSING)
        if len(present) == len(names):
            groups.setdefault(tuple(names), []).append(row)
        else:
            groups.setdefault(present, []).append(tuple(v for v in row if v is not _MISSING))
    for present in groups:
        missing_required(table.heading, present, name)
    connection = table.connection
    backend = connection.backend_impl
    sa_table = table._sa_table
    assert sa_table is not None
    key = table.primary_key
    mode = "replace" if replace else "skip" if skip_duplicates else "insert"
    size = chunk_size or int(config["insert.chunk_size"])
    try:
        with connection.session(write=True) as sa_conn:
            for present, group in groups.items():
                if mode == "skip" and backend.skip_needs_prefilter:
                    group = _without_existing_keys(sa_conn, sa_table, present, group, key)
                for start in range(0, len(group), size):
                    backend.insert_rows(sa_conn, sa_table, present, group[start:start + size],
                                        mode=mode, key=key)
    except sa.exc.DBAPIError as error:
        raise connection.classify(error, name) from error


def _without_existing_keys(sa_conn: Any, sa_table: sa.Table, names: Iterable[str],
                           rows: list[tuple[Any, ...]], key: list[str]) -> list[tuple[Any, ...]]:
    names = list(names)
    positions = [names.index(k) for k in key]
    wanted = {tuple(row[p] for p in positions) for row in rows}
    existing: set[tuple[Any, ...]] = set()
    columns = [sa_table.c[k] for k in key]
    keys = list(wanted)
    for start in range(0, len(keys), 1000):
        chunk = keys[start:start + 1000]
        condition = sa.tuple_(*columns).in_(chunk) if len(columns) > 1 else columns[0].in_(
            [k[0] for k in chunk])
        existing.update(tuple(r) for r in sa_conn.execute(sa.select(*columns).where(condition)))
    seen: set[tuple[Any, ...]] = set()
    kept = []
    for row in rows:
        k = tuple(row[p] for p in positions)
        if k not in existing and k not in seen:
            seen.add(k)
            kept.append(row)
    return kept


def update_row(table: Table, row: Mapping[str, Any]) -> None:
    """Update secondary attributes of exactly one existing row."""
    name = type(table).__name__
    key = table.primary_key
    missing = [k for k in key if k not in row]
    if missing:
        raise DataJointError(f"update1 of {name} needs the whole primary key; missing "
                             f"{', '.join(missing)}")
    table._row_names(row.keys(), ignore_extra=False)
    changes = {k: v for k, v in row.items() if k not in key}
    if not changes:
        raise DataJointError(f"update1 of {name}: nothing to update")
    sa_table = table._sa_table
    assert sa_table is not None
    encoded = encode_columns(table, list(changes), [tuple(changes.values())])[0]
    statement = sa.update(sa_table).where(*(sa_table.c[k] == _plain(row[k]) for k in key)) \
        .values(dict(zip(changes, encoded)))
    connection = table.connection
    try:
        with connection.session(write=True) as sa_conn:
            count = sa_conn.execute(statement).rowcount
            if count != 1:
                raise DataJointError(f"update1 of {name}: no row with key "
                                     f"{ {k: row[k] for k in key} }")
    except sa.exc.DBAPIError as error:
        raise connection.classify(error, name) from error
