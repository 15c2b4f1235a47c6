# Alembic environment of a datajoint_sa pipeline.

[alembic]
# path to migration scripts, relative to the token %(here)s (the directory of this file)
script_location = ${script_location}

# the pipeline module whose definitions are the target (overridden by -x pipeline=...
# and by $DJ_PIPELINE); the database comes from -x url=... or dj.config
pipeline =

# the schema that holds the version table "~alembic_version" (default: the module's first)
# version_schema =

# sys.path entries prepended while running, so that the pipeline module can be imported
prepend_sys_path = .
path_separator = os

# file names of new revisions
# file_template = %%(year)d_%%(month).2d_%%(day).2d_%%(hour).2d%%(minute).2d-%%(rev)s_%%(slug)s

[post_write_hooks]

[loggers]
keys = root,sqlalchemy,alembic

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console
qualname =

[logger_sqlalchemy]
level = WARNING
handlers =
qualname = sqlalchemy.engine

[logger_alembic]
level = INFO
handlers =
qualname = alembic

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
datefmt = %H:%M:%S
