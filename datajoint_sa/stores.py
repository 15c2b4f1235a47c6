"""External stores: content kept outside the database, in a local folder or any fsspec URL.

A store is configured by name::

    dj.config["stores"]["raw"] = {"protocol": "file", "location": "/data/raw"}
    dj.config["stores"]["cloud"] = {"protocol": "s3", "location": "bucket/prefix",
                                    "key": "...", "secret": "..."}   # fsspec options

Every key besides `protocol`, `location`, `subfolding` and `stage` is passed to
`fsspec.filesystem(protocol, ...)`; the reference implementation's S3 keys (`endpoint`,
`bucket`, `access_key`, `secret_key`, `secure`) are translated. A `location` may also be
a URL (`"memory://scratch"`) with no `protocol`.

Layout (DataJoint 2's, so its stores read back): `<blob@store>`, `<attach@store>` and
`<hash@store>` keep each distinct content once per schema at
`{location}/_hash/{schema}/{hash}` (with `subfolding: [2, 2]`: `_hash/{schema}/ab/cd/{hash}`),
where the hash is the MD5 digest of the content in lowercase base32 (26 characters). The
object is written completely (to a temporary name, then renamed) before the row that
references it is inserted, so a row never points to a missing or partial object; a failed
insert leaves at most an unreferenced object, which gc removes. The row keeps
`{"hash", "path", "schema", "store", "size"}` in a json column; fetch reads the object
at `path` and raises a DataJointError naming the table and attribute when it is missing,
or when its size or hash differ (corruption).

`filepath@store` references files the user placed in the store (see `FilepathCodec`);
they are never garbage collected.

Garbage collection of unreferenced objects lives in `store_gc` (`schema.external[name].gc()`).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import posixpath
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import DataJointError

HASH_PREFIX = "_hash"
#: where `<object@store>` objects live (see `objects`)
OBJECT_PREFIX = "_object"
_RESERVED = {"protocol", "location", "subfolding", "stage"}
#: fsspec protocols whose single write is atomic (object stores): no temporary name needed
_ATOMIC_WRITES = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "memory"}
_CHUNK = 1 << 22


def content_hash(data: bytes | memoryview) -> str:
    """The content address: MD5 in lowercase base32 without padding (26 characters)."""
    return _encode_digest(hashlib.md5(data).digest())


def _encode_digest(digest: bytes) -> str:
    return base64.b32encode(digest).decode("ascii").rstrip("=").lower()


def _relative(path: str, where: str) -> str:
    """A stored relative path, refused when it could leave the store's location."""
    text = path.replace("\\", "/")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if not parts or text.startswith("/") or ".." in parts:
        raise DataJointError(f"{where}: invalid store path {path!r}")
    return "/".join(parts)


