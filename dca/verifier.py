"""The step verifier: every executed step is checked before the next one builds on it.

A check is a small object with a ``name`` that returns a ``Verdict`` with a one-line reason on
failure; the verifier runs its checks in order and reports the first failure. The programmatic
checks see what can be seen from the step, the task and the evidence (does it parse and run,
does a stated value match, does every number come from somewhere, do units agree); a learned step
scorer plugs in as one more check (``step_scorer``) for what they cannot see. The failure policy
(resample with a temperature schedule, backtrack, stop "unverified") is configured here and
carried out by the graph (``dca.graph``).
"""
from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Protocol, runtime_checkable

from dca.numbers import find_numbers, spelled_numbers
from dca.reasoning.steps import (ANSWER, Interpreter, ParsedStep, StepError, format_value, parse_expression, plan_quote,
                                 values_match)
from dca.types import Evidence, Step, Value, Verdict

# Numbers any step may use without finding them in the task: identity, doubling and percent.
# Unit conversions (60 minutes, 7 days, 12 months, ...) are allowed when the task names the unit.
DEFAULT_CONSTANTS: tuple[float, ...] = (0, 1, 2, 100)

# A unit or shape the task names -> the conversion factors and counts it makes legitimate operands.
# Words end in "*" to match as a prefix ("kilo*": kilogram, kilometre).
UNIT_FACTORS: tuple[tuple[frozenset[str], tuple[float, ...]], ...] = tuple((frozenset(w.split()), f) for w, f in (
    ("hour hours hourly minute minutes min mins", (60,)),
    ("second seconds sec secs", (60, 3600)),
    ("day days daily hour hours overnight", (24,)),
    ("day days daily week weeks weekly", (7,)),
    ("week weeks weekly", (52,)),
    ("fortnight fortnights", (14,)),
    ("month months monthly", (12, 30, 31, 28, 4)),
    ("year years yearly annual annually decade decades", (12, 52, 365, 10)),
    ("feet foot inch inches", (12,)),
    ("yard yards", (3, 36)),
    ("pound pounds ounce ounces lb lbs", (16,)),
    ("gallon gallons", (4, 8, 16, 128)),
    ("quart quarts", (2, 4, 32)),
    ("pint pints", (2, 16)),
    ("cup cups", (8,)),
    ("cent cents penny pennies dollar dollars $", (100, 0.01)),
    ("quarter quarters", (0.25, 25, 4)),
    ("dime dimes", (0.1, 10)),
    ("nickel nickels", (0.05, 5)),
    ("% percent percentage", (100, 0.01)),
    ("kilo* gram grams meter meters metre metres liter liters litre litres milli* km kg", (1000,)),
    ("century centuries", (100,)),
    ("dozen dozens", (12,)),
    ("thousand thousands", (1000,)),
    ("million millions", (1000, 1_000_000)),
    ("billion billions", (1000, 1_000_000_000)),
    ("mile miles", (5280,)),
    ("square squares rectangle*", (4,)),
    ("triangle*", (3,)),
    ("weekday weekdays workweek", (5,)),
    ("weekend weekends", (2,)),
    ("april june september november", (30,)),
    ("january march july august october december", (31,)),
    ("february", (28, 29)),
    ("deck", (52,)),
))
# Phrases, tried only when their first word occurs: "half an hour" is 30 minutes.
UNIT_PHRASES: tuple[tuple[str, re.Pattern, tuple[float, ...]], ...] = tuple(
    (first, re.compile(p, re.I), f) for first, p, f in (
        ("half", r"\bhalf[- ]an?[- ]?hour|\bhalf[- ]hour", (30,)),
        ("quarter", r"\bquarter[- ]of[- ]an[- ]hour|\bquarter[- ]hour", (15,)),
        ("leap", r"\bleap year", (366,)),
        ("school", r"\bschool ?days?\b", (5,)),
        ("monday", r"\bmonday\s+(to|through|-)\s+friday", (5,)),
        ("work", r"\bwork ?week", (5,)),
        ("cent", r"\bper cent\b", (100, 0.01)),
    ))
_WORDS = re.compile(r"[a-z]+|[$%]")
# UNIT_FACTORS split once into whole words and the prefixes of the "*" entries
_UNIT_KEYS = tuple((frozenset(k for k in keys if not k.endswith("*")),
                    tuple(k[:-1] for k in keys if k.endswith("*")), factors) for keys, factors in UNIT_FACTORS)


def unit_factors(text: str) -> set[float]:
    """The conversion factors and counts the units and shapes named in ``text`` make legitimate."""
    lower = (text or "").lower()
    words = set(_WORDS.findall(lower))
    out: set[float] = set()
    for keys, prefixes, factors in _UNIT_KEYS:
        if words & keys or (prefixes and any(w.startswith(prefixes) for w in words)):
            out.update(factors)
    for first, pattern, factors in UNIT_PHRASES:
        if first in words and pattern.search(lower):
            out.update(factors)
    return out


