"""The fetch family: fetch, fetch1 and the 2.x conveniences, on every backend."""

from __future__ import annotations

import datetime
import decimal
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import datajoint_sa as dj
from datajoint_sa.errors import DataJointError, UnknownAttributeError


@pytest.fixture
def t(schema: dj.Schema) -> SimpleNamespace:
    @schema
    class Animal(dj.Manual):
        definition = """
        animal_id : int32
        ---
        name : varchar(40)
        weight = null : float64
        legs = null : int16
        big = null : int64
        alive = null : bool
        born = null : date
        price = null : decimal(6,2)
        data = null : <blob>
        """

    @schema
    class Visit(dj.Manual):
        definition = """
        -> Animal
        visit : int16
        ---
        score : float32
        """

    Animal.insert([
        dict(animal_id=1, name="ant", weight=0.01, legs=6, big=2**62 + 3, alive=True,
             born=datetime.date(2024, 1, 1), price=decimal.Decimal("1.25"),
             data=np.arange(3)),
        dict(animal_id=2, name="bee", weight=None, legs=None, big=None, alive=None),
        dict(animal_id=3, name="cat", weight=4.5, legs=4, big=-5, alive=False,
             data={"k": [1, 2]}),
    ])
    Visit.insert([dict(animal_id=a, visit=v, score=a * 10 + v) for a in (1, 3)
                  for v in (1, 2)])
    return SimpleNamespace(Animal=Animal, Visit=Visit)


def by_id(rows: list[dict]) -> dict[int, dict]:
    return {r["animal_id"]: r for r in rows}


def test_fetch_structured_array_with_faithful_dtypes(t: SimpleNamespace) -> None:
    result = t.Animal.fetch(order_by="animal_id")
    assert isinstance(result, np.ndarray)
    assert result.dtype["animal_id"] == np.int32
    assert result.dtype["weight"] == np.float64
    assert result.dtype["name"].kind == "O"
    assert result["name"].tolist() == ["ant", "bee", "cat"]
    assert np.isnan(result["weight"][1])  # NULL float -> NaN
    # a NULL in an integer column never turns integers into garbage
    assert result["legs"].tolist() == [6, None, 4]
    assert result["big"].tolist() == [2**62 + 3, None, -5]
    assert result["alive"].tolist() == [True, None, False]
    assert np.array_equal(result["data"][0], np.arange(3)) and result["data"][1] is None
    assert result["data"][2] == {"k": [1, 2]}


def test_integers_without_nulls_keep_their_dtype(t: SimpleNamespace) -> None:
    legs = (t.Animal & [{"animal_id": 1}, {"animal_id": 3}]).fetch("legs", order_by="animal_id")
    assert legs.dtype == np.int16 and legs.tolist() == [6, 4]
    big = (t.Animal & {"animal_id": 1}).fetch("big")
    assert big.dtype == np.int64 and big[0] == 2**62 + 3


def test_fetch_attributes(t: SimpleNamespace) -> None:
    names, weights = t.Animal.fetch("name", "weight", order_by="name")
    assert names.tolist() == ["ant", "bee", "cat"]
    assert weights[0] == 0.01 and np.isnan(weights[1])
    assert t.Animal.fetch("name", order_by="name desc").tolist() == ["cat", "bee", "ant"]


def test_fetch_key(t: SimpleNamespace) -> None:
    keys = t.Visit.fetch("KEY", order_by="KEY")
    assert keys[0] == {"animal_id": 1, "visit": 1} and len(keys) == 4
    keys, scores = t.Visit.fetch("KEY", "score", order_by="KEY")
    assert keys[3] == {"animal_id": 3, "visit": 2} and scores.dtype == np.float32
    assert scores.tolist() == [11, 12, 31, 32]


