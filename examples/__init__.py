"""Runnable example pipelines: `python -m examples.university`, `python -m examples.neuro`."""
