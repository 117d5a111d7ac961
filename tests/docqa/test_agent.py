"""The docqa reasoner and agent on a real FinQA page, with untrained heads (no model training here)."""
from __future__ import annotations

import pytest

from dca.abilities import ProposeRequest


@pytest.fixture(scope="module")
def bonds(finqa_train):
    return next(p for p in finqa_train.problems("train") if p.gold == ["answer = 114400 / 329500"])


@pytest.fixture(scope="module")
def reasoner():
    from agents.docqa.reasoner import DocQAReasoner

    return DocQAReasoner(percent="ratio", use_heads=False)


def test_candidates_contain_the_gold_answer_and_are_grounded(bonds, reasoner):
    from agents.docqa.grounding import citing_facts
    from agents.docqa.cells import evidence_cells

    gold = [e for e in bonds.evidence if e.metadata.get("gold_key") in ("table_4", "table_5")]
    cands = reasoner.candidates(bonds.question, gold)
    assert any(abs(c.value - 114400 / 329500) < 1e-9 for c in cands if isinstance(c.value, float))
    cells = evidence_cells(gold)
    for c in cands[:20]:
        assert all(citing_facts(cell.value, cells) for cell in c.cells)
    assert [c.logit for c in cands] == sorted((c.logit for c in cands), reverse=True)


def test_propose_follows_the_verified_prefix_and_avoids_rejected_lines(bonds, reasoner):
    from dca.types import Step

    ev = bonds.evidence[:4]
    first = reasoner.propose(ProposeRequest(bonds.question, ev, []))[0]
    again = reasoner.propose(ProposeRequest(bonds.question, ev, [], avoid=[first.lines[0]]))[0]
    assert again.lines[0] != first.lines[0]
    two = next(c for c in reasoner.candidates(bonds.question, ev) if len(c.lines) == 2)
    nxt = reasoner.propose(ProposeRequest(bonds.question, ev, [Step(text=two.lines[0])]))
    assert nxt and nxt[0].lines == two.lines[1:]


def test_agent_states_only_fact_grounded_answers(bonds, reasoner):
    from agents.docqa.agent import AnswerWording, docqa_verifier
    from agents.docqa.knowledge import PageKnowledge
    from dca import Agent
    from dca.reasoning.steps import ANSWER

    agent = Agent(logic=reasoner, knowledge=PageKnowledge(bonds.evidence), wording=AnswerWording("ratio"),
                  verifier=docqa_verifier("ratio", 0.0), top_k=4, checkpoint=None)
    result = agent.run(bonds.question)
    assert result.status == "verified"
    answer_step = result.steps[-1]
    assert answer_step.target == ANSWER and answer_step.evidence_ids
    cited = {e.id for e in result.evidence}
    assert set(answer_step.evidence_ids) <= cited
    assert agent.verifier.check_wording(result.text, result.answer).ok


def test_ranker_and_threshold_fit_on_small_groups():
    import random

    from agents.docqa.train import _fit_ranker, threshold_for

    rng = random.Random(0)
    groups = []
    for _ in range(40):
        feats = [[rng.random(), rng.random()] for _ in range(5)]
        best = max(range(5), key=lambda i: feats[i][0])
        groups.append((feats, [int(i == best) for i in range(5)]))
    w, _ = _fit_ranker(groups, 2)
    assert w[0] > 0 and w[0] > abs(w[1])
    pairs = [(0.9, True)] * 9 + [(0.8, False)] + [(0.5, False)] * 2 + [(0.3, True)] * 5
    assert threshold_for(pairs, 0.9) == 0.8


def test_wording_states_value_with_unit_and_scale():
    from agents.docqa.agent import AnswerWording
    from dca.types import Evidence, Step
    from dca.verifier import Verifier

    ev = [Evidence("r1", "net revenue: 2015 = $5,829; 2014 = $5,735 (in millions)",
                   metadata={"kind": "table_row", "scale": "million"})]
    step = Step(text="answer = 5829 - 5735", target="answer", expr="5829 - 5735", value=94, evidence_ids=["r1"])
    text = AnswerWording().word("what was the change in net revenue?", 94, [step], ev)
    assert "$94 million" in text and Verifier().check_wording(text, 94).ok
    pct = Step(text="answer = x1 / 5735 * 100", target="answer", expr="x1 / 5735 * 100", value=1.639)
    assert "1.639%" in AnswerWording().word("what was the percentage change?", 1.639, [pct], ev)
    ratio = AnswerWording("ratio").word("what was the percentage change?", 0.01639, [pct], ev)
    assert Verifier().check_wording(ratio, 0.01639).ok and "1.64%" in ratio


def test_pipeline_yaml_builds_the_docqa_abilities():
    from agents.docqa.agent import AnswerWording
    from agents.docqa.reasoner import DocQAReasoner
    from dca.pipeline import Pipeline

    from pathlib import Path

    pipe = Pipeline.from_yaml(Path(__file__).resolve().parents[2] / "configs" / "docqa.yaml")
    assert isinstance(pipe.build_logic(), DocQAReasoner)
    assert isinstance(pipe.build_wording(), AnswerWording)
    assert "step_scorer" in pipe.build_verifier().check_names
