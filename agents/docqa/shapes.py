"""Program shapes: the step templates most report questions follow, and their operand slots.

FinQA's programs and TAT-QA's derivations, converted to dca's step language, fall mostly into a
few shapes (change, percent change, ratio, sum, average, comparison). A shape is a template whose
slots ``A``, ``B``, ``C`` take operand values; ``canonical`` maps a gold trace back to its shape and
slot values, which is how the training labels are made.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from dca.reasoning.steps import format_value


@dataclass(frozen=True)
class Shape:
    """A step template. ``percent_step`` marks a shape whose result is a ratio that a percentage
    question states times 100; ``order`` says how slot A relates to slot B ("later"/"earlier" year,
    "part" of a "whole", or "" when the question's wording decides)."""

    name: str
    lines: tuple[str, ...]
    slots: int
    percent_step: bool = False
    order: str = ""

    def render(self, values: list[float], percent: bool = False) -> list[str]:
        names = {chr(65 + i): format_value(v) for i, v in enumerate(values)}
        out = []
        for line in self.lines:
            out.append(re.sub(r"\b([A-C])\b", lambda m: _operand(names[m.group(1)]), line))
        if percent and self.percent_step:
            out[-1] = out[-1] + " * 100"
        return out


def _operand(text: str) -> str:
    return f"({text})" if text.startswith("-") else text


SHAPES: dict[str, Shape] = {s.name: s for s in (
    Shape("value", ("answer = A",), 1),
    Shape("subtract", ("answer = A - B",), 2, order="later"),
    Shape("change_ratio", ("x1 = A - B", "answer = x1 / B"), 2, True, order="later"),
    Shape("divide", ("answer = A / B",), 2, True, order="part"),
    Shape("add", ("answer = A + B",), 2),
    Shape("average", ("x1 = A + B", "answer = x1 / 2"), 2),
    Shape("greater", ("answer = A > B",), 2),
    Shape("multiply", ("answer = A * B",), 2),
    Shape("growth", ("x1 = A / B", "answer = x1 - 1"), 2, True, order="later"),
    Shape("diff_ratio", ("x1 = A - B", "answer = x1 / C"), 3, True, order="later"),
    Shape("add3", ("answer = A + B + C",), 3),
    Shape("average3", ("x1 = A + B + C", "answer = x1 / 3"), 3),
)}
NAMES = list(SHAPES)

_NUM = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")
_PAREN = re.compile(r"\(([A-C])\)")
_SAME = {"answer = mean(A, B)": "x1 = A + B|answer = x1 / 2", "answer = mean(A, B, C)": "x1 = A + B + C|answer = x1 / 3",
         "answer = sum(A, B, C)": "answer = A + B + C", "answer = sum(A, B)": "answer = A + B"}


def _merged(pattern: list[str]) -> list[str]:
    """Write-ups that say the same thing one way: ``x2 = x1 / B; answer = x2 * 100`` as one line."""
    if len(pattern) >= 2 and re.fullmatch(r"answer = (x\d+) \* 100", pattern[-1]):
        name = pattern[-1].split()[2]
        if pattern[-2].startswith(name + " = "):
            pattern = pattern[:-2] + ["answer = " + pattern[-2].split(" = ", 1)[1] + " * 100"]
    if len(pattern) == 1 and pattern[0] in _SAME:
        pattern = _SAME[pattern[0]].split("|")
    return pattern


def canonical(lines: list[str]) -> tuple[str, list[float], bool] | None:
    """``(shape name, slot values, times 100)`` of a gold trace, or None for another shape."""
    if not lines:
        return None
    slots: dict[float, str] = {}
    pattern = []
    for line in lines:
        target, _, expr = line.partition("=")
        expr = expr.split("#")[0].strip()

        def slot(m: re.Match) -> str:
            v = float(m.group(0))
            before = expr[: m.start()].rstrip()
            if v in (1, 100) or (before.endswith("/") and v in (2, 3) and m.end() == len(expr)):
                return format_value(v)
            if v not in slots:
                slots[v] = chr(65 + len(slots)) if len(slots) < 3 else "?"
            return slots[v]

        body = _PAREN.sub(r"\1", _NUM.sub(slot, expr))
        pattern.append(f"{target.strip()} = {body}")
    pattern = _merged(pattern)
    times100 = pattern[-1].endswith(" * 100")
    if times100:
        pattern[-1] = pattern[-1][: -len(" * 100")]
    key = tuple(pattern)
    for shape in SHAPES.values():
        if shape.lines == key and (not times100 or shape.percent_step):
            return shape.name, sorted(slots, key=lambda v: slots[v]), times100
    return None
