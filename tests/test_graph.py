"""The LangGraph run loop: verified steps, retries, backtracking, unverified stops, resume, streaming."""
from __future__ import annotations

import asyncio

import pytest
from helpers_abilities import EchoWording, FactsKnowledge, ScriptedLogic

import dca
from dca.abilities import AbilityError
from dca.verifier import FailurePolicy, Verifier

FACTS = ["Net revenue: 2015 = $5,829; 2014 = $5,735 (in millions)",
         "Operating expenses: 2015 = $1,200; 2014 = $1,100 (in millions)"]
TASK = "What was the percent change in net revenue from 2014 to 2015?"
CHANGE = "What was the change in net revenue from 2014 to 2015?"


def agent(script, **kw):
    kw.setdefault("knowledge", FactsKnowledge(FACTS))
    kw.setdefault("wording", EchoWording())
    return dca.Agent(logic=ScriptedLogic(script), **kw)


def test_verified_answer_with_values_computed_by_the_interpreter():
    r = agent([["x1 = 5829 - 5735"], ["x2 = x1 / 5735"], ["answer = x2 * 100"]]).run(TASK)
    assert r.status == "verified"
    assert r.answer == pytest.approx((5829 - 5735) / 5735 * 100)
    assert [s.value for s in r.steps][:1] == [94]
    assert all(s.ok for s in r.steps)
    assert "1.639" in r.text
    assert [e.id for e in r.evidence] == ["f0"]  # cites the fact its operands came from
    assert r.compute.retrievals == 1 and r.compute.model_calls >= 3


def test_failing_step_is_retried_and_every_attempt_is_kept():
    r = agent([["x1 = 5829 - 5735"], ["x2 = 9999 - 1", "x2 = x1 / 0", "x2 = x1 / 5735"], ["answer = x2 * 100"]]).run(TASK)
    assert r.verified
    texts = [(a.text, a.ok) for a in r.attempts]
    assert ("x2 = 9999 - 1", False) in texts and ("x2 = x1 / 0", False) in texts
    rejected = [a for a in r.attempts if not a.ok]
    assert rejected[0].verdict.check == "grounded" and "9999" in rejected[0].verdict.reason
    assert rejected[1].verdict.check == "executes" and "division by zero" in rejected[1].verdict.reason


def test_budget_spent_ends_unverified_with_the_failed_check_named():
    v = Verifier(policy=FailurePolicy(retries=2, backtracks=0))
    r = agent([["x1 = 5829 - 5735"], ["x2 = 7777 * 3", "x2 = 8888 * 3", "x2 = x1 * 2"]], verifier=v).run(TASK)
    assert r.status == "unverified" and r.answer is None
    assert "step 2 failed grounded" in r.reason and "8888" in r.reason
    assert r.text.startswith("No verified answer")
    assert len([a for a in r.attempts if not a.ok]) == 2


def test_backtracking_undoes_the_previous_step_and_tries_another():
    # Position 1 can only succeed once position 0 is redone with the other subtraction.
    class Logic(ScriptedLogic):
        def propose(self, request):
            if len(request.steps) == 1:
                x1 = request.steps[0].value
                line = "answer = x1 / 1100" if x1 == 100 else "answer = x1 / 4321"
                return [dca.Proposal(lines=[line] if line not in request.avoid else [])]
            return super().propose(request)

    v = Verifier(policy=FailurePolicy(retries=2, backtracks=1))
    a = dca.Agent(logic=Logic([["x1 = 5829 - 5735", "x1 = 1200 - 1100"]]), knowledge=FactsKnowledge(FACTS),
                  wording=EchoWording(), verifier=v)
    events = list(a.stream("How did operating expenses change?"))
    kinds = [e.kind for e in events]
    assert kinds.count("backtracked") == 1
    result = events[-1].data["result"]
    assert result.verified and result.answer == pytest.approx(100 / 1100)
    assert result.steps[0].text == "x1 = 1200 - 1100"
    assert [a.text for a in result.attempts if not a.ok][0] == "answer = x1 / 4321"


def test_a_line_rejected_after_a_step_it_never_reads_is_not_retried_once_that_step_is_undone():
    """After x1 is undone, "answer = 7777 - 1" would be judged exactly as before; the budget goes
    to a new line instead. A rejected line that reads x1 is forgotten with it."""
    seen: list[tuple[int, list[str]]] = []

    class Logic(ScriptedLogic):
        def propose(self, request):
            pos = len(request.steps)
            seen.append((pos, list(request.avoid)))
            lines = {0: ["x1 = 5829 - 5735", "answer = 7777 - 1", "answer = 1200 - 1100"],
                     1: ["answer = 7777 - 1", "answer = x1 * 8888"]}[pos]
            return [dca.Proposal(lines=[next(x for x in lines if x not in request.avoid)])]

    v = Verifier(policy=FailurePolicy(retries=2, backtracks=1))
    r = dca.Agent(logic=Logic([]), knowledge=FactsKnowledge(FACTS), wording=EchoWording(), verifier=v).run(
        "How did operating expenses change?")
    assert r.verified and r.answer == 100
    assert [a.text for a in r.attempts if not a.ok] == ["answer = 7777 - 1", "answer = x1 * 8888"]
    assert seen[-1] == (0, ["x1 = 5829 - 5735", "answer = 7777 - 1"])


