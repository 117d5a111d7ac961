"""The policy's prompt: one renderer for supervised data and for inference, so they never drift.

    Question: what was the change in revenue from 2014 to 2015?
    Facts:
    [1] Net revenue: 2015 = 5,829; 2014 = 5,735 (in millions)
    Steps:
    x1 = 5829 - 5735
    answer = x1 / 5735

The prompt ends after "Steps:" plus the verified steps so far; the model writes one step per line
and ends the trace with ``answer = ...`` and its end-of-sequence token. Facts are bounded in
number and length: a long fact keeps the sentences that share most words with the question.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from dca.reasoning.steps import _split_comment
from dca.types import Evidence, Step

if TYPE_CHECKING:  # pragma: no cover
    from dca.reasoning.tasks.base import Problem

_WORD = re.compile(r"[a-z]+|\d[\d,.]*")
_SENTENCE = re.compile(r"(?<=[.;!?])\s+")
_STOP = frozenset(
    "a an and are as at be by did do does for from had has have how in is it its many much of on or "
    "the their there this to was were what when which who will with".split())


@dataclass(frozen=True)
class PromptFormat:
    """Bounds on what the policy sees."""

    max_facts: int = 5
    max_fact_chars: int = 200
    max_question_chars: int = 700
    max_numbers: int = 0  # > 0: list the numbers of question and facts, as step literals, before "Steps:"
    refs: bool = False  # name the listed numbers n1, n2, ... and write steps with those names
    comments: bool = False  # steps keep their trailing comments (a policy trained to write them reads them back)


DEFAULT_FORMAT = PromptFormat()
FORMAT_FILE = "dca_prompt.json"


def save_format(fmt: PromptFormat, model_dir: str | Path) -> None:
    """Record in a model directory the prompt format it was trained with (``LMPolicy`` reads it)."""
    Path(model_dir, FORMAT_FILE).write_text(json.dumps(asdict(fmt), indent=2))


def load_format(model_dir: str | Path | None, **overrides: object) -> PromptFormat:
    """The format a model was trained with, or the default for a model that does not say."""
    path = Path(model_dir, FORMAT_FILE) if model_dir else None
    saved = json.loads(path.read_text()) if path and path.exists() else {}
    known = {f.name for f in fields(PromptFormat)}
    return PromptFormat(**{k: v for k, v in {**saved, **overrides}.items() if k in known})


def render_prompt(task: str, evidence: Sequence[Evidence] = (), steps: Sequence[Step | str] = (),
                  fmt: PromptFormat = DEFAULT_FORMAT) -> str:
    """The policy's input: question, up to ``fmt.max_facts`` facts (in the order given), steps so far."""
    question = " ".join(task.split())[: fmt.max_question_chars]
    parts = [f"Question: {question}\n"]
    facts = list(evidence)[: fmt.max_facts]
    if facts:
        parts.append("Facts:\n")
        for i, e in enumerate(facts, 1):
            parts.append(f"[{i}] {clip_fact(e.text, question, fmt.max_fact_chars)}\n")
    numbers = prompt_numbers(task, facts, fmt)
    if numbers and fmt.refs:
        parts.append(f"Numbers: {', '.join(f'n{i} = {x}' for i, x in enumerate(numbers, 1))}\n")
    elif numbers:
        parts.append(f"Numbers: {', '.join(numbers)}\n")
    parts.append("Steps:\n")
    parts.append(render_steps([s.text if isinstance(s, Step) else s for s in steps], numbers, fmt))
    return "".join(parts)


def prompt_numbers(task: str, evidence: Sequence[Evidence], fmt: PromptFormat = DEFAULT_FORMAT) -> list[str]:
    """The numbers the prompt lists (none unless ``fmt.max_numbers``): question first, then facts."""
    if not fmt.max_numbers:
        return []
    question = " ".join(task.split())[: fmt.max_question_chars]
    shown = [question] + [clip_fact(e.text, question, fmt.max_fact_chars) for e in list(evidence)[: fmt.max_facts]]
    return literals(shown, fmt.max_numbers)


