"""Questions to the user on stdin: the one confirmation prompt that deletes, drops and
migrations ask before they change anything (answerable from tests and notebooks through
`input()`)."""

from __future__ import annotations


def confirm(question: str) -> bool:
    """Ask until the answer is yes or no."""
    answer = ""
    while answer not in ("yes", "no", "y", "n"):
        answer = input(f"{question} [yes/no]: ").strip().lower()
    return answer in ("yes", "y")
