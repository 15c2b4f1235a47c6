"""delete (cascading across tables and schemas, atomic, with its prompt), delete_quick, drop."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

import datajoint_sa as dj
from datajoint_sa.errors import DataJointError, IntegrityError


@pytest.fixture
def t(make_schema: Callable[..., dj.Schema]) -> SimpleNamespace:
    """Three levels in one schema, a fourth (with a renamed reference) in a second schema."""
    lab = make_schema()
    analysis = make_schema()

    @lab
    class Subject(dj.Manual):
        definition = """
        subject_id : int32
        ---
        name : varchar(20)
        """

    @lab
    class Session(dj.Manual):
        definition = """
        -> Subject
        session : int16
        """

        class Trial(dj.Part):
            definition = """
            -> master
            trial : int16
            """

    @lab
    class Scan(dj.Manual):
        definition = """
        -> Session
        scan : int16
        """

    @analysis
    class Pairing(dj.Manual):
        definition = """
        pairing : int16
        ---
        -> Scan.proj(first_subject='subject_id', first_session='session', first_scan='scan')
        -> [nullable] Subject.proj(partner='subject_id')
        """

    Subject.insert([{"subject_id": i, "name": f"s{i}"} for i in (1, 2, 3)])
    Session.insert([{"subject_id": i, "session": s} for i in (1, 2, 3) for s in (1, 2)])
    Session.Trial.insert([{"subject_id": i, "session": s, "trial": n}
                          for i in (1, 2, 3) for s in (1, 2) for n in (1, 2, 3)])
    Scan.insert([{"subject_id": i, "session": s, "scan": 1} for i in (1, 2, 3) for s in (1, 2)])
    Pairing.insert([
        {"pairing": 1, "first_subject": 1, "first_session": 1, "first_scan": 1, "partner": 3},
        {"pairing": 2, "first_subject": 2, "first_session": 2, "first_scan": 1, "partner": 1},
        {"pairing": 3, "first_subject": 3, "first_session": 1, "first_scan": 1,
         "partner": None},
    ])
    return SimpleNamespace(Subject=Subject, Session=Session, Scan=Scan, Pairing=Pairing,
                           lab=lab, analysis=analysis)


def counts(t: SimpleNamespace) -> tuple[int, ...]:
    return (len(t.Subject), len(t.Session), len(t.Session.Trial), len(t.Scan), len(t.Pairing))


def test_cascade_across_levels_and_schemas(t: SimpleNamespace) -> None:
    deleted = (t.Subject & {"subject_id": 1}).delete(safemode=False)
    assert deleted == 1
    # subject 1: 2 sessions, 6 trials, 2 scans; pairing 1 (its scan) and 2 (its partner)
    assert counts(t) == (2, 4, 12, 4, 1)
    assert t.Pairing.fetch1("pairing") == 3


def test_cascade_from_the_middle(t: SimpleNamespace) -> None:
    (t.Session & {"subject_id": 2, "session": 2}).delete(safemode=False)
    assert counts(t) == (3, 5, 15, 5, 2)
    assert sorted(t.Pairing.fetch("pairing").tolist()) == [1, 3]


def test_unrestricted_delete_empties_every_dependent(t: SimpleNamespace) -> None:
    t.Subject.delete(safemode=False)
    assert counts(t) == (0, 0, 0, 0, 0)


def test_restriction_that_reads_a_dependent(t: SimpleNamespace) -> None:
    # subjects that have a scan in session 2: the restriction reads Scan, which the cascade
    # empties first, so the keys are read before anything is deleted
    doomed = t.Subject & (t.Scan & {"session": 2})
    assert len(doomed) == 3
    (t.Subject & (t.Scan & {"session": 2, "subject_id": 3})).delete(safemode=False)
    # subject 3 with its sessions, trials and scans; pairing 3 (its scan), 1 (its partner)
    assert counts(t) == (2, 4, 12, 4, 1)


def test_part_rows_without_their_master_are_refused(t: SimpleNamespace) -> None:
    with pytest.raises(DataJointError, match="master"):
        (t.Session.Trial & {"subject_id": 1}).delete(safemode=False)
    assert len(t.Session.Trial) == 18
    (t.Session.Trial & {"subject_id": 1, "session": 1, "trial": 1}).delete(
        safemode=False, force_parts=True)
    assert len(t.Session.Trial) == 17


def test_deleting_the_master_takes_its_parts(t: SimpleNamespace) -> None:
    (t.Session & {"subject_id": 3}).delete(safemode=False)
    assert len(t.Session.Trial) == 12


def test_safemode_prompt_lists_counts_and_can_cancel(t: SimpleNamespace,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    answers = iter(["no"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(answers))
    assert (t.Subject & {"subject_id": 1}).delete(safemode=True) == 0
    shown = capsys.readouterr().out
    assert "Deleting 1 row from" in shown and "subject" in shown
    assert "Deleting 6 rows from" in shown and "trial" in shown
    assert "pairing" in shown and "cancelled" in shown
    assert counts(t) == (3, 6, 18, 6, 3)  # nothing deleted


def test_safemode_prompt_confirmed(t: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("builtins.input", lambda prompt="": "yes")
    with dj.config.override(safemode=True):
        assert (t.Subject & {"subject_id": 2}).delete() == 1
    assert len(t.Subject) == 2


def test_delete_inside_a_failing_transaction_is_rolled_back(t: SimpleNamespace) -> None:
    connection = t.Subject.connection
    with pytest.raises(RuntimeError), connection.transaction:
        (t.Subject & {"subject_id": 1}).delete(safemode=True)  # no prompt inside a transaction
        assert len(t.Session) == 4
        raise RuntimeError("abort")
    assert counts(t) == (3, 6, 18, 6, 3)


def test_delete_nothing(t: SimpleNamespace) -> None:
    assert (t.Subject & {"subject_id": 99}).delete(safemode=False) == 0
    assert counts(t) == (3, 6, 18, 6, 3)


def test_delete_quick(t: SimpleNamespace) -> None:
    assert (t.Pairing & {"pairing": 3}).delete_quick(get_count=True) == 1
    with pytest.raises(IntegrityError) as info:
        (t.Subject & {"subject_id": 1}).delete_quick()
    assert "Subject" in str(info.value) and info.value.__cause__ is not None
    assert counts(t) == (3, 6, 18, 6, 2)


def test_drop_takes_dependents_first(t: SimpleNamespace) -> None:
    t.Session.drop(force=True)
    remaining = set(t.lab.list_tables())
    assert remaining == {"subject"}
    assert t.analysis.list_tables() == []


def test_drop_part_alone_is_refused(t: SimpleNamespace) -> None:
    with pytest.raises(DataJointError, match="master"):
        t.Session.Trial.drop()


def test_drop_prompt(t: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("builtins.input", lambda prompt="": "no")
    with dj.config.override(safemode=True):
        t.Scan.drop()
    assert "scan" in t.lab.list_tables()


# ------------------------------------------------------------------ classic part semantics

@pytest.fixture
def grouped(make_schema: Callable[..., dj.Schema]) -> SimpleNamespace:
    """A master whose part references another table (as element-animal's genotyping):
    deleting a subject reaches the part."""
    schema = make_schema()

    @schema
    class Animal(dj.Manual):
        definition = """
        animal : int32
        """

    @schema
    class Cohort(dj.Manual):
        definition = """
        cohort : int16
        """

        class Member(dj.Part):
            definition = """
            -> master
            -> Animal
            """

    Animal.insert([(i,) for i in range(1, 6)])
    Cohort.insert([(1,), (2,), (3,)])
    Cohort.Member.insert([(1, 1), (1, 2), (2, 3), (3, 1)])
    return SimpleNamespace(Animal=Animal, Cohort=Cohort)


def test_a_delete_that_reaches_a_part_but_hits_no_part_row(grouped: SimpleNamespace) -> None:
    assert (grouped.Animal & {"animal": 5}).delete(prompt=False) == 1
    assert len(grouped.Animal) == 4 and len(grouped.Cohort.Member) == 4


def test_part_rows_whose_master_rows_stay_are_refused(grouped: SimpleNamespace) -> None:
    with pytest.raises(DataJointError, match="force_masters"):
        (grouped.Animal & {"animal": 1}).delete(safemode=False)
    assert (len(grouped.Animal), len(grouped.Cohort), len(grouped.Cohort.Member)) == (5, 3, 4)


def test_force_masters_deletes_the_masters_with_their_other_parts(grouped: SimpleNamespace
                                                                  ) -> None:
    (grouped.Animal & {"animal": 1}).delete(safemode=False, force_masters=True)
    # cohorts 1 and 3 held animal 1: they go, with cohort 1's member animal 2
    assert grouped.Cohort.fetch("cohort").tolist() == [2]
    assert grouped.Cohort.Member.fetch("animal").tolist() == [3]
    assert sorted(grouped.Animal.fetch("animal").tolist()) == [2, 3, 4, 5]


def test_force_parts_deletes_the_part_rows_alone(grouped: SimpleNamespace) -> None:
    (grouped.Animal & {"animal": 1}).delete(safemode=False, force_parts=True)
    assert len(grouped.Cohort) == 3 and len(grouped.Cohort.Member) == 2


def test_deleting_masters_that_hold_every_reached_part_row(grouped: SimpleNamespace) -> None:
    # animals 3 (cohort 2 only) with cohort 2 deleted in the same cascade is fine
    (grouped.Cohort & {"cohort": 2}).delete(safemode=False)
    (grouped.Animal & {"animal": 3}).delete(safemode=False)
    assert len(grouped.Cohort.Member) == 3


def test_prompt_is_the_newer_name_of_safemode(t: SimpleNamespace,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    assert (t.Subject & {"subject_id": 1}).delete(prompt=False) == 1
    monkeypatch.setattr("builtins.input", lambda prompt="": "no")
    assert (t.Subject & {"subject_id": 2}).delete(prompt=True) == 0
    assert len(t.Subject) == 2
    with pytest.raises(DataJointError, match="not both"):
        t.Subject.delete(safemode=True, prompt=False)


def test_cascade_through_a_long_chain(make_schema: Callable[..., dj.Schema]) -> None:
    """Fourteen levels, each keyed on its parent (SQLite overflowed on nested EXISTS)."""
    schema = make_schema()
    context: dict[str, object] = {}
    levels = 14
    for level in range(levels):
        parent = f"-> Level{level - 1}\n" if level else ""
        definition = f"{parent}k{level} : int16\n"
        cls = type(f"Level{level}", (dj.Manual,), {"definition": definition})
        context[cls.__name__] = schema(cls, context=context)
    tables = [context[f"Level{level}"] for level in range(levels)]
    for level, table in enumerate(tables):
        table.insert([tuple([1] * level + [v]) for v in (1, 2)])  # type: ignore[attr-defined]
    assert [len(t) for t in tables] == [2] * levels  # type: ignore[arg-type]
    (tables[0] & {"k0": 1}).delete(safemode=False)  # type: ignore[operator]
    assert [len(t) for t in tables] == [1] + [0] * (levels - 1)  # type: ignore[arg-type]


# ------------------------------------------------------- a plain DELETE where nothing depends

def _statements(connection: dj.Connection, action: Callable[[], object]) -> list[str]:
    """The SQL statements (BEGIN/COMMIT aside) that `action` sends and the server runs: one
    it refuses is left out (a MySQL user without PROCESS is refused InnoDB's dictionary
    once per session, and then asked the standard view: tests/test_least_privilege.py)."""
    import sqlalchemy as sa

    sent: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT")):
            sent.append(statement)

    def refused(context: sa.engine.ExceptionContext) -> None:
        if context.statement in sent:
            sent.remove(context.statement)

    sa.event.listen(connection.engine, "before_cursor_execute", record)
    sa.event.listen(connection.engine, "handle_error", refused)
    try:
        action()
    finally:
        sa.event.remove(connection.engine, "before_cursor_execute", record)
        sa.event.remove(connection.engine, "handle_error", refused)
    return sent


def test_deleting_from_a_leaf_table_sends_one_delete(t: SimpleNamespace) -> None:
    """One catalog query (whether anything refers to the table; SQLite's goes through the
    driver's cursor, unseen here) and one DELETE: no reading of the graph."""
    connection = t.Pairing.connection
    for doomed in (t.Pairing & {"pairing": 1}, t.Pairing):
        sent = _statements(connection, lambda doomed=doomed: doomed.delete(safemode=False))
        kinds = [s.lstrip().split(None, 1)[0].upper() for s in sent]
        assert kinds in (["DELETE"], ["SELECT", "DELETE"]), sent
    assert counts(t) == (3, 6, 18, 6, 0)


def test_rows_nothing_refers_to_go_with_one_delete(t: SimpleNamespace) -> None:
    t.Subject.insert1({"subject_id": 9, "name": "alone"})
    deleted = (t.Subject & {"subject_id": 9}).delete(safemode=False)
    assert deleted == 1 and counts(t) == (3, 6, 18, 6, 3)


def test_a_dependent_declared_after_a_plain_delete_is_reached(
        make_schema: Callable[..., dj.Schema]) -> None:
    """The first delete finds no dependent table; the second one's plain DELETE meets rows
    of a table declared since, is rolled back, and the cascade reaches them."""
    schema = make_schema()

    @schema
    class Animal(dj.Manual):
        definition = """
        animal : int16
        """

    Animal.insert([(1,), (2,), (3,)])
    assert (Animal & {"animal": 3}).delete(safemode=False) == 1

    @schema
    class Weighing(dj.Manual):
        definition = """
        -> Animal
        day : int16
        """

    Weighing.insert([(1, 1), (1, 2), (2, 1)])
    assert (Animal & {"animal": 1}).delete(safemode=False) == 1
    assert len(Animal) == 1 and Weighing.to_dicts() == [{"animal": 2, "day": 1}]


def test_plain_delete_prompt_counts_and_can_cancel(t: SimpleNamespace,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    answers = iter(["no", "yes"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(answers))
    assert (t.Pairing & "pairing < 3").delete(safemode=True) == 0
    shown = capsys.readouterr().out
    assert "Deleting 2 rows from" in shown and "pairing" in shown and "cancelled" in shown
    assert len(t.Pairing) == 3
    assert (t.Pairing & "pairing < 3").delete(safemode=True) == 2
    assert len(t.Pairing) == 1


# ------------------------------------------------- emptying whole tables (no WHERE to check)

def test_emptying_a_table_empties_its_dependents_with_plain_deletes(t: SimpleNamespace
                                                                   ) -> None:
    """Unrestricted, the root and every table keyed on an emptied one lose every row: each
    is deleted without a WHERE. Pairing refers to Scan outside its primary key, so its rows
    are still named through Scan's."""
    connection = t.Subject.connection
    t.Subject.delete(safemode=False)  # reads the graph once (then it is known to be a parent)
    for table, rows in ((t.Subject, [(1, "a"), (2, "b")]), (t.Session, [(1, 1), (2, 1)]),
                        (t.Scan, [(1, 1, 1), (2, 1, 1)])):
        table.insert(rows)
    t.Session.Trial.insert([(1, 1, 1)])
    t.Pairing.insert([(1, 1, 1, 1, None)])
    sent = [" ".join(s.split()) for s in _statements(
        connection, lambda: t.Subject.delete(safemode=False))]
    deletes = [s for s in sent if s.upper().startswith("DELETE")]
    plain = [s for s in deletes if " WHERE " not in s.upper()]
    assert len(plain) == 4, deletes  # Subject, Session, its Trial part, Scan
    assert [s for s in deletes if s not in plain and "pairing" in s.lower()], deletes
    assert not [s for s in sent if "TEMPORARY" in s.upper()], sent
    assert counts(t) == (0, 0, 0, 0, 0)


def test_rows_with_a_null_reference_to_an_emptied_table_stay(
        make_schema: Callable[..., dj.Schema]) -> None:
    schema = make_schema()

    @schema
    class Rig(dj.Manual):
        definition = """
        rig : int16
        """

    @schema
    class Note(dj.Manual):
        definition = """
        note : int16
        ---
        -> [nullable] Rig
        """

    Rig.insert([(1,), (2,)])
    Note.insert([(1, 1), (2, None), (3, 2)])
    assert Rig.delete(safemode=False) == 2
    assert Note.to_dicts() == [{"note": 2, "rig": None}]


def test_emptying_a_table_whose_rows_a_part_refers_to_checks_the_masters(
        grouped: SimpleNamespace) -> None:
    """Every Member row goes with Animal, but Cohort's rows do not: refused as before, and
    force_masters deletes just the cohorts that had members."""
    grouped.Cohort.insert1((4,))
    with pytest.raises(DataJointError, match="force_masters"):
        grouped.Animal.delete(safemode=False)
    assert (len(grouped.Animal), len(grouped.Cohort), len(grouped.Cohort.Member)) == (5, 4, 4)
    grouped.Animal.delete(safemode=False, force_masters=True)
    assert grouped.Cohort.fetch("cohort").tolist() == [4]
    assert (len(grouped.Animal), len(grouped.Cohort.Member)) == (0, 0)


def test_emptying_a_master_takes_its_parts_without_a_check(grouped: SimpleNamespace) -> None:
    assert grouped.Cohort.delete(safemode=False) == 3
    assert (len(grouped.Animal), len(grouped.Cohort), len(grouped.Cohort.Member)) == (5, 0, 0)


# ----------------------------------------- a plain DELETE only where nothing refers to the table

def _animal_and_weighing(schema: dj.Schema) -> tuple[Any, Any]:
    """A lookup table (its name starts with #, which MySQL's dictionary spells @0023) and a
    table whose key refers to it."""

    @schema
    class Animal(dj.Lookup):
        definition = """
        animal : int16
        """

    @schema
    class Weighing(dj.Manual):
        definition = """
        -> Animal
        day : int16
        """

    return Animal, Weighing


def test_a_referred_to_table_is_not_deleted_plainly_first(
        make_schema: Callable[..., dj.Schema]) -> None:
    """Its rows are deleted once, by the cascade: no plain DELETE that the database would
    run until it met a referred-to row (every row on PostgreSQL) and then roll back. (A
    lookup table: its name starts with #, which MySQL's dictionary spells @0023.)"""
    Animal, Weighing = _animal_and_weighing(make_schema())
    Animal.insert([(1,), (2,)])
    Weighing.insert([(2, 1)])
    sent = _statements(Animal.connection, lambda: Animal.delete(safemode=False))
    deletes = [s for s in sent if s.lstrip().upper().startswith("DELETE")]
    backend = Animal.connection.backend_impl
    # Weighing's, then Animal's; where the DELETE carries the catalog question itself
    # (PostgreSQL), first one that the question stops before it reads a row
    guarded = backend.referenced_condition(Animal.database, Animal.table_name) is not None
    assert len(deletes) == 2 + guarded, deletes
    assert (len(Animal), len(Weighing)) == (0, 0)


def test_delete_unless_referenced_asks_the_catalog_once(
        make_schema: Callable[..., dj.Schema]) -> None:
    """A table nothing refers to: its rows go, counted, in one DELETE where the backend
    has a `referenced_condition` (one statement besides where it has not); a table
    something refers to: None and nothing deleted, whether rows matched or not."""
    schema = make_schema()
    Animal, Weighing = _animal_and_weighing(schema)
    Animal.insert([(1,), (2,), (3,)])
    Weighing.insert([(2, 1), (2, 2)])
    connection = Animal.connection
    backend = connection.backend_impl
    weighing = Weighing._sa_table
    animal = Animal._sa_table

    def run(table: Any, where: Any = None, name: str = "") -> Any:
        statement = sa.delete(table) if where is None else sa.delete(table).where(where)
        with connection.session(write=True) as conn:
            return backend.delete_unless_referenced(conn, statement, schema.database, name)

    guarded = backend.referenced_condition(schema.database, Weighing.table_name) is not None
    sent = _statements(connection, lambda: run(weighing, weighing.c.day == 2,
                                               Weighing.table_name))
    # SQLite's catalog query goes through the driver's cursor, unseen here
    assert len(sent) == 1 if guarded else len(sent) in (1, 2), sent
    assert Weighing.to_dicts() == [{"animal": 2, "day": 1}]
    assert run(weighing, weighing.c.day == 7, Weighing.table_name) == 0
    assert run(animal, animal.c.animal == 3, Animal.table_name) is None
    assert run(animal, animal.c.animal == 9, Animal.table_name) is None
    assert run(animal, None, Animal.table_name) is None
    assert len(Animal) == 3
    assert run(weighing, None, Weighing.table_name) == 1 and len(Weighing) == 0


def test_a_cascading_foreign_key_declared_elsewhere_is_previewed(
        make_schema: Callable[..., dj.Schema], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A table outside the package refers to Animal with ON DELETE CASCADE: a plain DELETE
    would succeed and let the database delete its rows unseen; the cascade shows them in
    the prompt, and declining keeps them."""
    import sqlalchemy as sa

    schema = make_schema()

    @schema
    class Animal(dj.Manual):
        definition = """
        animal : int16
        """

    connection = Animal.connection
    backend = connection.backend_impl
    sa_schema, sa_name = backend.table_identity(schema.database, "sighting")
    parent = Animal._sa_table
    assert parent is not None
    sighting = sa.Table(
        sa_name, sa.MetaData(), sa.Column("sighting", sa.Integer, primary_key=True),
        sa.Column("animal", sa.SmallInteger, nullable=False),
        sa.ForeignKeyConstraint(["animal"], [parent.c.animal], ondelete="CASCADE"),
        schema=sa_schema)
    with connection.engine.begin() as sa_conn:
        sighting.create(sa_conn)
    Animal.insert([(1,), (2,)])
    connection.execute(sa.insert(sighting), [{"sighting": 1, "animal": 1}])
    monkeypatch.setattr("builtins.input", lambda prompt="": "no")
    assert Animal.delete(safemode=True) == 0
    shown = capsys.readouterr().out
    assert "sighting" in shown and "Deleting 2 rows from" in shown, shown
    rows = connection.query(sa.select(sa.func.count()).select_from(sighting))[0][0]
    assert (len(Animal), rows) == (2, 1)
    monkeypatch.setattr("builtins.input", lambda prompt="": "yes")
    assert Animal.delete(safemode=True) == 2
    rows = connection.query(sa.select(sa.func.count()).select_from(sighting))[0][0]
    assert (len(Animal), rows) == (0, 0)
