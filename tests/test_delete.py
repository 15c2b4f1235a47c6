"""delete (cascading across tables and schemas, atomic, with its prompt), delete_quick, drop."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import pytest

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
