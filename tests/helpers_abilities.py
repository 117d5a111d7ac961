"""Small real abilities for graph tests: a scripted reasoner and an in-memory knowledge base.

They implement dca's ability Protocols the way a user's own plug-ins would.
"""
from __future__ import annotations

from dca.abilities import Proposal, ProposeRequest
from dca.types import Compute, Evidence


class ScriptedLogic:
    """Proposes, at position i, the first line of ``script[i]`` not already rejected there."""

    def __init__(self, script: list[list[str]], fail_at: int | None = None):
        self.script = script
        self.fail_at = fail_at
        self.calls = 0

    def propose(self, request: ProposeRequest) -> list[Proposal]:
        self.calls += 1
        pos = len(request.steps)
        if self.fail_at is not None and pos == self.fail_at:
            raise RuntimeError("reasoner crashed")
        options = self.script[pos] if pos < len(self.script) else []
        fresh = [ln for ln in options if ln not in request.avoid]
        return [Proposal(lines=fresh[:1], compute=Compute(model_calls=1, policy_samples=1, tokens=5))]


class FactsKnowledge:
    """Ranks a fixed list of facts by word overlap with the query."""

    def __init__(self, facts: list[str]):
        self.facts = [Evidence(id=f"f{i}", text=t, source="facts.md", metadata={"row": i}) for i, t in enumerate(facts)]

    def retrieve(self, query: str, k: int = 5) -> list[Evidence]:
        q = set(query.lower().split())
        scored = []
        for e in self.facts:
            overlap = len(q & set(e.text.lower().replace(":", " ").split()))
            scored.append(Evidence(e.id, e.text, overlap / max(len(q), 1), e.source, e.metadata))
        return sorted(scored, key=lambda e: -e.score)[:k]


class EchoWording:
    def word(self, task, answer, steps, evidence):
        return f"The answer is {answer}."
