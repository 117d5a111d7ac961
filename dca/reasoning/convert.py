"""Converters from real datasets into the step language (DESIGN.md): gold traces to learn from and to check.

- ``gsm8k_trace``: each calculator annotation ``<<48/2=24>>`` becomes a step ``x1 = 48 / 2`` whose stated
  value (24) is kept; a number that repeats an earlier result becomes that step's name.
- ``finqa_trace``: ``subtract(5829, 5735), divide(#0, 5735)`` becomes ``x1 = 5829 - 5735`` /
  ``answer = x1 / 5735``; constants, percents, ``greater`` and the table operations are spelt out.
- ``tatqa_trace``: an infix derivation ``(1,496.5 - 1,202.9)/1,202.9`` is split into one step per
  operator group, ending ``* 100`` where the dataset's percent answer needs it.

Every converter returns a ``Converted``: plain step lines (no comments: what a policy learns to write),
the dataset's stated value per line, the dataset's answer and warnings about anything it had to guess.
"""
from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable

from dca.numbers import find_numbers
from dca.reasoning.steps import ANSWER, Interpreter, StepError, format_value, parse_expression, values_match
from dca.types import Value


@dataclass
class Converted:
    """A gold trace in the step language, with the dataset's own values to check it against."""

    lines: list[str]
    stated: list[float | None]
    answer: Value
    warnings: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def run(self, interpreter: Interpreter | None = None) -> list[Value]:
        """The value of every line, in order (raises ``StepError`` on the first line that fails)."""
        interp = interpreter or Interpreter()
        env: dict[str, Value] = {}
        out: list[Value] = []
        for line in self.lines:
            parsed = interp.parse(line)
            env[parsed.target] = interp.run(parsed, env)
            out.append(env[parsed.target])
        return out


class ConvertError(ValueError):
    """A dataset record that cannot be expressed in the step language (the message says why)."""


# --------------------------------------------------------------------------- shared pieces


_PLAIN_INT = re.compile(r"-?[1-9]\d{0,14}|0")


def number_text(text: str | float | int) -> str:
    """A number as a step literal: ``"1,496.50"`` -> ``1496.5``, ``".6"`` -> ``0.6``, ``"007"`` -> ``7``."""
    s = str(text).replace(",", "").strip()
    if _PLAIN_INT.fullmatch(s):
        return s
    try:
        d = Decimal(s)
    except InvalidOperation:
        raise ConvertError(f"not a number: {text!r}") from None
    if not d.is_finite():
        raise ConvertError(f"not a finite number: {text!r}")
    out = format(d.normalize(), "f")
    return "0" if out in ("-0", "") else out


def _decimals(x: float) -> int:
    s = number_text(repr(float(x)))
    return len(s.split(".")[1]) if "." in s else 0


def rounds_to(value: Value, stated: float | None) -> bool:
    """Does ``value`` agree with a stated value written to fewer digits (``0.56197`` vs ``0.56``)?"""
    if stated is None or value is None or isinstance(value, (bool, str)):
        return stated is None or value == stated
    if values_match(value, stated, rel=1e-4):
        return True
    d = _decimals(stated)
    return abs(float(value) - stated) <= 0.5 * 10 ** -d + 1e-9


