"""<object@store>: Zarr arrays, HDF5 files and folders written by a staged insert straight into
a local folder or an S3 API server (moto, in its own process), fetched as lazy handles,
removed with their rows by gc; an aborted or killed insert leaves no row and gc collects
its object."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import zarr

import datajoint_sa as dj
from datajoint_sa import objects
from datajoint_sa.stores import get_store

from .s3_server import S3Server

ROOT = Path(__file__).resolve().parent.parent
DEFINITION = """
rec : int32
---
raw : <object@obj>
scan = null : <object@obj>
"""


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    server = S3Server()
    yield server
    server.stop()


@pytest.fixture(params=["file", "s3"])
def store_spec(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
               ) -> dict[str, Any]:
    """The store "obj" on a local folder or in the S3 server's bucket (own prefix)."""
    if request.param == "file":
        spec: dict[str, Any] = {"protocol": "file", "location": str(tmp_path / "store")}
    else:
        spec = request.getfixturevalue("s3").store_spec(uuid.uuid4().hex[:10])
    monkeypatch.setitem(dj.config, "stores", {"obj": spec})
    return spec


def _rec(schema: dj.Schema) -> Any:
    return schema(type("Rec", (dj.Manual,), {"definition": DEFINITION}))


def _files(schema: dj.Schema) -> list[str]:
    """Every file the schema has under _object/ in the store (manifests included)."""
    return sorted(get_store("obj").listing(f"{objects.OBJECT_PREFIX}/{schema.database}"))


def _write_zarr(staged: Any, rows: int = 40) -> np.ndarray:
    data = np.arange(rows * 8, dtype="f4").reshape(rows, 8)
    z = zarr.open(staged.store("raw", ".zarr"), mode="w", shape=data.shape, chunks=(10, 8),
                  dtype="f4")
    z[:] = data
    return data


def test_staged_insert_commits_zarr_and_hdf5(schema: dj.Schema, store_spec: dict[str, Any],
                                             tmp_path: Path) -> None:
    Rec = _rec(schema)
    with Rec.staged_insert1({"rec": 1}) as staged:
        data = _write_zarr(staged)
        assert len(Rec()) == 0  # nothing committed while the block runs
        with staged.open("scan", ".h5") as file, h5py.File(file, "w") as h5:
            h5["image"] = np.eye(6)
            h5["image"].attrs["unit"] = "V"

    row = (Rec & {"rec": 1}).fetch1()
    raw, scan = row["raw"], row["scan"]
    assert isinstance(raw, objects.ObjectRef) and raw.is_dir and raw.items == 5
    array = raw.zarr()
    assert array.shape == (40, 8) and array.read_only
    np.testing.assert_array_equal(array[13:17], data[13:17])
    with scan.h5py() as h5:
        np.testing.assert_array_equal(h5["image"][2], np.eye(6)[2])
        assert h5["image"].attrs["unit"] == "V"
    assert not scan.is_dir and scan.ext == ".h5"
    assert raw.path.startswith(f"_object/{schema.database}/Rec/rec=1/raw_")

    # the manifest was written, and agrees with the row; the object's files are listed
    manifest = json.loads(raw.fs.cat_file(raw.full_path + objects.MANIFEST))
    assert (manifest["size"], manifest["items"]) == (raw.size, raw.items)
    assert "zarr.json" in raw.files()

    # a plain insert copies a local folder (or file) in; the copy reads back the same
    folder = tmp_path / "session"
    (folder / "sub").mkdir(parents=True)
    (folder / "notes.txt").write_text("hello")
    (folder / "sub" / "a.bin").write_bytes(bytes(range(256)))
    Rec.insert1({"rec": 2, "raw": folder})
    copied = (Rec & {"rec": 2}).fetch1("raw")
    assert sorted(copied.files()) == ["notes.txt", "sub/a.bin"]
    with copied.open("sub/a.bin") as file:
        assert file.read() == bytes(range(256))
    assert copied.size == 5 + 256 and (Rec & {"rec": 2}).fetch1("scan") is None
    with pytest.raises(dj.DataJointError, match="read-only"):
        copied.open("notes.txt", "wb")


