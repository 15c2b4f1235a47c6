"""The fidelity matrix: every declared type x edge values, and what each value becomes.

A value either comes back exactly (`same`, or the one value every backend returns for it,
such as the single-precision double of a float32) or is refused with a DataJointError that
names the attribute and the value (`refused(why)`). tests/test_fidelity.py runs every case on
every backend; docs/types.md is rendered from the same cases:

    python -m tests.fidelity_matrix > docs/types.md

and test_fidelity checks that the committed page is current.
"""

from __future__ import annotations

import datetime as dt
import sys
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any

import numpy as np
from sqlalchemy.dialects import mysql, postgresql, sqlite

from datajoint_sa.types import resolve_type

BACKEND_NAMES = ("sqlite", "postgresql", "mysql")
SAME = object()  # the value comes back unchanged (equal, and of the same Python type)


@dataclass(frozen=True)
class Refused:
    why: str  # a word the error message contains: the reason, in short


@dataclass
class Case:
    label: str
    value: Any
    expected: Any = SAME  # SAME, a value, or Refused
    #: the outcome where a backend cannot store the value (a documented backend limit)
    per_backend: dict[str, Any] = field(default_factory=dict)

    def outcome(self, backend: str) -> Any:
        return self.per_backend.get(backend, self.expected)


def refused(why: str) -> Refused:
    return Refused(why)


def f32(x: float) -> float:
    return float(np.float32(x))


UTC2 = dt.timezone(dt.timedelta(hours=2))
U = uuid.UUID("6ba7b810-9dad-11d1-80b4-00c04fd430c8")

