"""A three-table chain for the scale-out tests, imported by worker processes.

CLI workers and Dask workers import it by module path. With DJ_SCALE_SCHEMA and
DJ_SCALE_URL in the environment it activates itself (as a lab's pipeline module would);
otherwise the tests declare its classes into their own schema. Environment hooks:
DJ_SCALE_MARK (a folder: each make leaves a file `Table-source-pid` when it starts),
DJ_SCALE_BLOCK (`Table:source`: that make sleeps for ten minutes), DJ_SCALE_FAIL
(`Table:source`: that make raises).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import datajoint_sa as dj

schema = dj.Schema()


def _hooks(table: str, key: dict[str, Any]) -> None:
    mark = os.environ.get("DJ_SCALE_MARK")
    if mark:
        Path(mark, f"{table}-{key['source']}-{os.getpid()}").touch()
    if os.environ.get("DJ_SCALE_FAIL") == f"{table}:{key['source']}":
        raise ValueError(f"{table} refuses source {key['source']}")
    if os.environ.get("DJ_SCALE_BLOCK") == f"{table}:{key['source']}":
        time.sleep(600)


@schema
class Source(dj.Manual):
    definition = """
    source : int32
    """


@schema
class Stage1(dj.Computed):
    definition = """
    -> Source
    ---
    value : int64
    """

    def make(self, key: dict[str, Any]) -> None:
        _hooks("Stage1", key)
        self.insert1(dict(key, value=key["source"] * 10))


@schema
class Stage2(dj.Computed):
    definition = """
    -> Stage1
    ---
    value : int64
    """

    def make(self, key: dict[str, Any]) -> None:
        _hooks("Stage2", key)
        self.insert1(dict(key, value=(Stage1 & key).fetch1("value") + 1))


@schema
class Stage3(dj.Computed):
    definition = """
    -> Stage2
    ---
    value : int64
    """

    def make(self, key: dict[str, Any]) -> None:
        _hooks("Stage3", key)
        self.insert1(dict(key, value=(Stage2 & key).fetch1("value") + 1))


TABLES = (Source, Stage1, Stage2, Stage3)

if os.environ.get("DJ_SCALE_SCHEMA"):
    schema.activate(os.environ["DJ_SCALE_SCHEMA"],
                    connection=dj.Connection(os.environ["DJ_SCALE_URL"]))
