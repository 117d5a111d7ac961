"""``lookup("net revenue 2015")``: a step function that asks the knowledge ability for a number.

The RAG store returns evidence chunks; ``extract_value`` picks the number in the best chunk
whose surrounding words (its row label and column header, for a table fact) overlap the query
most. The evidence used is recorded on the step, so the verifier can check it and the answer
can cite it. Every chunk a lookup returns carries its query in ``metadata["lookup"]``, so a
reasoner can tell the facts a lookup fetched from those retrieved for the task.
"""
from __future__ import annotations

import re
from dataclasses import replace
from typing import Callable

from dca.abilities import Knowledge
from dca.numbers import find_numbers
from dca.reasoning.steps import Function, StepError
from dca.types import Evidence

LOOKUP = "lookup"  # the metadata key of the query that fetched a chunk
_WORD = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?")
_STOP = frozenset("the of in and a an to for on at by is was what were from as with total".split())


def _tokens(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def extract_value(query: str, evidence: list[Evidence]) -> tuple[float, Evidence] | None:
    """The number in ``evidence`` that best answers ``query``, with the chunk it came from."""
    q = _tokens(query)
    best: tuple[float, float, Evidence] | None = None
    for rank, ev in enumerate(evidence):
        text = ev.text
        numbers = find_numbers(text)
        non_year = [n for n in numbers if not n.is_year]
        candidates = non_year or numbers
        label = text.split(":", 1)[0] if ":" in text else ""
        for n in candidates:
            # the words just before the number: a table fact's "2019 = $1,452.4" header, or a phrase
            start = max(text.rfind(";", 0, n.start), text.rfind(".", 0, max(n.start - 1, 0)), 0)
            context = _tokens(label + " " + text[start:n.start])
            overlap = len(q & context) + 0.5 * len(q & _tokens(text))
            score = overlap + ev.score - 0.1 * rank
            if best is None or score > best[0]:
                best = (score, n.value, ev)
    if best is None:
        return None
    return best[1], best[2]


def make_lookup(knowledge: Knowledge, *, k: int = 3,
                on_evidence: Callable[[list[Evidence], Evidence], None]) -> Function:
    """A ``lookup(query) -> number`` step function backed by ``knowledge``.

    ``on_evidence(retrieved, used)`` lets the caller record what the lookup saw and cited.
    """

    def lookup(query: str) -> float:
        if not query.strip():
            raise StepError("call", "lookup() needs a non-empty query")
        evidence = [replace(e, metadata={**e.metadata, LOOKUP: query}) for e in knowledge.retrieve(query, k)]
        found = extract_value(query, evidence)
        if found is None:
            raise StepError("lookup", f"no number found for {query[:60]!r} in {len(evidence)} evidence chunk(s)")
        value, used = found
        on_evidence(evidence, used)
        return value

    return Function("lookup", lookup, ("str",), timed=False, doc="a number from the knowledge store")
