"""Schemas: namespaces, activation, listing, dropping."""

from __future__ import annotations

import pytest

import datajoint_sa as dj

from .conftest import unique_name


def test_schema_is_a_namespace(make_schema, connection: dj.Connection) -> None:  # type: ignore[no-untyped-def]
    a = make_schema()
    b = make_schema()

    class Item(dj.Manual):
        definition = """
        item : int32
        """

    a(Item)
    assert a.exists and b.exists
    assert a.database in dj.list_schemas(connection)
    assert a.list_tables() == ["item"]
    assert b.list_tables() == []


def test_deferred_activation(connection: dj.Connection) -> None:
    schema = dj.Schema()

    @schema
    class Early(dj.Manual):
        definition = """
        early_id : int32
        """

    @schema
    class Later(dj.Manual):
        definition = """
        -> Early
        later_id : int32
        """

    assert Early._sa_table is None
    with pytest.raises(dj.DataJointError):
        len(Early())
    name = unique_name()
    schema.activate(name, connection=connection)
    try:
        assert Later.primary_key == ["early_id", "later_id"]
        Early.insert1((1,))
        Later.insert1((1, 2))
        assert len(Later()) == 1
    finally:
        schema.drop(force=True)
    assert not schema.exists


def test_missing_schema_without_create(connection: dj.Connection) -> None:
    with pytest.raises(dj.DataJointError, match="does not exist"):
        dj.Schema(unique_name(), connection=connection, create_schema=False)


def test_invalid_schema_name(connection: dj.Connection) -> None:
    with pytest.raises(dj.DataJointError, match="Invalid schema name"):
        dj.Schema("bad name; drop", connection=connection)


def test_drop_table_drops_dependents_first(schema: dj.Schema, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    @schema
    class Top(dj.Manual):
        definition = """
        top_id : int32
        """

    @schema
    class Middle(dj.Manual):
        definition = """
        -> Top
        mid : int32
        """

    @schema
    class Bottom(dj.Manual):
        definition = """
        -> Middle
        bottom : int32
        """

    Top.insert1((1,))
    Middle.insert1((1, 1))
    Bottom.insert1((1, 1, 1))
    answers = iter(["no"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(answers))
    Top.drop()
    assert sorted(schema.list_tables()) == ["bottom", "middle", "top"]
    Middle.drop(force=True)
    assert schema.list_tables() == ["top"]
    assert Bottom._sa_table is None


def test_schema_drop_asks_in_safemode(make_schema, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    schema = make_schema()

    @schema
    class Thing(dj.Manual):
        definition = """
        thing : int32
        """

    monkeypatch.setattr("builtins.input", lambda prompt="": "no")
    schema.drop()
    assert schema.exists
    monkeypatch.setattr("builtins.input", lambda prompt="": "yes")
    schema.drop()
    assert not schema.exists


def test_redeclaring_a_class_reuses_the_table(schema: dj.Schema) -> None:
    definition = """
    key_id : int32
    ---
    v : int32
    """

    class One(dj.Manual):
        pass

    One.definition = definition
    schema(One)
    One.insert1((1, 10))

    class One2(dj.Manual):
        pass

    One2.__name__ = "One"
    One2.definition = definition
    schema(One2)
    assert One2.fetch1("v") == 10


def test_a_table_created_inside_a_transaction_never_half_commits_it(
        schema: dj.Schema) -> None:
    """Where DDL is transactional, a table created inside a transaction is undone with it.
    Where every CREATE commits the open transaction (MySQL), the CREATE is refused before
    it runs: the writes before it stay uncommitted and roll back."""
    connection = schema.connection

    @schema
    class Animal(dj.Manual):
        definition = """
        animal : int32
        """

    transactional = connection.backend_impl.transactional_ddl
    with pytest.raises(dj.DataJointError if not transactional else RuntimeError,
                       match="inside a transaction" if not transactional else "abort"):
        with connection.transaction:
            Animal.insert1({"animal": 1})

            @schema
            class Cage(dj.Manual):
                definition = """
                cage : int32
                """

            raise RuntimeError("abort")
    assert len(Animal()) == 0
    assert "cage" not in schema.list_tables()

    with connection.transaction:  # a table that exists needs no DDL: declared anywhere
        @schema
        class Animal(dj.Manual):  # type: ignore[no-redef]
            definition = """
            animal : int32
            """

        Animal.insert1({"animal": 2})
    assert len(Animal()) == 1

    @schema
    class Cage(dj.Manual):  # type: ignore[no-redef]
        definition = """
        cage : int32
        """

    Cage.insert1({"cage": 1})
    if not transactional:
        with pytest.raises(dj.DataJointError, match="inside a transaction"):
            with connection.transaction:
                Animal.insert1({"animal": 3})
                Cage.drop_quick()
        assert len(Animal()) == 1 and len(Cage()) == 1


def test_a_new_table_in_a_schema_that_exists(schema: dj.Schema) -> None:
    """A pipeline run again with one more table: the schema exists (a new Schema object on
    it asks the catalog), and the new table is created, on every backend. Inside a
    transaction, MySQL still refuses the CREATE before it runs."""
    connection = schema.connection

    @schema
    class Animal(dj.Manual):
        definition = """
        animal : int32
        """

    again = dj.Schema(schema.database, connection=connection)

    @again
    class Animal(dj.Manual):  # type: ignore[no-redef]  # noqa: F811 (the class bound again)
        definition = """
        animal : int32
        """

    @again
    class Weighing(dj.Manual):
        definition = """
        -> Animal
        weighing : int32
        """

    Animal.insert1({"animal": 1})
    Weighing.insert1({"animal": 1, "weighing": 1})
    assert "weighing" in schema.list_tables()
    if not connection.backend_impl.transactional_ddl:
        later = dj.Schema(schema.database, connection=connection)
        with pytest.raises(dj.DataJointError, match="inside a transaction"):
            with connection.transaction:
                @later
                class Cage(dj.Manual):
                    definition = """
                    cage : int32
                    """
        assert "cage" not in schema.list_tables()
