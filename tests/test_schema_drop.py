"""Schema.drop: alone in one statement where the backend can, or with its dependents in
other schemas dropped first; on every backend."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import datajoint_sa as dj


def _upstream(schema: dj.Schema) -> tuple[Any, Any]:
    @schema
    class Animal(dj.Manual):
        definition = """
        animal : int32
        """

    @schema
    class Weighing(dj.Manual):
        definition = """
        -> Animal
        day : int16
        ---
        grams : float64
        """

    Animal.insert([(1,), (2,)])
    Weighing.insert([(1, 1, 20.0), (2, 1, 21.0)])
    return Animal, Weighing


def test_drop_a_schema_nobody_refers_to(make_schema: Callable[..., dj.Schema]) -> None:
    schema, other = make_schema(), make_schema()
    Animal, Weighing = _upstream(schema)

    @other
    class Unrelated(dj.Manual):
        definition = """
        u : int32
        """

    Unrelated.insert1((5,))
    schema.drop(force=True)
    assert not schema.exists
    assert Animal._sa_table is None and Weighing._sa_table is None
    assert schema.database not in dj.list_schemas(schema.connection)
    assert other.exists and len(Unrelated) == 1  # the other schema is untouched


def test_drop_takes_dependents_in_other_schemas_first(
        make_schema: Callable[..., dj.Schema]) -> None:
    upstream, downstream, bystander = make_schema(), make_schema(), make_schema()
    Animal, _ = _upstream(upstream)

    @downstream
    class Tag(dj.Manual):
        definition = """
        -> Animal
        ---
        tag : varchar(8)
        """

    @downstream
    class Note(dj.Manual):
        definition = """
        note : int32
        """

    @bystander
    class Other(dj.Manual):
        definition = """
        o : int32
        """

    Tag.insert1((1, "a"))
    Note.insert1((3,))
    Other.insert1((4,))
    upstream.drop(force=True)
    assert not upstream.exists
    assert downstream.exists
    assert downstream.list_tables() == ["note"]  # Tag referred to the dropped schema
    assert len(Note) == 1 and len(Other) == 1
    downstream.drop(force=True)  # nothing refers to it any more: dropped alone
    assert not downstream.exists and bystander.exists


def test_referencing_schemas_names_the_schemas_whose_keys_point_in(
        make_schema: Callable[..., dj.Schema]) -> None:
    """Keys from other schemas count, keys within the schema (a chain, a table referring to
    itself through a renamed key) do not; a missing schema has none."""
    upstream, downstream, second, bystander = (make_schema() for _ in range(4))
    Animal, Weighing = _upstream(upstream)

    @upstream
    class Lineage(dj.Manual):
        definition = """
        -> Animal
        ---
        -> [nullable] Animal.proj(mother='animal')
        """

    @downstream
    class Tag(dj.Manual):
        definition = """
        -> Weighing
        """

    @second
    class Mark(dj.Manual):
        definition = """
        -> Animal
        """

    @bystander
    class Other(dj.Manual):
        definition = """
        o : int32
        """

    connection = upstream.connection
    impl = connection.backend_impl
    with connection.session(write=False) as sa_conn:
        found = {name: impl.referencing_schemas(sa_conn, s.database)
                 for name, s in (("up", upstream), ("down", downstream), ("by", bystander))}
        missing = impl.referencing_schemas(sa_conn, "djtest_no_such_schema")
    if found["up"] is None:  # the backend cannot tell in one query
        assert not impl.drops_tables_with_schema
        return
    assert found == {"up": {downstream.database, second.database}, "down": set(), "by": set()}
    assert not missing
