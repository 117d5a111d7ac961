"""The verifier's checks, one by one, on small real traces, and the failure policy's contract."""
from __future__ import annotations

import pytest

from dca.reasoning.steps import parse_step
from dca.types import Evidence, Step
from dca.verifier import (
    CHECKS, DEFAULT_CHECKS, CheckContext, FailurePolicy, Grounded, LookupRelevant, StepScore, Units, Verifier, grounding_pool,
    register_check, unit_factors,
)


def first_failure(verifier: Verifier, task: str, lines: list[str], evidence=()) -> tuple[int, str, str] | None:
    for s in verifier.check_trace(task, lines, evidence):
        if not s.verdict.ok:
            return s.index, s.verdict.check, s.verdict.reason
    return None


REPORT = [Evidence("r1", "Net revenue: 2015 = $5,829; 2014 = $(5,735) (in millions)", metadata={"scale": "million"}),
          Evidence("r2", "Headcount: 2015 = 1,200; 2014 = 1,100 (in thousands)", metadata={"scale": "thousand"}),
          Evidence("r3", "Gross margin: 2015 = 12.5%; 2014 = 11.0%")]


def test_grounding_pool_reads_numbers_as_reports_and_people_write_them():
    pool = grounding_pool("Sales grew twenty percent to 2.5 million, a third of them in the 4th quarter.", REPORT)
    for x in (5829, 5735, -5735, 12.5, 0.125, 87.5, 0.875, 1.125, 0.2, 80, 2_500_000, 3, 1 / 3, 4, 1200):
        assert pool.has(x), x
    assert not pool.has(5830) and not pool.has(60)
    assert pool.unit(5829) == "million" and pool.unit(12.5) == "percent" and pool.unit(1200) == "thousand"
    assert 60 in unit_factors("She walks for 3 hours") and 60 not in unit_factors("She walks 3 miles")
    assert {7, 52} <= unit_factors("twice a week") and 30 in unit_factors("half an hour")


def test_grounded_accepts_task_evidence_earlier_steps_and_rounded_repeats():
    v = Verifier()
    task = "Tom reads 10 pages in 3 hours. How many minutes does a page take?"
    assert first_failure(v, task, ["x1 = 3 * 60", "answer = x1 / 10"]) is None
    assert first_failure(v, task, ["x1 = 10 / 3", "x2 = 3.33 * 2", "answer = x2 + 1"]) is None
    assert first_failure(v, task, ["x1 = 10 / 3", "answer = x1 * 7"])[1:] == (
        "grounded", "operand 7 is not in the task, the evidence, an earlier step or the allowed constants")
    assert first_failure(v, "Sales were 10, 20 and 36. Average?", ["x1 = 10 + 20 + 36", "answer = x1 / 3"]) is None
    assert first_failure(v, "Sales were 10, 20 and 36. Average?", ["x1 = 10 + 20", "answer = x1 / 3"])[1] == "grounded"
    assert first_failure(v, "Costs of 9 in total from 2016 to 2018; yearly average?", ["answer = 9 / 3"]) is None
    assert first_failure(v, "What is 5 + 5?", ["answer = x7 + 5"])[1] == "executes"
    derived = Verifier(checks=[Grounded(derived=True)])
    assert first_failure(derived, "2 boxes of 12 eggs, 5 eaten.", ["answer = 24 - 5"]) is None
    assert first_failure(Verifier(), "2 boxes of 12 eggs, 5 eaten.", ["answer = 24 - 5"])[1] == "grounded"


def test_stated_values_must_match_the_computed_ones():
    v = Verifier()
    assert first_failure(v, "48 clips, half sold", ["x1 = 48 / 2  # = 24", "answer = 48 + x1  # = 72"]) is None
    assert first_failure(v, "48 clips, half sold", ["x1 = 48 / 2  # = 25"]) == (
        0, "stated_value", "x1 states 25 but computes 24")


