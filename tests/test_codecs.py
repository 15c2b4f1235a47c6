"""dj.Codec: user types registered by name, usable in definitions like the built-ins."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

import datajoint_sa as dj
from datajoint_sa.codecs import CodecContext, get_codec, registered
from datajoint_sa.types import resolve_type


class Point(dj.Codec):
    """A 2-D point kept as text: the simplest user codec (no keywords)."""

    name = "point"
    storage = "varchar(64)"

    def encode(self, value):  # type: ignore[no-untyped-def]
        x, y = value
        return f"{float(x)!r},{float(y)!r}"

    def decode(self, stored):  # type: ignore[no-untyped-def]
        x, y = stored.split(",")
        return float(x), float(y)


class Graph(dj.Codec):
    """An adjacency dict kept as json, DataJoint 2's signature (key=, store_name=)."""

    name = "graph"

    def get_dtype(self, is_store: bool) -> str:
        return "json"

    def encode(self, graph, *, key=None, store_name=None):  # type: ignore[no-untyped-def]
        return {"nodes": sorted(graph), "edges": sorted([a, b] for a in graph for b in graph[a])}

    def validate(self, value):  # type: ignore[no-untyped-def]
        if not isinstance(value, dict):
            raise TypeError(f"<graph> takes an adjacency dict, got {type(value).__name__}")

    def decode(self, stored, *, key=None):  # type: ignore[no-untyped-def]
        graph: dict[str, set[str]] = {n: set() for n in stored["nodes"]}
        for a, b in stored["edges"]:
            graph[a].add(b)
        return graph


class Scaled(dj.Codec):
    """Chained over <blob>: numpy arrays scaled by 2 before serialization."""

    name = "scaled"
    storage = "<blob>"

    def encode(self, value):  # type: ignore[no-untyped-def]
        return np.asarray(value) * 2

    def decode(self, stored):  # type: ignore[no-untyped-def]
        return stored / 2


class Keyed(dj.Codec):
    """Sees the row's key and the context."""

    name = "keyed"
    storage = "varchar(255)"
    seen: list[tuple[Any, Any]] = []

    def encode(self, value, *, key=None, context=None):  # type: ignore[no-untyped-def]
        Keyed.seen.append((key, context))
        return f"{value}|{key['id'] if key else ''}"

    def decode(self, stored, **kwargs):  # type: ignore[no-untyped-def]
        Keyed.seen.append((kwargs.get("key"), kwargs.get("context")))
        return stored.split("|")[0]


GRAPH = {"a": {"b", "c"}, "b": {"c"}, "c": set()}


def test_subclasses_register_by_name() -> None:
    assert registered()["point"] is Point
    assert isinstance(get_codec("graph"), Graph)
    assert resolve_type("<point>").codec.name == "point"
    assert resolve_type("<graph>").category == "json"


def test_user_codecs_round_trip(schema: dj.Schema) -> None:
    @schema
    class Shape(dj.Manual):
        definition = """
        id : int32
        ---
        where_ : <point>
        graph : <graph>
        scaled : <scaled>
        maybe = null : <point>
        """

    Shape.insert([
        {"id": 1, "where_": (1.5, -2), "graph": GRAPH, "scaled": np.arange(6).reshape(2, 3)},
        {"id": 2, "where_": (0, 1e-3), "graph": {}, "scaled": [0.5], "maybe": (3, 4)},
    ])
    rows = Shape.fetch(as_dict=True, order_by="id")
    assert rows[0]["where_"] == (1.5, -2.0)
    assert rows[0]["graph"] == GRAPH
    np.testing.assert_array_equal(rows[0]["scaled"], np.arange(6).reshape(2, 3))
    assert rows[0]["maybe"] is None
    assert rows[1]["where_"] == (0.0, 1e-3) and rows[1]["graph"] == {}
    assert rows[1]["maybe"] == (3.0, 4.0)
    # the storage type is a real column: the encoded value is plain text in the database
    raw = schema.connection.query(sa.select(Shape._sa_table.c.where_).order_by("id"))
    assert raw[0][0] == "1.5,-2.0"
    # the declared type is kept, so the heading (and describe) show the codec
    assert Shape.heading["where_"].type == "<point>"
    assert "<graph>" in Shape.describe(printout=False)
    # restricting and projecting keep decoding
    assert (Shape & {"id": 2}).proj("where_").fetch1("where_") == (0.0, 1e-3)
    assert (Shape & {"id": 1}).fetch1("graph") == GRAPH
    # validate() refuses a value before encoding; nothing is written
    with pytest.raises(dj.DataJointError, match=r"Shape.*graph.*adjacency dict"):
        Shape.insert1({"id": 3, "where_": (0, 0), "graph": [1, 2], "scaled": [1]})
    assert len(Shape) == 2


