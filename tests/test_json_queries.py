"""Queries into json attributes, differential against pandas on every backend.

One table holds a fixed random set of documents (missing keys, nested objects, arrays,
numbers, strings, booleans and nulls, a key with a space); restrictions (fragments and
dicts), projections, order_by, dj.Top and aggregates over paths are computed by the backend
and, independently, by pandas over the same Python documents, following docs/json.md:
a path yields the JSON values of the kind it is compared with (numbers with numbers,
strings with strings, booleans as truth values), anything else (a missing path, null,
another type) is NULL, and SQL's three-valued logic applies (`T - cond` keeps the rows where
`cond` is false, not those where it is NULL).
"""

from __future__ import annotations

import math
import operator
import random
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import datajoint_sa as dj
from datajoint_sa.errors import DataJointError, QueryError, UnknownAttributeError

pytestmark = pytest.mark.filterwarnings("error::sqlalchemy.exc.SAWarning")

MISSING = object()
WORDS = ["a", "b", "ab", "B", "abc", "z", "hello world"]


def _scalar(rng: random.Random) -> Any:
    return rng.choice([
        lambda: rng.randint(-3, 5),
        lambda: round(rng.uniform(-2, 2), 3),
        lambda: rng.choice(WORDS),
        lambda: rng.choice([True, False]),
        lambda: None,
    ])()


def _document(rng: random.Random) -> dict[str, Any] | None:
    if rng.random() < 0.05:
        return None
    doc: dict[str, Any] = {}
    if rng.random() < 0.85:
        doc["contrast"] = rng.choice([round(rng.uniform(0, 1), 2), 0.5, rng.randint(0, 2),
                                      rng.choice(["high", "low"]), True, None])
    if rng.random() < 0.8:
        doc["name"] = rng.choice([*WORDS, 7, None])
    if rng.random() < 0.7:
        doc["flag"] = rng.choice([True, False, True, 1, None, "yes"])
    if rng.random() < 0.7:
        doc["list"] = [_scalar(rng) for _ in range(rng.randint(0, 3))]
    if rng.random() < 0.7:
        nested: dict[str, Any] = {}
        if rng.random() < 0.8:
            nested["depth"] = rng.choice([rng.randint(0, 4), round(rng.uniform(0, 4), 1), "deep"])
        if rng.random() < 0.7:
            nested["tag"] = rng.choice(WORDS)
        if rng.random() < 0.3:
            nested["inner"] = {"x": rng.randint(0, 2)}
        doc["nested"] = nested if rng.random() < 0.9 else [1, 2]
    if rng.random() < 0.3:
        doc["my key"] = rng.randint(0, 3)
    return doc


DOCUMENTS = [_document(random.Random(1000 + i)) for i in range(70)]


@pytest.fixture(scope="module")
def db(module_schema: dj.Schema) -> SimpleNamespace:
    @module_schema
    class Trial(dj.Manual):
        definition = """
        trial : int32
        ---
        params = null : json     # stimulus parameters
        label = "" : varchar(16)
        """

    Trial.insert([{"trial": i, "params": doc, "label": f"t{i % 3}"}
                  for i, doc in enumerate(DOCUMENTS)])
    frame = pd.DataFrame({"trial": range(len(DOCUMENTS)), "params": DOCUMENTS,
                          "label": [f"t{i % 3}" for i in range(len(DOCUMENTS))]})
    return SimpleNamespace(Trial=Trial, frame=frame)


