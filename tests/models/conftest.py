"""Fixtures for the model tests (the micro models come from tests/conftest.py)."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def arithmetic_pairs() -> list[tuple[str, str]]:
    """A trivial task: one two-step trace per question, for learning to reproduce a trace."""
    pairs = []
    for a, b in [(12, 30), (7, 5), (40, 2), (3, 9), (21, 21), (8, 16), (15, 4), (6, 60)]:
        pairs.append((f"Question: what is {a} plus {b}, doubled?\nSteps:\n", f"x1 = {a} + {b}\nanswer = x1 * 2\n"))
    return pairs
