"""Schema evolution with Alembic: change a populated table without losing data.

- `target_metadata(module)` — the declared MetaData of a pipeline module's schemas, built
  without touching the database: Alembic's `target_metadata`.
- `T.alter()` / `schema.migrate()` (`alter_table`, `migrate_schema`) — plan, show, ask and
  apply through Alembic's operations; data-losing changes are refused unless forced.
- An Alembic environment template ships with the package (`TEMPLATE_DIR`):
  `datajoint-sa migrate init DIR --pipeline MODULE` (`init_environment`) writes one, and
  `cli(argv)` fronts the Alembic commands.

Renames are marked in the definition: `new_name : type  # ... renamed from old_name`; a
renamed table (class, or tier) by the class attribute `renamed_from = "OldName"`.
`convert_charset(schema)` / `op.dj_convert_charset(...)` convert a MySQL schema's character
set in place after checking that every value converts losslessly.
"""

from __future__ import annotations

from . import compare, operations, rename  # noqa: F401  (the plugin and op.dj_* operations)
from .charset import CharsetRefused, convert_charset
from .command import TEMPLATE_DIR, cli, init_environment, make_config
from .evolve import MigrationRefused, alter_table, migrate_schema
from .plan import MigrationFailed, apply, produce
from .review import Review, narrowing, steps
from .scope import RENAME_HINT, Scope
from .target import find_schemas, load_pipeline, planning, target_metadata

__all__ = [
    "CharsetRefused",
    "RENAME_HINT",
    "TEMPLATE_DIR",
    "MigrationFailed",
    "MigrationRefused",
    "Review",
    "Scope",
    "alter_table",
    "apply",
    "cli",
    "convert_charset",
    "find_schemas",
    "init_environment",
    "load_pipeline",
    "make_config",
    "migrate_schema",
    "narrowing",
    "planning",
    "produce",
    "steps",
    "target_metadata",
]
