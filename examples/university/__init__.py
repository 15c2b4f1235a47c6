"""A university database: departments, courses, terms, sections, students, enrollments, grades.

Run it with `python -m examples.university` (SQLite, a `datajoint.db` file in the working
directory) or point it at a server with `--url postgresql+psycopg://...` or
`--url mysql+pymysql://...`. `pipeline.py` declares the tables, `loader.py` fills them with
reproducible generated data, `queries.py` asks a dozen questions of it.
"""
