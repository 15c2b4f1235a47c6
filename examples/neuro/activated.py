"""The neuroscience pipeline activated under its default names (`neuro_lab`, `neuro_ephys`)
on `dj.config["database.url"]`, for tools that take a module rather than a script:

    datajoint-sa populate examples.neuro.activated --reserve-jobs
    datajoint-sa diagram examples.neuro.activated -o pipeline.svg
    alembic -x pipeline=examples.neuro.activated revision --autogenerate -m "add weight"

`$NEURO_DATA_ROOT` says where the recording files are (default: `datajoint_sa-neuro` in the system temporary folder).
"""

from __future__ import annotations

import os

from . import pipeline
from .pipeline import Rig, Session, Species, Subject, ephys, lab

__all__ = ["Rig", "Session", "Species", "Subject", "ephys", "lab", "lab_schema",
           "ephys_schema"]

lab_schema, ephys_schema = pipeline.activate(
    "neuro_", data_root=os.environ.get("NEURO_DATA_ROOT", str(pipeline.DATA_ROOT)))