def test_fetch_as_dict(t: SimpleNamespace) -> None:
    rows = by_id(t.Animal.fetch(as_dict=True))
    assert rows[2] == {"animal_id": 2, "name": "bee", "weight": None, "legs": None,
                       "big": None, "alive": None, "born": None, "price": None, "data": None}
    assert rows[1]["price"] == decimal.Decimal("1.25")
    assert rows[1]["born"] == datetime.date(2024, 1, 1) and rows[1]["alive"] is True
    only = t.Animal.fetch("name", "legs", as_dict=True, order_by="animal_id")
    assert only[0] == {"name": "ant", "legs": 6}


def test_fetch_frame_indexed_by_primary_key(t: SimpleNamespace) -> None:
    frame = t.Visit.fetch(format="frame", order_by="KEY")
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.index.names) == ["animal_id", "visit"]
    assert frame.loc[(3, 2), "score"] == 32
    animals = t.Animal.fetch(format="frame")
    assert animals.index.name == "animal_id"
    assert str(animals["legs"].dtype) == "Int16"  # NULL-holding integers stay integers
    assert animals.loc[1, "big"] == 2**62 + 3
    assert pd.isna(animals.loc[2, "legs"])


def test_order_limit_offset(t: SimpleNamespace) -> None:
    assert t.Animal.fetch("animal_id", order_by="animal_id desc", limit=2).tolist() == [3, 2]
    assert t.Animal.fetch("animal_id", limit=1, offset=1).tolist() == [2]  # ordered by key
    assert t.Animal.fetch("animal_id", offset=2).tolist() == [3]
    assert t.Visit.fetch("score", order_by=("animal_id desc", "visit")).tolist() == [
        31, 32, 11, 12]
    with pytest.raises(UnknownAttributeError):
        t.Animal.fetch(order_by="nope")


def test_restricted_fetch(t: SimpleNamespace) -> None:
    assert (t.Visit & {"animal_id": 3}).fetch("visit", order_by="visit").tolist() == [1, 2]
    assert len((t.Animal & {"animal_id": 99}).fetch()) == 0
    assert (t.Animal & {"animal_id": 99}).fetch(format="frame").empty
    assert (t.Animal & {"animal_id": 99}).fetch(as_dict=True) == []


def test_fetch_unknown_attribute(t: SimpleNamespace) -> None:
    with pytest.raises(UnknownAttributeError, match="colour"):
        t.Animal.fetch("colour")


def test_fetch1(t: SimpleNamespace) -> None:
    row = (t.Animal & {"animal_id": 3}).fetch1()
    assert row["name"] == "cat" and row["legs"] == 4
    assert (t.Animal & {"animal_id": 3}).fetch1("name") == "cat"
    assert (t.Animal & {"animal_id": 3}).fetch1("name", "legs") == ("cat", 4)
    assert (t.Visit & {"animal_id": 1, "visit": 2}).fetch1("KEY") == {"animal_id": 1,
                                                                      "visit": 2}
    with pytest.raises(DataJointError, match="exactly one"):
        t.Animal.fetch1()
    with pytest.raises(DataJointError, match="exactly one"):
        (t.Animal & {"animal_id": 42}).fetch1()


def test_squeeze(t: SimpleNamespace) -> None:
    t.Animal.insert1(dict(animal_id=9, name="col", data=np.ones((3, 1))))
    assert (t.Animal & {"animal_id": 9}).fetch1("data").shape == (3, 1)
    assert (t.Animal & {"animal_id": 9}).fetch1("data", squeeze=True).shape == (3,)


def test_conveniences(t: SimpleNamespace) -> None:
    assert by_id(t.Animal.to_dicts())[1]["name"] == "ant"
    assert t.Animal.to_pandas().index.name == "animal_id"
    assert t.Animal.to_arrays().dtype.names[0] == "animal_id"
    names, legs = t.Animal.to_arrays("name", "legs", order_by="animal_id")
    assert names.tolist() == ["ant", "bee", "cat"]
    assert t.Visit.keys(order_by="KEY")[0] == {"animal_id": 1, "visit": 1}
    assert t.Animal.head(2)["animal_id"].tolist() == [1, 2]
    assert t.Animal.tail(2)["animal_id"].tolist() == [2, 3]
    assert [r["animal_id"] for r in t.Animal.head(2, as_dict=True)] == [1, 2]
    assert t.Animal.tail(1, format="frame").index.tolist() == [3]
    assert sorted(r["animal_id"] for r in t.Animal) == [1, 2, 3]


