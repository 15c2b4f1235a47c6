"""Restrictions and aggregates classic DataJoint code writes, through the public API, with
the same rows and types on every backend (issue 15)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

import datajoint_sa as dj

from .conftest import BACKENDS, backend_url, unique_name


@pytest.fixture(scope="module", params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[SimpleNamespace]:
    connection = dj.Connection(backend_url(request.param, tmp_path_factory))
    schema = dj.Schema(unique_name("classic"), connection=connection)

    @schema
    class Animal(dj.Manual):
        definition = """
        animal : int32
        """

    @schema
    class Visit(dj.Manual):
        definition = """
        -> Animal
        visit : int16
        ---
        flag : tinyint           # classic code's 0/1 column
        ok = null : bool
        x : int32
        visited : datetime
        day : date
        """

    Animal.insert([(1,), (2,)])
    Visit.insert([
        dict(animal=1, visit=1, flag=1, ok=True, x=1, visited=dt.datetime(2024, 1, 1, 8),
             day=dt.date(2024, 1, 1)),
        dict(animal=1, visit=2, flag=0, ok=False, x=2, visited=dt.datetime(2024, 1, 5, 9, 30),
             day=dt.date(2024, 1, 5)),
        dict(animal=2, visit=1, flag=1, ok=None, x=3, visited=dt.datetime(2024, 2, 1, 12),
             day=dt.date(2024, 2, 1)),
    ])
    yield SimpleNamespace(Animal=Animal, Visit=Visit)
    schema.drop(force=True)
    connection.close()


@pytest.mark.parametrize(("text", "expected"), [
    ("flag", [(1, 1), (2, 1)]),
    ("not flag", [(1, 2)]),
    ("flag and x > 1", [(2, 1)]),
    ("flag or x = 2", [(1, 1), (1, 2), (2, 1)]),
    ("ok", [(1, 1)]),
    ("not ok", [(1, 2)]),
    ("ok or flag", [(1, 1), (2, 1)]),
    ("visited > now() - interval 365000 day", [(1, 1), (1, 2), (2, 1)]),
    ("day > curdate() - interval 30 day", []),
    ('date_sub(day, interval 3 day) < "2024-01-01"', [(1, 1)]),
    ('date_add(visited, interval 16 hour) >= "2024-01-02"', [(1, 1), (1, 2), (2, 1)]),
    ("timestampdiff(day, day, '2024-01-31') > 20", [(1, 1), (1, 2)]),
    ("to_days(day) - to_days('2024-01-01') between 1 and 31", [(1, 2), (2, 1)]),
])
def test_classic_restriction(db: SimpleNamespace, text: str, expected: list[tuple[int, int]]
                             ) -> None:
    rows = (db.Visit & text).fetch("animal", "visit", order_by="KEY")
    assert list(zip(*rows, strict=True)) == expected


def test_min_max_of_datetime_and_date_keep_their_type(db: SimpleNamespace) -> None:
    rows = db.Animal.aggr(db.Visit, first="min(visited)", last="max(visited)",
                          last_day="max(day)").fetch(as_dict=True, order_by="animal")
    assert [(r["first"], r["last"], r["last_day"]) for r in rows] == [
        (dt.datetime(2024, 1, 1, 8), dt.datetime(2024, 1, 5, 9, 30), dt.date(2024, 1, 5)),
        (dt.datetime(2024, 2, 1, 12), dt.datetime(2024, 2, 1, 12), dt.date(2024, 2, 1)),
    ]
    assert all(isinstance(r["last"], dt.datetime) for r in rows)
