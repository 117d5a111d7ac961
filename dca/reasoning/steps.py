"""The step language: one assignment per line, parsed with ``ast`` and run by a small interpreter.

    x1 = lookup("net revenue 2015")
    x2 = x1 - 5735          # = 94
    answer = x2 / 5735 * 100

Only an allowlist of node types is evaluated (never ``eval``/``exec``); size, depth, magnitude
and time are bounded so hostile input gets a one-line ``StepError``, not a hang. The model picks
operations and operands; the interpreter does the arithmetic (program-aided).
"""
from __future__ import annotations

import ast
import gc
import inspect
import io
import keyword
import math
import re
import statistics
import threading
import time
import tokenize
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from dca.types import Value

ANSWER = "answer"


class StepError(ValueError):
    """A step that cannot be parsed or evaluated; ``kind`` says which rule it broke."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


@dataclass(frozen=True)
class Limits:
    """Bounds that keep hostile or runaway steps cheap to reject."""

    max_chars: int = 400
    max_nodes: int = 120
    max_depth: int = 24
    max_abs: float = 1e15
    max_str: int = 200
    max_args: int = 64
    max_pow_digits: float = 15.0  # |a ** b| may have at most this many digits
    time_limit: float = 0.1  # seconds of interpreter time per step (tools and GC pauses excluded)


DEFAULT_LIMITS = Limits()

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
    ast.Pow: lambda a, b: a**b,
}
_BINOP_SYMBOL = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
                 ast.Mod: "%", ast.Pow: "**"}
_CMPOPS: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
}
_ALLOWED_NODES = (
    ast.Expression, ast.Constant, ast.Name, ast.Load, ast.BinOp, ast.UnaryOp, ast.BoolOp,
    ast.Compare, ast.Call, ast.List, ast.Tuple, ast.IfExp, ast.USub, ast.UAdd, ast.Not,
    ast.And, ast.Or, *_BINOPS, *_CMPOPS,
)
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")
_STATED_RE = re.compile(r"^#\s*=?\s*\$?\s*(-?[\d,]*\.?\d+(?:[eE][-+]?\d+)?)\s*%?\s*$")


# --------------------------------------------------------------------------- functions


@dataclass(frozen=True)
class Function:
    """A function steps may call. ``params`` are the kinds of positional arguments
    ("number", "str", "numbers", "any"); ``variadic`` means the last kind repeats."""

    name: str
    fn: Callable[..., Any]
    params: tuple[str, ...]
    variadic: bool = False
    min_args: int | None = None
    timed: bool = True  # counts against Limits.time_limit (tools that do I/O set False)
    doc: str = ""

    def check_args(self, args: list[Any]) -> None:
        n, p = len(args), len(self.params)
        lo = self.min_args if self.min_args is not None else (p - 1 if self.variadic else p)
        if n < lo or (not self.variadic and n > p):
            want = f"at least {lo}" if self.variadic else (f"{lo}" if lo == p else f"{lo} to {p}")
            raise StepError("call", f"{self.name}() takes {want} argument(s), got {n}")
        for i, a in enumerate(args):
            kind = self.params[min(i, p - 1)] if p else "any"
            if not _is_kind(a, kind):
                raise StepError("type", f"{self.name}() argument {i + 1} must be {kind}, got {_kind_of(a)}")


def _is_kind(value: Any, kind: str) -> bool:
    if kind == "any":
        return True
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "numbers":
        return isinstance(value, list) and all(_is_kind(v, "number") for v in value)
    return False


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        return "list"
    return type(value).__name__


_ANNOTATION_KINDS: dict[Any, str] = {
    float: "number", int: "number", str: "str", bool: "bool",
    list: "numbers", list[float]: "numbers", list[int]: "numbers",
}


def function_from_callable(fn: Callable[..., Any], name: str | None = None, *,
                           timed: bool = True) -> Function:
    """Build a ``Function`` from a type-annotated Python callable (positional parameters only)."""
    name = name or fn.__name__
    if not _NAME_RE.match(name):
        raise ValueError(f"tool name {name!r} must be a plain identifier (letters, digits, _)")
    sig = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn)
    except Exception as exc:  # unresolvable forward references
        raise ValueError(f"tool {name}: cannot read type hints ({exc})") from exc
    params: list[str] = []
    variadic, required = False, 0
    for p in sig.parameters.values():
        if p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD):
            raise ValueError(f"tool {name}: parameter {p.name!r} must be positional (steps pass no keywords)")
        ann = hints.get(p.name, Any)
        kind = _ANNOTATION_KINDS.get(ann, "any" if ann is Any else None)
        if kind is None:
            raise ValueError(
                f"tool {name}: parameter {p.name!r} has type {ann!r}; expected float, int, str, bool or list[float]"
            )
        params.append(kind)
        if p.kind == p.VAR_POSITIONAL:
            variadic = True
        elif p.default is p.empty:
            required += 1
    return Function(name, fn, tuple(params), variadic=variadic, min_args=required,
                    timed=timed, doc=(inspect.getdoc(fn) or "").split("\n")[0])


def _numbers(args: tuple[Any, ...], name: str) -> list[float]:
    """min/max/sum/mean accept ``f(a, b, c)`` or ``f([a, b, c])``."""
    vals = list(args[0]) if len(args) == 1 and isinstance(args[0], list) else list(args)
    if not vals:
        raise StepError("call", f"{name}() needs at least one number")
    for v in vals:
        if not _is_kind(v, "number"):
            raise StepError("type", f"{name}() takes numbers, got {_kind_of(v)}")
    return vals


def _round(x: float, ndigits: float = 0) -> float:
    if not float(ndigits).is_integer() or not 0 <= ndigits <= 12:
        raise StepError("call", "round() digits must be an integer from 0 to 12")
    return round(x, int(ndigits)) if ndigits else round(x)


def _no_lookup(query: str) -> float:
    raise StepError("call", "lookup() needs a knowledge store, and this run has none")


def builtin_functions() -> dict[str, Function]:
    """The default allowlist. ``lookup`` is replaced per run by one backed by the RAG store."""
    agg = lambda name, f: Function(name, lambda *a: f(_numbers(a, name)), ("any",), variadic=True,  # noqa: E731
                                   min_args=1)
    fns = [
        agg("min", min), agg("max", max), agg("sum", math.fsum),
        agg("mean", statistics.fmean),
        Function("abs", abs, ("number",)),
        Function("round", _round, ("number", "number"), min_args=1),
        Function("floor", math.floor, ("number",)),
        Function("ceil", math.ceil, ("number",)),
        Function("sqrt", lambda x: math.sqrt(x) if x >= 0 else _raise("math", "sqrt() of a negative number"),
                 ("number",)),
        Function("lookup", _no_lookup, ("str",), timed=False,
                 doc="a number from the knowledge store"),
    ]
    return {f.name: f for f in fns}


def _raise(kind: str, msg: str):
    raise StepError(kind, msg)


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class ParsedStep:
    """A step that passed the syntactic allowlist; ready to evaluate."""

    text: str
    target: str
    expr: str
    tree: ast.expr = field(repr=False, compare=False)
    stated: float | None = None
    names: frozenset[str] = frozenset()
    calls: frozenset[str] = frozenset()
    numbers: tuple[float, ...] = ()
    strings: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        if self.target == ANSWER:
            return "answer"
        return "lookup" if "lookup" in self.calls else "compute"


PLAN_PREFIX = "next:"  # a step comment ``# next: <words of the task>`` quotes what the next step acts on


def plan_quote(line: str) -> str | None:
    """The task words a step line's ``# next: ...`` comment quotes (whitespace collapsed), or None."""
    body = _split_comment(line)[1][1:].strip()
    return " ".join(body[len(PLAN_PREFIX):].split()) if body.startswith(PLAN_PREFIX) else None