def _number_tokens(line: str) -> list[tuple[int, int, str, str]]:
    """``(start, end, type, text)`` of the NUMBER and NAME tokens right of the ``=`` of a step line."""
    import io
    import tokenize

    out = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(line).readline):
            if tok.type in (tokenize.NUMBER, tokenize.NAME) and tok.start[0] == 1:
                out.append((tok.start[1], tok.end[1], tokenize.tok_name[tok.type], tok.string))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return []
    eq = line.find("=")
    return [t for t in out if t[0] > eq]


def _replace(line: str, edits: list[tuple[int, int, str]]) -> str:
    for start, end, text in sorted(edits, reverse=True):
        line = line[:start] + text + line[end:]
    return line


def to_refs(line: str, numbers: Sequence[str]) -> str:
    """A step with every listed number written as its name: ``x1 = 5829 - 5735`` -> ``x1 = n3 - n4``."""
    from dca.reasoning.steps import format_value

    index = {x: i for i, x in reversed(list(enumerate(numbers, 1)))}
    edits = []
    for start, end, kind, text in _number_tokens(line):
        if kind == "NUMBER":
            key = format_value(float(text)) if text.replace(".", "", 1).isdigit() else text
            if key in index:
                edits.append((start, end, f"n{index[key]}"))
    return _replace(line, edits)


def from_refs(line: str, numbers: Sequence[str]) -> str:
    """A step with the names ``n1``, ``n2``, ... replaced by the numbers they stand for."""
    edits = []
    for start, end, kind, text in _number_tokens(line):
        if kind == "NAME" and re.fullmatch(r"n[1-9]\d*", text) and int(text[1:]) <= len(numbers):
            x = numbers[int(text[1:]) - 1]
            edits.append((start, end, f"({x})" if x.startswith("-") else x))
    return _replace(line, edits)


def literals(texts: Sequence[str], limit: int) -> list[str]:
    """The numbers of ``texts`` as a step writes them ("5,829" -> 5829, "(12)" -> -12), first
    occurrence first, at most ``limit``: a short list the model copies operands from."""
    from dca.numbers import find_numbers
    from dca.reasoning.steps import format_value

    out: list[str] = []
    for text in texts:
        for n in find_numbers(text):
            lit = format_value(n.value)
            if lit not in out:
                out.append(lit)
                if len(out) >= limit:
                    return out
    return out


def render_steps(lines: Sequence[str], numbers: Sequence[str] = (), fmt: PromptFormat = DEFAULT_FORMAT) -> str:
    """Step lines as the model writes them, one per line (see ``policy_line``)."""
    return "".join(policy_line(ln, numbers, fmt) + "\n" for ln in lines if ln.strip())


def policy_line(line: str, numbers: Sequence[str], fmt: PromptFormat) -> str:
    """A step line as the policy writes it: the listed ``numbers`` as n1, n2, ... under ``fmt.refs``;
    its trailing comment kept under ``fmt.comments`` (those numbers named the same way), else dropped."""
    code, comment = _split_comment(line.strip())
    code = to_refs(code.strip(), numbers) if fmt.refs else code.strip()
    return f"{code} {policy_comment(comment, numbers, fmt.refs)}" if fmt.comments and comment else code


def policy_comment(comment: str, numbers: Sequence[str], refs: bool) -> str:
    """A step's trailing comment as the policy reads it: the listed numbers named as in its steps if ``refs``."""
    return comment_refs(comment, numbers) if refs else comment


_COMMENT_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")


