"""The query algebra: join, projection, aggregation, union, dj.U, dj.Top, and what queries
offer (len, bool, in, iter, heading, make_sql, previews), on every backend.

One small pipeline per backend (module scope); tests that write make their own tables.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

import datajoint_sa as dj
from datajoint_sa.errors import DataJointError, QueryError, UnknownAttributeError

pytestmark = pytest.mark.filterwarnings("error::sqlalchemy.exc.SAWarning")


@pytest.fixture(scope="module")
def db(module_schema: dj.Schema) -> SimpleNamespace:
    schema = module_schema
    connection = schema.connection

    @schema
    class Rig(dj.Lookup):
        definition = """
        rig_id : int16
        ---
        room : varchar(10)
        """
        contents = [(1, "a"), (2, "b"), (3, "c")]

    @schema
    class Subject(dj.Manual):
        definition = """
        subject_id : int32
        ---
        name : varchar(20)
        weight = null : float64
        """

    @schema
    class Session(dj.Manual):
        definition = """
        -> Subject
        session : int16
        ---
        duration : float64
        -> [nullable] Rig
        """

    @schema
    class Trial(dj.Manual):
        definition = """
        -> Session
        trial : int16
        ---
        outcome : int32
        """

    @schema
    class Other(dj.Manual):
        definition = """
        subject_id : int32     # unrelated to Subject.subject_id
        ---
        label : varchar(20)
        """

    @schema
    class Note(dj.Manual):
        definition = """
        note_id : int16
        ---
        duration : float64     # shares a name with Session.duration only
        """

    Subject.insert([(1, "ann", 20.0), (2, "bob", None), (3, "cid", 31.0), (4, "dee", 18.0)])
    Session.insert([(1, 1, 1.5, 1), (1, 2, 2.5, 2), (2, 1, 3.0, None), (3, 1, 0.5, 1),
                    (3, 2, 2.0, 1)])
    Trial.insert([(1, 1, t, t % 2) for t in range(1, 4)] + [(1, 2, 1, 1), (3, 2, 1, 0),
                                                            (3, 2, 2, 1)])
    Other.insert([(1, "x"), (7, "y")])
    Note.insert([(1, 1.5), (2, 9.0)])
    return SimpleNamespace(backend=connection.backend, connection=connection, schema=schema,
                          Rig=Rig, Subject=Subject, Session=Session, Trial=Trial, Other=Other,
                          Note=Note)


def rows(expr: Any) -> list[tuple[Any, ...]]:
    """All rows as tuples in heading order, sorted (NULLs first)."""
    names = expr.heading.names
    return sorted((tuple(r[n] for n in names) for r in expr.fetch(as_dict=True)),
                  key=lambda t: tuple((v is not None, v) for v in t))


def selects(expr: Any) -> int:
    """How many SELECTs the compiled SQL has (1 = flat, no subquery)."""
    return len(re.findall(r"\bSELECT\b", expr.make_sql(), flags=re.IGNORECASE))


# ---- join ------------------------------------------------------------------------------------
def test_natural_join(db: SimpleNamespace) -> None:
    q = db.Subject * db.Session
    assert q.primary_key == ["subject_id", "session"]
    assert q.heading.names == ["subject_id", "session", "name", "weight", "duration", "rig_id"]
    assert [r[:3] for r in rows(q)] == [(1, 1, "ann"), (1, 2, "ann"), (2, 1, "bob"),
                                        (3, 1, "cid"), (3, 2, "cid")]
    assert selects(q) == 1


def test_join_through_secondary_foreign_key(db: SimpleNamespace) -> None:
    q = db.Session * db.Rig
    assert q.primary_key == ["subject_id", "session"]
    assert [(r[0], r[1], r[-1]) for r in rows(q)] == [(1, 1, "a"), (1, 2, "b"), (3, 1, "a"),
                                                      (3, 2, "a")]


def test_join_of_joins_and_restrictions_stays_flat(db: SimpleNamespace) -> None:
    q = (db.Subject & "weight > 19") * (db.Session & "duration > 1") * db.Trial * db.Rig
    assert selects(q) == 1
    assert [(r[0], r[1], r[2]) for r in rows(q)] == [(1, 1, 1), (1, 1, 2), (1, 1, 3),
                                                     (1, 2, 1), (3, 2, 1), (3, 2, 2)]


def test_join_without_common_attributes_is_an_explicit_product(db: SimpleNamespace) -> None:
    q = db.Rig * db.Note
    assert len(q) == 6
    assert q.primary_key == ["rig_id", "note_id"]
    assert " JOIN " in q.make_sql().upper()


def test_products_of_several_operands_are_explicit(db: SimpleNamespace) -> None:
    notes = db.Note.proj(nid="note_id")
    q = db.Rig * notes * db.Other.proj(o="subject_id")
    assert len(q) == 3 * 2 * 2
    assert len((db.Subject * db.Session) * notes) == 5 * 2
    assert len(db.Subject.proj() * (db.Rig * notes)) == 4 * 3 * 2
    assert rows(db.Subject.aggr(db.Rig * notes, n="count(*)")) == [(1, 6), (2, 6), (3, 6),
                                                                   (4, 6)]


def test_semantic_check_secondary_in_both(db: SimpleNamespace) -> None:
    with pytest.raises(QueryError, match="duration.*secondary attribute in both"):
        db.Session * db.Note
    q = db.Session @ db.Note
    assert [(r[0], r[1], r[-1]) for r in rows(q)] == [(1, 1, 1)]
    assert len(db.Session.join(db.Note, semantic_check=False)) == 1


def test_semantic_check_different_lineage(db: SimpleNamespace) -> None:
    with pytest.raises(QueryError, match="subject_id.*different tables"):
        db.Subject * db.Other
    with pytest.raises(QueryError):
        db.Other * db.Session
    assert rows((db.Subject @ db.Other).proj("label")) == [(1, "x")]


def test_semantic_check_renamed_attribute(db: SimpleNamespace) -> None:
    # renaming keeps the lineage: the renamed key still matches its origin
    s2 = db.Subject.proj(sid="subject_id")
    with pytest.raises(QueryError):
        s2 * db.Session.proj(sid="session")
    assert len(s2 * db.Subject.proj(sid="subject_id", n="name")) == 4


def test_self_join_through_renames(db: SimpleNamespace) -> None:
    other = db.Session.proj(other="session", other_duration="duration")
    q = (db.Session * other) & "other_duration > duration"
    assert [(r[0], r[1], r[2]) for r in rows(q.proj())] == [(1, 1, 2), (3, 1, 2)]


def test_left_join(db: SimpleNamespace) -> None:
    q = db.Session.join(db.Rig, left=True)
    assert len(q) == 5
    assert [(r[0], r[1], r[-1]) for r in rows(q)] == [(1, 1, "a"), (1, 2, "b"), (2, 1, None),
                                                      (3, 1, "a"), (3, 2, "a")]
    with pytest.raises(QueryError, match="left join"):
        db.Rig.join(db.Session, left=True)


def test_join_with_table_classes_and_instances(db: SimpleNamespace) -> None:
    assert len(db.Subject * db.Session) == len(db.Subject() * db.Session()) == 5
    assert len(db.Subject() * db.Session) == 5


# ---- projection ------------------------------------------------------------------------------
def test_proj_keeps_the_key(db: SimpleNamespace) -> None:
    assert db.Session.proj().heading.names == ["subject_id", "session"]
    assert db.Session.proj("duration").heading.names == ["subject_id", "session", "duration"]
    assert db.Session.proj(...).heading.names == db.Session.heading.names
    assert db.Session.proj(..., "-rig_id").heading.names == [
        "subject_id", "session", "duration"]


def test_proj_rename(db: SimpleNamespace) -> None:
    q = db.Subject.proj(animal="subject_id", who="name")
    assert q.primary_key == ["animal"]
    assert q.heading.names == ["animal", "who"]
    assert rows(q) == [(1, "ann"), (2, "bob"), (3, "cid"), (4, "dee")]


def test_proj_copy_and_computed(db: SimpleNamespace) -> None:
    q = db.Subject.proj("weight", w2="weight * 2", again="(name)", label='concat(name, "!")')
    assert q.primary_key == ["subject_id"]
    got = rows(q)
    assert q.heading.names == ["subject_id", "again", "weight", "w2", "label"]
    assert got[0] == (1, "ann", 20.0, 40.0, "ann!")
    assert got[1] == (2, "bob", None, None, "bob!")


def test_restriction_after_rename_and_computation_is_flat(db: SimpleNamespace) -> None:
    q = db.Subject.proj(who="name", heavy="weight > 19") & "heavy" & {"who": "cid"}
    assert rows(q) == [(3, "cid", True)] or rows(q) == [(3, "cid", 1)]
    assert selects(q) == 1
    q = db.Session.proj(minutes="duration * 60") & "minutes > 100"
    assert [r[:3] for r in rows(q)] == [(1, 2, 150.0), (2, 1, 180.0), (3, 2, 120.0)]
    assert selects(q) == 1


def test_proj_errors(db: SimpleNamespace) -> None:
    with pytest.raises(UnknownAttributeError, match="colour"):
        db.Subject.proj("colour")
    with pytest.raises(UnknownAttributeError, match="colour"):
        db.Subject.proj(c="colour + 1")
    with pytest.raises(QueryError, match="primary-key"):
        db.Subject.proj(..., "-subject_id")
    with pytest.raises(QueryError, match="already exists"):
        db.Subject.proj("name", name="weight")
    with pytest.raises(QueryError, match="aggregate"):
        db.Subject.proj(n="count(*)")
    with pytest.raises(QueryError):
        db.Subject.proj(bad="weight +* 2")


# ---- aggregation -----------------------------------------------------------------------------
def test_aggr_keeps_every_row(db: SimpleNamespace) -> None:
    q = db.Subject.aggr(db.Session, n="count(*)", longest="max(duration)")
    assert q.primary_key == ["subject_id"]
    assert rows(q) == [(1, 2, 2.5), (2, 1, 3.0), (3, 2, 2.0), (4, 0, None)]
    assert selects(q) == 1


def test_aggr_exclude_nonmatching_and_legacy_keep_all_rows(db: SimpleNamespace) -> None:
    q = db.Subject.aggr(db.Session, n="count(*)", exclude_nonmatching=True)
    assert rows(q) == [(1, 2), (2, 1), (3, 2)]
    assert rows(db.Subject.aggr(db.Session, n="count(*)", keep_all_rows=False)) == rows(q)
    assert len(db.Subject.aggr(db.Session, n="count(*)", keep_all_rows=True)) == 4


def test_aggr_with_kept_attributes(db: SimpleNamespace) -> None:
    q = db.Subject.aggr(db.Session, "name", total="sum(duration)")
    assert rows(q) == [(1, "ann", 4.0), (2, "bob", 3.0), (3, "cid", 2.5), (4, "dee", None)]
    q = db.Subject.aggr(db.Session, ..., n="count(*)")
    assert q.heading.names == ["subject_id", "name", "weight", "n"]


def test_aggr_of_a_join_and_of_a_restriction(db: SimpleNamespace) -> None:
    q = db.Session.aggr(db.Trial * db.Rig, wins="sum(outcome)", n="count(*)")
    assert rows(q) == [(1, 1, 2, 3), (1, 2, 1, 1), (2, 1, None, 0), (3, 1, None, 0),
                       (3, 2, 1, 2)]
    q = db.Subject.aggr(db.Session & "duration > 2", n="count(*)")
    assert rows(q) == [(1, 1), (2, 1), (3, 0), (4, 0)]


def test_aggr_counts_distinct_and_uses_left_attributes(db: SimpleNamespace) -> None:
    q = db.Subject.aggr(db.Session * db.Trial, rigs="count(distinct rig_id)",
                        score="max(outcome) + weight")
    assert rows(q) == [(1, 2, 21.0), (2, 0, None), (3, 1, 32.0), (4, 0, None)]


def test_aggregates_of_common_attributes_see_only_matching_rows(db: SimpleNamespace) -> None:
    q = db.Subject.aggr(db.Session, m="max(subject_id)", k="count(subject_id)",
                        d="count(distinct subject_id)", plain="subject_id * 10")
    assert rows(q) == [(1, 1, 2, 1, 10), (2, 2, 1, 1, 20), (3, 3, 2, 1, 30),
                       (4, None, 0, 0, 40)]


def test_restricted_aggregation_is_a_subquery(db: SimpleNamespace) -> None:
    q = db.Subject.aggr(db.Session, n="count(*)") & "n > 0" & {"subject_id": 3}
    assert rows(q) == [(3, 2)]
    assert selects(q) == 2
    assert rows(q.proj(twice="n * 2")) == [(3, 4)]


def test_aggr_of_aggregation(db: SimpleNamespace) -> None:
    per_session = db.Session.aggr(db.Trial, n="count(*)")
    q = db.Subject.aggr(per_session, trials="sum(n)", sessions="count(*)")
    assert [(r[0], float(r[1]) if r[1] is not None else None, r[2]) for r in rows(q)] == [
        (1, 4.0, 2), (2, 0.0, 1), (3, 2.0, 2), (4, None, 0)]


def test_aggr_errors(db: SimpleNamespace) -> None:
    with pytest.raises(QueryError, match="must aggregate"):
        db.Subject.aggr(db.Session, d="duration")
    with pytest.raises(UnknownAttributeError, match="colour"):
        db.Subject.aggr(db.Session, n="max(colour)")
    with pytest.raises(QueryError):
        db.Subject.aggr(db.Other, n="count(*)")
    with pytest.raises(QueryError, match="already exists"):
        db.Subject.aggr(db.Session, subject_id="count(*)")


# ---- union -----------------------------------------------------------------------------------
def test_union_of_keys(db: SimpleNamespace) -> None:
    q = (db.Subject & "subject_id < 2").proj() + (db.Subject & "subject_id > 3").proj()
    assert rows(q) == [(1,), (4,)]
    assert rows(db.Session.proj() + db.Session.proj()) == rows(db.Session.proj())


def test_union_with_secondary_attributes(db: SimpleNamespace) -> None:
    a = (db.Subject & "subject_id <= 2").proj("name")
    b = (db.Subject & "subject_id >= 2").proj("weight")
    q = a + b
    assert q.heading.names == ["subject_id", "name", "weight"]
    assert rows(q) == [(1, "ann", None), (2, "bob", None), (3, None, 31.0),
                       (4, None, 18.0)]
    shared = (db.Subject & "subject_id <= 2").proj("name") + (
        db.Subject & "subject_id >= 2").proj("name")
    assert rows(shared) == [(1, "ann"), (2, "bob"), (3, "cid"), (4, "dee")]


def test_union_then_other_operators(db: SimpleNamespace) -> None:
    q = (db.Subject & "subject_id = 1") + (db.Subject & "subject_id = 3")
    assert rows(q & "weight > 25") == [(3, "cid", 31.0)]
    assert len(q * db.Session) == 4
    assert rows(q.aggr(db.Session, n="count(*)")) == [(1, 2), (3, 2)]
    assert rows((q & dj.Top(1, "weight desc")).proj()) == [(3,)]


def test_union_errors(db: SimpleNamespace) -> None:
    with pytest.raises(QueryError, match="same primary key"):
        db.Subject + db.Session
    with pytest.raises(QueryError):
        db.Subject + 5


# ---- universal sets --------------------------------------------------------------------------
def test_u_restriction_gives_distinct_values(db: SimpleNamespace) -> None:
    q = dj.U("rig_id") & db.Session
    assert q.primary_key == ["rig_id"]
    assert rows(q) == [(None,), (1,), (2,)]
    q = dj.U("subject_id", "rig_id") & (db.Session & "rig_id IS NOT NULL")
    assert rows(q) == [(1, 1), (1, 2), (3, 1)]


def test_u_join_promotes_attributes_to_the_key(db: SimpleNamespace) -> None:
    q = dj.U("duration") * db.Session
    assert q.primary_key == ["subject_id", "session", "duration"]
    assert len(q) == 5
    assert (db.Session * dj.U("duration")).primary_key == q.primary_key
    with pytest.raises(UnknownAttributeError):
        dj.U("colour") * db.Session


def test_u_aggr_groups_by_anything(db: SimpleNamespace) -> None:
    q = dj.U("rig_id").aggr(db.Session, n="count(*)", total="sum(duration)")
    assert q.primary_key == ["rig_id"]
    assert rows(q) == [(None, 1, 3.0), (1, 3, 4.0), (2, 1, 2.5)]
    whole = dj.U().aggr(db.Session, n="count(*)", longest="max(duration)")
    assert whole.primary_key == []
    assert rows(whole) == [(5, 3.0)]
    assert rows(dj.U().aggr(db.Session & False, n="count(*)")) == [(0,)]


def test_restricting_by_a_whole_table_aggregate_over_no_rows(db: SimpleNamespace) -> None:
    """dj.U().aggr(...) has one row even over no rows, so it restricts nothing away (found
    by the differential test: the EXISTS dropped the aggregate and became empty)."""
    empty_count = dj.U().aggr(db.Session & False, n="count(*)")
    assert len(db.Subject & empty_count) == len(db.Subject)
    assert len(db.Subject - empty_count) == 0
    assert len(db.Subject & (empty_count & "n > 0")) == 0


def test_u_errors(db: SimpleNamespace) -> None:
    with pytest.raises(QueryError):
        dj.U("rig_id") - db.Session
    with pytest.raises(QueryError):
        dj.U("rig_id").aggr(db.Session, n="count(*)", exclude_nonmatching=False)
    with pytest.raises(UnknownAttributeError):
        dj.U("colour").aggr(db.Session, n="count(*)")
    assert len(db.Session & dj.U("rig_id")) == 5


# ---- Top inside compositions -----------------------------------------------------------------
def test_top_of_aggregation_and_join(db: SimpleNamespace) -> None:
    counts = db.Subject.aggr(db.Session, n="count(*)")
    best = counts & dj.Top(2, "n desc")
    assert rows(best) == [(1, 2), (3, 2)]
    assert rows((best * db.Session).proj()) == [(1, 1), (1, 2), (3, 1), (3, 2)]
    assert rows(db.Subject & best) == [(1, "ann", 20.0), (3, "cid", 31.0)]
    assert rows(db.Subject - best) == [(2, "bob", None), (4, "dee", 18.0)]


# ---- the subquery policy ---------------------------------------------------------------------
def test_subquery_policy(db: SimpleNamespace) -> None:
    """Derived tables only where SQL needs them (see the README: how a query compiles)."""
    flat = ((db.Subject & {"name": "ann"}) * (db.Session & "duration > 1")).proj(
        m="duration * 60") & "m > 10"
    assert selects(flat) == 1
    assert selects(db.Subject.proj(who="name") & {"who": "ann"}) == 1
    assert selects(db.Subject & db.Session) == 2  # EXISTS, inlined
    assert selects(db.Subject - (db.Session & "duration > 2")) == 2
    counts = db.Subject.aggr(db.Session, n="count(*)")
    assert selects(counts) == 1
    assert selects(counts & "n > 1") == 2  # restricting an aggregation
    assert selects(counts * db.Rig.proj()) == 2  # joining one
    assert selects(db.Session & dj.Top(2)) == 1
    assert selects((db.Session & dj.Top(2)) & "duration > 1") == 2  # restricting a top
    assert selects((db.Session & dj.Top(2)).proj("duration")) == 1
    assert selects(db.Session * db.Session.proj(other="session")) == 2  # a self-join
    assert selects(db.Subject.proj() + db.Subject.proj()) == 3  # a union: two branches


# ---- what a query offers ---------------------------------------------------------------------
def test_len_bool_contains_iter(db: SimpleNamespace) -> None:
    q = db.Subject * db.Session
    assert len(q) == 5
    assert bool(q) and not bool(q & False)
    assert {"subject_id": 1} in db.Subject and {"subject_id": 9} not in db.Subject
    assert "weight > 30" in db.Subject
    assert sorted(r["session"] for r in db.Session & {"subject_id": 1}) == [1, 2]
    assert len(db.Subject.aggr(db.Session, n="count(*)")) == 4
    assert len(dj.U("rig_id") & db.Session) == 3
    assert len(db.Session & dj.Top(2)) == 2
    assert len(db.Subject) == 4  # the class itself


def test_heading_and_primary_key(db: SimpleNamespace) -> None:
    q = (db.Session * db.Rig).proj("room", minutes="duration*60")
    assert q.primary_key == ["subject_id", "session"]
    assert q.heading["room"].type == "varchar(10)"
    assert not q.heading["minutes"].in_key and q.heading["minutes"].nullable
    n = db.Subject.aggr(db.Session, n="count(*)").heading["n"]
    assert n.type == "int64"


def test_make_sql_and_select(db: SimpleNamespace) -> None:
    q = (db.Session & {"subject_id": 1}).proj(minutes="duration * 60")
    sql = q.make_sql()
    assert "SELECT" in sql and "minutes" in sql
    select = q.to_select()
    assert list(select.selected_columns.keys()) == ["subject_id", "session", "minutes"]
    assert q.sql is not None and q.select is not None


def test_repr_and_html_preview(db: SimpleNamespace) -> None:
    text = repr(db.Subject * db.Session)
    assert "*subject_id" in text and "(5 tuples)" in text
    html = (db.Subject & "subject_id < 3")._repr_html_()
    assert "<table" in html and "Total: 2" in html and "ann" in html
    assert "(4 tuples)" in repr(db.Subject.aggr(db.Session, n="count(*)"))


def test_preview_is_limited(db: SimpleNamespace) -> None:
    with dj.config.override(**{"display.limit": 2}):
        text = repr(db.Session)
    assert "..." in text and "(5 tuples)" in text
    assert text.count("\n") == 4


def test_expressions_are_immutable(db: SimpleNamespace) -> None:
    base = db.Session & {"subject_id": 1}
    narrower = base & "session = 2"
    assert len(base) == 2 and len(narrower) == 1
    assert base.restrictions == ({"subject_id": 1},)


def test_operands_must_be_queries(db: SimpleNamespace) -> None:
    with pytest.raises(QueryError):
        db.Subject * 3
    with pytest.raises(QueryError):
        db.Subject.aggr("Session", n="count(*)")


# ---- tables stay tables ----------------------------------------------------------------------
def test_restricted_table_deletes_and_updates(make_schema: Callable[..., Any]) -> None:
    schema = make_schema()

    @schema
    class Item(dj.Manual):
        definition = """
        item : int16
        ---
        price : float64
        """

    Item.insert([(i, float(i)) for i in range(6)])
    doomed = Item & "price > 3" & dj.Top(1, "price desc")
    assert isinstance(doomed, Item)
    doomed.delete_quick()
    assert sorted(Item.fetch("item")) == [0, 1, 2, 3, 4]
    (Item & {"item": 0}).update1({"item": 0, "price": 9.5})
    assert (Item & {"item": 0}).fetch1("price") == 9.5
    assert len(Item - (Item & "price > 3").proj()) == 3


def test_fetch_after_top_keeps_the_top(db: SimpleNamespace) -> None:
    top = db.Session & dj.Top(3, "duration desc")
    durations = top.fetch("duration", order_by="duration")
    assert list(durations) == [2.0, 2.5, 3.0]
    assert [r["duration"] for r in top.fetch(as_dict=True, order_by="duration", limit=1)] == [
        2.0]


def test_unknown_attribute_message_names_it(db: SimpleNamespace) -> None:
    with pytest.raises(DataJointError, match="'colour'"):
        db.Subject & "colour > 1"