class _Trace:
    """Collects step lines with fresh names x1, x2, ...; ``finish`` assigns ``answer``."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.stated: list[float | None] = []
        self.warnings: list[str] = []

    def names(self) -> dict[float, str]:
        """Each stated value -> the latest step name that computed it."""
        return {s: f"x{i + 1}" for i, s in enumerate(self.stated) if s is not None}

    def add(self, expr: str, stated: float | None = None) -> str:
        name = f"x{len(self.lines) + 1}"
        self.lines.append(f"{name} = {expr}")
        self.stated.append(stated)
        return name

    def finish(self, expr: str, stated: float | None, answer: Value) -> Converted:
        self.lines.append(f"{ANSWER} = {expr}")
        self.stated.append(stated)
        return Converted(self.lines, self.stated, answer, self.warnings)


_OP_TEXT = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
            ast.Pow: "**"}
_GROUP = {ast.Add: "add", ast.Sub: "add", ast.Mult: "mul", ast.Div: "mul", ast.FloorDiv: "mul", ast.Mod: "mul",
          ast.Pow: "pow"}


def _literal(node: ast.AST) -> str | None:
    """The text of a (possibly negated) number literal, else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return number_text(repr(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _literal(node.operand)
        if inner is not None:
            return inner[1:] if inner.startswith("-") else "-" + inner
    return None


def _split(node: ast.AST, trace: _Trace) -> tuple[str, str]:
    """Emit the sub-expressions of ``node`` as steps; return (expression text, its operator group).

    A chain of one precedence level (``a + b - c``, ``a / b * c``) stays one step; every nested
    group under it becomes an earlier step referred to by name.
    """
    lit = _literal(node)
    if lit is not None:
        return lit, "leaf"
    if isinstance(node, ast.Name):
        return node.id, "leaf"
    if isinstance(node, ast.BinOp) and type(node.op) in _OP_TEXT:
        group = _GROUP[type(node.op)]
        chain: list[tuple[str, ast.AST]] = []
        cur: ast.AST = node
        while group != "pow" and isinstance(cur, ast.BinOp) and _GROUP.get(type(cur.op)) == group:
            chain.append((_OP_TEXT[type(cur.op)], cur.right))
            cur = cur.left
        if group == "pow":
            chain, cur = [("**", node.right)], node.left
        parts = [_operand(cur, trace)]
        for op, right in reversed(chain):
            parts += [op, _operand(right, trace)]
        return " ".join(parts), group
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return "-" + _operand(node.operand, trace), "neg"
    raise ConvertError(f"unsupported expression part {type(node).__name__}")


def _operand(node: ast.AST, trace: _Trace) -> str:
    text, group = _split(node, trace)
    if group == "leaf":
        return f"({text})" if text.startswith("-") else text
    return trace.add(text)


# --------------------------------------------------------------------------- GSM8K

_ANNOTATION = re.compile(r"<<([^<>]*)>>")
_FINAL = re.compile(r"####\s*(.+?)\s*$", re.S)
_SYMBOLS = {"×": "*", "÷": "/", "−": "-", "–": "-", "—": "-", "^": "**", "x": "*", "X": "*"}
# A run of arithmetic written in prose, "$1000-($150+$300+$250) = $300": numbers, operators, $ and parens.
_PROSE_EQ = re.compile(
    r"(?P<lhs>[$(]*\s*\$?(?:\d[\d,]*(?:\.\d+)?|\.\d+)%?\)*"
    r"(?:(?:\s*[-+*/x×÷−–]\s*|(?=\())[$(]*\s*\$?(?:\d[\d,]*(?:\.\d+)?|\.\d+)%?\)*)+)"
    r"\s*=\s*\$?\s*(?P<rhs>-?\d[\d,]*(?:\.\d+)?|\.\d+)(?![\d.]*\d)"
)
_PLAIN_ARITH = re.compile(r"[\d.+\-*/() ]+")
_IMPLICIT_PRODUCT = re.compile(r"[\d)]\s*\(")
_NUM_TOKEN = re.compile(r"(?<![\w.])(\d[\d,]*(?:\.\d+)?|\.\d+)(%?)")


def normalize_arithmetic(expr: str) -> str:
    """Calculator or prose arithmetic as a step expression: ``2 x $1,000`` -> ``2 * 1000``, ``15%`` -> ``0.15``."""
    return _render(_arith_tree(expr))


def _arith_tree(expr: str) -> ast.expr:
    """The parsed tree of calculator or prose arithmetic, after normalising its notation."""
    if _PLAIN_ARITH.fullmatch(expr) and not _IMPLICIT_PRODUCT.search(expr):  # Python reads it as it is
        try:
            return parse_expression(expr.strip()).body
        except SyntaxError:
            pass
    s = expr.replace("$", "").replace("[", "(").replace("]", ")")
    s = re.sub(r"(?<=[\d)\s])\s*[xX×]\s*(?=[\d(.$])", " * ", s)
    for sym, rep in _SYMBOLS.items():
        if sym not in "xX":
            s = s.replace(sym, rep)
    s = _NUM_TOKEN.sub(lambda m: _percent_text(m.group(1)) if m.group(2) else number_text(m.group(1)), s)
    s = _IMPLICIT_PRODUCT.sub(lambda m: m.group(0)[0] + " * (", s)  # "2(3+4)" is a product
    try:
        return parse_expression(s.strip()).body
    except SyntaxError:
        raise ConvertError(f"cannot read arithmetic {expr!r}") from None


def _percent_text(digits: str) -> str:
    """``15`` of ``15%`` as the ratio it stands for, written exactly: ``0.15``."""
    return number_text(str(Decimal(digits.replace(",", "")) / 100))


def _render(node: ast.AST, parent_prec: int = 0, right: bool = False, names: dict[float, str] | None = None) -> str:
    """An expression tree as canonical step text, with only the parentheses it needs.

    ``names`` maps values to step names: a literal with one of those values is written as the name.
    """
    if names and isinstance(node, ast.Constant) and not isinstance(node.value, bool) \
            and isinstance(node.value, (int, float)) and float(node.value) in names:
        return names[float(node.value)]
    lit = _literal(node)
    if lit is not None:
        return f"({lit})" if lit.startswith("-") and parent_prec else lit
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.BinOp) and type(node.op) in _OP_TEXT:
        prec = {"add": 1, "mul": 2, "pow": 3}[_GROUP[type(node.op)]]
        text = (f"{_render(node.left, prec, False, names)} {_OP_TEXT[type(node.op)]} "
                f"{_render(node.right, prec, True, names)}")
        if prec < parent_prec or (prec == parent_prec and right != (prec == 3)):  # ** groups to the right
            return f"({text})"
        return text
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        text = ("-" if isinstance(node.op, ast.USub) else "") + _render(node.operand, 4, False, names)
        return f"({text})" if parent_prec else text
    raise ConvertError(f"unsupported expression part {type(node).__name__}")


def gsm8k_trace(solution: str, question: str = "", *, prose: bool = True, explicit: bool = True) -> Converted:
    """A GSM8K solution as a step trace: one step per ``<<expr=value>>`` (and, with ``prose``, per
    plain ``a op b = c`` written without an annotation), then ``answer``, matching ``#### answer``.

    A literal that repeats an earlier result becomes that step's name, so the trace says where
    each operand comes from. With ``explicit``, a number the solution worked out in its head
    ("3 sets of 20 minutes in an hour", an answer solved for by algebra) becomes a step of its own
    when one or two operations on the question's numbers, the units it names and earlier results
    give it, so every operand of the trace can be checked (``dca.verifier``'s ``grounded``);
    without the question nothing is known to be given, and nothing is derived.
    """
    m = _FINAL.search(solution)
    if not m:
        raise ConvertError("GSM8K solution has no '#### answer' line")
    try:
        final = float(m.group(1).replace(",", "").replace("$", "").strip())
    except ValueError:
        raise ConvertError(f"GSM8K final answer {m.group(1)!r} is not a number") from None
    body = solution[: m.start()]
    raw: list[tuple[ast.expr, float, bool]] = []  # (expression, stated value, from an annotation)
    warnings: list[str] = []
    for line in body.splitlines():
        # prose arithmetic may sit between annotations; the one an annotation repeats is skipped
        annotated = [float(v) for v in re.findall(r"<<[^<>]*=\s*\$?(-?[\d.]+)>>", line) if _is_number(v)]
        pos = 0
        for m in list(_ANNOTATION.finditer(line)) + [None]:
            segment = line[pos: m.start() if m else len(line)]
            if prose:
                raw += [(expr, stated, False, line) for expr, stated in _prose_steps(segment)
                        if stated not in annotated]
            if m is None:
                break
            pos = m.end()
            expr, eq, val = m.group(1).rpartition("=")
            if not eq:
                warnings.append(f"annotation without '=': {m.group(1)!r}")
                continue
            try:
                raw.append((_arith_tree(expr), float(number_text(val.replace("$", ""))), True, line))
            except ConvertError as exc:
                warnings.append(f"skipped annotation {m.group(1)!r}: {exc}")
    trace = _Trace()
    trace.warnings = warnings
    head = _HeadArithmetic(question, trace) if explicit and question.strip() else None
    for tree, stated, annotated, line in raw:
        if head is not None and head.explain(tree, line, stated):
            continue  # the step was a bare number, now derived by the steps just added
        trace.add(_link_earlier(tree, trace), stated)
        if head is not None:
            head.trees.append(tree)
        if not annotated:
            trace.warnings.append(f"step {trace.lines[-1]!r} recovered from prose without an annotation")

    # the answer: the last step itself, an earlier step, or (with a warning) the bare number
    values = trace.stated
    if values and values_match(values[-1], final, rel=1e-9):
        line = trace.lines.pop()
        trace.stated.pop()
        return trace.finish(line.split(" = ", 1)[1], final, _num(final))
    for i in range(len(values) - 1, -1, -1):
        if values_match(values[i], final, rel=1e-9):
            return trace.finish(f"x{i + 1}", final, _num(final))
    # the last result turned into the asked unit: a percent, or whole items rounded up / down
    if values:
        last, name = values[-1], f"x{len(values)}"
        for expr, v, why in ((f"{name} * 100", last * 100, "as a percent"),
                             (f"ceil({name})", math.ceil(last), "rounded up"),
                             (f"floor({name})", math.floor(last), "rounded down")):
            if values_match(v, final, rel=1e-9):
                trace.warnings.append(f"the answer is the last result {why}")
                return trace.finish(expr, final, _num(final))
    if head is not None and not head.given(float(final)) and head.derive(float(final), body):
        trace.warnings.append("the final answer is derived from the question's numbers (not written out)")
        trace.stated.pop()
        return trace.finish(trace.lines.pop().split(" = ", 1)[1], final, _num(final))
    trace.warnings.append("the final answer is not computed by any step" +
                          ("" if _mentions(question, final) else " and is not in the question"))
    return trace.finish(number_text(repr(final)), final, _num(final))


_DERIVE_OPS = (("+", lambda a, b: a + b), ("-", lambda a, b: a - b), ("*", lambda a, b: a * b),
               ("/", lambda a, b: a / b if b else None))


def _round_key(x: float) -> float:
    """``x`` to 10 significant digits: derived values that differ only by float noise meet."""
    return float(f"{x:.10g}")


class _HeadArithmetic:
    """Makes the arithmetic a GSM8K solution did in its head explicit: a literal no known number
    accounts for is searched as ``a op b`` (then ``(a op b) op c``) over the known numbers, those
    the solution's own sentence mentions first, and added as steps before the line using it.

    Hand-written search: no library expresses "which one or two operations on these numbers give
    x", and it must agree exactly with the verifier's notion of a grounded number.
    """

    def __init__(self, question: str, trace: _Trace):
        from dca.verifier import grounding_pool

        self.pool = grounding_pool(question)
        self.trace = trace
        self.trees: list[ast.expr] = []  # the expression of every step so far (for averages' counts)

    def known(self, x: float, current: ast.expr | None = None, pool: bool = True) -> bool:
        from dca.verifier import repeats, term_counts

        values = [v for v in self.trace.stated if v is not None]
        if (pool and self.pool.has(x)) or repeats(x, values):
            return True
        return float(x).is_integer() and x in term_counts(self.trees + ([current] if current is not None else []))

    def given(self, x: float) -> bool:
        """Is ``x`` stated by the question (not only an allowed constant or unit factor) or an earlier result?"""
        from dca.verifier import ALLOWED_SOURCES

        return self.pool.source(x) not in (None, *ALLOWED_SOURCES) or self.known(x, None, pool=False)

    def explain(self, tree: ast.expr, line: str, result: float | None) -> bool:
        """Add steps deriving the unknown literals of ``tree`` (never from ``result``, what the step
        itself computes); True when ``tree`` is a bare number those steps now compute."""
        for node in ast.walk(tree):
            if not isinstance(node, ast.Constant) or not isinstance(node.value, (int, float)) \
                    or isinstance(node.value, bool):
                continue
            x = float(node.value)
            # a bare number the question does not state is derived even when it is an allowed constant
            if (node is tree and not self.given(x)) or not self.known(x, tree):
                exclude = result if node is not tree else None
                if self.derive(x, line, exclude) and node is tree:
                    return True
        return False

    def derive(self, x: float, line: str, exclude: float | None = None) -> bool:
        """Add one or two steps computing ``x`` from known numbers; False when none is found."""
        numbers = [v for v in self._numbers(line) if exclude is None or not values_match(v, exclude, rel=1e-9)]
        # at least one operand must be a number of the question or an earlier result: 1 + 2 or
        # 100 - 60 (a constant and a unit factor) explain nothing
        weak = {v for v in numbers if not self.given(v)}
        ones: dict[float, tuple] = {}  # rounded value -> (a, op, b, value)
        for a in numbers:
            for b in numbers:
                for op, fn in _DERIVE_OPS:
                    r = fn(a, b)
                    if r is None or r == a or r == b or (a == b and op in "-/"):
                        continue
                    k, old = _round_key(r), ones.get(_round_key(r))
                    if old is None or (old[0] in weak and old[2] in weak and not (a in weak and b in weak)):
                        ones[k] = (a, op, b, r)  # the first way found, unless only constants made it
        hit = ones.get(_round_key(x))
        if hit is not None and not (hit[0] in weak and hit[2] in weak):
            self._add(hit[:3], x)
            return True
        for c in numbers:
            for op, needed in (("+", x - c), ("-", x + c), ("*", x / c if c else None), ("/", x * c)):
                hit = ones.get(_round_key(needed)) if needed is not None else None
                if hit is None or (c in weak and hit[0] in weak and hit[2] in weak):
                    continue
                r = hit[3]
                if r not in (c, x) and not self.pool.has(r):  # not via a given number
                    self._add(hit[:3], r)
                    self._add((r, op, c), x)
                    return True
        return False

    def _numbers(self, line: str) -> list[float]:
        """Known numbers, most likely first: earlier results (latest first), the sentence's own
        numbers, the question's, the unit factors, then the constants."""
        values = [v for v in reversed(self.trace.stated) if v is not None]
        said = [n.value for n in find_numbers(line) if self.known(n.value)]
        by_source = sorted(self.pool.values.items(), key=lambda kv: {"unit": 1, "constant": 2}.get(kv[1], 0))
        out: list[float] = []
        for v in values + said + [v for v, _ in by_source]:
            v = float(v)
            if v and v not in out:
                out.append(v)
        return out[:40]

    def _add(self, parts: tuple[float, str, float], value: float) -> None:
        a, op, b = parts
        latest = self.trace.names()
        text = f"{latest.get(a, format_value(a, 12))} {op} {latest.get(b, format_value(b, 12))}"
        self.trace.add(text, value)
        self.trees.append(parse_expression(text).body)
        self.trace.warnings.append(f"step {self.trace.lines[-1]!r} made explicit (the solution did it in its head)")


def _mentions(text: str, x: float) -> bool:
    return any(abs(n.value) == abs(x) for n in find_numbers(text))


_INTERP = Interpreter()


def _checked(lhs: str, rhs: str) -> tuple[ast.expr, float] | None:
    """``(expression tree, value)`` if ``lhs`` reads as arithmetic that computes ``rhs``."""
    try:
        tree = _arith_tree(lhs)
        stated = float(number_text(rhs))
        value = _INTERP.run(f"v = {_render(tree)}")
    except (ConvertError, StepError):
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and values_match(value, stated, rel=1e-4):
        return tree, stated
    return None


_PROSE_TOKEN = re.compile(r"\d[\d,]*(?:\.\d+)?%?|\.\d+%?|[-+*/×÷−–()]|(?<![A-Za-z])x(?![A-Za-z])")
_PROSE_RHS = re.compile(r"=\s*\$?\s*(-?\d[\d,]*(?:\.\d+)?|\.\d+)(?![\d.]*\d)")


def _prose_steps(line: str) -> list[tuple[ast.expr, float]]:
    """Arithmetic a solution wrote in prose without an annotation, kept only where it checks out.

    First ``a op b = c`` written plainly; failing that, the operators and numbers before an ``=``
    with the words between them dropped (``6 sets x every 2 hours = 12`` -> ``6 * 2``).
    """
    if not _PROSE_RHS.search(line):  # most text holds no "= <number>" at all
        return []
    found = [c for eq in _PROSE_EQ.finditer(line) if (c := _checked(eq.group("lhs"), eq.group("rhs")))]
    if found:
        return found
    start = 0
    for eq in _PROSE_RHS.finditer(line):
        tokens = _PROSE_TOKEN.findall(line[start:eq.start()])
        start = eq.end()
        for i in range(max(0, len(tokens) - 12), len(tokens) - 2):
            part = tokens[i:]
            if not re.match(r"[\d.(]", part[0]) or not any(t in "+-*/×÷−–x" for t in part):
                continue
            c = _checked(" ".join(part), eq.group(1))
            if c:
                found.append(c)
                break
    return found


def _num(x: float) -> int | float:
    return int(x) if float(x).is_integer() and abs(x) < 1e15 else x


def _link_earlier(tree: ast.expr, trace: _Trace) -> str:
    """The step text of ``tree``, every literal that repeats an earlier step's value replaced by
    that step's name (the latest one)."""
    return _render(tree, names=trace.names())


# --------------------------------------------------------------------------- FinQA

_FINQA_STEP = re.compile(r"\s*(\w+)\(([^()]*)\)\s*(?:,|$)")
_FINQA_PROGRAM = re.compile(r"(?:\s*\w+\([^()]*\)\s*,)*\s*\w+\([^()]*\)\s*")
_FINQA_BINARY = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/", "exp": "**", "greater": ">"}
_FINQA_TABLE = {"table_sum": "sum", "table_average": "mean", "table_max": "max", "table_min": "min"}


def finqa_number(arg: str) -> float | None:
    """A FinQA program argument or table cell as its number, following FinQA's own executor:
    ``const_100`` -> 100, ``const_m1`` -> -1, ``62%`` -> 0.62, ``$ 1,234 ( 5 )`` -> 1234."""
    s = arg.strip()
    if s.startswith("const_"):
        s = s[len("const_"):].replace("m", "-", 1) if s[len("const_"):].startswith("m") else s[len("const_"):]
        return float(s) if _is_number(s) else None
    s = s.replace("$", "").split("(")[0].strip().replace(",", "")
    if s.endswith("%") and _is_number(s[:-1]):
        return float(number_text(s[:-1])) / 100
    return float(s) if _is_number(s) else None


def _is_number(s: str) -> bool:
    try:
        float(s)
        return bool(s) and math.isfinite(float(s))
    except ValueError:
        return False


def _finqa_literal(arg: str) -> str:
    """An argument or cell as literal text, keeping its written digits (``62%`` -> ``0.62``)."""
    s = arg.strip()
    if finqa_number(s) is None:
        raise ConvertError(f"FinQA argument {arg!r} is not a number, a #step or a const_")
    if s.startswith("const_"):
        return number_text(repr(finqa_number(s)))
    s = s.replace("$", "").split("(")[0].strip().replace(",", "")
    return _percent_text(s[:-1]) if s.endswith("%") else number_text(s)


def _table_row(table: list[list[str]], label: str) -> list[str]:
    rows = {str(r[0]).strip(): r for r in table if r}
    if label in rows:
        return rows[label]
    loose = {" ".join(k.lower().split()): r for k, r in rows.items()}
    key = " ".join(label.lower().split())
    if key in loose:
        return loose[key]
    raise ConvertError(f"table has no row {label!r}")


def finqa_trace(program: str, table: list[list[str]] | None = None, *, answer: Value = None,
                step_values: Iterable[Any] | None = None) -> Converted:
    """A FinQA program as a step trace; ``#k`` refers to step k's name, the last step is ``answer``.

    ``table`` (the record's ``table``) is needed for ``table_*`` operations; ``answer`` (``exe_ans``)
    and ``step_values`` (each ``qa.steps[i]["res"]``) are kept as the stated values.
    """
    if not _FINQA_PROGRAM.fullmatch(program or ""):
        raise ConvertError(f"cannot read FinQA program {program!r}")
    steps = _FINQA_STEP.findall(program)
    res = list(step_values or [])
    trace = _Trace()
    names: list[str] = []
    for i, (op, args_text) in enumerate(steps):
        args = [a.strip() for a in args_text.split(",")]
        if op in _FINQA_BINARY:
            if len(args) != 2:
                raise ConvertError(f"FinQA {op}() needs 2 arguments, got {args_text!r}")
            parts = []
            for a in args:
                if a.startswith("#"):
                    k = int(a[1:])
                    if not 0 <= k < len(names):
                        raise ConvertError(f"FinQA step {i} refers to {a}, which is not an earlier step")
                    parts.append(names[k])
                else:
                    lit = _finqa_literal(a)
                    parts.append(f"({lit})" if lit.startswith("-") else lit)
            expr = f"{parts[0]} {_FINQA_BINARY[op]} {parts[1]}"
        elif op in _FINQA_TABLE:
            if table is None:
                raise ConvertError(f"FinQA {op}() needs the record's table")
            row = _table_row(table, args[0])
            if len(row) < 2 or any(finqa_number(str(c)) is None for c in row[1:]):
                raise ConvertError(f"table row {args[0]!r} has a cell that is not a number: {row[1:]}")
            lits = [_finqa_literal(str(c)) for c in row[1:]]
            expr = f"{_FINQA_TABLE[op]}({', '.join(lits)})"
        else:
            raise ConvertError(f"unknown FinQA operation {op!r}")
        stated = _finqa_stated(res[i]) if i < len(res) else None
        if i == len(steps) - 1:
            final = _finqa_answer(answer)
            return trace.finish(expr, final if isinstance(final, float) else stated, final)
        names.append(trace.add(expr, stated))
    raise ConvertError("empty FinQA program")  # pragma: no cover


def _finqa_stated(res: Any) -> float | None:
    if isinstance(res, (int, float)) and not isinstance(res, bool):
        return float(res)
    s = str(res).strip()
    if s.endswith("%") and _is_number(s[:-1].replace(",", "")):
        return float(s[:-1].replace(",", "")) / 100
    s = s.replace(",", "").replace("$", "")
    return float(s) if _is_number(s) else None


def _finqa_answer(answer: Value) -> Value:
    if isinstance(answer, str) and answer.strip().lower() in ("yes", "no"):
        return answer.strip().lower() == "yes"
    if isinstance(answer, (int, float)) and not isinstance(answer, bool):
        return float(answer)
    return answer


def finqa_match(value: Value, gold: Value) -> bool:
    """FinQA's execution-accuracy rule: the result rounded to 5 decimals equals ``exe_ans``."""
    gold = _finqa_answer(gold)
    if isinstance(gold, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(gold, bool) and value == gold
    if not isinstance(value, (int, float)) or not isinstance(gold, (int, float)):
        return False
    return round(float(value), 5) == round(float(gold), 5) or math.isclose(value, gold, rel_tol=1e-9)


# --------------------------------------------------------------------------- TAT-QA

_SCALE_WORDS = {"thousand": 1e3, "million": 1e6, "billion": 1e9}


def tatqa_scale(scale: str) -> float:
    """TAT-QA's multiplier for a scale: thousand 1e3, million 1e6, billion 1e9, percent 0.01."""
    s = (scale or "").lower()
    for word, f in (("thousand", 1e3), ("million", 1e6), ("billion", 1e9), ("percent", 0.01)):
        if word in s:
            return f
    return 1.0


def tatqa_match(value: Value, gold: Value, scale: str = "") -> bool:
    """TAT-QA's numeric rule: equal after rounding to 2 decimals at the answer's scale, or, for a
    value given without a scale, equal to 4 decimals to the gold value times its scale
    (so 0.2342 answers 23.42 percent)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value).strip().lower() == str(gold).strip().lower()
    g = _tatqa_number(gold)
    if g is None:
        return False
    v = float(value)
    if f"{round(v, 2):.4f}" == f"{round(g, 2):.4f}":
        return True
    return f"{v:.4f}" == f"{round(g, 2) * tatqa_scale(scale):.4f}"


def _tatqa_number(x: Any) -> float | None:
    if isinstance(x, list):
        return _tatqa_number(x[0]) if len(x) == 1 else None
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return float(x)
    s = str(x).strip().replace("$", "").replace(",", "").replace("%", "").strip()
    if s.startswith("(") and s.endswith(")"):
        s = "-" + s[1:-1]
    return float(s) if _is_number(s) else None


_SCALED_NUMBER = re.compile(r"(\d[\d,]*(?:\.\d+)?)\s*(thousand|million|billion)s?\b", re.I)


def tatqa_trace(derivation: str, answer: Value, scale: str = "") -> Converted:
    """A TAT-QA arithmetic derivation as a step trace; percents in the dataset's answer end ``* 100``.

    ``N%`` in a derivation is read as a percentage (``34% + 11%`` -> 45) or as a ratio
    (``53% * $23,406``), whichever reproduces the dataset's answer.
    """
    gold = _tatqa_number(answer)
    if gold is None:
        raise ConvertError(f"TAT-QA answer {answer!r} is not a single number")
    text = (derivation or "").strip()
    if not text:
        return Converted([f"{ANSWER} = {number_text(repr(gold))}"], [gold], _num(gold),
                         ["no derivation: the answer is a number read off the page"])
    base = 1.0 / tatqa_scale(scale) if (scale or "").lower() in _SCALE_WORDS else 1.0
    best: Converted | None = None
    for pct, negatives in (("drop", False), ("ratio", False), ("drop", True), ("ratio", True)):
        try:
            tree = parse_expression(_tatqa_expr(text, pct, base, negatives)).body
        except (ConvertError, SyntaxError) as exc:
            raise ConvertError(f"cannot read TAT-QA derivation {derivation!r} ({exc})") from None
        for times100 in (False, True):
            conv = _tatqa_steps(tree, times100, gold)
            try:
                value = conv.run()[-1]
            except StepError as exc:
                conv.warnings.append(f"does not execute: {exc}")
                best = best or conv
                continue
            if isinstance(value, (int, float)) and round(float(value), 2) == round(gold, 2):
                if negatives:
                    conv.warnings.append("a number in parentheses is read as a negative")
                return conv
            best = best or conv
    assert best is not None
    best.warnings.append(f"executing the derivation does not give the dataset's answer {gold:g}")
    return best


_TABLE_YEAR = re.compile(r"\b(19\d\d|20\d\d)\b")
_SMALLER = re.compile(r"\b(less|lower|lowest|least|smaller|smallest|fewer|negative|decreas\w*|below|under)\b", re.I)
_WORD = re.compile(r"[a-z]+")


def year_answer(answer: Value) -> int | None:
    """The year a TAT-QA answer consists of (``["2019"]`` -> 2019), else None."""
    x = _tatqa_number(answer)
    return int(x) if x is not None and x.is_integer() and _TABLE_YEAR.fullmatch(str(int(x))) else None


def year_question_trace(question: str, answer: Value, table: list[list[str]], derivation: str = "") -> Converted:
    """A TAT-QA "in which year was X larger / less than N?" span answer as one comparison step,
    ``answer = 2019 if 592 > 519 else 2018``, whose operands are two cells of one table row and
    whose years are their columns' headings.

    The two values are the derivation's (``592>519``, ``56<63<66``: its first two) where it
    compares numbers; otherwise the row is the one whose label shares most words with the question
    and whose answer-year cell compares with another year's cell as the question asks ("less",
    "lower", "negative": smaller; otherwise larger). Raises ``ConvertError`` when no row fits."""
    from dca.numbers import parse_number

    year = year_answer(answer)
    if year is None:
        raise ConvertError(f"TAT-QA answer {answer!r} is not a year")
    parts = [p for p in re.split(r"[<>]", derivation or "") if p.strip()]
    given = [parse_number(p) for p in parts] if len(parts) >= 2 and re.search(r"[<>]", derivation) else []
    if given and any(v is None for v in given):
        given = []
    smaller = "<" in derivation if given else bool(_SMALLER.search(question))
    op = "<" if smaller else ">"
    column_years = _column_years(table)
    asked = {w for w in _WORD.findall(question.lower()) if len(w) > 2}
    best: tuple[int, str] | None = None
    for i, row in enumerate(table):
        cells = [(j, v) for j, c in enumerate(row) if (j, i) in column_years and (v := parse_number(str(c))) is not None]
        if len(cells) < 2:
            continue
        mine = [(j, v) for j, v in cells if column_years[(j, i)] == year]
        others = [(j, v) for j, v in cells if column_years[(j, i)] != year]
        if given:
            a, b = given[0], given[1]
            pick = [((ja, va), (jb, vb)) for ja, va in mine for jb, vb in others
                    if abs(abs(va) - abs(a)) < 1e-9 and abs(abs(vb) - abs(b)) < 1e-9]
        else:
            pick = [((ja, va), (jb, vb)) for ja, va in mine for jb, vb in others if (va < vb if smaller else va > vb)]
        if not pick:
            continue
        (ja, va), (jb, vb) = pick[0]
        overlap = len(asked & set(_WORD.findall(" ".join(str(c) for c in row[:1]).lower())))
        line = (f"{ANSWER} = {year} if {number_text(repr(va))} {op} {number_text(repr(vb))} "
                f"else {column_years[(jb, i)]}")
        if best is None or overlap > best[0]:
            best = (overlap, line)
    if best is None or (not given and best[0] == 0):
        raise ConvertError(f"no table row compares {year} with another year as the question asks")
    conv = Converted([best[1]], [float(year)], year)
    if conv.run()[-1] != year:
        raise ConvertError(f"the comparison {best[1]!r} does not give {year}")
    return conv


def _column_years(table: list[list[str]]) -> dict[tuple[int, int], int]:
    """``{(column, row): year}``: the year the nearest heading above a cell names (one year only)."""
    out: dict[tuple[int, int], int] = {}
    heading: dict[int, int] = {}
    for i, row in enumerate(table):
        for j, cell in enumerate(row):
            found = set(_TABLE_YEAR.findall(str(cell)))
            if len(found) == 1 and not re.search(r"\d[\d,]*\.\d|\d,\d{3}", str(cell)):
                heading[j] = int(found.pop())
            elif j in heading:
                out[(j, i)] = heading[j]
    return out


def _tatqa_expr(text: str, pct: str, base: float, negatives: bool) -> str:
    s = text
    if negatives:  # accounting style: "(71)" is -71
        s = re.sub(r"\(\s*\$?\s*(\d[\d,]*(?:\.\d+)?)\s*\)", r"(-\1)", s)
    if base != 1.0:  # "60.3 million + 32,137 thousand" in a thousands answer
        s = _SCALED_NUMBER.sub(lambda m: f"({m.group(1)} * {number_text(repr(_SCALE_WORDS[m.group(2).lower()] * base))})",
                               s)
    if pct == "drop":
        s = re.sub(r"(?<=\d)\s*%", "", s)
    return normalize_arithmetic(s)


def _tatqa_steps(tree: ast.AST, times100: bool, gold: float) -> Converted:
    return _tree_trace(tree, gold, _num(gold), times100)


def _tree_trace(tree: ast.AST, stated: float | None, answer: Value, times100: bool = False) -> Converted:
    trace = _Trace()
    text, group = _split(tree, trace)
    if times100:
        text = f"{text} * 100" if group in ("leaf", "mul") else f"({text}) * 100"
    return trace.finish(text, stated, answer)


def infix_trace(expression: str, answer: Value = None) -> Converted:
    """An infix formula (``5*(65 + 35)``) as steps, one per operator group: ``x1 = 65 + 35`` /
    ``answer = 5 * x1``. Report notation (``$``, ``1,000``, ``15%``, ``x``) is normalised first."""
    tree = _arith_tree(expression)
    stated = float(answer) if isinstance(answer, (int, float)) and not isinstance(answer, bool) else None
    return _tree_trace(tree, stated, answer)


__all__ = [
    "ConvertError", "Converted", "finqa_match", "finqa_number", "finqa_trace", "gsm8k_trace", "infix_trace",
    "normalize_arithmetic", "number_text", "rounds_to", "tatqa_match", "tatqa_scale", "tatqa_trace",
]
