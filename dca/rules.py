"""Rules: a pipeline's written constitution, checked on every step and on the final answer.

A pipeline lists them under ``verifier.rules``; each names one kind of constraint::

    verifier:
      rules:
        - {forbid_functions: [sqrt], name: no square roots}
        - {step_must_not_match: "lookup\\(.*salary", name: no salary lookups}
        - {answer_must_not_match: "\\b\\d{3}-\\d{2}-\\d{4}\\b", name: no personal data}
        - {answer_range: [0, 1000000], name: plausible amounts}

A step that calls a forbidden function (or matches a forbidden pattern) is refused before it runs;
any violation is a verifier failure whose reason names the rule. The worded sentence is held to
the answer patterns too (the graph falls back to the template sentence, then stops unverified).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from dca.types import Value

RULE_KINDS = ("forbid_functions", "step_must_not_match", "answer_must_not_match", "answer_range")
MAX_PATTERN = 500


class RuleError(ValueError):
    """A rule that cannot be built (unknown kind, bad pattern, bad range)."""


@dataclass(frozen=True)
class Rule:
    """One constraint. ``kind`` is one of ``RULE_KINDS``; ``name`` is what a violation reports."""

    name: str
    kind: str
    functions: frozenset[str] = frozenset()
    pattern: re.Pattern | None = field(default=None, compare=False)
    low: float | None = None
    high: float | None = None

    @classmethod
    def from_mapping(cls, spec: Mapping[str, Any]) -> "Rule":
        """``{kind: argument, name: ..., ignore_case: ...}`` (exactly one kind key) -> ``Rule``."""
        kinds = [k for k in RULE_KINDS if spec.get(k) is not None]
        unknown = sorted(set(spec) - set(RULE_KINDS) - {"name", "ignore_case"})
        if unknown:
            raise RuleError(f"unknown rule key {unknown[0]!r}; expected one of {', '.join(RULE_KINDS)}")
        if len(kinds) != 1:
            raise RuleError(f"a rule needs exactly one of {', '.join(RULE_KINDS)}, got "
                            f"{', '.join(kinds) if kinds else 'none'}")
        kind, arg = kinds[0], spec[kinds[0]]
        name = str(spec.get("name") or f"{kind}: {arg}")
        if kind == "forbid_functions":
            if isinstance(arg, str):
                arg = [arg]
            if not arg or not all(isinstance(f, str) and f for f in arg):
                raise RuleError("forbid_functions must list function names")
            return cls(name, kind, functions=frozenset(arg))
        if kind == "answer_range":
            if (not isinstance(arg, (list, tuple)) or len(arg) != 2
                    or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in arg)):
                raise RuleError(f"answer_range must be [low, high], got {arg!r}")
            if arg[0] > arg[1]:
                raise RuleError(f"answer_range low {arg[0]} is above high {arg[1]}")
            return cls(name, kind, low=float(arg[0]), high=float(arg[1]))
        return cls(name, kind, pattern=compile_pattern(arg, bool(spec.get("ignore_case"))))

    # ------------------------------------------------------------------ checks
    def step_violation(self, text: str, calls: Iterable[str]) -> str | None:
        """Why a step (its text and the functions it calls) breaks this rule, or None."""
        if self.kind == "forbid_functions":
            bad = sorted(set(calls) & self.functions)
            if bad:
                return f"{self._label}: the step calls {bad[0]}(), which is forbidden"
        elif self.kind == "step_must_not_match" and self.pattern is not None:
            m = self.pattern.search(text)
            if m:
                return f"{self._label}: the step contains {_shown(m.group(0))}"
        return None

    def answer_violation(self, value: Value) -> str | None:
        """Why a final answer value breaks this rule, or None."""
        if self.kind == "answer_range" and isinstance(value, (int, float)) and not isinstance(value, bool):
            if not self.low <= value <= self.high:  # type: ignore[operator]
                return f"{self._label}: the answer {value:g} is outside [{self.low:g}, {self.high:g}]"
        if self.kind == "answer_must_not_match" and value is not None:
            from dca.reasoning.steps import format_value

            return self.text_violation(value if isinstance(value, str) else format_value(value), "answer")
        return None

    def text_violation(self, text: str, what: str = "sentence") -> str | None:
        """Why a worded answer breaks this rule, or None."""
        if self.kind == "answer_must_not_match" and self.pattern is not None:
            m = self.pattern.search(text or "")
            if m:
                return f"{self._label}: the {what} contains {_shown(m.group(0))}"
        return None

    @property
    def _label(self) -> str:
        return f"rule {self.name!r}"


def compile_pattern(pattern: Any, ignore_case: bool = False) -> re.Pattern:
    """A rule's regular expression, with a one-line error naming what is wrong."""
    if not isinstance(pattern, str) or not pattern:
        raise RuleError(f"a rule pattern must be a non-empty regular expression, got {pattern!r}")
    if len(pattern) > MAX_PATTERN:
        raise RuleError(f"a rule pattern may have at most {MAX_PATTERN} characters, got {len(pattern)}")
    try:
        return re.compile(pattern, re.IGNORECASE if ignore_case else 0)
    except re.error as exc:
        raise RuleError(f"invalid regular expression {pattern!r} ({exc.msg} at position {exc.pos})") from None


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


def make_rules(specs: Iterable[Rule | Mapping[str, Any] | Any]) -> list[Rule]:
    """Rules from ``Rule``s, mappings, or config objects with ``model_dump()``."""
    out = []
    for spec in specs or ():
        if isinstance(spec, Rule):
            out.append(spec)
            continue
        if hasattr(spec, "model_dump"):
            spec = spec.model_dump(exclude_none=True)
        if not isinstance(spec, Mapping):
            raise RuleError(f"a rule must be a mapping such as {{forbid_functions: [sqrt]}}, got {spec!r}")
        out.append(Rule.from_mapping(spec))
    return out


__all__ = ["RULE_KINDS", "Rule", "RuleError", "compile_pattern", "make_rules"]
