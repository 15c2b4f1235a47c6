"""The fidelity matrix on every backend: a value round-trips exactly or is refused clearly.

The cases live in tests/fidelity_matrix.py, which also renders docs/types.md.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import datajoint_sa as dj

from .fidelity_matrix import MATRIX, SAME, Refused, attribute_name, render

ROOT = Path(__file__).resolve().parents[1]


def _same(got: Any, expected: Any) -> bool:
    """Equal and of the same type; floats also of the same sign (-0.0 == 0.0 in Python),
    inside JSON documents too."""
    if isinstance(expected, float) and isinstance(got, float):
        if expected != expected:
            return got != got
        return got == expected and math.copysign(1.0, got) == math.copysign(1.0, expected)
    if isinstance(expected, dict) and isinstance(got, dict):
        return got.keys() == expected.keys() and all(_same(got[k], v)
                                                    for k, v in expected.items())
    if isinstance(expected, list) and isinstance(got, list):
        return len(got) == len(expected) and all(map(_same, got, expected))
    return type(got) is type(expected) and got == expected


def test_every_type_and_edge_value(schema: dj.Schema, backend: str) -> None:
    """One table with a nullable column per declared type; one insert per case."""
    columns = "\n".join(f"{attribute_name(t)} = null : {t}" for t in MATRIX)

    @schema
    class Matrix(dj.Manual):
        definition = f"""
        id : int32
        ---
        {columns}
        """

    expected: dict[int, tuple[str, str, Any]] = {}
    problems: list[str] = []
    row = 0
    for declared, cases in MATRIX.items():
        name = attribute_name(declared)
        for case in cases:
            row += 1
            outcome = case.outcome(backend)
            try:
                Matrix.insert1({"id": row, name: case.value})
            except dj.DataJointError as error:
                message = str(error)
                if not isinstance(outcome, Refused):
                    problems.append(f"{declared} {case.label}: refused: {message}")
                elif not (outcome.why.lower() in message.lower() and name in message):
                    problems.append(f"{declared} {case.label}: message lacks "
                                    f"{outcome.why!r} or {name!r}: {message}")
                continue
            if isinstance(outcome, Refused):
                problems.append(f"{declared} {case.label}: stored, expected a refusal")
            else:
                expected[row] = (declared, case.label,
                                 case.value if outcome is SAME else outcome)
    assert len(Matrix()) == len(expected)
    for record in Matrix.fetch(as_dict=True):
        if record["id"] not in expected:
            continue
        declared, label, value = expected[record["id"]]
        got = record[attribute_name(declared)]
        if not _same(got, value):
            problems.append(f"{declared} {label}: stored {value!r}, fetched {got!r}")
    assert not problems, "\n".join(problems)


def test_refused_value_changes_nothing(schema: dj.Schema) -> None:
    """A refused value in a batch leaves no row behind."""
    @schema
    class Few(dj.Manual):
        definition = """
        id : int32
        ---
        t : time
        """

    import datetime as dt
    with pytest.raises(dj.DataJointError, match="t .time. cannot hold"):
        Few.insert([{"id": 1, "t": dt.time(1)}, {"id": 2, "t": dt.timedelta(hours=30)}])
    assert len(Few()) == 0


def test_float32_is_the_same_double_everywhere(schema: dj.Schema) -> None:
    @schema
    class Single(dj.Manual):
        definition = """
        id : int32
        ---
        x : float32
        y = null : float
        """

    Single.insert1({"id": 1, "x": 1.2345678, "y": 0.1})
    assert Single.fetch1("x") == 1.2345677614212036
    x, y = Single.fetch("x", "y")
    assert x.dtype.name == "float32" and y.dtype.name == "float64"  # classic `float`
    assert y[0] == 0.10000000149011612
    # the value is found by the number the user gave, too
    assert len(Single & {"x": 1.2345677614212036}) == 1


def test_positive_zeros_changes_only_negative_zeros() -> None:
    """The column is handed on as it came (the insert then sends the caller's rows) unless
    it holds a -0.0; NULLs and every other value stay."""
    from datajoint_sa.values import positive_zeros

    for column in ([1.5, -2.0], [0.0, 1.0, 0.0], [0.0, None, -3.0]):
        present = [v for v in column if v is not None]
        assert positive_zeros(column, present) is column
    column = [None, -0.0, 2.5, 0.0, -1.0, None, -0.0]
    fixed = positive_zeros(column, [v for v in column if v is not None])
    assert fixed == column and [math.copysign(1, v) for v in fixed if v is not None] == [
        1, 1, 1, -1, 1]
    assert fixed[0] is None and fixed[5] is None and math.copysign(1, column[1]) == -1


def test_docs_type_table_is_current() -> None:
    page = ROOT / "docs" / "types.md"
    assert page.read_text() == render(), (
        "docs/types.md is stale: run `python -m tests.fidelity_matrix > docs/types.md`")


# ----------------------------------------------------------------------------- definitions

BAD_DEFINITIONS = [
    ("x : decimal(5,10)", "scale"),
    ("x : decimal(0,0)", "precision"),
    ("x : decimal(66,2)", "precision"),
    ("x : decimal(40,31)", "scale"),
    ("x : datetime(7)", "6 digits"),
    ("x : time(9)", "6 digits"),
    ("x : timestamp(12)", "6 digits"),
    ("x : varchar(0)", "length"),
    ("x : varchar(-1)", "Unknown attribute type"),
    ("x : char(0)", "length"),
    ("x : char(256)", "length"),
    ("x : varchar(70000)", "length"),
    ("x : enum()", "at least one"),
    ("x : enum('a','b','a')", "repeats"),
    ("x = 'abcdef' : varchar(3)", "longer"),
    ("x = 'not a date' : date", "valid date"),
    ("x = '2024-13-01' : datetime", "valid datetime"),
]
BAD_KEYS = ["k : longblob", "k : <blob>", "k : json", "k : text", "k : bytes", "k : blob"]


@pytest.mark.parametrize("line,why", BAD_DEFINITIONS, ids=[d[0] for d in BAD_DEFINITIONS])
def test_bad_definitions_are_refused_before_ddl(schema: dj.Schema, line: str, why: str
                                                ) -> None:
    class Bad(dj.Manual):
        definition = f"""
        id : int32
        ---
        {line}
        """

    with pytest.raises(dj.errors.DefinitionError, match="line 4") as raised:
        schema(Bad)
    assert why.lower() in str(raised.value).lower()
    assert line.split(":")[0].split("=")[0].strip() in str(raised.value)
    assert "bad" not in schema.list_tables()


@pytest.mark.parametrize("line", BAD_KEYS)
def test_unkeyable_types_are_refused_in_the_primary_key(schema: dj.Schema, line: str) -> None:
    class BadKey(dj.Manual):
        definition = f"""
        {line}
        ---
        v : int32
        """

    with pytest.raises(dj.errors.DefinitionError, match="line 2.*cannot be of type"):
        schema(BadKey)

    class BadIndex(dj.Manual):
        definition = f"""
        id : int32
        ---
        {line.replace("k :", "k = null :")}
        index(k)
        """

    with pytest.raises(dj.errors.DefinitionError, match="line 5.*cannot index k"):
        schema(BadIndex)
    assert schema.list_tables() == []


# ----------------------------------------------------------------------------- classic types

def test_classic_types(schema: dj.Schema) -> None:
    """year; bool into integer columns; NULL floats as NaN in numeric arrays."""
    @schema
    class Classic(dj.Manual):
        definition = """
        id : int16
        ---
        born : year
        flag : tinyint
        big : bigint
        x = null : float
        y = null : float64
        n = null : int32
        """

    Classic.insert([{"id": True, "born": 1999, "flag": True, "big": False, "x": None},
                    {"id": 2, "born": 2024, "flag": 0, "big": 5, "x": 1.5, "y": float("nan"),
                     "n": 3}])
    assert Classic.fetch("flag", "big", order_by="id") is not None
    rows = Classic.fetch(order_by="id")
    assert rows.dtype["x"].name == "float64" and rows.dtype["y"].name == "float64"
    assert np.isnan(rows["x"][0]) and np.isnan(rows["y"][0]) and np.isnan(rows["y"][1])
    assert rows["x"][1] == 1.5 and rows["id"].tolist() == [1, 2]
    assert rows["flag"].tolist() == [1, 0] and rows["big"].tolist() == [0, 5]
    assert rows["born"].tolist() == [1999, 2024]
    x = (Classic & {"id": 1}).fetch("x")
    assert x.dtype.name == "float64" and np.isnan(x[0])
    assert Classic.heading["born"].type == "year"
    with pytest.raises(dj.DataJointError, match="born"):
        Classic.insert1({"id": 3, "born": 1800, "flag": 1, "big": 1})
