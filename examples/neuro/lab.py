"""The lab's own schema: who was recorded, when, and on which rig.

Entered by people (Manual) or fixed reference lists (Lookup). Like the ephys element, the
schema is activated by the application (`pipeline.activate`), which picks its name.
"""

from __future__ import annotations

import datajoint_sa as dj

schema = dj.Schema()


@schema
class Species(dj.Lookup):
    definition = """
    species : varchar(32)
    ---
    common_name : varchar(64)
    """
    contents = [("Mus musculus", "house mouse"), ("Rattus norvegicus", "brown rat")]


@schema
class Rig(dj.Lookup):
    definition = """
    # recording set-ups
    rig : varchar(16)
    ---
    room : varchar(16)
    amplifier : varchar(64)
    """
    contents = [("rig-a", "B101", "Intan RHD2132"), ("rig-b", "B103", "Open Ephys Acquisition Board")]


@schema
class Subject(dj.Manual):
    definition = """
    # animals in the study
    subject : varchar(16)            # lab name of the animal
    ---
    -> Species
    sex : enum('F', 'M', 'U')
    date_of_birth : date
    genotype = "wild type" : varchar(64)
    """


@schema
class Session(dj.Manual):
    definition = """
    # one recording session of one subject
    -> Subject
    session : int16                  # session number for this subject
    ---
    session_date : date
    -> Rig
    experimenter : varchar(32)
    session_dir : varchar(255)       # the session's data, relative to the data root
    """
