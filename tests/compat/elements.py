"""The published DataJoint Elements assembled as a lab would: one linking module per
workflow, each Element activated with it (after `install_as_datajoint()`).

Four workflows cover every table module of the pinned Elements, because the variants of an
Element (ephys_acute / _chronic / _no_curation / _precluster, imaging / _no_curation /
_preprocess, session_with_datetime / _with_id) share helper modules (ephys_report,
imaging_report) that can be activated once per process: "lab" is the lab workflow the
workflow tests use; the others run in subprocesses (`python -m tests.compat.elements`).
"""

from __future__ import annotations

import importlib
import json
import sys
import types
from pathlib import Path
from typing import Any

import datajoint_sa

datajoint_sa.install_as_datajoint()

import datajoint as dj  # noqa: E402  (resolves to datajoint_sa.compat after the line above)

#: the table modules each workflow declares (and counts: a module is counted in one only)
WORKFLOWS: dict[str, list[str]] = {
    "lab": ["element_lab.lab", "element_lab.project", "element_animal.subject",
            "element_animal.genotyping", "element_animal.surgery",
            "element_session.session_with_datetime", "element_event.trial",
            "element_event.event", "element_array_ephys.probe",
            "element_array_ephys.ephys_acute", "element_array_ephys.ephys_report",
            "element_calcium_imaging.scan", "element_calcium_imaging.imaging",
            "element_calcium_imaging.imaging_report", "element_calcium_imaging.analysis",
            "element_optogenetics.optogenetics"],
    "by_id": ["element_session.session_with_id", "element_array_ephys.ephys_chronic",
              "element_calcium_imaging.imaging_no_curation"],
    "no_curation": ["element_array_ephys.ephys_no_curation",
                    "element_calcium_imaging.imaging_preprocess"],
    "precluster": ["element_array_ephys.ephys_precluster"],
}


def session_directory(key: dict[str, Any]) -> str:
    """A session's data directory, relative to the root, from the Element's own
    SessionDirectory table (as the published workflows look it up)."""
    session = sys.modules["element_session.session_with_datetime"]
    return (session.SessionDirectory & key).fetch1("session_dir")


def _paths(link: types.ModuleType, root: str) -> None:
    """The functions Elements look up in the linking module to find files."""
    link.get_ephys_root_data_dir = lambda: [root]
    link.get_imaging_root_data_dir = lambda: [root]
    link.get_experiment_root_data_dir = lambda: [root]
    link.get_processed_root_data_dir = lambda: root
    link.get_session_directory = session_directory
    # the scan's image files: the synthetic scan the workflow test writes under the root
    link.get_image_files = lambda key, pattern="*", *args: sorted(
        str(path) for path in Path(root).rglob(pattern))