def test_codec_sees_key_and_context(schema: dj.Schema) -> None:
    @schema
    class Tagged(dj.Manual):
        definition = """
        id : int32
        ---
        tag : <keyed>
        """

    Keyed.seen.clear()
    Tagged.insert1({"id": 7, "tag": "x"})
    key, context = Keyed.seen[0]
    assert key == {"id": 7}
    assert isinstance(context, CodecContext)
    assert context.schema == schema.database and context.attribute == "tag"
    assert Tagged.fetch1("tag") == "x"
    key, context = Keyed.seen[-1]
    assert context.attribute == "tag"


def test_encode_error_names_table_and_attribute(schema: dj.Schema) -> None:
    @schema
    class Spot(dj.Manual):
        definition = """
        id : int32
        ---
        where_ : <point>
        """

    with pytest.raises(dj.DataJointError, match=r"Spot.*where_") as info:
        Spot.insert1({"id": 1, "where_": "not a pair"})
    assert isinstance(info.value.__cause__, ValueError)
    assert len(Spot) == 0


def test_undefined_codec_in_definition(schema: dj.Schema) -> None:
    class Nowhere(dj.Manual):
        definition = """
        id : int32
        ---
        x : <no_such_codec_here>
        """

    with pytest.raises(dj.DataJointError, match="no_such_codec_here"):
        schema(Nowhere)


def test_bad_codec_declarations() -> None:
    with pytest.raises(dj.DataJointError, match="identifier"):
        class BadName(dj.Codec):
            name = "not valid"

    with pytest.raises(dj.DataJointError, match="built-in"):
        class FakeBlob(dj.Codec):
            name = "blob"

    assert registered()["blob"].__module__ == "datajoint_sa.codecs"

    class Wrong(dj.Codec):
        name = "wrong_storage"
        storage = "integer of sorts"

    with pytest.raises(dj.DataJointError, match="wrong_storage.*integer of sorts"):
        resolve_type("<wrong_storage>")

    class Loop(dj.Codec):
        name = "loop_a"
        storage = "<loop_a>"

    with pytest.raises(dj.DataJointError, match="cycle"):
        resolve_type("<loop_a>")

    with pytest.raises(dj.DataJointError, match="does not use a store"):
        resolve_type("<point@somewhere>")
    with pytest.raises(dj.DataJointError, match="store"):
        resolve_type("<filepath>")
    with pytest.raises(dj.DataJointError, match="name the store"):
        resolve_type("<blob@>")


def test_subclass_of_a_codec_chains_once() -> None:
    """An override that calls super() must not run the inner codec twice."""

    class Doubled(Scaled):
        name = "doubled_scaled"

        def encode(self, value):  # type: ignore[no-untyped-def]
            return super().encode(np.asarray(value) * 2)

        def decode(self, stored):  # type: ignore[no-untyped-def]
            return super().decode(stored) / 2

    codec = resolve_type("<doubled_scaled>").codec
    assert [c.name for c in codec.chain()] == ["doubled_scaled", "blob"]
    stored = codec.encode(np.array([1.0, 2.0]))
    assert isinstance(stored, bytes)
    np.testing.assert_array_equal(codec.decode(stored), [1.0, 2.0])


def test_redefining_a_user_codec_replaces_it() -> None:
    class First(dj.Codec):
        name = "replaceable"
        storage = "varchar(8)"

    class Second(dj.Codec):
        name = "replaceable"
        storage = "text"

    assert registered()["replaceable"] is Second
    assert resolve_type("<replaceable>").category == "text"