def test_fetch_of_a_join_and_projection(t: SimpleNamespace) -> None:
    joined = (t.Animal * t.Visit).fetch("name", "score", order_by=("animal_id", "visit"))
    assert joined[0].tolist() == ["ant", "ant", "cat", "cat"]
    renamed = t.Animal.proj(label="name").fetch(as_dict=True, order_by="animal_id")
    assert renamed[0] == {"animal_id": 1, "label": "ant"}


def test_to_arrow(t: SimpleNamespace) -> None:
    pytest.importorskip("pyarrow")
    table = (t.Animal.proj("name", "legs", "weight")).to_arrow(order_by="animal_id")
    assert table.column_names == ["animal_id", "name", "weight", "legs"]
    assert table.column("legs").to_pylist() == [6, None, 4]


def test_to_polars(t: SimpleNamespace) -> None:
    pytest.importorskip("polars")
    frame = t.Animal.proj("name", "legs").to_polars(order_by="animal_id")
    assert frame["name"].to_list() == ["ant", "bee", "cat"]
    assert frame["legs"].to_list() == [6, None, 4]


def test_many_rows_round_trip(t: SimpleNamespace) -> None:
    rows = [dict(animal_id=100 + i, name=f"n{i}", weight=i / 2, legs=i % 5)
            for i in range(20_000)]
    t.Animal.insert(rows)
    frame = (t.Animal & "animal_id >= 100").fetch(format="frame")
    assert len(frame) == 20_000
    assert frame.loc[20_099, "weight"] == 19_999 / 2


# ---- one ordering path: fetch(order_by, limit) is dj.Top ------------------------------------
@pytest.fixture
def ranked(schema: dj.Schema) -> type[dj.Manual]:
    @schema
    class Ranked(dj.Manual):
        definition = """
        rid : int32
        ---
        w = null : int32
        label : varchar(8)
        """

    # NULLs and ties in w, inserted out of key order
    ws = [3, None, 1, 3, None, 2, 1, 3, None, 2]
    Ranked.insert([dict(rid=r, w=w, label=f"r{r}") for r, w in zip([7, 2, 9, 1, 5, 10, 3, 8, 4, 6],
                                                                    ws)])
    return Ranked


@pytest.mark.parametrize("order", ["w", "w desc", ("w desc", "label"), ("label desc", "w")])
@pytest.mark.parametrize("k", [1, 2, 3, 5, 7, 10])
def test_fetch_order_limit_is_top(ranked: type[dj.Manual], order: object, k: int) -> None:
    """The same request returns the same rows through fetch and dj.Top, on every backend:
    NULLs first ascending and last descending, ties broken by the primary key."""
    fetched = ranked.fetch(as_dict=True, order_by=order, limit=k)
    assert fetched == (ranked & dj.Top(k, order)).fetch(as_dict=True)
    assert fetched == (ranked & dj.Top(k, order)).fetch(as_dict=True, order_by=order)
    assert len(fetched) == k


def test_ordering_rule(ranked: type[dj.Manual]) -> None:
    """The documented rule, checked row by row: NULLs lowest, ties by key ascending."""
    up = ranked.fetch("rid", order_by="w").tolist()
    assert up == [2, 4, 5, 3, 9, 6, 10, 1, 7, 8]
    down = ranked.fetch("rid", order_by="w desc").tolist()
    assert down == [1, 7, 8, 6, 10, 3, 9, 2, 4, 5]
    assert ranked.fetch("rid", order_by="w", limit=4, offset=2).tolist() == [5, 3, 9, 6]
    assert ranked.fetch("rid", order_by="w desc", offset=7).tolist() == [2, 4, 5]
    assert [r["rid"] for r in (ranked & dj.Top(3, "w desc", offset=1)).fetch(
        as_dict=True, order_by="w desc")] == [7, 8, 6]