def assemble(workflow: str, prefix: str, root: str = "/tmp") -> dict[str, Any]:
    """Activate the Elements of `workflow` under schema names starting with `prefix`;
    returns the modules by short name, with `link` the linking module."""
    link = types.ModuleType(f"{prefix}link")
    _paths(link, root)
    mods: dict[str, Any] = {"link": link}
    lab = importlib.import_module("element_lab.lab")
    subject = importlib.import_module("element_animal.subject")
    mods.update(lab=lab, subject=subject)
    if not lab.schema.is_activated():
        lab.activate(prefix + "lab")
    for name in ("Lab", "Source", "Protocol", "User", "Project", "Location", "Device"):
        setattr(link, name, getattr(lab, name))
    link.Experimenter = lab.User
    link.Equipment = lab.Device
    if not subject.schema.is_activated():
        subject.activate(prefix + "subject", linking_module=link)
    link.Subject = subject.Subject

    reference = dj.schema()

    @reference
    class SkullReference(dj.Lookup):
        definition = """
        skull_reference : varchar(60)
        """
        contents = zip(["Bregma", "Lambda"])

    reference.activate(prefix + "reference", add_objects={"SkullReference": SkullReference})
    link.SkullReference = SkullReference

    if workflow == "lab":
        project = importlib.import_module("element_lab.project")
        project.activate(prefix + "project", linking_module=link)
        session = importlib.import_module("element_session.session_with_datetime")
        session.activate(prefix + "session", linking_module=link)
        link.Session = session.Session
        surgery = importlib.import_module("element_animal.surgery")
        surgery.activate(prefix + "surgery", linking_module=link)
        link.Implantation = surgery.Implantation
        genotyping = importlib.import_module("element_animal.genotyping")
        genotyping.activate(prefix + "genotyping", linking_module=link)
        trial = importlib.import_module("element_event.trial")
        event = importlib.import_module("element_event.event")
        trial.activate(prefix + "trial", prefix + "event", linking_module=link)
        probe = importlib.import_module("element_array_ephys.probe")
        ephys = importlib.import_module("element_array_ephys.ephys_acute")
        ephys.activate(prefix + "ephys", prefix + "probe", linking_module=link)
        scan = importlib.import_module("element_calcium_imaging.scan")
        imaging = importlib.import_module("element_calcium_imaging.imaging")
        imaging.activate(prefix + "imaging", prefix + "scan", linking_module=link)
        link.session, link.trial, link.event = session, trial, event
        link.scan, link.imaging = scan, imaging
        analysis = importlib.import_module("element_calcium_imaging.analysis")
        analysis.activate(prefix + "analysis", linking_module=link)
        opto = importlib.import_module("element_optogenetics.optogenetics")
        opto.activate(prefix + "optogenetics", linking_module=link)
        mods.update(project=project, session=session, surgery=surgery, genotyping=genotyping,
                    trial=trial, event=event, probe=probe, ephys=ephys, scan=scan,
                    imaging=imaging, analysis=analysis, optogenetics=opto)
    elif workflow == "by_id":
        session = importlib.import_module("element_session.session_with_id")
        session.activate(prefix + "session", linking_module=link)
        link.Session = session.Session
        ephys = importlib.import_module("element_array_ephys.ephys_chronic")
        ephys.activate(prefix + "ephys", prefix + "probe", linking_module=link)
        imaging = importlib.import_module("element_calcium_imaging.imaging_no_curation")
        imaging.activate(prefix + "imaging", prefix + "scan", linking_module=link)
        mods.update(session=session, ephys=ephys, imaging=imaging)
    else:
        session = importlib.import_module("element_session.session_with_datetime")
        session.activate(prefix + "session", linking_module=link)
        link.Session = session.Session
        name = {"no_curation": "ephys_no_curation", "precluster": "ephys_precluster"}[workflow]
        ephys = importlib.import_module(f"element_array_ephys.{name}")
        ephys.activate(prefix + "ephys", prefix + "probe", linking_module=link)
        mods.update(session=session, ephys=ephys)
        if workflow == "no_curation":
            imaging = importlib.import_module("element_calcium_imaging.imaging_preprocess")
            imaging.activate(prefix + "imaging", prefix + "scan", linking_module=link)
            mods.update(imaging=imaging)
    return mods


def table_classes(module_name: str) -> list[type]:
    """The table classes (masters and their parts) an Element module defines."""
    module = sys.modules[module_name]
    found: list[type] = []
    for value in vars(module).values():
        if (isinstance(value, type) and issubclass(value, dj.Table)
                and value.__module__ == module_name and value.tier and value.tier != "part"):
            found.append(value)
            found.extend(v for v in vars(value).values()
                         if isinstance(v, type) and issubclass(v, dj.Part))
    return found


def declared_counts(workflow: str) -> dict[str, list[int]]:
    """Per module of `workflow`: [tables declared in the database, table classes]."""
    counts: dict[str, list[int]] = {}
    listed: dict[str, set[str]] = {}
    for module_name in WORKFLOWS[workflow]:
        classes = table_classes(module_name)
        declared = 0
        for cls in classes:
            schema = cls._schema
            if schema is None or cls._sa_table is None:
                continue
            if schema.database not in listed:
                listed[schema.database] = set(schema.list_tables())
            declared += cls.table_name in listed[schema.database]
        counts[module_name] = [declared, len(classes)]
    return counts


def drop_all(prefix: str) -> None:
    """Drop every schema this run created (names start with `prefix`): all their tables,
    children first, in one pass over one dependency graph, then the schemas."""
    from datajoint_sa.delete import drop_tables
    from datajoint_sa.dependencies import Dependencies

    connection = dj.conn()
    names = [n for n in dj.list_schemas(connection) if n.startswith(prefix)]
    graph = Dependencies.load(connection, names)
    drop_tables(connection, list(reversed(graph.topological())))
    backend = connection.backend_impl
    with connection.session(write=True) as sa_conn:
        for name in names:
            backend.drop_schema(sa_conn, name)


def main(argv: list[str]) -> None:
    """`python -m tests.compat.elements WORKFLOW URL PREFIX`: declare, print counts as JSON,
    drop what was created."""
    workflow, url, prefix = argv
    dj.config["database.url"] = url
    dj.config["safemode"] = False
    try:
        assemble(workflow, prefix)
        print(json.dumps(declared_counts(workflow)))
    finally:
        drop_all(prefix)


if __name__ == "__main__":
    main(sys.argv[1:])
