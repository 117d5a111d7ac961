"""Step errors of known kinds, injected into gold traces: what the verifier benchmark measures
recall on, what the compounding benchmark's reference policy makes, and negatives for a step scorer.

- ``arithmetic``: a step states a wrong value for its computation (``x2 = x1 + 6  # = 17``).
- ``ungrounded``: an operand is replaced by a number that appears nowhere: not in the problem, not
  an earlier step's result, and not 0, 1, 2 or 100 (which any step may use).
- ``misread``: an operand is replaced by another number the problem does contain (grounded, wrong).
- ``operation``: one operator is swapped (``+``/``-``, ``*``/``/``).
- ``dropped``: a step is skipped; later steps use its first operand in place of its result.
"""
from __future__ import annotations

import ast
import random
from dataclasses import dataclass

from dca.numbers import find_numbers, spelled_numbers
from dca.reasoning.steps import Interpreter, StepError, format_value, parse_expression, parse_step, values_match

KINDS = ("arithmetic", "ungrounded", "misread", "operation", "dropped")
UNIVERSAL = frozenset({0.0, 1.0, 2.0, 100.0})
_SWAP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult}


@dataclass
class Corruption:
    kind: str
    lines: list[str]  # the whole corrupted trace
    index: int  # the first line that differs from the gold trace
    note: str  # what was changed, for reports


def problem_numbers(question: str) -> set[float]:
    """Every value the problem text states (digits and words), as absolute values."""
    return {round(abs(n.value), 6) for n in find_numbers(question)} | {round(abs(v), 6) for v in
                                                                       spelled_numbers(question)}


def wrong_value(v: float, rng: random.Random) -> float:
    """A plausible wrong result for a step whose right result is ``v`` (off by a little, a digit, x10)."""
    while True:
        kind = rng.choice(("add", "add", "digit", "scale"))
        if kind == "add":
            w = v + rng.choice((-2, -1, 1, 2)) * (1 if float(v).is_integer() else 0.1 * max(abs(v), 1))
        elif kind == "digit":
            w = v + rng.choice((-10, 10, -100, 100))
        else:
            w = v * rng.choice((10, 0.1))
        if not values_match(w, v, rel=2e-3, abs_tol=2e-2):
            return round(w, 6)


def stranger_number(v: float, forbidden: set[float], rng: random.Random) -> float | None:
    """A number near ``v`` (same precision) that is not in ``forbidden``: a hallucinated operand."""
    integral = float(v).is_integer()
    span = max(2, int(abs(v) * 0.5)) if integral else max(abs(v) * 0.5, 0.1)
    for _ in range(50):
        if integral:
            r = float(v + rng.choice((-1, 1)) * rng.randint(1, span))
        else:
            decimals = max(1, len(format_value(abs(v), 10).partition(".")[2]))
            r = round(v + rng.choice((-1, 1)) * rng.uniform(0.05, 1) * span, decimals)
        if (v >= 0 > r) or r == v or round(abs(r), 6) in forbidden:
            continue
        return r
    return None


