"""``dca eval``: run a pipeline over a task family's problems and score the answers exactly.

Problems that carry their own evidence (FinQA and TAT-QA pages) are answered from that evidence,
as in the datasets' setting: a ``ProblemEvidence`` knowledge ability ranks the page's facts for
each lookup with BM25. Problems without evidence (GSM8K, synthetic, countdown) use the
pipeline's own knowledge ability.

    dca eval --config configs/docqa.yaml --family finqa --split dev -n 50 --out finqa.jsonl
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from dca.types import Evidence


class ProblemEvidence:
    """``Knowledge`` over one problem's evidence list, ranked by BM25 (the store's own BM25 engine)."""

    def __init__(self, evidence: Sequence[Evidence]):
        from retrieval.bm25 import BM25Index

        self.evidence = list(evidence)
        self._bm25 = BM25Index(Path(tempfile.gettempdir()))  # built in memory; never saved
        if self.evidence:
            self._bm25.build([e.id for e in self.evidence], [e.text for e in self.evidence],
                             [dict(e.metadata) for e in self.evidence], generation=0)

    def retrieve(self, query: str, k: int = 5) -> list[Evidence]:
        """The page's facts, best BM25 matches first (scores scaled to the best), then the rest of
        the page in order at score 0: the page is the problem's whole context, as in the datasets."""
        hits = self._bm25.search(query, k) if self.evidence else []
        top = hits[0][1] if hits else 1.0
        ranked = [(pos, score / top) for pos, score in hits]
        seen = {pos for pos, _ in ranked}
        ranked += [(pos, 0.0) for pos in range(len(self.evidence)) if pos not in seen]
        out = []
        for pos, score in ranked[:k]:
            e = self.evidence[pos]
            out.append(Evidence(id=e.id, text=e.text, source=e.source, score=score, metadata=e.metadata))
        return out


def evaluate(pipeline: Any, family_name: str, *, split: str = "dev", n: int = 50, seed: int = 0,
             progress: bool = True) -> dict[str, Any]:
    """Run ``pipeline`` on ``n`` problems of a family; accuracy overall and among verified answers."""
    from dca.reasoning.tasks.base import get_family
    from dca.progress import ProgressBar

    family = get_family(family_name)
    problems = list(family.problems(split, n=n, seed=seed))
    agent = getattr(pipeline, "agent", pipeline)  # a Pipeline, or an Agent built in code
    store = agent.abilities.knowledge
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    with ProgressBar(len(problems), f"eval {family_name}/{split}", enabled=progress) as bar:
        for prob in problems:
            agent.abilities.knowledge = ProblemEvidence(prob.evidence) if prob.evidence else store
            result = agent.run(prob.question)
            correct = result.answer is not None and bool(family.score(prob, result.answer))
            rows.append({"id": prob.id, "question": prob.question, "gold": prob.answer, "answer": result.answer,
                         "status": result.status, "correct": correct, "steps": [s.text for s in result.steps],
                         "compute": result.compute.to_dict()})
            bar.advance()
    total = max(1, len(rows))
    verified = [r for r in rows if r["status"] == "verified"]
    return {
        "family": family_name, "split": split, "n": len(rows),
        "accuracy": sum(r["correct"] for r in rows) / total,
        "verified": len(verified) / total,
        "verified_precision": (sum(r["correct"] for r in verified) / len(verified)) if verified else None,
        "seconds": time.perf_counter() - t0, "results": rows,
    }


def run_eval(args: argparse.Namespace) -> int:
    """The ``dca eval`` verb: print a one-line summary, optionally write per-problem JSONL."""
    from dca.config import dotted_overrides
    from dca.pipeline import Pipeline

    pipeline = Pipeline.from_yaml(args.config, dotted_overrides(args.set or []))
    report = evaluate(pipeline, args.family, split=args.split, n=args.n)
    if args.out:
        with open(args.out, "w") as fh:
            for row in report["results"]:
                fh.write(json.dumps(row, default=str) + "\n")
    vp = report["verified_precision"]
    print(f"{args.family}/{args.split}: accuracy {report['accuracy']:.1%} on {report['n']} problems; "
          f"{report['verified']:.1%} verified, of which {'-' if vp is None else f'{vp:.1%}'} correct; "
          f"{report['seconds']:.0f} s", file=sys.stderr)
    return 0
