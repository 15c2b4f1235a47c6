"""A small lab pipeline, as it is now.

Version 1 (migration 0001) had `Subject.name : varchar(32)`, `sex : enum('F', 'M')` and no
rigs. Version 2 (migration 0002, written by `alembic revision --autogenerate` from this file)
renames `name` to `full_name` and widens it, allows sex 'U', adds the subject's weight and
an index, and records the rig of each session. See README.md in this directory.
"""

from __future__ import annotations

import datajoint_sa as dj

schema = dj.Schema("migration_lab")


@schema
class Rig(dj.Manual):
    definition = """
    # recording rigs
    rig : varchar(16)
    ---
    room = "" : varchar(32)
    """


@schema
class Subject(dj.Manual):
    definition = """
    # experimental animals
    subject_id : int32
    ---
    full_name : varchar(64)  # renamed from name
    sex : enum('F', 'M', 'U')
    weight = null : float32  # grams, at arrival
    index(full_name)
    """


@schema
class Session(dj.Manual):
    definition = """
    # recording sessions
    -> Subject
    session : int16
    ---
    session_date : date
    -> [nullable] Rig
    """
