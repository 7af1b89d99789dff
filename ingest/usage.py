"""The command line's one error for bad input: printed as `error: <what> (<hint>)`, exit 2."""

from __future__ import annotations


class UsageError(Exception):
    def __init__(self, what: str, hint: str) -> None:
        super().__init__(f"{what} ({hint})")