_PERCENT_WORD = re.compile(r"(\d[\d,]*(?:\.\d+)?)\s*(?:percent|per cent)\b", re.I)
_SPELLED_PERCENT = re.compile(r"([a-z]+(?:[- ][a-z]+)?)\s+(?:percent|per cent)\b", re.I)
_SCALE_NAMES = ("thousand", "million", "billion")
_TEXT_SCALE = re.compile(r"\bin\s+(thousands|millions|billions)\b", re.I)
_ASKS_PERCENT = re.compile(r"\bpercent(age)?\b(?!\s+points?)|%", re.I)
_WORD = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?")
_STOP = frozenset("the of in and a an to for on at by is was what were from as with how much many does did "
                  "do this that its it be are".split())


def _key(x: float) -> float:
    return round(abs(float(x)), 6)


def content_words(text: str) -> set[str]:
    """Lower-cased words of a text without the most common function words (for lexical overlap)."""
    return {w for w in _WORD.findall((text or "").lower()) if w not in _STOP}


# --------------------------------------------------------------------------- grounding pool

# Pool sources a step may use without the task or the evidence stating the number.
ALLOWED_SOURCES = ("constant", "unit")


@dataclass
class NumberPool:
    """The numbers a step may write as literals, with where each came from and its unit if known.

    ``units`` maps a value to the unit tags of the places it was found: "percent", or a scale
    ("thousand", "million", "billion") declared by the evidence; "" where nothing is declared.
    """

    values: dict[float, str] = field(default_factory=dict)
    units: dict[float, set[str]] = field(default_factory=dict)

    def add(self, x: float, source: str, unit: str = "") -> None:
        k = _key(x)
        self.values.setdefault(k, source)
        self.units.setdefault(k, set()).add(unit)

    def has(self, x: float) -> bool:
        return _key(x) in self.values

    def source(self, x: float) -> str | None:
        """Where ``x`` was first found: an evidence id, "task", "unit", "constant"; None if nowhere."""
        return self.values.get(_key(x))

    def unit(self, x: float) -> str | None:
        """The one unit ``x`` has wherever it appears, or None when unknown or ambiguous."""
        tags = self.units.get(_key(x), set())
        return next(iter(tags)) or None if len(tags) == 1 else None


def evidence_scale(e: Evidence) -> str:
    """The scale an evidence chunk declares: its metadata, else "(in thousands)" in its text."""
    scale = str(e.metadata.get("scale") or "").lower()
    if scale in _SCALE_NAMES:
        return scale
    m = _TEXT_SCALE.search(e.text)
    return m.group(1).lower()[:-1] if m else ""


def grounding_pool(task: str, evidence: Iterable[Evidence] = (), constants: Iterable[float] = DEFAULT_CONSTANTS,
                   units: bool = True) -> NumberPool:
    """Every number a step may use: the task's and the evidence's numbers as reports write them
    ("5,829", "(5,735)", "12.5%" also as 0.125 and its complements 87.5 / 0.875 / 1.125, number
    words, fractions, "2.5 million"), the constants, and (``units``) the conversion factors of the
    units the texts name."""
    pool = NumberPool()
    texts = [(task, "task", "")] + [(e.text, e.id, evidence_scale(e)) for e in evidence]
    years = sorted({n.value for n in find_numbers(task) if n.is_year})
    for i, a in enumerate(years):  # "from 2016 to 2018": 2 years apart, 3 years counted
        for b in years[i + 1:]:
            if b - a <= 30:
                pool.add(b - a, "task years", "")
                pool.add(b - a + 1, "task years", "")
    for text, source, scale in texts:
        worded = {float(m.group(1).replace(",", "")) for m in _PERCENT_WORD.finditer(text)}  # "20 percent"
        for n in find_numbers(text):
            pct = n.percent or abs(n.value) in worded
            pool.add(n.value, source, "percent" if pct else ("" if n.is_year else scale))
            if pct:
                _add_percent(pool, abs(n.value), source)
        for m in _SPELLED_PERCENT.finditer(text):  # "twenty percent"
            for p in spelled_numbers(m.group(1))[-1:]:
                _add_percent(pool, p, source)
        for v in spelled_numbers(text):
            pool.add(v, source, "")
    if units:
        for f in unit_factors("\n".join(t for t, _, _ in texts)):
            pool.add(f, "unit", "")
    for c in constants:  # last, so a constant the texts also state keeps the text as its source
        pool.add(c, "constant")
    return pool


def _add_percent(pool: NumberPool, p: float, source: str) -> None:
    """20% is also used as 0.2, and as what is left or added: 80, 0.8, 120, 1.2."""
    for derived in (p / 100, 100 - p, 100 + p, 1 - p / 100, 1 + p / 100):
        pool.add(derived, source, "")


