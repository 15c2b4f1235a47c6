"""Page filters: controls (dropdown, radio, slider, date range, free text) whose values
restrict the other components of a page, and the choices each control offers.

A filter's value travels in the URL as `q.<filter>=<text>`. It becomes a restriction only
through the typed paths of `query.py`: the text is coerced to the attribute's type
(`query.coerce`) and compared through a typed `sa.column`, its value bound, never pasted
into SQL. A filter's choices (a dropdown's values, a slider's range) come from its own
query, restricted by the filters it `depends_on`.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from ..expression import QueryExpression, U
from ..heading import Attribute
from .auth import user_bound
from .bind import BoundApp, BoundComponent
from .query import RequestError, bounded, coerce, filter_condition, jsonable, key_text

#: the most choices a dropdown or radio offers
MAX_CHOICES = 500
PREFIX = "q."
_RANGE = re.compile(r"^\s*([^.]*?)\s*\.\.\s*([^.]*?)\s*$")


def page_filters(app: BoundApp, component: BoundComponent) -> dict[str, BoundComponent]:
    """The filters restricting `component`, by name."""
    found = {}
    for name in component.page_filters:
        bound = app.component(component.page.name, name)
        if bound is not None:
            found[name] = bound
    return found


def value_of(bound: BoundComponent, params: Mapping[str, str]) -> str:
    """The filter's value in the request (its `default:` when the request has none)."""
    name = PREFIX + bound.spec.name
    if name in params:
        return params[name]
    default = bound.spec.get("default")
    return "" if default is None else str(default)


def condition(bound: BoundComponent, text: str) -> Any:
    """The restriction of one filter's value."""
    attribute = bound.attribute
    assert attribute is not None
    control = bound.spec.get("control")
    bounded(f"the filter {bound.spec.name!r}", text)
    if control == "text":
        return filter_condition(attribute, text)
    column = _column(attribute)
    if control == "daterange":
        return _date_range(attribute, column, text)
    value = coerce(attribute, text)
    op = bound.spec.get("op") or "="
    if control == "slider" and op != "=":
        return {"<=": column <= value, ">=": column >= value, "<": column < value,
                ">": column > value}[op]
    return {attribute.name: value}


def _column(attribute: Attribute) -> Any:
    return sa.column(attribute.name, attribute.type_info.sa_type) if attribute.type \
        else sa.column(attribute.name)


def _date_range(attribute: Attribute, column: Any, text: str) -> Any:
    """`start..end` (either may be empty), both days included."""
    match = _RANGE.match(text)
    if not match:
        raise RequestError(f"{attribute.name!r}: a date range is written start..end "
                           f"(YYYY-MM-DD), not {text!r}")
    low_text, high_text = match.group(1), match.group(2)
    parts = []
    whole_days = attribute.type_info.category in ("datetime", "timestamp")
    if low_text:
        parts.append(column >= _day(attribute, low_text, whole_days))
    if high_text:
        high = _day(attribute, high_text, whole_days)
        if whole_days and len(high_text) <= 10:  # a day: all of it
            parts.append(column < high + datetime.timedelta(days=1))
        else:
            parts.append(column <= high)
    return sa.and_(*parts) if parts else sa.true()


def _day(attribute: Attribute, text: str, whole_days: bool) -> Any:
    try:
        day = datetime.date.fromisoformat(text) if len(text) <= 10 else None
    except ValueError:
        raise RequestError(f"{attribute.name!r}: {text!r} is not a date (YYYY-MM-DD)"
                           ) from None
    if day is None:
        return coerce(attribute, text)
    return datetime.datetime.combine(day, datetime.time()) if whole_days else day


def restrict(expr: QueryExpression, filters: Mapping[str, BoundComponent],
             params: Mapping[str, str]) -> QueryExpression:
    """`expr` restricted by the value of every filter in `filters` that has one."""
    for bound in filters.values():
        text = value_of(bound, params)
        if text.strip():
            expr = expr & condition(bound, text)
    return expr


def choices(app: BoundApp, bound: BoundComponent, params: Mapping[str, str]
            ) -> dict[str, Any]:
    """What a filter control offers, given the values of the filters it depends on:
    `options` for a dropdown or radio, `min`/`max`/`step` for a slider, `min`/`max` days
    for a date range."""
    spec = bound.spec
    control = spec.get("control")
    result: dict[str, Any] = {"control": control, "value": value_of(bound, params)}
    attribute = bound.attribute
    assert attribute is not None
    expr = user_bound(bound.query)  # a database login reads with its own account
    if expr is not None:
        expr = restrict(expr, page_filters(app, bound), params)
    if control in ("dropdown", "radio"):
        static = spec.get("options")
        if static:
            result["options"] = [str(v) for v in static]
        elif expr is not None:  # the distinct values, in order, in the database
            values = (U(attribute.name) & expr).fetch(
                attribute.name, order_by=attribute.name, limit=MAX_CHOICES + 1)
            shown = [key_text(v) for v in values if v is not None]
            result["options"] = shown[:MAX_CHOICES]
            result["truncated"] = len(shown) > MAX_CHOICES
    elif control in ("slider", "daterange"):
        low, high = spec.get("min"), spec.get("max")
        if expr is not None and (low is None or high is None):  # one aggregate query
            name = attribute.name
            found = U().aggr(expr, low=f"min({name})", high=f"max({name})").fetch1()
            low = found["low"] if low is None else low
            high = found["high"] if high is None else high
        result.update(min=jsonable(low), max=jsonable(high))
        if control == "slider":
            result["step"] = spec.get("step") or (1 if attribute.type_info.is_integer else
                                                  "any")
            result["op"] = spec.get("op") or "="
    return result
