"""Synthetic multi-step word problems of a chosen depth (1-20 steps), with gold traces.

Each sentence changes one running quantity and is exactly one step of the gold trace, so depth is
controlled precisely (the compounding benchmark relies on that). Sentences come from paraphrase
templates over several vocabularies; the templates marked held-out appear only in split "test",
so a policy can be tested on wordings it never trained on.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Iterator

from dca.reasoning.steps import PLAN_PREFIX
from dca.reasoning.tasks.base import Problem
from dca.reasoning.tasks.splits import bucket, check_split, exact_number
from dca.types import Value

DEV_FRACTION = 0.1
MAX_VALUE = 50_000


@dataclass(frozen=True)
class Vocab:
    items: str  # plural noun
    unit: str  # a container of items
    place: str


VOCABS = (
    Vocab("cookies", "tray", "the bakery"), Vocab("books", "shelf", "the library"),
    Vocab("eggs", "carton", "the farm"), Vocab("boxes", "pallet", "the warehouse"),
    Vocab("dollars", "envelope", "the savings jar"), Vocab("seeds", "packet", "the garden shed"),
    Vocab("pencils", "case", "the classroom"), Vocab("marbles", "bag", "the toy chest"),
    Vocab("stamps", "album page", "the collection"), Vocab("apples", "crate", "the orchard stand"),
    Vocab("bottles", "pack", "the shop"), Vocab("tickets", "booklet", "the box office"),
)
NAMES = ("Maya", "Leo", "Ines", "Omar", "Priya", "Jonas", "Keiko", "Tomas", "Ada", "Femi", "Lucia", "Ravi",
         "Sofia", "Noah", "Amara", "Chen", "Elif", "Mateo", "Zara", "Hugo", "Nadia", "Kwame", "Lena", "Ivan")


@dataclass(frozen=True)
class Template:
    text: str
    held_out: bool = False


# Each operation: templates, and how it builds the step expression from the previous value's name.
START = (Template("{A} has {n} {items}."), Template("At first there are {n} {items} in {place}."),
         Template("{A} starts the week with {n} {items}."), Template("{A} keeps {n} {items} at {place}."),
         Template("In the beginning {A} owns {n} {items}.", held_out=True))
QUESTION = (Template("How many {items} does {A} have now?"), Template("How many {items} are there at the end?"),
            Template("What is the final number of {items}?"), Template("How many {items} are left in the end?"),
            Template("Count the {items} {A} ends up with.", held_out=True))
OPS: dict[str, tuple[Template, ...]] = {
    "add": (Template("{A} buys {k} more {items}."), Template("{B} gives {A} {k} {items}."),
            Template("Another {k} {items} arrive."), Template("{A} collects {k} additional {items}."),
            Template("Then {k} extra {items} are added to the pile.", held_out=True)),
    "sub": (Template("{A} gives {k} {items} to {B}."), Template("{k} of the {items} are lost."),
            Template("{A} uses up {k} {items}."), Template("{A} sells {k} {items}."),
            Template("After that, {B} takes away {k} {items}.", held_out=True)),
    "mul": (Template("The number of {items} becomes {k} times as large."),
            Template("{A} multiplies the {items} by {k}."),
            Template("{A} ends up with {k} times as many {items} as before."),
            Template("The stock of {items} grows {k}-fold.", held_out=True)),
    "double": (Template("{A} doubles the number of {items}."), Template("The {items} double."),
               Template("Next, the count of {items} is doubled.", held_out=True)),
    "div": (Template("{A} splits the {items} evenly into {k} {unit}s and keeps one {unit}."),
            Template("{A} shares the {items} equally among {k} friends and keeps one share."),
            Template("{A} divides the {items} into {k} equal groups and keeps just one group.", held_out=True)),
    "half": (Template("{A} gives away half of the {items}."), Template("Half of the {items} are sold."),
             Template("Only half of the {items} remain after that.", held_out=True)),
    "groups": (Template("{A} receives {k} {unit}s with {m} {items} in each."),
               Template("{B} brings {k} {unit}s holding {m} {items} each."),
               Template("{k} more {unit}s of {m} {items} apiece are delivered.", held_out=True)),
    "percent": (Template("{A} sells {p}% of the {items}."), Template("{p}% of the {items} are given away."),
                Template("Then {p} percent of the {items} go missing.", held_out=True)),
}


def _expression(op: str, prev: str, a: dict) -> str:
    return {
        "add": lambda: f"{prev} + {a['k']}", "sub": lambda: f"{prev} - {a['k']}",
        "mul": lambda: f"{prev} * {a['k']}", "double": lambda: f"{prev} * 2",
        "div": lambda: f"{prev} / {a['k']}", "half": lambda: f"{prev} / 2",
        "groups": lambda: f"{prev} + {a['k']} * {a['m']}", "percent": lambda: f"{prev} - {prev} * {a['p']} / 100",
    }[op]()


def _choose(op: str, cur: int, rng: random.Random) -> dict | None:
    """Operands for ``op`` that keep the running value a whole number in range, or None."""
    if op == "add":
        return {"k": rng.randint(2, 60)}
    if op == "sub":
        return {"k": rng.randint(1, cur - 1)} if cur > 2 else None
    if op == "mul":
        k = rng.randint(3, 6)
        return {"k": k} if cur * k <= MAX_VALUE else None
    if op == "double":
        return {} if cur * 2 <= MAX_VALUE else None
    if op == "div":
        ks = [k for k in range(3, 11) if cur % k == 0 and cur // k >= 2]
        return {"k": rng.choice(ks)} if ks else None
    if op == "half":
        return {} if cur % 2 == 0 and cur >= 4 else None
    if op == "groups":
        return {"k": rng.randint(2, 9), "m": rng.randint(2, 24)}
    if op == "percent":
        ps = [p for p in (10, 20, 25, 50, 75) if cur * p % 100 == 0 and cur * (100 - p) // 100 >= 1]
        return {"p": rng.choice(ps)} if ps else None
    raise KeyError(op)


_APPLY: dict[str, Callable[[int, dict], int]] = {
    "add": lambda c, a: c + a["k"], "sub": lambda c, a: c - a["k"], "mul": lambda c, a: c * a["k"],
    "double": lambda c, a: c * 2, "div": lambda c, a: c // a["k"], "half": lambda c, a: c // 2,
    "groups": lambda c, a: c + a["k"] * a["m"], "percent": lambda c, a: c - c * a["p"] // 100,
}


class Synthetic:
    """Generated word problems of ``min_steps``..``max_steps`` steps; "test" uses only held-out wordings.

    ``plan=True`` gives every gold step but the last a trailing comment that quotes the sentence the
    next step acts on (``x3 = x2 - 28 # next: Chen gives Tomas 39 bottles.``; before the answer step
    the question follows it), so a policy trained on such traces keeps its place in a long problem
    by copying the sentence after the one it quoted last, instead of counting sentences. The
    problems themselves are the same with and without it.
    """

    name = "synthetic"
    splits = ("train", "dev", "test")

    def __init__(self, min_steps: int = 1, max_steps: int = 20, default_n: int = 1000, plan: bool = False):
        if not 1 <= min_steps <= max_steps <= 40:
            raise ValueError(f"synthetic: need 1 <= min_steps <= max_steps <= 40, got {min_steps}..{max_steps}")
        self.min_steps, self.max_steps, self.default_n = min_steps, max_steps, default_n
        self.plan = plan

    def problems(self, split: str = "train", n: int | None = None, seed: int = 0) -> Iterator[Problem]:
        check_split(self.name, split, self.splits)
        rng = random.Random(f"synthetic:{'test' if split == 'test' else 'pool'}:{seed}")
        made, tries = 0, 0
        want = self.default_n if n is None else n
        while made < want:
            tries += 1
            p = self.make(rng.randint(self.min_steps, self.max_steps), rng, held_out=split == "test")
            if split != "test" and (bucket(p.question, "synthetic-dev") < DEV_FRACTION) != (split == "dev"):
                continue
            p.id = f"synthetic-{split}-{seed}-{made}"
            p.meta["split"] = split
            made += 1
            yield p

    def make(self, steps: int, rng: random.Random, held_out: bool = False) -> Problem:
        """One problem of exactly ``steps`` steps (templates: held-out ones only, or none of them)."""

        def pick(templates: tuple[Template, ...]) -> Template:
            pool = [t for t in templates if t.held_out == held_out]
            return rng.choice(pool)

        vocab = rng.choice(VOCABS)
        a_name, b_name = rng.sample(NAMES, 2)
        words = {"A": a_name, "B": b_name, "items": vocab.items, "unit": vocab.unit, "place": vocab.place}
        cur = rng.randint(5, 120)
        sentences = [pick(START).text.format(n=cur, **words)]
        lines: list[str] = []
        stated: list[float] = []
        used: list[str] = []
        prev = str(cur)
        for i in range(steps):
            while True:
                op = rng.choice(list(OPS))
                args = _choose(op, cur, rng)
                if args is not None:
                    break
            template = pick(OPS[op])
            sentences.append(template.text.format(**words, **args))
            cur = _APPLY[op](cur, args)
            target = "answer" if i == steps - 1 else f"x{i + 1}"
            lines.append(f"{target} = {_expression(op, prev, args)}")
            stated.append(float(cur))
            used.append(op)
            prev = target
        sentences.append(pick(QUESTION).text.format(**words))
        sentences = [s[0].upper() + s[1:] for s in sentences]
        text = " ".join(sentences)
        if self.plan:  # step i acts on sentence i + 1 (the first also on the start sentence)
            for i in range(steps - 1):
                ahead = sentences[i + 2: i + 4] if i == steps - 2 else sentences[i + 2: i + 3]
                lines[i] += f" # {PLAN_PREFIX} {' '.join(ahead)}"
        return Problem(id="", question=text, answer=cur, gold=lines, family=self.name,
                       meta={"steps": steps, "stated": stated, "ops": used, "vocab": vocab.items,
                             "held_out": held_out})

    def score(self, problem: Problem, answer: Value) -> bool:
        """Exact: the number equals the generated answer."""
        return exact_number(answer, problem.answer)