def _split_comment(line: str) -> tuple[str, str]:
    """Split off a trailing ``# ...`` comment using the tokenizer (``#`` inside strings stays)."""
    if "#" not in line:
        return line, ""
    try:
        for tok in tokenize.generate_tokens(io.StringIO(line).readline):
            if tok.type == tokenize.COMMENT:
                return line[: tok.start[1]].rstrip(), tok.string
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return line, ""


# CPython 3.11 keeps the AST builder's recursion counter per interpreter, not per thread: when a
# garbage collection runs Python code (a ``__del__``) in the middle of building a tree, another
# thread can parse meanwhile and the first fails with "SystemError: AST constructor recursion depth
# mismatch" (python/cpython#106905). Agents run side by side (``Agent.arun``, served pipelines)
# parse steps from worker threads, so every parse dca makes goes through one lock; a step's
# expression parses in microseconds.
_PARSE_LOCK = threading.Lock()


def parse_expression(expr: str) -> ast.Expression:
    """``ast.parse(expr, mode="eval")``, safe to call from many threads at once."""
    with _PARSE_LOCK:
        return ast.parse(expr, mode="eval")


def parse_step(line: str, limits: Limits = DEFAULT_LIMITS,
               functions: Mapping[str, Function] | None = None) -> ParsedStep:
    """Parse one ``name = expression`` line, or raise ``StepError`` naming what is wrong."""
    if not isinstance(line, str):
        raise StepError("parse", f"a step must be text, got {type(line).__name__}")
    text = line.strip()
    if not text:
        raise StepError("parse", "empty step")
    if len(text) > limits.max_chars:
        raise StepError("size", f"step is {len(text)} characters; the limit is {limits.max_chars}")
    if "\n" in text or "\r" in text or ";" in _split_comment(text)[0]:
        raise StepError("parse", "a step is exactly one assignment on one line")
    code, comment = _split_comment(text)
    stated = None
    if comment:
        m = _STATED_RE.match(comment.strip())
        if m:
            stated = float(m.group(1).replace(",", ""))
    if "=" not in code:
        raise StepError("parse", f"expected 'name = expression', got {code[:60]!r}")
    target, _, expr = code.partition("=")
    target, expr = target.strip(), expr.strip()
    if expr.startswith("="):
        raise StepError("parse", f"expected 'name = expression', got a comparison {code[:60]!r}")
    if not _NAME_RE.match(target) or keyword.iskeyword(target):
        raise StepError("name", f"step target {target[:40]!r} must be a plain name like x1 or answer")
    fns = functions if functions is not None else _BUILTINS
    if target in fns:
        raise StepError("name", f"step target {target!r} is a function name")
    if not expr:
        raise StepError("parse", f"step {target} has no expression")
    try:
        tree = parse_expression(expr)
    except SyntaxError as exc:
        raise StepError("parse", f"invalid expression {expr[:60]!r} ({exc.msg})") from None
    except (ValueError, MemoryError, RecursionError) as exc:
        raise StepError("parse", f"invalid expression ({type(exc).__name__})") from None

    names: set[str] = set()
    calls: set[str] = set()
    numbers: list[float] = []
    strings: list[str] = []
    count = 0

    def visit(node: ast.AST, depth: int, negated: bool = False) -> None:
        nonlocal count
        count += 1
        if count > limits.max_nodes:
            raise StepError("size", f"expression has more than {limits.max_nodes} nodes")
        if depth > limits.max_depth:
            raise StepError("size", f"expression is nested deeper than {limits.max_depth}")
        if not isinstance(node, _ALLOWED_NODES):
            raise StepError("syntax", f"{type(node).__name__} is not allowed in a step")
        if isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, bool) or v is None:
                if v is None:
                    raise StepError("syntax", "None is not allowed in a step")
            elif isinstance(v, (int, float)):
                if isinstance(v, float) and not math.isfinite(v):
                    raise StepError("bounds", "number literal is not finite")
                if abs(v) > limits.max_abs:
                    raise StepError("bounds", f"number literal exceeds {limits.max_abs:g}")
                numbers.append(-float(v) if negated else float(v))
            elif isinstance(v, str):
                if len(v) > limits.max_str:
                    raise StepError("size", f"string literal is longer than {limits.max_str} characters")
                strings.append(v)
            else:
                raise StepError("syntax", f"{type(v).__name__} literals are not allowed in a step")
        elif isinstance(node, ast.Name):
            if not _NAME_RE.match(node.id):
                raise StepError("name", f"name {node.id[:40]!r} is not allowed")
            names.add(node.id)
        elif isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name):
                raise StepError("call", "only calls of allowlisted functions by name are allowed")
            if node.func.id not in fns:
                raise StepError("call", f"{node.func.id[:40]}() is not an allowed function")
            if node.keywords:
                raise StepError("call", f"{node.func.id}() takes positional arguments only")
            if len(node.args) > limits.max_args:
                raise StepError("size", f"{node.func.id}() has more than {limits.max_args} arguments")
            calls.add(node.func.id)
            for a in node.args:
                if isinstance(a, ast.Starred):
                    raise StepError("syntax", "starred arguments are not allowed")
                visit(a, depth + 1)
            return
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            visit(node.operand, depth + 1, negated=not negated)
            return
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.operator, ast.unaryop, ast.cmpop, ast.boolop, ast.expr_context)):
                if not isinstance(child, _ALLOWED_NODES):
                    raise StepError("syntax", f"operator {type(child).__name__} is not allowed")
                continue
            visit(child, depth + 1)

    try:
        visit(tree.body, 1)
    except RecursionError:
        raise StepError("size", f"expression is nested deeper than {limits.max_depth}") from None
    return ParsedStep(text=text, target=target, expr=expr, tree=tree.body, stated=stated,
                      names=frozenset(names), calls=frozenset(calls), numbers=tuple(numbers),
                      strings=tuple(strings))