# --------------------------------------------------------------------------- context


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
        cited = set(step.evidence_ids) if step else set()
        first = [e.text for e in self.evidence if e.id in cited]
        return [self.task] + first + [e.text for e in self.evidence if e.id not in cited]

    @property
    def pool(self) -> NumberPool:
        """The grounding pool of this task and evidence (built once per run, cached by the verifier)."""
        return self.verifier.pool(self.task, self.evidence)

    def earlier_values(self) -> list[float]:
        vals = [s.value for s in self.steps] + list(self.env.values())
        return [float(v) for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool)]


@runtime_checkable
class Check(Protocol):
    """One rule a step must satisfy. Return ``Verdict.passed(name)`` or ``Verdict.failed(name, reason)``."""

    name: str

    def __call__(self, step: Step, ctx: CheckContext) -> Verdict: ...


# --------------------------------------------------------------------------- checks


class Parses:
    """The step is one ``name = expression`` line of the step language."""

    name = "parses"

    def __call__(self, step: Step, ctx: CheckContext) -> Verdict:
        if ctx.parsed is None:
            return Verdict.failed(self.name, step.error or "step did not parse")
        return Verdict.passed(self.name)


class Executes:
    """The interpreter computed a value (no division by zero, no undefined name, within bounds)."""

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


def names_verdict(check: str, ctx: CheckContext) -> Verdict | None:
    """What a grounding check says before it reads a step's numbers: passed for a step that does
    not parse (the syntax check's to judge), failed for a name that is no earlier verified step;
    None to go on."""
    if ctx.parsed is None:
        return Verdict.passed(check)
    earlier = {s.target for s in ctx.steps}
    for name in sorted(ctx.parsed.names):
        if name not in earlier and name not in ctx.env:
            return Verdict.failed(check, f"name {name!r} is not an earlier verified step")
    return None


class Grounded:
    """Every number literal comes from the task, the evidence, an earlier step's value (also as
    written rounded) or the allowed constants and unit factors; every name is an earlier step.

    ``derived`` also accepts a literal that one operation on two of the task's or evidence's
    numbers gives (arithmetic done "in the head", as GSM8K solutions often do), at some cost in
    the errors caught.
    """

    name = "grounded"

    def __init__(self, derived: bool = False):
        self.derived = derived

    def __call__(self, step: Step, ctx: CheckContext) -> Verdict:
        early = names_verdict(self.name, ctx)
        if early is not None:
            return early
        if not ctx.parsed.numbers:
            return Verdict.passed(self.name)
        pool = ctx.pool
        values = ctx.earlier_values()
        for x in ctx.parsed.numbers:
            if pool.has(x) or repeats(x, values) or (self.derived and _derived(x, pool)):
                continue
            if float(x).is_integer() and x in _term_counts(ctx):  # the 3 of "(a + b + c) / 3"
                continue
            return Verdict.failed(self.name, f"operand {format_value(x)} is not in the task, the evidence, "
                                             f"an earlier step or the allowed constants")
        if step.target == ANSWER and not ctx.parsed.names and not ctx.parsed.calls and \
                all(pool.source(x) in ALLOWED_SOURCES for x in ctx.parsed.numbers):
            return Verdict.failed(self.name, f"the answer uses only constants "
                                             f"({', '.join(format_value(x) for x in ctx.parsed.numbers)}); it must "
                                             f"build on the task, the evidence or an earlier step")
        return Verdict.passed(self.name)


def _term_counts(ctx: CheckContext) -> set[int]:
    """How many terms earlier steps (and this one) add up: an average divides by that count."""
    return term_counts([ctx.verifier.tree_of(s) for s in ctx.steps] + [ctx.parsed.tree if ctx.parsed else None])


def term_counts(trees: Iterable[Any]) -> set[int]:
    """How many terms the sums and ``sum``/``mean`` calls in these expression trees add up."""
    import ast

    counts: set[int] = set()
    for tree in trees:
        if tree is None:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") in ("sum", "mean"):
                counts.add(len(node.args[0].elts) if len(node.args) == 1 and isinstance(node.args[0], ast.List)
                           else len(node.args))
            elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
                n, cur = 1, node
                while isinstance(cur, ast.BinOp) and isinstance(cur.op, (ast.Add, ast.Sub)):
                    n, cur = n + 1, cur.left
                counts.add(n)
    return counts


def repeats(x: float, values: list[float]) -> bool:
    """Is ``x`` an earlier value, or one written rounded to as many decimals as ``x`` shows?"""
    s = format_value(abs(x), 12)
    d = len(s.split(".")[1]) if "." in s else 0
    for v in values:
        if _key(v) == _key(x) or (d and round(abs(v), d) == round(abs(x), d)):
            return True
    return False


