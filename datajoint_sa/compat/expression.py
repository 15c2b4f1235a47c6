"""`datajoint.expression`: query expressions and the classic operand helpers."""

from __future__ import annotations

from ..expression import AndList, Not, QueryExpression, Top, U

__all__ = ["AndList", "Not", "QueryExpression", "Top", "U"]