def split_trace(text: str) -> list[str]:
    """The step lines of a trace: blank lines and whole-line comments dropped."""
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def parse_trace(text: str, limits: Limits = DEFAULT_LIMITS,
                functions: Mapping[str, Function] | None = None) -> list[ParsedStep]:
    return [parse_step(ln, limits, functions) for ln in split_trace(text)]


# --------------------------------------------------------------------------- evaluation

# Garbage-collector pauses, per thread. A collection runs in whichever thread's allocation
# triggered it and its cost grows with everything the process holds (a training batch, a model),
# not with the step; counting it made the 100 ms bound cut off ordinary steps of a busy process.
# Python exposes collections only through ``gc.callbacks``, so this small clock is ours: it runs
# for every collection in the process (a start and a stop call, ~2 µs together on this host).
_gc_clock = threading.local()


def _on_gc(phase: str, info: dict) -> None:
    if phase == "start":
        _gc_clock.started = time.thread_time()
    else:
        started = getattr(_gc_clock, "started", None)
        if started is not None:
            _gc_clock.total = getattr(_gc_clock, "total", 0.0) + time.thread_time() - started
            _gc_clock.started = None


def gc_time() -> float:
    """CPU seconds this thread has spent in garbage collections since dca was imported."""
    return getattr(_gc_clock, "total", 0.0)