def test_units_catch_scale_and_percent_mixups():
    v = Verifier()
    task = "What was the change in net revenue?"
    assert first_failure(v, task, ["answer = 5829 - 1200"], REPORT)[1:] == (
        "units", "subtracts an amount in millions and one in thousands")
    assert first_failure(v, task, ["x1 = 5829 - 12.5"], REPORT)[2] == \
        "subtracts a percentage and an amount in millions"
    assert first_failure(v, task, ["x1 = 5829 / 1200"], REPORT)[2] == "divides an amount in millions by one in thousands"
    pct = "What was the percent change in net revenue from 2014 to 2015?"
    assert first_failure(v, pct, ["answer = 5829 - 5735"], REPORT)[2] == \
        "the question asks for a percentage but the answer is an amount in millions"
    good = ["x1 = 5829 - 5735", "x2 = x1 / 5735", "answer = x2 * 100"]
    assert first_failure(v, pct, good, REPORT) is None
    strict = Verifier(checks=["parses", "executes", Units(percent_answer="percent")])
    assert first_failure(strict, pct, good[:2] + ["answer = x2"], REPORT)[2].startswith(
        "the question asks for a percentage but the answer is a ratio")
    assert first_failure(v, "Headcount change, in millions?", ["answer = 1200 - 1100"], REPORT)[2] == \
        "the question asks in millions but the answer is in thousands"
    lookup = Step(text="x1 = lookup('headcount 2015')", target="x1", expr="lookup('headcount 2015')", value=1200.0,
                  evidence_ids=["r2"])
    nxt = Step(text="x2 = x1 + 5829", target="x2", expr="x1 + 5829", value=7029.0)
    ctx = CheckContext(task=task, evidence=REPORT, steps=[lookup], env={"x1": 1200.0},
                       parsed=parse_step(nxt.text), verifier=v)
    assert v.check_step(nxt, ctx).reason == "adds an amount in thousands and one in millions"


def test_percent_plus_ratio_is_a_clash():
    v = Verifier()
    lines = ["x1 = 5829 - 5735", "x2 = x1 / 5735", "answer = x2 + 12.5"]
    assert first_failure(v, "Margin plus growth?", lines, REPORT)[2] == \
        "adds a percentage and a ratio (one of them needs * 100 or / 100)"


def test_lookup_relevance_by_score_and_by_words():
    v = Verifier(checks=["parses", LookupRelevant(min_overlap=0.5)], lookup_min_score=0.3)

    def verdict(query: str, ev: Evidence):
        step = Step(text=f"x1 = lookup({query!r})", target="x1", value=1.0, evidence_ids=[ev.id])
        return v.check_step(step, CheckContext("task", [ev], [], {}, parse_step(step.text), v))

    good = Evidence("e1", "Net revenue: 2015 = $5,829", score=0.8)
    assert verdict("net revenue 2015", good).ok
    low = Evidence("e2", "Net revenue: 2015 = $5,829", score=0.1)
    assert verdict("net revenue 2015", low).reason == "best lookup evidence scores 0.10, below 0.30"
    off = Evidence("e3", "Headcount: 2015 = 1,200", score=0.9)
    assert verdict("net revenue operating", off).reason.startswith("the evidence shares 0 of 3 words")


