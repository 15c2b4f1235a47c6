"""The reference implementation's side of the interoperability tests.

Run by DataJoint 2.3.5's own interpreter (`nox -s interop` builds that virtual environment);
never imported by datajoint_sa or by pytest. `python peer.py write|read PARAMS_JSON` declares
and fills a schema with DataJoint (write), or reads a schema that datajoint_sa declared and
adds one row to it (read); either way it prints one JSON document on its last stdout line.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import uuid
import warnings

warnings.filterwarnings("ignore")
TOKEN = uuid.UUID("12345678-1234-5678-1234-567812345678")


def connect(params: dict) -> object:
    import datajoint as dj

    dj.config["database.backend"] = params["backend"]
    dj.config["database.host"] = params["host"]
    dj.config["database.port"] = params["port"]
    dj.config["database.user"] = params["user"]
    dj.config["database.password"] = params["password"] or ""
    if params["backend"] == "postgresql":
        dj.config["database.name"] = params["database"]
    dj.config["safemode"] = False
    return dj


def plain(value: object) -> object:
    import numpy as np

    if isinstance(value, np.ndarray):
        return {"ndarray": value.tolist(), "dtype": str(value.dtype), "shape": list(value.shape)}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"bytes": bytes(value).hex()}
    if isinstance(value, uuid.UUID):
        return {"uuid": str(value)}
    if isinstance(value, (datetime.date, datetime.datetime)):
        return {"date": value.isoformat()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def write(params: dict) -> dict:
    """Declare and fill a schema the way a lab using DataJoint 2.3 would."""
    import numpy as np

    dj = connect(params)
    mysql = params["backend"] == "mysql"
    schema = dj.Schema(params["schema"])
    raw_type = "longblob" if mysql else "bytes"  # DataJoint 2.x: native longblob is raw bytes

    @schema
    class Subject(dj.Manual):
        definition = """
        # experimental subjects
        subject_id : int32           # subject id
        ---
        species = "mouse" : varchar(32)
        weight = null : float64
        born = null : date
        """

    @schema
    class Rig(dj.Lookup):
        definition = """
        rig : varchar(16)
        ---
        room : varchar(16)
        """
        contents = [("r1", "a"), ("r2", "b")]

    @schema
    class Session(dj.Manual):
        definition = f"""
        -> Subject
        session : int16             # session number
        ---
        -> Rig
        token = null : uuid
        info : json
        trace : <blob>
        raw : {raw_type}
        doc = null : <attach>
        started = CURRENT_TIMESTAMP : datetime
        """

        class Trial(dj.Part):
            definition = """
            -> master
            trial : int32
            ---
            value : float32
            """

    @schema
    class Stats(dj.Computed):
        definition = """
        -> Session
        ---
        mean : float64
        """

        def make(self, key):
            trace = (Session & key).fetch1("trace")
            self.insert1(dict(key, mean=float(np.mean(trace))))

    attachment = os.path.join(params["workdir"], "notes.txt")
    with open(attachment, "w") as f:
        f.write("hello from DataJoint")
    Subject.insert1(dict(subject_id=1, weight=20.5))
    Subject.insert1(dict(subject_id=2, species="rat"))
    trace = np.arange(12, dtype=np.float64).reshape(3, 4)
    # DataJoint 2.3.5 cannot insert a uuid on PostgreSQL (it binds bytes to a uuid column),
    # so there the token is written with plain SQL after the insert
    Session.insert1(dict(subject_id=1, session=1, rig="r1", info={"a": [1, 2], "b": None},
                         trace=trace, raw=b"raw\x00bytes", doc=attachment,
                         token=TOKEN if mysql else None))
    Session.insert1(dict(subject_id=2, session=1, rig="r2", info=[], trace=np.eye(2),
                         raw=b"", doc=None))
    if not mysql:
        dj.conn().query(f'UPDATE "{params["schema"]}"."session" SET token = %s::uuid '
                        "WHERE subject_id = 1 AND session = 1", args=(str(TOKEN),))
    Session.Trial.insert([dict(subject_id=1, session=1, trial=t, value=t * 0.5)
                          for t in range(3)])
    Stats.populate()
    return {"tables": sorted(schema.list_tables()) if hasattr(schema, "list_tables") else [],
            "token": str(TOKEN)}


def read(params: dict) -> dict:
    """Read a schema that datajoint_sa declared: headings, values, a join; add one row."""
    dj = connect(params)
    module = dj.VirtualModule("ours", params["schema"])
    found: dict = {"classes": sorted(n for n, v in vars(module).items()
                                     if isinstance(v, type) and issubclass(v, dj.Table))}
    download = os.path.join(params["workdir"], "peer_downloads")
    os.makedirs(download, exist_ok=True)
    tables = {}
    for name in found["classes"]:
        cls = getattr(module, name)
        for table in [cls, *[getattr(cls, p) for p in dir(cls)
                             if isinstance(getattr(cls, p, None), type)
                             and issubclass(getattr(cls, p), dj.Part)]]:
            heading = table().heading
            query = table()
            unreadable = []
            if params["backend"] == "postgresql":
                # DataJoint 2.3.5 on PostgreSQL cannot fetch uuid columns (it decodes the
                # text psycopg2 returns as 16 bytes) nor attachments (it calls .index on the
                # memoryview psycopg2 returns), not even in the schemas it made itself: those
                # columns are read with plain SQL and decoded here in DataJoint's layout
                unreadable = [a for a in heading.names if "uuid" in str(heading[a].type)
                              or "attach" in str(getattr(heading[a], "codec", None) or "")]
                query = query.proj(*[a for a in heading.secondary_attributes
                                     if a not in unreadable])
            with dj.config.override(download_path=download):
                rows = query.to_dicts()
            for attr in unreadable:
                values = dj.conn().query(
                    f'SELECT "{attr}" FROM "{params["schema"]}"."{table.table_name}" '
                    f'ORDER BY {", ".join(heading.primary_key)}').fetchall()
                for row, (value,) in zip(rows, values):
                    if value is None:
                        row[attr] = None
                    elif "uuid" in str(heading[attr].type):
                        row[attr] = uuid.UUID(str(value))
                    else:  # an attachment: file name, NUL, content
                        filename, _, content = bytes(value).partition(b"\0")
                        row[attr] = {"attachment": filename.decode(),
                                     "content": content.decode()}
            tables[table.__name__ if table is cls else f"{name}.{table.__name__}"] = {
                "table_name": table.table_name,
                "primary_key": list(heading.primary_key),
                "types": {a: str(heading[a].type) for a in heading.names},
                "codecs": {a: str(getattr(heading[a], "codec", None) or "") for a in
                           heading.names},
                "rows": [{k: plain(v) for k, v in sorted(r.items())} for r in rows],
                "read_with_sql": unreadable,
            }
    found["tables"] = tables
    try:
        join = (module.Session * module.Subject) & "weight > 10"
        found["semantic_join"] = True
    except dj.DataJointError:
        # DataJoint 2.3.5 on PostgreSQL refuses semantic joins in a schema without its own
        # `~lineage` table (on MySQL it only disables the check)
        join = module.Session.join(module.Subject, semantic_check=False) & "weight > 10"
        found["semantic_join"] = False
    found["join"] = sorted((r["subject_id"], r["session"])
                           for r in join.proj().to_dicts())
    for table in tables.values():
        for row in table["rows"]:
            for key, value in list(row.items()):
                if isinstance(value, str) and value.startswith(download) and os.path.isfile(value):
                    with open(value) as f:
                        row[key] = {"attachment": os.path.basename(value), "content": f.read()}
    # DataJoint writes into a table that datajoint_sa declared
    module.Subject.insert1(dict(subject_id=99, species="written by DataJoint", weight=1.0))
    return found


if __name__ == "__main__":
    action, params = sys.argv[1], json.loads(sys.argv[2])
    result = write(params) if action == "write" else read(params)
    print(json.dumps(result, default=str))
