"""The exception hierarchy: every error a user can provoke is a DataJointError."""

from __future__ import annotations


class DataJointError(Exception):
    """Base class of every error raised by datajoint_sa."""


class DuplicateError(DataJointError):
    """A row with the same primary key (or unique index value) already exists."""


class IntegrityError(DataJointError):
    """A foreign key is violated: a missing parent, or dependent rows still exist."""


class MissingAttributeError(DataJointError):
    """A required attribute has no value, or a named attribute does not exist."""


class MissingTableError(DataJointError):
    """The table is not declared in the database."""


class UnknownAttributeError(DataJointError):
    """An expression or row names an attribute that the heading does not have."""


class DefinitionError(DataJointError):
    """A table definition is malformed."""


class QueryError(DataJointError):
    """A query is malformed (failed semantic check, bad fragment, incompatible operands)."""


class UnsafeFragmentError(QueryError):
    """A SQL fragment reaches beyond its own row: a function off the allow-list, a subquery,
    a session variable, a qualified name or a statement (see docs/fragments.md)."""


class AccessError(DataJointError):
    """The database refused an operation for lack of privileges."""


class LostConnectionError(DataJointError):
    """The connection to the database server was lost (the server restarted, or ended the
    session). Outside a transaction the operation is retried once on a new session; inside
    one, the transaction's work is gone and must be repeated."""

    #: whether repeating the operation on a new session is safe (False when the session
    #: was lost during COMMIT, whose outcome is then unknown)
    retryable: bool = True


class NotBoundError(DataJointError, AttributeError):
    """A query or table class not bound to a connection (a tier such as `dj.Manual` itself,
    or a class of a deferred schema) was asked for something only a bound one has. It is
    also an AttributeError, so `help()`, `inspect` and `hasattr` pass over such attributes."""
