"""Generated, realistic and reproducible data for the university pipeline.

Everything comes from one `numpy.random.Generator` seeded by the caller, so the same seed
gives the same university on every machine and every backend. Each table is filled with a
single `insert` call: one transaction and the backend's bulk path.

The story the data tells:
- students enter in a Fall term between 2014 and the current year and study for up to
  eight regular terms (Spring and Fall), sometimes adding a Summer term;
- most declare a major within their first two years; recent entrants often have not;
- each term a student takes three to five courses, mostly in their major's department
  and at their level (intro courses first);
- grades depend on the student's ability and the course's difficulty; the current term
  has enrollments but no grades yet, and a few grades are missing (incompletes).
"""

from __future__ import annotations

import datetime
import time
from typing import Any

import numpy as np

from . import pipeline
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
    Term,
)

FIRST_NAMES = {
    "F": ["Olivia", "Emma", "Ava", "Sophia", "Isabella", "Mia", "Amelia", "Harper", "Evelyn",
          "Abigail", "Emily", "Ella", "Elizabeth", "Camila", "Luna", "Sofia", "Avery", "Mila",
          "Aria", "Scarlett", "Penelope", "Layla", "Chloe", "Victoria", "Madison", "Eleanor",
          "Grace", "Nora", "Riley", "Zoey", "Hannah", "Hazel", "Lily", "Ellie", "Violet",
          "Priya", "Mei", "Aisha", "Fatima", "Yuki", "Ximena", "Valentina", "Ngozi", "Ines"],
    "M": ["Liam", "Noah", "Oliver", "Elijah", "William", "James", "Benjamin", "Lucas", "Henry",
          "Alexander", "Mason", "Michael", "Ethan", "Daniel", "Jacob", "Logan", "Jackson",
          "Levi", "Sebastian", "Mateo", "Jack", "Owen", "Theodore", "Aiden", "Samuel",
          "Joseph", "John", "David", "Wyatt", "Matthew", "Luke", "Asher", "Carter", "Julian",
          "Arjun", "Wei", "Omar", "Kwame", "Hiroshi", "Santiago", "Diego", "Chidi", "Tomas"],
    "U": ["Alex", "Jordan", "Taylor", "Morgan", "Casey", "Riley", "Jamie", "Quinn", "Avery",
          "Rowan", "Sage", "Emerson"],
}
LAST_NAMES = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright",
    "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall",
    "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Chen", "Wang", "Kim", "Patel",
    "Singh", "Okafor", "Mensah", "Tanaka", "Sato", "Cohen", "Novak", "Kowalski", "Larsen",
    "Ivanova", "Rossi", "Dubois", "Schmidt", "Murphy", "O'Brien", "Haddad", "Khan", "Ali",
]
# (city, state, first three digits of the zip code, relative weight)
CITIES = [
    ("Salt Lake City", "UT", "841", 20), ("Provo", "UT", "846", 8), ("Ogden", "UT", "844", 6),
    ("Denver", "CO", "802", 6), ("Boise", "ID", "837", 4), ("Las Vegas", "NV", "891", 5),
    ("Phoenix", "AZ", "850", 6), ("Los Angeles", "CA", "900", 7), ("San Diego", "CA", "921", 4),
    ("San Francisco", "CA", "941", 3), ("Seattle", "WA", "981", 4), ("Portland", "OR", "972", 3),
    ("Houston", "TX", "770", 5), ("Austin", "TX", "787", 4), ("Dallas", "TX", "752", 4),
    ("Chicago", "IL", "606", 3), ("New York", "NY", "100", 3), ("Boston", "MA", "021", 2),
    ("Atlanta", "GA", "303", 2), ("Miami", "FL", "331", 2), ("Columbus", "OH", "432", 2),
    ("Albuquerque", "NM", "871", 3), ("Cheyenne", "WY", "820", 2), ("Billings", "MT", "591", 2),
]
# course titles per department: (number, title, credits); numbers encode the level
CATALOG = {
    "BIOL": [(1010, "Principles of Biology", 4), (1015, "Biology Lab", 1),
             (2020, "Genetics", 3), (2325, "Human Anatomy", 4), (3230, "Cell Biology", 3),
             (3510, "Ecology", 3), (4600, "Evolution", 3), (5210, "Molecular Biology", 3)],
    "CHEM": [(1210, "General Chemistry I", 4), (1215, "General Chemistry Lab", 1),
             (1220, "General Chemistry II", 4), (2310, "Organic Chemistry I", 4),
             (2320, "Organic Chemistry II", 4), (3000, "Quantitative Analysis", 3),
             (3510, "Biochemistry", 3), (4060, "Physical Chemistry", 3)],
    "CS": [(1030, "Foundations of Computing", 3), (1410, "Introduction to Programming", 4),
           (2100, "Discrete Structures", 3), (2420, "Data Structures and Algorithms", 4),
           (3500, "Software Practice", 4), (3810, "Computer Organization", 4),
           (4150, "Algorithms", 3), (5530, "Database Systems", 3)],
    "ECON": [(1010, "Principles of Microeconomics", 3),
             (1020, "Principles of Macroeconomics", 3), (3010, "Intermediate Micro", 3),
             (3020, "Intermediate Macro", 3), (3620, "Econometrics", 4),
             (4100, "Labor Economics", 3), (5550, "Behavioral Economics", 3)],
    "HIST": [(1700, "American Civilization", 3), (2100, "Ancient Mediterranean", 3),
             (2600, "Modern Europe", 3), (3450, "History of Science", 3),
             (4990, "Senior Thesis", 3)],
    "MATH": [(1210, "Calculus I", 4), (1220, "Calculus II", 4), (2210, "Calculus III", 3),
             (2250, "Differential Equations and Linear Algebra", 4),
             (3070, "Applied Statistics", 4), (3210, "Foundations of Analysis", 3),
             (4030, "Abstract Algebra", 3), (5310, "Introduction to Modern Algebra", 3)],
    "NEURO": [(1010, "Brain and Behavior", 3), (2010, "Neurobiology", 3),
              (3020, "Neurobiology of Sensation and Movement", 3),
              (3040, "Neural Computation", 4), (4200, "Systems Neuroscience", 3),
              (5100, "Neurophysiology Lab", 2)],
    "PHIL": [(1000, "Introduction to Philosophy", 3), (1250, "Reasoning", 3),
             (2300, "Ethics", 3), (3500, "Philosophy of Mind", 3), (4100, "Epistemology", 3)],
    "PHYS": [(2210, "Physics for Scientists I", 4), (2215, "Physics Lab I", 1),
             (2220, "Physics for Scientists II", 4), (3740, "Modern Physics", 3),
             (3760, "Thermal Physics", 3), (4410, "Quantum Mechanics", 3),
             (5450, "Electrodynamics", 3)],
    "PSY": [(1010, "General Psychology", 3), (2010, "Research Methods", 4),
            (2100, "Developmental Psychology", 3), (3120, "Cognition", 3),
            (3500, "Social Psychology", 3), (4130, "Clinical Psychology", 3)],
}
DEPARTMENT_POPULARITY = {"BIOL": 14, "CHEM": 7, "CS": 18, "ECON": 10, "HIST": 5, "MATH": 8,
                         "NEURO": 9, "PHIL": 4, "PHYS": 6, "PSY": 13}
