"""A dozen questions to the university database, from simple to hard.

Each function returns a query expression: nothing runs until it is fetched or displayed,
so the functions are cheap to call and easy to combine. Read them top to bottom; each one
introduces one idea of the query algebra:

    &  restrict          -  restrict to what does NOT match      *  join
    .proj()  select, rename and compute attributes               +  union
    .aggr()  summarize another table per row                     dj.U  group by anything
    dj.Top   keep the first rows in some order
"""

from __future__ import annotations

from collections.abc import Callable

import datajoint_sa as dj

from .pipeline import (
    CURRENT_YEAR,
    Course,
    Department,
    Enroll,
    Grade,
    LetterGrade,
    Section,
    Student,
    StudentMajor,
)

QUERIES: list[Callable[[], dj.QueryExpression]] = []


def query(function: Callable[[], dj.QueryExpression]) -> Callable[[], dj.QueryExpression]:
    """Register a query; its docstring's first line is its title."""
    QUERIES.append(function)
    return function


# ---- restriction: which rows? -------------------------------------------------------------
@query
def texans() -> dj.QueryExpression:
    """Students from Texas (restriction by a dict)"""
    return Student & {"home_state": "TX"}


@query
def born_2004_or_later() -> dj.QueryExpression:
    """Students born in 2004 or later (restriction by an SQL condition)"""
    return Student & 'date_of_birth >= "2004-01-01"'


@query
def west_coast_women() -> dj.QueryExpression:
    """Women from California, Oregon or Washington (a list is OR, chained & is AND)"""
    return Student & [{"home_state": state} for state in ("CA", "OR", "WA")] & {"sex": "F"}


@query
def undeclared() -> dj.QueryExpression:
    """Students who have not declared a major (antirestriction by another table)"""
    return Student - StudentMajor


@query
def never_graded() -> dj.QueryExpression:
    """Students with no grades at all: new students and those with only incompletes"""
    return Student - Grade


# ---- join and projection: which columns? --------------------------------------------------
@query
def math_majors() -> dj.QueryExpression:
    """Mathematics majors with the date they declared (projection, then join)"""
    return Student.proj("first_name", "last_name") * (StudentMajor & {"dept": "MATH"})


@query
def student_directory() -> dj.QueryExpression:
    """A directory: renamed and computed attributes (projection)"""
    return Student.proj(name='concat(first_name, " ", last_name)', born="date_of_birth",
                        hometown='concat(home_city, ", ", home_state)')


@query
def utah_or_neuroscience() -> dj.QueryExpression:
    """Students from Utah or majoring in Neuroscience (union)"""
    return ((Student & {"home_state": "UT"}).proj("last_name")
            + (Student & (StudentMajor & {"dept": "NEURO"})).proj("last_name"))


# ---- aggregation: summaries per row -------------------------------------------------------
@query
def current_section_sizes() -> dj.QueryExpression:
    """Sections of the current term with their enrollment (aggregation)"""
    return (Section & {"term_year": CURRENT_YEAR, "term": "Fall"}).aggr(
        Enroll, n_enrolled="count(*)")


@query
def gpa() -> dj.QueryExpression:
    """GPA per student: grade points weighted by course credits (aggregation over a join)"""
    return Student.aggr(Grade * LetterGrade * Course,
                        gpa="round(sum(points * credits) / sum(credits), 2)",
                        credits_earned="sum(credits)", exclude_nonmatching=True)


@query
def department_grades() -> dj.QueryExpression:
    """Number of grades and average grade points per department (keeping dept_name)"""
    return Department.aggr(Grade * LetterGrade, "dept_name", n_grades="count(*)",
                           avg_points="round(avg(points), 2)")


@query
def majors_by_term() -> dj.QueryExpression:
    """How many students of each major were enrolled in each term (dj.U groups by anything)"""
    enrolled = dj.U("student_id", "term_year", "term") & Enroll  # one row per student-term
    return dj.U("term_year", "term", "dept").aggr(enrolled * StudentMajor,
                                                  n_students="count(*)")


@query
def honor_roll() -> dj.QueryExpression:
    """Top ten GPAs among students with at least 60 credits (restrict a summary, dj.Top)"""
    # dj.Top breaks ties by the primary key, so every backend picks the same ten
    return gpa() & "credits_earned >= 60" & dj.Top(10, order_by="gpa desc")


@query
def hardest_courses() -> dj.QueryExpression:
    """The five courses with the lowest average grade, among those graded 200+ times"""
    graded = Course.aggr(Grade * LetterGrade, "course_name", n_grades="count(*)",
                         avg_points="round(avg(points), 2)")
    return graded & "n_grades >= 200" & dj.Top(5, order_by="avg_points")


#: queries whose operators the library does not offer yet (the run skips them)
PENDING: set[str] = set()


def runnable() -> list[Callable[[], dj.QueryExpression]]:
    return [q for q in QUERIES if q.__name__ not in PENDING]


def show(function: Callable[[], dj.QueryExpression], limit: int = 5) -> None:
    """Print a query's title, its size and its first rows."""
    title = (function.__doc__ or function.__name__).strip().splitlines()[0]
    expression = function()
    print(f"\n### {function.__name__}: {title}")
    with dj.config.override(display__limit=limit):
        print(repr(expression))
