"""The docqa agent on FinQA and TAT-QA dev records: retrieval, execution accuracy, verification.

Each record's page is its own small document set (the datasets' setting). Reported, on the dev
splits only (FinQA: the 107 questions of the dev file's pages that dca keeps for dev; TAT-QA's dev
documents; both by dca's hash splits):

- fact recall@3 against the gold evidence: the docqa fact ranker vs MiniLM alone (baseline); also
  over the gold facts that state an operand of the gold program, and how often all of those are
  among the facts the reasoner reads;
- execution accuracy with the datasets' own tolerance (FinQA: 5-decimal rounding, percentages as
  ratios; TAT-QA: 2 decimals at the answer's scale, percentages in percent):
  "stated" counts only answers the agent states as verified, "best trace" the reasoner's top
  trace whatever the verifier says (what FinQA's metric scores);
- where the questions are lost (``loss_bucket``: retrieval miss, shape not expressible, wrong
  shape, wrong operands, sign, scale/percent, tolerance);
- accuracy by the gold program's number of steps, and per search strategy (first trace only,
  verifier-guided retries, a deeper retry budget), with the compute each spends;
- precision among verified answers, and the share of wrong answers flagged unverified;
- shape accuracy: the reasoner's likeliest shape against the gold program's (expressible ones);
- baselines in the same run: the fact ranker without the reranker, the reranker fused by reciprocal
  rank instead of the build's learnt fusion, the agent without lookup steps
  (``DocQAReasoner(lookups=False)``), the linear shape head without the shape reader, MiniLM-only
  retrieval, and the reasoner without trained heads.

Run: ``.venv/bin/python bench/docqa.py [-n N]`` (``--baseline TEXT`` keeps only the baselines whose
name contains TEXT). Writes bench/out/docqa.json and bench/out/docqa.png.
``--family finqa`` / ``--family tatqa`` run one dataset (written to docqa_<family>.json) and
``--merge`` combines those into docqa.json / .png, so the two can run side by side.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

OUT = Path(__file__).resolve().parent / "out"

NO_LOOKUPS = "baseline: no lookup steps"  # the same agent with DocQAReasoner(lookups=False)
RANK_FUSED = "baseline: reranker fused by rank"  # the reranker fused by reciprocal rank, not the learnt fusion
# strategy -> (retries per position, backtracks): how many candidate traces the verifier may try
STRATEGIES = {"first trace": (1, 0), "verify + retry 3": (3, 1), "verify + retry 8": (8, 2)}


class Page:
    """The knowledge ability the agents share; ``set`` points it at one record's page."""

    def __init__(self) -> None:
        self.current: Any = None

    def retrieve(self, query: str, k: int = 5) -> list:
        return self.current.retrieve(query, k)


def recall_at(ranked: list, gold: set[str], k: int = 3) -> float:
    return len({e.id for e in ranked[:k]} & gold) / len(gold)


def operand_facts(problem: Any, gold: set[str]) -> set[str]:
    """The gold facts that state one of the gold program's operands. FinQA also marks sentences and
    rows the program never reads (a table's unit line, a neighbouring note) as evidence."""
    from agents.docqa.cells import evidence_cells
    from agents.docqa.train import operand_labels

    cells = evidence_cells([e for e in problem.evidence if e.id in gold])
    return {c.fact_id for c, marked in zip(cells, operand_labels(problem, cells) or []) if marked}


