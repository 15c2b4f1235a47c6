"""`datajoint.hash`: the classic key_hash and uuid_from_buffer."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from typing import Any


def key_hash(mapping: Mapping[str, Any]) -> str:
    """The classic hash of a key: md5 of its values' text, in the order of sorted names.
    (datajoint_sa's own job table hashes names and typed values instead; this is the value
    classic code computes and may have stored.)"""
    hashed = hashlib.md5()
    for _, value in sorted(mapping.items()):
        hashed.update(str(value).encode())
    return hashed.hexdigest()


def uuid_from_buffer(buffer: bytes = b"", *, init_string: str = "") -> uuid.UUID:
    """The UUID whose bytes are the md5 of `init_string` followed by `buffer`."""
    hashed = hashlib.md5(init_string.encode())
    hashed.update(buffer)
    return uuid.UUID(bytes=hashed.digest())


__all__ = ["key_hash", "uuid_from_buffer"]
