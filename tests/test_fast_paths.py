"""Fast paths return exactly what the plain paths return, on every backend: binary results
(PostgreSQL fetches bytea in binary), including NULLs, blobs, decimals, datetimes and uuids."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import numpy as np
import sqlalchemy as sa

import datajoint_sa as dj


def _values_table(schema: dj.Schema) -> Any:
    @schema
    class Values(dj.Manual):
        definition = """
        vid : int32
        ---
        amount = null : decimal(8,3)
        taken = null : datetime
        day = null : date
        uid = null : uuid
        label = null : varchar(20)
        x = null : float64
        flag = null : bool
        raw = null : bytes
        data = null : <blob>
        """

    rows = [
        dict(vid=1, amount=Decimal("12.500"), taken=dt.datetime(2024, 5, 6, 7, 8, 9),
             day=dt.date(2024, 5, 6), uid=uuid.UUID(int=7), label="one", x=0.1, flag=True,
             raw=b"\x00\x01\xff", data=np.arange(6.0).reshape(2, 3)),
        dict(vid=2),  # every nullable attribute NULL
        dict(vid=3, amount=Decimal("-0.001"), taken=dt.datetime(1999, 12, 31, 23, 59, 59),
             day=dt.date(1970, 1, 1), uid=uuid.UUID(int=2**128 - 1), label="", x=-1e300,
             flag=False, raw=b"", data={"a": [1, 2], "b": "text"}),
    ]
    Values.insert(rows)
    return Values


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(type(a) is type(b) and a.dtype == b.dtype and np.array_equal(a, b))
    return bool(type(a) is type(b) and a == b)


def test_binary_results_equal_text_results(schema: dj.Schema) -> None:
    Values = _values_table(schema)
    engine = schema.connection.engine
    formats: list[Any] = []

    def record(conn: Any, cursor: Any, *args: Any) -> None:
        formats.append(getattr(cursor, "format", None))

    sa.event.listen(engine, "after_cursor_execute", record)
    try:
        with_blobs = Values.to_dicts(order_by="vid")
        blob_format = formats[-1]
        plain = Values.proj(*(n for n in Values.heading.secondary_attributes
                              if n not in ("raw", "data"))).to_dicts(order_by="vid")
        plain_format = formats[-1]
        one = (Values & {"vid": 1}).fetch1("data")
    finally:
        sa.event.remove(engine, "after_cursor_execute", record)
    if schema.connection.backend == "postgresql":
        assert int(blob_format) == 1 and int(plain_format) == 0  # binary only with bytea
    assert [r["vid"] for r in with_blobs] == [1, 2, 3]
    for full, text in zip(with_blobs, plain):
        for name, value in text.items():
            assert _same(full[name], value), (name, full[name], value)
    first, empty, last = with_blobs
    assert first["raw"] == b"\x00\x01\xff" and last["raw"] == b""
    assert _same(first["data"], np.arange(6.0).reshape(2, 3)) and _same(one, first["data"])
    assert last["data"]["b"] == "text"
    assert first["amount"] == Decimal("12.500") and first["uid"] == uuid.UUID(int=7)
    assert first["taken"] == dt.datetime(2024, 5, 6, 7, 8, 9)
    assert all(empty[n] is None for n in Values.heading.secondary_attributes)


def test_batches_concatenate_to_the_plain_fetch(schema: dj.Schema) -> None:
    import pandas as pd
    import pytest

    Values = _values_table(schema)
    # every batch holds values of every attribute: a batch of only NULLs in a column
    # infers its dtype alone (object), as a whole fetch of only NULLs would
    Values.insert([dict(vid=i, amount=Decimal(i) / 8, taken=dt.datetime(2020, 1, 1, 0, 0, i),
                        day=dt.date(2020, 2, i % 28 + 1), uid=uuid.UUID(int=i), label=f"n{i}",
                        x=i / 3, flag=bool(i % 2), raw=bytes([i]), data=np.full(3, i))
                   for i in range(10, 40)])
    plain = Values.to_dicts(order_by="vid")
    batches = list(Values.fetch(as_dict=True, order_by="vid", batch_size=7))
    assert [len(b) for b in batches] == [7, 7, 7, 7, 5]
    streamed = [row for batch in batches for row in batch]
    assert len(streamed) == len(plain) == 33
    for a, b in zip(streamed, plain):
        assert a.keys() == b.keys()
        assert all(_same(a[n], b[n]) for n in a), (a, b)
    frames = list(Values.fetch(format="frame", order_by="vid", batch_size=10))
    whole = Values.to_pandas(order_by="vid")
    assert sum(map(len, frames)) == len(whole)
    # dtypes follow each batch's values (a batch without NULLs in a bool column is bool,
    # the whole, with one, pandas' nullable boolean), so compare values
    for i, frame in enumerate(frames):
        part = whole.iloc[i * 10:(i + 1) * 10]
        pd.testing.assert_frame_equal(frame.drop(columns=["data", "raw"]),
                                      part.drop(columns=["data", "raw"]),
                                      check_index_type=False, check_dtype=False)
        assert all(_same(a, b) for a, b in zip(frame["data"], part["data"]))
    arrays = np.concatenate(list(Values.fetch("vid", order_by="vid", batch_size=4)))
    assert arrays.tolist() == [r["vid"] for r in plain]
    # the connection is free again once the iteration ends
    assert len(Values & "vid >= 10") == 30
    with pytest.raises(dj.DataJointError, match="batch_size"):
        Values.fetch(batch_size=0)
