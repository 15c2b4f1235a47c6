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

#: environment variables classic DataJoint read to enable features still marked experimental;
#: here those features are always on, so setting them changes nothing
ADAPTED_TYPE_SWITCH = "DJ_SUPPORT_ADAPTED_TYPES"
FILEPATH_FEATURE_SWITCH = "DJ_SUPPORT_FILEPATH_MANAGEMENT"

__all__ = ["ADAPTED_TYPE_SWITCH", "FILEPATH_FEATURE_SWITCH", "AccessError", "BucketInaccessible", "DataJointError", "DuplicateError",
           "IntegrityError", "LostConnectionError", "MissingAttributeError",
           "MissingExternalFile", "MissingTableError", "QueryError", "QuerySyntaxError",
           "UnknownAttributeError"]