# ---- the pandas model -------------------------------------------------------------------------
def at(doc: Any, *path: str | int) -> Any:
    """The value at a path, MISSING where there is none."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(doc, list) or step >= len(doc):
                return MISSING
        elif not isinstance(doc, dict) or step not in doc:
            return MISSING
        doc = doc[step]
    return doc


def number(doc: Any, *path: str | int) -> float | None:
    v = at(doc, *path)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def text(doc: Any, *path: str | int) -> str | None:
    v = at(doc, *path)
    return v if isinstance(v, str) else None


def boolean(doc: Any, *path: str | int) -> bool | None:
    v = at(doc, *path)
    return v if isinstance(v, bool) else None


def value(doc: Any, *path: str | int) -> Any:
    v = at(doc, *path)
    return None if v is MISSING else v


def compare(op: Callable[[Any, Any], bool], left: Any, right: Any) -> bool | None:
    return None if left is None or right is None else op(left, right)


def rows_where(frame: pd.DataFrame, predicate: Callable[[Any], bool | None],
               negate: bool = False) -> list[int]:
    """Trials whose document makes the predicate true (false when negated); NULL neither."""
    truth = frame["params"].map(predicate)
    wanted = truth.map(lambda t: t is (not negate) or (t is not None and bool(t) != negate))
    return sorted(frame.loc[wanted.astype(bool), "trial"].tolist())


def _and(*values: bool | None) -> bool | None:
    if any(v is False for v in values):
        return False
    return None if any(v is None for v in values) else True


def _not(v: bool | None) -> bool | None:
    return None if v is None else not v


def _between(v: float | None, low: float, high: float) -> bool | None:
    return None if v is None else low <= v <= high


def _like_a(v: str | None) -> bool | None:  # LIKE is case-insensitive on every backend
    return None if v is None else v.lower().startswith("a")


RESTRICTIONS: list[tuple[Any, Callable[[Any], bool | None]]] = [
    ("params.contrast > 0.5", lambda d: compare(operator.gt, number(d, "contrast"), 0.5)),
    ("params.contrast = 0.5", lambda d: compare(operator.eq, number(d, "contrast"), 0.5)),
    ("params.contrast <= 1", lambda d: compare(operator.le, number(d, "contrast"), 1)),
    ("params.contrast = 'high'", lambda d: compare(operator.eq, text(d, "contrast"), "high")),
    ("params.name = 'ab'", lambda d: compare(operator.eq, text(d, "name"), "ab")),
    ("params.name < 'b'", lambda d: compare(operator.lt, text(d, "name"), "b")),
    ("params.name <> 'a'", lambda d: compare(operator.ne, text(d, "name"), "a")),
    ("params.name = 7", lambda d: compare(operator.eq, number(d, "name"), 7)),
    ("params.flag", lambda d: boolean(d, "flag")),
    ("not params.flag", lambda d: _not(boolean(d, "flag"))),
    ("params.flag = false", lambda d: compare(operator.eq, boolean(d, "flag"), False)),
    ("params.flag and params.contrast > 0.2",
     lambda d: _and(boolean(d, "flag"), compare(operator.gt, number(d, "contrast"), 0.2))),
    ("params.contrast IS NULL", lambda d: value(d, "contrast") is None),
    ("params.contrast IS NOT NULL", lambda d: value(d, "contrast") is not None),
    ("params.list[0] >= 2", lambda d: compare(operator.ge, number(d, "list", 0), 2)),
    ("params.list[1] = 'b'", lambda d: compare(operator.eq, text(d, "list", 1), "b")),
    ("params.list[1] = 5", lambda d: compare(operator.eq, number(d, "list", 1), 5)),
    ("params.nested.depth between 1 and 3", lambda d: _between(number(d, "nested", "depth"), 1, 3)),
    ("params.nested.tag like 'a%'", lambda d: _like_a(text(d, "nested", "tag"))),
    ("params.nested.inner.x = 1", lambda d: compare(operator.eq, number(d, "nested", "inner", "x"), 1)),
    ("params.`my key` > 1", lambda d: compare(operator.gt, number(d, "my key"), 1)),
    ("params.contrast * 2 > 1", lambda d: compare(operator.gt, number(d, "contrast"), 0.5)),
    ("params.contrast in (0.5, 1)",
     lambda d: None if number(d, "contrast") is None else number(d, "contrast") in (0.5, 1)),
    ("params.name in ('a', 'B')",
     lambda d: None if text(d, "name") is None else text(d, "name") in ("a", "B")),
    ("cast(params.name as char) = 'z'", lambda d: compare(operator.eq, text(d, "name"), "z")),
    ("params IS NULL", lambda d: d is None),
    ({"params.contrast": 0.5}, lambda d: compare(operator.eq, number(d, "contrast"), 0.5)),
    ({"params.contrast": 1}, lambda d: compare(operator.eq, number(d, "contrast"), 1)),
    ({"params.name": "ab"}, lambda d: compare(operator.eq, text(d, "name"), "ab")),
    ({"params.flag": True}, lambda d: compare(operator.eq, boolean(d, "flag"), True)),
    ({"params.contrast": None}, lambda d: value(d, "contrast") is None),
    ({"params.list[1]": "b"}, lambda d: compare(operator.eq, text(d, "list", 1), "b")),
    ({"params.list[1]": False}, lambda d: compare(operator.eq, boolean(d, "list", 1), False)),
    ({"params.nested.depth": "deep", "params.nested.tag": "a"},
     lambda d: _and(compare(operator.eq, text(d, "nested", "depth"), "deep"),
                    compare(operator.eq, text(d, "nested", "tag"), "a"))),
]


@pytest.mark.parametrize("condition,predicate", RESTRICTIONS,
                         ids=[str(c) for c, _ in RESTRICTIONS])
def test_restrict_matches_pandas(db: SimpleNamespace, condition: Any,
                                 predicate: Callable[[Any], bool | None]) -> None:
    Trial = db.Trial
    expected = rows_where(db.frame, predicate)
    assert sorted((Trial & condition).fetch("trial").tolist()) == expected
    assert sorted((Trial - condition).fetch("trial").tolist()) == \
        rows_where(db.frame, predicate, negate=True)


def test_or_of_dicts_and_mixed_dict(db: SimpleNamespace) -> None:
    Trial = db.Trial
    got = (Trial & [{"params.name": "a"}, {"params.name": "B"}]).fetch("trial").tolist()
    assert sorted(got) == rows_where(db.frame, lambda d: text(d, "name") in ("a", "B"))
    mixed = Trial & {"label": "t1", "params.flag": True}
    assert sorted(mixed.fetch("trial").tolist()) == sorted(
        db.frame.loc[(db.frame["label"] == "t1")
                     & db.frame["params"].map(lambda d: boolean(d, "flag") is True),
                     "trial"].tolist())


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(op=st.sampled_from(["<", "<=", "=", "<>", ">", ">="]),
       threshold=st.sampled_from([-1, 0, 0.25, 0.5, 1, 1.5, 3]),
       path=st.sampled_from([("contrast",), ("list", 0), ("nested", "depth"), ("name",)]))
def test_numeric_comparisons_match_pandas(db: SimpleNamespace, op: str, threshold: float,
                                          path: tuple[str | int, ...]) -> None:
    ops = {"<": operator.lt, "<=": operator.le, "=": operator.eq, "<>": operator.ne,
           ">": operator.gt, ">=": operator.ge}
    written = "params" + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in path)
    got = (db.Trial & f"{written} {op} {threshold}").fetch("trial").tolist()
    assert sorted(got) == rows_where(
        db.frame, lambda d: compare(ops[op], number(d, *path), threshold))


PROJECTIONS = {
    "params.contrast": ("contrast",),
    "params.list": ("list",),
    "params.list[1]": ("list", 1),
    "params.nested": ("nested",),
    "params.nested.inner.x": ("nested", "inner", "x"),
    "params.flag": ("flag",),
    "params.`my key`": ("my key",),
}


@pytest.mark.parametrize("written", list(PROJECTIONS))
def test_proj_returns_the_json_value(db: SimpleNamespace, written: str) -> None:
    rows = db.Trial.proj(v=written).fetch(as_dict=True, order_by="trial")
    assert db.Trial.proj(v=written).heading["v"].type == "json"
    expected = [value(d, *PROJECTIONS[written]) for d in db.frame["params"]]
    assert [r["v"] for r in rows] == expected


def test_proj_computes_with_paths(db: SimpleNamespace) -> None:
    rows = db.Trial.proj(c="params.contrast * 10", n="upper(params.name)").fetch(
        as_dict=True, order_by="trial")
    for row, doc in zip(rows, db.frame["params"]):
        c = number(doc, "contrast")
        assert (row["c"] is None) == (c is None)
        if c is not None:
            assert math.isclose(row["c"], c * 10)
        name = text(doc, "name")
        assert row["n"] == (None if name is None else name.upper())


def test_restrict_a_projected_path(db: SimpleNamespace) -> None:
    got = (db.Trial.proj(c="params.contrast") & "c > 0.5").fetch("trial").tolist()
    assert sorted(got) == rows_where(db.frame, lambda d: compare(operator.gt,
                                                                  number(d, "contrast"), 0.5))


def sort_key(doc: Any, path: tuple[str | int, ...]) -> tuple[int, float, str]:
    """Numbers (numerically) after strings after anything else (docs/json.md)."""
    n, s = number(doc, *path), text(doc, *path)
    return (2, n, "") if n is not None else (1, 0.0, s) if s is not None else (0, 0.0, "")


@pytest.mark.parametrize("order", ["params.contrast", "params.contrast desc", "params.name",
                                   "params.name DESC", "params.list[0]"])
def test_order_by_path(db: SimpleNamespace, order: str) -> None:
    written, _, direction = order.partition(" ")
    path = tuple(int(p) if p.isdigit() else p
                 for p in written.removeprefix("params.").replace("[", ".").rstrip("]")
                 .replace("]", "").split("."))
    descending = direction.lower() == "desc"
    # ties are broken by the primary key, ascending also under desc (a stable sort)
    expected = sorted(zip(db.frame["params"], db.frame["trial"]),
                      key=lambda pair: sort_key(pair[0], path), reverse=descending)
    assert db.Trial.fetch("trial", order_by=order).tolist() == [t for _, t in expected]
    top = db.Trial & dj.Top(5, order)
    assert top.fetch("trial", order_by=order).tolist() == [t for _, t in expected][:5]


def test_aggregates_over_paths(db: SimpleNamespace) -> None:
    result = dj.U("label").aggr(db.Trial, top="max(params.contrast)",
                                n="count(params.name)", total="sum(params.list[0])"
                                ).fetch(as_dict=True, order_by="label")
    frame = db.frame
    for row in result:
        docs = frame.loc[frame["label"] == row["label"], "params"]
        contrasts = [c for c in (number(d, "contrast") for d in docs) if c is not None]
        assert row["top"] == (max(contrasts) if contrasts else None)
        assert row["n"] == sum(value(d, "name") is not None for d in docs)
        firsts = [f for f in (number(d, "list", 0) for d in docs) if f is not None]
        assert math.isclose(row["total"] or 0, sum(firsts))


# ---- refusals ---------------------------------------------------------------------------------
@pytest.mark.parametrize("condition,error,named", [
    ("label.x = 1", QueryError, "label"),
    ("trial.x > 0", QueryError, "trial"),
    ("nothing.x = 1", UnknownAttributeError, "nothing"),
    ({"label.x": 1}, QueryError, "label"),
    ({"nothing.x": 1}, UnknownAttributeError, "nothing"),
    ({"params.contrast": [1, 2]}, QueryError, "params.contrast"),
    ({"params.x'; drop table t; --": 1}, QueryError, "params"),
    ({"params.$x": 1}, QueryError, "params"),
    ("params.`a'b` = 1", QueryError, "a'b"),
    ("params.`$.x` = 1", QueryError, "$.x"),
    ("params.`x\" || 1` = 1", QueryError, "x\""),
    ("params.list['0'] = 1", QueryError, "params"),
    ("params.list[-1] = 1", QueryError, "subscript"),
    ("label[0] = 'a'", QueryError, "subscript"),
    ("params.contrast = 1; drop table x", QueryError, ";"),
])
def test_bad_paths_are_refused(db: SimpleNamespace, condition: Any, error: type,
                               named: str) -> None:
    before = len(db.Trial)
    with pytest.raises(error) as info:
        db.Trial & condition
    assert isinstance(info.value, DataJointError)
    assert named in str(info.value)
    assert len(db.Trial) == before


@pytest.mark.parametrize("order", ["params.`x'y`", "label.x", "params.list[-1]"])
def test_bad_order_by_paths_are_refused(db: SimpleNamespace, order: str) -> None:
    with pytest.raises(DataJointError):
        db.Trial.fetch("trial", order_by=order)


def test_path_in_proj_into_a_non_json_attribute(db: SimpleNamespace) -> None:
    with pytest.raises(QueryError, match="label"):
        db.Trial.proj(x="label.first")