def _step_clock() -> float:
    """The clock the per-step bound reads: this thread's CPU time without its GC pauses."""
    return time.thread_time() - gc_time()


if _on_gc not in gc.callbacks:
    gc.callbacks.append(_on_gc)


class Interpreter:
    """Evaluates parsed steps over an environment of earlier values, within ``Limits``."""

    def __init__(self, functions: Mapping[str, Function] | None = None,
                 limits: Limits = DEFAULT_LIMITS):
        self.functions: dict[str, Function] = dict(builtin_functions() if functions is None else functions)
        self.limits = limits
        # Per-thread clock: one interpreter serves concurrent runs, and each step's time limit is
        # its own thread's CPU time, so a run starved of the CPU by others is not cut off.
        self._clock = threading.local()

    def with_functions(self, extra: Mapping[str, Function]) -> "Interpreter":
        return Interpreter({**self.functions, **extra}, self.limits)

    def parse(self, line: str) -> ParsedStep:
        return parse_step(line, self.limits, self.functions)

    def run(self, step: ParsedStep | str, env: Mapping[str, Value] | None = None) -> Value:
        """Evaluate one step; returns its value or raises ``StepError``."""
        parsed = self.parse(step) if isinstance(step, str) else step
        env = env or {}
        missing = sorted(n for n in parsed.names if n not in env and n not in self.functions)
        if missing:
            raise StepError("name", f"undefined name {missing[0]!r}" +
                            (f" (defined: {', '.join(sorted(env))})" if env else ""))
        self._clock.deadline = _step_clock() + self.limits.time_limit  # untimed tools are subtracted as they run
        self._clock.tool_time = 0.0
        try:
            value = self._eval(parsed.tree, env)
        except StepError:
            raise
        except ZeroDivisionError:
            raise StepError("math", f"division by zero in {parsed.expr[:60]!r}") from None
        except (OverflowError, MemoryError):
            raise StepError("bounds", f"result of {parsed.expr[:60]!r} is too large") from None
        except RecursionError:
            raise StepError("size", "expression is nested too deeply") from None
        except (TypeError, ValueError, statistics.StatisticsError) as exc:
            raise StepError("type", f"{str(exc)[:120]}") from None
        if isinstance(value, list):
            raise StepError("type", "a step's value must be a number, bool or string, not a list")
        return _tidy(value)

    def run_trace(self, text: str | Iterable[str], env: Mapping[str, Value] | None = None) -> dict[str, Value]:
        """Evaluate a whole trace; returns the environment (``answer`` included if assigned)."""
        lines = split_trace(text) if isinstance(text, str) else list(text)
        out = dict(env or {})
        for line in lines:
            p = self.parse(line)
            out[p.target] = self.run(p, out)
        return out

    def _tick(self) -> None:
        if _step_clock() - self._clock.tool_time > self._clock.deadline:
            raise StepError("time", f"step took longer than {self.limits.time_limit * 1000:.0f} ms")

    def _check(self, v: Any) -> Any:
        if isinstance(v, bool):
            return v
        if isinstance(v, float):
            if not math.isfinite(v):
                raise StepError("math", "result is not a finite number")
            if abs(v) > self.limits.max_abs:
                raise StepError("bounds", f"result magnitude exceeds {self.limits.max_abs:g}")
        elif isinstance(v, int):
            if abs(v) > self.limits.max_abs:
                raise StepError("bounds", f"result magnitude exceeds {self.limits.max_abs:g}")
        elif isinstance(v, str):
            if len(v) > self.limits.max_str:
                raise StepError("size", f"string longer than {self.limits.max_str} characters")
        return v

    def _eval(self, node: ast.AST, env: Mapping[str, Value]) -> Any:
        self._tick()
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in env:
                return env[node.id]
            raise StepError("name", f"undefined name {node.id!r}")
        if isinstance(node, ast.BinOp):
            a, b = self._eval(node.left, env), self._eval(node.right, env)
            for x in (a, b):
                if not _is_kind(x, "number"):
                    raise StepError("type", f"'{_BINOP_SYMBOL[type(node.op)]}' needs numbers, got {_kind_of(x)}")
            if isinstance(node.op, ast.Pow):
                self._check_pow(a, b)
            if isinstance(node.op, (ast.Div, ast.FloorDiv, ast.Mod)) and b == 0:
                raise ZeroDivisionError
            return self._check(_BINOPS[type(node.op)](a, b))
        if isinstance(node, ast.UnaryOp):
            v = self._eval(node.operand, env)
            if isinstance(node.op, ast.Not):
                return not v
            if not _is_kind(v, "number"):
                raise StepError("type", f"unary minus needs a number, got {_kind_of(v)}")
            return -v if isinstance(node.op, ast.USub) else +v
        if isinstance(node, ast.BoolOp):
            vals = [self._eval(v, env) for v in node.values]
            return all(vals) if isinstance(node.op, ast.And) else any(vals)
        if isinstance(node, ast.Compare):
            left = self._eval(node.left, env)
            for op, right_node in zip(node.ops, node.comparators):
                right = self._eval(right_node, env)
                if _kind_of(left) != _kind_of(right) and not {_kind_of(left), _kind_of(right)} <= {"number", "bool"}:
                    raise StepError("type", f"cannot compare {_kind_of(left)} with {_kind_of(right)}")
                if not _CMPOPS[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.IfExp):
            return self._eval(node.body if self._eval(node.test, env) else node.orelse, env)
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self._eval(e, env) for e in node.elts]
        if isinstance(node, ast.Call):
            fn = self.functions.get(node.func.id)  # type: ignore[attr-defined]
            if fn is None:
                raise StepError("call", f"{node.func.id}() is not an allowed function")  # type: ignore[attr-defined]
            args = [self._eval(a, env) for a in node.args]
            fn.check_args(args)
            t0 = _step_clock()
            try:
                out = fn.fn(*args)
            finally:
                if not fn.timed:
                    self._clock.tool_time += _step_clock() - t0
            if isinstance(out, list):
                return [self._check(v) for v in out]
            if not isinstance(out, (int, float, bool, str)):
                raise StepError("type", f"{fn.name}() returned {type(out).__name__}, not a number, bool or string")
            return self._check(out)
        raise StepError("syntax", f"{type(node).__name__} is not allowed in a step")

    def _check_pow(self, a: float, b: float) -> None:
        if a == 0 and b < 0:
            raise ZeroDivisionError
        if a < 0 and not float(b).is_integer():
            raise StepError("math", "negative number to a fractional power")
        if a != 0 and b * math.log10(abs(a)) > self.limits.max_pow_digits:
            raise StepError("bounds", f"{_short(a)} ** {_short(b)} exceeds {self.limits.max_abs:g}")


