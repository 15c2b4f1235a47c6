"""`python -m examples.neuro [--url URL]`: a neuroscience pipeline from raw files to summary.

1. activate the lab's schema and the shared ephys element (two schemas, linked);
2. enter subjects and sessions, while a simulated rig writes each session's voltage file;
3. show the pipeline's diagram;
4. `dj.populate(...)`: import the recordings, detect spikes, compute unit statistics and
   summaries, every table in dependency order;
5. ask what was found, and compare it with the simulation's ground truth;
6. change a table's definition and migrate the database to it (Alembic under the hood).

`examples.neuro.activated` is the same pipeline activated under its default names, for
tools that take a module: `datajoint-sa populate examples.neuro.activated`,
`alembic -x pipeline=examples.neuro.activated revision --autogenerate -m "..."`.

The schemas are dropped and re-created on every run, so the run is repeatable.
"""

from __future__ import annotations

import argparse
import datetime
import time
from pathlib import Path

import numpy as np

import datajoint_sa as dj

from . import pipeline, simulate
from .pipeline import Session, Subject, ephys

EXPERIMENTERS = ["ana", "ben", "chen", "dara"]
GENOTYPES = ["wild type", "Pvalb-Cre", "Sst-Cre", "Vip-Cre"]


def enter_sessions(n_subjects: int, n_sessions: int, *, duration: float, seed: int,
                   data_root: Path) -> None:
    """What the lab does by hand: register animals and sessions. The rig writes the files."""
    rng = np.random.default_rng(seed)
    subjects, sessions = [], []
    for s in range(n_subjects):
        subject = f"M{s + 101:03d}" if s % 3 else f"R{s + 101:03d}"
        subjects.append({
            "subject": subject,
            "species": "Mus musculus" if s % 3 else "Rattus norvegicus",
            "sex": str(rng.choice(["F", "M"])),
            "date_of_birth": datetime.date(2023, 1, 1) + datetime.timedelta(
                days=int(rng.integers(0, 200))),
            "genotype": str(rng.choice(GENOTYPES))})
        first_day = datetime.date(2024, 3, 1) + datetime.timedelta(days=int(rng.integers(0, 60)))
        for session in range(1, n_sessions + 1):
            date = first_day + datetime.timedelta(days=7 * (session - 1))
            session_dir = f"{subject}/{date.isoformat()}"
            simulate.write_session(data_root / session_dir, seed=seed * 1000 + len(sessions),
                                   duration=duration)
            sessions.append({"subject": subject, "session": session, "session_date": date,
                             "rig": "rig-a" if session % 2 else "rig-b",
                             "experimenter": str(rng.choice(EXPERIMENTERS)),
                             "session_dir": session_dir})
    Subject.insert(subjects)
    Session.insert(sessions)
    print(f"Entered {len(subjects)} subjects and {len(sessions)} sessions; the rig wrote "
          f"{len(sessions)} recordings of {duration:g} s to {data_root}/")


def show_diagram(data_root: Path) -> None:
    diagram = dj.Diagram(pipeline.lab.schema) + dj.Diagram(ephys.schema)
    print("\nThe pipeline (Mermaid; paste into any Markdown viewer that renders it):")
    print(diagram.to_mermaid())
    try:
        path = diagram.save(data_root / "pipeline.svg")
        print(f"... and as a picture: {path}")
    except Exception as error:  # Graphviz's `dot` may be missing; the text above suffices
        print(f"(no SVG: {error})")