def _operands(tree: ast.AST) -> list[ast.AST]:
    """Number literals and names used as arithmetic operands (not function names)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            out.append(node)
        elif isinstance(node, ast.Name):
            out.append(node)
    calls = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return [n for n in out if id(n) not in calls]


def _swap_node(tree: ast.AST, old: ast.AST, new: ast.AST) -> None:
    """Put ``new`` where ``old`` (a node of ``tree``, by identity) is."""
    for node in ast.walk(tree):
        for name, value in ast.iter_fields(node):
            if value is old:
                setattr(node, name, new)
                return
            if isinstance(value, list) and any(item is old for item in value):
                value[[id(item) for item in value].index(id(old))] = new
                return
    raise ValueError("node not in tree")


class _Rename(ast.NodeTransformer):
    def __init__(self, name: str, stand_in: ast.AST):
        self.name, self.stand_in = name, stand_in

    def visit_Name(self, node: ast.Name) -> ast.AST:
        return parse_expression(ast.unparse(self.stand_in)).body if node.id == self.name else node


def _values(lines: list[str]) -> list[object]:
    env = Interpreter().run_trace(lines)
    return [env[parse_step(ln).target] for ln in lines]


def corrupt(kind: str, lines: list[str], question: str, rng: random.Random, k: int | None = None) -> Corruption | None:
    """One error of ``kind`` in a gold trace (at line ``k``, else a random line where it applies);
    None when the trace has no place for it, or the change would not alter any value."""
    if kind not in KINDS:
        raise ValueError(f"unknown error kind {kind!r}; expected one of {', '.join(KINDS)}")
    try:
        values = _values(lines)
    except StepError:
        return None
    places = list(range(len(lines))) if k is None else [k]
    rng.shuffle(places)
    for i in places:
        out = _corrupt_at(kind, lines, values, i, question, rng)
        if out is not None:
            return out
    return None


def _corrupt_at(kind: str, lines: list[str], values: list[object], i: int, question: str,
                rng: random.Random) -> Corruption | None:
    line = lines[i]
    target, _, expr = line.partition(" = ")
    tree = parse_expression(expr)
    env = {parse_step(ln).target: v for ln, v in zip(lines[:i], values[:i])}
    if kind == "arithmetic":
        v = values[i]
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return None
        w = wrong_value(float(v), rng)
        return Corruption(kind, lines[:i] + [f"{line}  # = {format_value(w)}"] + lines[i + 1:], i,
                          f"states {format_value(w)} for {format_value(v)}")
    if kind in ("ungrounded", "misread"):
        ops = _operands(tree)
        if not ops:
            return None
        old = rng.choice(ops)
        v = old.value if isinstance(old, ast.Constant) else env.get(old.id)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return None
        known = problem_numbers(question)
        if kind == "ungrounded":
            earlier = {round(abs(float(x)), 6) for x in values[:i] if isinstance(x, (int, float))}
            r = stranger_number(float(v), known | earlier | UNIVERSAL, rng)
        else:
            choices = sorted(x for x in known if x != round(abs(v), 6) and x > 0)
            r = rng.choice(choices) if choices else None
        if r is None:
            return None
        _swap_node(tree, old, ast.Constant(r if not float(r).is_integer() else int(r)))
        new_line = f"{target} = {ast.unparse(tree)}"
        return _changed(kind, lines, i, new_line, f"operand {ast.unparse(old)} -> {format_value(r)}")
    if kind == "operation":
        binops = [n for n in ast.walk(tree) if isinstance(n, ast.BinOp) and type(n.op) in _SWAP]
        if not binops:
            return None
        node = rng.choice(binops)
        before = type(node.op)
        node.op = _SWAP[before]()
        new_line = f"{target} = {ast.unparse(tree)}"
        return _changed(kind, lines, i, new_line, f"{_SYMBOL[before]} -> {_SYMBOL[type(node.op)]}")
    if kind == "dropped":
        if i == len(lines) - 1:
            return None
        ops = _operands(tree)
        if not ops:
            return None
        stand_in = ops[0]
        later = []
        for ln in lines[i + 1:]:
            t, _, e = ln.partition(" = ")
            later.append(f"{t} = {ast.unparse(_Rename(target, stand_in).visit(parse_expression(e)))}")
        new = lines[:i] + later
        if new[i:] == lines[i + 1:]:
            return None  # nothing used the dropped step
        try:
            if values_match(_values(new)[-1], values[-1]):
                return None
        except StepError:
            pass
        return Corruption(kind, new, i, f"dropped {line!r}, using {ast.unparse(stand_in)} instead")
    return None


_SYMBOL = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


def _changed(kind: str, lines: list[str], i: int, new_line: str, note: str) -> Corruption | None:
    """The trace with line ``i`` replaced, if that changes line ``i``'s value."""
    new = lines[:i] + [new_line] + lines[i + 1:]
    try:
        before, after = _values(lines)[i], _values(new[: i + 1])[i]
    except StepError:
        return Corruption(kind, new, i, note)
    if values_match(before, after):
        return None
    return Corruption(kind, new, i, note)
