"""The checks and the failure policy inside the real LangGraph run loop."""
from __future__ import annotations

import pytest
from helpers_abilities import EchoWording, FactsKnowledge, ScriptedLogic

import dca
from dca.verifier import FailurePolicy, Verifier

FACTS = ["Net revenue: 2015 = $5,829; 2014 = $5,735 (in millions)",
         "Headcount: 2015 = 1,200; 2014 = 1,100 (in thousands)"]


def run(script, task, **verifier_kw):
    agent = dca.Agent(logic=ScriptedLogic(script), knowledge=FactsKnowledge(FACTS), wording=EchoWording(),
                      verifier=Verifier(**verifier_kw))
    return list(agent.stream(task))


def test_units_rejection_is_retried_with_the_temperature_schedule_and_kept_in_the_trace():
    events = run([["x1 = 5829 - 5735"],
                  ["answer = x1 + 1200", "answer = x1", "answer = x1 / 5735 * 100"]],
                 "What was the percent change in net revenue from 2014 to 2015?",
                 policy=FailurePolicy(retries=3, temperatures=[0.0, 0.4, 0.9]))
    result = events[-1].data["result"]
    assert result.verified and result.answer == pytest.approx(94 / 5735 * 100)
    rejected = [(a.text, a.verdict.check, a.verdict.reason) for a in result.attempts if not a.ok]
    assert rejected == [
        ("answer = x1 + 1200", "units", "adds an amount in millions and one in thousands"),
        ("answer = x1", "units", "the question asks for a percentage but the answer is an amount in millions"),
    ]
    temps = [e.data["temperature"] for e in events if e.kind == "proposed"]
    assert temps == [0.0, 0.0, 0.4, 0.9]


def test_budget_spent_stops_unverified_with_the_reason():
    events = run([["x1 = 5829 - 5735"], ["answer = x1 * 7", "answer = x1 * 9"]],
                 "What was the change in net revenue?", policy=FailurePolicy(retries=2, backtracks=0))
    result = events[-1].data["result"]
    assert result.status == "unverified" and result.answer is None
    assert result.reason == ("step 2 failed grounded: operand 9 is not in the task, the evidence, an earlier step "
                             "or the allowed constants")
    assert [a.text for a in result.attempts] == ["x1 = 5829 - 5735", "answer = x1 * 7", "answer = x1 * 9"]
