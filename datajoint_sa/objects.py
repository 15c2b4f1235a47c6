"""Large objects in a store: Zarr arrays, HDF5 files and folders of `<object@store>` columns.

Unlike `<blob@store>` (content-addressed bytes read whole), an object is written in place,
piece by piece, and read lazily. Each object has its own path in the store::

    {location}/_object/{schema}/{Table}/{key}/{attribute}_{token}{ext}

where `{key}` is the row's primary key (`name=value,...`, URL-quoted, one path component)
and `{token}` is random, so a retried or concurrent insert never writes over another's
object. An object is complete when its **manifest** exists: `{path}.manifest.json`, written
last (after every byte of the object), holding its size, number of files and whether it is
a folder. A row references an object only after its manifest is written (staged insert,
see `staged.py`); an object without manifest or without row is unreferenced and store gc
(`store_gc`) removes it, manifest and all, once it is older than gc's `min_age`.

Fetch returns an `ObjectRef`: a handle that reads nothing until asked, and then only what is
read (`ref.zarr()` opens the array on an fsspec mapper, `ref.h5py()` an HDF5 file on an
fsspec file, `ref.open()` any file), never the whole object into memory.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import posixpath
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from .errors import DataJointError
from .stores import OBJECT_PREFIX, Store, get_store

MANIFEST = ".manifest.json"
#: the components of an object's root path: _object, schema, table, key, name
ROOT_DEPTH = 5
_KEY_MAX = 150  # bytes of the key component before it is shortened with a digest


def object_path(schema: str, table: str, key: Mapping[str, Any], attribute: str,
                ext: str = "", token: str | None = None) -> str:
    """The path (relative to the store's location) of a new object of `attribute`."""
    if ext and (not ext.startswith(".") or "/" in ext or "\\" in ext or ext in (".", "..")):
        raise DataJointError(f"{table}.{attribute}: extension {ext!r} must look like "
                             "'.zarr' or '.h5'")
    parts = ",".join(f"{quote(str(k), safe='')}={quote(_text(v), safe='')}"
                     for k, v in key.items()) or "_"
    if len(parts.encode()) > _KEY_MAX:
        parts = parts[:_KEY_MAX - 34] + "," + hashlib.md5(parts.encode()).hexdigest()
    token = token or uuid.uuid4().hex[:12]
    return "/".join([OBJECT_PREFIX, schema, table, parts, f"{attribute}_{token}{ext}"])


def _text(value: Any) -> str:
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    return str(value)


def object_root(relative: str) -> str | None:
    """The object root that the stored file `relative` belongs to (its manifest included),
    or None when it is not under `_object/`."""
    parts = relative.split("/")
    if parts[0] != OBJECT_PREFIX or len(parts) < ROOT_DEPTH:
        return None
    root = "/".join(parts[:ROOT_DEPTH])
    if len(parts) == ROOT_DEPTH and root.endswith(MANIFEST):
        root = root[:-len(MANIFEST)]
    return root


def is_object_root(relative: str) -> bool:
    return object_root(relative) == relative


def listing(store: Store, schema: str) -> dict[str, float | None]:
    """{object root: latest modification time of its files} of every object of `schema`
    in the store, complete or not (a killed writer leaves a partial one)."""
    roots: dict[str, float | None] = {}
    for path, modified in store.listing(f"{OBJECT_PREFIX}/{schema}").items():
        root = object_root(path)
        if root is None:
            continue
        previous = roots.get(root)
        roots[root] = modified if previous is None or modified is None \
            else max(previous, modified)
    return roots


def modified(store: Store, relative: str) -> float | None:
    """The latest modification time of the object's files now; None when it is gone."""
    times = [t for path, t in store.listing(relative).items()
             if object_root(path) == relative]
    manifest = store.modified(relative + MANIFEST)
    if manifest is not None:
        times.append(manifest)
    return max((t for t in times if t is not None), default=None)


def measure(store: Store, relative: str, where: str) -> dict[str, Any]:
    """{size, items, is_dir} of the object at `relative` as it is in the store now."""
    full = store.full(relative)
    store.fs.invalidate_cache(full)
    try:
        listing = store.fs.find(full, detail=True, withdirs=False)
    except FileNotFoundError:
        listing = {}
    files = {p: i for p, i in listing.items() if i.get("type", "file") == "file"}
    if not files:
        raise DataJointError(f"{where}: nothing was written to the object "
                             f"{store.url(relative)}; write through staged.store() or "
                             "staged.open() before the block ends")
    stripped = {store.fs._strip_protocol(p).rstrip("/") for p in files}
    is_dir = stripped != {store.fs._strip_protocol(full).rstrip("/")}
    return {"size": sum(int(i.get("size") or 0) for i in files.values()),
            "items": len(files), "is_dir": is_dir}


def complete(store: Store, relative: str, *, ext: str, where: str) -> dict[str, Any]:
    """Measure the object, write its manifest (last), and return the row's metadata."""
    facts = measure(store, relative, where)
    metadata = {"path": relative, "store": store.name, "ext": ext or None, **facts,
                "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat()}
    try:
        store.fs.pipe_file(store.full(relative + MANIFEST),
                           json.dumps(metadata, sort_keys=True).encode())
    except Exception as error:
        raise DataJointError(f"{where}: cannot write the manifest of "
                             f"{store.url(relative)}: {error}") from error
    return metadata


def writer(store: Store) -> Any:
    """The filesystem objects are written through: a local one creates parent folders
    as files are written (what Zarr expects); an object store has no folders to make."""
    if store.is_local:
        import fsspec

        return fsspec.filesystem("file", auto_mkdir=True)
    return store.fs


def remove(store: Store, relative: str) -> None:
    """Remove an object (file or folder) and its manifest; absent parts are fine."""
    for path in (relative + MANIFEST, relative):
        full = store.full(path)
        try:
            store.fs.invalidate_cache(full)
            if store.fs.exists(full):
                store.fs.rm(full, recursive=True)
        except FileNotFoundError:
            continue
    if store.is_local:  # the key's and table's folders, when they became empty
        parts = relative.split("/")
        for depth in range(ROOT_DEPTH - 1, 2, -1):
            try:
                os.rmdir(store.full("/".join(parts[:depth])))
            except OSError:
                break


def copy_in(store: Store, source: str, relative: str, where: str) -> None:
    """Copy a local file or folder into the store at `relative` (for a plain insert)."""
    if not os.path.exists(source):
        raise DataJointError(f"{where}: {source!r} is not an existing file or folder")
    full = store.full(relative)
    try:
        parent = posixpath.dirname(full)
        store.fs.makedirs(parent, exist_ok=True)
        if os.path.isdir(source):
            store.fs.put(source.rstrip("/") + "/", full, recursive=True)
        else:
            store.fs.put_file(source, full)
    except Exception as error:
        remove(store, relative)
        raise DataJointError(f"{where}: cannot copy {source!r} into store {store.name!r}: "
                             f"{error}") from error


@dataclass(frozen=True)
class ObjectRef:
    """A fetched `<object@store>` value: where the object is, and lazy ways to read it.

    Nothing is read when the handle is made. `zarr()`, `h5py()`, `open()` and `mapper()`
    first check the object's manifest (the object was completed and still is the size
    the row recorded), then read only what the caller reads.
    """

    store_name: str
    path: str
    size: int
    items: int
    is_dir: bool
    ext: str | None = None
    where: str = ""
    _checked: list[bool] = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any], where: str) -> ObjectRef:
        try:
            return cls(str(metadata["store"]), str(metadata["path"]), int(metadata["size"]),
                       int(metadata.get("items") or 1), bool(metadata.get("is_dir")),
                       metadata.get("ext"), where)
        except (KeyError, TypeError, ValueError) as error:
            raise DataJointError(f"{where}: the stored object reference is incomplete "
                                 f"({error})") from None

    @property
    def store(self) -> Store:
        return get_store(self.store_name, self.where)

    @property
    def fs(self) -> Any:
        """The fsspec filesystem of the store."""
        return self.store.fs

    @property
    def full_path(self) -> str:
        """The object's path in `fs`."""
        return self.store.full(self.path)

    @property
    def url(self) -> str:
        return self.store.url(self.path)

    def check(self) -> None:
        """Raise a DataJointError naming the attribute when the object's manifest is
        missing or disagrees with the row (object removed, replaced or never finished)."""
        if self._checked:
            return
        store = self.store
        try:
            manifest = json.loads(store.fs.cat_file(store.full(self.path + MANIFEST)))
        except FileNotFoundError:
            raise DataJointError(f"{self.where}: the object {self.url} of store "
                                 f"{self.store_name!r} is missing or incomplete "
                                 "(no manifest)") from None
        except Exception as error:
            raise DataJointError(f"{self.where}: cannot read the manifest of {self.url}: "
                                 f"{error}") from error
        if (manifest.get("size"), manifest.get("items")) != (self.size, self.items):
            raise DataJointError(f"{self.where}: the object {self.url} does not match its "
                                 f"row: manifest says {manifest.get('size')} bytes in "
                                 f"{manifest.get('items')} files, the row {self.size} in "
                                 f"{self.items}")
        self._checked.append(True)

    def _inside(self, name: str) -> str:
        if not name:
            return self.full_path
        if not self.is_dir:
            raise DataJointError(f"{self.where}: the object {self.url} is a file, not a "
                                 f"folder: open() it without a name")
        parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
        if not parts or ".." in parts:
            raise DataJointError(f"{self.where}: invalid name {name!r} inside {self.url}")
        return f"{self.full_path}/{'/'.join(parts)}"

    def mapper(self) -> Any:
        """An fsspec mapper of the folder (what `zarr.open` and xarray take)."""
        self.check()
        return self.fs.get_mapper(self.full_path, check=False, create=False)

    def open(self, name: str = "", mode: str = "rb") -> Any:
        """A file of the object (the object itself, or `name` inside a folder), opened for
        reading through fsspec: bytes come from the store as they are read."""
        if any(c in mode for c in "wax+"):
            raise DataJointError(f"{self.where}: a stored object is read-only (mode "
                                 f"{mode!r}); insert a new row to store a new object")
        self.check()
        return self.fs.open(self._inside(name), mode)

    def zarr(self, path: str | None = None) -> Any:
        """The Zarr array or group, read-only; chunks are read when indexed."""
        import zarr

        return zarr.open(self.mapper(), mode="r", path=path) if path else \
            zarr.open(self.mapper(), mode="r")

    def h5py(self, name: str = "") -> Any:
        """The HDF5 file, read-only; datasets are read when indexed."""
        import h5py

        return h5py.File(self.open(name), "r")

    def files(self) -> list[str]:
        """The object's files, relative to its root."""
        self.check()
        prefix = self.fs._strip_protocol(self.full_path).rstrip("/")
        return sorted(self.fs._strip_protocol(p)[len(prefix):].lstrip("/") or
                      posixpath.basename(prefix) for p in self.fs.find(self.full_path))

    def download(self, folder: str) -> str:
        """Copy the object into a local folder; the path of the copy."""
        self.check()
        target = os.path.join(folder, posixpath.basename(self.path))
        os.makedirs(folder, exist_ok=True)
        self.fs.get(self.full_path, target, recursive=self.is_dir)
        return target

    def __fspath__(self) -> str:
        """The local path of an object in a local store (for h5py.File(path) and such)."""
        if not self.store.is_local:
            raise DataJointError(f"{self.where}: {self.url} is not on a local filesystem; "
                                 "use .open(), .zarr() or .h5py()")
        self.check()
        return str(self.full_path)
