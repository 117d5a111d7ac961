"""``dca eval``: problems are answered from their own page, scored exactly, and summarised."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import dca
from dca.abilities import Proposal, ProposeRequest
from dca.evaluate import ProblemEvidence, evaluate
from dca.reasoning.tasks.base import get_family
from helpers_abilities import EchoWording


class GoldLogic:
    """Proposes each problem's gold trace, line by line (a reasoner that knows the answers)."""

    def __init__(self, traces: dict[str, list[str]]):
        self.traces = traces

    def propose(self, request: ProposeRequest) -> list[Proposal]:
        lines = self.traces.get(request.task, [])
        pos = len(request.steps)
        return [Proposal(lines=[lines[pos]] if pos < len(lines) else ["answer = 0"])]


@pytest.fixture(scope="module")
def finqa_dev(data_dir):
    return [p for p in get_family("finqa").problems("dev", n=12, seed=0) if p.gold]


def test_problem_evidence_ranks_the_page_facts(finqa_dev):
    prob = finqa_dev[0]
    knowledge = ProblemEvidence(prob.evidence)
    hits = knowledge.retrieve(prob.question, 5)
    assert hits and hits[0].score == 1.0 and all(0 <= h.score <= 1 for h in hits)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert {h.id for h in hits} <= {e.id for e in prob.evidence}
    everything = knowledge.retrieve(prob.question, 1000)
    assert sorted(h.id for h in everything) == sorted(e.id for e in prob.evidence)
    assert ProblemEvidence([]).retrieve("anything", 3) == []


def test_gold_traces_from_the_page_are_verified_and_scored_correct(finqa_dev):
    agent = dca.Agent(logic=GoldLogic({p.question: p.gold for p in finqa_dev}), wording=EchoWording(), top_k=100)
    report = evaluate(agent, "finqa", split="dev", n=12, progress=False)
    rows = {r["id"]: r for r in report["results"]}
    assert report["n"] == 12
    for p in finqa_dev:
        assert rows[p.id]["correct"] and rows[p.id]["status"] == "verified", rows[p.id]
    assert report["verified_precision"] == 1.0


def test_wrong_answers_count_against_accuracy(finqa_dev):
    wrong = {p.question: ["answer = 0.123456"] for p in finqa_dev}
    report = evaluate(dca.Agent(logic=GoldLogic(wrong), wording=EchoWording()), "finqa", n=12, progress=False)
    assert report["accuracy"] == 0.0


def test_cli_eval_writes_jsonl(tmp_path, data_dir):
    config = tmp_path / "p.yaml"
    config.write_text("knowledge: {kind: none}\nlogic:\n  kind: agents.examples.scripted:Plan\n"
                      "  options: {steps: ['answer = 0']}\nwording: {kind: template}\n"
                      "verifier: {checks: [parses, executes]}\n")  # a fixed answer of 0 is grounded in nothing
    out = tmp_path / "r.jsonl"
    proc = subprocess.run([sys.executable, "-m", "dca.cli", "eval", "--config", str(config), "--family", "synthetic",
                           "-n", "3", "--out", str(out)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3 and all(r["answer"] == 0 for r in rows)
    assert "synthetic/dev: accuracy 0.0% on 3 problems" in proc.stderr
