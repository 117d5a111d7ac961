"""Rules (the pipeline's constitution): every step and the final answer are checked against them;
a violation is a verifier failure naming the rule, and a forbidden step never runs."""
from __future__ import annotations

import pytest
from helpers_abilities import FactsKnowledge, ScriptedLogic

from dca.agent import Agent
from dca.pipeline import Pipeline
from dca.rules import Rule, RuleError, make_rules
from dca.verifier import FailurePolicy, Verifier

FACTS = FactsKnowledge(["Revenue 2019: 1,452.4", "Revenue 2018: 1,300.0", "Account number: 123456789"])
TASK = "What was the change in revenue from 2018 to 2019?"


def agent(script, rules, *, wording=None, tools=None, retries=2) -> Agent:
    return Agent(logic=ScriptedLogic(script), knowledge=FACTS, wording=wording, tools=tools,
                 verifier=Verifier(rules=rules), policy=FailurePolicy(retries=retries, backtracks=0, max_steps=6))


def test_rules_are_built_from_mappings_with_one_kind_each():
    rules = make_rules([{"forbid_functions": ["sqrt"], "name": "no roots"},
                        {"answer_must_not_match": r"\d{9}", "name": "no account numbers"},
                        {"answer_range": [0, 10]}, {"step_must_not_match": "SALARY", "ignore_case": True}])
    assert [r.kind for r in rules] == ["forbid_functions", "answer_must_not_match", "answer_range",
                                       "step_must_not_match"]
    assert rules[0].step_violation("x = sqrt(4)", {"sqrt"}) == "rule 'no roots': the step calls sqrt(), which is forbidden"
    assert rules[1].answer_violation(123456789) and rules[1].answer_violation(12345) is None
    assert rules[2].answer_violation(11) and rules[2].answer_violation(10) is None
    assert rules[2].name == "answer_range: [0, 10]"
    assert rules[3].step_violation("x = lookup('salary of bob')", {"lookup"})
    for bad in ({}, {"answer_range": [2, 1]}, {"answer_must_not_match": "("}, {"forbid_functions": []},
                {"forbid": ["x"]}, {"forbid_functions": ["a"], "answer_range": [0, 1]}):
        with pytest.raises(RuleError):
            Rule.from_mapping(bad)


def test_a_forbidden_function_is_refused_before_it_runs():
    called = []

    def probe(x: float) -> float:
        called.append(x)
        return x

    result = agent([["x1 = probe(1452.4)", "x1 = lookup('revenue 2019')"], ["x2 = lookup('revenue 2018')"],
                    ["answer = x1 - x2"]], [{"forbid_functions": ["probe"], "name": "no probes"}],
                   tools=[probe]).run(TASK)
    assert called == []
    refused = result.attempts[0]
    assert refused.verdict.check == "rules" and "rule 'no probes'" in refused.verdict.reason
    assert refused.value is None and "rule 'no probes'" in refused.error
    assert result.verified and result.answer == pytest.approx(152.4)  # the allowed alternative went on


def test_an_answer_breaking_a_rule_is_a_verifier_failure_naming_it():
    result = agent([["x1 = lookup('account number')"], ["answer = x1"]],
                   [{"answer_must_not_match": r"^\d{9}$", "name": "no account numbers"}], retries=1).run("What is the account number?")
    assert not result.verified and result.answer is None
    assert "failed rules" in result.reason and "no account numbers" in result.reason
    assert "123456789" not in result.text.replace("'123456789'", "")


def test_answer_range():
    rules = [{"answer_range": [0, 100], "name": "a share"}]
    bad = agent([["x1 = lookup('revenue 2019')"], ["answer = x1"]], rules, retries=1).run("What was revenue in 2019?")
    assert not bad.verified and "rule 'a share'" in bad.reason
    good = agent([["x1 = lookup('revenue 2019')"], ["x2 = lookup('revenue 2018')"], ["answer = (x1 - x2) / x2 * 100"]],
                 rules).run(TASK + " In percent?")
    assert good.verified and 0 <= good.answer <= 100


def test_a_step_pattern_rule_covers_lookups():
    result = agent([["x1 = lookup('ACCOUNT number')"], ["answer = x1"]],
                   [{"step_must_not_match": "account", "ignore_case": True, "name": "no account lookups"}],
                   retries=1).run("What is the account number?")
    assert not result.verified and "rule 'no account lookups'" in result.reason
    assert result.compute.retrievals == 1  # the task's retrieval only: the lookup never ran


class LeakyWording:
    def word(self, task, answer, steps, evidence):
        return f"The change is {answer}; write to bob@example.com for the 123456789 account."


def test_a_worded_sentence_breaking_a_rule_falls_back_to_the_plain_one():
    rules = [{"answer_must_not_match": r"[\w.]+@[\w.]+|\b\d{9}\b", "name": "no personal data"}]
    result = agent([["x1 = lookup('revenue 2019')"], ["x2 = lookup('revenue 2018')"], ["answer = x1 - x2"]], rules,
                   wording=LeakyWording()).run(TASK)
    assert result.verified and result.wording_fallback
    assert "@" not in result.text and "123456789" not in result.text and "152.4" in result.text


def test_rules_from_a_pipeline_file(tmp_path):
    path = tmp_path / "ruled.yaml"
    path.write_text(
        "logic:\n  kind: helpers_abilities:ScriptedLogic\n"
        "  options: {script: [[\"x1 = sqrt(16)\"], [\"answer = x1\"]]}\n"
        "knowledge:\n  kind: none\nwording:\n  kind: template\n"
        "verifier:\n  retries: 1\n  backtracks: 0\n  rules:\n    - {forbid_functions: [sqrt], name: no roots}\n"
        f"run:\n  checkpoint: null\n  trace_dir: null\n")
    pipe = Pipeline.from_yaml(path)
    assert [r.name for r in pipe.build_verifier().rules] == ["no roots"]
    result = pipe.run("What is the square root of 16?")
    assert not result.verified and "rule 'no roots'" in result.reason
