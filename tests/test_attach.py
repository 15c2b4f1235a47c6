"""Attachments: a file's name and content in the table; fetch writes it and returns the path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa

import datajoint_sa as dj
from datajoint_sa.codecs import write_download


def _declare(schema: dj.Schema) -> type[dj.Manual]:
    @schema
    class Document(dj.Manual):
        definition = """
        doc : int32
        ---
        file : attach
        extra = null : <attach>
        """

    return Document


def test_attach_round_trip(schema: dj.Schema, tmp_path: Path) -> None:
    Document = _declare(schema)
    source = tmp_path / "in" / "report ü.bin"
    source.parent.mkdir()
    content = bytes(range(256)) * 100 + b"\0tail"
    source.write_bytes(content)
    other = tmp_path / "in" / "notes.txt"
    other.write_text("first line\n")
    Document.insert([{"doc": 1, "file": source, "extra": str(other)},
                     {"doc": 2, "file": str(other)}])

    downloads = tmp_path / "out"
    rows = Document.fetch(as_dict=True, order_by="doc", download_path=downloads)
    assert rows[0]["file"] == str(downloads / "report ü.bin")
    assert Path(rows[0]["file"]).read_bytes() == content
    assert Path(rows[0]["extra"]).read_text() == "first line\n"
    assert rows[1]["extra"] is None
    assert Path(rows[1]["file"]).read_text() == "first line\n"
    # fetch1 and the attribute form reach the same download path
    path = (Document & {"doc": 1}).fetch1("file", download_path=downloads)
    assert Path(path).read_bytes() == content
    assert sorted(os.listdir(downloads)) == ["notes.txt", "report ü.bin"]
    assert Document.heading["file"].type == "<attach>"


def test_attach_layout_is_name_nul_content(schema: dj.Schema, tmp_path: Path) -> None:
    """DataJoint's layout in the database: file name, NUL, content (interoperable)."""
    Document = _declare(schema)
    source = tmp_path / "data.csv"
    source.write_bytes(b"a,b\n1,2\n")
    Document.insert1({"doc": 1, "file": source})
    raw = schema.connection.query(sa.select(Document._sa_table.c.file))[0][0]
    assert bytes(raw) == b"data.csv\0a,b\n1,2\n"


def test_download_path_setting(schema: dj.Schema, tmp_path: Path,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    Document = _declare(schema)
    source = tmp_path / "a.txt"
    source.write_text("x")
    Document.insert1({"doc": 1, "file": source})
    monkeypatch.setitem(dj.config, "download_path", str(tmp_path / "configured"))
    assert Document.fetch1("file") == str(tmp_path / "configured" / "a.txt")


def test_name_collision_never_overwrites(schema: dj.Schema, tmp_path: Path) -> None:
    Document = _declare(schema)
    first, second = tmp_path / "one" / "same.txt", tmp_path / "two" / "same.txt"
    for path, text in ((first, "one"), (second, "two")):
        path.parent.mkdir()
        path.write_text(text)
    Document.insert([{"doc": 1, "file": first}, {"doc": 2, "file": second}])
    downloads = tmp_path / "out"
    downloads.mkdir()
    (downloads / "same.txt").write_text("a file of the user")
    paths = Document.fetch("file", order_by="doc", download_path=downloads)
    assert (downloads / "same.txt").read_text() == "a file of the user"
    assert [Path(p).name for p in paths] == ["same_1.txt", "same_2.txt"]
    assert [Path(p).read_text() for p in paths] == ["one", "two"]
    # fetching again reuses the identical copies instead of writing more
    again = Document.fetch("file", order_by="doc", download_path=downloads)
    assert list(again) == list(paths)
    assert len(os.listdir(downloads)) == 3


def test_missing_file_names_table_and_attribute(schema: dj.Schema, tmp_path: Path) -> None:
    Document = _declare(schema)
    with pytest.raises(dj.DataJointError, match=r"Document.*file.*not an existing file"):
        Document.insert1({"doc": 1, "file": tmp_path / "absent.txt"})
    with pytest.raises(dj.DataJointError, match="file path"):
        Document.insert1({"doc": 1, "file": b"bytes are not a path"})
    assert len(Document) == 0


def test_hostile_stored_names_stay_in_the_download_folder(tmp_path: Path) -> None:
    path = write_download(str(tmp_path), "../../escape.txt", b"x", "T.a")
    assert path == str(tmp_path / "escape.txt")
    with pytest.raises(dj.DataJointError, match="invalid attachment file name"):
        write_download(str(tmp_path), "..", b"x", "T.a")
