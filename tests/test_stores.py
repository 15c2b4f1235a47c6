"""External stores: <blob@store>, <attach@store>, filepath@store on a local folder and on an
fsspec protocol (memory://), content-addressed, verified on fetch, garbage collected."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pytest
import sqlalchemy as sa

import datajoint_sa as dj
from datajoint_sa.stores import _fs_options, content_hash, get_store


@pytest.fixture(params=["file", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A store named "ext" on a local folder or in fsspec's memory filesystem;
    dj.config['stores'] is restored afterwards."""
    if request.param == "file":
        spec: dict[str, Any] = {"protocol": "file", "location": str(tmp_path / "store")}
    else:
        spec = {"protocol": "memory", "location": f"/djtest-{uuid.uuid4().hex}"}
    monkeypatch.setitem(dj.config, "stores", {"ext": spec})
    yield request.param
    if request.param == "memory":
        fs = fsspec.filesystem("memory")
        if fs.exists(spec["location"]):
            fs.rm(spec["location"], recursive=True)


def _declare(schema: dj.Schema) -> type[dj.Manual]:
    @schema
    class Recording(dj.Manual):
        definition = """
        rec : int32
        ---
        signal : blob@ext
        doc = null : <attach@ext>
        """

    return Recording


def _objects(schema: dj.Schema) -> dict[str, Any]:
    return schema.external["ext"].objects()


def test_blob_and_attach_in_a_store(schema: dj.Schema, store: str, tmp_path: Path) -> None:
    Recording = _declare(schema)
    signal = np.random.default_rng(1).normal(size=(100, 3))
    doc = tmp_path / "notes.md"
    doc.write_text("# notes\n")
    Recording.insert([{"rec": 1, "signal": signal, "doc": doc},
                      {"rec": 2, "signal": signal},  # the same content: stored once
                      {"rec": 3, "signal": {"a": [1, 2], "b": "text"}}])
    rows = Recording.fetch(as_dict=True, order_by="rec", download_path=tmp_path / "dl")
    np.testing.assert_array_equal(rows[0]["signal"], signal)
    np.testing.assert_array_equal(rows[1]["signal"], signal)
    assert rows[2]["signal"] == {"a": [1, 2], "b": "text"}
    assert Path(rows[0]["doc"]).read_text() == "# notes\n"
    assert rows[1]["doc"] is None
    assert Recording.heading["signal"].type == "<blob@ext>"

    # one column of json metadata: hash, path, store, size; objects at _hash/{schema}/{hash}
    raw = schema.connection.query(sa.select(Recording._sa_table.c.signal).order_by("rec"))
    meta = raw[0][0]
    assert set(meta) >= {"hash", "path", "store", "size"}
    assert meta["path"] == f"_hash/{schema.database}/{meta['hash']}"
    assert meta["store"] == "ext" and len(meta["hash"]) == 26
    assert raw[1][0]["path"] == meta["path"]
    objects = _objects(schema)
    assert len(objects) == 3  # two blobs (one shared) and one attachment
    data = get_store("ext").fs.cat_file(get_store("ext").full(meta["path"]))
    assert len(data) == meta["size"] and content_hash(data) == meta["hash"]


def test_corrupted_object_fails_loudly(schema: dj.Schema, store: str) -> None:
    Recording = _declare(schema)
    Recording.insert1({"rec": 1, "signal": np.arange(1000.0)})
    meta = schema.connection.query(sa.select(Recording._sa_table.c.signal))[0][0]
    target = get_store("ext")
    full = target.full(meta["path"])
    data = bytearray(target.fs.cat_file(full))
    data[-1] ^= 0xFF  # same size, different content
    target.fs.pipe_file(full, bytes(data))
    with pytest.raises(dj.DataJointError, match=r"recording.*signal.*corrupted.*hash"):
        Recording.fetch1("signal")
    target.fs.pipe_file(full, bytes(data[:-10]))
    with pytest.raises(dj.DataJointError, match=r"recording.*signal.*corrupted"):
        Recording.fetch1()
    target.fs.rm_file(full)
    with pytest.raises(dj.DataJointError, match=r"recording.*signal.*missing"):
        Recording.fetch(as_dict=True)
    # inserting the same content again repairs the object
    Recording.insert1({"rec": 2, "signal": np.arange(1000.0)})
    np.testing.assert_array_equal(Recording.fetch("signal")[0], np.arange(1000.0))


