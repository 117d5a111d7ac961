"""Deterministic splits, orderings and the exact scorer shared by the task families.

A record's split is decided by a stable hash of a key (a question, a page, a document id), so the
same record lands in the same split on every machine and run, whatever the file order.
"""
from __future__ import annotations

import hashlib
import random
from typing import Iterable, Iterator, TypeVar

from dca.reasoning.steps import values_match
from dca.types import Value

T = TypeVar("T")


def bucket(key: str, salt: str = "dca") -> float:
    """A number in [0, 1) fixed by ``key``: the same key always gets the same number."""
    digest = hashlib.sha1(f"{salt}:{key}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def check_split(family: str, split: str, known: Iterable[str]) -> None:
    """Raise one clear line when ``split`` is not one the family has."""
    known = tuple(known)
    if split not in known:
        raise ValueError(f"{family}: unknown split {split!r}; expected one of {', '.join(known)}")


def ordered(items: list[T], n: int | None, seed: int) -> Iterator[T]:
    """Up to ``n`` items in an order fixed by ``seed`` (seed 0 keeps file order, so runs compare)."""
    order = list(range(len(items)))
    if seed:
        random.Random(seed).shuffle(order)
    for i in order[: len(order) if n is None else max(0, n)]:
        yield items[i]


def exact_number(answer: Value, gold: Value) -> bool:
    """A number equal to the gold one (float noise aside); bools and text never count as numbers."""
    if isinstance(answer, bool) or not isinstance(answer, (int, float)) or isinstance(gold, bool):
        return False
    return values_match(answer, gold, rel=1e-9, abs_tol=1e-9)
