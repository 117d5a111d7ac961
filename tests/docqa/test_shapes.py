"""Program shapes: gold traces of real records map to shapes and back."""
from __future__ import annotations

import pytest

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


def test_traces_written_another_way_map_by_value():
    # FinQA writes "2901 + (a + b)" and "3 / (16 + 3)"; they are the same programs as add3 and share_of_sum
    assert canonical(["x1 = 27954 + 42721", "answer = 2901 + x1"]) == ("add3", [27954.0, 42721.0, 2901.0], False)
    assert canonical(["x1 = 16 + 3", "answer = 3 / x1"]) == ("share_of_sum", [3.0, 16.0], False)
    assert canonical(["x1 = 40678 - 2526", "answer = x1 / 40678"])[0] == "change_ratio_first"


def test_performance_graph_and_table_row_shapes():
    assert canonical(["x1 = 204 - 100", "answer = x1 / 100"]) == ("base_return", [204.0], False)
    assert canonical(["answer = 109 - 100"]) == ("less_base", [109.0], False)
    gap = ["x1 = 311.13 - 100", "x2 = x1 / 100", "x3 = 165.84 - 100", "x4 = x3 / 100", "answer = x2 - x4"]
    assert canonical(gap) == ("return_gap", [311.13, 165.84], False)
    assert canonical(["answer = sum(20147, 6932, 9105, 2592, 1518)"])[0] == "row_sum"
    assert canonical(["answer = min(900, 846, 954)"]) == ("row_min", [900.0, 846.0, 954.0], False)
    assert SHAPES["row_max"].render([1, -2, 3]) == ["answer = max(1, -2, 3)"]
    interp = Interpreter()
    assert interp.run_trace(SHAPES["change_gap"].render([12, 10, 6, 5]))["answer"] == 0.0


def test_synthetic_questions_cover_the_new_shapes(finqa_train):
    import random

    from agents.docqa.synth import synth_questions

    rng = random.Random(0)
    made = {}
    for p in list(finqa_train.problems("train"))[:40]:
        for q in synth_questions(p.evidence, rng, 12):
            made.setdefault(q.shape, q)
    for name in ("row_sum", "row_min", "change_gap", "return_gap", "change_ratio_first"):
        assert name in made, name
    assert len(made["change_gap"].operands) == 4 and len(made["row_sum"].operands) >= 3
    first = made["change_ratio_first"].operands
    assert first[0].years and first[1].years and first[0].years[0] <= first[1].years[0]  # A is the earlier year


def test_change_gap_questions_run_from_the_earlier_column_to_the_later(finqa_train):
    """The question's "from X to Y" names the earlier year first, whichever order the table's columns are in."""
    import random

    from agents.docqa.synth import synth_questions

    rng = random.Random(1)
    seen = 0
    for p in list(finqa_train.problems("train"))[:60]:
        for q in synth_questions(p.evidence, rng, 12):
            if q.shape != "change_gap" or not (q.operands[0].years and q.operands[1].years):
                continue
            later, earlier = q.operands[0], q.operands[1]
            assert later.years[0] >= earlier.years[0]
            assert f"from {earlier.column} to {later.column}" in q.question, q.question
            seen += 1
    assert seen >= 3


def test_three_year_questions_span_three_year_columns_of_one_row(finqa_train):
    """"The total / average X from 2013 to 2015" reads three columns of one row, the latest first."""
    import random

    from agents.docqa.synth import synth_questions
    from dca.reasoning.steps import Interpreter

    rng = random.Random(0)
    seen = set()
    for p in list(finqa_train.problems("train"))[:60]:
        for q in synth_questions(p.evidence, rng, 12):
            if q.shape not in ("add3", "average3"):
                continue
            a, b, c = q.operands
            assert len({a.fact_id, b.fact_id, c.fact_id}) == 1
            assert a.years[0] > b.years[0] > c.years[0]
            named = [col for col in (a.column, b.column, c.column) if col in q.question]
            assert named in ([a.column, c.column], [a.column, b.column, c.column]) or "three" in q.question, q.question
            value = Interpreter().run_trace(SHAPES[q.shape].render([a.value, b.value, c.value]))["answer"]
            total = a.value + b.value + c.value
            assert value == pytest.approx(total if q.shape == "add3" else total / 3)
            seen.add(q.shape)
    assert seen == {"add3", "average3"}


def test_a_which_year_comparison_is_a_year_shape_whose_years_are_not_operands():
    assert canonical(["answer = 2019 if 592 > 519 else 2018"]) == ("year_larger", [592.0, 519.0], False)
    assert canonical(["answer = 2018 if (-79196) < -77957 else 2019"]) == ("year_smaller", [-79196.0, -77957.0], False)
    assert SHAPES["year_smaller"].render([-5, 3], years=[2019, 2018]) == ["answer = 2019 if (-5) < 3 else 2018"]
    assert Interpreter().run_trace(SHAPES["year_larger"].render([5, 30], years=[2019, 2018]))["answer"] == 2018
    with pytest.raises(ValueError, match="needs the years"):
        SHAPES["year_larger"].render([5, 30])
