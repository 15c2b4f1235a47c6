"""Codecs: attribute types whose Python values are encoded into a storage type.

A `Codec` subclass registers itself under its `name` when the class is defined, and is then
usable in definitions as `<name>` (or `<name@store>` when it keeps content in a store). A
user codec only writes `name`, `storage` (the type of the column, e.g. "json",
"varchar(64)", "bytes", or another codec such as "<blob>") and `encode` / `decode`:

    class Point(dj.Codec):
        name = "point"
        storage = "varchar(64)"

        def encode(self, value):
            return f"{value[0]},{value[1]}"

        def decode(self, stored):
            x, y = stored.split(",")
            return float(x), float(y)

`encode` and `decode` may also accept any of the keywords `key` (the row's primary key,
when known), `context` (a `CodecContext`: schema, table, attribute, download path) and
`store_name` (the `@store` of the attribute); each is passed only if the method names it.
An optional `validate(value)` runs before `encode` and may raise to refuse a value.
Callers always call `codec.encode(value, key=..., context=...)` and
`codec.decode(stored, key=..., context=...)`.

When `storage` is itself a codec (`"<blob>"`), the codecs chain: `encode` runs the outer
codec, then the inner one, and `decode` the reverse. The store of `<name@store>` passes
down the chain, so `<blob@store>` is `<blob>` over `<hash@store>`: serialized bytes kept in
the store, content-addressed, with `{hash, path, store, size}` in a json column.

Built-ins: `<blob>` (and `longblob`, `mediumblob`, `blob`), `<attach>` (`attach`),
`<hash@store>`, `<blob@store>` (`blob@store`), `<attach@store>` (`attach@store`),
`<filepath@store>` (`filepath@store`) and `<object@store>` (large objects, see `objects`).
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from . import blob, objects, transfers
from .errors import DataJointError
from .objects import ObjectRef
from .settings import config
from .stores import get_store

_REGISTRY: dict[str, type[Codec]] = {}
_BUILTIN = frozenset({"blob", "attach", "hash", "filepath", "object"})
_KEYWORDS = ("key", "context", "store_name")


@dataclass(frozen=True)
class CodecContext:
    """Where a value lives: what a codec may need besides the value itself.

    `schema` is the schema (database) of the table (stores keep content per schema);
    `table` and `attribute` name the value in error messages; `download_path` is where
    attachments and files from remote stores are written on fetch (None: the setting
    `dj.config['download_path']`); `connection` is the `Connection` when known.
    """

    schema: str = ""
    table: str = ""
    attribute: str = ""
    download_path: str | os.PathLike[str] | None = None
    connection: Any = None

    def at(self, attribute: str) -> CodecContext:
        """The same context for another attribute."""
        return replace(self, attribute=attribute)

    @property
    def where(self) -> str:
        """"Table.attribute" (as much of it as is known), for messages."""
        return ".".join(p for p in (self.table, self.attribute) if p) or "a codec value"

    def downloads(self) -> str:
        """The folder where fetched files go."""
        if self.download_path is not None:
            return os.fspath(self.download_path)
        return os.fspath(config.get("download_path") or ".")


def _where(context: CodecContext | None) -> str:
    return context.where if context is not None else "a codec value"


def _accepted(method: Callable[..., Any]) -> frozenset[str]:
    """The keywords among key/context/store_name that a codec method accepts."""
    try:
        parameters = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return frozenset(_KEYWORDS)
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return frozenset(_KEYWORDS)
    return frozenset(p.name for p in parameters if p.name in _KEYWORDS
                     and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))


def _adapt(cls: type, method_name: str) -> None:
    """Wrap `cls.<method_name>` so it takes key/context/store_name whatever it declares,
    applies the chained inner codec (once, in the most derived override), and turns
    unexpected exceptions into DataJointErrors that name the table and attribute."""
    original = cls.__dict__[method_name]
    if getattr(original, "_dj_adapted", False):
        return
    accepted = _accepted(original)
    encoding = method_name == "encode"

    @functools.wraps(original)
    def adapted(self: Codec, value: Any, *, key: dict[str, Any] | None = None,
                context: CodecContext | None = None) -> Any:
        outermost = getattr(type(self), method_name) is adapted
        inner = self.inner if outermost else None
        options: dict[str, Any] = {}
        if "key" in accepted:
            options["key"] = key
        if "context" in accepted:
            options["context"] = context
        if "store_name" in accepted:
            options["store_name"] = self.store
        try:
            if encoding:
                validate = getattr(self, "validate", None) if outermost else None
                if validate is not None:
                    validate(value)  # DataJoint 2's optional check, before encoding
                result = original(self, value, **options)
                if inner is not None and result is not None:
                    result = inner.encode(result, key=key, context=context)
                return result
            if inner is not None:
                value = inner.decode(value, key=key, context=context)
            return original(self, value, **options)
        except DataJointError:
            raise
        except Exception as error:
            verb = "encode a value" if encoding else "decode a stored value"
            raise DataJointError(f"{_where(context)}: codec {self!r} could not {verb}: "
                                 f"{type(error).__name__}: {error}") from error

    adapted._dj_adapted = True  # type: ignore[attr-defined]
    setattr(cls, method_name, adapted)


class Codec:
    """Base class of attribute codecs: subclass it, set `name` and `storage`, write
    `encode` and `decode` (see the module docstring).

    `storage` is the DataJoint type of the column that holds the encoded value; a codec
    whose storage depends on whether it has a store overrides `get_dtype(is_store)`.
    `uses_store` says whether `<name@store>` is allowed, `needs_store` whether it is
    required.
    """

    name: ClassVar[str] = ""
    storage: ClassVar[str] = "bytes"
    #: whether the codec accepts `@store`
    uses_store: ClassVar[bool] = False
    #: whether the codec requires `@store`
    needs_store: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for method_name in ("encode", "decode"):
            if method_name in cls.__dict__:
                _adapt(cls, method_name)
        name = cls.__dict__.get("name")
        if not name:
            return
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_]\w*", name):
            raise DataJointError(f"Codec {cls.__qualname__}: name {name!r} must be an "
                                 "identifier (letters, digits, underscores)")
        previous = _REGISTRY.get(name)
        if (previous is not None and name in _BUILTIN
                and previous.__module__ != cls.__module__):
            raise DataJointError(f"Codec {cls.__qualname__}: <{name}> is a built-in type "
                                 "and cannot be redefined")
        _REGISTRY[name] = cls  # a re-run notebook cell replaces its own earlier class

    def __init__(self, store: str | None = None) -> None:
        self.store = store
        #: the codec of the storage type, when that is itself a codec (set by resolve_type)
        self.inner: Codec | None = None

    def encode(self, value: Any, *, key: dict[str, Any] | None = None,
               context: CodecContext | None = None) -> Any:
        raise NotImplementedError(f"codec {self!r} does not define encode")

    def decode(self, stored: Any, *, key: dict[str, Any] | None = None,
               context: CodecContext | None = None) -> Any:
        raise NotImplementedError(f"codec {self!r} does not define decode")

    def get_dtype(self, is_store: bool) -> str:
        """The storage type (DataJoint 2's spelling; `storage` by default)."""
        return self.storage

    def storage_type(self) -> str:
        return self.get_dtype(self.store is not None)

    def chain(self) -> list[Codec]:
        """This codec and the codecs of its storage types, outermost first."""
        chain: list[Codec] = []
        codec: Codec | None = self
        while codec is not None:
            chain.append(codec)
            codec = codec.inner
        return chain

    def __repr__(self) -> str:
        at = f"@{self.store}" if self.store else ""
        return f"<{self.name}{at}>"


_adapt(Codec, "encode")
_adapt(Codec, "decode")


def get_codec(name: str, store: str | None = None) -> Codec:
    """An instance of the registered codec `name` (with its store, for `<name@store>`)."""
    try:
        cls = _REGISTRY[name]
    except KeyError:
        raise DataJointError(f"Unknown codec <{name}>: define a dj.Codec subclass with "
                             f"name = {name!r} before declaring or reading the table") from None
    if store and not cls.uses_store:
        raise DataJointError(f"Codec <{name}> does not use a store (got <{name}@{store}>)")
    if cls.needs_store and not store:
        raise DataJointError(f"Codec <{name}> keeps its content in a store: write "
                             f"<{name}@store> with a store configured in dj.config['stores']")
    return cls(store or None)


def registered() -> dict[str, type[Codec]]:
    return dict(_REGISTRY)


# ---------------------------------------------------------------------------- built-ins

class BlobCodec(Codec):
    """Serialized Python objects, numpy arrays first, in DataJoint's blob format
    (in the table as bytes, or in a store as `<blob@store>`)."""

    name = "blob"
    storage = "bytes"
    uses_store = True

    def get_dtype(self, is_store: bool) -> str:
        return "<hash>" if is_store else "bytes"

    def encode(self, value: Any, *, key: dict[str, Any] | None = None,
               context: CodecContext | None = None) -> Any:
        return blob.pack(value)

    def decode(self, stored: Any, *, key: dict[str, Any] | None = None,
               context: CodecContext | None = None) -> Any:
        data = bytes(stored)
        if not blob.is_blob(data):
            # a `longblob` column without a type marker, read by reflection: DataJoint 0.14
            # serialized objects there, DataJoint 2.x keeps raw bytes there; only values with
            # a blob header are objects (SPEC: Table tiers and naming)
            return data
        return blob.unpack(data)


class AttachCodec(Codec):
    """A file, name and content: insert a path, fetch the path of the written copy.

    Kept as DataJoint's attachment layout: the file name (UTF-8), a NUL byte, the content.
    Fetch writes the file into the download path under its stored name; when a file of
    that name with different content is already there, the copy is written as
    `name_1.ext` (`_2`, ...) instead, never overwriting; an identical file is reused.
    """

    name = "attach"
    storage = "bytes"
    uses_store = True

    def get_dtype(self, is_store: bool) -> str:
        return "<hash>" if is_store else "bytes"

    def encode(self, value: Any, *, key: dict[str, Any] | None = None,
               context: CodecContext | None = None) -> bytes:
        if not isinstance(value, (str, os.PathLike)):
            raise DataJointError(f"{_where(context)}: an attachment is a file path, got "
                                 f"{type(value).__name__}")
        path = os.fspath(value)
        if not os.path.isfile(path):
            raise DataJointError(f"{_where(context)}: attachment {path!r} is not an "
                                 "existing file")
        with open(path, "rb") as file:
            content = file.read()
        return os.path.basename(path).encode("utf-8") + b"\0" + content

    def decode(self, stored: Any, *, key: dict[str, Any] | None = None,
               context: CodecContext | None = None) -> str:
        data = bytes(stored)
        split = data.find(b"\0")
        if split < 0:
            raise DataJointError(f"{_where(context)}: the stored attachment has no file name")
        try:
            filename = data[:split].decode("utf-8")
        except UnicodeDecodeError as error:
            raise DataJointError(f"{_where(context)}: the stored attachment name is not "
                                 "UTF-8") from error
        folder = context.downloads() if context is not None else CodecContext().downloads()
        return write_download(folder, filename, memoryview(data)[split + 1:], _where(context))


def write_download(folder: str, filename: str, content: bytes | memoryview,
                   where: str) -> str:
    """Write `content` as `folder/filename` and return the path, reusing an identical file
    and never overwriting a different one (the copy becomes `stem_1.ext`, `stem_2.ext`...)."""
    name = os.path.basename(filename.replace("\\", "/"))
    if name in ("", ".", ".."):
        raise DataJointError(f"{where}: invalid attachment file name {filename!r}")
    os.makedirs(folder, exist_ok=True)
    stem, ext = os.path.splitext(name)
    size = len(content)
    for n in range(10_000):
        target = os.path.join(folder, name if n == 0 else _numbered(stem, n, ext))
        if os.path.lexists(target):
            if os.path.isfile(target) and os.path.getsize(target) == size:
                with open(target, "rb") as existing:
                    if existing.read() == content:
                        return target
            continue
        # a short temporary name: any legal file name (up to 255 bytes) can be written
        temporary = os.path.join(folder, f".dj-{uuid.uuid4().hex[:16]}.part")
        with open(temporary, "wb") as file:
            file.write(content)
        try:
            try:
                os.link(temporary, target)  # atomic, and refuses to replace a file
            except FileExistsError:
                continue  # someone wrote that name meanwhile: look at it again
            except OSError:  # no hard links here: the (tiny) race is accepted
                if os.path.lexists(target):
                    continue
                os.replace(temporary, target)
            return target
        finally:
            if os.path.lexists(temporary):
                os.remove(temporary)
    raise DataJointError(f"{where}: too many different files named {name!r} in {folder}")


#: the longest file name (bytes) of the usual filesystems (ext4, APFS, NTFS in UTF-16 units)
NAME_MAX = 255


def _numbered(stem: str, n: int, ext: str) -> str:
    """`stem_n.ext`, the stem shortened (on a character boundary) to stay within NAME_MAX."""
    tail = f"_{n}{ext}"
    room = NAME_MAX - len(tail.encode("utf-8"))
    return stem.encode("utf-8")[:max(room, 1)].decode("utf-8", "ignore") + tail


def _metadata(stored: Any, where: str) -> dict[str, Any]:
    """The stored {hash, path, store, size} of a store value (a dict, or JSON text)."""
    if isinstance(stored, (str, bytes, bytearray)):
        try:
            stored = json.loads(stored)
        except ValueError:
            stored = None
    if not isinstance(stored, dict) or not isinstance(stored.get("path"), str):
        raise DataJointError(f"{where}: the stored value is not a store reference "
                             "(expected JSON with a path)")
    return stored


class HashCodec(Codec):
    """Bytes kept in a store, addressed by content hash: `<hash@store>`.

    The object is written first (once per distinct content and schema), then the row keeps
    `{"hash", "path", "schema", "store", "size"}` in a json column. Fetch reads the object
    back and checks size and hash; see `datajoint_sa.stores` for the layout and for gc.
    """

    name = "hash"
    storage = "json"
    uses_store = True
    needs_store = True
    #: its store requests may run concurrently for a whole column (see `transfers`)
    transfers = True

    def encode(self, value: Any, *, key: dict[str, Any] | None = None,
               context: CodecContext | None = None) -> dict[str, Any]:
        where = _where(context)
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise DataJointError(f"{where}: <hash@{self.store}> stores bytes, got "
                                 f"{type(value).__name__}")
        if context is None or not context.schema:
            raise DataJointError(f"{where}: <hash@{self.store}> needs the schema of the table")
        assert self.store is not None
        store, schema, data = get_store(self.store, where), context.schema, bytes(value)
        batch = transfers.current()
        if batch is None:
            return store.put(schema, data, where=where)
        metadata = store.describe(schema, data)  # the write joins the column's batch
        batch.defer((store.name, metadata["path"]), len(data),
                    lambda: store.put(schema, data, where=where, metadata=metadata))
        return metadata

    def decode(self, stored: Any, *, key: dict[str, Any] | None = None,
               context: CodecContext | None = None) -> bytes:
        where = _where(context)
        assert self.store is not None
        metadata = _metadata(stored, where)
        batch = transfers.current()
        if batch is not None:
            read = batch.reads.get(_read_key(self.store, metadata))
            if read is not None:
                return bytes(read)
        return get_store(self.store, where).get(metadata, where=where)

    def read_task(self, stored: Any, *, context: CodecContext | None = None
                  ) -> tuple[Any, Callable[[], bytes]] | None:
        """(key, read) of the stored object, for `transfers.decode_all` to read ahead."""
        where = _where(context)
        try:
            metadata = _metadata(stored, where)
        except DataJointError:
            return None  # decode reports it
        assert self.store is not None
        store = get_store(self.store, where)
        return _read_key(self.store, metadata), lambda: store.get(metadata, where=where)


def _read_key(store: str, metadata: dict[str, Any]) -> tuple[Any, ...]:
    return (store, metadata.get("path"), metadata.get("hash"), metadata.get("size"))


class FilepathCodec(Codec):
    """A file that lives in a store, referenced by its path there: `filepath@store`.

    Insert a path relative to the store's location, or an absolute local path inside the
    location (protocol 'file') or inside the store's `stage` folder (then copied into the
    store at the same relative path). The row keeps `{"path", "store", "size", "hash"}`;
    fetch verifies the hash and returns a local path: the file itself for a local store,
    else a copy under the download path. The files belong to the user: gc never removes
    them.
    """

    name = "filepath"
    storage = "json"
    uses_store = True
    needs_store = True

    def encode(self, value: Any, *, key: dict[str, Any] | None = None,
               context: CodecContext | None = None) -> dict[str, Any]:
        where = _where(context)
        if not isinstance(value, (str, os.PathLike)):
            raise DataJointError(f"{where}: filepath@{self.store} takes a path, got "
                                 f"{type(value).__name__}")
        assert self.store is not None
        return get_store(self.store, where).reference(os.fspath(value), where=where)

    def decode(self, stored: Any, *, key: dict[str, Any] | None = None,
               context: CodecContext | None = None) -> str:
        where = _where(context)
        assert self.store is not None
        folder = context.downloads() if context is not None else CodecContext().downloads()
        return get_store(self.store, where).local_copy(_metadata(stored, where), folder,
                                                       where=where)


class ObjectCodec(Codec):
    """A Zarr array, HDF5 file or folder kept in a store at its own path: `<object@store>`.

    Written by a staged insert (`Table.staged_insert1`, see `datajoint_sa.staged`) straight
    into the store, or copied in from a local file or folder given to a plain insert. The
    row keeps `{"path", "store", "size", "items", "is_dir", "ext", "timestamp"}`; fetch
    returns an `ObjectRef` that reads lazily. See `datajoint_sa.objects` for the layout,
    the manifest that marks an object complete, and gc.
    """

    name = "object"
    storage = "json"
    uses_store = True
    needs_store = True

    def encode(self, value: Any, *, key: dict[str, Any] | None = None,
               context: CodecContext | None = None) -> dict[str, Any]:
        where = _where(context)
        assert self.store is not None
        store = get_store(self.store, where)
        schema = context.schema if context is not None else ""
        if isinstance(value, ObjectRef):
            raise DataJointError(f"{where}: an object of another row cannot be shared; "
                                 "insert its files (ref.download()) or copy the row's data")
        if isinstance(value, dict):  # the metadata a staged insert completed
            return _staged_metadata(store, value, schema, where)
        if isinstance(value, (str, os.PathLike)):
            if not schema or key is None:
                raise DataJointError(f"{where}: <object@{self.store}> needs the table's "
                                     "schema and the row's primary key")
            source = os.fspath(value)
            ext = os.path.splitext(source.rstrip("/\\"))[1] or ""
            table = context.table if context is not None else "table"
            attribute = context.attribute if context is not None else "object"
            relative = objects.object_path(schema, table, key, attribute, ext)
            objects.copy_in(store, source, relative, where)
            return objects.complete(store, relative, ext=ext, where=where)
        raise DataJointError(f"{where}: <object@{self.store}> takes a local file or folder "
                             f"path, or is written by staged_insert1; got "
                             f"{type(value).__name__}")

    def decode(self, stored: Any, *, key: dict[str, Any] | None = None,
               context: CodecContext | None = None) -> ObjectRef:
        where = _where(context)
        return ObjectRef.from_metadata(_metadata(stored, where), where)


def _staged_metadata(store: Any, value: dict[str, Any], schema: str,
                     where: str) -> dict[str, Any]:
    """The metadata of a completed object, checked: inside this schema's objects and with
    its manifest written (so a row never points to a partial or foreign object)."""
    path = value.get("path")
    if not isinstance(path, str) or not objects.is_object_root(path) \
            or path.split("/")[1] != schema or value.get("store") != store.name:
        raise DataJointError(f"{where}: {path!r} is not an object of schema {schema!r} in "
                             f"store {store.name!r}; write objects with staged_insert1")
    ObjectRef.from_metadata(value, where).check()
    return dict(value)