def _short(x: float) -> str:
    s = f"{x:g}"
    return s if len(s) < 20 else s[:17] + "..."


def _tidy(v: Value) -> Value:
    """Integral floats stay floats, but float noise like 0.30000000000000004 is rounded away."""
    if isinstance(v, float) and not isinstance(v, bool):
        r = round(v, 10)
        return r if abs(r - v) < 1e-9 else v
    return v


_BUILTINS = builtin_functions()


def evaluate(line: str, env: Mapping[str, Value] | None = None) -> Value:
    """Convenience: evaluate one step with the default allowlist."""
    return Interpreter().run(line, env)


def format_value(v: Value, digits: int = 6) -> str:
    """A value as a short human-readable string (no float noise, no exponent for everyday sizes)."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        s = f"{v:.{digits}g}" if abs(v) >= 1e-4 else f"{v:.3g}"
        if "e" in s and 1e-4 <= abs(v) < 1e15:
            s = f"{v:.{digits}f}".rstrip("0").rstrip(".")
        return s
    return "" if v is None else str(v)


def values_match(a: Value, b: Value, rel: float = 1e-4, abs_tol: float = 1e-6) -> bool:
    """Numeric equality with tolerance (bools compare to bools, strings exactly)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=rel, abs_tol=abs_tol)
    return a == b


__all__ = [
    "ANSWER", "DEFAULT_LIMITS", "Function", "Interpreter", "Limits", "ParsedStep", "StepError",
    "builtin_functions", "evaluate", "format_value", "function_from_callable", "parse_step",
    "parse_trace", "split_trace", "values_match",
]
