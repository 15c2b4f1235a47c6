"""`datajoint.attribute_adapter`: classic custom types, mapped onto datajoint_sa codecs.

A classic adapter is an object with `attribute_type` (the stored type), `put(value)` and
`get(stored)`, placed in a schema's context under the name used in definitions (`<graph>`).
Here each such object is registered as a codec of that name, whose encode/decode call
put/get.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..codecs import Codec, registered


class AttributeAdapter:
    """Base class of classic adapters: set `attribute_type`, write `put` and `get`."""

    attribute_type: str = ""

    def put(self, obj: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__}.put")

    def get(self, value: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__}.get")


def _storage(adapter: AttributeAdapter) -> str:
    stored = adapter.attribute_type.strip()
    # a classic blob type names our <blob> codec
    return "<blob>" if stored.lower() in ("blob", "longblob", "mediumblob", "tinyblob") \
        else stored


def register_adapters(context: Mapping[str, Any]) -> None:
    """Register a codec for each AttributeAdapter object in `context` (by its name there)."""
    current = registered()
    for name, value in list(context.items()):
        if not isinstance(value, AttributeAdapter) or not name.isidentifier():
            continue
        existing = current.get(name)
        if existing is not None and getattr(existing, "adapter", None) is value:
            continue
        _adapter_codec(name, value)


def _adapter_codec(name: str, adapter: AttributeAdapter) -> type[Codec]:
    """A Codec subclass named `name` (defining it registers it) that calls the adapter."""

    def encode(self: Codec, value: Any) -> Any:
        return adapter.put(value)

    def decode(self: Codec, stored: Any) -> Any:
        return adapter.get(stored)

    return type(f"{type(adapter).__name__}Codec", (Codec,),
                {"name": name, "storage": _storage(adapter), "adapter": adapter,
                 "encode": encode, "decode": decode, "__module__": __name__})
