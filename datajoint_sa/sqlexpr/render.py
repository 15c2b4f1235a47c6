"""The neutral renderer: a fragment's placeholder AST -> SQL text for one backend.

Each dialect module of this package (``sqlexpr/<name>.py``) describes one target with a
:class:`DialectCompiler`: the sqlglot dialect whose generator writes the SQL and a rewrite
table for what that generator gets wrong or leaves untranslated.  A backend selects its
compiler through ``Backend.sqlglot_dialect``; this module finds the compilers by scanning
the package (importing only the modules a process asks for: each loads a sqlglot dialect),
so adding a backend is a new module here and a new one in ``backends/``, with no list to
keep in step.  The builders below are the small AST vocabulary the rewrite tables share.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Final, TypeAlias

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ErrorLevel, SqlglotError

from ..errors import QueryError

__all__ = ["DialectCompiler", "Rewrite", "apply_rewrites", "compiler_for", "generate",
           "reader"]

Rewrite: TypeAlias = "Callable[[exp.Expr], exp.Expr]"

# Placeholders that stand in for attribute references ("c"; "b" where a truth value is
# expected, see normalize.py) and literal values ("v") inside
# the AST that is handed to sqlglot's generator.  They are plain lower-case identifiers so no
# dialect quotes them; the regex still tolerates quoting.
PH_PREFIX: Final = "djsa0ph"
_PH_RE: Final = re.compile(r'[`"\[]?\b' + PH_PREFIX + r"([cvb])(\d+)\b[`\"\]]?")

#: One piece of a generated template: literal SQL text, or a ("c"|"v", index) placeholder.
Piece: TypeAlias = "str | tuple[str, int]"


def placeholder(kind: str, index: int) -> exp.Column:
    return exp.column(f"{PH_PREFIX}{kind}{index}")


def placeholder_kind(node: exp.Expr) -> str | None:
    """"c", "b" or "v" for a placeholder node, else None."""
    if isinstance(node, exp.Column) and not node.table:
        m = _PH_RE.fullmatch(node.name)
        if m:
            return m.group(1)
    return None


@dataclass(frozen=True)
class DialectCompiler:
    """How fragments are written for the backends whose ``sqlglot_dialect`` is ``name``.

    ``reads_fragments`` marks the one dialect whose grammar users write fragments in (the
    classic DataJoint grammar); its ``dialect`` also parses them.
    """

    name: str
    dialect: Dialect
    rewrites: Mapping[type[exp.Expr], Rewrite] = field(default_factory=dict)
    reads_fragments: bool = False


_NEUTRAL: Final = DialectCompiler("", Dialect())


def _module_names() -> list[str]:
    """The modules of this package, found without importing them."""
    return [info.name for info in pkgutil.iter_modules(_package_path())]


def _package_path() -> list[str]:
    package = importlib.import_module(__package__ or "")
    return list(package.__path__)


def _compiler_of(module_name: str) -> DialectCompiler | None:
    module = importlib.import_module(f"{__package__}.{module_name}")
    compiler = getattr(module, "COMPILER", None)
    return compiler if isinstance(compiler, DialectCompiler) else None


def _find(wanted: Callable[[DialectCompiler], bool], hint: str) -> DialectCompiler | None:
    """The first compiler `wanted` accepts, importing only as many dialect modules as it
    takes: the module whose name matches `hint` first ("postgres" is in postgresql.py),
    then the others. Each dialect module loads a sqlglot dialect (tens of milliseconds),
    and a process needs one or two of them, not all."""
    names = _module_names()
    ordered = sorted(names, key=lambda n: not (hint and (n.startswith(hint)
                                                          or hint.startswith(n))))
    for name in ordered:
        compiler = _compiler_of(name)
        if compiler is not None and wanted(compiler):
            return compiler
    return None


@cache
def compiler_for(sqlglot_dialect: str) -> DialectCompiler:
    """The compiler for a backend's ``sqlglot_dialect`` (sqlglot's neutral one if none)."""
    if not sqlglot_dialect:
        return _NEUTRAL
    found = _find(lambda c: c.name == sqlglot_dialect, sqlglot_dialect)
    return found or _NEUTRAL


@cache
def reader() -> Dialect:
    """The sqlglot dialect fragments are parsed with."""
    found = _find(lambda c: c.reads_fragments, "")
    if found is None:
        raise RuntimeError("no dialect module of datajoint_sa.sqlexpr reads fragments")
    return found.dialect


def apply_rewrites(tree: exp.Expr, rules: Mapping[type[exp.Expr], Rewrite]) -> exp.Expr:
    """Apply ``rules`` bottom-up (children first), so rewritten nodes see rewritten children."""
    if not rules:
        return tree
    for child in list(tree.iter_expressions()):
        apply_rewrites(child, rules)
    rule = rules.get(type(tree))
    if rule is None:
        return tree
    new = rule(tree)
    if new is not tree:
        tree.replace(new)
    return new


def generate(tree: exp.Expr, text: str, compiler: DialectCompiler,
             backend_name: str) -> tuple[Piece, ...]:
    """Transpile a placeholder AST with one compiler and split the SQL at the placeholders."""
    try:
        tree = apply_rewrites(tree.copy(), compiler.rewrites)
        sql = tree.sql(dialect=compiler.dialect, unsupported_level=ErrorLevel.RAISE,
                       comments=False)
    except (SqlglotError, ValueError) as e:
        raise QueryError(
            f"SQL fragment {text!r} cannot be expressed for {backend_name}: {e}"
        ) from None
    pieces: list[Piece] = []
    pos = 0
    for m in _PH_RE.finditer(sql):
        if m.start() > pos:
            pieces.append(sql[pos : m.start()])
        pieces.append((m.group(1), int(m.group(2))))
        pos = m.end()
    if pos < len(sql):
        pieces.append(sql[pos:])
    return tuple(pieces)


# --------------------------------------------------------------------------------------------
# AST builders shared by the rewrite tables
# --------------------------------------------------------------------------------------------


def as_int(e: exp.Expr) -> exp.Expr:
    return exp.cast(e, exp.DataType.build("INT"))


def string(value: str) -> exp.Literal:
    return exp.Literal.string(value)


def number(value: int | float) -> exp.Expr:
    return exp.Literal.number(value)


def call(name: str, *args: exp.Expr) -> exp.Anonymous:
    return exp.Anonymous(this=name, expressions=list(args))


def nullif_zero(e: exp.Expr) -> exp.Expr:
    return exp.Nullif(this=e, expression=number(0))


def retype(node: exp.Expr, cls: type[exp.Expr]) -> exp.Expr:
    """The same node as another class, keeping every argument (e.g. ``negate`` of NOT LIKE)."""
    return cls(**node.args)


def unwrap_date(e: exp.Expr) -> exp.Expr:
    """Drop sqlglot's implicit date/timestamp coercions."""
    while isinstance(e, (exp.TsOrDsToDate, exp.TsOrDsToTimestamp, exp.TsOrDsToDatetime)):
        e = e.this
    return e


def cast_argument(node: exp.Expr, type_name: str) -> exp.Expr:
    """Cast an aggregate's argument (also under DISTINCT) to ``type_name``."""
    target_type = exp.DataType.build(type_name)
    target = node.this
    if isinstance(target, exp.Distinct):
        target.set("expressions", [exp.cast(e, target_type) for e in target.expressions])
    else:
        node.set("this", exp.cast(target, target_type))
    return node


_NOW_NAMES: Final = frozenset({"now", "localtimestamp", "localtime", "sysdate"})


def _now_rule(node: exp.Expr) -> exp.Expr:
    """NOW(), SYSDATE(), LOCALTIMESTAMP() (parsed as anonymous calls) -> CURRENT_TIMESTAMP."""
    if node.name.lower() in _NOW_NAMES and not node.expressions:
        return exp.CurrentTimestamp()
    return node


#: applied once at parse time, for every backend
PARSE_REWRITES: Final[dict[type[exp.Expr], Rewrite]] = {
    exp.Anonymous: _now_rule,
    # MySQL's LOCALTIME and LOCALTIMESTAMP are NOW()
    exp.Localtimestamp: lambda node: exp.CurrentTimestamp(),
    exp.Localtime: lambda node: exp.CurrentTimestamp(),
}
