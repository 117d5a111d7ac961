"""Countdown: reach a target from 3-4 given numbers with + - * /, each number used at most once.

Instances are generated here with a known solution, one step per operation. The PyPI package
``reasoning-gym`` has a countdown generator too, but it spends ~13 ms per instance (it searches with
sympy) and ~3.5 s on import, and splitting by a hash of the instance needs 10x oversampling for
dev/test; this generator takes microseconds per instance.
"""
from __future__ import annotations

import random
from collections import Counter
from typing import Any, Iterator, Sequence

from dca.reasoning.steps import Interpreter, StepError, values_match
from dca.reasoning.tasks.base import Problem
from dca.reasoning.tasks.splits import bucket, check_split

QUESTIONS = (
    "Reach {target} from the numbers {nums} using + - * /, each number at most once.",
    "Using {nums} (each at most once) and + - * /, make {target}.",
    "Combine {nums} with addition, subtraction, multiplication and division to get {target}; "
    "use each number at most once.",
    "Make {target} out of {nums}. You may use + - * / and each number no more than once.",
)
SPLITS = {"test": (0.0, 0.1), "dev": (0.1, 0.2), "train": (0.2, 1.0)}
TARGETS = (10, 999)


def solve_forward(numbers: list[int], rng: random.Random) -> tuple[int, list[str]] | None:
    """Combine (all or all but one of) ``numbers`` at random into a whole-number target; the steps
    that do it, or None when the draw leaves the target range."""
    items = [(str(x), x) for x in rng.sample(numbers, rng.randint(max(2, len(numbers) - 1), len(numbers)))]
    lines: list[str] = []
    value = 0
    while len(items) > 1:
        i, j = rng.sample(range(len(items)), 2)
        (a, va), (b, vb) = items[i], items[j]
        if va < vb:
            (a, va), (b, vb) = (b, vb), (a, va)
        ops = ["+"] + ["-"] * (va != vb) + ["*"] * (va * vb <= 10_000) + ["/"] * (vb > 1 and va % vb == 0)
        op = rng.choice(ops)
        value = {"+": va + vb, "-": va - vb, "*": va * vb, "/": va // vb if vb else 0}[op]
        name = f"x{len(lines) + 1}"
        lines.append(f"{name} = {a} {op} {b}")
        items = [it for k, it in enumerate(items) if k not in (i, j)] + [(name, value)]
    if not TARGETS[0] <= value <= TARGETS[1] or value in numbers:
        return None
    lines[-1] = "answer" + lines[-1][lines[-1].index(" = "):]
    return value, lines


def trace_numbers(lines: Sequence[str]) -> list[float]:
    """The number literals a trace writes (names of earlier steps are not counted)."""
    interp = Interpreter()
    out: list[float] = []
    for line in lines:
        out.extend(interp.parse(line).numbers)
    return out


def uses_allowed(lines: Sequence[str], numbers: Sequence[float]) -> bool:
    """Does the trace write only the given numbers, each at most as often as it is given?"""
    have = Counter(float(x) for x in numbers)
    used = Counter(float(x) for x in trace_numbers(lines))
    return all(have[x] >= c for x, c in used.items())


class Countdown:
    """Countdown with 3-4 numbers; splits train/dev/test by a hash of (numbers, target)."""

    name = "countdown"
    splits = tuple(SPLITS)

    def __init__(self, min_numbers: int = 3, max_numbers: int = 4, default_n: int = 1000):
        if not 2 <= min_numbers <= max_numbers <= 6:
            raise ValueError(f"countdown: need 2 <= min_numbers <= max_numbers <= 6, got {min_numbers}..{max_numbers}")
        self.min_numbers, self.max_numbers, self.default_n = min_numbers, max_numbers, default_n

    def problems(self, split: str = "train", n: int | None = None, seed: int = 0) -> Iterator[Problem]:
        check_split(self.name, split, self.splits)
        lo, hi = SPLITS[split]
        want = self.default_n if n is None else n
        made, i = 0, 0
        while made < want:
            i += 1
            rng = random.Random(f"countdown:{seed}:{i}")
            numbers = [rng.randint(1, 100) for _ in range(rng.randint(self.min_numbers, self.max_numbers))]
            solved = solve_forward(numbers, rng)
            if solved is None:
                continue
            target, lines = solved
            if not lo <= bucket(f"{sorted(numbers)}->{target}", "countdown") < hi:
                continue
            text = rng.choice(QUESTIONS).format(target=target, nums=", ".join(str(x) for x in numbers))
            made += 1
            yield Problem(id=f"countdown-{seed}-{i}", question=text, answer=target, gold=lines, family=self.name,
                          meta={"numbers": numbers, "target": target, "split": split, "steps": len(lines)})

    def score(self, problem: Problem, answer: Any) -> bool:
        """Exact. Given a trace (its lines, a ``Result`` or its steps) it is run and must reach the
        target using each given number at most once; a bare number only has to equal the target."""
        lines = _lines_of(answer)
        if lines is None:
            return not isinstance(answer, bool) and isinstance(answer, (int, float)) and \
                values_match(answer, problem.answer, rel=1e-9, abs_tol=1e-9)
        try:
            env = Interpreter().run_trace(lines)
        except StepError:
            return False
        value = env.get("answer")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return values_match(value, problem.answer, rel=1e-9, abs_tol=1e-9) and \
            uses_allowed(lines, problem.meta["numbers"])


def _lines_of(answer: Any) -> list[str] | None:
    """A trace's lines from trace text, an expression, a list of lines or steps, or a ``Result``."""
    if isinstance(answer, str):
        return [ln for ln in answer.splitlines() if ln.strip()] if "=" in answer else [f"answer = {answer}"]
    steps = getattr(answer, "steps", answer)
    if isinstance(steps, (list, tuple)) and all(isinstance(s, str) or hasattr(s, "text") for s in steps):
        return [s if isinstance(s, str) else s.text for s in steps]
    return None
