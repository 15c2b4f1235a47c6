"""The values a declared type holds exactly, checked before anything is sent.

A value either round-trips unchanged on every backend (or comes back as the one value every
backend returns for it: a float32's single-precision double, 0.0 for -0.0) or is refused here
with a DataJointError naming the attribute and the value: the servers would otherwise round,
truncate, wrap, pad or convert it, each in its own way (MySQL drops microseconds, PostgreSQL
wraps a 25-hour `time`, SQLite stores anything). Checks run per column and look at the set of
Python types first, so a clean column costs a few C-level passes, not per-value Python work.

What a backend cannot store at all (SQLite's 64-bit signed integers and double-precision
decimals) comes from its `Backend` traits, so the limits live with the backend.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import uuid
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from itertools import filterfalse, repeat
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import DataJointError

if TYPE_CHECKING:
    from .backends import Backend
    from .heading import Attribute

INTEGER_CATEGORIES = {"int8", "uint8", "int16", "uint16", "int24", "uint24", "int32", "uint32",
                      "int64", "uint64", "year"}
TEXT_CATEGORIES = {"varchar", "char", "text", "enum"}
FLOAT_CATEGORIES = {"float32", "float64"}
_FLOAT32_MAX = float(np.finfo(np.float32).max)
#: the type names of pandas' missing values (`pd.NA`, `pd.NaT`): NULL, as NaN and None are
_PANDAS_MISSING = frozenset({"NAType", "NaTType"})
_BYTES = (bytes, bytearray, memoryview)


def refused(attr: Attribute, value: Any, where: str, why: str) -> DataJointError:
    return DataJointError(f"{where}: attribute {attr.name} ({attr.type}) cannot hold "
                          f"{value!r}: {why}")


def check_column(attr: Attribute, values: list[Any], where: str, backend: Backend, *,
                 drop_excess_fractions: bool = False, kinds: set[type] | None = None
                 ) -> list[Any]:
    """`values` (Python values after the insert's coercions; None is NULL) as the column
    stores them exactly, or a DataJointError for the first one it cannot hold.
    `drop_excess_fractions` truncates datetimes and times to the column's precision and
    rounds decimals to the column's scale first (the classic tables' habit, as their MySQL
    server stored such values; see Schema.drops_excess_fractions). `kinds`, the set of
    the values' Python types where the caller has it already, saves a pass over them."""
    if attr.codec is not None or not values:
        return values
    info = attr.type_info
    category = info.category
    kinds = set(map(type, values)) if kinds is None else set(kinds)
    nulls = type(None) in kinds
    kinds.discard(type(None))
    if not kinds:
        return values
    if drop_excess_fractions and category in ("datetime", "timestamp", "time"):
        values = _truncated(attr, values)
    elif drop_excess_fractions and category == "decimal":
        values = _rounded(attr, values)
    check = _CHECKS.get("int" if category in INTEGER_CATEGORIES else
                        "string" if category in TEXT_CATEGORIES else category)
    if check is None:
        return values
    # the non-NULL values, without a pass over the column when it has no NULL
    present = [v for v in values if v is not None] if nulls else values
    return check(attr, values, present, kinds, where, backend)


# --------------------------------------------------------------- conversions by kind

#: the Python types a family's drivers take as they are; any other is converted by `coerce`
NATIVE: dict[str, set[type]] = {
    "int": {int, bool}, "float": {int, float, bool}, "decimal": {int, float, Decimal},
    "bool": {bool}, "date": {datetime.date}, "time": {datetime.time, datetime.timedelta},
    "datetime": {datetime.datetime},
}


def family_of(category: str) -> str | None:
    """The family of a type category whose values `coerce` converts, or None."""
    if category in INTEGER_CATEGORIES:
        return "int"
    if category in FLOAT_CATEGORIES:
        return "float"
    if category == "timestamp":
        return "datetime"
    return category if category in NATIVE else None


def is_pandas_missing(kind: type) -> bool:
    """Whether values of this type are pandas' missing values (rows from
    `DataFrame.to_dict()` hold them), which mean NULL."""
    return kind.__name__ in _PANDAS_MISSING and kind.__module__.startswith("pandas")


