"""A neuroscience pipeline in two schemas: the lab's subjects and sessions, and a shared
electrophysiology element (recordings, spike detection, unit statistics, summaries).

Run it with `python -m examples.neuro` (SQLite) or `--url URL` for a server. Modules:
`lab` (the lab's schema), `element_ephys` (the reusable element, activated later),
`pipeline` (links the two and activates them), `simulate` (writes the recording files).
"""
