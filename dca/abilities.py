"""The three ability contracts. Each is a narrow ``Protocol`` so a user can plug in their own.

- ``Knowledge.retrieve(query, k)`` returns ``Evidence`` (world knowledge from the user's documents).
- ``Logic.propose(request)`` returns ``Proposal``s: the next step, or the rest of a trace.
- ``Wording.word(task, answer, steps, evidence)`` returns the sentence shown to the user.

``check_ability`` verifies an object satisfies its contract when an agent is built, so a wrong
plug-in fails early with a message that names the ability and the missing method.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from dca.types import Compute, Evidence, Step, Value


@runtime_checkable
class Knowledge(Protocol):
    """World knowledge: evidence for a query from the user's documents."""

    def retrieve(self, query: str, k: int = 5) -> list[Evidence]: ...


@dataclass
class ProposeRequest:
    """What the logic ability sees when asked for the next step(s)."""

    task: str
    evidence: list[Evidence]
    steps: list[Step]  # the verified steps so far (their values are known)
    n: int = 1  # how many alternative proposals are wanted
    temperature: float = 0.0
    avoid: list[str] = field(default_factory=list)  # lines already rejected at this position
    max_steps: int = 12
    seed: int | None = None


@dataclass
class Proposal:
    """A proposed continuation: one step line, or several (a search strategy's whole plan).

    The graph executes and verifies the lines one by one; on a failure the rest is dropped and
    the logic ability is asked again from the verified prefix.
    """

    lines: list[str]
    score: float | None = None
    compute: Compute = field(default_factory=Compute)


@runtime_checkable
class Logic(Protocol):
    """Multi-step logic: proposes the next step(s) of a trace in the step language."""

    def propose(self, request: ProposeRequest) -> list[Proposal]: ...


@runtime_checkable
class Wording(Protocol):
    """Language: turns a verified answer, its steps and evidence into a sentence."""

    def word(self, task: str, answer: Value, steps: list[Step], evidence: list[Evidence]) -> str: ...


_CONTRACTS = {"knowledge": (Knowledge, "retrieve"), "logic": (Logic, "propose"), "wording": (Wording, "word")}


class AbilityError(TypeError):
    """An object given as an ability does not satisfy the ability's Protocol."""


def check_ability(role: str, obj: object) -> None:
    """Raise ``AbilityError`` naming the role and what is missing if ``obj`` cannot serve as it."""
    proto, method = _CONTRACTS[role]
    fn = getattr(obj, method, None)
    if fn is None or not callable(fn):
        raise AbilityError(
            f"{role}: {type(obj).__name__} has no method {method}(); "
            f"a {role} ability needs {proto.__name__}.{method}{_signature(proto, method)}"
        )
    try:
        wanted = len([p for p in inspect.signature(getattr(proto, method)).parameters.values()
                      if p.name != "self" and p.default is p.empty])
        params = inspect.signature(fn).parameters.values()
        if not any(p.kind == p.VAR_POSITIONAL for p in params):
            positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            if len(positional) < wanted:
                raise AbilityError(
                    f"{role}: {type(obj).__name__}.{method}() takes {len(positional)} argument(s); "
                    f"expected {proto.__name__}.{method}{_signature(proto, method)}"
                )
    except (TypeError, ValueError) as exc:
        if isinstance(exc, AbilityError):
            raise


def _signature(proto: type, method: str) -> str:
    sig = str(inspect.signature(getattr(proto, method)))
    return sig.replace("(self, ", "(").replace("(self)", "()")