def time_of_day(attr: Attribute, value: datetime.timedelta, where: str) -> datetime.time:
    """A duration given for a time attribute as the time of day it names, or refused."""
    if not datetime.timedelta(0) <= value < datetime.timedelta(days=1):
        raise refused(attr, value, where, "a time of day is between 00:00 and 24:00; "
                      "store durations as a number (e.g. float64 seconds)")
    return (datetime.datetime.min + value).time()


def _invalid(attr: Attribute, value: Any, where: str) -> DataJointError:
    return DataJointError(f"{where}: invalid value {value!r} for attribute {attr.name} "
                          f"({attr.type})")


def coerce(attr: Attribute, family: str, value: Any, where: str) -> Any:
    """One value of a type the driver would not take as is for this attribute: converted
    where the meaning is unambiguous (numeric strings, whole floats, ISO dates), else refused."""
    try:
        if family == "int":
            if isinstance(value, float) and value.is_integer():
                return int(value)
            if isinstance(value, (str, Decimal)):
                number = Decimal(str(value).strip())
                if number == number.to_integral_value():
                    return int(number)
        elif family == "float":
            if isinstance(value, (str, Decimal)):
                return float(value)
        elif family == "decimal":
            if isinstance(value, str):
                return Decimal(value.strip())
        elif family == "bool":
            if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
                return value.strip().lower() in ("true", "1")
            if isinstance(value, (int, float)) and value in (0, 1):
                return bool(value)
        elif family == "date":
            if isinstance(value, datetime.datetime):
                if value.time() == datetime.time() and value.tzinfo is None:
                    return value.date()  # a date given as midnight, e.g. a pandas Timestamp
                raise DataJointError(f"{where}: attribute {attr.name} ({attr.type}) cannot "
                                     f"hold {value!r}: a date has no time of day")
            if isinstance(value, str):
                text = value.strip()
                try:
                    return datetime.date.fromisoformat(text)
                except ValueError:
                    return datetime.datetime.fromisoformat(text).date()
        elif family == "datetime":
            if isinstance(value, datetime.datetime):  # a subclass such as pandas.Timestamp
                to_python = getattr(value, "to_pydatetime", None)
                return to_python() if to_python else datetime.datetime.fromisoformat(
                    value.isoformat())
            if isinstance(value, datetime.date):
                return datetime.datetime.combine(value, datetime.time())
            if isinstance(value, str):
                return datetime.datetime.fromisoformat(value.strip())
        elif family == "time":
            if isinstance(value, str):
                return datetime.time.fromisoformat(value.strip())
    except (ValueError, InvalidOperation, ArithmeticError, OverflowError):
        pass
    raise _invalid(attr, value, where)


# ----------------------------------------------------------------------------- numbers

def _integers(attr: Attribute, values: list[Any], present: list[Any], kinds: set[type],
              where: str, backend: Backend) -> list[Any]:
    if bool in kinds:  # every backend then binds an integer (PostgreSQL refuses a bool)
        values = [int(v) if type(v) is bool else v for v in values]
    low, high = attr.type_info.value_range or (None, None)
    stored = backend.max_integer if high is None else min(high, backend.max_integer)
    if bool in kinds:
        present = [v for v in values if v is not None]
    if present and (max(present) > stored or (low is not None and min(present) < low)):
        bad = next(v for v in present if v > stored or (low is not None and v < low))
        if high is not None and bad > stored and stored < high:
            why = f"{backend.name} stores integers up to {stored}"
        else:
            why = f"outside the range {low}..{high} of {attr.type}"
        raise refused(attr, bad, where, why)
    return values


