"""The reference implementation (DataJoint 2.3.5) doing one round of benchmarks/phases.py.

Run by phases.py with the Python of a separate virtual environment that has `datajoint`
installed (never the project's own environment); it imports nothing of datajoint_sa (only the shared pipeline text,
`phase_pipeline.py`, which imports neither library) and
prints one JSON object: seconds per phase, keys per second for populate.

usage: python peer_phases.py BACKEND HOST PORT USER PASSWORD SIZES_JSON
"""

from __future__ import annotations

import gc
import json
import sys
import time
import uuid

import phase_pipeline  # the same pipeline as ours (the script's folder is on sys.path)


def _timed(fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def main() -> None:
    backend, host, port, user, password, sizes_text = sys.argv[1:7]
    sizes = json.loads(sizes_text)
    import datajoint as dj
    import numpy as np

    dj.config["database.backend"] = backend
    dj.config["database.host"] = host
    dj.config["database.port"] = int(port)
    dj.config["database.user"] = user
    dj.config["database.password"] = password
    dj.config["safemode"] = False
    dj.conn()  # connected before timing, as the other sides are
    out = {}
    name = f"bench_peer_{uuid.uuid4().hex[:8]}"
    holder = {}

    def declare():  # type: ignore[no-untyped-def]
        schema = dj.Schema(name)
        holder.update(schema=schema, **phase_pipeline.declare(dj, schema))

    out["declare 6 tables"], _ = _timed(declare)
    t = holder
    try:
        rows = [{"id": i, "x": i * 0.5, "label": f"label{i}", "k": i % 7}
                for i in range(sizes["rows"])]
        gc.collect()
        out["insert rows (one call)"], _ = _timed(lambda: t["Measurement"].insert(rows))
        out["fetch -> DataFrame"], _ = _timed(lambda: t["Measurement"].to_pandas())
        out["fetch -> dicts"], _ = _timed(lambda: t["Measurement"].to_dicts())
        subjects, keys, sessions = sizes["subjects"], sizes["keys"], sizes["sessions"]
        t["Subject"].insert([dict(subject_id=i, name=f"subject {i}", weight=20.0 + i % 7,
                                  params=np.arange(8.0)) for i in range(subjects)])
        t["Session"].insert([dict(subject_id=i, session_idx=j, duration=30.0 + (i * j) % 50)
                             for i in range(subjects) for j in range(sessions)])
        join_subjects = sizes["join_rows"] // sessions
        out["1,000-row join+restrict+proj"], joined = _timed(lambda: (
            (t["Subject"] & f"subject_id < {join_subjects}") * t["Session"]
            & "weight >= 20").proj("name", "duration").to_dicts())
        assert len(joined) == sizes["join_rows"], len(joined)
        arrays = [np.random.default_rng(i).random(sizes["floats"])
                  for i in range(sizes["blobs"])]
        blob_rows = [dict(aid=i, data=a) for i, a in enumerate(arrays)]
        # one INSERT of every row would pass MySQL's max_allowed_packet (16 MiB by default;
        # the server drops the connection): the reference inserts 8 rows per call there, as
        # the raw driver path does
        step = 8 if backend == "mysql" else len(blob_rows)

        def blob_insert():  # type: ignore[no-untyped-def]
            for start in range(0, len(blob_rows), step):
                t["Arrays"].insert(blob_rows[start:start + step])

        out["blob insert, 1 MiB arrays"], _ = _timed(blob_insert)
        out["blob fetch"], _ = _timed(lambda: t["Arrays"].to_arrays("data"))
        out["delete blob rows"], _ = _timed(lambda: t["Arrays"].delete(prompt=False))
        result = t["Result"]
        restriction = f"subject_id < {keys}"
        for phase, reserve in (("populate (keys/s)", False),
                               ("populate with reserve_jobs (keys/s)", True)):
            result.populate(restriction, reserve_jobs=reserve, max_calls=1)
            seconds, _ = _timed(lambda r=reserve: result.populate(restriction, reserve_jobs=r))
            out[phase] = (keys - 1) / seconds
            result.delete(prompt=False)
        out["drop schema"], _ = _timed(lambda: t["schema"].drop(prompt=False))
        t.pop("schema")
    finally:
        if "schema" in t:
            t["schema"].drop(prompt=False)
    out["version"] = dj.__version__
    print(json.dumps(out))


if __name__ == "__main__":
    main()
