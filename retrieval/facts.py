"""``Fact``: one retrievable unit of text (a table row with its headers, or a paragraph).

Metadata values are kept flat (str / int / float / bool) so a fact goes into Chroma unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Fact:
    """A self-contained piece of evidence with a stable id."""

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return str(self.metadata.get("kind", ""))


def flat_metadata(meta: dict[str, Any]) -> dict[str, str | int | float | bool]:
    """Metadata Chroma can store: scalars kept, ``None`` dropped, anything else as its string."""
    out: dict[str, str | int | float | bool] = {}
    for key, value in meta.items():
        if value is None:
            continue
        out[str(key)] = value if isinstance(value, (str, int, float, bool)) else str(value)
    return out
