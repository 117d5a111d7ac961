"""Task families: where problems (and gold step traces, where the data has them) come from.

A family yields ``Problem``s for a split and scores an answer exactly. The SFT and RL trainers,
the benchmarks and the demo all read problems through this one contract, so a user adds a
family by implementing ``TaskFamily`` and registering it with ``register_family``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol, runtime_checkable

from dca.types import Evidence, Value


@dataclass
class Problem:
    """One question with what is known about it.

    ``evidence`` holds the facts that come with the problem (a FinQA page's table rows and
    sentences), ``gold`` the reference trace in the step language (``None`` when the data has
    none), and ``answer`` the dataset's own answer that scoring compares against.
    """

    id: str
    question: str
    answer: Value
    gold: list[str] | None = None
    evidence: list[Evidence] = field(default_factory=list)
    family: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class TaskFamily(Protocol):
    """A source of problems with an exact scorer."""

    name: str

    def problems(self, split: str = "train", n: int | None = None, seed: int = 0) -> Iterator[Problem]: ...

    def score(self, problem: Problem, answer: Value) -> bool: ...


_FAMILIES: dict[str, Callable[..., TaskFamily]] = {}


def register_family(name: str, factory: Callable[..., TaskFamily]) -> None:
    """Make a family available by name to configs (``tasks: [{family: name, ...}]``) and the CLI."""
    _FAMILIES[name] = factory


def get_family(name: str, **kwargs: Any) -> TaskFamily:
    from dca.reasoning import tasks as _builtin  # noqa: F401  (registers the built-in families)

    if name not in _FAMILIES:
        import difflib

        close = difflib.get_close_matches(name, list(_FAMILIES), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise KeyError(f"unknown task family {name!r}{hint} (known: {', '.join(sorted(_FAMILIES))})")
    return _FAMILIES[name](**kwargs)


def families() -> list[str]:
    from dca.reasoning import tasks as _builtin  # noqa: F401

    return sorted(_FAMILIES)
