"""The step verifier: every executed step is checked before the next one builds on it.

A check is a small object with a ``name`` that returns a ``Verdict``; the verifier runs its
checks in order and reports the first failure with a one-line reason. The failure policy
(retries with a temperature schedule, backtracking, the "unverified" stop) is configured here
and carried out by the graph (``dca.graph``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol, runtime_checkable

from dca.numbers import find_numbers, in_pool, number_pool
from dca.reasoning.steps import ANSWER, ParsedStep, format_value, values_match
from dca.types import Evidence, Step, Value, Verdict

DEFAULT_CONSTANTS: tuple[float, ...] = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 24, 52, 60, 100, 1000, 1_000_000)


@dataclass
class CheckContext:
    """What a check may look at besides the step itself."""

    task: str
    evidence: list[Evidence]
    steps: list[Step]  # verified steps before this one
    env: dict[str, Value]
    parsed: ParsedStep | None
    verifier: "Verifier"

    def texts(self, step: Step | None = None) -> list[str]:
        """Task text plus the evidence the run has seen (cited evidence of ``step`` first)."""
        return [self.task] + [e.text for e in self.evidence]


@runtime_checkable
class Check(Protocol):
    """One rule a step must satisfy. Return ``Verdict.passed(name)`` or ``Verdict.failed(name, reason)``."""

    name: str

    def __call__(self, step: Step, ctx: CheckContext) -> Verdict: ...


class Parses:
    name = "parses"

    def __call__(self, step: Step, ctx: CheckContext) -> Verdict:
        if ctx.parsed is None:
            return Verdict.failed(self.name, step.error or "step did not parse")
        return Verdict.passed(self.name)


class Executes:
    name = "executes"

    def __call__(self, step: Step, ctx: CheckContext) -> Verdict:
        if step.error:
            return Verdict.failed(self.name, step.error)
        if step.value is None:
            return Verdict.failed(self.name, "step produced no value")
        return Verdict.passed(self.name)


class StatedValue:
    """A value the trace states (``# = 9``) must equal the one the interpreter computed."""

    name = "stated_value"

    def __init__(self, rel_tol: float = 1e-3, abs_tol: float = 1e-2):
        self.rel_tol, self.abs_tol = rel_tol, abs_tol

    def __call__(self, step: Step, ctx: CheckContext) -> Verdict:
        if step.stated is None or not isinstance(step.value, (int, float)) or isinstance(step.value, bool):
            return Verdict.passed(self.name)
        if values_match(step.value, step.stated, rel=self.rel_tol, abs_tol=self.abs_tol):
            return Verdict.passed(self.name)
        return Verdict.failed(self.name, f"{step.target} states {format_value(step.stated)} "
                                         f"but computes {format_value(step.value)}")


class Grounded:
    """Every number literal must come from the task, the evidence, or the allowed constants;
    every name from an earlier verified step (the interpreter already refuses unknown names)."""

    name = "grounded"

    def __call__(self, step: Step, ctx: CheckContext) -> Verdict:
        if ctx.parsed is None:
            return Verdict.passed(self.name)
        pool = number_pool(ctx.texts(step))
        constants = ctx.verifier.constants
        for x in ctx.parsed.numbers:
            if in_pool(x, constants) or in_pool(x, pool):
                continue
            return Verdict.failed(self.name, f"operand {format_value(x)} is not in the task, the evidence "
                                             f"or the allowed constants")
        earlier = {s.target for s in ctx.steps}
        for name in ctx.parsed.names:
            if name not in earlier and name not in ctx.env:
                return Verdict.failed(self.name, f"name {name!r} is not an earlier verified step")
        return Verdict.passed(self.name)


class LookupRelevant:
    """A lookup must return evidence scoring at least ``lookup_min_score``."""

    name = "lookup_relevant"

    def __call__(self, step: Step, ctx: CheckContext) -> Verdict:
        if ctx.parsed is None or "lookup" not in ctx.parsed.calls:
            return Verdict.passed(self.name)
        cited = [e for e in ctx.evidence if e.id in set(step.evidence_ids)]
        if not cited:
            return Verdict.failed(self.name, "lookup returned no evidence")
        best = max(e.score for e in cited)
        if best < ctx.verifier.lookup_min_score:
            return Verdict.failed(self.name, f"best lookup evidence scores {best:.2f}, below "
                                             f"{ctx.verifier.lookup_min_score:.2f}")
        return Verdict.passed(self.name)


class AnswerFormat:
    """The final answer must be a finite number, a bool or a short string."""

    name = "answer_format"

    def __call__(self, step: Step, ctx: CheckContext) -> Verdict:
        if step.target != ANSWER:
            return Verdict.passed(self.name)
        v = step.value
        if isinstance(v, bool) or (isinstance(v, (int, float))):
            return Verdict.passed(self.name)
        if isinstance(v, str) and 0 < len(v) <= 200:
            return Verdict.passed(self.name)
        return Verdict.failed(self.name, f"answer must be a number, yes/no or short text, got {v!r}")


CHECKS: dict[str, Callable[[], Check]] = {
    "parses": Parses,
    "executes": Executes,
    "stated_value": StatedValue,
    "grounded": Grounded,
    "lookup_relevant": LookupRelevant,
    "answer_format": AnswerFormat,
}
DEFAULT_CHECKS = ("parses", "executes", "stated_value", "grounded", "lookup_relevant", "answer_format")


def register_check(name: str, factory: Callable[[], Check]) -> None:
    """Make a check available to pipelines by name (``verifier.checks: [..., name]``)."""
    CHECKS[name] = factory


@dataclass
class FailurePolicy:
    """What the graph does when a step fails: resample, then backtrack, then stop unverified."""

    retries: int = 3  # proposals tried at one position before backtracking
    temperatures: list[float] = field(default_factory=lambda: [0.0, 0.7, 1.0])
    backtracks: int = 1  # verified steps that may be undone per run
    max_steps: int = 12

    def temperature(self, attempt: int) -> float:
        t = self.temperatures
        return t[min(attempt, len(t) - 1)] if t else 0.0


class Verifier:
    """Runs checks on every step, the final answer and the worded sentence.

    >>> v = Verifier(checks=["parses", "executes", "grounded"], constants=[0, 1, 100])
    """

    def __init__(self, checks: Iterable[str | Check] | None = None, *,
                 constants: Iterable[float] = DEFAULT_CONSTANTS, lookup_min_score: float = 0.2,
                 policy: FailurePolicy | None = None):
        self.checks: list[Check] = [self._make(c) for c in (checks if checks is not None else DEFAULT_CHECKS)]
        self.constants = sorted({float(c) for c in constants})
        self.lookup_min_score = float(lookup_min_score)
        self.policy = policy or FailurePolicy()

    @staticmethod
    def _make(check: str | Check) -> Check:
        if isinstance(check, str):
            if check not in CHECKS:
                import difflib

                close = difflib.get_close_matches(check, list(CHECKS), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValueError(f"unknown check {check!r}{hint} (known: {', '.join(CHECKS)})")
            return CHECKS[check]()
        if not callable(check) or not getattr(check, "name", None):
            raise TypeError(f"a check needs a 'name' and __call__(step, ctx) -> Verdict; got {type(check).__name__}")
        return check

    def add_check(self, check: str | Check) -> "Verifier":
        self.checks.append(self._make(check))
        return self

    @property
    def check_names(self) -> list[str]:
        return [c.name for c in self.checks]

    def check_step(self, step: Step, ctx: CheckContext) -> Verdict:
        """The first failing check's verdict, or a pass."""
        for check in self.checks:
            verdict = check(step, ctx)
            if not verdict.ok:
                return verdict
        return Verdict.passed("all")

    def check_wording(self, text: str, answer: Value) -> Verdict:
        """The worded sentence must state the verified value (as written, rounded, or as a percent)."""
        if not text or not text.strip():
            return Verdict.failed("wording", "the sentence is empty")
        if isinstance(answer, bool):
            word = "yes" if answer else "no"
            ok = re.search(rf"\b{word}\b", text.lower()) is not None
            return Verdict.passed("wording") if ok else Verdict.failed("wording", f"the sentence does not say {word!r}")
        if isinstance(answer, str):
            ok = answer.lower() in text.lower()
            return Verdict.passed("wording") if ok else Verdict.failed("wording", f"the sentence does not state {answer!r}")
        if answer is None:
            return Verdict.failed("wording", "there is no verified value to state")
        for n in find_numbers(text):
            if stated_equal(n.value, float(answer)):
                return Verdict.passed("wording")
        return Verdict.failed("wording", f"the sentence does not state the verified value {format_value(answer)}")


def stated_equal(written: float, value: float) -> bool:
    """Does a number written in a sentence state ``value`` (allowing the rounding people use)?"""
    if values_match(written, value, rel=1e-6):
        return True
    for digits in range(0, 5):
        if round(value, digits) == written and abs(value) >= 10 ** (-digits + 1):
            return True
    return False
