"""The university pipeline activated as schema `university` on `dj.config["database.url"]`,
for tools that take a module rather than a script:

    datajoint-sa diagram examples.university.activated -o university.svg
    alembic -x pipeline=examples.university.activated revision --autogenerate -m "..."
"""

from __future__ import annotations

from . import pipeline
from .pipeline import (  # noqa: F401  (the tables, for tools that look for them here)
    Course,
    Department,
    Enroll,
    Grade,
    LetterGrade,
    Section,
    Student,
    StudentMajor,
    Term,
)

schema = pipeline.activate("university")
