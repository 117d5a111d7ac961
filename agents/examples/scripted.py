"""Two small rule-based abilities for the examples, where no model is the point.

``Plan`` is a logic ability that proposes steps from a fixed script; ``Facts`` is a knowledge
ability over a list of sentences. Both follow dca's ability Protocols the way a user's own
plug-ins do, and both can be named in a pipeline YAML (``kind: agents.examples.scripted:Plan``).
"""
from __future__ import annotations

from dca.abilities import Proposal, ProposeRequest
from dca.types import Compute, Evidence


class Plan:
    """Logic: at step i, propose the first line of ``steps[i]`` that was not rejected there yet.

    ``steps`` lists, per position, one line or several alternatives (tried in order when the
    verifier rejects one), e.g. ``[["x1 = 9999 - 1", "x1 = 5829 - 5735"], "answer = x1"]``.
    """

    def __init__(self, steps: list[str | list[str]]):
        self.steps = [[s] if isinstance(s, str) else list(s) for s in steps]

    def propose(self, request: ProposeRequest) -> list[Proposal]:
        pos = len(request.steps)
        options = self.steps[pos] if pos < len(self.steps) else []
        fresh = [line for line in options if line not in request.avoid]
        return [Proposal(lines=fresh[:1], compute=Compute(model_calls=1, policy_samples=1))]


class Facts:
    """Knowledge: ranks sentences by the share of the query's words they contain."""

    def __init__(self, facts: list[str], source: str = "facts"):
        self.facts = list(facts)
        self.source = source

    def retrieve(self, query: str, k: int = 5) -> list[Evidence]:
        words = set(_words(query))
        scored = []
        for i, text in enumerate(self.facts):
            score = len(words & set(_words(text))) / max(len(words), 1)
            scored.append(Evidence(id=f"{self.source}:{i}", text=text, score=score, source=self.source,
                                   metadata={"row": i}))
        return sorted(scored, key=lambda e: -e.score)[:k]


def _words(text: str) -> list[str]:
    return text.lower().replace(":", " ").replace(";", " ").replace(",", "").split()
