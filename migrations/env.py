"""Alembic environment of a datajoint_sa pipeline (see README in this directory).

The logic lives in the installed package (datajoint_sa.migrate.environment), so every
environment written from the template behaves the same and this file needs no edits.
"""

from datajoint_sa.migrate.environment import run_environment

run_environment()
