"""DataJoint 0.14's external stores, read in place.

0.14 kept an external attribute (`blob@store`, `attach@store`, `filepath@store`) as a
16-byte UUID in the row, with a foreign key to the hidden table `~external_<store>` of the
same schema; that table keeps, per UUID, the size and, for an attachment, its file name or,
for a filepath, the path relative to the store and the MD5 of its content. The UUID is the
MD5 of the packed blob, of the attachment's name + NUL + content, or of the relative path.
Blobs and attachments are files at `{location}/{schema}/{h[:2]}/{h[2:4]}/{h}` (the
attachment's name appended as `.{name}`; the folding is the store's `subfolding`, by
default (2, 2)); filepaths are files at `{location}/{relative path}`.

Reflection gives such a column one of the read-only codecs below (`<blob014@store>`, ...);
they read through the store configured in `dj.config['stores']` (fsspec, like ours) and
check what they read against the hashes kept in the database.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from typing import Any

import sqlalchemy as sa

from .codecs import BlobCodec, Codec, CodecContext, write_download
from .errors import DataJointError

EXTERNAL_PREFIX = "~external_"
#: 0.14's folding of hash-addressed files when the store does not set `subfolding`
DEFAULT_SUBFOLDING = (2, 2)
#: reflection maps a 0.14 marker (on a 16-byte column) to the codec that reads it
LEGACY_CODECS = {"blob": "blob014", "attach": "attach014", "filepath": "filepath014"}


def _where(context: CodecContext | None) -> str:
    return context.where if context is not None else "a 0.14 external value"


def _tracking_row(key: uuid.UUID, store: str, context: CodecContext | None) -> dict[str, Any]:
    """The `~external_<store>` row of `key` in the schema of the attribute."""
    where = _where(context)
    if context is None or context.connection is None or not context.schema:
        raise DataJointError(f"{where}: reading a DataJoint 0.14 external value needs the "
                             "table's schema and connection")
    connection = context.connection
    sa_schema, sa_name = connection.backend_impl.table_identity(
        context.schema, EXTERNAL_PREFIX + store)
    table = sa.table(sa_name, sa.column("hash"), sa.column("size"),
                     sa.column("attachment_name"), sa.column("filepath"),
                     sa.column("contents_hash"), schema=sa_schema)
    rows = connection.query(sa.select(table.c.size, table.c.attachment_name, table.c.filepath,
                                      table.c.contents_hash)
                            .where(table.c.hash == sa.literal(key.bytes, sa.LargeBinary)),
                            as_dict=True)
    if not len(rows):
        raise DataJointError(f"{where}: {key} is missing from {context.schema}."
                             f"{EXTERNAL_PREFIX}{store}")
    return dict(rows[0])


def _key(stored: Any, where: str) -> uuid.UUID:
    if isinstance(stored, uuid.UUID):
        return stored
    if isinstance(stored, (bytes, bytearray, memoryview)) and len(stored) == 16:
        return uuid.UUID(bytes=bytes(stored))
    raise DataJointError(f"{where}: not a DataJoint 0.14 external reference: {stored!r}")


def _as_uuid(value: Any) -> uuid.UUID | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(bytes=bytes(value))


def _read(store_name: str, relative: str, where: str) -> bytes:
    from .stores import get_store

    store = get_store(store_name, where)
    full = store.full(relative)
    try:
        with store.fs.open(full, "rb") as file:
            return bytes(file.read())
    except FileNotFoundError:
        raise DataJointError(f"{where}: the file {store.url(relative)} of store "
                             f"{store_name!r} is missing") from None
    except OSError as error:
        raise DataJointError(f"{where}: cannot read {store.url(relative)}: {error}") from error


def _hashed_path(store_name: str, schema: str, key: uuid.UUID, suffix: str = "") -> str:
    from .stores import get_store

    folding = get_store(store_name).subfolding or DEFAULT_SUBFOLDING
    folds, rest = [], key.hex
    for width in folding:
        folds.append(rest[:width].lower())
        rest = rest[width:]
    return "/".join([schema, *folds, key.hex + suffix])


def _check(content: bytes, expected: uuid.UUID, prefix: bytes, where: str, what: str) -> None:
    if uuid.UUID(bytes=hashlib.md5(prefix + content).digest()) != expected:
        raise DataJointError(f"{where}: {what} does not match the hash DataJoint 0.14 kept "
                             "for it (changed or corrupted)")


class _Legacy(Codec):
    """Read-only: a 0.14 external reference (a UUID) decoded through `~external_<store>`."""

    storage = "uuid"
    uses_store = True
    needs_store = True

    def encode(self, value: Any, *, key: dict[str, Any] | None = None,
               context: CodecContext | None = None) -> Any:
        kind = self.name.removesuffix("014")
        raise DataJointError(f"{_where(context)}: DataJoint 0.14 external attributes are read "
                             f"here, not written; declare new columns as <{kind}@{self.store}>")

    def _locate(self, stored: Any, context: CodecContext | None
                ) -> tuple[str, uuid.UUID, dict[str, Any]]:
        """(where, the reference, its `~external_<store>` row): what every decode starts from."""
        where = _where(context)
        ref = _key(stored, where)
        assert self.store is not None and context is not None
        return where, ref, _tracking_row(ref, self.store, context)


class Blob014Codec(_Legacy):
    """`blob@store` as DataJoint 0.14 kept it."""

    name = "blob014"

    def decode(self, stored: Any, *, key: dict[str, Any] | None = None,
               context: CodecContext | None = None) -> Any:
        where, ref, _ = self._locate(stored, context)
        assert self.store is not None and context is not None
        data = _read(self.store, _hashed_path(self.store, context.schema, ref), where)
        _check(data, ref, b"", where, "the stored blob")
        return BlobCodec().decode(data, context=context)


class Attach014Codec(_Legacy):
    """`attach@store` as DataJoint 0.14 kept it: fetch writes the file into the download
    path (as `<attach>` does) and returns its path."""

    name = "attach014"

    def decode(self, stored: Any, *, key: dict[str, Any] | None = None,
               context: CodecContext | None = None) -> Any:
        where, ref, row = self._locate(stored, context)
        assert self.store is not None and context is not None
        name = row["attachment_name"]
        if not name:
            raise DataJointError(f"{where}: {ref} in {EXTERNAL_PREFIX}{self.store} has no "
                                 "attachment name")
        data = _read(self.store, _hashed_path(self.store, context.schema, ref, "." + name),
                     where)
        _check(data, ref, name.encode() + b"\0", where, f"the attachment {name!r}")
        return write_download(context.downloads(), name, data, where)


class Filepath014Codec(_Legacy):
    """`filepath@store` as DataJoint 0.14 kept it: the file itself in a local store, else a
    copy in the store's `stage` folder (0.14's choice) or the download path, after
    checking its content against the MD5 kept in `~external_<store>`."""

    name = "filepath014"

    def decode(self, stored: Any, *, key: dict[str, Any] | None = None,
               context: CodecContext | None = None) -> Any:
        from .stores import _relative, get_store

        where, ref, row = self._locate(stored, context)
        assert self.store is not None and context is not None
        relative = _relative(row["filepath"] or "", where)
        store = get_store(self.store, where)
        data = _read(self.store, relative, where)
        expected = _as_uuid(row["contents_hash"])
        if expected is not None:
            _check(data, expected, b"", where, f"the file {store.url(relative)}")
        if store.is_local:
            return store.full(relative)
        folder = store.stage or context.downloads()
        target = os.path.join(folder, *relative.split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as file:
            file.write(data)
        return target
