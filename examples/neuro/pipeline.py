"""The lab's workflow: its own `lab` schema plus the shared ephys element, linked together.

This module is the element's *linking module*: it names the upstream table the element
hangs off (`Session`) and tells it where each session's files are
(`get_session_directory`). `activate()` binds both schemas to a database:

    from examples.neuro import pipeline
    pipeline.activate(prefix="neuro_", data_root="/data/ephys")
    dj.populate(pipeline.ephys)                   # every Imported/Computed table, in order
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import datajoint_sa as dj

from . import element_ephys as ephys
from . import lab
from .lab import Rig, Session, Species, Subject

__all__ = ["Rig", "Session", "Species", "Subject", "activate", "ephys", "lab"]

DATA_ROOT = Path(tempfile.gettempdir()) / "datajoint_sa-neuro"  # never the work tree


def get_session_directory(key: dict[str, Any]) -> Path:
    """Where the acquisition system wrote a session's files."""
    return DATA_ROOT / (Session & key).fetch1("session_dir")


def ground_truth(key: dict[str, Any]) -> list[dict[str, Any]]:
    """The simulated neurons of a session (only simulated data has a ground truth)."""
    return json.loads((get_session_directory(key) / "ground_truth.json").read_text())


def activate(prefix: str = "neuro_", *, data_root: str | Path | None = None,
             connection: dj.Connection | None = None) -> tuple[dj.Schema, dj.Schema]:
    """Bind `<prefix>lab` and `<prefix>ephys` to the database (default: dj.conn())."""
    global DATA_ROOT
    if data_root is not None:
        DATA_ROOT = Path(data_root)
    lab.schema.activate(f"{prefix}lab", connection=connection)
    ephys.activate(f"{prefix}ephys", linking_module=sys.modules[__name__],
                   connection=connection)
    return lab.schema, ephys.schema