def test_quoted_plan_comments_must_read_the_task_in_order():
    from dca.reasoning.tasks.synthetic import Synthetic

    v = Verifier()
    for p in Synthetic(min_steps=4, max_steps=8, plan=True).problems("dev", n=20, seed=5):
        assert first_failure(v, p.question, p.gold) is None  # gold plan traces pass every default check
    task = ("Ada has 10 pens. Ada buys 4 more pens. Ada sells 3 pens. Ada buys 4 more pens. Ada sells 2 pens. "
            "How many pens does Ada have now?")
    gold = ["x1 = 10 + 4 # next: Ada sells 3 pens.", "x2 = x1 - 3 # next: Ada buys 4 more pens.",
            "x3 = x2 + 4 # next: Ada sells 2 pens. How many pens does Ada have now?", "answer = x3 - 2"]
    assert first_failure(v, task, gold) is None
    skipped = [gold[0], "x2 = x1 - 3 # next: Ada sells 2 pens. How many pens does Ada have now?", "answer = x2 - 2"]
    assert first_failure(v, task, skipped) == (1, "quoted", "x2 quotes 'Ada sells 2 pens. How many pens does Ada "
                                                            "have now?', but after the previous quote the task goes on "
                                                            "'Ada buys 4 more pens. Ada sells 2 pens. How many pens does A'")
    misread = ["x1 = 10 + 4 # next: Ada sells 30 pens."]
    assert first_failure(v, task, misread) == (0, "quoted", "x1 quotes 'Ada sells 30 pens.', which is not in the task")
    # a quote the task has twice ("Ada buys 4 more pens.") may go on after either occurrence
    assert first_failure(v, task, ["x1 = 10 + 4 # next: Ada buys 4 more pens.",
                                   "x2 = x1 + 4 # next: Ada sells 2 pens."]) is None
    assert first_failure(v, task, ["x1 = 10 + 4 # other words", "answer = x1 - 3"]) is None  # no plan comment


def test_answer_format_and_plausibility():
    v = Verifier(checks=list(DEFAULT_CHECKS) + ["plausible"])
    task = "Ann has 5 apples and eats 2. How many apples are left?"
    assert first_failure(v, task, ["answer = 5 - 2"]) is None
    assert first_failure(v, task, ["answer = 2 - 5"])[1:] == (
        "plausible", "answer = -3 is negative, but the task has no negative quantity")
    assert first_failure(v, task, ["answer = 5 / 2"])[2] == "'how many apples' needs a whole number, got 2.5"
    assert first_failure(v, "She works 5 hours in 2 days. How many hours a day?", ["answer = 5 / 2"]) is None
    assert first_failure(Verifier(), "Is 5 > 2?", ["answer = 5 > 2"]) is None


def test_a_learned_step_scorer_plugs_in_as_a_check():
    seen = []

    def scorer(task, steps, step):
        seen.append((task, len(steps), step.text))
        return 0.9 if "+" in step.text else 0.1

    v = Verifier(checks=["parses", "executes", StepScore(scorer, min_score=0.5)])
    steps = v.check_trace("5 and 2", ["x1 = 5 + 2", "answer = x1 * 2"])
    assert [s.verdict.ok for s in steps] == [True, False]
    assert steps[0].score == 0.9 and steps[1].verdict.reason == "the step scorer rates this step 0.10, below 0.50"
    assert seen[1] == ("5 and 2", 1, "answer = x1 * 2")
    by_name = StepScore("tests.verify.test_checks:ConstantScorer", min_score=0.5, value=0.7)
    assert Verifier(checks=["parses", "executes", by_name]).check_trace("1", ["answer = 1"])[0].score == 0.7
    with pytest.raises(ValueError, match="needs a scorer"):
        StepScore()
    with pytest.raises(ValueError, match="cannot load"):
        StepScore("no.such.module:Thing")


class ConstantScorer:
    def __init__(self, value: float):
        self.value = value

    def score(self, task, steps, step):
        return self.value


def test_verifier_construction_and_registry():
    with pytest.raises(ValueError, match="did you mean 'grounded'"):
        Verifier(checks=["grounde"])
    with pytest.raises(TypeError, match="needs a 'name'"):
        Verifier(checks=[lambda step, ctx: None])

    class NoSevens:
        name = "no_sevens"

        def __call__(self, step, ctx):
            from dca.types import Verdict

            return Verdict.failed(self.name, "no sevens") if "7" in step.text else Verdict.passed(self.name)

    register_check("no_sevens", NoSevens)
    try:
        assert first_failure(Verifier(checks=["parses", "no_sevens"]), "7", ["answer = 7"])[1] == "no_sevens"
    finally:
        CHECKS.pop("no_sevens")
    assert set(DEFAULT_CHECKS) <= set(CHECKS) and "step_scorer" in CHECKS and "plausible" in CHECKS
    with pytest.raises(ValueError, match="percent_answer"):
        CHECKS["units"](percent_answer="bogus")


