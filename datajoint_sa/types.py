"""DataJoint attribute types -> SQLAlchemy column types, the same on every backend.

Each declared type is resolved to a `TypeInfo`: a neutral SQLAlchemy type with per-backend
variants (taken from the backend modules), an optional value range that a CHECK constraint
enforces where the backend has no native type for it, and an optional codec.
"""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from .backends import BACKENDS
from .codecs import Codec, get_codec
from .errors import DataJointError

INTEGER_RANGES: dict[str, tuple[int, int]] = {
    "int8": (-(2**7), 2**7 - 1),
    "uint8": (0, 2**8 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int24": (-(2**23), 2**23 - 1),
    "uint24": (0, 2**24 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}
_NATIVE_INTEGERS = {"tinyint": "8", "smallint": "16", "mediumint": "24", "int": "32",
                    "integer": "32", "bigint": "64"}
#: the portable limits of declared types (MySQL's, the narrowest of the three)
MAX_DECIMAL_PRECISION, MAX_DECIMAL_SCALE = 65, 30
MAX_CHAR, MAX_VARCHAR = 255, 16383  # varchar: 65,535 bytes of utf8mb4
_BLOB_NAMES = {"tinyblob", "blob", "mediumblob", "longblob"}
_TEXT_NAMES = {"text", "tinytext", "mediumtext", "longtext"}


class UUIDType(sa.types.TypeDecorator[uuid.UUID]):
    """sa.Uuid that also accepts strings; MySQL stores 16 raw bytes (a backend variant)."""

    impl = sa.Uuid(as_uuid=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> uuid.UUID | None:
        if value is None or isinstance(value, uuid.UUID):
            return value
        try:
            return uuid.UUID(bytes=value) if isinstance(value, bytes) else uuid.UUID(str(value))
        except ValueError as error:
            raise DataJointError(f"Invalid UUID value {value!r}") from error


class Float32(sa.types.TypeDecorator[float]):
    """A single-precision column read back as the double it holds exactly.

    Servers print a single-precision value with as few digits as tell it from its neighbours
    (MySQL: 6 significant digits), which is not the value stored; the cast makes every
    backend return the same double. Inserts round to single precision first (values.py)."""

    impl = sa.Float(precision=24)
    cache_ok = True

    def __init__(self, storage: sa.types.TypeEngine[Any] | None = None) -> None:
        super().__init__()
        self.storage = storage if storage is not None else sa.Float(precision=24)

    def load_dialect_impl(self, dialect: Any) -> sa.types.TypeEngine[Any]:
        return self.storage._variant_mapping.get(dialect.name, self.storage)

    def column_expression(self, column: Any) -> Any:
        return sa.cast(column, sa.Double())

    def migration_type(self) -> sa.types.TypeEngine[Any]:
        """The column type a migration script creates."""
        return self.storage


class Char(sa.types.TypeDecorator[str]):
    """char(n) read back without the padding some servers add (PostgreSQL); values with
    trailing spaces are refused at insert (values.py), so nothing is lost."""

    impl = sa.CHAR
    cache_ok = True

    def column_expression(self, column: Any) -> Any:
        return sa.func.rtrim(column, type_=sa.String())

    def migration_type(self) -> sa.types.TypeEngine[Any]:
        """The column type a migration script creates."""
        return self.impl_instance


@dataclass(frozen=True)
class TypeInfo:
    """What a declared type means: its category, SQLAlchemy type, range and codec."""

    type: str  # normalised declared type, as written back by describe()
    category: str
    sa_type: sa.types.TypeEngine[Any]
    value_range: tuple[int, int] | None = None
    enum_values: tuple[str, ...] = ()
    codec: Codec | None = None
    args: tuple[Any, ...] = field(default=())

    @property
    def is_integer(self) -> bool:
        return self.category in INTEGER_RANGES

    @property
    def fetched_as(self) -> str:
        """The category whose numpy dtype fetched values take: classic `float` is single
        precision in the database but float64 in arrays, as in classic DataJoint."""
        return "float64" if self.type == "float" else self.category

    @property
    def is_blob(self) -> bool:
        return self.codec is not None and self.codec.name == "blob"


def _with_variants(category: str, generic: sa.types.TypeEngine[Any], args: tuple[Any, ...]
                   ) -> sa.types.TypeEngine[Any]:
    result = generic
    for dialect, backend in BACKENDS.items():
        variant = backend.type_variant(category, args)
        if variant is not None:
            result = result.with_variant(variant, dialect)
    return result


def _integer_type(bits: str) -> sa.types.TypeEngine[Any]:
    return {"8": sa.SmallInteger(), "16": sa.SmallInteger(), "24": sa.Integer(),
            "32": sa.Integer(), "64": sa.BigInteger()}[bits]


def _integer_info(shown: str, bits: str, *, unsigned: bool) -> TypeInfo:
    category = ("u" if unsigned else "") + "int" + bits
    # where the backend has no unsigned integers, the next wider signed type holds the range
    storage_bits = {"8": "16", "16": "32", "24": "32", "32": "64", "64": "64"}[bits] \
        if unsigned else bits
    return TypeInfo(shown, category,
                    _with_variants(category, _integer_type(storage_bits), ()),
                    value_range=INTEGER_RANGES[category])


def _enum_values(body: str) -> tuple[str, ...]:
    values = re.findall(r"""\s*(?:'((?:[^'\\]|\\.|'')*)'|"((?:[^"\\]|\\.)*)")\s*(?:,|$)""", body)
    parsed = tuple(a if a or not b else b for a, b in values)
    if not parsed:
        raise DataJointError(f"enum needs at least one quoted value: enum({body})")
    repeated = sorted({v for v in parsed if parsed.count(v) > 1})
    if repeated:
        raise DataJointError(f"enum({body}) repeats {', '.join(map(repr, repeated))}")
    return parsed


_resolving = threading.local()  # the codec names being resolved, to report cycles


def _codec_storage(codec: Codec) -> TypeInfo:
    """The type of the column holding a codec's values. A storage type that is itself a
    codec chains (`codec.inner`); the store of `<name@store>` passes down to it."""
    declared = codec.storage_type()
    inner = re.fullmatch(r"<\s*([A-Za-z_]\w*)\s*>", declared.strip())
    if inner and codec.store:
        declared = f"<{inner.group(1)}@{codec.store}>"
    chain: list[str] = _resolving.__dict__.setdefault("chain", [])
    if codec.name in chain:
        raise DataJointError(f"Codec storage types form a cycle: "
                             f"{' -> '.join(f'<{n}>' for n in [*chain, codec.name])}")
    chain.append(codec.name)
    try:
        storage = resolve_type(declared)
    except DataJointError as error:
        if "form a cycle" in str(error):
            raise
        raise DataJointError(f"Codec {codec!r} declares storage type {declared!r}: "
                             f"{error}") from None
    finally:
        chain.pop()
    codec.inner = storage.codec
    return storage


def resolve_type(declared: str) -> TypeInfo:
    """Resolve a declared type string; raises DataJointError for an unknown type."""
    text = " ".join(declared.strip().split())
    lower = text.lower()

    codec_match = re.fullmatch(r"<\s*([A-Za-z_]\w*)\s*(?:@\s*([\w-]*))?\s*>", text)
    if codec_match or lower in _BLOB_NAMES or lower == "attach":
        if codec_match:
            name, store = codec_match.group(1), codec_match.group(2)
            if store == "":
                raise DataJointError(f"'{declared}': name the store, as in <{name}@store>")
        else:
            name, store = ("attach" if lower == "attach" else "blob"), None
        codec = get_codec(name, store)
        storage = _codec_storage(codec)
        shown = text if codec_match else f"<{name}>" if lower == "attach" else lower
        return TypeInfo(shown, storage.category, storage.sa_type, codec=codec,
                        value_range=storage.value_range, enum_values=storage.enum_values,
                        args=storage.args)
    store_match = re.fullmatch(r"(blob|attach|filepath)\s*@\s*([\w-]+)", text, re.IGNORECASE)
    if store_match:
        return resolve_type(f"<{store_match.group(1).lower()}@{store_match.group(2)}>")
    info = _NATIVE.get(text)
    if info is None:
        info = _native_type(declared, text, lower)
        if _shareable(info.sa_type) and len(_NATIVE) < MAX_CACHED_TYPES:
            _NATIVE[text] = info
    return info


#: resolved native types by their normalised text: the same text always means the same
#: type (codecs, which can be registered anew, are looked up every time)
_NATIVE: dict[str, TypeInfo] = {}
MAX_CACHED_TYPES = 4096


def _shareable(sa_type: sa.types.TypeEngine[Any]) -> bool:
    """Whether one type object may serve many columns: not a SchemaType (Boolean, Enum),
    which attaches itself to the table of its column."""
    types = [sa_type, *getattr(sa_type, "_variant_mapping", {}).values()]
    return not any(isinstance(getattr(t, "impl_instance", t), sa.types.SchemaType)
                   or isinstance(t, sa.types.SchemaType) for t in types)


def _native_type(declared: str, text: str, lower: str) -> TypeInfo:
    """A type that is not a codec (see resolve_type)."""
    if lower in ("bool", "boolean"):
        return TypeInfo("bool", "bool", sa.Boolean(create_constraint=False))

    m = re.fullmatch(r"(u?)int(8|16|24|32|64)", lower)
    if m:
        return _integer_info(lower, m.group(2), unsigned=bool(m.group(1)))
    m = re.fullmatch(r"(tinyint|smallint|mediumint|integer|int|bigint)(?:\s*\(\d+\))?"
                     r"(\s+unsigned)?", lower)
    if m:
        shown = m.group(1).replace("integer", "int") + (" unsigned" if m.group(2) else "")
        return _integer_info(shown, _NATIVE_INTEGERS[m.group(1)], unsigned=bool(m.group(2)))

    if lower in ("float32", "float", "real"):
        return TypeInfo(lower, "float32",
                        Float32(_with_variants("float32", sa.Float(precision=24), ())))
    if lower in ("float64", "double", "double precision"):
        return TypeInfo("float64" if lower == "float64" else "double", "float64",
                        _with_variants("float64", sa.Double(), ()))
    m = re.fullmatch(r"(decimal|numeric)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)(\s+unsigned)?", lower)
    if m:
        p, s = int(m.group(2)), int(m.group(3) or 0)
        if not 1 <= p <= MAX_DECIMAL_PRECISION:
            raise DataJointError(f"{text}: the precision is between 1 and "
                                 f"{MAX_DECIMAL_PRECISION} digits")
        if s > min(p, MAX_DECIMAL_SCALE):
            raise DataJointError(f"{text}: the scale is at most the precision ({p}) and at "
                                 f"most {MAX_DECIMAL_SCALE}")
        return TypeInfo(f"decimal({p},{s})", "decimal", sa.Numeric(p, s, asdecimal=True),
                        args=(p, s))

    m = re.fullmatch(r"(var)?char\s*\(\s*(\d+)\s*\)", lower)
    if m:
        n = int(m.group(2))
        limit = MAX_VARCHAR if m.group(1) else MAX_CHAR
        if not 1 <= n <= limit:
            longer = "text" if m.group(1) else "varchar or text"
            raise DataJointError(f"{text}: the length is between 1 and {limit} characters; "
                                 f"use {longer} for longer values")
        generic: sa.types.TypeEngine[Any] = sa.String(n) if m.group(1) else Char(n)
        return TypeInfo(f"{m.group(1) or ''}char({n})", "varchar" if m.group(1) else "char",
                        generic, args=(n,))
    if lower in _TEXT_NAMES:
        return TypeInfo(lower, "text", _with_variants("text", sa.Text(), ()))
    m = re.fullmatch(r"enum\s*\((.*)\)", text, flags=re.IGNORECASE)
    if m:
        values = _enum_values(m.group(1))
        length = max(len(v) for v in values)
        quoted = ",".join("'" + v.replace("'", "''") + "'" for v in values)
        return TypeInfo(f"enum({quoted})", "enum",
                        _with_variants("enum", sa.String(length), values),
                        enum_values=values, args=values)

    if lower == "year":  # MySQL's YEAR: a small integer in its range elsewhere
        return TypeInfo("year", "year", _with_variants("year", sa.SmallInteger(), ()),
                        value_range=(1901, 2155))
    if lower == "date":
        return TypeInfo("date", "date", sa.Date())
    m = re.fullmatch(r"(datetime|timestamp|time)(?:\s*\(\s*(\d+)\s*\))?", lower)
    if m:
        kind, precision = m.group(1), m.group(2)
        if precision and int(precision) > 6:
            raise DataJointError(f"{text}: fractional seconds have at most 6 digits")
        args = (int(precision),) if precision else ()
        generic = sa.Time() if kind == "time" else sa.DateTime()
        return TypeInfo(lower.replace(" ", ""), kind, _with_variants(kind, generic, args),
                        args=args)

    if lower == "uuid":
        return TypeInfo("uuid", "uuid", _with_variants("uuid", UUIDType(), ()))
    if lower == "json":
        return TypeInfo("json", "json", _with_variants("json", sa.JSON(none_as_null=True), ()))
    if lower in ("bytes", "longbytes", "binary", "varbinary"):
        return TypeInfo("bytes", "bytes", _with_variants("bytes", sa.LargeBinary(), ()))

    raise DataJointError(f"Unknown attribute type '{declared}'")
