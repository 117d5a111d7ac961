"""Injected step errors: each kind changes what it says it changes, and only that."""
from __future__ import annotations

import random

import pytest

from dca.numbers import spelled_numbers
from dca.reasoning.steps import Interpreter
from dca.reasoning.tasks.corruptions import KINDS, UNIVERSAL, corrupt, problem_numbers

GOLD = ["x1 = 48 / 2", "x2 = x1 + 10", "answer = 48 + x2"]
QUESTION = "Natalia sold 48 clips in April and half as many in May, plus 10 more."


def answer(lines):
    return Interpreter().run_trace(lines)["answer"]


@pytest.mark.parametrize("seed", range(8))
def test_each_kind_changes_the_trace(seed):
    for kind in KINDS:
        c = corrupt(kind, GOLD, QUESTION, random.Random(seed))
        assert c is not None and c.kind == kind and c.lines != GOLD
        assert c.lines[: c.index] == GOLD[: c.index]
    wrong = corrupt("arithmetic", GOLD, QUESTION, random.Random(seed))
    assert "# =" in wrong.lines[wrong.index] and answer(wrong.lines) == answer(GOLD)
    for kind in ("ungrounded", "misread", "operation", "dropped"):
        c = corrupt(kind, GOLD, QUESTION, random.Random(seed))
        assert answer(c.lines) != answer(GOLD), (kind, c.lines)


def test_ungrounded_numbers_appear_nowhere_and_misread_ones_come_from_the_problem():
    known = problem_numbers(QUESTION)
    assert {48.0, 10.0, 2.0, 0.5} <= known
    for seed in range(30):
        c = corrupt("ungrounded", GOLD, QUESTION, random.Random(seed))
        new = c.note.split("-> ")[1]
        earlier = {24.0, 34.0}.intersection([24.0, 34.0][: c.index])
        assert float(new) not in known | UNIVERSAL | earlier
        m = corrupt("misread", GOLD, QUESTION, random.Random(seed))
        assert float(m.note.split("-> ")[1]) in known


def test_no_place_for_an_error_gives_none():
    assert corrupt("dropped", ["answer = 5"], "5", random.Random(0)) is None
    assert corrupt("operation", ["answer = abs(5)"], "5", random.Random(0)) is None
    with pytest.raises(ValueError, match="unknown error kind"):
        corrupt("typo", GOLD, QUESTION, random.Random(0))


def test_spelled_numbers():
    assert spelled_numbers("twenty-five apples and three hundred pears") == [25.0, 300.0]
    assert 1.5 in spelled_numbers("one and a half hours") and 0.75 in spelled_numbers("3/4 cup")
    assert {2.0, 0.5} <= set(spelled_numbers("half of them")) and 12.0 in spelled_numbers("a dozen eggs")
    assert 2_500_000 in spelled_numbers("$2.5 million") and 4.0 in spelled_numbers("the 4th year")
    assert 2 / 3 in spelled_numbers("two thirds of the cake")
