"""insert / insert1 / update1: every row form, every option, atomicity, classified errors.

Every test runs on SQLite, PostgreSQL and MySQL through the `schema` fixture.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import datajoint_sa as dj
from datajoint_sa.errors import (
    DataJointError,
    DuplicateError,
    IntegrityError,
    MissingAttributeError,
    UnknownAttributeError,
)


def declare(schema: dj.Schema) -> SimpleNamespace:
    @schema
    class Subject(dj.Manual):
        definition = """
        subject_id : int32
        ---
        name : varchar(40)
        weight = null : float64
        dob = null : date
        age = 3 : int16
        tag = null : varchar(20)
        unique index (tag)
        """

    @schema
    class Session(dj.Manual):
        definition = """
        -> Subject
        session : int16
        ---
        note = "" : varchar(100)
        """

    @schema
    class Result(dj.Computed):
        definition = """
        -> Session
        ---
        value : float64
        """

        class Detail(dj.Part):
            definition = """
            -> master
            item : int16
            """

        def make(self, key: dict) -> None:  # pragma: no cover - populate is tested elsewhere
            pass

    return SimpleNamespace(Subject=Subject, Session=Session, Result=Result)


@pytest.fixture
def t(schema: dj.Schema) -> SimpleNamespace:
    return declare(schema)


def names(table: type) -> dict[int, str]:
    return dict(zip(*table.fetch("subject_id", "name")))


# ---------------------------------------------------------------------------- row forms

def test_insert_dicts(t: SimpleNamespace) -> None:
    t.Subject.insert([{"subject_id": 1, "name": "a"}, {"subject_id": 2, "name": "b"}])
    assert names(t.Subject) == {1: "a", 2: "b"}


def test_insert_dicts_with_differing_keys(t: SimpleNamespace) -> None:
    t.Subject.insert([{"subject_id": 1, "name": "a", "age": 7},
                      {"subject_id": 2, "name": "b", "weight": 2.5}])
    rows = {r["subject_id"]: r for r in t.Subject.to_dicts()}
    assert rows[1]["age"] == 7 and rows[1]["weight"] is None
    assert rows[2]["age"] == 3 and rows[2]["weight"] == 2.5


def test_insert_sequences_in_heading_order(t: SimpleNamespace) -> None:
    t.Subject.insert([(1, "a", 1.5, datetime.date(2020, 1, 2), 4, None),
                      [2, "b", None, None, 5, "x"]])
    row = (t.Subject & {"subject_id": 1}).fetch1()
    assert row == {"subject_id": 1, "name": "a", "weight": 1.5,
                   "dob": datetime.date(2020, 1, 2), "age": 4, "tag": None}


def test_insert_sequence_of_wrong_length_is_refused(t: SimpleNamespace) -> None:
    with pytest.raises(DataJointError, match="heading has 6 attributes"):
        t.Subject.insert([(1, "a")])
    assert len(t.Subject) == 0


def test_insert_structured_array(t: SimpleNamespace) -> None:
    records = np.array([(1, "a", 1.0), (2, "b", np.nan)],
                       dtype=[("subject_id", "<i8"), ("name", "U5"), ("weight", "<f4")])
    t.Subject.insert(records)
    weights = dict(zip(*t.Subject.fetch("subject_id", "weight")))
    assert weights[1] == 1.0 and np.isnan(weights[2])  # NaN is stored as NULL
    assert (t.Subject & {"subject_id": 2}).fetch1("weight") is None


def test_insert1_record(t: SimpleNamespace) -> None:
    records = np.array([(5, "e")], dtype=[("subject_id", "<i4"), ("name", "U5")])
    t.Subject.insert1(records[0])
    assert names(t.Subject) == {5: "e"}


def test_insert_dataframe(t: SimpleNamespace) -> None:
    frame = pd.DataFrame({"subject_id": [1, 2], "name": ["a", "b"], "weight": [1.0, None],
                          "dob": pd.to_datetime(["2020-01-01", "2021-06-30"])})
    t.Subject.insert(frame)
    assert (t.Subject & {"subject_id": 2}).fetch1("dob") == datetime.date(2021, 6, 30)
    # a frame indexed by the primary key (as fetch returns it) inserts back the same
    back = t.Subject.fetch(format="frame")
    t.Subject.delete_quick()
    t.Subject.insert(back)
    assert names(t.Subject) == {1: "a", 2: "b"}


def test_insert_dataframe_with_nullable_extension_types(t: SimpleNamespace) -> None:
    frame = pd.DataFrame({"subject_id": pd.array([1, 2], dtype="Int64"),
                          "name": pd.array(["a", "b"], dtype="string"),
                          "age": pd.array([4, None], dtype="Int16")})
    t.Subject.insert(frame)
    assert dict(zip(*t.Subject.fetch("subject_id", "age"))) == {1: 4, 2: 3}  # NA -> default


def test_insert_records_of_a_dataframe_with_missing_values(t: SimpleNamespace) -> None:
    """`DataFrame.to_dict("records")` holds pd.NA and pd.NaT: NULL (or the default), as
    the DataFrame itself is read."""
    frame = pd.DataFrame({"subject_id": [1, 2], "name": ["a", "b"],
                          "dob": pd.to_datetime(["2020-01-02", None]),
                          "weight": pd.array([1.5, None], dtype="Float64"),
                          "age": pd.array([4, None], dtype="Int16")})
    t.Subject.insert(frame.to_dict("records"))
    rows = {r["subject_id"]: r for r in t.Subject.to_dicts()}
    assert rows[2]["dob"] is None and rows[2]["weight"] is None and rows[2]["age"] == 3
    assert rows[1]["dob"] == datetime.date(2020, 1, 2) and rows[1]["weight"] == 1.5
    with pytest.raises(MissingAttributeError, match="subject_id"):
        t.Subject.insert1({"subject_id": pd.NA, "name": "c"})


def test_keys_that_differ_by_trailing_spaces_are_distinct(schema: dj.Schema) -> None:
    """MySQL's utf8mb4_bin pads with spaces: 'a' and 'a ' were one key there (a
    DuplicateError) and equal in a restriction; schemas now collate without padding."""
    @schema
    class Code(dj.Manual):
        definition = """
        code : varchar(8)
        """

    Code.insert([{"code": "a"}, {"code": "a "}, {"code": "A"}])
    assert sorted(Code.fetch("code")) == ["A", "a", "a "]
    assert (Code & {"code": "a "}).fetch1("code") == "a "
    assert len(Code & 'code = "a"') == 1


def test_insert_generator(t: SimpleNamespace) -> None:
    t.Subject.insert({"subject_id": i, "name": f"s{i}"} for i in range(50))
    assert len(t.Subject) == 50


def test_insert_numpy_scalars_in_dicts(t: SimpleNamespace) -> None:
    t.Subject.insert1({"subject_id": np.int64(3), "name": np.str_("c"),
                       "weight": np.float32(2.5), "age": np.int8(9)})
    assert (t.Subject & {"subject_id": 3}).fetch1("weight", "age") == (2.5, 9)


def test_insert_query_expression_server_side(t: SimpleNamespace, schema: dj.Schema) -> None:
    t.Subject.insert([{"subject_id": i, "name": f"s{i}"} for i in range(5)])

    @schema
    class Copy(dj.Manual):
        definition = """
        subject_id : int32
        ---
        name : varchar(40)
        """

    Copy.insert(t.Subject & {"subject_id": 1}, ignore_extra_fields=True)
    assert Copy.fetch("name").tolist() == ["s1"]
    Copy.insert(t.Subject.proj("name"), skip_duplicates=True)
    assert len(Copy) == 5
    with pytest.raises(DuplicateError):
        Copy.insert(t.Subject.proj("name"))
    with pytest.raises(UnknownAttributeError):
        Copy.insert(t.Subject)  # weight, dob, ... are not attributes of Copy
    t.Subject.update1({"subject_id": 2, "name": "renamed"})
    t.Subject.insert1({"subject_id": 9, "name": "new"})
    Copy.insert(t.Subject.proj("name"), replace=True)
    assert (Copy & {"subject_id": 2}).fetch1("name") == "renamed"
    assert (Copy & {"subject_id": 9}).fetch1("name") == "new"


def test_insert_table_class_as_source(t: SimpleNamespace, schema: dj.Schema) -> None:
    t.Subject.insert([{"subject_id": 1, "name": "a"}])

    @schema
    class Backup(dj.Manual):
        definition = """
        subject_id : int32
        ---
        name : varchar(40)
        weight = null : float64
        dob = null : date
        age = 3 : int16
        tag = null : varchar(20)
        """

    Backup.insert(t.Subject)
    assert Backup.fetch1("name") == "a"


def test_insert_empty_is_a_no_op(t: SimpleNamespace) -> None:
    t.Subject.insert([])
    t.Subject.insert(pd.DataFrame(columns=["subject_id", "name"]))
    assert len(t.Subject) == 0


def declare_everything(schema: dj.Schema) -> type:
    @schema
    class Everything(dj.Manual):
        definition = """
        id : uint16
        ---
        flag : bool
        small : int8
        big : int64
        ubig : uint32
        f32 : float32
        dec : decimal(8,3)
        txt : varchar(30)
        kind : enum('a','b')
        day : date
        moment : datetime(3)
        clock = null : time
        uid : uuid
        doc : json
        raw : bytes
        obj = null : <blob>
        """

    return Everything


def everything_row(i: int) -> dict:
    return dict(id=i, flag=i % 2 == 0, small=-128 + i % 200, big=2**62 + i, ubig=2**32 - 1 - i,
                f32=1.5 + i, dec=decimal.Decimal("12.345") + i, txt=f"h\u00e9llo '{i}' \"x\"",
                kind="ab"[i % 2], day=datetime.date(2024, 2, 29) + datetime.timedelta(days=i),
                moment=datetime.datetime(2024, 1, 2, 3, 4, 5, 123000)
                + datetime.timedelta(seconds=i),
                clock=datetime.time(12, 30), uid=uuid.UUID(int=i + 1), doc={"a": [1, i], "b": None},
                raw=bytes([0, 1, 255, i % 256]), obj=np.arange(6).reshape(2, 3) + i)


def assert_same(back: dict, row: dict) -> None:
    back = dict(back)
    assert np.array_equal(back.pop("obj"), row["obj"])
    assert back.pop("clock") in (datetime.time(12, 30),
                                 datetime.timedelta(hours=12, minutes=30))
    assert back == {k: v for k, v in row.items() if k not in ("obj", "clock")}


def test_insert_types_round_trip(schema: dj.Schema) -> None:
    everything = declare_everything(schema)
    row = everything_row(0)
    everything.insert1(row)
    assert_same(everything.fetch1(), row)


@pytest.mark.parametrize("mode", ["insert", "skip", "replace"])
def test_bulk_paths_round_trip_every_type(schema: dj.Schema, mode: str) -> None:
    """Enough rows for the bulk paths (COPY, its scratch table for skip and replace)."""
    everything = declare_everything(schema)
    rows = [everything_row(i) for i in range(500)]
    if mode != "insert":
        everything.insert(rows[:100])
    everything.insert(rows, skip_duplicates=mode == "skip", replace=mode == "replace")
    fetched = {r["id"]: r for r in everything.to_dicts()}
    assert len(fetched) == 500
    for i in (0, 99, 100, 499):
        assert_same(fetched[i], rows[i])


def test_insert_strings_for_numbers_and_dates(t: SimpleNamespace) -> None:
    t.Subject.insert1({"subject_id": "7", "name": "g", "weight": "2.5", "dob": "2024-03-01",
                       "age": 4.0})
    assert (t.Subject & {"subject_id": 7}).fetch1("weight", "dob", "age") == (
        2.5, datetime.date(2024, 3, 1), 4)


@pytest.mark.parametrize("value", ["abc", 1.5, "2.5", [1]])
def test_insert_wrong_type_is_refused_naming_the_attribute(t: SimpleNamespace, value: object
                                                           ) -> None:
    with pytest.raises(DataJointError, match="age"):
        t.Subject.insert1({"subject_id": 1, "name": "a", "age": value})
    assert len(t.Subject) == 0


def test_insert_bad_date_is_refused(t: SimpleNamespace) -> None:
    with pytest.raises(DataJointError, match="dob"):
        t.Subject.insert1({"subject_id": 1, "name": "a", "dob": "not a date"})


def test_hostile_strings_are_values(t: SimpleNamespace) -> None:
    hostile = "x'); DROP TABLE subject; -- %s %(name)s ? :name"
    t.Subject.insert1({"subject_id": 1, "name": hostile[:40]})
    assert (t.Subject & {"subject_id": 1}).fetch1("name") == hostile[:40]


# ---------------------------------------------------------------------------- options

def test_skip_duplicates_skips_only_existing_keys(t: SimpleNamespace) -> None:
    t.Subject.insert([{"subject_id": 1, "name": "a"}])
    t.Subject.insert([{"subject_id": 1, "name": "changed"}, {"subject_id": 2, "name": "b"},
                      {"subject_id": 2, "name": "again"}], skip_duplicates=True)
    assert names(t.Subject) == {1: "a", 2: "b"}


def test_skip_duplicates_still_raises_on_secondary_unique(t: SimpleNamespace) -> None:
    t.Subject.insert1({"subject_id": 1, "name": "a", "tag": "T"})
    with pytest.raises(DuplicateError):
        t.Subject.insert([{"subject_id": 2, "name": "b", "tag": "T"}], skip_duplicates=True)
    with pytest.raises(DuplicateError):  # the bulk path too
        t.Subject.insert([{"subject_id": 10 + i, "name": "b", "tag": "T" if i == 500 else None}
                          for i in range(1000)], skip_duplicates=True)
    assert names(t.Subject) == {1: "a"}


def test_skip_duplicates_bulk(t: SimpleNamespace) -> None:
    t.Subject.insert([{"subject_id": i, "name": "old"} for i in range(0, 3000, 2)])
    t.Subject.insert([{"subject_id": i, "name": "new"} for i in range(3000)],
                     skip_duplicates=True)
    result = names(t.Subject)
    assert len(result) == 3000
    assert all(result[i] == ("old" if i % 2 == 0 else "new") for i in range(3000))


def test_replace_is_an_upsert_on_the_primary_key(t: SimpleNamespace) -> None:
    t.Subject.insert([{"subject_id": 1, "name": "a", "weight": 1.0}])
    t.Subject.insert([{"subject_id": 1, "name": "A", "weight": 2.0},
                      {"subject_id": 2, "name": "b"}], replace=True)
    assert names(t.Subject) == {1: "A", 2: "b"}
    assert (t.Subject & {"subject_id": 1}).fetch1("weight") == 2.0


def test_replace_bulk_with_repeated_keys_keeps_the_last(t: SimpleNamespace) -> None:
    t.Subject.insert([{"subject_id": i, "name": "old"} for i in range(1000)])
    rows = [{"subject_id": i % 1500, "name": f"v{i}"} for i in range(3000)]
    t.Subject.insert(rows, replace=True)
    result = names(t.Subject)
    assert len(result) == 1500 and result[0] == "v1500" and result[1499] == "v2999"


def test_replace_still_raises_on_secondary_unique(t: SimpleNamespace) -> None:
    t.Subject.insert([{"subject_id": 1, "name": "a", "tag": "T"},
                      {"subject_id": 2, "name": "b", "tag": "U"}])
    with pytest.raises(DuplicateError):
        t.Subject.insert1({"subject_id": 2, "name": "b", "tag": "T"}, replace=True)
    # a new key whose tag is taken: raises, and the row holding the tag stays as it was
    with pytest.raises(DuplicateError):
        t.Subject.insert1({"subject_id": 3, "name": "c", "tag": "T"}, replace=True)
    with pytest.raises(DuplicateError):  # the bulk path
        t.Subject.insert([{"subject_id": 10 + i, "name": "c", "tag": "T" if i == 300 else None}
                          for i in range(1000)], replace=True)
    assert t.Subject.fetch("subject_id", "name", "tag", order_by="subject_id", as_dict=True) == [
        {"subject_id": 1, "name": "a", "tag": "T"}, {"subject_id": 2, "name": "b", "tag": "U"}]


def test_skip_and_replace_exclude_each_other(t: SimpleNamespace) -> None:
    with pytest.raises(DataJointError, match="exclude"):
        t.Subject.insert1({"subject_id": 1, "name": "a"}, skip_duplicates=True, replace=True)


def test_ignore_extra_fields(t: SimpleNamespace) -> None:
    with pytest.raises(UnknownAttributeError, match="color"):
        t.Subject.insert1({"subject_id": 1, "name": "a", "color": "red"})
    t.Subject.insert1({"subject_id": 1, "name": "a", "color": "red"}, ignore_extra_fields=True)
    frame = pd.DataFrame({"subject_id": [2], "name": ["b"], "color": ["blue"]})
    t.Subject.insert(frame, ignore_extra_fields=True)
    assert names(t.Subject) == {1: "a", 2: "b"}


def test_allow_direct_insert(t: SimpleNamespace) -> None:
    t.Subject.insert1({"subject_id": 1, "name": "a"})
    t.Session.insert1({"subject_id": 1, "session": 1})
    with pytest.raises(DataJointError, match="populate"):
        t.Result.insert1({"subject_id": 1, "session": 1, "value": 1.0})
    with pytest.raises(DataJointError, match="populate"):
        t.Result.Detail.insert1({"subject_id": 1, "session": 1, "item": 1})
    t.Result.insert1({"subject_id": 1, "session": 1, "value": 1.0}, allow_direct_insert=True)
    t.Result.Detail.insert1({"subject_id": 1, "session": 1, "item": 1},
                            allow_direct_insert=True)
    assert len(t.Result) == 1 and len(t.Result.Detail) == 1


def test_inserts_allowed_while_make_runs(t: SimpleNamespace) -> None:
    t.Subject.insert1({"subject_id": 1, "name": "a"})
    t.Session.insert1({"subject_id": 1, "session": 1})
    connection = t.Subject.connection
    connection._allowed_inserts = {t.Result().node_name}
    try:
        t.Result.insert1({"subject_id": 1, "session": 1, "value": 1.0})
        t.Result.Detail.insert1({"subject_id": 1, "session": 1, "item": 1})
    finally:
        connection._allowed_inserts = set()
    assert len(t.Result.Detail) == 1


def test_chunk_size_keeps_one_transaction(t: SimpleNamespace) -> None:
    rows = [{"subject_id": i, "name": "x"} for i in range(100)] + [{"subject_id": 5,
                                                                    "name": "dup"}]
    with pytest.raises(DuplicateError):
        t.Subject.insert(rows, chunk_size=10)
    assert len(t.Subject) == 0


# ---------------------------------------------------------------------------- atomicity

@pytest.mark.parametrize("where", [0, 55_555, 99_999])
def test_bad_row_anywhere_in_100k_leaves_nothing(t: SimpleNamespace, where: int) -> None:
    rows = [{"subject_id": i, "name": "x"} for i in range(100_000)]
    rows[where] = {"subject_id": 1 if where != 1 else 2, "name": "duplicate key"}
    with pytest.raises(DuplicateError):
        t.Subject.insert(rows)
    assert len(t.Subject) == 0


def test_bad_row_in_bulk_with_missing_parent_leaves_nothing(t: SimpleNamespace) -> None:
    t.Subject.insert([{"subject_id": i, "name": "x"} for i in range(10)])
    rows = [{"subject_id": i % 10, "session": i} for i in range(5000)]
    rows[4321] = {"subject_id": 99, "session": 1}
    with pytest.raises(IntegrityError):
        t.Session.insert(rows)
    assert len(t.Session) == 0


def test_failed_insert_inside_transaction_keeps_outer_work(t: SimpleNamespace) -> None:
    connection = t.Subject.connection
    with connection.transaction:
        t.Subject.insert1({"subject_id": 1, "name": "a"})
        with pytest.raises(DuplicateError):
            t.Subject.insert([{"subject_id": 2, "name": "b"}, {"subject_id": 1, "name": "c"}])
        t.Subject.insert1({"subject_id": 3, "name": "c"})
    assert names(t.Subject) == {1: "a", 3: "c"}


def test_outer_transaction_rollback_removes_inserts(t: SimpleNamespace) -> None:
    connection = t.Subject.connection
    with pytest.raises(RuntimeError), connection.transaction:
        t.Subject.insert([{"subject_id": i, "name": "x"} for i in range(1000)])
        raise RuntimeError("abort")
    assert len(t.Subject) == 0


# ---------------------------------------------------------------------------- errors

def test_duplicate_error_names_the_table(t: SimpleNamespace) -> None:
    t.Subject.insert1({"subject_id": 1, "name": "a"})
    with pytest.raises(DuplicateError, match="Subject") as info:
        t.Subject.insert1({"subject_id": 1, "name": "b"})
    assert info.value.__cause__ is not None  # the driver's error is chained


def test_missing_parent_is_an_integrity_error(t: SimpleNamespace) -> None:
    with pytest.raises(IntegrityError, match="subject_id") as info:
        t.Session.insert1({"subject_id": 42, "session": 1})
    assert "Session" in str(info.value) and info.value.__cause__ is not None


def test_missing_attribute_is_named(t: SimpleNamespace) -> None:
    with pytest.raises(MissingAttributeError, match="name"):
        t.Subject.insert1({"subject_id": 1})
    with pytest.raises(MissingAttributeError, match="name"):
        t.Subject.insert1({"subject_id": 1, "name": None})
    with pytest.raises(MissingAttributeError, match="name"):  # one row of many lacks it
        t.Subject.insert([{"subject_id": 1, "name": "a"}, {"subject_id": 2}])
    assert len(t.Subject) == 0


def test_none_takes_the_default_or_null(t: SimpleNamespace) -> None:
    t.Subject.insert1({"subject_id": 1, "name": "a", "age": None, "weight": None})
    assert (t.Subject & {"subject_id": 1}).fetch1("age", "weight") == (3, None)


def test_unknown_attribute_is_named(t: SimpleNamespace) -> None:
    with pytest.raises(UnknownAttributeError, match="colour"):
        t.Subject.insert([{"subject_id": 1, "name": "a", "colour": 1}])


def test_out_of_range_is_refused(t: SimpleNamespace) -> None:
    with pytest.raises(DataJointError):
        t.Subject.insert1({"subject_id": 1, "name": "a", "age": 2**20})
    assert len(t.Subject) == 0


def test_single_row_must_go_through_insert1(t: SimpleNamespace) -> None:
    with pytest.raises(DataJointError, match="insert1"):
        t.Subject.insert({"subject_id": 1, "name": "a"})


# ---------------------------------------------------------------------------- update1

def test_update1(t: SimpleNamespace) -> None:
    t.Subject.insert1({"subject_id": 1, "name": "a", "weight": 1.0})
    t.Subject.update1({"subject_id": 1, "weight": 2.0, "dob": "2020-05-05"})
    assert (t.Subject & {"subject_id": 1}).fetch1("name", "weight", "dob") == (
        "a", 2.0, datetime.date(2020, 5, 5))
    t.Subject.update1({"subject_id": 1, "weight": None})
    assert (t.Subject & {"subject_id": 1}).fetch1("weight") is None
    t.Subject.update1({"subject_id": 1, "weight": 2.0})  # the same value again is fine
    t.Subject.update1({"subject_id": 1, "weight": 2.0})


def test_update1_errors(t: SimpleNamespace) -> None:
    t.Subject.insert1({"subject_id": 1, "name": "a"})
    with pytest.raises(DataJointError, match="no row"):
        t.Subject.update1({"subject_id": 2, "name": "b"})
    with pytest.raises(DataJointError, match="primary key"):
        t.Subject.update1({"name": "b"})
    with pytest.raises(UnknownAttributeError):
        t.Subject.update1({"subject_id": 1, "colour": "b"})
    with pytest.raises(MissingAttributeError, match="name"):
        t.Subject.update1({"subject_id": 1, "name": None})
    assert (t.Subject & {"subject_id": 1}).fetch1("name") == "a"


def test_auto_increment_key_may_be_left_out(schema: dj.Schema) -> None:
    @schema
    class Note(dj.Manual):
        definition = """
        note_id : int32 auto_increment
        ---
        text : varchar(20)
        """

    Note.insert([{"text": "a"}, {"text": "b"}, {"note_id": None, "text": "c"}])
    Note.insert1({"note_id": 10, "text": "d"})
    Note.insert([{"text": f"bulk{i}"} for i in range(500)])
    ids = Note.fetch("note_id", order_by="note_id")
    assert len(ids) == 504 and len(set(ids.tolist())) == 504
    assert ids[:3].tolist() == [1, 2, 3] and 10 in ids.tolist()


def test_rows_of_defaults_only_get_auto_increment_keys(schema: dj.Schema) -> None:
    @schema
    class Counter(dj.Manual):
        definition = """
        counter_id : int32 auto_increment
        ---
        species = "mouse" : varchar(32)
        """

    Counter.insert1({})
    Counter.insert([{}, {}])
    assert sorted(Counter.fetch("counter_id").tolist()) == [1, 2, 3]
    assert set(Counter.fetch("species").tolist()) == {"mouse"}