def _derived(x: float, pool: NumberPool) -> bool:
    """Is ``x`` one operation (+ - * /) on two numbers of the task or evidence (constants excluded)?"""
    nums = [v for v, src in pool.values.items() if src != "constant" and v]
    target = _key(x)
    for i, a in enumerate(nums):
        for b in nums[i:]:
            for r in (a + b, abs(a - b), a * b, a / b, b / a):
                if _key(r) == target:
                    return True
    return False


class Units:
    """Units and scales agree where they are known: no adding an amount in thousands to one in
    millions, a percentage to an amount or to a ratio; and the answer is in the form the question
    asks for (a percentage, "in millions"). ``percent_answer`` says how a percentage question
    wants its answer: "percent" (23.4), "ratio" (0.234) or "either"."""

    name = "units"

    def __init__(self, percent_answer: str = "either"):
        if percent_answer not in ("either", "percent", "ratio"):
            raise ValueError(f"units: percent_answer must be either, percent or ratio, got {percent_answer!r}")
        self.percent_answer = percent_answer

    def __call__(self, step: Step, ctx: CheckContext) -> Verdict:
        if ctx.parsed is None:
            return Verdict.passed(self.name)
        known = {e.id: e for e in ctx.evidence}
        names: dict[str, str | None] = {}
        try:
            for s in ctx.steps:
                tree = ctx.verifier.tree_of(s)
                names[s.target] = None if tree is None else _unit(tree, ctx.pool, names, _cited_unit(s, known))
            unit = _unit(ctx.parsed.tree, ctx.pool, names, _cited_unit(step, known))
        except _UnitClash as clash:
            return Verdict.failed(self.name, str(clash))
        if step.target == ANSWER:
            return self._answer(unit, ctx.task)
        return Verdict.passed(self.name)

    def _answer(self, unit: str | None, task: str) -> Verdict:
        if _ASKS_PERCENT.search(task):
            if unit in _SCALE_NAMES:
                return Verdict.failed(self.name, f"the question asks for a percentage but the answer is an "
                                                 f"amount in {unit}s")
            if self.percent_answer == "percent" and unit == "ratio":
                return Verdict.failed(self.name, "the question asks for a percentage but the answer is a ratio "
                                                 "(multiply by 100)")
            if self.percent_answer == "ratio" and unit == "percent":
                return Verdict.failed(self.name, "the question wants the percentage as a ratio but the answer "
                                                 "is in percent (divide by 100)")
        asked = _TEXT_SCALE.search(task)
        if asked and unit in _SCALE_NAMES and unit != asked.group(1).lower()[:-1]:
            return Verdict.failed(self.name, f"the question asks in {asked.group(1).lower()} but the answer "
                                             f"is in {unit}s")
        return Verdict.passed(self.name)


class _UnitClash(Exception):
    pass


def _cited_unit(step: Step, known: dict[str, Evidence]) -> str | None:
    scales = {evidence_scale(known[i]) for i in step.evidence_ids if i in known}
    return scales.pop() or None if len(scales) == 1 else None


def _unit(node: Any, pool: NumberPool, names: dict[str, str | None], lookup_unit: str | None) -> str | None:
    """The unit of an expression: "percent", "ratio", a scale, "pure" (a constant) or None (unknown);
    raises ``_UnitClash`` where two known units are combined in a way that cannot be right."""
    import ast

    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            return None
        return "pure" if pool.source(node.value) in ALLOWED_SOURCES else pool.unit(node.value)
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.UnaryOp):
        return _unit(node.operand, pool, names, lookup_unit)
    if isinstance(node, ast.Call):
        fname = getattr(node.func, "id", "")
        if fname == "lookup":
            return lookup_unit
        args = [_unit(a, pool, names, lookup_unit) for a in node.args]
        if fname in ("min", "max", "sum", "mean", "abs", "round", "floor", "ceil"):
            return _combine(args[0] if args else None, args[1:], "combines")
        return None
    if isinstance(node, ast.Compare):
        units = [_unit(node.left, pool, names, lookup_unit)] + [_unit(c, pool, names, lookup_unit)
                                                              for c in node.comparators]
        _combine(units[0], units[1:], "compares")
        return None
    if isinstance(node, ast.BinOp):
        a = _unit(node.left, pool, names, lookup_unit)
        b = _unit(node.right, pool, names, lookup_unit)
        op = type(node.op).__name__
        if op in ("Add", "Sub"):
            return _combine(a, [b], "adds" if op == "Add" else "subtracts")
        if op == "Mult":
            if "ratio" in (a, b) and _is_hundred(node):
                return "percent"
            for x, y in ((a, b), (b, a)):  # an amount times a rate stays an amount
                if x in _SCALE_NAMES:
                    return x if y in ("percent", "ratio") else None
            return None
        if op == "Div":
            if a == "percent" and _is_hundred(node, right=True):
                return "ratio"
            if a in _SCALE_NAMES and b in _SCALE_NAMES:
                if a != b:
                    raise _UnitClash(f"divides an amount in {a}s by one in {b}s")
                return "ratio"
    return None


