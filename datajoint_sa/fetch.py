"""Result rows -> numpy structured arrays, pandas DataFrames, dicts; codecs decoded per column."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa

from .errors import DataJointError

if TYPE_CHECKING:
    from .expression import QueryExpression

_NUMPY_TYPES = {
    "bool": "bool", "int8": "int8", "uint8": "uint8", "int16": "int16", "uint16": "uint16",
    "int24": "int32", "uint24": "uint32", "int32": "int32", "uint32": "uint32",
    "int64": "int64", "uint64": "uint64", "float32": "float32", "float64": "float64",
}


def _ordered_select(expr: QueryExpression, order_by: Any, limit: int | None,
                    offset: int | None) -> sa.Select[Any]:
    select = expr.to_select()
    columns = select.selected_columns
    if order_by is not None:
        items = [order_by] if isinstance(order_by, str) else list(order_by)
        clauses = []
        for item in items:
            parts = item.split()
            names = expr.primary_key if parts[0] == "KEY" else [parts[0]]
            descending = len(parts) > 1 and parts[1].lower() == "desc"
            expr.heading.check(names, context="order_by")
            clauses += [columns[n].desc() if descending else columns[n].asc() for n in names]
        select = select.order_by(*clauses)
    if limit is not None:
        select = select.limit(limit)
    if offset is not None:
        if limit is None:
            raise DataJointError("offset requires a limit")
        select = select.offset(offset)
    return select


def _decode_columns(expr: QueryExpression, names: list[str], rows: list[Any]
                    ) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {}
    for i, name in enumerate(names):
        values = [row[i] for row in rows]
        codec = expr.heading[name].codec
        if codec is not None:
            values = [None if v is None else codec.decode(v) for v in values]
        columns[name] = values
    return columns


def _to_recarray(expr: QueryExpression, names: list[str], columns: dict[str, list[Any]],
                 length: int) -> np.ndarray:
    dtype = []
    for name in names:
        kind = _NUMPY_TYPES.get(expr.heading[name].type_info.category, "O")
        if kind != "O" and any(v is None for v in columns[name]):
            kind = "float64" if kind.startswith(("int", "uint", "float")) else "O"
        dtype.append((name, kind))
    array = np.empty(length, dtype=dtype)
    for name, kind in dtype:
        values = columns[name]
        if kind == "float64":
            array[name] = [np.nan if v is None else v for v in values]
        elif kind == "O":
            array[name] = np.array(values + [None], dtype=object)[:-1]
        else:
            array[name] = values
    return array


def fetch(expr: QueryExpression, *attrs: str, as_dict: bool = False, format: str | None = None,
          order_by: Any = None, limit: int | None = None, offset: int | None = None,
          squeeze: bool = False, download_path: str = ".") -> Any:
    """DataJoint's fetch: see the README for the shapes."""
    wants_key = "KEY" in attrs
    names = list(dict.fromkeys(a for a in attrs if a != "KEY")) or (
        [] if wants_key else expr.heading.names)
    expr.heading.check(names, context="fetch")
    fetched = list(dict.fromkeys(names + (expr.primary_key if wants_key or format == "frame"
                                          else [])))
    select = _ordered_select(expr, order_by, limit, offset)
    columns = select.selected_columns
    rows = expr.connection.query(select.with_only_columns(*(columns[n] for n in fetched)))
    data = _decode_columns(expr, fetched, rows)
    keys = [dict(zip(expr.primary_key, k)) for k in zip(*(data[n] for n in expr.primary_key))] \
        if wants_key else []
    if attrs:
        results: list[Any] = []
        for attr in attrs:
            if attr == "KEY":
                results.append(keys)
            elif as_dict:
                results.append(data[attr])
            else:
                results.append(_to_recarray(expr, [attr], data, len(rows))[attr])
        if as_dict:
            return [dict(zip(names, values)) for values in zip(*(data[n] for n in names))]
        return results[0] if len(attrs) == 1 else tuple(results)
    if as_dict or format == "dicts":
        return [dict(zip(names, values)) for values in zip(*(data[n] for n in names))]
    if format == "frame":
        import pandas as pd

        frame = pd.DataFrame({n: data[n] for n in names}, columns=names)
        return frame.set_index(expr.primary_key) if expr.primary_key else frame
    return _to_recarray(expr, names, data, len(rows))


def fetch1(expr: QueryExpression, *attrs: str, **kwargs: Any) -> Any:
    """Exactly one row: a dict (no attrs), one value, or a tuple of values."""
    rows = fetch(expr, as_dict=True, limit=2)
    if len(rows) != 1:
        raise DataJointError(f"fetch1 expects exactly one row, the query returned "
                             f"{'none' if not rows else 'more than one'}")
    row = rows[0]
    if not attrs:
        return row
    if attrs == ("KEY",):
        return {k: row[k] for k in expr.primary_key}
    expr.heading.check([a for a in attrs if a != "KEY"], context="fetch1")
    values = tuple({k: row[k] for k in expr.primary_key} if a == "KEY" else row[a] for a in attrs)
    return values[0] if len(values) == 1 else values
