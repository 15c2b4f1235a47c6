"""An example of schema evolution: `lab.py` and the migrations that brought it there."""