def _fs_options(spec: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """(protocol, location, fsspec options) of a store's configuration."""
    location = str(spec.get("location", ""))
    protocol = spec.get("protocol")
    if not protocol and "://" in location:
        protocol, location = location.split("://", 1)
    protocol = str(protocol or "file")
    options = {k: v for k, v in spec.items() if k not in _RESERVED}
    if protocol in ("s3", "s3a") and "bucket" in options:  # the reference's S3 settings
        bucket = str(options.pop("bucket"))
        location = f"{bucket}/{location.strip('/')}".rstrip("/")
        if "access_key" in options:
            options["key"] = options.pop("access_key")
        if "secret_key" in options:
            options["secret"] = options.pop("secret_key")
        secure = options.pop("secure", True)
        endpoint = options.pop("endpoint", None)
        if endpoint:
            url = endpoint if "://" in str(endpoint) else \
                f"{'https' if secure else 'http'}://{endpoint}"
            options.setdefault("client_kwargs", {})["endpoint_url"] = url
    return protocol, location, options


@dataclass
class Store:
    """One configured store: an fsspec filesystem and a root path in it."""

    name: str
    protocol: str
    root: str
    fs: Any
    subfolding: tuple[int, ...] = ()
    stage: str | None = None

    @property
    def is_local(self) -> bool:
        return self.protocol in ("file", "local")

    def full(self, relative: str) -> str:
        return f"{self.root}/{relative}" if self.root else relative

    def confined(self, relative: str, where: str) -> str:
        """The full path of `relative`, refused when it resolves outside the store's root
        (a symbolic link anywhere on the way included): a row must not reach other files."""
        full = self.full(relative)
        if self.is_local:
            root = os.path.realpath(self.root)
            if not _inside(os.path.realpath(full), root):
                raise DataJointError(f"{where}: {relative!r} resolves outside store "
                                     f"{self.name!r} ({self.root}); refusing it")
        return full

    def url(self, relative: str) -> str:
        """The object's address for messages (never carries credentials)."""
        full = self.full(relative)
        return full if self.is_local else f"{self.protocol}://{full}"

    # ---- content-addressed objects --------------------------------------------------------
    def hash_path(self, schema: str, digest: str) -> str:
        folds, rest = [], digest
        for width in self.subfolding:
            folds.append(rest[:width])
            rest = rest[width:]
        return "/".join([HASH_PREFIX, schema, *folds, digest])

    def describe(self, schema: str, data: bytes) -> dict[str, Any]:
        """The metadata the row keeps for `data` (its address; nothing is written)."""
        digest = content_hash(data)
        return {"hash": digest, "path": self.hash_path(schema, digest), "schema": schema,
                "store": self.name, "size": len(data)}

    def put(self, schema: str, data: bytes, *, where: str = "",
            metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        """Store `data` once per content and schema; the metadata the row keeps
        (`metadata`: what `describe` returned for this data, not computed again)."""
        metadata = metadata or self.describe(schema, data)
        digest, relative = metadata["hash"], metadata["path"]
        full = self.full(relative)
        try:
            if not self.is_local or not self._reuse(full, digest, len(data)):
                self._write(full, data)  # absent or damaged; an object store always rewrites
        except DataJointError:
            raise
        except Exception as error:
            raise DataJointError(f"{where}: cannot write to store {self.name!r} "
                                 f"({self.url(relative)}): {error}") from error
        return metadata

    def get(self, metadata: Mapping[str, Any], *, where: str = "") -> bytes:
        """The content of a stored object, checked against its size and hash."""
        relative = _relative(metadata["path"], where)
        size = metadata.get("size")
        try:
            data = self.fs.cat_file(self.confined(relative, where), **self._read_options(size))
        except FileNotFoundError:
            raise DataJointError(f"{where}: the stored object {self.url(relative)} of store "
                                 f"{self.name!r} is missing") from None
        except Exception as error:
            raise DataJointError(f"{where}: cannot read {self.url(relative)} from store "
                                 f"{self.name!r}: {error}") from error
        size, digest = metadata.get("size"), metadata.get("hash")
        if size is not None and len(data) != size:
            raise DataJointError(f"{where}: the stored object {self.url(relative)} is "
                                 f"corrupted: {len(data)} bytes where {size} were stored")
        if digest is not None and content_hash(data) != digest:
            raise DataJointError(f"{where}: the stored object {self.url(relative)} is "
                                 f"corrupted: its content hash is {content_hash(data)}, "
                                 f"the table expects {digest}")
        return bytes(data)

    def _read_options(self, size: Any) -> dict[str, Any]:
        """s3fs asks for an object's size (one more request) to read a large one in
        concurrent ranges; an object known to be smaller than a block is read at once."""
        block = getattr(self.fs, "default_block_size", None)
        if (getattr(self.fs, "max_concurrency", 1) > 1 and isinstance(size, int)
                and isinstance(block, int) and size < block):
            return {"max_concurrency": 1}
        return {}

    def _write(self, full: str, data: bytes) -> None:
        if self.protocol in _ATOMIC_WRITES:  # no folders to make: one request
            self.fs.pipe_file(full, data)
            return
        parent = posixpath.dirname(full)
        if parent:
            self.fs.makedirs(parent, exist_ok=True)
        temporary = f"{full}.{uuid.uuid4().hex}.part"
        self.fs.pipe_file(temporary, data)
        try:
            self.fs.mv(temporary, full)
        except BaseException:
            if self.fs.exists(temporary):
                self.fs.rm_file(temporary)
            raise

    def _reuse(self, full: str, digest: str, size: int) -> bool:
        """Whether the object already in a local folder holds exactly this content; if so its
        modification time is renewed, so that gc (see store_gc) keeps it until the row that
        references it is committed. A damaged object (same size, other bytes) is not reused:
        the caller writes it again. On an object store a rewrite is one atomic request that
        both repairs and renews, so put always writes there."""
        try:
            if self._hash(full) != (digest, size):
                return False
            os.utime(full)
        except FileNotFoundError:  # never written, or set aside by gc meanwhile
            return False
        return True

    # ---- filepath ---------------------------------------------------------------------
    def reference(self, value: str, *, where: str = "") -> dict[str, Any]:
        """The metadata of `filepath@store` for a path in (or staged for) the store."""
        relative, staged = self._filepath(value, where)
        full = self.confined(relative, where)
        try:
            if staged is not None:
                digest, size = _local_hash(staged)
                if self.fs.exists(full):
                    if self._hash(full) != (digest, size):
                        raise DataJointError(
                            f"{where}: store {self.name!r} already holds a different file at "
                            f"{relative!r}; refusing to overwrite it")
                else:
                    parent = posixpath.dirname(full)
                    if parent:
                        self.fs.makedirs(parent, exist_ok=True)
                    self.fs.put_file(staged, full)
            elif not self.fs.isfile(full):
                raise DataJointError(f"{where}: {self.url(relative)} is not a file in store "
                                     f"{self.name!r}")
            digest, size = self._hash(full)
        except DataJointError:
            raise
        except Exception as error:
            raise DataJointError(f"{where}: cannot reach {self.url(relative)} in store "
                                 f"{self.name!r}: {error}") from error
        return {"path": relative, "store": self.name, "size": size, "hash": digest}

    def _filepath(self, value: str, where: str) -> tuple[str, str | None]:
        """(path relative to the location, local file to copy in or None)."""
        if os.path.isabs(value) or value.startswith("~"):
            local = os.path.abspath(os.path.expanduser(value))
            resolved, root = os.path.realpath(local), os.path.realpath(self.root)
            if self.is_local and (_inside(local, self.root) or _inside(resolved, root)):
                # where it resolves is checked by `confined`
                relative = os.path.relpath(local, self.root) if _inside(local, self.root) \
                    else os.path.relpath(resolved, root)
                staged = None
            elif self.stage and _inside(local, self.stage):
                if not _inside(os.path.realpath(local), os.path.realpath(self.stage)):
                    raise DataJointError(f"{where}: {value!r} resolves outside the stage "
                                         f"folder of store {self.name!r}; refusing it")
                relative, staged = os.path.relpath(local, self.stage), local
                if not os.path.isfile(local):
                    raise DataJointError(f"{where}: {local!r} is not a file")
            else:
                raise DataJointError(
                    f"{where}: {value!r} is outside store {self.name!r}: give a path relative "
                    f"to its location{' or inside its stage folder' if self.stage else ''}")
        else:
            relative, staged = value, None
        relative = _relative(relative, where)
        for managed in (HASH_PREFIX, OBJECT_PREFIX):
            if relative == managed or relative.startswith(managed + "/"):
                raise DataJointError(f"{where}: {managed}/ of store {self.name!r} is managed "
                                     "by datajoint_sa and cannot hold filepath files")
        return relative, staged

    def _hash(self, full: str) -> tuple[str, int]:
        digest = hashlib.md5()
        size = 0
        with self.fs.open(full, "rb") as file:
            while chunk := file.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        return _encode_digest(digest.digest()), size

    def local_copy(self, metadata: Mapping[str, Any], folder: str, *, where: str = "") -> str:
        """A local path of a `filepath@store` file, after checking its hash: the file itself
        in a local store, else a copy at `folder/{path}` (refreshed when it differs)."""
        relative = _relative(metadata["path"], where)
        full = self.confined(relative, where)
        expected = (metadata.get("hash"), metadata.get("size"))
        try:
            if self.is_local:
                if not os.path.isfile(full):
                    raise FileNotFoundError(full)
                target = full
            else:
                # the store's size is checked every time; a local copy whose hash matches
                # the row is reused instead of downloading the content again
                size = self.fs.info(full).get("size")
                if expected[1] is not None and size is not None and size != expected[1]:
                    raise DataJointError(
                        f"{where}: the file {self.url(relative)} has changed since it was "
                        f"inserted: {size} bytes, the table expects {expected[1]}")
                target = os.path.join(folder, *relative.split("/"))
                if not (os.path.isfile(target) and _local_hash(target) == expected):
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    temporary = f"{target}.{uuid.uuid4().hex}.part"
                    self.fs.get_file(full, temporary)
                    os.replace(temporary, target)
            actual = _local_hash(target)
        except FileNotFoundError:
            raise DataJointError(f"{where}: the file {self.url(relative)} of store "
                                 f"{self.name!r} is missing") from None
        except OSError as error:
            raise DataJointError(f"{where}: cannot read {self.url(relative)} from store "
                                 f"{self.name!r}: {error}") from error
        if expected[0] is not None and actual != expected:
            raise DataJointError(f"{where}: the file {self.url(relative)} has changed since it "
                                 f"was inserted: its content hash is {actual[0]} "
                                 f"({actual[1]} bytes), the table expects {expected[0]} "
                                 f"({expected[1]} bytes)")
        return target

    # ---- listing and removing ----------------------------------------------------------
    def objects(self, schema: str) -> dict[str, float | None]:
        """{path relative to the location: modification time (epoch seconds) or None} of
        every object under `_hash/{schema}/`."""
        return self.listing(f"{HASH_PREFIX}/{schema}")

    def listing(self, relative: str) -> dict[str, float | None]:
        """{path relative to the location: modification time} of every file under
        `relative`, read from the store now (not from fsspec's listing cache)."""
        base = self.full(relative)
        self.fs.invalidate_cache(base)
        try:
            found = self.fs.find(base, detail=True)
        except FileNotFoundError:
            return {}
        prefix = (self.root + "/") if self.root else ""
        result: dict[str, float | None] = {}
        for path, info in found.items():
            if info.get("type", "file") != "file":
                continue
            path = self.fs._strip_protocol(path)
            relative = path[len(prefix):] if path.startswith(prefix) else path
            result[relative] = _modified(self.fs, path, info)
        return result

    def remove(self, relative: str) -> None:
        self.fs.rm_file(self.full(_relative(relative, f"store {self.name!r}")))

    def exists(self, relative: str) -> bool:
        return bool(self.fs.exists(self.full(_relative(relative, f"store {self.name!r}"))))

    def move(self, relative: str, target: str) -> None:
        """Rename an object within the store (atomic on a local folder)."""
        where = f"store {self.name!r}"
        source, destination = self.full(_relative(relative, where)), \
            self.full(_relative(target, where))
        if self.is_local:
            os.rename(source, destination)
        else:
            self.fs.mv(source, destination)

    def modified(self, relative: str) -> float | None:
        """The object's modification time now (epoch seconds), None when it is gone."""
        full = self.full(_relative(relative, f"store {self.name!r}"))
        try:
            if self.is_local:
                return os.stat(full).st_mtime
            return _modified(self.fs, full, self.fs.info(full))
        except FileNotFoundError:
            return None


def _inside(path: str, folder: str) -> bool:
    folder = os.path.abspath(os.path.expanduser(folder))
    return os.path.commonpath([path, folder]) == folder and path != folder


def _local_hash(path: str) -> tuple[str, int]:
    digest = hashlib.md5()
    size = 0
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return _encode_digest(digest.digest()), size


def _modified(fs: Any, path: str, info: Mapping[str, Any]) -> float | None:
    for name in ("mtime", "LastModified", "last_modified", "updated", "modified", "created"):
        value = info.get(name)
        if value is None:
            continue
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, datetime.datetime):
            return (value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
                    ).timestamp()
        if isinstance(value, str):
            try:
                return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    try:
        when = fs.modified(path)
    except Exception:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=datetime.timezone.utc)).timestamp()


