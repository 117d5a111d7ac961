"""Countdown: reach a target from 3-4 given numbers with + - * /, each number used at most once.

Instances are generated here with a known solution, one step per operation. The PyPI package
``reasoning-gym`` has a countdown generator too, but it spends ~13 ms per instance (it searches with
sympy) and ~3.5 s on import, and splitting by a hash of the instance needs 10x oversampling for
dev/test; this generator takes microseconds per instance.
"""
from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Iterator, Sequence

from dca.reasoning.steps import Interpreter, StepError, format_value, values_match
from dca.reasoning.tasks.base import Problem
from dca.reasoning.tasks.splits import bucket, check_split

QUESTIONS = (
    "Reach {target} from the numbers {nums} using + - * /, each number at most once.",
    "Using {nums} (each at most once) and + - * /, make {target}.",
    "Combine {nums} with addition, subtraction, multiplication and division to get {target}; "
    "use each number at most once.",
    "Make {target} out of {nums}. You may use + - * / and each number no more than once.",
)
# the question templates as patterns, to read a countdown instance back from its question
_PATTERNS = tuple(re.compile("^" + re.escape(q).replace(re.escape("{target}"), r"(?P<target>\d+)")
                             .replace(re.escape("{nums}"), r"(?P<nums>\d+(?:, \d+)*)") + "$") for q in QUESTIONS)
SPLITS = {"test": (0.0, 0.1), "dev": (0.1, 0.2), "train": (0.2, 1.0)}
TARGETS = (10, 999)


