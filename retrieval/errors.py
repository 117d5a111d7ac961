"""The one error type a user can cause in retrieval: a bad file, field, model or store."""
from __future__ import annotations


class RetrievalError(Exception):
    """One line that names the file / field / setting and what was expected."""


class SkippedFile(RetrievalError):
    """A file the store leaves out; ``kind`` groups the reasons for the index report's counts."""

    def __init__(self, kind: str, reason: str, path: object = None):
        super().__init__(f"{path}: {reason}" if path is not None else reason)
        self.kind, self.reason, self.path = kind, reason, path
