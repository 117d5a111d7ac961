"""Knowledge over one report page: its facts ranked for a question by a learned fact ranker.

FinQA and TAT-QA ask each question about one page, so the page is the document set. A page has
a few dozen facts, so every fact is scored: MiniLM's cosine similarity of question and fact, and
what a reader checks first (the question's years and words in the fact, its row label, numbers
the question quotes), combined by a logistic regression trained on the training records' gold
evidence. Without trained weights the MiniLM similarity alone ranks the facts (the baseline).
New features go after "bias", so weights trained before them still line up.

With a fact reranker (a cross-encoder from MiniLM's weights that reads the question and the fact
together, trained with the heads), its reading and the ranker's are fused: the reranker reads
wording the features miss, the features carry years and quoted numbers. The build learns the
fusion (``FUSION_FEATURES``: the fact features, both scores and both ranks, a logistic regression
per percent convention fitted on out-of-fold reranker scores); without learnt fusion weights (an
older build) the two rankings are fused by reciprocal rank. Recall@3 on TAT-QA dev pages
(bench/docqa.py): 0.80 for the ranker, 0.89 fused by rank, 0.92 fused by the learnt weights.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

from agents.docqa.cells import YEAR, fact_years
from dca.types import Evidence

FACT_FEATURES = ("dense", "dense_rank", "idf_overlap", "covered", "years_hit", "years_missed", "label_overlap",
                 "numbers_hit", "is_table", "short", "bias", "table_context")
_WORD = re.compile(r"[a-z]+")
_STOP = frozenset("the of in and a an to for on at by is was what were from as with how much many does did do "
                  "this that its it be are".split())


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall((text or "").lower()) if w not in _STOP and len(w) > 1}


def as_evidence(facts: list[Any]) -> list[Evidence]:
    """``retrieval.Fact``s (or ``Evidence``) as ``Evidence``."""
    out = []
    for f in facts:
        if isinstance(f, Evidence):
            out.append(f)
        else:
            out.append(Evidence(id=f.id, text=f.text, source=str(f.metadata.get("source", "")),
                                metadata=dict(f.metadata)))
    return out


def reciprocal_ranks(scores: list[float]) -> list[float]:
    """1 / (1 + rank) per item, rank 0 the highest score (ties in list order)."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    out = [0.0] * len(scores)
    for r, i in enumerate(order):
        out[i] = 1.0 / (1 + r)
    return out


def fact_features(question: str, facts: list[Evidence], dense: list[float]) -> list[list[float]]:
    """One feature row per fact of a page (``FACT_FEATURES``); ``dense`` is MiniLM's cosine per fact."""
    from dca.numbers import find_numbers

    q = _words(question)
    years = {int(y) for y in YEAR.findall(question)}
    qnums = {round(abs(n.value), 6) for n in find_numbers(question) if not n.is_year}
    bags = [_words(f.text) for f in facts]
    df = Counter(w for b in bags for w in b)
    n = len(facts)
    idf = {w: math.log((n + 1) / (df.get(w, 0) + 0.5)) for w in q}
    total_idf = sum(idf.values()) or 1.0
    dense_rank = reciprocal_ranks(dense)
    rows = []
    for i, (f, bag) in enumerate(zip(facts, bags)):
        fyears = fact_years(f)
        label = _words(str(f.metadata.get("label") or f.text.split(":", 1)[0]))
        nums = {round(abs(x.value), 6) for x in find_numbers(f.text)}
        rows.append([
            dense[i],
            dense_rank[i],
            sum(idf[w] for w in q & bag) / total_idf,
            len(q & bag) / max(1, len(q)),
            len(years & fyears) / max(1, len(years)) if years else 0.0,
            1.0 if years and fyears and not years & fyears else 0.0,
            len(q & label) / max(1, len(label)) if f.metadata.get("kind") == "table_row" else 0.0,
            1.0 if qnums & nums else 0.0,
            1.0 if f.metadata.get("kind") == "table_row" else 0.0,
            1.0 if len(bag) < 6 else 0.0,
            1.0,
            # a row's table context (the sentence introducing the table, its captions and columns)
            len(q & _words(" ".join(str(f.metadata.get(k) or "") for k in ("intro", "caption", "columns"))))
            / max(1, len(q)) if f.metadata.get("kind") == "table_row" else 0.0,
        ])
    return rows


# the learnt fusion's features: a fact's FACT_FEATURES, then the fact ranker's logit, the reranker's
# logit and the reciprocal rank each gives the fact on its page
FUSION_FEATURES = FACT_FEATURES + ("ranker_logit", "reader_logit", "ranker_rank", "reader_rank")