def _combine(first: str | None, rest: list[str | None], verb: str) -> str | None:
    unit = first
    for other in rest:
        if unit in (None, "pure"):
            unit = other if other != "pure" else unit
            continue
        if other in (None, "pure") or other == unit:
            continue
        if unit in _SCALE_NAMES and other in _SCALE_NAMES:
            raise _UnitClash(f"{verb} an amount in {unit}s and one in {other}s")
        kinds = {unit, other}
        if "percent" in kinds and kinds & set(_SCALE_NAMES):
            scale = (kinds - {"percent"}).pop()
            raise _UnitClash(f"{verb} a percentage and an amount in {scale}s")
        if kinds == {"percent", "ratio"}:
            raise _UnitClash(f"{verb} a percentage and a ratio (one of them needs * 100 or / 100)")
    return unit


def _is_hundred(node: Any, right: bool = False) -> bool:
    import ast

    sides = [node.right] if right else [node.left, node.right]
    return any(isinstance(s, ast.Constant) and s.value == 100 for s in sides)


class LookupRelevant:
    """A lookup must rely on evidence that scores at least the verifier's ``lookup_min_score`` and
    shares at least ``min_overlap`` of the query's content words."""

    name = "lookup_relevant"

    def __init__(self, min_overlap: float = 0.3):
        self.min_overlap = float(min_overlap)

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
        words = set().union(*(content_words(e.text) for e in cited))
        for query in ctx.parsed.strings:
            q = content_words(query)
            if q and len(q & words) / len(q) < self.min_overlap:
                return Verdict.failed(self.name, f"the evidence shares {len(q & words)} of {len(q)} words with "
                                                 f"the query {query[:60]!r}")
        return Verdict.passed(self.name)


class AnswerFormat:
    """The final answer is a finite number, a yes/no or a short text."""

    name = "answer_format"

    def __call__(self, step: Step, ctx: CheckContext) -> Verdict:
        if step.target != ANSWER:
            return Verdict.passed(self.name)
        v = step.value
        if isinstance(v, bool) or isinstance(v, (int, float)):
            return Verdict.passed(self.name)
        if isinstance(v, str) and 0 < len(v) <= 200:
            return Verdict.passed(self.name)
        return Verdict.failed(self.name, f"answer must be a number, yes/no or short text, got {v!r}")


# Questions whose answer is the result of arithmetic, not a number read off the page.
_ASKS_COMPUTATION = re.compile(
    r"\b(change[ds]?|difference|differ|growth|grew|average|mean|ratio|cagr)\b|"
    r"\bhow (?:many|much) (?:more|less|fewer|longer|shorter|higher|lower|bigger|smaller)\b|"
    r"\bby (?:how much|what (?:percent(?:age)?|amount))\b", re.I)


_ASKS_WHICH = re.compile(r"\b(which|what|in what)\s+(year|period|quarter|month|segment|one)\b|^\s*which\b", re.I)


def _cue_pattern(cue: str) -> str:
    """The stem of a computation word as a pattern for its forms on a page ("change" -> chang\\w*)."""
    stems = {"change": "chang", "changes": "chang", "changed": "chang", "differ": "differ", "difference": "differ",
             "growth": "grow", "grew": "grow", "average": "averag", "mean": "mean"}
    word = cue.split()[-1]
    return rf"\b{stems.get(word, word[:5])}\w*|%\s*chang|\bincrease|\bdecrease" if word else "$^"


class Computed:
    """When the question asks for a computed result (a change, a difference, an average, a ratio),
    the answer may not be a number copied from the task or the evidence unchanged: a policy that
    copies a figure off the page would otherwise pass every other check."""

    name = "computed"

    def __call__(self, step: Step, ctx: CheckContext) -> Verdict:
        asked = _ASKS_COMPUTATION.search(ctx.task) if step.target == ANSWER and ctx.parsed is not None else None
        if asked is None:
            return Verdict.passed(self.name)
        if _ASKS_WHICH.search(ctx.task):
            return Verdict.passed(self.name)  # "in which year was the ratio larger?" names, not computes
        copied = _copied(ctx.parsed.tree, {s.target: s for s in ctx.steps}, ctx)
        if copied is None or any(n.is_year and n.value == copied for n in find_numbers(ctx.task)):
            return Verdict.passed(self.name)
        cue = asked.group(0).lower()
        for e in ctx.evidence:  # the page itself states the result ("Revenue: % change = 1.6")
            if re.search(_cue_pattern(cue), e.text, re.I) and any(abs(n.value) == abs(copied)
                                                                   for n in find_numbers(e.text)):
                return Verdict.passed(self.name)
        return Verdict.failed(self.name, f"the question asks for a computed result ({cue!r}) but the answer "
                                         f"copies {format_value(copied)} from the page")