_CACHE: dict[tuple[str, str], Store] = {}


def get_store(name: str, where: str = "") -> Store:
    """The store `name` as configured now in `dj.config['stores']`."""
    from .settings import config

    stores = config.get("stores") or {}
    spec = stores.get(name) if isinstance(stores, Mapping) else None
    prefix = f"{where}: " if where else ""
    if spec is None:
        raise DataJointError(f"{prefix}store {name!r} is not configured: set "
                             f"dj.config['stores'][{name!r}] = {{'protocol': 'file', "
                             "'location': '/path/to/folder'}")
    if not isinstance(spec, Mapping) or not spec.get("location"):
        raise DataJointError(f"{prefix}store {name!r} needs a 'location' in "
                             "dj.config['stores']")
    token = json.dumps(spec, sort_keys=True, default=str)
    cached = _CACHE.get((name, token))
    if cached is not None:
        return cached
    protocol, location, options = _fs_options(spec)
    try:
        import fsspec

        fs = fsspec.filesystem(protocol, **options)
    except (ImportError, ValueError, TypeError) as error:
        raise DataJointError(f"{prefix}store {name!r}: cannot open protocol {protocol!r}: "
                             f"{error}") from error
    if protocol in ("file", "local"):
        root = os.path.abspath(os.path.expanduser(location))
    else:
        root = fs._strip_protocol(location).rstrip("/")
    subfolding = spec.get("subfolding") or ()
    if not all(isinstance(w, int) and w > 0 for w in subfolding):
        raise DataJointError(f"{prefix}store {name!r}: subfolding must be positive integers")
    stage = spec.get("stage")
    store = Store(name, protocol, root, fs, tuple(subfolding),
                  os.path.abspath(os.path.expanduser(stage)) if stage else None)
    if len(_CACHE) > 64:
        _CACHE.clear()
    _CACHE[(name, token)] = store
    return store
