"""Differential test of the query algebra against pandas, on every backend.

Hypothesis draws random data for a small pipeline and a random query of up to five nested
operators (restriction by dict, string, negated string, semijoin and antijoin; join;
projection with renames and computed attributes; aggregation with and without
non-matching rows; union; dj.U restriction, promotion and aggregation; dj.Top). The same
query is computed independently with pandas, and both must return exactly the same rows.

The pandas model follows the documented semantics: SQL's three-valued logic (a NULL never
matches and a negated condition on NULL is not true), NULLs sort first ascending and last
descending with the primary key breaking ties, and count(*) is 0 for a row with no match.
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass, field
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import datajoint_sa as dj
from datajoint_sa.errors import QueryError

pytestmark = pytest.mark.filterwarnings("error::sqlalchemy.exc.SAWarning")

MAX_EXAMPLES = int(os.environ.get("DJ_DIFFERENTIAL_EXAMPLES", "100"))
MAX_OPERATORS = 5
SMALL = st.integers(0, 3)


# ---- the pipeline ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def db(module_schema: dj.Schema) -> SimpleNamespace:
    schema = module_schema
    connection = schema.connection

    @schema
    class A(dj.Manual):
        definition = """
        a : int16
        ---
        x = null : int16
        s : varchar(8)
        """

    @schema
    class B(dj.Manual):
        definition = """
        -> A
        b : int16
        ---
        y : int16
        z = null : int16
        """

    @schema
    class C(dj.Manual):
        definition = """
        c : int16
        ---
        w : int16
        """

    @schema
    class D(dj.Manual):
        definition = """
        -> B
        d : int16
        ---
        -> [nullable] C
        v : int16
        """

    return SimpleNamespace(backend=connection.backend, connection=connection,
                          tables={"A": A, "B": B, "C": C, "D": D})


NULLABLE = {"x", "z", "c"}
STRINGS = ["p", "q", "pq", "r"]


@st.composite
def datasets(draw: Any) -> dict[str, list[dict[str, Any]]]:
    maybe = st.one_of(st.none(), SMALL)
    a_keys = draw(st.lists(st.integers(0, 5), max_size=5, unique=True))
    A = [dict(a=k, x=draw(maybe), s=draw(st.sampled_from(STRINGS))) for k in a_keys]
    B = [dict(a=k, b=b, y=draw(SMALL), z=draw(maybe))
         for k in a_keys for b in draw(st.lists(st.integers(0, 3), max_size=3, unique=True))]
    C = [dict(c=k, w=draw(SMALL)) for k in draw(st.lists(SMALL, max_size=4, unique=True))]
    c_keys = [row["c"] for row in C]
    D = [dict(a=r["a"], b=r["b"], d=d, c=draw(st.one_of(st.none(), st.sampled_from(c_keys)))
              if c_keys else None, v=draw(SMALL))
         for r in B for d in draw(st.lists(st.integers(0, 2), max_size=2, unique=True))]
    return {"A": A, "B": B, "C": C, "D": D}


def load(db: SimpleNamespace, data: dict[str, list[dict[str, Any]]]) -> None:
    tables = db.tables
    with db.connection.transaction:
        for name in ("D", "B", "A", "C"):
            tables[name]().delete_quick()
        for name in ("A", "B", "C", "D"):
            if data[name]:
                tables[name].insert(data[name])


# ---- the model -------------------------------------------------------------------------------
@dataclass
class Model:
    """A query's expected result: rows in pandas, its primary key and nullable attributes."""

    frame: pd.DataFrame
    key: list[str]
    nullable: set[str] = field(default_factory=set)

    @property
    def names(self) -> list[str]:
        return list(self.frame.columns)

    @property
    def secondary(self) -> list[str]:
        return [n for n in self.names if n not in self.key]


KEYS = {"A": ["a"], "B": ["a", "b"], "C": ["c"], "D": ["a", "b", "d"]}
COLUMNS = {"A": ["a", "x", "s"], "B": ["a", "b", "y", "z"], "C": ["c", "w"],
           "D": ["a", "b", "d", "c", "v"]}


def base_model(name: str, data: dict[str, list[dict[str, Any]]]) -> Model:
    columns = COLUMNS[name]
    frame = pd.DataFrame(data[name], columns=columns)
    for column in columns:
        frame[column] = frame[column].astype("string" if column == "s" else "Int64")
    return Model(frame, list(KEYS[name]), {c for c in columns if c in NULLABLE})


def typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns as pandas' nullable Int64 / string types, so NULL stays NULL in comparisons."""
    frame = frame.copy()
    for column in frame.columns:
        values = frame[column].dropna()
        is_text = len(values) and all(isinstance(v, str) for v in values)
        frame[column] = frame[column].astype("string" if is_text or (
            not len(values) and frame[column].dtype == "string") else "Int64")
    return frame.reset_index(drop=True)


def truth(series: Any) -> pd.Series:
    """Three-valued -> kept rows (NULL is not true)."""
    return pd.Series(series, dtype="boolean").fillna(False).astype(bool)


def evaluate(frame: pd.DataFrame, condition: tuple[Any, ...]) -> pd.Series:
    """A drawn condition as a nullable boolean Series (SQL semantics)."""
    attr, op, value = condition
    column = frame[attr]
    if op == "IS NULL":
        return column.isna().astype("boolean")
    if op == "IN":
        result = column.isin(value).astype("boolean")
        return result.mask(column.isna(), pd.NA)
    compare = {"<": column.__lt__, ">": column.__gt__, "=": column.__eq__,
               "<>": column.__ne__, ">=": column.__ge__}[op]
    return pd.Series(compare(value), dtype="boolean")


def render(condition: tuple[Any, ...]) -> str:
    attr, op, value = condition
    if op == "IS NULL":
        return f"{attr} IS NULL"
    if op == "IN":
        return f"{attr} IN ({', '.join(map(sql_literal, value))})"
    return f"{attr} {op} {sql_literal(value)}"


