"""The bulk path of large blobs (what `blob insert, 1 MiB arrays` times) keeps every value
exactly: batches that start with a large value (PostgreSQL then TOAST-compresses with lz4)
carrying every kind of blob value, raw bytes, NULLs, compressible and incompressible data,
on every backend."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

import datajoint_sa as dj
from datajoint_sa import blob

from .test_blob_columns import VALUES, same

RNG = np.random.default_rng(11)
#: over the 64 KiB at which PostgreSQL's insert path switches TOAST compression to lz4
LARGE = RNG.random(131_072)  # 1 MiB of incompressible floats


def _declare(schema: dj.Schema) -> Any:
    @schema
    class Big(dj.Manual):
        definition = """
        id : int32
        ---
        value = null : <blob>
        raw = null : longblob
        """

    return Big


def test_a_large_batch_round_trips_every_kind(schema: dj.Schema) -> None:
    Big = _declare(schema)
    values = [("large first", LARGE), *VALUES,
              ("large complex", (RNG.random(40_000) + 1j * RNG.random(40_000))),
              ("large fortran", np.asfortranarray(RNG.random((300, 200)))),
              ("large non-contiguous", RNG.random((400, 400))[::2, ::3]),
              ("large compressible", np.tile(np.arange(1000.0), 200)),
              ("large int16", RNG.integers(-9, 9, size=300_000, dtype=np.int16))]
    rows = [{"id": i, "value": v, "raw": blob.pack(v, compress=False) if i % 2 else None}
            for i, (_, v) in enumerate(values)]
    rows.append({"id": len(rows), "value": None, "raw": b""})
    Big.insert(rows)
    fetched = Big.fetch(as_dict=True, order_by="id")
    assert len(fetched) == len(rows)
    for row, got in zip(rows, fetched):
        assert (got["value"] is None if row["value"] is None
                else same(row["value"], got["value"])), (row["id"], got["value"])
        assert got["raw"] == row["raw"] and (got["raw"] is None or type(got["raw"]) is bytes)


def test_large_raw_bytes_round_trip(schema: dj.Schema) -> None:
    Big = _declare(schema)
    compressible = bytes(range(256)) * 4096  # 1 MiB that any server compresses
    noise = RNG.bytes(300_000)
    Big.insert([{"id": 1, "raw": compressible}, {"id": 2, "raw": noise}, {"id": 3}])
    assert Big.fetch("raw", order_by="id").tolist() == [compressible, noise, None]
    (Big & {"id": 1}).delete(safemode=False)
    assert Big.fetch("raw", order_by="id").tolist() == [noise, None]


def test_large_values_take_the_servers_fast_compression(schema: dj.Schema,
                                                        backend: str) -> None:
    """On PostgreSQL a large insert's values are TOAST-compressed with lz4 (the data read
    back the same is the test above); the other backends store them as they come."""
    Big = _declare(schema)
    compressible = bytes(range(256)) * 4096
    Big.insert([{"id": 1, "raw": compressible, "value": LARGE}])
    if backend != "postgresql":
        assert Big.fetch1("raw") == compressible
        return
    sa_table = Big._sa_table
    with Big.connection.session(write=False) as sa_conn:
        method = sa_conn.execute(sa.select(sa.func.pg_column_compression(sa_table.c.raw))
                                 ).scalar_one()
    assert method == "lz4"


def test_row_batches_insert_skip_and_replace_exactly(schema: dj.Schema) -> None:
    """A batch of several multi-row statements and a shorter last one (SQLite sends 200
    rows a statement), then skip_duplicates and replace over part of it, and a duplicate
    that refuses the whole insert."""

    @schema
    class Reading(dj.Manual):
        definition = """
        rid : int32
        ---
        x : float64
        label : varchar(20)
        note = null : varchar(20)
        """

    rows = [{"rid": i, "x": i / 3, "label": f"r{i}", "note": None if i % 5 else "five"}
            for i in range(1234)]
    Reading.insert(rows)
    assert Reading.to_dicts(order_by="rid") == rows
    more = [{"rid": i, "x": -1.0, "label": "new", "note": None} for i in range(1200, 1500)]
    Reading.insert(more, skip_duplicates=True)
    assert len(Reading) == 1500
    assert (Reading & {"rid": 1210}).fetch1("label") == "r1210"
    assert (Reading & {"rid": 1400}).fetch1("label") == "new"
    Reading.insert([dict(r, label="again") for r in rows[:450]], replace=True)
    assert (Reading & "label = 'again'").to_dicts(order_by="rid") == [
        dict(r, label="again") for r in rows[:450]]
    clash = [{"rid": 5000 + i, "x": 0.0, "label": "c"} for i in range(300)] + [rows[7]]
    with pytest.raises(dj.errors.DuplicateError):
        Reading.insert(clash)
    assert len(Reading) == 1500  # nothing of the refused insert stayed
