"""The reference implementation (DataJoint for Python) doing bench_data's work, as a peer.

Run by bench_data with the Python of a separate virtual environment that has `datajoint`
installed (never the project's own environment); it imports nothing of datajoint_sa and
prints one JSON object of timings: best-of-N seconds for inserting ROWS dicts and fetching
them to a DataFrame and to dicts.

usage: python peer_datajoint.py BACKEND HOST PORT USER PASSWORD ROWS REPEATS
"""

from __future__ import annotations

import gc
import json
import sys
import time
import uuid


def main() -> None:
    backend, host, port, user, password, rows_text, repeats_text = sys.argv[1:8]
    import datajoint as dj

    dj.config["database.backend"] = backend
    dj.config["database.host"] = host
    dj.config["database.port"] = int(port)
    dj.config["database.user"] = user
    dj.config["database.password"] = password
    dj.config["safemode"] = False
    rows, repeats = int(rows_text), int(repeats_text)
    schema = dj.Schema(f"bench_peer_{uuid.uuid4().hex[:8]}")

    @schema
    class Measurement(dj.Manual):
        definition = """
        id : int32
        ---
        x : float64
        label : varchar(40)
        k : int32
        """

    dicts = [{"id": i, "x": i * 0.5, "label": f"label{i}", "k": i % 7} for i in range(rows)]

    def best(fn, setup=None) -> float:
        result = float("inf")
        for _ in range(repeats):
            if setup is not None:
                setup()
            gc.collect()
            gc.disable()
            try:
                start = time.perf_counter()
                fn()
                result = min(result, time.perf_counter() - start)
            finally:
                gc.enable()
        return result

    try:
        timings = {
            "insert": best(lambda: Measurement.insert(dicts),
                           setup=lambda: Measurement.delete_quick()),
        }
        Measurement.delete_quick()
        Measurement.insert(dicts)
        timings["frame"] = best(lambda: Measurement.to_pandas())
        timings["dicts"] = best(lambda: Measurement.to_dicts())
        print(json.dumps({"version": dj.__version__, **timings}))
    finally:
        schema.drop(prompt=False) if "prompt" in schema.drop.__code__.co_varnames \
            else schema.drop(force=True)


if __name__ == "__main__":
    main()
