"""``dca demo``: index real report pages and answer real questions about them with verified steps.

The pages come from the TAT-QA and FinQA data (their held-out dev parts), written out as the
markdown documents a user would have; they go through the ordinary ``dca index`` path. Each
question is asked about its own page, as in the datasets' setting, and checked against the
dataset's answer.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dca.data import data_dir
from dca.types import Evidence


@dataclass
class DemoQuestion:
    id: str
    question: str
    gold: Any
    page: Path
    family: str
    scale: str = ""


class OnePage:
    """The store, restricted to one source document (a ``where`` filter on the chunk metadata)."""

    def __init__(self, index, source: str):
        self.index, self.source = index, source

    def retrieve(self, query: str, k: int = 5) -> list[Evidence]:
        return self.index.search(query, k, where={"source": self.source})


def pick_questions(n: int, out_dir: Path) -> list[DemoQuestion]:
    """The first held-out arithmetic questions of TAT-QA and FinQA dev, one per page, each page
    written out as a markdown document (table rows and paragraphs, as a user's report would have)."""
    from dca.reasoning.tasks.base import get_family
    from retrieval.records import write_finqa_page, write_tatqa_page

    finqa, tatqa = get_family("finqa"), get_family("tatqa")
    candidates: dict[str, list[tuple[Any, Any]]] = {"tatqa": [], "finqa": []}
    for doc in tatqa.documents("dev"):
        for q in doc.get("questions", []):
            if q.get("answer_type") == "arithmetic" and tatqa.usable(q):
                candidates["tatqa"].append((doc, tatqa.problem(doc, q, "dev")))
                break  # one question per page
    for record in finqa.records("dev"):
        candidates["finqa"].append((record, finqa.problem(record, "dev")))
    picked: list[DemoQuestion] = []
    per_family = {"tatqa": (n + 1) // 2, "finqa": n // 2}
    for family, count in per_family.items():
        writer = write_tatqa_page if family == "tatqa" else write_finqa_page
        usable = [(rec, p) for rec, p in candidates[family] if p.gold
                  and p.meta.get("type") == "arithmetic"]
        for record, prob in usable[:count]:
            page = writer(record, out_dir).resolve()
            picked.append(DemoQuestion(prob.id, prob.question, prob.answer, page, family, prob.meta.get("scale", "")))
    return picked


def _agents(args: argparse.Namespace, index: Any, work: Path, console: Any) -> dict[str, Any]:
    """One agent per family (FinQA states percentages as ratios, TAT-QA in percent)."""
    if args.reasoner == "docqa":
        from agents.docqa import build_agent
        from agents.docqa.models import ensure_models

        console.print("[bold]1. Models[/bold] (built here on first use, then cached)")
        console.print(f"   docqa reasoner {ensure_models()['reasoner']}")
        return {family: build_agent(index, percent="ratio" if family == "finqa" else "percent",
                                    checkpoint=work / "runs.sqlite")
                for family in ("tatqa", "finqa")}
    from dca.agent import Agent
    from dca.models.registry import resolve_model
    from dca.reasoning.policy import LMPolicy
    from dca.verifier import FailurePolicy, Verifier
    from dca.wording import LMWording

    console.print("[bold]1. Models[/bold] (built here on first use, then cached)")
    policy_path, wording_path = resolve_model(args.policy), resolve_model(args.wording)
    console.print(f"   policy  {policy_path}\n   wording {wording_path}")
    agent = Agent(logic=LMPolicy(policy_path), knowledge=index, wording=LMWording(wording_path),
                  verifier=Verifier(policy=FailurePolicy(retries=3, backtracks=1, max_steps=8)),
                  checkpoint=work / "runs.sqlite", trace_dir=work / "traces")
    return {"tatqa": agent, "finqa": agent}


def _on_page(agent: Any, knowledge: "OnePage") -> None:
    """Point an agent's knowledge at one page (docqa wraps the store in its fact ranker)."""
    if hasattr(agent.abilities.knowledge, "base"):
        agent.abilities.knowledge.base = knowledge
    else:
        agent.abilities.knowledge = knowledge


def run_demo(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape

    from dca.cli import _print_result
    from dca.reasoning.tasks.base import get_family
    from retrieval import Index

    console = Console(highlight=False)
    t0 = time.perf_counter()
    work = Path(args.workdir)
    docs = work / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    console.rule("[bold]dca demo[/bold]")
    console.print(f"data: {data_dir()}")
    index = Index(work / "index", "reports")
    agents = _agents(args, index, work, console)

    console.print("[bold]2. Documents[/bold]: held-out TAT-QA and FinQA report pages written out as markdown")
    questions = pick_questions(args.questions, docs)
    # pages an earlier run wrote (listed in its manifest) and this one does not ask about leave the
    # folder, so the store drops them too; files the demo did not write are never touched
    manifest = work / "demo_pages.json"
    asked = sorted(q.page.name for q in questions)
    try:
        earlier = json.loads(manifest.read_text(encoding="utf-8")) if manifest.exists() else []
    except json.JSONDecodeError:
        earlier = []  # a manifest cut short: forget it rather than guess which pages were ours
    for name in set(earlier if isinstance(earlier, list) else []) - set(asked):
        (docs / Path(name).name).unlink(missing_ok=True)
    manifest.write_text(json.dumps(asked), encoding="utf-8")
    console.print(f"   {len(questions)} pages in {docs}")

    console.print("[bold]3. Index[/bold] (llama-index loaders → MiniLM embeddings → Chroma)")
    report = index.add(docs)
    console.print(f"   {report.summary()}")

    console.print("[bold]4. Questions[/bold] (each asked about its own page)")
    families = {f: get_family(f) for f in {q.family for q in questions}}
    rows = []
    for i, q in enumerate(questions, 1):
        agent = agents[q.family]
        _on_page(agent, OnePage(index, str(q.page)))
        result = agent.run(q.question)
        fam = families[q.family]
        from dca.reasoning.tasks.base import Problem

        correct = result.verified and fam.score(Problem(q.id, q.question, q.gold, meta={"scale": q.scale}), result.answer)
        console.rule(f"Q{i} · {q.family} · {q.page.name}")
        console.print(f"[bold]Question:[/bold] {escape(q.question)}", soft_wrap=True)
        _print_result(result, console)
        console.print(f"   gold answer: {q.gold}   →  " + ("[green]correct[/green]" if correct else "[red]not correct[/red]"))
        rows.append({"id": q.id, "family": q.family, "question": q.question, "gold": q.gold, "answer": result.answer,
                     "status": result.status, "correct": bool(correct), "text": result.text})
    n_ok = sum(r["correct"] for r in rows)
    n_ver = sum(r["status"] == "verified" for r in rows)
    wrong_verified = sum(r["status"] == "verified" and not r["correct"] for r in rows)
    console.rule()
    console.print(f"[bold]{n_ok}/{len(rows)} correct[/bold], {n_ver} verified ({wrong_verified} verified but wrong), "
                  f"{len(rows) - n_ver} honestly unverified · {time.perf_counter() - t0:.0f} s")
    if args.json:
        (work / "demo_results.json").write_text(json.dumps(rows, indent=2, default=str))
    return 0
