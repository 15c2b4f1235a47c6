"""The published Elements' tests run only where they are installed (the `compat` nox
session installs them with --no-deps from requirements.txt); elsewhere this directory is
not collected. `DJ_COMPAT_REQUIRED=1` (set by the nox session) turns a missing Element into
a failure instead."""

from __future__ import annotations

import importlib.util
import os

ELEMENTS = ("element_lab", "element_animal", "element_session", "element_event",
            "element_array_ephys", "element_calcium_imaging", "element_optogenetics",
            "element_interface")

_missing = [name for name in ELEMENTS if importlib.util.find_spec(name) is None]
if _missing and os.environ.get("DJ_COMPAT_REQUIRED") == "1":
    raise RuntimeError(f"DJ_COMPAT_REQUIRED=1 but these Elements are not installed: "
                       f"{', '.join(_missing)} (pip install --no-deps -r "
                       "tests/compat/requirements.txt)")
collect_ignore_glob = ["test_*.py"] if _missing else []
if not _missing and os.environ.get("PYTEST_XDIST_WORKER"):
    # the lab workflow's steps are ordered and share one assembled pipeline per backend:
    # split over xdist workers they would run out of order. `nox -s compat` runs it in one
    # process (`-p no:xdist`); a local `pytest -n 2` of the whole suite leaves it out.
    collect_ignore_glob.append("test_workflow.py")
