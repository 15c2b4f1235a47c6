"""Classic DataJoint SQL fragments -> SQLAlchemy clauses that render correctly on every backend.

The package is a neutral core (:mod:`.core`: parse and validate; :mod:`.render`: write SQL
through a dialect module; :mod:`.clause`: the SQLAlchemy element) plus one module per
sqlglot dialect named by ``Backend.sqlglot_dialect``, each holding its generator and its
rewrite table: everything that differs per backend lives there and nowhere else.
"""

from __future__ import annotations

from .clause import FragmentClause, fragment_clause
from .core import Fragment, _parse_cached, parse_fragment

__all__ = ["Fragment", "FragmentClause", "clear_cache", "fragment_clause", "parse_fragment"]


def clear_cache() -> None:
    """Forget parsed fragments (benchmarks measure cold parses with it)."""
    _parse_cached.cache_clear()
