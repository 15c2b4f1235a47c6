"""`datajoint.hash`: key_hash (the job table's hash of a key) and uuid_from_buffer."""

from __future__ import annotations

import hashlib
import uuid

from ..jobs import key_hash


def uuid_from_buffer(buffer: bytes = b"", *, init_string: str = "") -> uuid.UUID:
    """The UUID whose bytes are the md5 of `init_string` followed by `buffer`."""
    hashed = hashlib.md5(init_string.encode())
    hashed.update(buffer)
    return uuid.UUID(bytes=hashed.digest())


__all__ = ["key_hash", "uuid_from_buffer"]