def _copied(node: Any, steps: dict[str, Step], ctx: CheckContext, depth: int = 0) -> float | None:
    """The number an expression copies unchanged (a literal of the page, a lookup, or a name of a step
    that is one), or None when it computes something."""
    import ast

    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd):
        node = node.operand
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value) if ctx.pool.source(node.value) not in (None, *ALLOWED_SOURCES) else None
    if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "lookup":
        return None  # what a lookup returns is judged by lookup_relevant; its value is shown by the step
    if isinstance(node, ast.Name) and node.id in steps and depth < 8:
        earlier = steps[node.id]
        tree = ctx.verifier.tree_of(earlier)
        if tree is None:
            return None
        if isinstance(tree, ast.Call) and getattr(tree.func, "id", "") == "lookup":
            v = earlier.value
            return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None
        return _copied(tree, steps, ctx, depth + 1)
    return None


class Quoted:
    """A step that says what the next one will act on (``# next: <words>``, as a policy trained on plan
    traces writes: ``dca:chain-reasoner``) must quote the task word for word, continuing where the
    previous step's quote ended. A misread or skipped sentence is caught before a step acts on it.
    Steps without such a comment pass."""

    name = "quoted"

    def __call__(self, step: Step, ctx: CheckContext) -> Verdict:
        quote = plan_quote(step.text)
        if quote is None:
            return Verdict.passed(self.name)
        task = " ".join(ctx.task.split())
        if not quote or quote not in task:
            return Verdict.failed(self.name, f"{step.target} quotes {quote[:60]!r}, which is not in the task")
        previous = next((q for q in map(plan_quote, (s.text for s in reversed(ctx.steps))) if q), None)
        if previous is None:
            return Verdict.passed(self.name)
        after = [task[m.end():].lstrip() for m in re.finditer(re.escape(previous), task)]
        if not after or any(rest.startswith(quote) for rest in after):  # an unfound previous quote says nothing
            return Verdict.passed(self.name)
        return Verdict.failed(self.name, f"{step.target} quotes {quote[:60]!r}, but after the previous quote "
                                         f"the task goes on {after[0][:60]!r}")


class Plausible:
    """Word-problem sense (for GSM8K-like pipelines, not financial ones): no negative quantity when
    the task states none, and the answer to "how many" is a whole, non-negative number."""

    name = "plausible"

    def __call__(self, step: Step, ctx: CheckContext) -> Verdict:
        v = step.value
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return Verdict.passed(self.name)
        if v < 0 and not any(n.value < 0 for n in find_numbers(ctx.task)):
            return Verdict.failed(self.name, f"{step.target} = {format_value(v)} is negative, but the task "
                                             f"has no negative quantity")
        if step.target == ANSWER and re.search(r"\bhow many\b", ctx.task, re.I) and not float(v).is_integer():
            unit = re.search(r"\bhow many\s+(\w+)", ctx.task, re.I)
            if unit and not re.fullmatch(r"(hours?|minutes?|miles?|dollars?|pounds?|kilo\w*|liters?|gallons?|"
                                         r"cups?|feet|inches|meters?|years?|days?|weeks?|times|percent)",
                                         unit.group(1).lower()):
                return Verdict.failed(self.name, f"'how many {unit.group(1)}' needs a whole number, "
                                                 f"got {format_value(v)}")
        return Verdict.passed(self.name)


class StepScore:
    """A learned step scorer (process reward model) as a check: the step passes if the scorer gives
    it at least ``min_score``. ``scorer`` is an object with ``score(task, steps, step) -> float``
    (or a callable with that signature), or a ``"module:attr"`` naming one (or a factory of one)."""

    name = "step_scorer"

    def __init__(self, scorer: Any = None, min_score: float = 0.5, **options: Any):
        if scorer is None:
            raise ValueError("step_scorer: needs a scorer (an object, a callable or 'module:attr')")
        if isinstance(scorer, str):
            scorer = _resolve(scorer, options)
        fn = getattr(scorer, "score", scorer)
        if not callable(fn):
            raise TypeError(f"step_scorer: {type(scorer).__name__} has no score(task, steps, step) method")
        self._score = fn
        self.min_score = float(min_score)

    def __call__(self, step: Step, ctx: CheckContext) -> Verdict:
        if ctx.parsed is None or step.error:
            return Verdict.passed(self.name)
        s = float(self._score(ctx.task, ctx.steps, step))
        step.score = s
        if s < self.min_score:
            return Verdict.failed(self.name, f"the step scorer rates this step {s:.2f}, below {self.min_score:.2f}")
        return Verdict.passed(self.name)