def comment_refs(comment: str, numbers: Sequence[str]) -> str:
    """A step's comment as a ``refs`` policy reads it: after the stated value, every number the prompt
    lists is written as its name (``# 57 (+64) left 29 x1`` -> ``# 57 (+n5) left n2 x1``)."""
    index = {x: i for i, x in reversed(list(enumerate(numbers, 1)))}
    head = re.match(r"#\s*\S*", comment)
    cut = head.end() if head else 0
    return comment[:cut] + _COMMENT_NUMBER.sub(lambda m: f"n{index[m.group()]}" if m.group() in index else m.group(),
                                               comment[cut:])


def terms(text: str) -> set[str]:
    """Lower-case content words and numbers of a text (what question-fact overlap counts)."""
    return {w.rstrip(".,") for w in _WORD.findall(text.lower()) if w not in _STOP}


def clip_fact(text: str, question: str, max_chars: int) -> str:
    """``text`` cut to ``max_chars``: the sentences sharing most terms with the question, in their order."""
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return text
    sentences = [s for s in _SENTENCE.split(text) if s]
    if len(sentences) > 1:
        q = terms(question)
        ranked = sorted(range(len(sentences)), key=lambda i: (-len(terms(sentences[i]) & q), i))
        keep: list[int] = []
        used = 0
        for i in ranked:
            if used + len(sentences[i]) + 1 <= max_chars:
                keep.append(i)
                used += len(sentences[i]) + 1
        if keep:
            return " ".join(sentences[i] for i in sorted(keep))
        text = sentences[ranked[0]]
    return text[: max_chars - 1].rstrip() + "…"


def rank_facts(question: str, evidence: Sequence[Evidence], must: Sequence[str] = (),
               k: int | None = None) -> list[Evidence]:
    """Facts ordered by shared terms with the question (a lexical stand-in for the retriever when
    a problem brings its whole page), keeping the ids in ``must`` within the first ``k``."""
    q = terms(question)
    order = sorted(range(len(evidence)), key=lambda i: (-len(terms(evidence[i].text) & q), i))
    ranked = [evidence[i] for i in order]
    if k is None:
        return ranked
    top = ranked[:k]
    forced = [e for e in ranked[k:] if e.id in set(must)]
    if forced:
        keep = [e for e in top if e.id in set(must)]
        others = [e for e in top if e.id not in set(must)][: max(0, k - len(keep) - len(forced))]
        chosen = {e.id for e in keep + others + forced}
        top = [e for e in ranked if e.id in chosen]
    return top


def problem_facts(problem: "Problem", fmt: PromptFormat = DEFAULT_FORMAT, gold: bool = True) -> list[Evidence]:
    """The facts a problem shows its policy: the best-ranked ones, with the dataset's gold facts
    kept in when ``gold`` (as training does; at run time the retriever chooses)."""
    keys = set(problem.meta.get("gold_keys") or [])
    must = [e.id for e in problem.evidence if e.metadata.get("gold_key") in keys] if gold else []
    return rank_facts(problem.question, problem.evidence, must=must, k=fmt.max_facts)


def policy_example(problem: "Problem", fmt: PromptFormat = DEFAULT_FORMAT) -> tuple[str, str] | None:
    """A (prompt, completion) pair from a problem's gold trace, or None when there is no trace or
    it writes a number the verifier would not find grounded in what the prompt shows."""
    from dca.reasoning.steps import StepError, parse_step
    from dca.verifier import grounding_pool

    if not problem.gold:
        return None
    facts = problem_facts(problem, fmt)
    prompt = render_prompt(problem.question, facts, (), fmt)
    shown = [Evidence(id=e.id, text=clip_fact(e.text, problem.question, fmt.max_fact_chars), metadata=e.metadata)
             for e in facts]
    pool = grounding_pool(problem.question, shown)
    for line in problem.gold:
        try:
            numbers = parse_step(line).numbers
        except StepError:
            return None
        if not all(pool.has(x) for x in numbers):
            return None
    return prompt, render_steps(problem.gold, prompt_numbers(problem.question, facts, fmt), fmt)
