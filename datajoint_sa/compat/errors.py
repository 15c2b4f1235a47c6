"""`datajoint.errors`: the classic exception names, each one of datajoint_sa's classes."""

from __future__ import annotations

from ..errors import (
                      AccessError,
                      DataJointError,
                      DuplicateError,
                      IntegrityError,
                      LostConnectionError,
                      MissingAttributeError,
                      MissingTableError,
                      QueryError,
                      UnknownAttributeError,
)

#: classic names without a class of their own here
MissingExternalFile = DataJointError
BucketInaccessible = DataJointError
QuerySyntaxError = QueryError

__all__ = ["AccessError", "BucketInaccessible", "DataJointError", "DuplicateError",
           "IntegrityError", "LostConnectionError", "MissingAttributeError",
           "MissingExternalFile", "MissingTableError", "QueryError", "QuerySyntaxError",
           "UnknownAttributeError"]
