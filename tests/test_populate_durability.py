"""populate's loop of makes: commits that need not wait for the disk until the loop ends,
and the few-row inserts a make does, on every backend."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

import datajoint_sa as dj


def _pipeline(schema: dj.Schema, seen: list[Any], fail_on: int | None = None
              ) -> tuple[Any, Any]:
    connection = schema.connection

    @schema
    class Source(dj.Manual):
        definition = """
        s : int32
        ---
        params : <blob>
        """

    @schema
    class Result(dj.Computed):
        definition = """
        -> Source
        ---
        v : float64
        """

        class Part(dj.Part):
            definition = """
            -> master
            i : int16
            ---
            w : float64
            note = null : varchar(20)
            """

        def make(self, key: dict[str, Any]) -> None:
            seen.append(_commit_setting(connection))
            params = (Source & key).fetch1("params")
            self.insert1(dict(key, v=float(params.sum())))
            self.Part.insert([dict(key, i=i, w=i / 2, note=None if i % 2 else f"n{i}")
                              for i in range(4)])
            if key["s"] == fail_on:
                raise ValueError(f"no result for {key['s']}")

    Source.insert([(s, np.arange(float(s + 1))) for s in range(6)])
    return Source, Result


def _commit_setting(connection: dj.Connection) -> Any:
    """What the session's commits wait for (PostgreSQL's synchronous_commit; None where the
    server has no per-session setting)."""
    with connection.session(write=False) as sa_conn:
        if sa_conn.dialect.name != "postgresql":
            return None
        return sa_conn.exec_driver_sql("SHOW synchronous_commit").scalar_one()


def _expected_parts(keys: list[int]) -> set[tuple[Any, ...]]:
    return {(s, i, i / 2, None if i % 2 else f"n{i}") for s in keys for i in range(4)}


@pytest.mark.parametrize("reserve_jobs", [False, True])
def test_populate_commits_every_key_and_restores_the_session(
        schema: dj.Schema, reserve_jobs: bool) -> None:
    seen: list[Any] = []
    _, Result = _pipeline(schema, seen)
    before = _commit_setting(schema.connection)
    assert Result.populate(reserve_jobs=reserve_jobs)["success_count"] == 6
    assert _commit_setting(schema.connection) == before
    if before is not None:  # inside the loop the makes commit without waiting for the disk
        assert set(seen) == {"off"}
    assert dict(zip(*Result.fetch("s", "v"))) == {s: float(sum(range(s + 1))) for s in range(6)}
    assert {tuple(r.values()) for r in Result.Part.to_dicts()} == _expected_parts(list(range(6)))
    # another session sees every result as soon as populate returns
    other = dj.Connection(schema.connection.url)
    try:
        with other.session(write=False) as sa_conn:
            table = Result._sa_table
            assert table is not None
            count = sa_conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
        assert count == 6
    finally:
        other.close()
    if reserve_jobs:
        assert len(schema.jobs) == 0


def test_failed_make_keeps_earlier_keys_and_restores_the_session(schema: dj.Schema) -> None:
    seen: list[Any] = []
    _, Result = _pipeline(schema, seen, fail_on=3)
    before = _commit_setting(schema.connection)
    with pytest.raises(ValueError, match="no result for 3"):
        Result.populate()
    assert _commit_setting(schema.connection) == before
    assert sorted(Result.fetch("s")) == [0, 1, 2]
    assert {tuple(r.values()) for r in Result.Part.to_dicts()} == _expected_parts([0, 1, 2])
    result = Result.populate(suppress_errors=True, reserve_jobs=True)
    assert result["success_count"] == 2
    assert [k["s"] for k, _ in result["error_list"]] == [3]
    assert _commit_setting(schema.connection) == before
    assert sorted(Result.fetch("s")) == [0, 1, 2, 4, 5]
    assert len(schema.jobs & {"status": "error"}) == 1


def test_few_row_inserts_in_every_mode(schema: dj.Schema) -> None:
    """A few rows go as one multi-row INSERT where the driver would pipeline one per row:
    the same rows, NULLs and blobs, duplicates refused, skipped or replaced."""

    @schema
    class Item(dj.Manual):
        definition = """
        a : int32
        b : varchar(8)
        ---
        x = null : float64
        data = null : <blob>
        """

    rows = [dict(a=i, b=f"k{i}", x=None if i == 2 else i * 1.5,
                 data=None if i == 1 else np.arange(i + 1)) for i in range(5)]
    Item.insert(rows)
    fetched = Item.to_dicts(order_by="a")
    assert [(r["a"], r["b"], r["x"]) for r in fetched] == [
        (r["a"], r["b"], r["x"]) for r in rows]
    assert fetched[1]["data"] is None
    assert all(np.array_equal(f["data"], r["data"]) for f, r in zip(fetched, rows) if r["a"] != 1)
    with pytest.raises(dj.errors.DuplicateError):
        Item.insert([dict(a=9, b="k9"), dict(a=0, b="k0")])
    assert len(Item) == 5  # the failed insert left nothing
    Item.insert([dict(a=0, b="k0", x=-1.0), dict(a=7, b="k7", x=7.0)], skip_duplicates=True)
    assert {r["a"]: r["x"] for r in Item.to_dicts()} == {0: 0.0, 1: 1.5, 2: None, 3: 4.5,
                                                         4: 6.0, 7: 7.0}
    Item.insert([dict(a=0, b="k0", x=-1.0), dict(a=8, b="k8", x=8.0)], replace=True)
    assert {r["a"]: r["x"] for r in Item.to_dicts()} == {0: -1.0, 1: 1.5, 2: None, 3: 4.5,
                                                         4: 6.0, 7: 7.0, 8: 8.0}
