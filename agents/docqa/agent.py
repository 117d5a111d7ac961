"""``build_agent``: the docqa agent on dca's public API.

    agent = build_agent(".dca/index", collection="reports")        # a store made by `dca index`
    agent = build_agent(finqa_facts(record), percent="ratio")      # one page's facts
    result = agent.run("what was the percentage change in net revenue from 2014 to 2015?")

Knowledge ranks facts with the docqa fact ranker (over a ``retrieval.Index``'s candidates, or a
page's facts), the ``DocQAReasoner`` proposes step traces, the verifier checks each step
(fact-level grounding, units and percent form, the reasoner's confidence) and ``AnswerWording``
states the verified value with its scale and unit.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from agents.docqa.cells import SCALE_FACTORS
from agents.docqa.reasoner import DocQAReasoner, TraceConfidence
from dca.types import Evidence, Step, Value


class RerankedKnowledge:
    """A knowledge ability (e.g. ``retrieval.Index``) whose top ``depth`` results the fact ranker re-orders."""

    def __init__(self, base: Any, weights: list[float] | None, depth: int = 20, featurizer: Any = None,
                 reranker: Any = None, fusion: list[float] | None = None):
        self.base, self.weights, self.depth, self.featurizer = base, weights, depth, featurizer
        self.reranker, self.fusion = reranker, fusion

    def retrieve(self, query: str, k: int = 5) -> list[Evidence]:
        from agents.docqa.knowledge import PageKnowledge

        found = list(self.base.retrieve(query, max(k, self.depth)))
        return PageKnowledge(found, weights=self.weights, featurizer=self.featurizer,
                             reranker=self.reranker, fusion=self.fusion).retrieve(query, k)


class AnswerWording:
    """States the verified value with what the question asked for: a percentage with "%", an
    amount with its currency and scale ("$94 million"), a comparison as yes / no; cites sources."""

    def __init__(self, percent: str = "percent"):
        self.percent = percent

    def word(self, task: str, answer: Value, steps: list[Step], evidence: list[Evidence]) -> str:
        from agents.docqa.reasoner import asks_percent
        from dca.wording import answer_expression, source_marks, spoken_value

        how = answer_expression(steps)
        marks = ", ".join(source_marks(len(evidence)))
        tail = f" (computed as {how}" + (f"; sources {marks})" if marks else ")")
        if isinstance(answer, bool):
            return f"{'Yes' if answer else 'No'}{tail}."
        value = spoken_value(answer)
        if asks_percent(task) and self.percent == "percent":
            return f"The answer is {value}%{tail}."
        if asks_percent(task):
            pct = spoken_value(round(float(answer) * 100, 2))
            return f"The answer is {value}, a ratio ({pct}%){tail}."
        scale, currency = amount_unit(steps, evidence)
        unit = f" {scale}" if scale else ""
        sign, digits = ("-", value[1:]) if currency and value.startswith("-") else ("", value)
        return f"The answer is {sign}{currency}{digits}{unit}{tail}."  # "-$21.7 million", not "$-21.7"


def amount_unit(steps: list[Step], evidence: list[Evidence]) -> tuple[str, str]:
    """The scale word ("million") and currency ("$") an amount answer carries, when every fact it
    cites agrees on them; a ratio (a division) carries none."""
    if any("/" in (s.expr or s.text.partition("=")[2]) for s in steps):
        return "", ""
    cited = {i for s in steps for i in s.evidence_ids}
    facts = [e for e in evidence if e.id in cited] or evidence
    scales = {str(e.metadata.get("scale") or "") for e in facts}
    scale = scales.pop() if len(scales) == 1 else ""
    currency = "$" if facts and all("$" in e.text for e in facts) else ""
    return (scale if scale in SCALE_FACTORS and scale else ""), currency


def docqa_verifier(percent: str = "percent", threshold: float = 0.0, retries: int = 3, backtracks: int = 1) -> Any:
    """The docqa checks: structure, fact-level grounding, units (percent form), answer format and
    the reasoner's confidence (``step_scorer``, at ``threshold``)."""
    from agents.docqa.grounding import FactGrounded
    from dca.verifier import FailurePolicy, StepScore, Units, Verifier

    checks = ["parses", "executes", "stated_value", FactGrounded(), Units(percent_answer=percent), "answer_format",
              StepScore(TraceConfidence(), min_score=threshold)]
    return Verifier(checks=checks, policy=FailurePolicy(retries=retries, temperatures=[0.0], backtracks=backtracks,
                                                        max_steps=6))


def build_agent(source: Any, *, collection: str = "reports", percent: str = "percent", model: str | Path | None = None,
                top_k: int = 4, threshold: float | None = None, checkpoint: Any = None,
                fact_ranker: bool = True, lookups: bool = True, name: str = "docqa") -> Any:
    """A ``dca.Agent`` answering numeric questions over ``source``: a store path (made by
    ``dca index``), a ``retrieval.Index``, a list of facts (one page), or any knowledge ability.

    ``percent``: state percentages in percent ("percent") or as ratios ("ratio", FinQA's habit);
    ``threshold``: the confidence below which an answer stays unverified (default: the trained one);
    ``fact_ranker=False`` keeps the source's own ranking; ``lookups``: a question naming a year that
    none of the retrieved facts states starts with a lookup step for it (multi-hop).
    """
    from dca import Agent

    reasoner = DocQAReasoner(model, percent=percent, top_facts=top_k, lookups=lookups)
    heads = reasoner.heads
    weights = (heads.fact_weights(percent) or None) if (heads and fact_ranker) else None
    reranker = heads.fact_reranker() if (heads and fact_ranker) else None
    fusion = heads.fact_fusion(percent) if (heads and fact_ranker) else None
    knowledge = as_knowledge(source, collection, weights, reasoner.featurizer, reranker, fusion)
    verifier = docqa_verifier(percent, reasoner.threshold if threshold is None else threshold)
    return Agent(logic=reasoner, knowledge=knowledge, wording=AnswerWording(percent), verifier=verifier, top_k=top_k,
                 checkpoint=checkpoint, name=name)


def docqa_knowledge(path: str = ".dca/index", collection: str = "reports", depth: int = 20,
                    percent: str = "percent") -> RerankedKnowledge:
    """A store made by ``dca index``, its results re-ordered by the docqa fact ranker (for YAML pipelines)."""
    from agents.docqa.models import ensure_models
    from agents.docqa.reasoner import Heads
    from retrieval import Index

    heads = Heads.load(ensure_models()["reasoner"])
    return RerankedKnowledge(Index(path, collection), heads.fact_weights(percent), depth=depth,
                             reranker=heads.fact_reranker(), fusion=heads.fact_fusion(percent))


def as_knowledge(source: Any, collection: str, weights: list[float] | None, featurizer: Any,
                 reranker: Any = None, fusion: list[float] | None = None) -> Any:
    from agents.docqa.knowledge import PageKnowledge

    if isinstance(source, (str, Path)):
        from retrieval import Index

        source = Index(source, collection)
    if isinstance(source, list):
        return PageKnowledge(source, weights=weights, featurizer=featurizer, reranker=reranker, fusion=fusion)
    if hasattr(source, "retrieve"):
        return RerankedKnowledge(source, weights, featurizer=featurizer, reranker=reranker, fusion=fusion)
    raise TypeError(f"build_agent: source must be a store path, a retrieval.Index, a list of facts or a "
                    f"knowledge ability, got {type(source).__name__}")
