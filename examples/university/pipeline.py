"""The university schema: who studies what, when, and how well.

The module declares its tables on a schema that is not yet bound to a database
(`dj.Schema()` with no name). The application binds it with `activate()`, choosing the
database and the schema name; until then the classes wait. This keeps the module importable
anywhere (tests, notebooks, Alembic) and lets one definition serve many databases.

    from examples.university import pipeline
    pipeline.activate("university")          # uses dj.config["database.url"]
    pipeline.Student & {"home_state": "TX"}

The design follows the classic DataJoint university tutorial:

    Department ─┬─> Course ──┐
                │            ├─> Section ──┐
    Term ───────┼────────────┘             ├─> Enroll ──> Grade <── LetterGrade
                │                          │
    Student ────┼─> StudentMajor           │
                └──────────────────────────┘
"""

from __future__ import annotations

import datetime

import datajoint_sa as dj

schema = dj.Schema()

FIRST_YEAR = 2018      # the first academic year on record
CURRENT_YEAR = 2024    # Fall of this year is the current term: enrolled, not yet graded


def activate(schema_name: str = "university", *, connection: dj.Connection | None = None,
             ) -> dj.Schema:
    """Bind the pipeline to `schema_name` on `connection` (default: the shared one)."""
    schema.activate(schema_name, connection=connection)
    return schema


@schema
class Department(dj.Lookup):
    definition = """
    # academic departments
    dept : varchar(6)                # abbreviation, e.g. BIOL
    ---
    dept_name : varchar(200)         # full name
    dept_address = "" : varchar(200)
    dept_phone = "" : varchar(20)
    """
    contents = [
        ("BIOL", "Biology", "1 Life Sciences Way", "(801) 555-0101"),
        ("CHEM", "Chemistry", "12 Beaker Row", "(801) 555-0102"),
        ("CS", "Computer Science", "101 Turing Hall", "(801) 555-0103"),
        ("ECON", "Economics", "7 Market Street", "(801) 555-0104"),
        ("HIST", "History", "1848 Archive Lane", "(801) 555-0105"),
        ("MATH", "Mathematics", "314 Euler Court", "(801) 555-0106"),
        ("NEURO", "Neuroscience", "86 Synapse Drive", "(801) 555-0107"),
        ("PHIL", "Philosophy", "1 Agora Square", "(801) 555-0108"),
        ("PHYS", "Physics", "299792 Lightspeed Blvd", "(801) 555-0109"),
        ("PSY", "Psychology", "42 Freud Circle", "(801) 555-0110"),
    ]


@schema
class Student(dj.Manual):
    definition = """
    # students, past and present
    student_id : int32               # university-wide ID number
    ---
    first_name : varchar(40)
    last_name : varchar(40)
    sex : enum('F', 'M', 'U')
    date_of_birth : date
    home_city : varchar(60)
    home_state : char(2)             # US state acronym, e.g. OH
    home_zip : char(5)               # zipcode
    email = "" : varchar(120)
    """


@schema
class StudentMajor(dj.Manual):
    definition = """
    # a student's declared major (students who have not declared have no row)
    -> Student
    ---
    -> Department
    declare_date : date              # when the student declared the major
    """


@schema
class Course(dj.Manual):
    definition = """
    # courses in the catalog
    -> Department
    course : int16                   # course number, e.g. 1010
    ---
    course_name : varchar(200)       # e.g. "Neurobiology of Sensation and Movement"
    credits : decimal(3,1)           # number of credit hours earned by completing the course
    """


@schema
class Term(dj.Lookup):
    definition = """
    # academic terms
    term_year : int16
    term : enum('Spring', 'Summer', 'Fall')
    ---
    start_date : date
    """
    contents = [
        (year, term, datetime.date(year, month, day))
        for year in range(FIRST_YEAR, CURRENT_YEAR + 1)
        for term, month, day in (("Spring", 1, 15), ("Summer", 6, 1), ("Fall", 8, 25))
    ]


@schema
class Section(dj.Manual):
    definition = """
    # a course offered in a term: one section per classroom and time slot
    -> Course
    -> Term
    section : char(1)
    ---
    auditorium : varchar(12)
    capacity : int16
    """


@schema
class Enroll(dj.Manual):
    definition = """
    # a student enrolled in a section
    -> Student
    -> Section
    """


@schema
class LetterGrade(dj.Lookup):
    definition = """
    # the grading scale
    grade : char(2)
    ---
    points : decimal(3,2)
    """
    contents = [
        ("A", 4.00), ("A-", 3.67), ("B+", 3.33), ("B", 3.00), ("B-", 2.67),
        ("C+", 2.33), ("C", 2.00), ("C-", 1.67), ("D+", 1.33), ("D", 1.00), ("F", 0.00),
    ]


@schema
class Grade(dj.Manual):
    definition = """
    # the grade a student earned in a section (absent until the term ends)
    -> Enroll
    ---
    -> LetterGrade
    """
