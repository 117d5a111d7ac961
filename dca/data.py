"""Where the real datasets live: ``$DCA_DATA``, else ``../shared/data`` beside the repository.

They are read in place at run time, never copied into the project.
"""
from __future__ import annotations

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]


class DataNotFound(FileNotFoundError):
    """A dataset file is absent; the message says where it was looked for and how to point at it."""


def data_dir(required: bool = True) -> Path:
    """The data directory; raises ``DataNotFound`` (one line) when ``required`` and it is absent."""
    path = Path(os.environ.get("DCA_DATA", _REPO.parent / "shared" / "data")).expanduser()
    if required and not path.is_dir():
        raise DataNotFound(f"dataset directory {path} not found; set DCA_DATA to the folder holding "
                           f"gsm8k/, finqa/, tatqa/ and scifact/")
    return path


def data_file(*parts: str) -> Path:
    """A file under the data directory, or ``DataNotFound`` naming it."""
    path = data_dir().joinpath(*parts)
    if not path.exists():
        raise DataNotFound(f"dataset file {path} not found (set DCA_DATA to the data folder)")
    return path