def _moves(va: int, vb: int) -> list[tuple[str, int]]:
    """The operations allowed on two whole numbers ``va >= vb`` (whole, positive results) with their values."""
    out = [("+", va + vb)]
    if va != vb:
        out.append(("-", va - vb))
    if va * vb <= 10_000:
        out.append(("*", va * vb))
    if vb > 1 and va % vb == 0:
        out.append(("/", va // vb))
    return out


def solve_all(numbers: Sequence[int], target: int, limit: int = 2000) -> list[list[str]]:
    """Every trace (up to ``limit``) that reaches ``target`` from ``numbers`` with the moves the
    generator makes, found by exhaustive search; the first step whose value is the target is the answer."""
    found: dict[tuple[str, ...], None] = {}

    def walk(items: list[tuple[str, int]], lines: list[str]) -> None:
        for i in range(len(items)):
            for j in range(i + 1, len(items)):
                (a, va), (b, vb) = items[i], items[j]
                if va < vb:
                    (a, va), (b, vb) = (b, vb), (a, va)
                rest = [it for k, it in enumerate(items) if k not in (i, j)]
                for op, value in _moves(va, vb):
                    if len(found) >= limit:
                        return
                    if value == target:
                        found[tuple(lines + [f"answer = {a} {op} {b}"])] = None
                    elif rest:
                        name = f"x{len(lines) + 1}"
                        walk(rest + [(name, value)], lines + [f"{name} = {a} {op} {b}"])

    walk([(str(x), int(x)) for x in numbers], [])
    return [list(t) for t in found]


@lru_cache(maxsize=200_000)
def _reachable(values: tuple[int, ...], target: int) -> bool:
    """Can ``target`` be made from (some of) ``values`` (sorted whole numbers) with the generator's moves?"""
    if target in values:
        return True
    for i in range(len(values)):
        for j in range(i + 1, len(values)):
            va, vb = max(values[i], values[j]), min(values[i], values[j])
            rest = values[:i] + values[i + 1:j] + values[j + 1:]
            if any(_reachable(tuple(sorted(rest + (v,))), target) for _, v in _moves(va, vb)):
                return True
    return False


def reachable(values: Sequence[float], target: float) -> bool:
    """Can ``target`` still be made from ``values`` with + - * / on whole positive numbers (the moves
    the generator makes, each value used at most once)? Values that are not whole and positive
    cannot take part in such a move and are left out."""
    whole = tuple(sorted(int(v) for v in values
                         if not isinstance(v, bool) and isinstance(v, (int, float)) and v > 0 and float(v).is_integer()))
    return float(target).is_integer() and _reachable(whole, int(target))


def reachable_lines(problem: Problem, lines: Sequence[str]) -> int:
    """How many of a trace's lines, counted from the first, leave the target within reach: a step
    that uses only operands still unused and after which the target can be made from what is left
    (``reachable``), or an answer line that equals it."""
    state = TraceState(problem.meta["numbers"])
    good = 0
    for line in lines:
        try:
            comment = state.step(line, strict=True)
        except StepError:
            break
        if comment is None:  # the answer line
            return good + bool(values_match(state.env["answer"], problem.answer, rel=1e-9, abs_tol=1e-9))
        if not reachable(state.values(), problem.answer):
            break
        good += 1
    return good


def progress(problem: Problem, lines: Sequence[str]) -> float:
    """The share of a trace's lines, counted from the first, after which the target is still within
    reach (``reachable_lines``). A right trace scores 1; a trace whose first move already loses the
    target scores 0. The exact solver's judgement of each step, used as GRPO's step-level reward
    (``reward_progress``)."""
    return reachable_lines(problem, lines) / len(lines) if lines else 0.0


def parse_question(text: str) -> tuple[list[int], int] | None:
    """``(numbers, target)`` of a question in one of countdown's wordings, else None."""
    text = " ".join(text.split())
    for pattern in _PATTERNS:
        m = pattern.match(text)
        if m:
            return [int(x) for x in m["nums"].split(", ")], int(m["target"])
    return None


def as_problem(question: str) -> Problem | None:
    """A countdown ``Problem`` read back from its question (what stepwise sampling needs), else None."""
    parsed = parse_question(question)
    if parsed is None:
        return None
    numbers, target = parsed
    return Problem(id=f"countdown:{question}", question=question, answer=target, family="countdown",
                   meta={"numbers": numbers, "target": target})


def value_comment(value: Any, target: float | None = None) -> str:
    """A step's trailing comment: its value, and with ``target`` what would still reach the target
    from it in one move (``# 57 (+64)``: 57 + 64 is the target; ``# 242 (-121 /2)``)."""
    text = f"# {format_value(value)}"
    if target is None or isinstance(value, bool) or not isinstance(value, (int, float)) or value == target:
        return text
    moves = [f"+{format_value(target - value)}"] if value < target else [f"-{format_value(value - target)}"]
    whole = float(value).is_integer() and float(target).is_integer() and value > 0 and target > 0
    if whole and target % value == 0:
        moves.append(f"*{format_value(target // value)}")
    if whole and value % target == 0:
        moves.append(f"/{format_value(value // target)}")
    return f"{text} ({' '.join(moves)})"


class TraceState:
    """What a countdown trace has made so far: each step's value and the operands still unused
    (given numbers as written, then step names), from which ``values``/``needs``/``left`` comments
    are written, the same way for training traces and for sampling with the interpreter in the loop."""

    def __init__(self, numbers: Sequence[float], target: float | None = None, left: bool = False):
        self.interp = Interpreter()
        self.env: dict[str, Any] = {}
        self.pool = [format_value(x) for x in numbers]
        self.target, self.left = target, left

    def step(self, line: str, strict: bool = False) -> str | None:
        """Run one line (``StepError`` if it does not, and with ``strict`` also if it uses an operand
        that is not left: a number not given or used up, a step's value already used); the comment
        it gets, None for the answer line."""
        step = self.interp.parse(line)
        operands = [format_value(x) for x in step.numbers] + sorted(step.names)
        if strict and Counter(operands) - Counter(self.pool):
            raise StepError("name", f"'{line}' uses an operand that is not left ({' '.join(self.pool)})")
        value = self.env[step.target] = self.interp.run(step, self.env)
        for used in operands:
            if used in self.pool:
                self.pool.remove(used)
        if step.target == "answer":
            return None
        self.pool.append(step.target)
        return value_comment(value, self.target) + (f" left {' '.join(self.pool)}" if self.left else "")

    def values(self) -> list[Any]:
        """The values of the operands still unused."""
        return [self.env[p] if p in self.env else float(p) for p in self.pool]


def with_values(lines: Sequence[str], numbers: Sequence[float] = (), target: float | None = None,
                left: bool = False) -> list[str]:
    """The trace with each intermediate step's value, as the interpreter computes it, stated in a
    trailing comment (``x1 = 25 + 3 # 28``); with ``target`` also the moves that would finish from
    it (see ``value_comment``), with ``left`` the operands still unused. The answer line is kept."""
    state = TraceState(numbers, target, left)
    out = []
    for line in lines:
        comment = state.step(line)
        out.append(line if comment is None else f"{line} {comment}")
    return out


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
        op, value = rng.choice(_moves(va, vb))
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
    """Countdown with 3-4 numbers; splits train/dev/test by a hash of (numbers, target).

    By default each instance comes with the one random solution it was generated from. For training
    a proposal distribution: ``solutions=k`` yields an instance up to k times, each with a different
    solution drawn from all the solver finds (``n`` then counts instances), ``values=True``
    states each intermediate value in a trailing comment of its step, ``needs=True`` adds to it
    the one move that would reach the target from there (``# 57 (+64)``) and ``left=True`` the
    operands still unused (``# 57 (+64) left 29 35 x1``).
    """

    name = "countdown"
    splits = tuple(SPLITS)

    def __init__(self, min_numbers: int = 3, max_numbers: int = 4, default_n: int = 1000, solutions: int = 0,
                 values: bool = False, needs: bool = False, left: bool = False):
        if not 2 <= min_numbers <= max_numbers <= 6:
            raise ValueError(f"countdown: need 2 <= min_numbers <= max_numbers <= 6, got {min_numbers}..{max_numbers}")
        if isinstance(solutions, bool) or not isinstance(solutions, int) or solutions < 0:
            raise ValueError(f"countdown: option 'solutions' must be a whole number >= 0, got {solutions!r}")
        self.min_numbers, self.max_numbers, self.default_n = min_numbers, max_numbers, default_n
        self.solutions, self.needs, self.left = solutions, bool(needs), bool(left)
        self.values = bool(values or needs or left)

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
            golds = [(f"countdown-{seed}-{i}", lines)]
            if self.solutions:
                found = solve_all(numbers, target)
                picked = random.Random(f"countdown:{seed}:{i}:solutions").sample(found, min(self.solutions, len(found)))
                golds = [(f"countdown-{seed}-{i}-s{k}", sol) for k, sol in enumerate(picked)]
            for pid, gold in golds:
                if self.values:
                    gold = with_values(gold, numbers, target if self.needs else None, self.left)
                yield Problem(id=pid, question=text, answer=target, gold=gold, family=self.name,
                              meta={"numbers": numbers, "target": target, "split": split, "steps": len(gold)})

    def progress(self, problem: Problem, lines: Sequence[str]) -> float:
        """The share of the trace's first lines that keep the target within reach (module ``progress``)."""
        return progress(problem, lines)

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


@dataclass
class Stepwise:
    """One trace sampled with the interpreter in the loop (``stepwise_traces``)."""

    lines: list[str]  # as the step language runs them (literal numbers, no comments)
    parts: list[tuple[str, bool]] = field(default_factory=list)  # the completion as the policy read it:
    # (text, written by the policy); the interpreter wrote the rest (each step's comment, line breaks)
    logprob: float = 0.0  # summed log-probability of the tokens the policy wrote
    tokens: int = 0  # how many tokens the policy wrote

    @property
    def text(self) -> str:
        return "".join(text for text, _ in self.parts)

    @property
    def mean_logprob(self) -> float:
        return self.logprob / self.tokens if self.tokens else 0.0


def _continue_from(problem: Problem, prefix: Sequence[str], fmt: Any,
                   style: dict[str, bool]) -> tuple[str, TraceState] | None:
    """The prompt after ``prefix`` (each line with its comment) and the interpreter state there; None
    if the prefix has ended (an answer line, or a line that does not run)."""
    from dca.reasoning.prompt import policy_comment, prompt_numbers, render_prompt, to_refs

    state = TraceState(problem.meta["numbers"], problem.answer if style.get("needs") else None, bool(style.get("left")))
    numbers = prompt_numbers(problem.question, [], fmt) if fmt.refs else []
    text = render_prompt(problem.question, [], [], fmt)
    for line in prefix:
        try:
            comment = state.step(line)
        except StepError:
            return None
        if comment is None:
            return None
        text += f"{to_refs(line, numbers) if fmt.refs else line} {policy_comment(comment, numbers, fmt.refs)}\n"
    return text, state


def stepwise_prompt(problem: Problem, prefix: Sequence[str], fmt: Any, style: dict[str, bool]) -> str | None:
    """The prompt a stepwise policy continues from after ``prefix``: the question and each prefix line
    with the comment the interpreter writes for it; None if the prefix has ended."""
    start = _continue_from(problem, prefix, fmt, style)
    return None if start is None else start[0]


def stepwise_traces(model: Any, tokenizer: Any, fmt: Any, problems: Sequence[Problem], *, style: dict[str, bool],
                    temperature: float = 1.0, seed: int = 0, max_steps: int = 5, max_new_tokens: int = 48,
                    top_k: int | None = None, prefixes: Sequence[Sequence[str]] | None = None,
                    stop_at_comment: bool = False) -> list[Stepwise]:
    """One trace per entry of ``problems`` (repeat a problem for several samples), all sampled in one
    batch a line at a time with the interpreter in the loop: after each line the step's value, as the
    interpreter computes it, is written into the context as the line's trailing comment (replacing any
    the policy wrote), so the policy never does the arithmetic itself. ``style`` ({"needs", "left"},
    see ``trace_style``) picks what else the comments state. A trace ends at its ``answer`` line or its
    first line that does not run. ``prefixes`` (lines already written, one list per problem, shown with
    their comments) continue partial traces; the returned traces hold only the new lines, at most
    ``max_steps`` of them. Used for sampling (``sample_with_values``, ``LMPolicy`` for a policy trained
    on these comments) and as GRPO's rollout. ``stop_at_comment`` ends each line where the policy starts
    its own comment, which the interpreter's comment replaces anyway: the same lines from ~40 % of the decoding
    steps, but the traces' log-probabilities then cover the lines without their comments."""
    from dca.reasoning.policy import generate
    from dca.reasoning.prompt import from_refs, policy_comment, prompt_numbers
    from dca.reasoning.sft import encode_prompt
    from dca.reasoning.steps import _split_comment

    for problem in problems:
        if "numbers" not in problem.meta:
            raise ValueError(f"stepwise sampling: problem {problem.id!r} has no meta['numbers'] (a countdown problem)")
    prefixes = list(prefixes) if prefixes is not None else [[] for _ in problems]
    if len(prefixes) != len(problems):
        raise ValueError(f"stepwise sampling: {len(prefixes)} prefixes for {len(problems)} problems")
    numbers = [prompt_numbers(p.question, [], fmt) if fmt.refs else [] for p in problems]
    traces = [Stepwise([]) for _ in problems]
    # each live trace's interpreter state (after its prefix); None once the trace has ended
    starts = [_continue_from(p, prefix, fmt, style) for p, prefix in zip(problems, prefixes)]
    states: list[TraceState | None] = [None if s is None else s[1] for s in starts]
    heads = ["" if s is None else s[0] for s in starts]
    for k in range(max_steps):
        live = [r for r, state in enumerate(states) if state is not None]
        if not live:
            break
        prompts = [encode_prompt(heads[r] + traces[r].text, tokenizer) for r in live]
        outs = generate(model, tokenizer, prompts, temperature=temperature, seed=seed * 1009 + k,
                        max_new_tokens=max_new_tokens, until="step" if stop_at_comment else "line", top_k=top_k)
        for r, out in zip(live, outs):
            trace = traces[r]
            written, mean, count = out[0]
            trace.logprob += float(mean) * int(count)
            trace.tokens += int(count)
            text = _split_comment(written.split("\n")[0].strip())[0]
            line = from_refs(text, numbers[r]) if fmt.refs else text
            trace.lines.append(line)
            trace.parts.append((text, True))
            try:
                comment = states[r].step(line)
            except StepError:
                comment = None
            if comment is None:  # an answer line, or a line that does not run: the trace ends
                states[r] = None
            else:
                trace.parts.append((f" {policy_comment(comment, numbers[r], fmt.refs)}", False))
            trace.parts.append(("\n", False))
    return traces


def sample_with_values(policy: Any, problem: Problem, n: int = 64, temperature: float = 1.0, seed: int = 0,
                       max_steps: int = 5, style: dict[str, bool] | None = None) -> list[list[str]]:
    """``n`` traces from an ``LMPolicy`` for ``problem``, sampled with the interpreter in the loop
    (``stepwise_traces``); ``style`` defaults to the comments the policy was trained on (``trace_style``)."""
    model, tokenizer = policy.load()
    style = trace_style(policy) if style is None else style
    return [t.lines for t in stepwise_traces(model, tokenizer, policy.format, [problem] * n, style=style,
                                             temperature=temperature, seed=seed, max_steps=max_steps,
                                             max_new_tokens=policy.max_new_tokens, top_k=policy.top_k)]


def _countdown_options(policy: Any) -> list[dict[str, Any]]:
    """The options of the countdown data the policy (an ``LMPolicy`` or a model directory) was trained
    on, per its ``dca_training.json``; a GRPO policy's are those of the policy it started from, and so
    are those of a fine-tune whose own data has no countdown."""
    import json
    from pathlib import Path

    if isinstance(policy, (str, Path)):
        directory = str(policy)
    else:
        directory = policy._model_dir() if hasattr(policy, "_model_dir") else None
    options: list[dict[str, Any]] = []
    for _ in range(8):  # GRPO from GRPO from ... an SFT run
        path = Path(directory or "", "dca_training.json")
        record = json.loads(path.read_text()) if directory and path.exists() else {}
        sources = record.get("config", {}).get("data", [])
        options = [s.get("options") or {} for s in sources if s.get("family") == "countdown"]
        # GRPO's data are its prompts (no comment options); a fine-tune's count only if it has countdown
        if not record.get("start") or (options and record.get("kind") != "grpo"):
            break
        directory = record["start"]
    return options


def trace_style(policy: Any) -> dict[str, bool]:
    """Which countdown comments (``needs``, ``left``) the policy (an ``LMPolicy`` or a model directory)
    was trained on; a GRPO policy writes what the policy it started from was trained on."""
    options = _countdown_options(policy)
    return {key: any(o.get(key) for o in options) for key in ("needs", "left")}


def trained_with_comments(policy: Any) -> bool:
    """Was the policy trained on countdown traces whose steps state their values in comments (and so
    should sample countdown with the interpreter writing them)?"""
    return any(o.get(key) for o in _countdown_options(policy) for key in ("values", "needs", "left"))