BUILDINGS = ["Hall", "Annex", "Tower", "Center", "Library", "Lab"]
ENTRY_YEARS = range(2014, CURRENT_YEAR + 1)


def _choice(rng: np.random.Generator, items: list[Any], weights: Any = None) -> Any:
    if weights is not None:
        weights = np.asarray(weights, dtype=float)
        weights = weights / weights.sum()
    return items[int(rng.choice(len(items), p=weights))]


def _terms_of(entry_year: int, rng: np.random.Generator) -> list[tuple[int, str]]:
    """The terms a student entering in Fall of `entry_year` is enrolled in (up to now)."""
    terms = []
    year, term = entry_year, "Fall"
    regular = 0
    while regular < 8 and (year, term) <= (CURRENT_YEAR, "Fall"):
        if term == "Summer":
            if rng.random() < 0.15:
                terms.append((year, term))
        else:
            terms.append((year, term))
            regular += 1
        year, term = {"Spring": (year, "Summer"), "Summer": (year, "Fall"),
                      "Fall": (year + 1, "Spring")}[term]
    return [t for t in terms if t[0] >= pipeline.FIRST_YEAR]


def generate(n_students: int = 3000, seed: int = 42) -> dict[str, list[dict[str, Any]]]:
    """Rows for every table the loader fills (no database needed)."""
    rng = np.random.default_rng(seed)

    # the catalog, with a difficulty per course (harder at higher levels)
    courses, difficulty = [], []
    for dept, entries in CATALOG.items():
        for number, title, credits in entries:
            courses.append({"dept": dept, "course": number, "course_name": title,
                            "credits": credits})
            difficulty.append((number / 1000 - 3) * 0.12 + rng.normal(0, 0.2))

    # sections: regular courses every Spring and Fall, some in Summer
    terms = [(t[0], t[1]) for t in Term.contents]
    sections: list[dict[str, Any]] = []
    offered: dict[tuple[int, str], list[tuple[int, str]]] = {t: [] for t in terms}
    for index, course in enumerate(courses):
        level = course["course"] // 1000
        for year, term in terms:
            if term == "Summer" and rng.random() > 0.25:
                continue
            n_sections = 1 + int(level <= 2 and rng.random() < 0.7) + int(level == 1)
            for letter in "abc"[:n_sections]:
                sections.append({
                    "dept": course["dept"], "course": course["course"], "term_year": year,
                    "term": term, "section": letter,
                    "auditorium": f"{_choice(rng, BUILDINGS)}-{rng.integers(100, 400)}",
                    "capacity": int(_choice(rng, [30, 60, 120, 250]))})
                offered[year, term].append((index, letter))
    # per term, the offered sections as arrays, for fast weighted choices
    depts = list(DEPARTMENT_POPULARITY)
    course_dept = np.array([depts.index(c["dept"]) for c in courses])
    course_level = np.array([c["course"] // 1000 for c in courses])
    popularity = np.array([DEPARTMENT_POPULARITY[d] for d in depts], dtype=float)
    offer_course = {t: np.array([i for i, _ in offered[t]], dtype=int) for t in terms}

    students, majors, enrollments, grades = [], [], [], []
    city_weights = [c[3] for c in CITIES]
    grade_scale = [g for g, _ in LetterGrade.contents]
    grade_cuts = -np.array([1.45, 1.1, 0.8, 0.5, 0.25, 0.0, -0.25, -0.5, -0.8, -1.1])
    used_emails: set[str] = set()
    for i in range(n_students):
        student_id = 100_000 + i * 7 + int(rng.integers(0, 7))  # sparse, like real IDs
        sex = _choice(rng, ["F", "M", "U"], [0.51, 0.47, 0.02])
        first, last = _choice(rng, FIRST_NAMES[sex]), _choice(rng, LAST_NAMES)
        entry_year = int(_choice(rng, list(ENTRY_YEARS)))
        birth = datetime.date(entry_year - 18, 9, 1) - datetime.timedelta(
            days=int(rng.gamma(4.0, 120)))
        city, state, zip3, _ = _choice(rng, CITIES, city_weights)
        email = f"{first}.{last}".lower().replace("'", "")
        while email in used_emails:
            email += str(rng.integers(10))
        used_emails.add(email)
        students.append({
            "student_id": student_id, "first_name": first, "last_name": last, "sex": sex,
            "date_of_birth": birth, "home_city": city, "home_state": state,
            "home_zip": f"{zip3}{rng.integers(0, 100):02d}", "email": f"{email}@univ.edu"})

        # a major, declared after one to four terms (recent entrants may not have one yet)
        major = int(rng.choice(len(depts), p=popularity / popularity.sum()))
        declared = datetime.date(entry_year, 9, 1) + datetime.timedelta(
            days=int(rng.integers(60, 800)))
        if declared <= datetime.date(CURRENT_YEAR, 10, 1) and rng.random() < 0.93:
            majors.append({"student_id": student_id, "dept": depts[major],
                           "declare_date": declared})

        # enrollments, term by term: in the major's department, at the student's level
        ability = rng.normal(0, 0.7)
        taken = np.zeros(len(courses), dtype=bool)
        for year, term in _terms_of(entry_year, rng):
            level = min(5, 1 + (year - entry_year))
            on_offer = offer_course[year, term]
            weights = (popularity[course_dept[on_offer]]
                       * np.where(course_dept[on_offer] == major, 4.0, 1.0)
                       / (1 + np.abs(course_level[on_offer] - level)) ** 2
                       * ~taken[on_offer])
            n_courses = 1 if term == "Summer" else int(rng.integers(3, 6))
            n_courses = min(n_courses, int(np.count_nonzero(weights)))
            picked = rng.choice(len(on_offer), size=n_courses, replace=False,
                                p=weights / weights.sum())
            for position in picked:
                index, letter = offered[year, term][int(position)]
                if taken[index]:  # two sections of one course: keep the first
                    continue
                taken[index] = True
                course = courses[index]
                key = {"student_id": student_id, "dept": course["dept"],
                       "course": course["course"], "term_year": year, "term": term,
                       "section": letter}
                enrollments.append(key)
                if (year, term) == (CURRENT_YEAR, "Fall") or rng.random() < 0.02:
                    continue  # not graded yet, or an incomplete
                score = 0.75 + ability - difficulty[index] + rng.normal(0, 0.6)
                grades.append({**key, "grade": grade_scale[int(np.searchsorted(grade_cuts,
                                                                                -score))]})
    return {"Course": courses, "Section": sections, "Student": students,
            "StudentMajor": majors, "Enroll": enrollments, "Grade": grades}


def load(n_students: int = 3000, seed: int = 42, *, verbose: bool = True) -> dict[str, int]:
    """Fill the (activated, empty) pipeline; returns the number of rows per table."""
    started = time.perf_counter()
    data = generate(n_students, seed)
    generated = time.perf_counter()
    tables = {"Course": Course, "Section": Section, "Student": Student,
              "StudentMajor": StudentMajor, "Enroll": Enroll, "Grade": Grade}
    counts = {"Department": len(Department), "Term": len(Term),
              "LetterGrade": len(LetterGrade)}
    for name, table in tables.items():
        table.insert(data[name])  # one transaction per table, the backend's bulk path
        counts[name] = len(data[name])
    if verbose:
        total = sum(counts.values())
        print(f"Generated {n_students:,} students in {generated - started:.1f} s; inserted "
              f"{total:,} rows in {time.perf_counter() - generated:.1f} s:")
        print("  " + ", ".join(f"{name} {count:,}" for name, count in counts.items()))
    return counts