def _resolve(target: str, options: dict[str, Any]) -> Any:
    from dca._lazy import import_attr

    try:
        obj = import_attr(target)
    except ValueError as exc:
        raise ValueError(f"step_scorer: cannot load {target!r}: {exc}") from None
    if isinstance(obj, type) or options:
        obj = obj(**options)
    return obj


CHECKS: dict[str, Callable[..., Check]] = {
    "parses": Parses,
    "executes": Executes,
    "stated_value": StatedValue,
    "grounded": Grounded,
    "units": Units,
    "lookup_relevant": LookupRelevant,
    "answer_format": AnswerFormat,
    "computed": Computed,
    "quoted": Quoted,
    "plausible": Plausible,
    "step_scorer": StepScore,
}
DEFAULT_CHECKS = ("parses", "executes", "stated_value", "grounded", "units", "lookup_relevant", "answer_format",
                  "computed", "quoted")


def register_check(name: str, factory: Callable[..., Check]) -> None:
    """Make a check available to pipelines by name (``verifier.checks: [..., name]``)."""
    CHECKS[name] = factory


def check_factory(name: str) -> Callable[..., Check]:
    """The factory of a check named in a pipeline: a registered name, or ``"package.module:attr"``
    naming a check class (or a function returning a check). Raises ``ValueError`` with one line."""
    if name in CHECKS:
        return CHECKS[name]
    if ":" in name:
        from dca._lazy import import_attr

        try:
            factory = import_attr(name)
        except ValueError as exc:
            raise ValueError(f"check {name!r}: {exc}") from None
        if not callable(factory):
            raise ValueError(f"check {name!r} is not a class or a function that makes a check")
        return factory
    import difflib

    close = difflib.get_close_matches(name, list(CHECKS), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ValueError(f"unknown check {name!r}; {hint}known: {', '.join(CHECKS)}, or 'package.module:ClassName'")


def make_check(name: str, options: dict[str, Any] | None = None,
               factory: Callable[..., Check] | None = None) -> Check:
    """A check built from its pipeline name (or its already resolved ``factory``) and options
    (``ValueError`` when it cannot be)."""
    factory = factory or check_factory(name)
    try:
        check = factory(**(options or {}))
    except TypeError as exc:
        raise ValueError(f"check {name!r} rejected the options {options or {}}: {exc}") from None
    if not callable(check) or not getattr(check, "name", None):
        raise ValueError(f"check {name!r} made a {type(check).__name__}, not a check "
                         f"(an object with a 'name' and __call__(step, ctx) -> Verdict)")
    return check


# --------------------------------------------------------------------------- failure policy


@dataclass
class FailurePolicy:
    """What the graph does when a step fails its checks.

    At one position the graph proposes up to ``retries`` times; try ``i`` (0-based) samples at
    ``temperature(i)`` = ``temperatures[i]``, the last entry repeating (so ``[0.0, 0.7, 1.0]`` is
    greedy first, then hotter), and lines already rejected there are passed as ``avoid``. When the
    tries are spent it undoes the last verified step (at most ``backtracks`` times per run), marks
    that step's line as rejected at its position, together with the lines rejected after it that
    never read its name, and proposes again there. When neither is left,
    the run stops "unverified" with the failed check's name and reason. ``max_steps`` verified
    steps without an answer also stop it.
    """

    retries: int = 3
    temperatures: list[float] = field(default_factory=lambda: [0.0, 0.7, 1.0])
    backtracks: int = 1
    max_steps: int = 12

    def __post_init__(self) -> None:
        if not isinstance(self.retries, int) or self.retries < 1:
            raise ValueError(f"FailurePolicy.retries must be an integer >= 1, got {self.retries!r}")
        if not isinstance(self.backtracks, int) or self.backtracks < 0:
            raise ValueError(f"FailurePolicy.backtracks must be an integer >= 0, got {self.backtracks!r}")
        if not isinstance(self.max_steps, int) or self.max_steps < 1:
            raise ValueError(f"FailurePolicy.max_steps must be an integer >= 1, got {self.max_steps!r}")
        self.temperatures = [float(t) for t in self.temperatures]
        if not self.temperatures or any(not 0.0 <= t <= 5.0 for t in self.temperatures):
            raise ValueError(f"FailurePolicy.temperatures must be a non-empty list of values in 0..5, "
                             f"got {self.temperatures!r}")

    def temperature(self, attempt: int) -> float:
        t = self.temperatures
        return t[min(attempt, len(t) - 1)] if t else 0.0

    @property
    def attempt_budget(self) -> int:
        """The most step attempts a run can make under this policy (for graph recursion limits)."""
        return self.max_steps * self.retries * (self.backtracks + 1) + self.max_steps

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- verifier


class Verifier:
    """Runs checks on every step, the final answer and the worded sentence.

    >>> v = Verifier(checks=["parses", "executes", "grounded"], constants=[0, 1, 100])
    """

    def __init__(self, checks: Iterable[str | Check] | None = None, *,
                 constants: Iterable[float] = DEFAULT_CONSTANTS, lookup_min_score: float = 0.2,
                 policy: FailurePolicy | None = None, unit_factors: bool = True,
                 rules: Iterable[Any] = ()):
        from dca.rules import make_rules

        self.checks: list[Check] = [self._make(c) for c in (checks if checks is not None else DEFAULT_CHECKS)]
        self.rules = make_rules(rules)  # the pipeline's constitution (dca.rules), checked before the checks
        self.constants = sorted({float(c) for c in constants})
        self.lookup_min_score = float(lookup_min_score)
        self.policy = policy or FailurePolicy()
        self.unit_factors = unit_factors
        self._pools: OrderedDict[tuple, NumberPool] = OrderedDict()
        self._trees: OrderedDict[str, Any] = OrderedDict()

    @staticmethod
    def _make(check: str | Check) -> Check:
        if isinstance(check, str):
            return make_check(check)
        if not callable(check) or not getattr(check, "name", None):
            raise TypeError(f"a check needs a 'name' and __call__(step, ctx) -> Verdict; got {type(check).__name__}")
        return check

    def add_check(self, check: str | Check) -> "Verifier":
        self.checks.append(self._make(check))
        return self

    @property
    def check_names(self) -> list[str]:
        return [c.name for c in self.checks]

    def pool(self, task: str, evidence: list[Evidence]) -> NumberPool:
        """The grounding pool for a task and its evidence, cached (a run checks many steps against it)."""
        key = (task, tuple((e.id, len(e.text)) for e in evidence))
        pool = self._pools.get(key)
        if pool is None:
            pool = grounding_pool(task, evidence, self.constants, self.unit_factors)
            self._pools[key] = pool
            if len(self._pools) > 64:
                self._pools.popitem(last=False)
        else:
            self._pools.move_to_end(key)
        return pool

    def tree_of(self, step: Step) -> Any:
        """The expression tree of an earlier, verified step (cached; None if it cannot be read)."""
        expr = step.expr or step.text.partition("=")[2].split("#")[0]
        if expr not in self._trees:
            try:
                self._trees[expr] = parse_expression(expr.strip()).body
            except (SyntaxError, ValueError, RecursionError):
                self._trees[expr] = None
            if len(self._trees) > 4096:
                self._trees.popitem(last=False)
        return self._trees[expr]

    def rule_violation(self, text: str, parsed: ParsedStep | None, value: Value = None,
                       answer: bool = False) -> str | None:
        """The first rule a step breaks (``answer``: also the answer rules on ``value``), or None."""
        calls = parsed.calls if parsed is not None else frozenset()
        for rule in self.rules:
            why = rule.step_violation(text, calls) or (rule.answer_violation(value) if answer else None)
            if why:
                return why
        return None

    def check_step(self, step: Step, ctx: CheckContext) -> Verdict:
        """The first failing rule's or check's verdict, or a pass."""
        if self.rules:
            is_answer = step.target == ANSWER and step.error is None
            why = self.rule_violation(step.text, ctx.parsed, step.value, answer=is_answer)
            if why:
                return Verdict.failed("rules", why)
        for check in self.checks:
            verdict = check(step, ctx)
            if not verdict.ok:
                return verdict
        return Verdict.passed("all")

    def check_trace(self, task: str, lines: Iterable[str], evidence: Iterable[Evidence] = (),
                    interpreter: Interpreter | None = None) -> list[Step]:
        """Execute and check a whole trace outside the graph (benchmarks, data filtering); every
        line becomes a ``Step`` with its value and verdict. Checking stops after the first failure."""
        interp = interpreter or Interpreter()
        evidence = list(evidence)
        done: list[Step] = []
        env: dict[str, Value] = {}
        for i, line in enumerate(lines):
            step = Step(text=line.strip(), index=i)
            parsed = None
            try:
                parsed = interp.parse(step.text)
                step.target, step.expr, step.kind, step.stated = parsed.target, parsed.expr, parsed.kind, parsed.stated
                step.value = interp.run(parsed, env)
            except StepError as exc:
                step.error = str(exc)
            ctx = CheckContext(task=task, evidence=evidence, steps=list(done), env=dict(env), parsed=parsed,
                               verifier=self)
            step.verdict = self.check_step(step, ctx)
            done.append(step)
            if not step.verdict.ok:
                break
            env[step.target] = step.value
        return done

    def check_wording(self, text: str, answer: Value) -> Verdict:
        """The worded sentence must state the verified value (as written, rounded, or as a percent)
        and break no rule."""
        if not text or not text.strip():
            return Verdict.failed("wording", "the sentence is empty")
        for rule in self.rules:
            why = rule.text_violation(text)
            if why:
                return Verdict.failed("rules", why)
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
