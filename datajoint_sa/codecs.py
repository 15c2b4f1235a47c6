"""Codecs: attribute types whose Python values are encoded into a storage type.

A `Codec` subclass registers itself under its `name` when the class is defined, and is then
usable in definitions as `<name>` (or `<name@store>` when it keeps content in a store).
"""

from __future__ import annotations

from typing import Any, ClassVar

from .errors import DataJointError

_REGISTRY: dict[str, type[Codec]] = {}


class Codec:
    """Base class of attribute codecs.

    `storage` is the DataJoint type of the column that holds the encoded value (e.g.
    "bytes", "json", "varchar(255)"). `encode` and `decode` convert one value; `key` is the
    primary key of the row (when known) and `store` the store name of `<name@store>`.
    """

    name: ClassVar[str] = ""
    storage: ClassVar[str] = "bytes"
    #: whether the codec accepts `@store`
    uses_store: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            _REGISTRY[cls.name] = cls

    def __init__(self, store: str | None = None) -> None:
        self.store = store

    def encode(self, value: Any, *, key: dict[str, Any] | None = None) -> Any:
        raise NotImplementedError

    def decode(self, stored: Any, *, key: dict[str, Any] | None = None) -> Any:
        raise NotImplementedError

    def storage_type(self) -> str:
        return self.storage

    def __repr__(self) -> str:
        at = f"@{self.store}" if self.store else ""
        return f"<{self.name}{at}>"


def get_codec(name: str, store: str | None = None) -> Codec:
    """An instance of the registered codec `name`."""
    try:
        cls = _REGISTRY[name]
    except KeyError:
        raise DataJointError(f"Unknown codec <{name}>") from None
    if store and not cls.uses_store:
        raise DataJointError(f"Codec <{name}> does not use a store (got @{store})")
    return cls(store)


def registered() -> dict[str, type[Codec]]:
    return dict(_REGISTRY)


class BlobCodec(Codec):
    """Serialized Python objects, numpy arrays first, in DataJoint's blob format."""

    name = "blob"
    storage = "bytes"

    def encode(self, value: Any, *, key: dict[str, Any] | None = None) -> Any:
        from . import blob

        return blob.pack(value)

    def decode(self, stored: Any, *, key: dict[str, Any] | None = None) -> Any:
        from . import blob

        data = bytes(stored)
        if not blob.is_blob(data):
            # a `longblob` column without a type marker, read by reflection: DataJoint 0.14
            # serialized objects there, DataJoint 2.x keeps raw bytes there; only values with
            # a blob header are objects (SPEC: Table tiers and naming)
            return data
        return blob.unpack(data)
