"""`python -m datajoint_sa.migrate ...` — the same as `datajoint-sa migrate ...`."""

import sys

from . import cli

sys.exit(cli(sys.argv[1:]))