def loss_bucket(family: Any, problem: Any, cands: list, facts: list, page_cells: list) -> str:
    """Where a question is lost: correct, shape not expressible, an operand not on the page or not
    in the facts the reasoner saw (retrieval miss), the sign (A - B for B - A), scale/percent (off by
    100 or 1000), tolerance (within 1 %), or the top trace's shape / operands wrong ("+" when a right candidate existed)."""
    from agents.docqa.cells import evidence_cells, same_number
    from agents.docqa.shapes import canonical

    if cands and family.score(problem, cands[0].value):
        return "correct"
    can = canonical(problem.gold or [])
    if can is None:
        return "shape not expressible"
    seen = evidence_cells(facts)
    if not all(any(same_number(v, c) for c in page_cells) for v in can[1]):
        return "operand not on page"
    if not all(any(same_number(v, c) for c in seen) for v in can[1]):
        return "retrieval miss"
    value, gold = (cands[0].value if cands else None), problem.answer
    if isinstance(value, (int, float)) and isinstance(gold, (int, float)) and not isinstance(value, bool) \
            and not isinstance(gold, bool) and gold:
        if abs(value / gold + 1) < 0.01:
            return "sign"
        ratio = abs(value / gold)
        if abs(ratio - 1) < 0.01:
            return "tolerance"
        if any(abs(ratio / f - 1) < 0.01 for f in (100, 0.01, 1000, 0.001)):
            return "scale/percent"
    plus = "+" if any(family.score(problem, c.value) for c in cands) else ""
    return ("wrong shape" if cands and cands[0].shape != can[0] else "wrong operands") + plus


def evaluate(family: Any, problems: list, weights: list[float] | None, featurizer: Any, percent: str,
             threshold: float, use_heads: bool = True, strategies: dict | None = None,
             model: Any = None, reranker: Any = None, shape_mix: float | None = None,
             lookups: bool = True, fusion: list[float] | None = None) -> dict[str, Any]:
    from rich.progress import track

    from agents.docqa.agent import AnswerWording, docqa_verifier
    from agents.docqa.cells import evidence_cells
    from agents.docqa.examples import gold_facts
    from agents.docqa.knowledge import PageKnowledge
    from agents.docqa.reasoner import LOOKUP_STEP, SHAPE_LABELS, DocQAReasoner
    from agents.docqa.shapes import canonical
    from dca import Agent

    strategies = strategies or STRATEGIES
    reasoner = DocQAReasoner(model, percent=percent, use_heads=use_heads, lookups=lookups)
    reasoner.featurizer = featurizer
    if shape_mix is not None and reasoner.heads:
        reasoner.heads.config["shape_mix"] = shape_mix
    page = Page()
    agents = {}
    for name, (retries, backtracks) in strategies.items():
        verifier = docqa_verifier(percent, threshold, retries=retries, backtracks=backtracks)
        agents[name] = Agent(logic=reasoner, knowledge=page, wording=AnswerWording(percent), verifier=verifier,
                             top_k=reasoner.top_facts, checkpoint=None, name=f"docqa-{name}")
    rows = []
    for p in track(problems, description=f"{family.name} ({'heads' if use_heads else 'no heads'})"):
        page.current = PageKnowledge(p.evidence, weights=weights, featurizer=featurizer, reranker=reranker,
                                     fusion=fusion)
        start = time.perf_counter()
        ranked = page.retrieve(p.question, 10)
        gold = set(gold_facts(p))
        needed = operand_facts(p, gold)
        cands = reasoner.candidates(p.question, ranked[: reasoner.top_facts])
        best = cands[0].value if cands else None
        bucket = loss_bucket(family, p, cands, ranked[: reasoner.top_facts], evidence_cells(p.evidence)) \
            if use_heads else ""
        can = canonical(p.gold or [])
        probs = reasoner.shape_probs(p.question) if use_heads and can else None
        row = {"id": p.id, "bucket": bucket, "steps": p.meta.get("steps", 0), "gold_facts": len(gold),
               "shape_correct": None if probs is None else SHAPE_LABELS[probs.index(max(probs))] == can[0],
               "recall@3": recall_at(ranked, gold) if gold else None,
               "operand_recall@3": recall_at(ranked, needed) if needed else None,
               "operands_seen": needed <= {e.id for e in ranked[: reasoner.top_facts]} if needed else None,
               "best_correct": bool(cands) and family.score(p, best), "candidates": len(cands),
               "best_confidence": cands[0].score if cands else 0.0, "strategies": {}}
        for name, agent in agents.items():
            t0 = time.perf_counter()
            result = agent.run(p.question)
            row["strategies"][name] = {
                "status": result.status, "correct": result.status == "verified" and family.score(p, result.answer),
                "attempts": len(result.attempts), "seconds": time.perf_counter() - t0,
                "looked_up": any(s.text.startswith(LOOKUP_STEP) for s in result.steps + result.attempts),
            }
        row["seconds"] = time.perf_counter() - start
        rows.append(row)
    return summarise(rows, list(strategies))


