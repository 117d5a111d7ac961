"""Combining ranked lists: reciprocal-rank fusion and a weighted sum of min-max scores.

llama-index's ``QueryFusionRetriever`` implements the same two formulas, but only over its own
retrievers run through asyncio and node objects; the store fuses plain ``{id: score}`` maps it
already holds, which costs microseconds.
"""
from __future__ import annotations


def rrf(rankings: list[list[str]], weights: list[float] | None = None, k: int = 60) -> dict[str, float]:
    """Reciprocal-rank fusion, scaled to [0, 1]: an id ranked first everywhere scores 1."""
    weights = weights or [1.0] * len(rankings)
    out: dict[str, float] = {}
    for ranking, w in zip(rankings, weights):
        for rank, cid in enumerate(ranking):
            out[cid] = out.get(cid, 0.0) + w / (k + rank + 1)
    top = sum(w / (k + 1) for w in weights) or 1.0
    return {cid: s / top for cid, s in out.items()}


def weighted(scores: list[dict[str, float]], weights: list[float]) -> dict[str, float]:
    """Weighted sum of scores min-max normalised per list; an id missing from a list gets 0 there."""
    out: dict[str, float] = {}
    total = sum(weights) or 1.0
    for lst, w in zip(scores, weights):
        if not lst:
            continue
        lo, hi = min(lst.values()), max(lst.values())
        span = hi - lo
        for cid, s in lst.items():
            norm = (s - lo) / span if span > 0 else 1.0
            out[cid] = out.get(cid, 0.0) + w * norm / total
    return out


def ranked(scores: dict[str, float]) -> list[tuple[str, float]]:
    """Ids by descending score (ties by id, so results are deterministic)."""
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