def test_failure_policy_contract():
    p = FailurePolicy(retries=4, temperatures=[0.0, 0.5, 1.0], backtracks=2, max_steps=5)
    assert [p.temperature(i) for i in range(5)] == [0.0, 0.5, 1.0, 1.0, 1.0]
    assert p.attempt_budget == 5 * 4 * 3 + 5
    for bad in ({"retries": 0}, {"backtracks": -1}, {"temperatures": []}, {"temperatures": [9.0]}, {"max_steps": 0}):
        with pytest.raises(ValueError, match="FailurePolicy"):
            FailurePolicy(**bad)
    assert FailurePolicy().to_dict() == {"retries": 3, "temperatures": [0.0, 0.7, 1.0], "backtracks": 1,
                                         "max_steps": 12}


def test_wording_must_state_the_verified_value():
    v = Verifier()
    assert v.check_wording("Revenue rose 1.64%.", 1.639023).ok
    assert v.check_wording("Yes, it did.", True).ok and not v.check_wording("It did.", True).ok
    assert v.check_wording("The answer is 42.", 94).reason == "the sentence does not state the verified value 94"


def test_an_answer_of_constants_alone_is_not_grounded():
    v = Verifier()
    task = "Ann has 7 apples and buys 5 more. How many apples does she have?"
    assert first_failure(v, task, ["answer = 1"])[1:] == (
        "grounded", "the answer uses only constants (1); it must build on the task, the evidence or an earlier step")
    assert first_failure(v, "She works 3 hours. How many minutes?", ["answer = 60 * 2"])[1] == "grounded"
    # the same numbers are fine when the task states them or an earlier step computed them
    assert first_failure(v, "Ann had 1 apple. How many apples did she have?", ["answer = 1"]) is None
    assert first_failure(v, task, ["x1 = 7 + 5", "answer = x1 * 1"]) is None


def test_a_computed_result_may_not_be_copied_from_the_page():
    v = Verifier()
    page = [Evidence("p1", "Revenue: 2019 = 5,829; 2018 = 5,735 (in millions)", metadata={"scale": "million"})]
    change = "What was the change in revenue from 2018 to 2019?"
    assert first_failure(v, change, ["answer = 5829"], page)[1:] == (
        "computed", "the question asks for a computed result ('change') but the answer copies 5829 from the page")
    assert first_failure(v, change, ["x1 = 5829", "answer = x1"], page)[1] == "computed"
    assert first_failure(v, change, ["answer = 5829 - 5735"], page) is None
    # a question that asks for a figure on the page may be answered with it
    assert first_failure(v, "What was the revenue in 2019?", ["answer = 5829"], page) is None
    # the check can be left out of a pipeline's list
    assert first_failure(Verifier(checks=[c for c in DEFAULT_CHECKS if c != "computed"]), change,
                         ["answer = 5829"], page) is None


def test_checks_can_be_named_by_module_and_attribute():
    from dca.verifier import make_check

    check = make_check("agents.docqa.grounding:FactGrounded")
    assert check.name == "fact_grounded"
    v = Verifier(checks=["parses", "executes", "agents.docqa.grounding:FactGrounded"])
    assert v.check_names == ["parses", "executes", "fact_grounded"]
    page = [Evidence("p1", "Revenue: 2019 = 5,829; 2018 = 5,735 (in millions)", metadata={"scale": "million"})]
    assert first_failure(v, "Change in revenue?", ["answer = 5829 - 5700"], page)[1] == "fact_grounded"
    for bad, expected in (("dca.nosuchmodule:Check", "cannot import module 'dca.nosuchmodule'"),
                          ("dca.verifier:NoSuchCheck", "module 'dca.verifier' has no attribute 'NoSuchCheck'"),
                          ("groundd", "did you mean 'grounded'?")):
        with pytest.raises(ValueError, match=expected):
            Verifier(checks=[bad])
    with pytest.raises(ValueError, match="rejected the options"):
        make_check("grounded", {"no_such_option": 1})
