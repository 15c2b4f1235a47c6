"""Stores under adversarial use: symbolic links out of the store, attachment names at the
filesystem's limit, objects damaged in place, and gc racing an insert that reuses an object.

The gc tests interleave deterministically: a hook runs the insert at the exact step of gc
(after it read the references; after it set an object aside).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

import datajoint_sa as dj
from datajoint_sa.stores import get_store

OLD = 1_000_000_000.0  # 2001: older than any min_age


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    location = tmp_path / "store"
    location.mkdir()
    monkeypatch.setitem(dj.config, "stores", {"ext": {"protocol": "file",
                                                      "location": str(location)}})
    yield location


def _recording(schema: dj.Schema) -> Any:
    @schema
    class Recording(dj.Manual):
        definition = """
        rec : int32
        ---
        signal : blob@ext
        """

    return Recording


def _stored_path(table: Any, column: str, store: Path) -> Path:
    meta = table.connection.query(sa.select(table._sa_table.c[column]))[0][0]
    return store / meta["path"]


# ------------------------------------------------------------------------ filepath symlinks

def test_filepath_refuses_paths_that_resolve_outside_the_store(
        schema: dj.Schema, store: Path, tmp_path: Path) -> None:
    @schema
    class Raw(dj.Manual):
        definition = """
        run : int32
        ---
        path : filepath@ext
        """

    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("not for the pipeline")
    (store / "link.txt").symlink_to(secret)
    (store / "linked_dir").symlink_to(secret.parent, target_is_directory=True)
    for value in ("link.txt", "linked_dir/secret.txt", str(store / "link.txt")):
        with pytest.raises(dj.DataJointError, match="resolves outside store"):
            Raw.insert1({"run": 1, "path": value})
    assert len(Raw) == 0
    # a file inside the store is fine, and a link that stays inside the store too
    (store / "data").mkdir()
    (store / "data" / "a.dat").write_text("in the store")
    (store / "inner.txt").symlink_to(store / "data" / "a.dat")
    Raw.insert([{"run": 1, "path": "data/a.dat"}, {"run": 2, "path": "inner.txt"}])
    assert len(Raw) == 2
    # swapped for a link out after the insert: fetch refuses to follow it
    (store / "data" / "a.dat").unlink()
    (store / "data" / "a.dat").symlink_to(secret)
    with pytest.raises(dj.DataJointError, match="resolves outside store"):
        (Raw & {"run": 1}).fetch1("path")


def test_staged_filepath_refuses_links_out_of_the_stage(
        schema: dj.Schema, store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stage = tmp_path / "stage"
    stage.mkdir()
    monkeypatch.setitem(dj.config, "stores", {"ext": {"protocol": "file", "location": str(store),
                                                      "stage": str(stage)}})

    @schema
    class Raw(dj.Manual):
        definition = """
        run : int32
        ---
        path : filepath@ext
        """

    secret = tmp_path / "secret.txt"
    secret.write_text("server secret")
    (stage / "copy.txt").symlink_to(secret)
    with pytest.raises(dj.DataJointError, match="resolves outside the stage"):
        Raw.insert1({"run": 1, "path": str(stage / "copy.txt")})
    assert not (store / "copy.txt").exists() and len(Raw) == 0


# ------------------------------------------------------------------------ attachment names

@pytest.mark.parametrize("where", ["table", "store"])
def test_attachment_names_up_to_the_filesystem_limit(
        schema: dj.Schema, store: Path, tmp_path: Path, where: str) -> None:
    @schema
    class Doc(dj.Manual):
        definition = f"""
        doc : int32
        ---
        file : {"<attach>" if where == "table" else "<attach@ext>"}
        """

    source = tmp_path / "source"
    source.mkdir()
    names = ["a" * 216 + ".txt", "b" * 251 + ".txt", "é" * 125 + ".txt"]  # 220, 255, 254 bytes
    assert [len(n.encode()) for n in names] == [220, 255, 254]
    for i, name in enumerate(names):
        (source / name).write_text(f"content {i}")
    Doc.insert([{"doc": i, "file": source / name} for i, name in enumerate(names)])
    downloads = tmp_path / "downloads"
    paths = Doc.fetch("file", order_by="doc", download_path=downloads)
    assert [Path(p).name for p in paths] == names
    assert [Path(p).read_text() for p in paths] == [f"content {i}" for i in range(3)]
    # a different file of the same name is already there: the numbered copy fits the limit
    for path in paths:
        Path(path).write_text("changed locally")
    again = Doc.fetch("file", order_by="doc", download_path=downloads)
    assert all(len(Path(p).name.encode()) <= 255 for p in again)
    assert [Path(p).read_text() for p in again] == [f"content {i}" for i in range(3)]
    assert len(set(again) | set(paths)) == 6


# ------------------------------------------------------------------------ corrupted objects

def test_reinserting_repairs_an_object_damaged_in_place(schema: dj.Schema, store: Path) -> None:
    Recording = _recording(schema)
    Recording.insert1({"rec": 1, "signal": np.arange(1000.0)})
    path = _stored_path(Recording, "signal", store)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, other bytes
    path.write_bytes(bytes(data))
    with pytest.raises(dj.DataJointError, match=r"signal.*corrupted.*hash"):
        Recording.fetch1("signal")
    Recording.insert1({"rec": 2, "signal": np.arange(1000.0)})  # the same content again
    for signal in Recording.fetch("signal"):
        np.testing.assert_array_equal(signal, np.arange(1000.0))


# ------------------------------------------------------------------------ gc vs inserts

def _aged(path: Path) -> None:
    os.utime(path, (OLD, OLD))


def test_gc_keeps_an_object_an_insert_reuses_after_gc_read_the_references(
        schema: dj.Schema, store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Recording = _recording(schema)
    Recording.insert1({"rec": 1, "signal": np.arange(50.0)})
    path = _stored_path(Recording, "signal", store)
    Recording.delete_quick()  # the object is now unreferenced, and old
    _aged(path)
    external = schema.external["ext"]
    original = type(external).references
    calls = []

    def references(self: Any, **kwargs: Any) -> set[str]:
        found = original(self, **kwargs)
        if not calls:  # gc has listed the object and found no row for it: insert one now
            Recording.insert1({"rec": 2, "signal": np.arange(50.0)})
        calls.append(found)
        return found

    monkeypatch.setattr(type(external), "references", references)
    report = external.gc(min_age=60)
    assert report["removed"] == [] and path.exists()
    np.testing.assert_array_equal(Recording.fetch1("signal"), np.arange(50.0))
    monkeypatch.setattr(type(external), "references", original)
    # once the row is gone again the object does go
    Recording.delete_quick()
    _aged(path)
    assert len(schema.external["ext"].gc(min_age=60)["removed"]) == 1 and not path.exists()


def test_gc_keeps_an_object_an_insert_reuses_while_gc_sets_it_aside(
        schema: dj.Schema, store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Recording = _recording(schema)
    Recording.insert1({"rec": 1, "signal": np.arange(60.0)})
    path = _stored_path(Recording, "signal", store)
    Recording.delete_quick()
    _aged(path)
    target = get_store("ext")
    original_move = type(target).move
    done = []

    def move(self: Any, relative: str, destination: str) -> None:
        original_move(self, relative, destination)
        if not done:  # right after gc moved the object aside: an insert wants it
            done.append(destination)
            Recording.insert1({"rec": 2, "signal": np.arange(60.0)})

    monkeypatch.setattr(type(target), "move", move)
    report = schema.external["ext"].gc(min_age=60)
    assert done and report["removed"] == [] and path.exists()
    np.testing.assert_array_equal(Recording.fetch1("signal"), np.arange(60.0))
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # nothing left aside