def test_verifier_off_lets_ungrounded_steps_through():
    r = agent([["x1 = 7777 * 3"], ["answer = x1"]], verifier=None).run(TASK)
    assert r.verified and r.answer == 23331


def test_stream_yields_typed_events_in_graph_order():
    events = list(agent([["x1 = 5829 - 5735"], ["answer = x1"]]).stream(CHANGE))
    kinds = [e.kind for e in events]
    assert kinds[0] == "retrieved" and kinds[-1] == "done"
    assert kinds.index("proposed") < kinds.index("executed") < kinds.index("verified") < kinds.index("worded")
    assert isinstance(events[-1].data["result"], dca.Result)
    assert all(isinstance(e, dca.Event) for e in events)


def test_lookup_steps_fetch_numbers_from_knowledge_and_cite_them():
    r = agent([["x1 = lookup('net revenue 2015')"], ["answer = x1 - lookup('net revenue 2014')"]]).run(
        "What was the change in net revenue?")
    assert r.verified and r.answer == 94
    assert r.steps[0].evidence_ids == ["f0"]


def test_crashed_run_resumes_from_its_sqlite_checkpoint(tmp_path):
    db = tmp_path / "runs.sqlite"
    script = [["x1 = 5829 - 5735"], ["answer = x1 / 5735"]]
    crashing = dca.Agent(logic=ScriptedLogic(script, fail_at=1), knowledge=FactsKnowledge(FACTS),
                         wording=EchoWording(), checkpoint=db)
    with pytest.raises(RuntimeError):
        crashing.run(TASK, thread_id="t1")
    crashing.close()
    fresh_logic = ScriptedLogic(script)
    resumed = dca.Agent(logic=fresh_logic, knowledge=FactsKnowledge(FACTS), wording=EchoWording(), checkpoint=db)
    r = resumed.resume("t1")
    assert r.verified and r.answer == pytest.approx(94 / 5735)
    assert fresh_logic.calls == 1  # only the missing step was proposed again
    assert [s.text for s in r.steps] == ["x1 = 5829 - 5735", "answer = x1 / 5735"]
    assert resumed.resume("t1").answer == r.answer  # a finished thread returns its result
    with pytest.raises(KeyError):
        resumed.resume("no-such-thread")


def test_user_abilities_are_checked_against_their_protocol():
    class NoPropose:
        def think(self, x):
            return x

    with pytest.raises(AbilityError, match="logic: NoPropose has no method propose"):
        dca.Agent(logic=NoPropose())

    class BadKnowledge:
        def retrieve(self):
            return []

    with pytest.raises(AbilityError, match="knowledge: BadKnowledge.retrieve"):
        dca.Agent(logic=ScriptedLogic([]), knowledge=BadKnowledge())


def test_wording_that_misstates_the_value_falls_back_to_a_template():
    class Liar:
        def word(self, task, answer, steps, evidence):
            return "The answer is 42."

    r = agent([["answer = 5829 - 5735"]], wording=Liar()).run(CHANGE)
    assert r.wording_fallback and "94" in r.text and "42" not in r.text


def test_arun_and_astream():
    a = agent([["answer = 5829 - 5735"]])

    async def go():
        r = await a.arun(CHANGE)
        kinds = [e.kind async for e in a.astream(CHANGE)]
        return r, kinds

    r, kinds = asyncio.run(go())
    assert r.answer == 94 and kinds[-1] == "done"


def test_traces_are_written_as_jsonl(tmp_path):
    import json

    r = agent([["answer = 5829 - 5735"]], trace_dir=tmp_path).run(CHANGE, thread_id="abc")
    rows = [json.loads(ln) for ln in (tmp_path / "abc.jsonl").read_text().splitlines()]
    assert rows[0]["kind"] == "retrieved" and rows[-1]["type"] == "result"
    assert rows[-1]["answer"] == r.answer


def test_tools_become_step_functions():
    def growth(new: float, old: float) -> float:
        """Percent growth."""
        return (new - old) / old * 100

    r = agent([["answer = growth(5829, 5735)"]], tools=[growth]).run(TASK)
    assert r.verified and r.answer == pytest.approx((5829 - 5735) / 5735 * 100)
    r = agent([["answer = growth(5829, 5735)"]]).run(TASK)  # not registered for this agent
    assert not r.verified and "growth() is not an allowed function" in r.attempts[0].verdict.reason