def report() -> None:
    """What the pipeline found, and how it compares with the simulated truth."""
    print("\nUnits per recording and parameter set (Summary joined with the lab's Session):")
    found = ephys.Summary * Session.proj("session_date", "rig")
    with dj.config.override(display__limit=8):
        print(repr(found.proj("session_date", "n_units", "n_good_units",
                              mean_rate="round(mean_rate, 1)")))
    print("\nDetected units against the simulation's ground truth (paramset 1):")
    for key in (ephys.SpikeDetection & {"paramset": 1}).fetch("KEY", order_by="KEY"):
        truth = pipeline.ground_truth(key)
        n_found = (ephys.SpikeDetection & key).fetch1("n_units")
        print(f"  {key['subject']} session {key['session']}: {n_found} units detected, "
              f"{len(truth)} neurons simulated")
    best = ephys.UnitStats.Unit & dj.Top(3, order_by="snr desc")
    print("\nThe three units with the best signal-to-noise ratio:")
    print(repr(best.proj("n_spikes", rate="round(firing_rate, 1)", snr="round(snr, 1)")))
    voltage = (ephys.Recording & ephys.Recording.fetch("KEY", limit=1)[0]).fetch1("voltage")
    print(f"\nA recording comes back as the numpy array it went in as: {voltage.dtype} "
          f"{voltage.shape}")


def change_schema() -> None:
    """The lab starts weighing each animal before a session: Session gets a new attribute.

    In a real lab you would edit the definition in lab.py and call `Session.alter()` (or
    let Alembic write a versioned migration: see docs/migrations.md); here the edit is made
    in place so the example stays one command."""
    print("\nA schema change: the lab now weighs each animal before a session.")
    Session.definition = Session.definition.replace(
        "    experimenter : varchar(32)\n",
        "    experimenter : varchar(32)\n"
        "    weight = null : float32          # body weight (g) before the session\n")
    Session.alter(prompt=False)  # Alembic compares the definition with the database
    first = Session.fetch("KEY", order_by="KEY", limit=1)[0]
    Session.update1({**first, "weight": 24.5})
    print("The existing rows are kept; the new attribute is NULL until it is filled in:")
    with dj.config.override(display__limit=3):
        print(repr(Session.proj("session_date", "weight")))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m examples.neuro", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="SQLAlchemy database URL (default: dj.config, "
                        "i.e. $DJ_DATABASE_URL or sqlite:///datajoint.db)")
    parser.add_argument("--prefix", default="neuro_",
                        help="schema name prefix: PREFIXlab, PREFIXephys (default: %(default)s)")
    parser.add_argument("--data-root", type=Path, default=pipeline.DATA_ROOT,
                        help="where the simulated rig writes its files (default: %(default)s)")
    parser.add_argument("--subjects", type=int, default=4, help="default: %(default)s")
    parser.add_argument("--sessions", type=int, default=2,
                        help="sessions per subject (default: %(default)s)")
    parser.add_argument("--duration", type=float, default=5.0,
                        help="seconds per recording (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=7, help="default: %(default)s")
    parser.add_argument("--drop", action="store_true", help="drop the schemas when done")
    args = parser.parse_args(argv)

    connection = dj.conn(args.url)
    print(f"Database: {connection.url.render_as_string(hide_password=True)}")
    existing = set(dj.list_schemas(connection))
    for name in (f"{args.prefix}ephys", f"{args.prefix}lab"):  # dependents first
        if name in existing:
            print(f"Dropping the previous schema {name!r}")
            dj.Schema(name, connection=connection).drop(force=True)

    lab_schema, ephys_schema = pipeline.activate(args.prefix, data_root=args.data_root,
                                                 connection=connection)
    print(f"Activated {lab_schema.database!r} ({len(lab_schema.list_tables())} tables) and "
          f"the ephys element as {ephys_schema.database!r} "
          f"({len(ephys_schema.list_tables())} tables)")

    enter_sessions(args.subjects, args.sessions, duration=args.duration, seed=args.seed,
                   data_root=args.data_root)
    show_diagram(args.data_root)

    print("\nPopulating every Imported and Computed table, in dependency order:")
    started = time.perf_counter()
    dj.populate(ephys)
    print(f"Done in {time.perf_counter() - started:.1f} s: "
          + ", ".join(f"{table.__name__} {len(table)}" for table in
                      (ephys.Recording, ephys.SpikeDetection, ephys.SpikeDetection.Unit,
                       ephys.UnitStats, ephys.Summary)))
    report()
    change_schema()

    if args.drop:
        ephys_schema.drop(force=True)
        lab_schema.drop(force=True)
        print(f"\nDropped schemas {ephys_schema.database!r} and {lab_schema.database!r}")


if __name__ == "__main__":
    main()