def test_gc_removes_only_unreferenced_objects(schema: dj.Schema, store: str) -> None:
    Recording = _declare(schema)
    Recording.insert([{"rec": i, "signal": np.full(10, i % 2)} for i in range(4)])
    Recording.insert1({"rec": 9, "signal": "only this row"})
    external = schema.external["ext"]
    assert len(_objects(schema)) == 3
    assert external.gc(min_age=0) == {"removed": [], "recent": [], "referenced": 3,
                                      "dry_run": False}

    (Recording & {"rec": 9}).delete_quick()
    (Recording & {"rec": 0}).delete_quick()  # rec 2 still holds the same content
    report = external.gc(min_age=0, dry_run=True)
    assert len(report["removed"]) == 1 and report["dry_run"]
    assert len(_objects(schema)) == 3  # a dry run removes nothing
    # recent objects are kept by default: an insert in progress may be about to use them
    assert external.gc()["recent"] == report["removed"]
    assert len(_objects(schema)) == 3
    assert external.gc(min_age=0)["removed"] == report["removed"]
    assert len(_objects(schema)) == 2
    assert sorted(Recording.fetch("rec")) == [1, 2, 3]
    assert [int(s[0]) for s in Recording.fetch("signal", order_by="rec")] == [1, 0, 1]

    Recording.delete_quick()
    assert len(external.gc(min_age=0)["removed"]) == 2
    assert _objects(schema) == {}


def test_gc_sees_references_from_other_schemas(make_schema: Any, store: str) -> None:
    """INSERT ... SELECT (or a copied json value) can reference another schema's object."""
    first, second = make_schema(), make_schema()
    Recording = _declare(first)

    @second
    class Copy(dj.Manual):
        definition = """
        rec : int32
        ---
        signal : blob@ext
        """

    Recording.insert1({"rec": 1, "signal": [1, 2, 3]})
    meta = first.connection.query(sa.select(Recording._sa_table.c.signal))[0][0]
    with first.connection.session(write=True) as sa_conn:
        sa_conn.execute(sa.insert(Copy._sa_table).values(rec=1, signal=meta))
    Recording.delete_quick()
    assert first.external["ext"].gc(min_age=0)["removed"] == []
    assert Copy.fetch1("signal") == [1, 2, 3]
    assert first.external["ext"].gc(min_age=0, across_schemas=False)["removed"] == [
        meta["path"]]


def test_failed_insert_leaves_no_row(schema: dj.Schema, store: str) -> None:
    """The object is written first, then the row: a failing insert leaves no row and an
    unreferenced object that gc removes."""
    Recording = _declare(schema)
    Recording.insert1({"rec": 1, "signal": "kept"})
    with pytest.raises(dj.errors.DuplicateError):
        Recording.insert([{"rec": 2, "signal": "lost"}, {"rec": 1, "signal": "kept"}])
    assert list(Recording.fetch("rec")) == [1]
    assert len(_objects(schema)) == 2
    assert len(schema.external["ext"].gc(min_age=0)["removed"]) == 1
    assert Recording.fetch1("signal") == "kept"


