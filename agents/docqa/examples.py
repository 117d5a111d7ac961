"""Training examples from the training records only (FinQA train, TAT-QA's train documents).

Retrieval examples pair a question with a gold fact and hard negatives from the same page (the
facts a reranker must tell apart at question time); synthetic questions over the same pages'
tables add to them. Dev records are never read here.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from agents.docqa.synth import synth_questions
from dca.reasoning.tasks.base import Problem


def train_problems(limit: int | None = None) -> list[Problem]:
    """FinQA's train records and TAT-QA's train documents' questions, as dca problems."""
    from dca.reasoning.tasks.finqa import FinQA
    from dca.reasoning.tasks.tatqa import TATQA

    out = list(FinQA().problems("train")) + list(TATQA().problems("train"))
    return out[:limit] if limit else out


def gold_facts(problem: Problem) -> list[str]:
    """The ids of the facts the dataset marks as the question's evidence."""
    keys = set(problem.meta.get("gold_keys") or [])
    return [e.id for e in problem.evidence if e.metadata.get("gold_key") in keys]


def page_key(problem: Problem) -> str:
    return str(problem.meta.get("page") or problem.meta.get("document") or problem.id)


@dataclass
class RetrievalExample:
    query: str
    positive: str
    negatives: list[str]


def retrieval_examples(problems: list[Problem], *, negatives: int = 3, synthetic_per_page: int = 6,
                       seed: int = 0) -> list[RetrievalExample]:
    """(question, gold fact, same-page negatives), from the records and from synthetic questions."""
    rng = random.Random(seed)
    out: list[RetrievalExample] = []
    pages: dict[str, Problem] = {}
    for p in problems:
        pages.setdefault(page_key(p), p)
        gold = gold_facts(p)  # a list, in page order: a set's order changes with the hash seed
        by_id = {e.id: e.text for e in p.evidence}
        others = [e.text for e in p.evidence if e.id not in gold]
        for gid in gold:
            out.append(RetrievalExample(p.question, by_id[gid], _hard(p.question, others, negatives, rng)))
    for p in pages.values():
        by_id = {e.id: e.text for e in p.evidence}
        for q in synth_questions(p.evidence, rng, synthetic_per_page):
            others = [e.text for e in p.evidence if e.id not in q.facts]
            for fid in q.facts:
                out.append(RetrievalExample(q.question, by_id[fid], _hard(q.question, others, negatives, rng)))
    rng.shuffle(out)
    return out


def _hard(query: str, texts: list[str], n: int, rng: random.Random) -> list[str]:
    """Same-page facts sharing the most words with the query (half of them), the rest at random."""
    from dca.verifier import content_words

    q = content_words(query)
    ranked = sorted(texts, key=lambda t: -len(q & content_words(t)))
    hard = ranked[: (n + 1) // 2]
    rest = [t for t in texts if t not in hard]
    return hard + rng.sample(rest, min(n - len(hard), len(rest)))
