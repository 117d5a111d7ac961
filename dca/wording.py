"""The language ability: a sentence that states the verified value and cites its sources.

``LMWording`` asks any causal LM (through its chat template when it has one); the offline default
``dca:tiny-wording`` is trained here on pairs made from the task families' questions and answers.
``TemplateWording`` is the plain sentence the graph falls back to when the verifier finds that a
model's sentence does not state the verified value.
"""
from __future__ import annotations

import hashlib
import random
import re
from typing import TYPE_CHECKING, Any, Sequence

from dca.reasoning.steps import ANSWER, format_value
from dca.types import Evidence, Step, Value

if TYPE_CHECKING:  # pragma: no cover
    from dca.reasoning.prompt import PromptFormat
    from dca.reasoning.tasks.base import Problem
    from dca.verifier import Verifier

MAX_SOURCES = 5
_SENTENCES = re.compile(r"(?<=[.!?])\s+")


def spoken_value(v: Value) -> str:
    """A value as a sentence states it: ``format_value`` of the value rounded to 4 decimals (what
    ``Verifier.check_wording`` accepts as stating it; 6 significant digits may not be)."""
    if isinstance(v, float) and abs(v) >= 1e-3:
        return format_value(round(v, 4))
    return format_value(v)


def source_marks(k: int) -> list[str]:
    return [f"[{i}]" for i in range(1, min(k, MAX_SOURCES) + 1)]


def answer_expression(steps: Sequence[Step]) -> str:
    """How the answer was computed: the ``answer`` step's expression (or the last step's)."""
    for s in reversed(steps):
        if s.target == ANSWER or s.text.strip().startswith(ANSWER):
            return s.expr or s.text.partition("=")[2].strip()
    return steps[-1].expr if steps else ""


class TemplateWording:
    """A plain, always-correct sentence: value, how it was computed, which sources it used."""

    def word(self, task: str, answer: Value, steps: list[Step], evidence: list[Evidence]) -> str:
        how = answer_expression(steps)
        value = spoken_value(answer)
        parts = [f"computed from {how}"] if how and how != value else []
        marks = source_marks(len(evidence))
        if marks:
            parts.append("sources: " + ", ".join(marks))
        tail = f" ({'; '.join(parts)})" if parts else ""
        return f"The answer is {value}{tail}."


def question_sentence(task: str, max_chars: int = 200) -> str:
    """The sentence that asks (the last one ending in "?", else the last one), cut to ``max_chars``."""
    text = " ".join(task.split())
    sentences = [s for s in _SENTENCES.split(text) if s]
    asks = [s for s in sentences if s.rstrip().endswith("?")]
    chosen = (asks or sentences or [text])[-1]
    return chosen[:max_chars]


def wording_messages(task: str, value: str, sources: int) -> list[dict[str, str]]:
    """The chat messages the wording model answers; training pairs and inference use the same ones."""
    marks = ", ".join(source_marks(sources)) or "none"
    return [{"role": "user", "content": f"Question: {question_sentence(task)}\nValue: {value}\nSources: {marks}\n"
                                        "Answer in one sentence that states the value and cites the sources."}]


class LMWording:
    """``dca.abilities.Wording`` backed by a causal LM (chat template when the tokenizer has one)."""

    def __init__(self, model: str = "dca:tiny-wording", max_new_tokens: int = 40, threads: int | None = None):
        self.model_name = model
        self.max_new_tokens = max_new_tokens
        self.threads = threads
        self._loaded: tuple[Any, Any] | None = None

    def load(self) -> tuple[Any, Any]:
        if self._loaded is None:
            from dca.models.registry import load_causal_lm

            self._loaded = load_causal_lm(self.model_name, threads=self.threads)
        return self._loaded

    def word(self, task: str, answer: Value, steps: list[Step], evidence: list[Evidence]) -> str:
        model, tokenizer = self.load()
        return word_with_model(model, tokenizer, task, spoken_value(answer), len(evidence), self.max_new_tokens)


def word_with_model(model: Any, tokenizer: Any, task: str, value: str, sources: int, max_new_tokens: int = 40) -> str:
    from dca.reasoning.policy import generate
    from dca.reasoning.sft import encode_prompt, render_prompt_text

    prompt = encode_prompt(render_prompt_text(wording_messages(task, value, sources), tokenizer), tokenizer)
    text = generate(model, tokenizer, [prompt], max_new_tokens=max_new_tokens, until="line")[0][0][0]
    return text.split("\n")[0].strip()