def test_filepath(schema: dj.Schema, store: str, tmp_path: Path,
                  monkeypatch: pytest.MonkeyPatch) -> None:
    spec = dict(dj.config["stores"]["ext"])
    spec["stage"] = str(tmp_path / "stage")
    monkeypatch.setitem(dj.config, "stores", {"ext": spec})
    target = get_store("ext")
    target.fs.makedirs(target.full("raw/day1"), exist_ok=True)
    target.fs.pipe_file(target.full("raw/day1/a.dat"), b"in the store already")
    staged = tmp_path / "stage" / "raw" / "day2" / "b.dat"
    staged.parent.mkdir(parents=True)
    staged.write_bytes(b"copied into the store")

    @schema
    class Raw(dj.Manual):
        definition = """
        run : int32
        ---
        path : filepath@ext
        """

    Raw.insert([{"run": 1, "path": "raw/day1/a.dat"}, {"run": 2, "path": staged}])
    assert target.fs.cat_file(target.full("raw/day2/b.dat")) == b"copied into the store"
    downloads = tmp_path / "dl"
    paths = Raw.fetch("path", order_by="run", download_path=downloads)
    assert [Path(p).read_bytes() for p in paths] == [b"in the store already",
                                                    b"copied into the store"]
    if store == "file":  # a local store hands out its own files
        assert paths[0] == os.path.join(spec["location"], "raw", "day1", "a.dat")
    else:  # a remote one a copy under the download path, keeping the layout
        assert paths[0] == str(downloads / "raw" / "day1" / "a.dat")
    meta = schema.connection.query(sa.select(Raw._sa_table.c.path).order_by("run"))[0][0]
    assert meta["path"] == "raw/day1/a.dat" and meta["size"] == 20
    assert meta["hash"] == content_hash(b"in the store already")

    # gc never touches filepath files
    Raw.delete_quick()
    schema.external["ext"].gc(min_age=0)
    assert target.fs.exists(target.full("raw/day1/a.dat"))

    Raw.insert1({"run": 3, "path": "raw/day1/a.dat"})
    target.fs.pipe_file(target.full("raw/day1/a.dat"), b"changed after the insert")
    with pytest.raises(dj.DataJointError, match=r"raw.*path.*changed since it was inserted"):
        Raw.fetch1("path", download_path=downloads)
    target.fs.rm_file(target.full("raw/day1/a.dat"))
    with pytest.raises(dj.DataJointError, match=r"raw.*path.*missing"):
        Raw.fetch1("path", download_path=downloads)


def test_filepath_refuses_paths_outside_the_store(schema: dj.Schema, store: str,
                                                  tmp_path: Path) -> None:
    @schema
    class Raw(dj.Manual):
        definition = """
        run : int32
        ---
        path : filepath@ext
        """

    outside = tmp_path / "elsewhere.dat"
    outside.write_bytes(b"x")
    with pytest.raises(dj.DataJointError, match=r"Raw.*path.*outside store 'ext'"):
        Raw.insert1({"run": 1, "path": outside})
    with pytest.raises(dj.DataJointError, match="invalid store path"):
        Raw.insert1({"run": 1, "path": "../escape.dat"})
    with pytest.raises(dj.DataJointError, match="_hash/"):
        Raw.insert1({"run": 1, "path": "_hash/x"})
    with pytest.raises(dj.DataJointError, match="not a file in store"):
        Raw.insert1({"run": 1, "path": "no/such/file.dat"})
    assert len(Raw) == 0


def test_unconfigured_store(schema: dj.Schema, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(dj.config, "stores", {})

    @schema
    class Later(dj.Manual):
        definition = """
        id : int32
        ---
        x : <blob@nowhere>
        """

    with pytest.raises(dj.DataJointError, match=r"Later.*x.*store 'nowhere' is not configured"):
        Later.insert1({"id": 1, "x": 1})
    with pytest.raises(dj.DataJointError, match="not configured"):
        schema.external["nowhere"]
    assert "nowhere" not in schema.external and list(schema.external) == []
    assert len(Later) == 0


def test_subfolding(schema: dj.Schema, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(dj.config, "stores", {"ext": {
        "protocol": "file", "location": str(tmp_path / "folded"), "subfolding": [2, 2]}})
    Recording = _declare(schema)
    Recording.insert1({"rec": 1, "signal": [1, 2]})
    meta = schema.connection.query(sa.select(Recording._sa_table.c.signal))[0][0]
    digest = meta["hash"]
    assert meta["path"] == f"_hash/{schema.database}/{digest[:2]}/{digest[2:4]}/{digest}"
    assert (tmp_path / "folded" / meta["path"]).is_file()
    assert Recording.fetch1("signal") == [1, 2]
    Recording.delete_quick()
    assert schema.external["ext"].gc(min_age=0)["removed"] == [meta["path"]]


def test_store_settings() -> None:
    """Locations as URLs, fsspec options passed on, the reference's S3 keys translated."""
    assert _fs_options({"location": "memory://bucket/x"}) == ("memory", "bucket/x", {})
    assert _fs_options({"protocol": "file", "location": "/a", "auto_mkdir": True}) == (
        "file", "/a", {"auto_mkdir": True})
    protocol, location, options = _fs_options({
        "protocol": "s3", "endpoint": "minio:9000", "bucket": "lab", "location": "/raw/",
        "access_key": "AK", "secret_key": "SK", "secure": False})
    assert (protocol, location) == ("s3", "lab/raw")
    assert options == {"key": "AK", "secret": "SK",
                       "client_kwargs": {"endpoint_url": "http://minio:9000"}}
