"""Definitions compile to tables; malformed ones fail clearly and create nothing."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

import datajoint_sa as dj
from datajoint_sa import declare
from datajoint_sa.backends import BACKENDS
from datajoint_sa.errors import DefinitionError


def test_compile_is_pure_and_matches_every_dialect() -> None:
    metadata = declare.new_metadata()
    spec = declare.parse("""
        # subjects
        subject_id : int32
        ---
        species = "mouse" : varchar(32)
        weight = null : float32
        index(species)
        """, schema="lab", name="subject", context={})
    for name in ("sqlite", "postgresql", "mysql"):
        md = declare.new_metadata()
        table = declare.compile(spec, md, BACKENDS[name])
        ddl = str(sa.schema.CreateTable(table).compile(
            dialect=sa.create_engine(f"{ {'sqlite': 'sqlite', 'postgresql': 'postgresql+psycopg', 'mysql': 'mysql+pymysql'}[name]}://").dialect))
        assert "subject_id" in ddl and "species" in ddl
    assert spec.primary_key == ["subject_id"]
    assert spec.comment == "subjects"
    assert [i.attributes for i in spec.indexes] == [["species"]]
    assert metadata.tables == {}


def test_table_names_follow_the_reference(schema: dj.Schema) -> None:
    @schema
    class Animal(dj.Manual):
        definition = """
        animal_id : int32
        """

    @schema
    class SpeciesType(dj.Lookup):
        definition = """
        species : varchar(20)
        """
        contents = [("mouse",), ("rat",)]

    @schema
    class RawRecording(dj.Imported):
        definition = """
        -> Animal
        """

    @schema
    class SpikeRate(dj.Computed):
        definition = """
        -> RawRecording
        ---
        rate : float64
        """

        class PerUnit(dj.Part):
            definition = """
            -> master
            unit : int16
            """

    assert Animal.table_name == "animal"
    assert SpeciesType.table_name == "#species_type"
    assert RawRecording.table_name == "_raw_recording"
    assert SpikeRate.table_name == "__spike_rate"
    assert SpikeRate.PerUnit.table_name == "__spike_rate__per_unit"
    assert SpikeRate.PerUnit.master is SpikeRate
    assert sorted(schema.list_tables()) == sorted(
        ["animal", "#species_type", "_raw_recording", "__spike_rate", "__spike_rate__per_unit"])
    assert len(SpeciesType()) == 2
    assert SpikeRate.PerUnit.primary_key == ["animal_id", "unit"]


def test_foreign_keys_with_renames_options_and_indexes(schema: dj.Schema) -> None:
    @schema
    class Person(dj.Manual):
        definition = """
        person_id : int32
        ---
        name : varchar(40)
        """

    @schema
    class Friendship(dj.Manual):
        definition = """
        -> Person.proj(friend_a='person_id')
        -> Person.proj(friend_b='person_id')
        ---
        -> [nullable] Person.proj(introducer='person_id')
        since = null : date
        unique index(since, introducer)
        """

    assert Friendship.primary_key == ["friend_a", "friend_b"]
    assert Friendship.heading["introducer"].nullable
    assert Friendship.heading["friend_a"].lineage == Person.heading["person_id"].lineage
    Person.insert([(1, "a"), (2, "b")])
    Friendship.insert1({"friend_a": 1, "friend_b": 2})
    with pytest.raises(dj.errors.IntegrityError):
        Friendship.insert1({"friend_a": 1, "friend_b": 3})
    text = Friendship.describe(printout=False)
    assert "-> Person.proj(friend_a='person_id')" in text
    assert "-> [nullable] Person.proj(introducer='person_id')" in text
    assert "unique index(since, introducer)" in text


def test_cross_schema_foreign_key_is_enforced(make_schema) -> None:  # type: ignore[no-untyped-def]
    upstream = make_schema()
    downstream = make_schema()

    @upstream
    class Subject(dj.Manual):
        definition = """
        subject_id : int32
        """

    @downstream
    class Session(dj.Manual):
        definition = """
        -> Subject
        session : int16
        """

    Subject.insert1({"subject_id": 1})
    Session.insert1({"subject_id": 1, "session": 1})
    with pytest.raises(dj.errors.IntegrityError):
        Session.insert1({"subject_id": 2, "session": 1})
    with pytest.raises(dj.errors.IntegrityError):
        (Subject & {"subject_id": 1}).delete_quick()
    assert len(Session()) == 1 and len(Subject()) == 1


def test_unique_foreign_key(schema: dj.Schema) -> None:
    @schema
    class Desk(dj.Manual):
        definition = """
        desk : int32
        """

    @schema
    class Worker(dj.Manual):
        definition = """
        worker : int32
        ---
        -> [unique] Desk
        """

    Desk.insert([(1,), (2,)])
    Worker.insert1({"worker": 1, "desk": 1})
    with pytest.raises(dj.errors.DuplicateError):
        Worker.insert1({"worker": 2, "desk": 1})


BAD_DEFINITIONS = [
    ("unknown type", "id : int32\n---\nx : floaty", 3, "Unknown attribute type"),
    ("unknown parent", "-> NoSuchTable\nid : int32", 1, "unknown parent"),
    ("duplicate attribute", "id : int32\n---\nx : int32\nx : int16", 4, "duplicate attribute"),
    ("bad default", "id : int32\n---\nx = abc : int32", 3, "bad default"),
    ("default out of range", "id : int32\n---\nx = 300 : uint8", 3, "outside the range"),
    ("invalid name", "Id : int32", 1, "invalid attribute name"),
    ("name with dash", "my-id : int32", 1, "invalid attribute name"),
    ("nullable key", "id = null : int32", 1, "cannot be nullable"),
    ("nullable key fk", "-> [nullable] Parent\nid : int32", 1, "cannot be nullable"),
    ("no primary key", "---\nx : int32", 0, "no primary key"),
    ("missing colon", "id int32", 1, "expected"),
    ("index on unknown", "id : int32\nindex(nope)", 2, "unknown attribute"),
    ("bad fk option", "-> [sideways] Parent\nid : int32", 1, "unknown foreign key option"),
    ("two dividers", "id : int32\n---\nx : int32\n---", 4, "second"),
    ("bad enum default", "id : int32\n---\ne = 'z' : enum('a','b')", 3, "enum"),
]


@pytest.mark.parametrize("case", BAD_DEFINITIONS, ids=[c[0] for c in BAD_DEFINITIONS])
def test_malformed_definitions_fail_with_table_and_line(schema: dj.Schema, case) -> None:  # type: ignore[no-untyped-def]
    _, definition, line, message = case

    @schema
    class Parent(dj.Manual):
        definition = """
        parent_id : int32
        """

    before = schema.list_tables()

    class Broken(dj.Manual):
        pass

    Broken.definition = definition
    with pytest.raises(DefinitionError) as info:
        schema(Broken)
    text = str(info.value)
    assert "Broken" in text
    if line:
        assert f"line {line}" in text
    assert message.lower() in text.lower()
    assert schema.list_tables() == before
    assert Broken._sa_table is None


def test_describe_redeclares_an_identical_table(make_schema) -> None:  # type: ignore[no-untyped-def]
    first = make_schema()
    second = make_schema()
    definition = """
    # measurements
    item_id : int32     # which item
    ---
    value = 1.5 : float64  # the value
    label = null : varchar(20)
    kind = "a" : enum('a','b')
    index(label)
    """

    class Item(dj.Manual):
        pass

    Item.definition = definition
    first(Item)
    text = Item.describe(printout=False)

    class Item2(dj.Manual):
        pass

    Item2.definition = text
    second(Item2)
    assert [(a.name, a.type, a.in_key, a.nullable, a.default, a.comment)
            for a in Item.heading.attributes] == [
        (a.name, a.type, a.in_key, a.nullable, a.default, a.comment)
        for a in Item2.heading.attributes]
    assert Item2.heading.table_comment == "measurements"


def test_two_foreign_keys_over_the_same_columns(schema: dj.Schema) -> None:
    """A diamond: two parents with the same primary key, both referenced by one child."""

    @schema
    class Animal(dj.Manual):
        definition = """
        animal_id : int32
        """

    @schema
    class Rate(dj.Manual):
        definition = """
        -> Animal
        ---
        rate : float64
        """

    @schema
    class Recording(dj.Manual):
        definition = """
        -> Animal
        ---
        path : varchar(64)
        """

    @schema
    class Summary(dj.Manual):
        definition = """
        -> Rate
        -> Recording
        ---
        note = "" : varchar(20)
        """

    Animal.insert([(1,), (2,)])
    Rate.insert1((1, 0.5))
    Recording.insert([(1, "a"), (2, "b")])
    Summary.insert1({"animal_id": 1})
    with pytest.raises(dj.errors.IntegrityError):
        Summary.insert1({"animal_id": 2})  # no Rate for animal 2
    assert len(Summary._sa_table.foreign_key_constraints) == 2
