"""The benchmark's pipeline, written once for any DataJoint-style module `dj`.

`phases.py` declares it with datajoint_sa and `peer_phases.py` with the reference
implementation in its own virtual environment, so both sides time exactly the same tables
and the same `make`. It imports neither library: the caller passes its `dj`.
"""

from __future__ import annotations

from typing import Any


def declare(dj: Any, schema: Any) -> dict[str, Any]:
    """Declare the six tables (five classes and a part) in `schema`; return the classes."""

    @schema
    class Subject(dj.Manual):
        definition = """
        subject_id : int32
        ---
        name : varchar(40)
        weight : float64
        params : <blob>
        """

    @schema
    class Session(dj.Manual):
        definition = """
        -> Subject
        session_idx : int16
        ---
        duration : float64
        """

    @schema
    class Measurement(dj.Manual):
        definition = """
        id : int32
        ---
        x : float64
        label : varchar(40)
        k : int32
        """

    @schema
    class Arrays(dj.Manual):
        definition = """
        aid : int32
        ---
        data : <blob>
        """

    @schema
    class Result(dj.Computed):
        definition = """
        -> Subject
        ---
        v : float64
        """

        class Part(dj.Part):
            definition = """
            -> master
            i : int16
            ---
            w : float64
            """

        def make(self, key: dict[str, Any]) -> None:
            params = (Subject & key).fetch1("params")
            self.insert1(dict(key, v=float(params.sum())))
            self.Part.insert([dict(key, i=i, w=float(i)) for i in range(4)])

    return {"Subject": Subject, "Session": Session, "Measurement": Measurement,
            "Arrays": Arrays, "Result": Result}
