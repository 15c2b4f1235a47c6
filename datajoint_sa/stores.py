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

Garbage collection: `schema.external["raw"].gc()` lists the objects under
`_hash/{schema}/`, subtracts every path referenced by a store column of any table (of
every schema of the database, since `INSERT ... SELECT` can copy a reference across
schemas) and deletes the rest. Objects modified within the last `min_age` seconds (default
one hour) are kept: an insert or a `make` in progress may have written one, or reused an
existing one (reuse refreshes its modification time), without having committed the row
yet. Pass `min_age=0` when nothing else is writing; `dry_run=True` only reports.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import posixpath
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import DataJointError

if TYPE_CHECKING:
    from .connection import Connection

HASH_PREFIX = "_hash"
#: the default of gc's min_age: objects younger than this (seconds) are kept
GC_MIN_AGE = 3600.0
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

    def put(self, schema: str, data: bytes, *, where: str = "") -> dict[str, Any]:
        """Store `data` once per content and schema; the metadata the row keeps."""
        digest = content_hash(data)
        relative = self.hash_path(schema, digest)
        full = self.full(relative)
        try:
            try:
                info = self.fs.info(full)
            except FileNotFoundError:
                info = None
            if info is not None and info.get("size") == len(data):
                self._refresh(full, data)
            else:  # absent, or damaged: (re)write it
                self._write(full, data)
        except DataJointError:
            raise
        except Exception as error:
            raise DataJointError(f"{where}: cannot write to store {self.name!r} "
                                 f"({self.url(relative)}): {error}") from error
        return {"hash": digest, "path": relative, "schema": schema, "store": self.name,
                "size": len(data)}

    def get(self, metadata: Mapping[str, Any], *, where: str = "") -> bytes:
        """The content of a stored object, checked against its size and hash."""
        relative = _relative(metadata["path"], where)
        try:
            data = self.fs.cat_file(self.full(relative))
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

    def _write(self, full: str, data: bytes) -> None:
        parent = posixpath.dirname(full)
        if parent:
            self.fs.makedirs(parent, exist_ok=True)
        if self.protocol in _ATOMIC_WRITES:
            self.fs.pipe_file(full, data)
            return
        temporary = f"{full}.{uuid.uuid4().hex}.part"
        self.fs.pipe_file(temporary, data)
        try:
            self.fs.mv(temporary, full)
        except BaseException:
            if self.fs.exists(temporary):
                self.fs.rm_file(temporary)
            raise

    def _refresh(self, full: str, data: bytes) -> None:
        """Renew the modification time of a reused object, so gc's min_age protects it
        until the row that references it is committed."""
        if self.is_local:
            os.utime(full)
            return
        try:
            self.fs.touch(full, truncate=False)
        except (NotImplementedError, ValueError, TypeError):
            self._write(full, data)

    # ---- filepath ---------------------------------------------------------------------
    def reference(self, value: str, *, where: str = "") -> dict[str, Any]:
        """The metadata of `filepath@store` for a path in (or staged for) the store."""
        relative, staged = self._filepath(value, where)
        full = self.full(relative)
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
            if self.is_local and _inside(local, self.root):
                relative = os.path.relpath(local, self.root)
                staged = None
            elif self.stage and _inside(local, self.stage):
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
        if relative == HASH_PREFIX or relative.startswith(HASH_PREFIX + "/"):
            raise DataJointError(f"{where}: {HASH_PREFIX}/ of store {self.name!r} is managed "
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
        full = self.full(relative)
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
        base = self.full(f"{HASH_PREFIX}/{schema}")
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


# ---------------------------------------------------------------------------- gc

def _store_columns(sa_conn: Any, backend: Any, schema: str) -> list[tuple[str, str]]:
    """(table, column) of every column of `schema` whose declared type names a store."""
    import sqlalchemy as sa

    from .heading import split_comment

    tables = backend.list_tables(sa_conn, schema)
    if not tables:
        return []
    comments: dict[str, dict[str, str]] = {}
    if backend.read_comments(sa_conn, schema, tables[0]) is not None:
        for table in tables:
            stored = backend.read_comments(sa_conn, schema, table)
            comments[table] = stored[1] if stored else {}
    else:
        sa_schema, _ = backend.table_identity(schema, tables[0])
        multi = sa.inspect(sa_conn).get_multi_columns(schema=sa_schema)
        for (_, table), columns in multi.items():
            comments[table] = {c["name"]: c.get("comment") or "" for c in columns}
    found = []
    for table, columns in comments.items():
        for column, comment in columns.items():
            declared, _ = split_comment(comment)
            if declared and "@" in declared:
                found.append((table, column))
    return found


def referenced_paths(connection: Connection, schemas: list[str]) -> set[str]:
    """Every store path referenced by a store column of the given schemas' tables.

    A schema or table dropped while it is read holds no references and is skipped; any
    other failure propagates (gc then removes nothing).
    """
    paths: set[str] = set()
    for schema in schemas:
        for attempt in range(3):
            try:
                paths |= _schema_paths(connection, schema)
                break
            except Exception:
                if not _exists(connection, schema):
                    break
                if attempt == 2:
                    raise
    return paths


def _exists(connection: Connection, schema: str) -> bool:
    with connection.session(write=False) as sa_conn:
        return bool(connection.backend_impl.schema_exists(sa_conn, schema))


def _schema_paths(connection: Connection, schema: str) -> set[str]:
    import sqlalchemy as sa

    backend = connection.backend_impl
    paths: set[str] = set()
    with connection.session(write=False) as sa_conn:
        columns = _store_columns(sa_conn, backend, schema)
    for table, column in columns:
        sa_schema, sa_name = backend.table_identity(schema, table)
        target = sa.table(sa_name, sa.column(column), schema=sa_schema)
        statement = sa.select(target.c[column]).where(target.c[column].is_not(None))
        try:
            with connection.session(write=False) as sa_conn:
                values = [value for (value,) in sa_conn.execute(statement)]
        except Exception:
            with connection.session(write=False) as sa_conn:
                if not sa.inspect(sa_conn).has_table(sa_name, schema=sa_schema):
                    continue  # dropped meanwhile
            raise
        for value in values:
            if isinstance(value, (bytes, bytearray, memoryview)):
                value = bytes(value).decode("utf-8", "replace")
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError:
                    continue
            if isinstance(value, dict) and isinstance(value.get("path"), str):
                paths.add(value["path"].replace("\\", "/").strip("/"))
    return paths


class ExternalStore:
    """A store as used by one schema: `schema.external[store]`."""

    def __init__(self, connection: Connection, schema: str, store: str) -> None:
        self.connection = connection
        self.schema = schema
        self.store_name = store

    def __repr__(self) -> str:
        return f"ExternalStore({self.store_name!r} of schema {self.schema!r})"

    @property
    def store(self) -> Store:
        return get_store(self.store_name, f"schema {self.schema!r}")

    def objects(self) -> dict[str, float | None]:
        """{path: modification time} of the schema's objects in the store."""
        return self.store.objects(self.schema)

    def references(self, *, across_schemas: bool = True) -> set[str]:
        """The store paths referenced by tables of this schema (and of every other schema
        of the database when `across_schemas`)."""
        schemas = [self.schema]
        if across_schemas:
            with self.connection.session(write=False) as sa_conn:
                names = self.connection.backend_impl.list_schemas(sa_conn)
            schemas += [s for s in names if s != self.schema]
        try:
            return referenced_paths(self.connection, schemas)
        except DataJointError:
            raise
        except Exception as error:
            raise DataJointError(
                f"gc of store {self.store_name!r}: cannot read the references of schema(s) "
                f"{', '.join(schemas)}: {error}. Nothing was removed"
                f"{'; across_schemas=False scans this schema only' if across_schemas else ''}"
            ) from error

    def unused(self, *, min_age: float = GC_MIN_AGE, across_schemas: bool = True
               ) -> tuple[list[str], list[str], int]:
        """(removable paths, unreferenced paths kept for being recent, referenced count)."""
        started = time.time()
        objects = self.objects()  # listed before the references are read: see gc
        referenced = self.references(across_schemas=across_schemas)
        removable, recent = [], []
        for path, modified in sorted(objects.items()):
            if path in referenced:
                continue
            if min_age > 0 and (modified is None or modified > started - min_age):
                recent.append(path)
            else:
                removable.append(path)
        return removable, recent, sum(1 for p in objects if p in referenced)

    def gc(self, *, dry_run: bool = False, min_age: float | datetime.timedelta = GC_MIN_AGE,
           across_schemas: bool = True) -> dict[str, Any]:
        """Remove the schema's objects in this store that no row references.

        Objects modified within the last `min_age` seconds are kept (an insert in progress
        may reference them before it commits); `min_age=0` removes every unreferenced
        object. Returns {"removed": [paths], "recent": [unreferenced paths kept],
        "referenced": count, "dry_run": bool}; with `dry_run` nothing is removed and
        "removed" lists what would be.
        """
        if isinstance(min_age, datetime.timedelta):
            min_age = min_age.total_seconds()
        removable, recent, referenced = self.unused(min_age=float(min_age),
                                                    across_schemas=across_schemas)
        removed = []
        store = self.store
        for path in removable:
            if not dry_run:
                try:
                    store.remove(path)
                except FileNotFoundError:
                    continue
                except Exception as error:
                    raise DataJointError(f"gc of store {self.store_name!r}: cannot remove "
                                         f"{store.url(path)}: {error}") from error
            removed.append(path)
        return {"removed": removed, "recent": recent, "referenced": referenced,
                "dry_run": dry_run}


class External(Mapping[str, ExternalStore]):
    """The configured stores as seen by one schema: `schema.external[name].gc()`."""

    def __init__(self, connection: Connection, schema: str) -> None:
        self.connection = connection
        self.schema = schema

    def __getitem__(self, store: str) -> ExternalStore:
        get_store(store, f"schema {self.schema!r}")  # configured and valid
        return ExternalStore(self.connection, self.schema, store)

    def __contains__(self, store: object) -> bool:
        from .settings import config

        return store in (config.get("stores") or {})

    def __iter__(self) -> Iterator[str]:
        from .settings import config

        return iter(dict(config.get("stores") or {}))

    def __len__(self) -> int:
        from .settings import config

        return len(config.get("stores") or {})

    def __repr__(self) -> str:
        return f"External(schema {self.schema!r}: {', '.join(self) or 'no stores'})"