MATRIX: dict[str, list[Case]] = {
    "bool": [Case("true", True), Case("false", False), Case("2", 2, refused("invalid"))],
    "int8": [Case("min", -128), Case("max", 127), Case("max+1", 128, refused("range")),
             Case("True", True, 1), Case("whole float", 3.0, 3),
             Case("numeric string", "7", 7), Case("fraction", 1.5, refused("invalid")),
             Case("bytes", b"\x01", refused("invalid"))],
    "uint8": [Case("min", 0), Case("max", 255), Case("-1", -1, refused("range"))],
    "int16": [Case("min", -(2**15)), Case("max", 2**15 - 1), Case("True", True, 1)],
    "uint16": [Case("max", 2**16 - 1), Case("max+1", 2**16, refused("range"))],
    "int32": [Case("min", -(2**31)), Case("max", 2**31 - 1),
              Case("max+1", 2**31, refused("range"))],
    "int24": [Case("min", -(2**23)), Case("max", 2**23 - 1),
              Case("max+1", 2**23, refused("range"))],
    "uint24": [Case("max", 2**24 - 1), Case("-1", -1, refused("range"))],
    "uint32": [Case("max", 2**32 - 1), Case("NaN", float("nan"), None)],
    "tinyint unsigned": [Case("max", 255), Case("max+1", 256, refused("range"))],
    "smallint": [Case("min", -(2**15)), Case("False", False, 0)],
    "mediumint": [Case("max", 2**23 - 1)],
    "int unsigned": [Case("max", 2**32 - 1), Case("-1", -1, refused("range"))],
    "bigint": [Case("min", -(2**63))],
    "bigint unsigned": [Case("max", 2**64 - 1,
                             per_backend={"sqlite": refused("sqlite stores")})],
    "int64": [Case("min", -(2**63)), Case("max", 2**63 - 1),
              Case("max+1", 2**63, refused("range"))],
    "uint64": [Case("2^63-1", 2**63 - 1),
               Case("max", 2**64 - 1, per_backend={"sqlite": refused("sqlite stores")}),
               Case("-1", -1, refused("range"))],
    "year": [Case("min", 1901), Case("max", 2155), Case("1900", 1900, refused("range"))],
    "float32": [Case("1.5", 1.5), Case("0.1", 0.1, f32(0.1)),
                Case("1.2345678", 1.2345678, f32(1.2345678)),
                Case("max", float(np.finfo(np.float32).max)),
                Case("1e39", 1e39, refused("range of float32")),
                Case("NaN", float("nan"), None), Case("inf", float("inf"), refused("infinite")),
                Case("-0.0", -0.0, 0.0)],
    "float": [Case("0.1", 0.1, f32(0.1)), Case("-2.5", -2.5), Case("-0.0", -0.0, 0.0)],
    "double": [Case("pi", 3.141592653589793), Case("-0.0", -0.0, 0.0)],
    "float64": [Case("1/3", 1 / 3), Case("-1.5e300", -1.5e300),
                Case("min normal", 2.2250738585072014e-308), Case("2^53", 2**53, 2.0**53),
                Case("2^53+1", 2**53 + 1, refused("not exactly")),
                Case("10^400", 10**400, refused("too large")),
                Case("NaN", float("nan"), None), Case("-inf", float("-inf"), refused("infinite")),
                Case("-0.0", -0.0, 0.0), Case("numpy -0.0", np.float64(-0.0), 0.0)],
    "decimal(5,2)": [Case("max", Decimal("999.99")), Case("min", Decimal("-999.99")),
                     Case("float 1.1", 1.1, Decimal("1.10")),
                     Case("int", 7, Decimal("7.00")),
                     Case("3 places", Decimal("1.005"), refused("decimal places")),
                     Case("too large", Decimal("1000"), refused("digits")),
                     Case("NaN", Decimal("NaN"), refused("finite"))],
    "decimal(65,30)": [Case("small", Decimal("0.000000000000000000000000000001")),
                       Case("35 digits", Decimal("12345678901234567890123456789012345"),
                            per_backend={"sqlite": refused("significant digits")})],
    "decimal(20,2)": [Case("15 digits", Decimal("1234567890123.45")),
                      Case("20 digits", Decimal("123456789012345678.12"),
                           per_backend={"sqlite": refused("significant digits")})],
    "char(4)": [Case("full", "abcd"), Case("short", "ab"), Case("empty", ""),
                Case("unicode", "ü✓"), Case("trailing space", "ab ", refused("trailing")),
                Case("too long", "abcde", refused("longer"))],
    "varchar(32)": [Case("empty", ""), Case("unicode", "héllo wörld ✓"),
                    Case("4-byte", "\U0001F600" * 32), Case("quotes", "' \" \\ ;--"),
                    Case("trailing space", "ab  "),
                    Case("too long", "x" * 33, refused("longer")),
                    Case("bytes", b"abc", refused("bytes")),
                    Case("NUL", "a\x00b", refused("NUL")),
                    Case("lone surrogate", "\ud800", refused("Unicode")),
                    Case("int", 5, "5"), Case("numpy int", np.int64(-7), "-7"),
                    Case("float", 0.1 + 0.2, "0.30000000000000004"),
                    Case("decimal", Decimal("2.50"), "2.50"),
                    Case("path", PurePosixPath("/data/a.txt"), "/data/a.txt"),
                    Case("bool", True, refused("bool")),
                    Case("NaN", float("nan"), None),
                    Case("infinity", float("inf"), refused("infinite")),
                    Case("date", dt.date(2024, 1, 2), refused("not text")),
                    Case("list", ["a"], refused("not text"))],
    "text": [Case("70,000 chars", "x" * 70_000), Case("empty", ""), Case("uuid", U, str(U))],
    "enum('low','high')": [Case("member", "low"), Case("other", "mid", refused("not one of"))],
    "date": [Case("year 1", dt.date(1, 1, 1)), Case("leap day", dt.date(2024, 2, 29)),
             Case("year 9999", dt.date(9999, 12, 31)),
             Case("midnight datetime", dt.datetime(2024, 1, 2), dt.date(2024, 1, 2)),
             Case("datetime with time", dt.datetime(2024, 1, 2, 3), refused("time of day"))],
    "datetime": [Case("seconds", dt.datetime(2024, 1, 2, 3, 4, 5)),
                 Case("year 1000", dt.datetime(1000, 1, 1)),
                 Case("year 9999", dt.datetime(9999, 12, 31, 23, 59, 59)),
                 Case("microseconds", dt.datetime(2024, 1, 2, 3, 4, 5, 6), refused("fractional")),
                 Case("timezone-aware", dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC2),
                      refused("timezone"))],
    "datetime(3)": [Case("milliseconds", dt.datetime(2024, 1, 2, 3, 4, 5, 123000)),
                    Case("microseconds", dt.datetime(2024, 1, 2, 3, 4, 5, 123456),
                         refused("fractional"))],
    "datetime(6)": [Case("microseconds", dt.datetime(2024, 1, 2, 3, 4, 5, 123456)),
                    Case("pandas-style string", "2024-01-02T03:04:05.000001",
                         dt.datetime(2024, 1, 2, 3, 4, 5, 1))],
    "timestamp(6)": [Case("microseconds", dt.datetime(2024, 1, 2, 3, 4, 5, 123456))],
    "timestamp": [Case("2024", dt.datetime(2024, 5, 6, 7, 8, 9)),
                  Case("before 1970", dt.datetime(1969, 12, 31), refused("1970")),
                  Case("after 2038", dt.datetime(2038, 1, 20), refused("1970"))],
    "time": [Case("time", dt.time(13, 14, 15)), Case("end of day", dt.time(23, 59, 59)),
             Case("timedelta", dt.timedelta(hours=1, minutes=2), dt.time(1, 2)),
             Case("25 hours", dt.timedelta(hours=25), refused("between")),
             Case("negative", dt.timedelta(hours=-1), refused("between")),
             Case("microseconds", dt.time(1, 2, 3, 456), refused("fractional"))],
    "time(6)": [Case("microseconds", dt.time(1, 2, 3, 456))],
    "uuid": [Case("uuid", U), Case("string", str(U), U),
             Case("not a uuid", "not-a-uuid", refused("UUID"))],
    "json": [Case("nested", {"a": [1, 2, {"b": None}], "c": "ü"}), Case("list", [1, "two"]),
             Case("whole float", 2.0), Case("2^70", 2**70), Case("number text", "5"),
             Case("NaN inside", {"a": float("nan")}, refused("NaN")),
             Case("-0.0 inside", {"a": -0.0, "b": [-0.5, -0.0]}, {"a": 0.0, "b": [-0.5, 0.0]})],
    "bytes": [Case("empty", b""), Case("binary", b"\x00\x01\xff" * 100),
              Case("text", "abc", refused("bytes"))],
}


