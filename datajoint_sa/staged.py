"""Staged insert: write large objects straight into their store, then commit the row.

    with Recording.staged_insert1({"rec": 1}) as staged:      # or: staged.rec.update(key)
        z = zarr.open(staged.store("raw", ".zarr"), mode="w", shape=(n, 64), chunks=(4096, 64))
        z[:] = ...                                             # chunks go to the store now
        with staged.open("scan", ".h5") as f, h5py.File(f, "w") as h5:
            h5["image"] = ...

On a clean exit every object written is measured, its manifest is written (last: the
object is complete), and the row is inserted referencing it. When the block raises, or the
insert fails, the objects are removed and no row is inserted. When the process is killed
in the middle, nothing removes the partial object, but no row references it and it has no
manifest: store gc removes it (see `store_gc`; gc keeps objects younger than its `min_age`,
so that an insert still writing is left alone).
"""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING, Any

from . import objects
from .errors import DataJointError
from .stores import Store, get_store

if TYPE_CHECKING:
    from .table import Table


class StagedInsert:
    """The handle of one staged insert: `rec` (the row's values), `store()` and `open()`
    (where objects are written). Made by `Table.staged_insert1`; see the module docstring."""

    def __init__(self, table: Table) -> None:
        self._table = table
        self.rec: dict[str, Any] = {}
        #: attribute -> (store, path, ext) of the objects written so far
        self._staged: dict[str, tuple[Store, str, str]] = {}
        #: (file, local spool or None, store, path) of the files opened by open()
        self._files: list[tuple[Any, str | None, Store, str]] = []
        self._entered = False

    def __call__(self, key: Any = None, **values: Any) -> StagedInsert:
        """`Table.staged_insert1(key)`: start with the row's key (and other values)."""
        if key is not None:
            self.rec.update(dict(key))
        self.rec.update(values)
        return self

    @property
    def _where(self) -> str:
        return type(self._table).__name__

    def _target(self, attribute: str, ext: str) -> tuple[Store, str]:
        """(store, path) of `attribute`'s object, chosen on first use."""
        if attribute in self._staged:
            store, path, first_ext = self._staged[attribute]
            if ext and ext != first_ext:
                raise DataJointError(f"{self._where}.{attribute}: already staged with "
                                     f"extension {first_ext!r}")
            return store, path
        if not self._entered:
            raise DataJointError(f"{self._where}: use staged_insert1 in a `with` block")
        heading = self._table.heading
        if attribute not in heading.names:
            raise DataJointError(f"{self._where}: no attribute {attribute!r}")
        codec = heading[attribute].codec
        if codec is None or codec.name != "object":
            raise DataJointError(f"{self._where}.{attribute} is not an <object@store> "
                                 f"attribute (it is {heading[attribute].type})")
        missing = [k for k in self._table.primary_key if k not in self.rec]
        if missing:
            raise DataJointError(f"{self._where}: set the primary key ({', '.join(missing)}) "
                                 f"in staged.rec before writing {attribute!r}")
        where = f"{self._where}.{attribute}"
        store = get_store(codec.store, where)
        key = {k: self.rec[k] for k in self._table.primary_key}
        path = objects.object_path(self._table.database, self._where, key, attribute, ext)
        self._staged[attribute] = (store, path, ext)
        return store, path

    def store(self, attribute: str, ext: str = "") -> Any:
        """An fsspec mapper for a folder object (what `zarr.open` and xarray write to)."""
        store, path = self._target(attribute, ext)
        fs = objects.writer(store)
        return fs.get_mapper(store.full(path), create=True)

    def open(self, attribute: str, ext: str = "", mode: str = "wb") -> Any:
        """A file object for a single-file object (h5py.File takes it): the file itself in
        a local store; for an object store, a local spool file uploaded when the block
        ends (HDF5 writes at random offsets, which an object store cannot take)."""
        if "w" not in mode and "a" not in mode:
            raise DataJointError(f"{self._where}.{attribute}: staged files are opened for "
                                 f"writing, not {mode!r}")
        store, path = self._target(attribute, ext)
        if store.is_local:
            file = objects.writer(store).open(store.full(path), mode)
            self._files.append((file, None, store, path))
            return file
        # an object store takes no random-access writes (HDF5 seeks back to its header):
        # the file is spooled locally and uploaded when the block ends
        handle, spool = tempfile.mkstemp(prefix="dj-staged-", suffix=ext)
        file = os.fdopen(handle, mode)
        self._files.append((file, spool, store, path))
        return file

    def path(self, attribute: str, ext: str = "") -> str:
        """The object's path in the store's fsspec filesystem (for writers that take a
        path and the filesystem, e.g. `fs.put(local_folder, staged.path("raw"))`)."""
        store, path = self._target(attribute, ext)
        return store.full(path)

    @property
    def fs(self) -> Any:
        """The fsspec filesystem of the first object staged (for `path()` writers)."""
        if not self._staged:
            raise DataJointError(f"{self._where}: stage an object (store/open/path) first")
        return objects.writer(next(iter(self._staged.values()))[0])

    # ---- the block ----------------------------------------------------------------------
    def __enter__(self) -> StagedInsert:
        if self._entered:
            raise DataJointError(f"{self._where}: a staged insert is entered once")
        self._entered = True
        return self

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        if kind is not None:
            self._abort()
            return
        try:
            self._close_files()
            for attribute, (store, path, ext) in self._staged.items():
                self.rec[attribute] = objects.complete(
                    store, path, ext=ext, where=f"{self._where}.{attribute}")
            self._table.insert1(self.rec)
        except BaseException:
            self._abort()
            raise

    def _close_files(self, discard: bool = False) -> None:
        """Close the files opened by `open()`; upload the spooled ones (unless discarded)."""
        files, self._files = self._files, []
        try:
            for file, spool, store, path in files:
                if not file.closed:
                    file.close()
                if spool is not None and not discard:
                    store.fs.put_file(spool, store.full(path))
        finally:
            for _, spool, _, _ in files:
                if spool is not None and os.path.exists(spool):
                    os.remove(spool)

    def _abort(self) -> None:
        """Remove every object of this insert (best effort: what remains is gc's)."""
        try:
            self._close_files(discard=True)
        except Exception:
            pass
        for store, path, _ in self._staged.values():
            try:
                objects.remove(store, path)
            except Exception:
                pass