def lm_baseline(family: Any, problems: list, featurizer: Any, model: str = "dca:tiny-policy") -> dict[str, Any]:
    """The tiny LM policy alone (dca's default reasoner) with the default verifier, same retrieval."""
    from rich.progress import track

    from agents.docqa.knowledge import PageKnowledge
    from dca import Agent
    from dca.reasoning.policy import LMPolicy
    from dca.wording import TemplateWording

    page = Page()
    agent = Agent(logic=LMPolicy(model), knowledge=page, wording=TemplateWording(), checkpoint=None, top_k=4)
    rows = []
    for p in track(problems, description=f"{family.name} (LM policy)"):
        page.current = PageKnowledge(p.evidence, featurizer=featurizer)
        t0 = time.perf_counter()
        result = agent.run(p.question)
        ok = result.status == "verified" and family.score(p, result.answer)
        rows.append({"id": p.id, "steps": p.meta.get("steps", 0), "recall@3": None, "best_correct": bool(ok),
                     "strategies": {"greedy + retry 3": {"status": result.status, "correct": bool(ok),
                                                         "attempts": len(result.attempts),
                                                         "seconds": time.perf_counter() - t0}}})
    return summarise(rows, ["greedy + retry 3"])


def summarise(rows: list[dict], strategies: list[str]) -> dict[str, Any]:
    n = len(rows)
    rec = [r["recall@3"] for r in rows if r["recall@3"] is not None]
    shapes = [r["shape_correct"] for r in rows if r.get("shape_correct") is not None]
    ops = [r["operand_recall@3"] for r in rows if r.get("operand_recall@3") is not None]
    seen = [r["operands_seen"] for r in rows if r.get("operands_seen") is not None]
    out: dict[str, Any] = {"n": n, "recall@3": sum(rec) / max(1, len(rec)),
                           "operand_recall@3": sum(ops) / len(ops) if ops else None,
                           "operands_seen": sum(seen) / len(seen) if seen else None, "operand_questions": len(ops),
                           "shape_accuracy": sum(shapes) / len(shapes) if shapes else None,
                           "best_trace_accuracy": sum(r["best_correct"] for r in rows) / max(1, n),
                           "strategies": {}, "by_steps": {},
                           "buckets": dict(Counter(r.get("bucket") for r in rows if r.get("bucket")).most_common())}
    for s in strategies:
        res = [r["strategies"][s] for r in rows]
        verified = [x for x in res if x["status"] == "verified"]
        wrong_best = [r for r in rows if not r["best_correct"]]
        out["strategies"][s] = {
            "stated_accuracy": sum(x["correct"] for x in res) / max(1, n),
            "verified_share": len(verified) / max(1, n),
            "verified_precision": sum(x["correct"] for x in verified) / max(1, len(verified)),
            "wrong_flagged_unverified": sum(r["strategies"][s]["status"] == "unverified" for r in wrong_best)
            / max(1, len(wrong_best)),
            "attempts_per_question": sum(x["attempts"] for x in res) / max(1, n),
            "lookup_questions": sum(bool(x.get("looked_up")) for x in res),
            "seconds_per_question": sum(x["seconds"] for x in res) / max(1, n),
        }
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        groups[str(min(r["steps"], 3)) + ("+" if r["steps"] >= 3 else "")].append(r)
    main = strategies[1] if len(strategies) > 1 else strategies[0]
    for k in sorted(groups):
        g = groups[k]
        out["by_steps"][k] = {"n": len(g), "best_trace_accuracy": sum(r["best_correct"] for r in g) / len(g),
                              "stated_accuracy": sum(r["strategies"][main]["correct"] for r in g) / len(g)}
    return out


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, metric, title in ((axes[0], "stated_accuracy", "accuracy of stated (verified) answers"),
                              (axes[1], "verified_precision", "precision among verified answers")):
        for label, res in results.items():
            pts = [(v["attempts_per_question"], v[metric]) for v in res["strategies"].values()]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
            for (x, y), name in zip(pts, res["strategies"]):
                ax.annotate(name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel("step attempts per question (compute)")
        ax.set_title(title, fontsize=10)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("docqa on FinQA / TAT-QA dev: accuracy against compute")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=None, help="questions per dataset (default: all dev)")
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument("--baseline", action="append", default=None, metavar="TEXT",
                    help="run only the baselines whose name contains TEXT (repeatable; e.g. 'by rank')")
    ap.add_argument("--family", choices=("all", "finqa", "tatqa", "none"), default="all",
                    help="which dataset to run (none: only --lm-baseline)")
    ap.add_argument("--merge", action="store_true", help="combine docqa_finqa.json and docqa_tatqa.json")
    ap.add_argument("--model", default=None, help="a docqa-reasoner directory to measure (default: the built one)")
    ap.add_argument("--baseline-model", default=None, metavar="DIR",
                    help="also measure another docqa-reasoner build on the same questions (a baseline row)")
    ap.add_argument("--lm-baseline", type=int, default=0, metavar="N",
                    help="also run the tiny LM policy alone on N FinQA dev questions")
    args = ap.parse_args()
    if args.merge:
        return merge()
    import torch

    torch.set_num_threads(2)
    from agents.docqa.models import ensure_models
    from agents.docqa.reasoner import Featurizer, Heads
    from dca.reasoning.tasks.finqa import FinQA
    from dca.reasoning.tasks.tatqa import TATQA

    t0 = time.perf_counter()
    model = Path(args.model) if args.model else ensure_models()["reasoner"]
    build = json.loads((model / "dca_build.json").read_text()) if (model / "dca_build.json").exists() else {}
    try:
        heads = Heads.load(model)
        other = Heads.load(Path(args.baseline_model)) if args.baseline_model else None
    except (ValueError, FileNotFoundError) as exc:
        raise SystemExit(f"bench/docqa.py: {exc}") from None
    featurizer = Featurizer()
    thresholds = heads.config.get("thresholds", {})
    report: dict[str, Any] = {"build_seconds": build.get("seconds"), "threshold": heads.threshold,
                              "thresholds": thresholds, "model": str(model),
                              "train": {k: heads.config.get(k) for k in ("train_questions", "synthetic",
                                                                          "shape_cv_accuracy", "shape_linear_cv_accuracy",
                                                                          "shape_reader_cv_accuracy", "shape_mix",
                                                                          "candidate_oracle",
                                                                          "heldout_top1")},
                              "results": {}}
    plots: dict[str, Any] = {}
    for family, percent in ((FinQA(), "ratio"), (TATQA(), "percent")):
        if args.family not in ("all", family.name):
            continue
        problems = list(family.problems("dev", n=args.n))
        runs = {"docqa": (heads.fact_weights(percent), True)}
        if not args.no_baselines:
            runs["baseline: fact ranker without the reranker"] = (heads.fact_weights(percent), True)
            if heads.fact_fusion(percent):
                runs[RANK_FUSED] = (heads.fact_weights(percent), True)
            runs[NO_LOOKUPS] = (heads.fact_weights(percent), True)
            if heads.config.get("shape_mix"):
                runs["baseline: shape head without the reader"] = (heads.fact_weights(percent), True)
            runs["baseline: MiniLM retrieval"] = (None, True)
            runs["baseline: no trained heads"] = (heads.fact_weights(percent), False)
            if args.baseline:
                runs = {k: v for k, v in runs.items() if k == "docqa" or any(t in k for t in args.baseline)}
        if other is not None:
            runs[f"baseline: build {Path(args.baseline_model).name}"] = (other.fact_weights(percent), True)
        for label, (weights, use_heads) in runs.items():
            strategies = STRATEGIES if label == "docqa" else {"verify + retry 3": STRATEGIES["verify + retry 3"]}
            own, where = (other, Path(args.baseline_model)) if label.startswith("baseline: build ") \
                else (heads, model)
            threshold = own.config.get("thresholds", {}).get(percent, own.threshold) if use_heads else 0.0
            reranker = own.fact_reranker() if label in ("docqa", "baseline: shape head without the reader",
                                                        NO_LOOKUPS, RANK_FUSED) \
                or own is not heads else None
            fusion = None if label == RANK_FUSED else own.fact_fusion(percent)
            res = evaluate(family, problems, weights, featurizer, percent, threshold, use_heads, strategies, where,
                           reranker, 0.0 if "without the reader" in label else None,
                           lookups=label != NO_LOOKUPS, fusion=fusion)
            report["results"][f"{family.name} / {label}"] = res
            plots[f"{family.name} / {label}"] = res
    if args.lm_baseline:
        problems = list(FinQA().problems("dev", n=args.lm_baseline))
        res = lm_baseline(FinQA(), problems, featurizer)
        report["results"]["finqa / baseline: tiny LM policy alone"] = res
        plots["finqa / baseline: tiny LM policy alone"] = res
    report["seconds"] = time.perf_counter() - t0
    OUT.mkdir(parents=True, exist_ok=True)
    name = "docqa" if args.family == "all" else f"docqa_{args.family}"
    (OUT / f"{name}.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    if args.family == "all":
        plot(plots, OUT / "docqa.png")
    print_table(report)


def merge() -> None:
    parts = [json.loads((OUT / f"docqa_{f}.json").read_text()) for f in ("finqa", "tatqa", "none")
             if (OUT / f"docqa_{f}.json").exists()]
    report = {**parts[0], "results": {k: v for p in parts for k, v in p["results"].items()},
              "seconds": max(p["seconds"] for p in parts)}
    (OUT / "docqa.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    plot(report["results"], OUT / "docqa.png")
    print_table(report)


def print_table(report: dict[str, Any]) -> None:
    print(f"\nmodel build {report['build_seconds']} s; confidence threshold {report['threshold']:.3f} "
          f"{report.get('thresholds', {})}; "
          f"train {report['train']}")
    print(f"{'run':52} {'n':>4} {'R@3':>5} {'best':>5} | {'strategy':17} {'stated':>6} {'verif':>6} "
          f"{'prec':>5} {'flag':>5} {'att/q':>5} {'s/q':>5}")
    for name, res in report["results"].items():
        for i, (s, v) in enumerate(res["strategies"].items()):
            head = f"{name:52} {res['n']:>4} {res['recall@3']:>5.3f} {res['best_trace_accuracy']:>5.3f}" if i == 0 \
                else " " * 69
            print(f"{head} | {s:17} {v['stated_accuracy']:>6.3f} {v['verified_share']:>6.3f} "
                  f"{v['verified_precision']:>5.3f} {v['wrong_flagged_unverified']:>5.3f} "
                  f"{v['attempts_per_question']:>5.2f} {v['seconds_per_question']:>5.2f}")
        steps = ", ".join(f"{k} steps: {v['best_trace_accuracy']:.2f} (n={v['n']})" for k, v in res["by_steps"].items())
        print(f"{'':52}   best-trace accuracy by gold steps: {steps}")
        if res.get("operand_recall@3") is not None:
            print(f"{'':52}   recall@3 of the gold facts stating a program operand: {res['operand_recall@3']:.3f}; "
                  f"all of them among the facts the reasoner reads: {res['operands_seen']:.3f} "
                  f"(n={res['operand_questions']})")
        looked = {s: v["lookup_questions"] for s, v in res["strategies"].items() if v.get("lookup_questions")}
        if looked:
            print(f"{'':52}   questions with a lookup step: " + ", ".join(f"{s} {v}" for s, v in looked.items()))
        if res.get("shape_accuracy") is not None:
            print(f"{'':52}   shape accuracy (expressible gold programs): {res['shape_accuracy']:.3f}")
        if res.get("buckets"):
            print(f"{'':52}   where questions are lost: " + ", ".join(f"{k} {v}" for k, v in res["buckets"].items()))


if __name__ == "__main__":
    main()
