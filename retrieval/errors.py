"""The one error type a user can cause in retrieval: a bad file, field, model or store."""
from __future__ import annotations


class RetrievalError(Exception):
    """One line that names the file / field / setting and what was expected."""