def _floats(attr: Attribute, values: list[Any], present: list[Any], kinds: set[type],
            where: str, backend: Backend) -> list[Any]:
    single = attr.type_info.category == "float32"
    if kinds - {float}:  # ints and bools: exactly representable ones only
        converted = []
        for v in values:
            if v is not None and type(v) is not float:
                try:
                    number = float(v)
                except OverflowError:
                    raise refused(attr, v, where, "too large for a float") from None
                if number != v:
                    raise refused(attr, v, where, "not exactly representable as a float")
                v = number
            converted.append(v)
        values = converted
        present = [v for v in values if v is not None]
    if not present:
        return values
    # a finite sum (one C loop) means every value is finite; inf, -inf and NaN make it not
    if not math.isfinite(sum(present)) and not all(map(math.isfinite, present)):
        bad = next(v for v in present if not math.isfinite(v))
        raise refused(attr, bad, where, "infinite values are not portable (MySQL has none); "
                      "store None for a missing value")
    values = positive_zeros(values, present)
    if single:
        if max(map(abs, present)) > _FLOAT32_MAX:
            bad = next(v for v in present if abs(v) > _FLOAT32_MAX)
            raise refused(attr, bad, where, "outside the range of float32; use float64")
        # the value the column holds: every backend stores and returns this one
        array = np.array([np.nan if v is None else v for v in values], dtype=np.float32)
        rounded = array.astype(np.float64).tolist()
        values = [None if v is None else r for v, r in zip(values, rounded)]
    return values


def positive_zeros(values: list[Any], present: list[float]) -> list[Any]:
    """`values` (floats and None; `present` the floats) with every -0.0 as 0.0, the same
    list where there is none. SQLite writes a whole-number REAL as an integer and MariaDB
    stores -0.0 as 0.0, so only PostgreSQL would keep the sign; the one value every backend
    returns is 0.0 (equal to -0.0 in Python, numpy and SQL). Refusing it instead would refuse
    ordinary computed data (`np.round(-0.3)`, `-1 * 0.0`). The scans run in C: a column
    with no zero costs one truth test per value (only zeros are false), as the sum does;
    only a column holding a -0.0 is copied."""
    if all(present):
        return values
    if min(map(math.copysign, repeat(1.0), filterfalse(None, present))) > 0:
        return values  # the zeros' signs: all positive
    return [v if v or v is None else 0.0 for v in values]


def _decimals(attr: Attribute, values: list[Any], present: list[Any], kinds: set[type],
              where: str, backend: Backend) -> list[Any]:
    precision, scale = attr.type_info.args
    unit = Decimal(1).scaleb(-scale)
    limit = backend.max_decimal_digits
    converted = []
    for v in values:
        if v is not None:
            try:
                number = Decimal(repr(v)) if type(v) is float else Decimal(v)
            except (TypeError, ValueError, ArithmeticError):
                raise refused(attr, v, where, "not a number") from None
            if not number.is_finite():
                raise refused(attr, v, where, "not a finite number")
            if number:
                shape = number.normalize().as_tuple()
                assert isinstance(shape.exponent, int)
                if shape.exponent < -scale:
                    raise refused(attr, v, where, f"more than {scale} decimal places")
                if number.adjusted() + 1 > precision - scale:
                    raise refused(attr, v, where,
                                  f"more than {precision - scale} digits before the point")
                if limit is not None and len(shape.digits) > limit:
                    raise refused(attr, v, where, f"{backend.name} stores decimals with up "
                                  f"to {limit} significant digits")
            with localcontext() as context:
                context.prec = precision + 2
                v = number.quantize(unit)
        converted.append(v)
    return converted


# ----------------------------------------------------------------------------- strings

