from __future__ import annotations

import pytest

from dca.abilities import Logic, ProposeRequest, check_ability
from dca.reasoning.policy import LMPolicy, trace_lines
from dca.reasoning.steps import StepError, parse_step
from dca.types import Evidence, Step

TASK = "Using 3, 5, 7 (each at most once) and + - * /, make 22."


@pytest.fixture(scope="module")
def policy(micro_models) -> LMPolicy:
    return LMPolicy(micro_models["policy"], threads=1, max_new_tokens=24)


def test_is_a_logic_ability(policy):
    check_ability("logic", policy)
    assert isinstance(policy, Logic)


@pytest.mark.parametrize("n,temperature", [(1, 0.0), (3, 0.0), (4, 1.0)])
def test_propose_returns_n_single_lines_with_compute(policy, n, temperature):
    props = policy.propose(ProposeRequest(task=TASK, evidence=[], steps=[], n=n, temperature=temperature, seed=3))
    assert len(props) == n
    for p in props:
        assert len(p.lines) == 1 and "\n" not in p.lines[0] and p.lines[0]
        assert p.score is not None and p.score <= 0
    total_calls = sum(p.compute.model_calls for p in props)
    assert total_calls >= 1
    assert sum(p.compute.policy_samples for p in props) >= n
    assert sum(p.compute.tokens for p in props) >= n  # at least one generated token per line
    parseable = 0
    for p in props:
        try:
            parse_step(p.lines[0])
            parseable += 1
        except StepError:
            pass
    assert 0 <= parseable <= n  # a micro model may write junk; the verifier judges it


def test_beams_differ_and_seeded_sampling_repeats(policy):
    beams = policy.propose(ProposeRequest(task=TASK, evidence=[], steps=[], n=3, temperature=0.0))
    assert len({tuple(p.lines) for p in beams}) == 3
    req = ProposeRequest(task=TASK, evidence=[], steps=[], n=3, temperature=1.0, seed=11)
    assert [p.lines for p in policy.propose(req)] == [p.lines for p in policy.propose(req)]


def test_avoid_skips_rejected_lines(policy):
    greedy = policy.propose(ProposeRequest(task=TASK, evidence=[], steps=[], n=1))[0].lines[0]
    again = policy.propose(ProposeRequest(task=TASK, evidence=[], steps=[], n=2, avoid=[greedy]))
    assert all(p.lines[0] != greedy for p in again)


def test_prompt_carries_steps_and_bounded_facts(policy):
    facts = [Evidence(id=str(i), text=f"fact {i} " + "word " * 200) for i in range(9)]
    req = ProposeRequest(task=TASK, evidence=facts, steps=[Step(text="x1 = 7 * 3", target="x1")], n=1)
    text = policy.load()[1].decode(policy.prompt_ids(req), skip_special_tokens=True)
    assert text.endswith("Steps:\nx1 = n3 * n1\n")  # the listed numbers appear by name
    assert text.count("\n[") == policy.format.max_facts
    assert all(len(line) <= policy.format.max_fact_chars + 4 for line in text.split("\n") if line.startswith("["))


def test_complete_returns_traces_ending_at_the_answer(policy):
    props = policy.complete(ProposeRequest(task=TASK, evidence=[], steps=[], n=2, temperature=0.8, seed=0))
    assert len(props) == 2
    for p in props:
        assert p.lines and all("\n" not in ln for ln in p.lines)
        assert not any(ln.startswith("answer") for ln in p.lines[:-1])  # nothing after the answer line


def test_trace_lines_cuts_after_answer():
    assert trace_lines("x1 = 2\n\nanswer = x1 + 1\nx9 = 4\n") == ["x1 = 2", "answer = x1 + 1"]


def test_named_numbers_are_written_back(policy):
    assert policy.format.refs  # the micro recipe trains with named numbers, and the model dir says so
    req = ProposeRequest(task=TASK, evidence=[], steps=[], n=1)
    assert policy.literal("x1 = n1 * n2 + n4", req) == "x1 = 3 * 5 + 22"
    text = policy.load()[1].decode(policy.prompt_ids(
        ProposeRequest(task=TASK, evidence=[], steps=[Step(text="x1 = 7 * 3", target="x1")], n=1)),
        skip_special_tokens=True)
    assert text.endswith("Numbers: n1 = 3, n2 = 5, n3 = 7, n4 = 22\nSteps:\nx1 = n3 * n1\n")
    for p in policy.propose(ProposeRequest(task=TASK, evidence=[], steps=[], n=3, temperature=1.0, seed=2)):
        assert not any(f"n{i}" in p.lines[0].split() for i in range(1, 5))  # names never leak out
