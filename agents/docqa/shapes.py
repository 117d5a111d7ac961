"""Program shapes: the step templates most report questions follow, and their operand slots.

FinQA's programs and TAT-QA's derivations, converted to dca's step language, fall mostly into a
few shapes (change, percent change, ratio, sum, average, comparison, a performance graph's return
against its base 100, a whole table row's sum / mean / max / min, the year in which a row's value
is the larger or smaller). A shape is a template whose slots ``A`` to ``D`` (or ``ROW``, every
number of one table row) take operand values, and ``YA`` / ``YB`` the years of the columns A and B
sit in; ``canonical`` maps a gold trace back to its shape and slot values, which is how the
training labels are made.
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
    row: bool = False  # ``ROW`` stands for every number of one table row (FinQA's table_sum, ...)
    years: bool = False  # ``YA`` / ``YB`` stand for the years of slot A's and slot B's columns

    def render(self, values: list[float], percent: bool = False, years: list[int] | None = None) -> list[str]:
        names = {chr(65 + i): format_value(v) for i, v in enumerate(values)}
        row = ", ".join(format_value(v) for v in values)
        out = []
        for line in self.lines:
            line = line.replace("ROW", row) if self.row else line
            line = re.sub(r"\b([A-D])\b", lambda m: _operand(names[m.group(1)]), line)
            if self.years:
                if not years or len(years) < 2:
                    raise ValueError(f"shape {self.name} needs the years of its two operands")
                line = line.replace("YA", str(years[0])).replace("YB", str(years[1]))
            out.append(line)
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
    Shape("change_ratio_first", ("x1 = A - B", "answer = x1 / A"), 2, True),
    Shape("share_of_sum", ("x1 = A + B", "answer = A / x1"), 2, True),
    # performance graphs: an index that starts at 100
    Shape("less_base", ("answer = A - 100",), 1),
    Shape("base_return", ("x1 = A - 100", "answer = x1 / 100"), 1, True),
    Shape("return_gap", ("x1 = A - 100", "x2 = x1 / 100", "x3 = B - 100", "x4 = x3 / 100", "answer = x2 - x4"),
          2, True),
    Shape("change_gap", ("x1 = A - B", "x2 = x1 / B", "x3 = C - D", "x4 = x3 / D", "answer = x2 - x4"), 4, True),
    Shape("row_sum", ("answer = sum(ROW)",), 0, row=True),
    Shape("row_mean", ("answer = mean(ROW)",), 0, row=True),
    Shape("row_max", ("answer = max(ROW)",), 0, row=True),
    Shape("row_min", ("answer = min(ROW)",), 0, row=True),
    # "in which year was X larger?": the year of the larger (smaller) of two cells of one row
    Shape("year_larger", ("answer = YA if A > B else YB",), 2, years=True),
    Shape("year_smaller", ("answer = YA if A < B else YB",), 2, years=True),
)}
NAMES = list(SHAPES)

_NUM = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")
_PAREN = re.compile(r"\(([A-D])\)")
_ROW = re.compile(r"answer = (sum|mean|max|min)\((.*)\)")
_YEARS = re.compile(r"((?:19|20)\d\d) if (.+) else ((?:19|20)\d\d)")
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
    """``(shape name, slot values, times 100)`` of a gold trace, or None for another shape.

    A trace written as a shape's lines maps directly; otherwise one whose operands, put in some
    order into a shape, give the same answer (``2901 + (a + b)`` is ``add3``) maps by value."""
    if not lines:
        return None
    return _by_form(lines) or _by_value(lines)


def _by_form(lines: list[str]) -> tuple[str, list[float], bool] | None:
    m = _ROW.fullmatch(lines[-1].split("#")[0].strip()) if len(lines) == 1 else None
    if m and len(args := [a.strip() for a in m.group(2).split(",")]) > (1 if m.group(1) in ("max", "min") else 3):
        try:
            return f"row_{m.group(1)}", [float(a.strip("()")) for a in args], False
        except ValueError:
            return None
    slots: dict[float, str] = {}
    pattern = []
    for line in lines:
        target, _, expr = line.partition("=")
        expr = expr.split("#")[0].strip()
        years = _YEARS.fullmatch(expr) if len(lines) == 1 else None
        if years:  # the years are the columns', not operands
            expr = years.group(2)

        def slot(m: re.Match) -> str:
            v = float(m.group(0))
            before = expr[: m.start()].rstrip()
            if v in (1, 100) or (before.endswith("/") and v in (2, 3) and m.end() == len(expr)):
                return format_value(v)
            if v not in slots:
                slots[v] = chr(65 + len(slots)) if len(slots) < 4 else "?"
            return slots[v]

        body = _PAREN.sub(r"\1", _NUM.sub(slot, expr))
        pattern.append(f"{target.strip()} = " + (f"YA if {body} else YB" if years else body))
    pattern = _merged(pattern)
    times100 = pattern[-1].endswith(" * 100")
    if times100:
        pattern[-1] = pattern[-1][: -len(" * 100")]
    key = tuple(pattern)
    for shape in SHAPES.values():
        if shape.lines == key and (not times100 or shape.percent_step):
            return shape.name, sorted(slots, key=lambda v: slots[v]), times100
    return None


def _by_value(lines: list[str]) -> tuple[str, list[float], bool] | None:
    from itertools import permutations

    from dca.reasoning.steps import Interpreter, StepError

    interp = Interpreter()
    try:
        gold = interp.run_trace(lines).get("answer")
    except StepError:
        return None
    if isinstance(gold, bool) or not isinstance(gold, (int, float)):
        return None
    literals = [float(m.group(0)) for line in lines for m in _NUM.finditer(line.partition("=")[2].split("#")[0])]
    values = list(dict.fromkeys(v for v in literals if v not in (1, 100)))
    for shape in SHAPES.values():
        if shape.row or shape.years or shape.slots != len(values):
            continue
        for perm in permutations(values):
            for times100 in (False, True) if shape.percent_step else (False,):
                try:
                    got = interp.run_trace(shape.render(list(perm), percent=times100)).get("answer")
                except StepError:
                    continue
                if isinstance(got, (int, float)) and not isinstance(got, bool) and \
                        abs(got - gold) <= 1e-9 * max(1.0, abs(gold)):
                    return shape.name, list(perm), times100
    return None