def fusion_features(rows: list[list[float]], ranker_logits: list[float], read: list[float]) -> list[list[float]]:
    """One ``FUSION_FEATURES`` row per fact: its ``fact_features`` row, the two scores and their ranks."""
    a, b = reciprocal_ranks(ranker_logits), reciprocal_ranks(read)
    return [list(row) + [ranker_logits[i], read[i], a[i], b[i]] for i, row in enumerate(rows)]


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


RANKER_SCORE = "fact_ranker"  # the metadata key of a fact's fact-ranker score, beside the fused one
RRF_K = 3  # a page has ~20 facts: its top ranks must count more than with k=60 (dev recall@3 TAT-QA 0.90 vs 0.89)


class PageKnowledge:
    """``dca.abilities.Knowledge`` over a fixed list of facts (one page); scores in [0, 1].

    ``weights`` are the fact ranker's (``FACT_FEATURES`` order); ``None`` ranks by MiniLM alone.
    ``reranker``: a sentence-transformers ``CrossEncoder`` whose reading is fused with it: by the
    learnt ``fusion`` weights (``FUSION_FEATURES`` order) where given with ``weights``, else by
    reciprocal rank.
    """

    def __init__(self, facts: list[Any], *, weights: list[float] | None = None, featurizer: Any = None,
                 reranker: Any = None, fusion: list[float] | None = None):
        from agents.docqa.reasoner import Featurizer

        self.facts = as_evidence(facts)
        self.weights = weights
        self.featurizer = featurizer or Featurizer()
        self.reranker = reranker
        self.fusion = fusion
        self._read: dict[str, list[float]] = {}  # the reranker's scores by query: strategies re-ask the same one

    def retrieve(self, query: str, k: int = 5) -> list[Evidence]:
        """The ``k`` best facts, best first. With a reranker each also carries the fact ranker's own
        score (``metadata["fact_ranker"]``): the reasoner's heads learnt the ranker's order."""
        if not self.facts or not query.strip():
            return []
        ranker, scores = self._scored(query)
        order = sorted(range(len(self.facts)), key=lambda i: -scores[i])[:k]
        out = [Evidence(id=self.facts[i].id, text=self.facts[i].text, score=round(float(scores[i]), 6),
                        source=self.facts[i].source, metadata=dict(self.facts[i].metadata)) for i in order]
        if self.reranker is not None:
            for e, i in zip(out, order):
                e.metadata[RANKER_SCORE] = round(float(ranker[i]), 6)
        return out

    def dense(self, query: str) -> list[float]:
        emb = self.featurizer.embed([query] + [e.text for e in self.facts])
        q = emb[query]
        return [float(emb[e.text] @ q) for e in self.facts]

    def scores(self, query: str) -> list[float]:
        return self._scored(query)[1]

    def _scored(self, query: str) -> tuple[list[float], list[float]]:
        """The fact ranker's scores, and the final ones (fused with the reranker's, if any)."""
        if self.weights is None:
            rows, logits = [], []
            ranker = [max(0.0, d) for d in self.dense(query)]
        else:
            rows, logits = self._ranker(query)
            ranker = [_sigmoid(z) for z in logits]
        if self.reranker is None:
            return ranker, ranker
        read = self.read(query)
        if self.fusion is not None and rows:
            stacked = fusion_features(rows, logits, read)
            return ranker, [_sigmoid(sum(w * x for w, x in zip(self.fusion, r))) for r in stacked]
        from retrieval.fusion import rrf

        by = lambda s: [str(i) for i in sorted(range(len(s)), key=lambda i: -s[i])]  # noqa: E731
        fused = rrf([by(ranker), by(read)], k=RRF_K)
        return ranker, [fused[str(i)] for i in range(len(self.facts))]

    def fusion_rows(self, query: str) -> list[list[float]]:
        """The ``FUSION_FEATURES`` row of each fact, what the learnt fusion weighs (needs the fact
        ranker's ``weights`` and a ``reranker``; the build fits the fusion on these rows)."""
        return fusion_features(*self._ranker(query), self.read(query))

    def _ranker(self, query: str) -> tuple[list[list[float]], list[float]]:
        """Each fact's ``fact_features`` row and the fact ranker's logit for it."""
        rows = fact_features(query, self.facts, self.dense(query))
        return rows, [sum(w * x for w, x in zip(self.weights, r)) for r in rows]

    def read(self, query: str) -> list[float]:
        """The reranker's logit per fact (read once per query: strategies re-ask the same one)."""
        if query not in self._read:
            self._read[query] = [float(x) for x in self.reranker.predict(
                [(query, e.text) for e in self.facts], batch_size=32, show_progress_bar=False)]
        return self._read[query]
