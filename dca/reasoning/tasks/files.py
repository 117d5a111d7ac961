"""Dataset files read once per process, with one clear line naming the file when one is malformed."""
from __future__ import annotations

import json
from functools import lru_cache


@lru_cache(maxsize=8)
def json_list(path: str, what: str) -> list:
    """The JSON list in ``path`` (cached); ``what`` names the records for the error message."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of {what}")
    return data