def sql_literal(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


def match(left: pd.DataFrame, right: pd.DataFrame, common: list[str]) -> pd.Series:
    """For each left row: whether some right row equals it on `common` (NULLs never match)."""
    if not common:
        return pd.Series([len(right) > 0] * len(left), index=left.index, dtype=bool)
    keys = right[common].dropna().drop_duplicates()
    flagged = left[common].reset_index().merge(keys.assign(_hit=True), on=common, how="left")
    hits = flagged.set_index("index")["_hit"].reindex(left.index)
    return hits.fillna(False).astype(bool) & left[common].notna().all(axis=1)


def inner_join(left: pd.DataFrame, right: pd.DataFrame, common: list[str]) -> pd.DataFrame:
    if not common:
        return left.merge(right, how="cross")
    return left.dropna(subset=common).merge(right.dropna(subset=common), on=common,
                                            how="inner")


def join_key(a: Model, b: Model) -> list[str]:
    if all(k in a.names for k in b.key):
        return a.key
    if all(k in b.names for k in a.key):
        return b.key
    return a.key + [k for k in b.key if k not in a.key]


# ---- drawing queries -------------------------------------------------------------------------
class Builder:
    """Draws a random query and its pandas model side by side."""

    def __init__(self, draw: Any, db: SimpleNamespace, data: dict[str, Any]) -> None:
        self.draw, self.db, self.data = draw, db, data
        self.fresh = itertools.count()
        self.log: list[str] = []

    def base(self) -> tuple[Any, Model]:
        name = self.draw(st.sampled_from(sorted(self.db.tables)))
        self.log.append(name)
        return self.db.tables[name](), base_model(name, self.data)

    def query(self, budget: int) -> tuple[Any, Model]:
        expr, model = self.base()
        operators = self.draw(st.integers(0, budget))
        for _ in range(operators):
            expr, model = self.step(expr, model, budget)
        return expr, model

    def value(self, model: Model, attr: str) -> Any:
        present = [v for v in model.frame[attr].dropna().tolist()]
        choices = st.sampled_from(STRINGS) if attr in ("s",) or model.frame[attr].dtype == \
            "string" else SMALL
        if present:
            choices = st.one_of(st.sampled_from(present), choices)
        return self.draw(choices)

    def condition(self, model: Model) -> tuple[Any, ...]:
        attr = self.draw(st.sampled_from(model.names))
        op = self.draw(st.sampled_from(["<", ">", "=", "<>", ">=", "IS NULL", "IN"]))
        if op == "IS NULL":
            return (attr, op, None)
        if op == "IN":
            return (attr, op, self.draw(st.lists(st.just(None), min_size=1, max_size=3).map(
                lambda items: [self.value(model, attr) for _ in items])))
        return (attr, op, self.value(model, attr))

    def step(self, expr: Any, model: Model, budget: int) -> tuple[Any, Model]:
        kind = self.draw(st.sampled_from([
            "dict", "string", "negated", "or_list", "not_and", "key_list", "semijoin",
            "antijoin", "join", "proj", "aggr", "union", "top", "u_restrict", "u_aggr",
            "u_promote"]))
        method = getattr(self, f"op_{kind}")
        result = method(expr, model, max(budget - 1, 0))
        if result is None:  # not applicable here: restrict by a string instead
            result = self.op_string(expr, model, 0)
        expr, model = result
        return expr, Model(typed(model.frame), model.key, model.nullable)

    # -- restrictions
    def op_dict(self, expr: Any, model: Model, budget: int) -> tuple[Any, Model]:
        attrs = self.draw(st.lists(st.sampled_from(model.names), min_size=1, max_size=2,
                                   unique=True))
        key = {a: self.value(model, a) for a in attrs}
        self.log.append(f"& {key}")
        mask = pd.Series(True, index=model.frame.index)
        for attr, value in key.items():
            mask &= truth(model.frame[attr] == value)
        return expr & key, Model(model.frame[mask], model.key, model.nullable)

    def op_string(self, expr: Any, model: Model, budget: int) -> tuple[Any, Model]:
        condition = self.condition(model)
        self.log.append(f"& {render(condition)!r}")
        mask = truth(evaluate(model.frame, condition))
        return expr & render(condition), Model(model.frame[mask], model.key, model.nullable)

    def op_negated(self, expr: Any, model: Model, budget: int) -> tuple[Any, Model]:
        condition = self.condition(model)
        self.log.append(f"- {render(condition)!r}")
        result = evaluate(model.frame, condition)
        mask = truth(~result)
        return expr - render(condition), Model(model.frame[mask], model.key, model.nullable)

    def op_or_list(self, expr: Any, model: Model, budget: int) -> tuple[Any, Model]:
        c1, c2 = self.condition(model), self.condition(model)
        self.log.append(f"& [{render(c1)!r}, {render(c2)!r}]")
        mask = truth(evaluate(model.frame, c1) | evaluate(model.frame, c2))
        return expr & [render(c1), render(c2)], Model(model.frame[mask], model.key,
                                                      model.nullable)

    def op_not_and(self, expr: Any, model: Model, budget: int) -> tuple[Any, Model]:
        c1, c2 = self.condition(model), self.condition(model)
        self.log.append(f"- AndList([{render(c1)!r}, {render(c2)!r}])")
        mask = truth(~(evaluate(model.frame, c1) & evaluate(model.frame, c2)))
        return expr - dj.AndList([render(c1), render(c2)]), Model(model.frame[mask], model.key,
                                                                  model.nullable)

    def op_key_list(self, expr: Any, model: Model, budget: int) -> tuple[Any, Model]:
        attrs = self.draw(st.lists(st.sampled_from(model.names), min_size=1, max_size=2,
                                   unique=True))
        count = self.draw(st.integers(1, 4))
        keys = [{a: self.value(model, a) for a in attrs} for _ in range(count)]
        negate = self.draw(st.booleans())
        self.log.append(f"{'-' if negate else '&'} {keys}")
        hit = pd.Series(False, index=model.frame.index, dtype="boolean")
        for key in keys:  # SQL's three-valued logic: pandas' nullable booleans are Kleene's
            one = pd.Series(True, index=model.frame.index, dtype="boolean")
            for attr, value in key.items():
                one &= pd.Series(model.frame[attr] == value, dtype="boolean")
            hit |= one
        mask = truth(~hit if negate else hit)
        return (expr - keys if negate else expr & keys), Model(model.frame[mask], model.key,
                                                               model.nullable)

    def op_semijoin(self, expr: Any, model: Model, budget: int, negate: bool = False
                    ) -> tuple[Any, Model] | None:
        self.log.append("- (" if negate else "& (")
        other, other_model = self.query(min(budget, 2))
        self.log.append(")")
        try:
            result = expr - other if negate else expr & other
        except QueryError:
            return None
        common = [n for n in model.names if n in other_model.names]
        hit = match(model.frame, other_model.frame, common)
        mask = ~hit if negate else hit
        return result, Model(model.frame[mask], model.key, model.nullable)

    def op_antijoin(self, expr: Any, model: Model, budget: int) -> tuple[Any, Model] | None:
        return self.op_semijoin(expr, model, budget, negate=True)

    # -- join and projection
    def op_join(self, expr: Any, model: Model, budget: int) -> tuple[Any, Model] | None:
        self.log.append("* (")
        other, other_model = self.query(min(budget, 2))
        self.log.append(")")
        try:
            result = expr * other
        except QueryError:
            return None
        common = [n for n in model.names if n in other_model.names]
        if not common and len(model.frame) * len(other_model.frame) > 400:
            return None
        frame = inner_join(model.frame, other_model.frame, common)
        frame = frame[model.names + [n for n in other_model.names if n not in model.names]]
        return result, Model(frame, join_key(model, other_model),
                             model.nullable | other_model.nullable)

    def op_proj(self, expr: Any, model: Model, budget: int) -> tuple[Any, Model] | None:
        keep = self.draw(st.lists(st.sampled_from(model.secondary), unique=True)) \
            if model.secondary else []
        named: dict[str, str] = {}
        frame = model.frame[model.key + keep].copy()
        key = list(model.key)
        nullable = {n for n in model.nullable if n in keep or n in key}
        if self.draw(st.booleans()):  # rename
            old = self.draw(st.sampled_from(model.names))
            new = f"r{next(self.fresh)}"
            named[new] = old
            frame[new] = model.frame[old]
            if old in key:
                key[key.index(old)] = new
                frame = frame.drop(columns=[old])
            if old in model.nullable:
                nullable.add(new)
        numeric = [n for n in model.names if model.frame[n].dtype != "string"]
        if numeric and self.draw(st.booleans()):  # compute
            source = self.draw(st.sampled_from(numeric))
            new = f"k{next(self.fresh)}"
            if self.draw(st.booleans()):
                named[new] = f"{source} * 2 + 1"
                frame[new] = model.frame[source] * 2 + 1
            else:
                named[new] = f"ifnull({source}, -1)"
                frame[new] = model.frame[source].fillna(-1)
            if named[new].startswith(source + " "):
                if source in model.nullable:
                    nullable.add(new)
        self.log.append(f".proj({keep}, {named})")
        if not key and not keep and not named:
            return None  # nothing would be left
        return expr.proj(*keep, **named), Model(frame, key, nullable)

    # -- aggregation
    def op_aggr(self, expr: Any, model: Model, budget: int) -> tuple[Any, Model] | None:
        if not model.key:
            return None
        name = self.draw(st.sampled_from(["B", "D", "C"]))
        other, other_model = self.db.tables[name](), base_model(name, self.data)
        if self.draw(st.booleans()):
            condition = self.condition(other_model)
            other = other & render(condition)
            other_model = Model(other_model.frame[truth(evaluate(other_model.frame,
                                                                 condition))],
                                other_model.key, other_model.nullable)
        values = [n for n in other_model.secondary if other_model.frame[n].dtype != "string"]
        attr = self.draw(st.sampled_from(values)) if values else other_model.key[-1]
        exclude = self.draw(st.booleans())
        i = next(self.fresh)
        n, m, t = f"n{i}", f"m{i}", f"t{i}"
        self.log.append(f".aggr({name}, {n}=count(*), {m}=max({attr}), {t}=sum({attr}), "
                        f"exclude_nonmatching={exclude})")
        try:
            result = expr.aggr(other, exclude_nonmatching=exclude, **{
                n: "count(*)", m: f"max({attr})", t: f"sum({attr})"})
        except QueryError:
            return None
        common = [n for n in model.names if n in other_model.names]
        left = model.frame.reset_index(drop=True)
        left = left.assign(_row=range(len(left)))
        right = other_model.frame.rename(columns={attr: "_value"}) if attr not in common \
            else other_model.frame.assign(_value=other_model.frame[attr])
        matched = inner_join(left, right, common)
        grouped = matched.groupby("_row").agg(**{
            n: ("_value", "size"), m: ("_value", "max"),
            t: ("_value", lambda s: s.sum(min_count=1))})
        frame = left[model.key].join(grouped, on=left["_row"], how="inner" if exclude
                                     else "left") if len(grouped) else (
            left[model.key].assign(**{n: 0, m: pd.NA, t: pd.NA}).iloc[
                0:0 if exclude else None])
        frame = frame.reset_index(drop=True)
        frame[n] = frame[n].fillna(0)
        return result, Model(frame[[*model.key, n, m, t]], model.key, {m, t})

    # -- union
    def op_union(self, expr: Any, model: Model, budget: int) -> tuple[Any, Model] | None:
        if not model.key or any(k in model.nullable for k in model.key):
            return None
        c1, c2 = self.condition(model), self.condition(model)
        keep1 = self.draw(st.lists(st.sampled_from(model.secondary), unique=True)) \
            if model.secondary else []
        keep2 = self.draw(st.lists(st.sampled_from(model.secondary), unique=True)) \
            if model.secondary else []
        self.log.append(f"(& {render(c1)!r}).proj({keep1}) + (& {render(c2)!r}).proj({keep2})")
        left = (expr & render(c1)).proj(*keep1)
        right = (expr & render(c2)).proj(*keep2)
        f1 = model.frame[truth(evaluate(model.frame, c1))][model.key + keep1]
        f2 = model.frame[truth(evaluate(model.frame, c2))][model.key + keep2]
        extra = [n for n in keep2 if n not in keep1]
        if model.key:
            first = f1.merge(f2[model.key + extra], on=model.key, how="left")
        elif len(f2):  # an empty key: every row has the same key
            first = f1.merge(f2[extra], how="cross")
        else:
            first = f1.assign(**{n: pd.NA for n in extra})
        rest = f2[~match(f2, f1, model.key)]
        frame = pd.concat([first, rest], ignore_index=True)[model.key + keep1 + extra]
        nullable = (model.nullable | set(keep1) | set(keep2)) - set(model.key)
        return left + right, Model(frame, model.key, nullable)

    # -- top
    def op_top(self, expr: Any, model: Model, budget: int) -> tuple[Any, Model]:
        attr = self.draw(st.sampled_from(model.names))
        descending = self.draw(st.booleans())
        limit = self.draw(st.integers(0, 4))
        offset = self.draw(st.integers(0, 2))
        order = f"{attr} desc" if descending else attr
        self.log.append(f"& Top({limit}, {order!r}, {offset})")
        frame = model.frame.assign(_null=model.frame[attr].isna())
        by = ["_null", attr, *(k for k in model.key if k != attr)]
        ascending = [descending, not descending, *(True for k in model.key if k != attr)]
        frame = frame.sort_values(by=by, ascending=ascending, na_position="last", kind="stable")
        frame = frame.iloc[offset:offset + limit].drop(columns=["_null"])
        return expr & dj.Top(limit, order, offset), Model(frame, model.key, model.nullable)

    # -- universal sets
    def op_u_restrict(self, expr: Any, model: Model, budget: int) -> tuple[Any, Model]:
        attrs = self.draw(st.lists(st.sampled_from(model.names), min_size=1, max_size=2,
                                   unique=True))
        self.log.append(f"U{tuple(attrs)} & ...")
        frame = model.frame[attrs].drop_duplicates()
        return dj.U(*attrs) & expr, Model(frame, attrs, model.nullable & set(attrs))

    def op_u_aggr(self, expr: Any, model: Model, budget: int) -> tuple[Any, Model]:
        attrs = self.draw(st.lists(st.sampled_from(model.names), max_size=2, unique=True))
        n = f"n{next(self.fresh)}"
        self.log.append(f"U{tuple(attrs)}.aggr(..., {n}=count(*))")
        if attrs:
            frame = model.frame.groupby(attrs, dropna=False).size().reset_index(name=n)
        else:
            frame = pd.DataFrame({n: [len(model.frame)]})
        return dj.U(*attrs).aggr(expr, **{n: "count(*)"}), Model(frame, attrs,
                                                                 model.nullable & set(attrs))

    def op_u_promote(self, expr: Any, model: Model, budget: int) -> tuple[Any, Model] | None:
        if not model.secondary:
            return None
        attr = self.draw(st.sampled_from(model.secondary))
        self.log.append(f"U({attr!r}) * ...")
        return dj.U(attr) * expr, Model(model.frame, model.key + [attr], model.nullable)


# ---- comparing -------------------------------------------------------------------------------
def normal(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, (Decimal, float)):
        return int(value) if float(value).is_integer() else float(value)
    if hasattr(value, "item"):
        return normal(value.item())
    if isinstance(value, bool):
        return int(value)
    return value


def canonical(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return sorted(rows, key=lambda row: tuple((v is not None, str(type(v)), v) for v in row))


@settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, print_blob=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=datasets(), choices=st.data())
def test_random_queries_match_pandas(db: SimpleNamespace, data: dict[str, Any],
                                     choices: st.DataObject) -> None:
    load(db, data)
    builder = Builder(choices.draw, db, data)
    expr, model = builder.query(MAX_OPERATORS)
    story = " ".join(builder.log)
    names = expr.heading.names
    assert sorted(names) == sorted(model.names), story
    assert sorted(expr.primary_key) == sorted(model.key), story
    got = canonical([tuple(normal(row[n]) for n in names) for row in expr.fetch(as_dict=True)])
    frame = model.frame[names].astype(object)
    expected = canonical([tuple(normal(v) for v in row)
                          for row in frame.itertuples(index=False, name=None)])
    assert got == expected, f"{story}\n{expr.make_sql()}"
    assert len(expr) == len(expected), story
    if expr.primary_key and got:
        key = [names.index(k) for k in expr.primary_key]
        assert len({tuple(row[i] for i in key) for row in got}) == len(got), story