def attribute_name(declared: str) -> str:
    """A column name for a declared type: `v_decimal_20_2`."""
    return "v_" + "_".join("".join(c if c.isalnum() else " " for c in declared).split())[:40]


# ----------------------------------------------------------------------------- the page

_DIALECTS = {"sqlite": sqlite.dialect(), "postgresql": postgresql.dialect(),
             "mysql": mysql.dialect()}


def column_type(declared: str, backend: str) -> str:
    info = resolve_type(declared)
    dialect = _DIALECTS[backend]
    impl = info.sa_type.dialect_impl(dialect)
    storage = getattr(impl, "migration_type", None)
    shown = storage().dialect_impl(dialect) if storage else info.sa_type
    return str(shown.compile(dialect=dialect))


def _show(value: Any) -> str:
    text = repr(value)
    if len(text) > 28:
        text = text[:25] + "..."
    return "`" + text.replace("|", "\\|") + "`"


def _outcome(case: Case) -> str:
    outcomes = {b: case.outcome(b) for b in BACKEND_NAMES}
    parts = []
    for backend, outcome in outcomes.items():
        if isinstance(outcome, Refused):
            text = f"refused ({outcome.why})"
        elif outcome is SAME:
            text = "same"
        else:
            text = "→ " + _show(outcome)
        parts.append((backend, text))
    if len({t for _, t in parts}) == 1:
        return parts[0][1]
    return "; ".join(f"{b}: {t}" for b, t in parts)


