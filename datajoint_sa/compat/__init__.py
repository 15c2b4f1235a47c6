"""The compatibility room: classic DataJoint names mapped onto datajoint_sa's core.

`install_as_datajoint()` registers these modules under the name `datajoint` (as PyMySQL's
`install_as_MySQLdb()` does for MySQLdb), so code written for classic DataJoint --
`import datajoint as dj`, `from datajoint.utils import to_camel_case` -- runs on
datajoint_sa unchanged. The core never imports this package: each name here is a thin
alias or adapter of one core feature, so the core keeps one way of doing each thing.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

#: the classic submodules pipelines import, each served by a module of this package
SUBMODULES = ("utils", "errors", "user_tables", "blob", "hash", "table", "expression",
              "schemas", "settings", "connection", "declare", "external",
              "attribute_adapter", "fetch", "heading", "diagram", "version", "jobs")


def install_as_datajoint() -> ModuleType:
    """Make `import datajoint` (and its classic submodules) resolve to datajoint_sa.

    Call it once, before the first `import datajoint` (e.g. in a conftest.py or at the top
    of a workflow script). Refuses to replace a real `datajoint` that is already imported.
    Returns the module now known as `datajoint`."""
    from ..errors import DataJointError

    api = importlib.import_module(f"{__name__}.api")
    current = sys.modules.get("datajoint")
    if current is not None and current is not api:
        raise DataJointError("A different `datajoint` package is already imported; call "
                             "install_as_datajoint() before anything imports datajoint")
    sys.modules["datajoint"] = api
    for name in SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        sys.modules[f"datajoint.{name}"] = module
        setattr(api, name, module)
    return api