def word_checked(wording: Any, verifier: "Verifier", task: str, answer: Value, steps: list[Step],
                 evidence: list[Evidence]) -> tuple[str, bool, str]:
    """``(sentence, fell_back, reason)``: the wording's sentence if the verifier finds the value in it,
    else ``TemplateWording``'s, with the reason the model's sentence was refused."""
    try:
        text = wording.word(task, answer, steps, evidence)
    except Exception as exc:  # a broken wording model must not lose a verified answer
        return TemplateWording().word(task, answer, steps, evidence), True, f"wording failed: {exc}"
    verdict = verifier.check_wording(text, answer)
    if verdict.ok:
        return text, False, ""
    return TemplateWording().word(task, answer, steps, evidence), True, verdict.reason


# --------------------------------------------------------------------------- training pairs

_WHAT = re.compile(r"^(?:what|which)\s+(is|was|are|were)\s+(?:the\s+)?(.+?)\s*\??$", re.I)
_HOW_MANY = re.compile(r"^how\s+many\s+([a-z][a-z\- ]*?)\s+(?:did|does|do|will|would|can|could|are|were|is|was|has|have|had)\b", re.I)
_YEAR = re.compile(r"^in\s+which\s+year\b", re.I)


def restate(question: str, value: str, marks: Sequence[str], style: int) -> str:
    """A target sentence: the question turned into a statement of ``value``, citing ``marks``."""
    q = question_sentence(question).strip().rstrip("?").strip()
    q = re.sub(r"\s+,", ",", q).rstrip(" ,")
    cite = ""
    if marks:
        cite = [" " + "".join(marks), " (" + ", ".join(marks) + ")",
                ", according to " + " and ".join(marks)][style % 3]
    m = _WHAT.match(q)
    if m:
        subject = m.group(2).strip()
        return f"The {subject} {m.group(1).lower()} {value}{cite}."
    m = _HOW_MANY.match(q)
    if m:
        return f"The answer is {value} {m.group(1).strip()}{cite}."
    if _YEAR.match(q):
        return f"The year is {value}{cite}."
    return f"The answer is {value}{cite}."


def wording_example(problem: "Problem", fmt: "PromptFormat | None" = None) -> tuple[list[dict[str, str]], str] | None:
    """(messages, sentence) for a problem with a numeric answer; sources are the facts holding the
    gold trace's operands, numbered as the policy's prompt shows them."""
    if problem.answer is None or isinstance(problem.answer, (bool, str)):
        return None
    value = spoken_value(problem.answer)
    sources = _gold_sources(problem, fmt)
    style = int(hashlib.sha1(problem.id.encode()).hexdigest(), 16) % 3
    return wording_messages(problem.question, value, sources), restate(problem.question, value,
                                                                        source_marks(sources), style)


def perturbed_example(problem: "Problem", seed: int = 0) -> tuple[list[dict[str, str]], str] | None:
    """The same question with a random value and source count: teaches copying the value, not
    recalling an answer."""
    if problem.answer is None or isinstance(problem.answer, (bool, str)):
        return None
    rng = random.Random(f"{problem.id}:{seed}")
    x = float(problem.answer)
    digits = rng.choice([0, 0, 1, 2, 4])
    magnitude = max(1.0, abs(x)) * 10 ** rng.uniform(-1.5, 1.5)
    v = round(rng.uniform(-0.2, 1.0) * magnitude, digits)
    value = format_value(float(v) if digits else int(v))
    sources = rng.choice([0, 1, 1, 2, 2, 3])
    return wording_messages(problem.question, value, sources), restate(problem.question, value,
                                                                        source_marks(sources), rng.randrange(3))


def _gold_sources(problem: "Problem", fmt: "PromptFormat | None") -> int:
    if not problem.evidence or not problem.gold:
        return 0
    from dca.numbers import in_pool, number_pool
    from dca.reasoning.prompt import DEFAULT_FORMAT, problem_facts
    from dca.reasoning.steps import StepError, parse_step

    operands = []
    for line in problem.gold:
        try:
            operands.extend(x for x in parse_step(line).numbers if abs(x) not in (0, 1, 100))
        except StepError:
            continue
    facts = problem_facts(problem, fmt or DEFAULT_FORMAT)
    return sum(1 for e in facts if any(in_pool(x, number_pool(e.text)) for x in operands))


def evaluate_wording(model: Any, tokenizer: Any, problems: Sequence["Problem"],
                     fmt: "PromptFormat | None" = None) -> dict[str, Any]:
    """The share of problems whose generated sentence states the value (``Verifier.check_wording``)."""
    from dca.verifier import Verifier

    verifier = Verifier()
    rows = []
    for p in problems:
        if p.answer is None or isinstance(p.answer, (bool, str)):
            continue
        text = word_with_model(model, tokenizer, p.question, spoken_value(p.answer), _gold_sources(p, fmt))
        rows.append({"id": p.id, "text": text, "ok": verifier.check_wording(text, p.answer).ok})
    n = max(1, len(rows))
    return {"accuracy": sum(r["ok"] for r in rows) / n, "n": len(rows), "results": rows}