def render() -> str:
    lines = [
        "# Types: what is stored, exactly",
        "",
        "<!-- generated by `python -m tests.fidelity_matrix > docs/types.md`; "
        "tests/test_fidelity.py runs every row on SQLite, PostgreSQL and MySQL and checks "
        "that this page is current -->",
        "",
        "Every value either comes back exactly as inserted (*same*), comes back as the one "
        "value the type holds for it on every backend (*→*), or is refused before anything "
        "is written, with a `DataJointError` that names the attribute and the value. Nothing "
        "is rounded, truncated, padded, wrapped or converted silently, and the outcome is the "
        "same on every backend except where a backend cannot hold a value at all (SQLite's "
        "signed 64-bit integers and double-precision decimals), which is shown per backend.",
        "",
        "## Column types",
        "",
        "| declared | SQLite | PostgreSQL | MySQL |",
        "|---|---|---|---|",
    ]
    for declared in MATRIX:
        cells = [column_type(declared, b) for b in BACKEND_NAMES]
        lines.append(f"| `{declared}` | " + " | ".join(f"`{c}`" for c in cells) + " |")
    lines += [
        "",
        "## Values",
        "",
        "| declared | case | value | outcome |",
        "|---|---|---|---|",
    ]
    for declared, cases in MATRIX.items():
        for case in cases:
            lines.append(f"| `{declared}` | {case.label} | {_show(case.value)} | "
                         f"{_outcome(case)} |")
    lines += [
        "",
        "## Why these refusals and conversions",
        "",
        "- **Infinity** (float32, float64): MySQL has no infinite floats; NaN is stored as NULL.",
        "- **Missing values**: `None`, NaN, pandas' `pd.NA` and `pd.NaT` and numpy's NaT are "
        "NULL (or the attribute's default) in any attribute, in rows and DataFrames alike, and "
        "in a dict restriction they select the NULLs.",
        "- **Negative zero** (float32, float64) is stored as `0.0`: SQLite writes a "
        "whole-number REAL as an integer and MariaDB stores -0.0 as 0.0, so PostgreSQL gets "
        "0.0 too. The two are equal in Python, numpy and SQL (only `np.signbit`, "
        "`math.copysign`, `atan2` and `1/x` tell them apart), and computed arrays hold -0.0 "
        "often (`np.round(-0.3)`, `-1 * 0.0`), so it is not refused. Inside `json` it becomes "
        "`0.0` too (PostgreSQL's jsonb has no negative zero). Blobs keep it.",
        "- **Numbers, UUIDs and paths given for a text attribute** are stored as their exact "
        "text (`5` → `'5'`, `0.1 + 0.2` → `'0.30000000000000004'`), as classic DataJoint's "
        "MySQL driver sent them; left to the servers, one stored `'0.3'` where another "
        "refused the value or spelled `True` as `'1'` or `'true'`. A bool, a date or a "
        "list has no one text, so it is refused: pass the text you mean.",
        "- **float32 beyond ±3.4e38**: the value would become infinity or an error "
        "depending on the server. A float32 value is stored and returned as the nearest "
        "single-precision number (`0.1` → `0.10000000149011612`) on every backend.",
        "- **Integers a float cannot hold exactly** (above 2^53, or beyond the float range).",
        "- **Decimals with more places or digits than declared**: servers round the places "
        "(PostgreSQL, MySQL) or keep them (SQLite). SQLite stores decimals as doubles, so it "
        "refuses values of more than 15 significant digits.",
        "- **uint64 above 2^63-1 on SQLite**: SQLite's integers are signed 64-bit.",
        "- **Trailing spaces in char(n)**: char pads with spaces, so `'ab '` and `'ab'` are "
        "one value; use varchar to keep them.",
        "- **Bytes into text, text into bytes**: the encoding would be a guess.",
        "- **NUL characters and lone surrogates in text**: PostgreSQL cannot store NUL; a "
        "lone surrogate is not encodable Unicode.",
        "- **Fractional seconds beyond the declared precision**: MySQL rounds them, the "
        "others keep them. `datetime` and `time` hold whole seconds; declare `datetime(6)`.",
        "- **Timezone-aware datetimes**: each backend stores them differently; convert to "
        "naive UTC.",
        "- **timestamp outside 1970-01-01 .. 2038-01-19** (UTC): MySQL's TIMESTAMP range.",
        "- **time outside 00:00 .. 24:00** (negative or 24 h+ durations): PostgreSQL and "
        "MySQL wrap them; store durations as numbers.",
        "- **A datetime with a time of day into a date**: the time would be dropped.",
        "- **NaN or infinity inside JSON**: JSON has no such numbers.",
        "- **`json` on SQLite** is a `JSONTEXT` column (TEXT affinity), so a document that is "
        "a bare number keeps its text (`2.0`, `2**70`). SQLAlchemy's name `JSON` has NUMERIC "
        "affinity: tables declared before datajoint_sa used `JSONTEXT` store such a document "
        "as a number (`2.0` comes back as `2`, `2**70` as a float); documents that are "
        "objects, lists or strings are not affected.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(render())