def _strings(attr: Attribute, values: list[Any], present: list[Any], kinds: set[type],
             where: str, backend: Backend) -> list[Any]:
    info = attr.type_info
    odd = [k for k in kinds if not issubclass(k, str)]
    if odd:
        values = [v if v is None or isinstance(v, str) else as_text(attr, v, where)
                  for v in values]
    strings = present if kinds == {str} else [v for v in values if v is not None]
    if not strings:
        return values
    joined = "\x1f".join(strings)
    if "\x00" in joined:
        raise refused(attr, next(v for v in strings if "\x00" in v), where,
                      "text cannot contain NUL characters (PostgreSQL has no place for them)")
    try:
        joined.isascii() or joined.encode("utf-8")  # isascii reads a flag: no copy made
    except UnicodeEncodeError:
        text = next(v for v in strings if not _encodes(v))
        raise refused(attr, text, where, "not valid Unicode (a lone surrogate)") from None
    if info.category in ("varchar", "char"):
        length = info.args[0]
        if max(map(len, strings)) > length:
            raise refused(attr, next(v for v in strings if len(v) > length), where,
                          f"longer than {length} characters")
        if info.category == "char" and any(v.endswith(" ") for v in strings):
            raise refused(attr, next(v for v in strings if v.endswith(" ")), where,
                          "char(n) pads with spaces, so trailing spaces cannot be kept; "
                          "use varchar")
    elif info.category == "enum":
        allowed = set(info.enum_values)
        if not set(strings) <= allowed:
            raise refused(attr, next(v for v in strings if v not in allowed), where,
                          f"not one of {', '.join(map(repr, info.enum_values))}")
    return values


def as_text(attr: Attribute, value: Any, where: str) -> str:
    """The text of a value given for a text attribute, where it has exactly one: numbers
    (their exact decimal text: `5` -> '5', `0.1 + 0.2` -> '0.30000000000000004'), UUIDs
    and paths, as classic DataJoint's MySQL driver sent them. Each server would otherwise
    cast them its own way, or refuse them ('1' or 'true' for True; '0.3' or an error for
    0.1 + 0.2). Anything whose text is a matter of format is refused."""
    if isinstance(value, _BYTES):
        raise refused(attr, value, where, "bytes are not text; decode them first")
    if isinstance(value, (bool, np.bool_)):
        raise refused(attr, value, where, "a bool is not text (servers spell it '1' or "
                      "'true'); pass the text you mean")
    if isinstance(value, (int, np.integer, Decimal)):
        return str(value)
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            raise refused(attr, value, where, "a NaN or infinite number is not text; "
                          "pass the text you mean or None")
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, os.PathLike):
        path = os.fspath(value)
        if isinstance(path, str):
            return path
    raise refused(attr, value, where, f"a {type(value).__name__} is not text: text "
                  "attributes take str (numbers, UUIDs and paths are converted)")


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# ----------------------------------------------------------------------------- time

def _fraction_unit(attr: Attribute) -> int:
    """The microsecond step the declared precision keeps: 1 for (6), 10**6 for (0)."""
    args = attr.type_info.args
    return 10 ** (6 - (int(args[0]) if args else 0))


#: MySQL's TIMESTAMP range (UTC), the portable one
TIMESTAMP_RANGE = (datetime.datetime(1970, 1, 1, 0, 0, 1), datetime.datetime(2038, 1, 19, 3, 14, 7))


def _datetimes(attr: Attribute, values: list[Any], present: list[Any], kinds: set[type],
               where: str, backend: Backend) -> list[Any]:
    unit = _fraction_unit(attr)
    low, high = TIMESTAMP_RANGE if attr.type_info.category == "timestamp" else (None, None)
    for v in values:
        if v is None:
            continue
        if v.tzinfo is not None:
            raise refused(attr, v, where, "timezone-aware datetimes are not stored the same "
                          "way by every backend; convert to naive UTC first")
        if v.microsecond % unit:
            raise refused(attr, v, where, _precision_advice(attr, "datetime"))
        if low is not None and not low <= v.replace(microsecond=0) <= high:
            raise refused(attr, v, where, "a timestamp is between 1970-01-01 00:00:01 and "
                          "2038-01-19 03:14:07 (UTC); use datetime")
    return values


def _truncated(attr: Attribute, values: list[Any]) -> list[Any]:
    """Datetimes and times cut to the declared fractional digits (as MariaDB stores them)."""
    unit = _fraction_unit(attr)
    if unit == 1:
        return values
    return [v.replace(microsecond=v.microsecond - v.microsecond % unit)
            if isinstance(v, (datetime.datetime, datetime.time)) else v for v in values]


