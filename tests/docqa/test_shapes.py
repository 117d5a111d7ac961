"""Program shapes: gold traces of real records map to shapes and back."""
from __future__ import annotations

from agents.docqa.shapes import SHAPES, canonical
from dca.reasoning.steps import Interpreter


def test_shape_round_trip_on_real_finqa_traces(finqa_train):
    interp = Interpreter()
    checked = 0
    for p in finqa_train.problems("train"):
        can = canonical(p.gold or [])
        if not can:
            continue
        name, values, times100 = can
        lines = SHAPES[name].render(values, percent=times100)
        got = interp.run_trace(lines)["answer"]
        gold = interp.run_trace(p.gold)["answer"]
        assert got == gold or abs(got - gold) < 1e-9 * max(1, abs(gold)), (p.id, lines, p.gold)
        checked += 1
    assert checked >= 70


def test_canonical_forms():
    assert canonical(["x1 = 44.1 - 56.7", "answer = x1 / 56.7 * 100"]) == ("change_ratio", [44.1, 56.7], True)
    assert canonical(["x1 = 166 + 178", "answer = x1 / 2"])[0] == "average"
    assert canonical(["answer = mean(4, 5, 6)"])[0] == "average3"
    assert canonical(["x1 = 50 - 30", "x2 = x1 / 30", "answer = x2 * 100"]) == ("change_ratio", [50.0, 30.0], True)
    assert canonical(["answer = (-9) - 4"]) == ("subtract", [-9.0, 4.0], False)
    assert canonical(["x1 = 2 * 3", "answer = x1 ** 2"]) is None


def test_render_percent_and_negative_operands():
    assert SHAPES["change_ratio"].render([5, -3], percent=True) == ["x1 = 5 - (-3)", "answer = x1 / (-3) * 100"]
    assert SHAPES["subtract"].render([5, 3], percent=True) == ["answer = 5 - 3"]