def test_aborted_staged_insert_leaves_no_row_and_no_object(
        schema: dj.Schema, store_spec: dict[str, Any]) -> None:
    Rec = _rec(schema)
    with pytest.raises(RuntimeError, match="camera unplugged"):
        with Rec.staged_insert1({"rec": 1}) as staged:
            _write_zarr(staged)
            file = staged.open("scan", ".h5")
            file.write(b"\x89HDF partial")
            raise RuntimeError("camera unplugged")
    assert len(Rec()) == 0 and _files(schema) == []

    # an insert that fails (duplicate key) removes its object, not the committed one
    with Rec.staged_insert1({"rec": 1}) as staged:
        _write_zarr(staged)
    kept = _files(schema)
    with pytest.raises(dj.errors.DuplicateError):
        with Rec.staged_insert1({"rec": 1}) as staged:
            _write_zarr(staged, rows=20)
    assert _files(schema) == kept and len(Rec()) == 1
    assert (Rec & {"rec": 1}).fetch1("raw").zarr().shape == (40, 8)


@pytest.mark.parametrize("store_spec", ["file"], indirect=True)  # refused before any store work
def test_bad_staged_inserts_are_refused_and_change_nothing(
        schema: dj.Schema, store_spec: dict[str, Any]) -> None:
    Rec = _rec(schema)
    with pytest.raises(dj.DataJointError, match=r"primary key \(rec\)"):
        with Rec.staged_insert1 as staged:
            staged.store("raw")
    with pytest.raises(dj.DataJointError, match=r"Rec.rec is not an <object@store>"):
        with Rec.staged_insert1({"rec": 1}) as staged:
            staged.store("rec")
    with pytest.raises(dj.DataJointError, match="nothing was written"):
        with Rec.staged_insert1({"rec": 1}) as staged:
            staged.store("raw", ".zarr")
    with pytest.raises(dj.DataJointError, match="extension"):
        with Rec.staged_insert1({"rec": 1}) as staged:
            staged.store("raw", "../x")
    # a row cannot be pointed at an object that was never completed, or another's path
    with pytest.raises(dj.DataJointError, match="Rec.raw"):
        Rec.insert1({"rec": 1, "raw": {"path": "_hash/x/y", "store": "obj", "size": 1}})
    assert len(Rec()) == 0 and _files(schema) == []

    # an object removed behind the table's back is reported on access, naming the column
    with Rec.staged_insert1({"rec": 3}) as staged:
        _write_zarr(staged)
    raw = (Rec & {"rec": 3}).fetch1("raw")
    objects.remove(get_store("obj"), raw.path)
    with pytest.raises(dj.DataJointError, match=r"rec\.raw.*missing or incomplete"):
        (Rec & {"rec": 3}).fetch1("raw").zarr()


def test_gc_removes_the_objects_of_deleted_rows(schema: dj.Schema,
                                                store_spec: dict[str, Any]) -> None:
    Rec = _rec(schema)
    for rec in (1, 2):
        with Rec.staged_insert1({"rec": rec}) as staged:
            _write_zarr(staged)
            with staged.open("scan", ".h5") as file:
                file.write(b"scan %d" % rec)
    gone = (Rec & {"rec": 1}).fetch1()
    kept = (Rec & {"rec": 2}).fetch1()
    (Rec & {"rec": 1}).delete_quick()
    external = schema.external["obj"]
    assert external.gc()["removed"] == []  # younger than min_age: kept for now
    result = external.gc(min_age=0)
    assert sorted(result["removed"]) == sorted([gone["raw"].path, gone["scan"].path])
    assert result["referenced"] == 2
    assert all(gone["raw"].path not in f and gone["scan"].path not in f for f in _files(schema))
    np.testing.assert_array_equal(kept["raw"].zarr()[0], np.arange(8, dtype="f4"))
    with kept["scan"].open() as file:
        assert file.read() == b"scan 2"