def _rounded(attr: Attribute, values: list[Any]) -> list[Any]:
    """Numbers rounded to the decimal column's scale, halves away from zero (as MySQL
    rounds); anything else is left for the check to judge."""
    unit = Decimal(1).scaleb(-attr.type_info.args[1])
    rounded = []
    for v in values:
        if isinstance(v, (float, int, Decimal)) and not isinstance(v, bool):
            try:
                number = Decimal(repr(v)) if isinstance(v, float) else Decimal(v)
                if number.is_finite():
                    with localcontext() as context:
                        context.prec = max(28, number.adjusted() + 1 + len(str(unit)))
                        v = number.quantize(unit, rounding=ROUND_HALF_UP)
            except (ValueError, ArithmeticError):
                pass
        rounded.append(v)
    return rounded


def _precision_advice(attr: Attribute, kind: str) -> str:
    digits = 6 - len(str(_fraction_unit(attr))) + 1
    return (f"{attr.type} keeps {digits} fractional second digits"
            + (f"; declare {kind}(6) or round the value" if digits < 6 else ""))


def _times(attr: Attribute, values: list[Any], present: list[Any], kinds: set[type],
           where: str, backend: Backend) -> list[Any]:
    unit = _fraction_unit(attr)
    converted = []
    for v in values:
        if isinstance(v, datetime.timedelta):
            v = time_of_day(attr, v, where)
        if v is not None:
            if v.tzinfo is not None:
                raise refused(attr, v, where, "timezone-aware times are not portable")
            if v.microsecond % unit:
                raise refused(attr, v, where, _precision_advice(attr, "time"))
        converted.append(v)
    return converted


def _dates(attr: Attribute, values: list[Any], present: list[Any], kinds: set[type],
           where: str, backend: Backend) -> list[Any]:
    if datetime.datetime in kinds:
        raise refused(attr, next(v for v in values if type(v) is datetime.datetime), where,
                      "a date has no time of day; pass .date()")
    return values


# ----------------------------------------------------------------------------- json

def _json(attr: Attribute, values: list[Any], present: list[Any], kinds: set[type],
          where: str, backend: Backend) -> list[Any]:
    """Refuse what JSON cannot hold; -0.0 inside becomes 0.0, as in float columns
    (PostgreSQL's jsonb keeps numbers as numeric, which has no negative zero, while
    SQLite and MariaDB keep the text): one value on every backend. Only a document whose
    text holds "-0" is walked."""
    converted = values
    for i, v in enumerate(values):
        if v is None:
            continue
        try:
            text = json.dumps(v, allow_nan=False)
        except ValueError:
            raise refused(attr, v, where, "JSON has no NaN or infinity") from None
        except TypeError as error:
            raise refused(attr, v, where, str(error)) from None
        if "-0" in text:
            unsigned = _json_positive_zeros(v)
            if unsigned is not v:
                if converted is values:
                    converted = list(values)
                converted[i] = unsigned
    return converted


def _json_positive_zeros(value: Any) -> Any:
    """`value` with every float -0.0 in it as 0.0; the same object where there is none."""
    if isinstance(value, float):
        return 0.0 if value == 0.0 and math.copysign(1.0, value) < 0 else value
    if isinstance(value, dict):
        items = {k: _json_positive_zeros(v) for k, v in value.items()}
        return items if any(items[k] is not v for k, v in value.items()) else value
    if isinstance(value, (list, tuple)):
        elements = [_json_positive_zeros(v) for v in value]
        return elements if any(e is not v for e, v in zip(elements, value)) else value
    return value


def _bytes(attr: Attribute, values: list[Any], present: list[Any], kinds: set[type],
           where: str, backend: Backend) -> list[Any]:
    if kinds - {bytes, bytearray, memoryview}:
        bad = next(v for v in values if v is not None and not isinstance(v, _BYTES))
        raise refused(attr, bad, where, "bytes attributes take bytes")
    return values


_Check = Callable[["Attribute", list[Any], list[Any], set[type], str, "Backend"], list[Any]]
_CHECKS: dict[str, _Check] = {
    "int": _integers, "float32": _floats, "float64": _floats, "decimal": _decimals,
    "string": _strings, "datetime": _datetimes, "timestamp": _datetimes, "time": _times,
    "date": _dates, "json": _json, "bytes": _bytes,
}