KILLED_WRITER = textwrap.dedent("""
    import json, sys, time
    import numpy as np, zarr
    import datajoint_sa as dj
    url, name, spec, definition = sys.argv[1:5]
    dj.config["stores"] = {"obj": json.loads(spec)}
    schema = dj.Schema(name, connection=dj.Connection(url))
    Rec = schema(type("Rec", (dj.Manual,), {"definition": definition}))
    with Rec.staged_insert1({"rec": 7}) as staged:
        z = zarr.open(staged.store("raw", ".zarr"), mode="w", shape=(1000,), chunks=(100,),
                      dtype="f8")
        z[:500] = 1.0
        print("written", flush=True)
        time.sleep(600)
""")


@pytest.mark.parametrize("store_spec", ["s3"], indirect=True)  # a real S3 API: the hard case
def test_killed_writer_leaves_no_row_and_gc_collects_its_object(
        schema: dj.Schema, store_spec: dict[str, Any], db_url: str) -> None:
    Rec = _rec(schema)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(
            [sys.executable, "-c", KILLED_WRITER, db_url, schema.database,
             json.dumps(store_spec), DEFINITION],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as writer:
        try:
            assert writer.stdout is not None
            line = writer.stdout.readline()
            assert line.strip() == "written", writer.stderr.read() if writer.stderr else line
        finally:
            writer.send_signal(signal.SIGKILL)
            writer.wait()
    assert len(Rec()) == 0
    partial = schema.external["obj"].objects()
    assert len(partial) == 1
    (root,) = partial
    assert not any(f.endswith(objects.MANIFEST) for f in _files(schema))  # never completed
    assert schema.external["obj"].gc()["recent"] == [root]  # a writer may still be at work
    assert schema.external["obj"].gc(min_age=0)["removed"] == [root]
    assert _files(schema) == []


LAZY_READER = textwrap.dedent("""
    import json, resource, sys
    import numpy as np, zarr
    import datajoint_sa as dj
    url, name, spec, definition = sys.argv[1:5]
    dj.config["stores"] = {"obj": json.loads(spec)}
    schema = dj.Schema(name, connection=dj.Connection(url))
    Rec = schema(type("Rec", (dj.Manual,), {"definition": definition}))
    ref = (Rec & {"rec": 1}).fetch1("raw")
    array = ref.zarr()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    total = 0.0
    for start in range(0, array.shape[0], array.chunks[0]):
        total += float(array[start:start + array.chunks[0]].sum())
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"grown": (after - before) * 1024, "total": total,
                      "nbytes": array.nbytes}))
""")


def test_fetch_reads_a_zarr_array_larger_than_the_memory_budget_lazily(
        schema: dj.Schema, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        db_url: str) -> None:
    """A 128 MiB array read chunk by chunk in a process whose peak RSS may grow by 32 MiB."""
    budget, rows, cols, chunk = 32 << 20, 4096, 4096, 128
    spec = {"protocol": "file", "location": str(tmp_path / "store")}
    monkeypatch.setitem(dj.config, "stores", {"obj": spec})
    Rec = _rec(schema)
    line = np.arange(cols, dtype="f8")
    with Rec.staged_insert1({"rec": 1}) as staged:
        z = zarr.open(staged.store("raw", ".zarr"), mode="w", shape=(rows, cols),
                      chunks=(chunk, cols), dtype="f8")
        for start in range(0, rows, chunk):  # compressible blocks: the store stays small
            z[start:start + chunk] = np.broadcast_to(line + start, (chunk, cols))
    assert z.nbytes >= 4 * budget
    result = subprocess.run(
        [sys.executable, "-c", LAZY_READER, db_url, schema.database, json.dumps(spec),
         DEFINITION], capture_output=True, text=True, env={**os.environ,
                                                          "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout)
    expected = sum(chunk * (line.sum() + cols * start) for start in range(0, rows, chunk))
    assert measured["total"] == pytest.approx(expected)
    assert measured["nbytes"] == rows * cols * 8
    assert measured["grown"] < budget, measured
