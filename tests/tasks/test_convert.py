"""Converters from GSM8K / FinQA / TAT-QA into the step language: exact lines, and fidelity on the real files."""
from __future__ import annotations

import json

import pytest

from dca.reasoning.convert import (
    ConvertError, finqa_match, finqa_trace, gsm8k_trace, infix_trace, normalize_arithmetic, tatqa_match,
    tatqa_trace, year_question_trace,
)
from dca.reasoning.steps import Interpreter, values_match

NATALIA = ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
           "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72")


def test_gsm8k_annotations_become_named_steps_with_stated_values():
    c = gsm8k_trace(NATALIA, "Natalia sold clips to 48 of her friends in April, and half as many in May.")
    assert c.lines == ["x1 = 48 / 2", "answer = 48 + x1"]
    assert c.stated == [24, 72] and c.answer == 72 and c.warnings == []
    assert c.run() == [24, 72]


def test_gsm8k_prose_arithmetic_and_unit_changes():
    c = gsm8k_trace("Carlos memorized 24/6=<<24/6=4>>4 digits.\nSam memorized 4+6=10 digits of pi.\n#### 10")
    assert c.lines == ["x1 = 24 / 6", "answer = x1 + 6"]
    assert any("recovered from prose" in w for w in c.warnings)
    days = gsm8k_trace("Total 12+3=<<12+3=15>>15 hours, 15/4=<<15/4=3.75>>3.75 days.\nSo 4 days.\n#### 4")
    assert days.lines[-1] == "answer = ceil(x2)" and days.run()[-1] == 4
    pct = gsm8k_trace("The share is 8/40=<<8/40=0.2>>0.2.\n#### 20")
    assert pct.lines[-1] == "answer = x1 * 100" and pct.run()[-1] == 20


def test_gsm8k_uncomputed_answer_is_flagged_not_hidden():
    c = gsm8k_trace("Let x be the books. 11x = 99 so x = 9.\n#### 9", "Tracy has some books.")
    assert c.lines == ["answer = 9"]
    assert any("not computed" in w and "not in the question" in w for w in c.warnings)
    with pytest.raises(ConvertError, match="####"):
        gsm8k_trace("no final line")


@pytest.mark.parametrize("raw, expected", [
    ("2 x $1,000", "2 * 1000"), ("15% * 1000", "0.15 * 1000"), ("500(.40)", "500 * 0.4"),
    ("$40 − $4", "40 - 4"), ("[(4+4)/2] - [(2+3)/2]", "(4 + 4) / 2 - (2 + 3) / 2"), ("05*2", "5 * 2"),
    ("10 - (2 - 3)", "10 - (2 - 3)"), ("2 ** 3 ** 2", "2 ** 3 ** 2"), ("(2 ** 3) ** 2", "(2 ** 3) ** 2"),
    ("560//10", "560 // 10"),
])
def test_arithmetic_notation_is_normalised_and_keeps_its_value(raw, expected):
    assert normalize_arithmetic(raw) == expected


def test_finqa_programs():
    c = finqa_trace("subtract(5829, 5735), divide(#0, 5735)", answer=0.01639, step_values=["94", "1.6%"])
    assert c.lines == ["x1 = 5829 - 5735", "answer = x1 / 5735"]
    assert c.stated == [94, 0.01639] and finqa_match(c.run()[-1], 0.01639)
    assert finqa_trace("multiply(const_m1, 62%)").lines == ["answer = (-1) * 0.62"]
    assert finqa_trace("divide(const_1000000, const_100)").run()[-1] == 10000
    g = finqa_trace("greater(284, 197)", answer="yes")
    assert g.lines == ["answer = 284 > 197"] and g.answer is True and g.run()[-1] is True
    table = [["", "2019", "2018"], ["net sales", "$ 1,200", "$ 800 ( 5 )"], ["margin", "27.9%", "25%"]]
    t = finqa_trace("table_average(net sales, none), table_max(margin, none), subtract(#0, #1)", table)
    assert t.lines == ["x1 = mean(1200, 800)", "x2 = max(0.279, 0.25)", "answer = x1 - x2"]
    assert t.run()[-1] == pytest.approx(999.721)
    with pytest.raises(ConvertError, match="no row"):
        finqa_trace("table_sum(revenue, none)", table)
    with pytest.raises(ConvertError, match="not an earlier step"):
        finqa_trace("add(#1, 2)")


def test_finqa_execution_accuracy_rounds_to_five_decimals():
    assert finqa_match(0.0163903, 0.01639) and not finqa_match(0.01641, 0.01639)
    assert finqa_match(True, "yes") and not finqa_match(1.0, "yes")


def test_tatqa_derivations():
    c = tatqa_trace("(1,496.5 - 1,202.9)/1,202.9", 24.41, "percent")
    assert c.lines == ["x1 = 1496.5 - 1202.9", "answer = x1 / 1202.9 * 100"]
    assert tatqa_trace("34% + 11% ", 45, "percent").lines == ["answer = 34 + 11"]
    assert tatqa_trace("53%*$23,406 ", 12405.18, "").lines == ["answer = 0.53 * 23406"]
    neg = tatqa_trace("-114 - (71)", -43, "million")
    assert neg.run()[-1] == -43 and any("parentheses" in w for w in neg.warnings)
    mixed = tatqa_trace("60.3 million + 32,137 thousand ", 92437, "thousand")
    assert mixed.run()[-1] == pytest.approx(92437)
    nested = tatqa_trace("[(166+178)/2] - [(57+44)/2]", 121.5, "million")
    assert nested.lines == ["x1 = 166 + 178", "x2 = x1 / 2", "x3 = 57 + 44", "x4 = x3 / 2", "answer = x2 - x4"]
    assert tatqa_trace("", 1496.5, "million").lines == ["answer = 1496.5"]
    bad = tatqa_trace("10 - 3", 99, "")
    assert any("does not give" in w for w in bad.warnings)


SALES = [["", "2019", "2018", "2017"], ["Sensors", "914", "918", "814"], ["Total sales", "$ 1,496.5", "1,202.9", "1,107.7"],
         ["Other income (expense), net", "(1,867)", "509", "12"]]


def test_a_which_year_answer_becomes_one_comparison_of_two_cells():
    # the derivation's values pick the cells, the column headings give the years
    c = year_question_trace("In which year was the amount for Sensors the largest?", ["2018"], SALES, "918>914>814")
    assert c.lines == ["answer = 2018 if 918 > 914 else 2019"] and c.run()[-1] == 2018
    assert year_question_trace("Which year has the lowest total sales?", ["2017"], SALES,
                               "1,107.7<1,202.9").lines == ["answer = 2017 if 1107.7 < 1202.9 else 2018"]
    # without compared numbers: the row the question names, compared as its wording asks; signs are the table's
    neg = year_question_trace("In which year was Other income (expense), net negative?", ["2019"], SALES,
                              "locate and analyze Other income (expense), net in row 3")
    assert neg.lines == ["answer = 2019 if -1867 < 509 else 2018"]
    with pytest.raises(ConvertError, match="is not a year"):
        year_question_trace("In which year was it larger?", ["1,496.5"], SALES)
    with pytest.raises(ConvertError, match="no table row"):  # no row's 2019 cell is the larger of 918 and 914
        year_question_trace("In which year was Sensors larger?", ["2019"], SALES, "918>914")


def test_tatqa_numeric_rule_with_scale():
    assert tatqa_match(23.4249, 23.42, "percent") and tatqa_match(0.2342, 23.42, "percent")
    assert not tatqa_match(23.4, 23.42, "percent")
    assert tatqa_match(1496500, 1496.5, "thousand") and not tatqa_match(1496, 1496.5, "thousand")


def test_infix_trace_splits_by_operator_group():
    c = infix_trace("5*(65 + 35)", 500)
    assert c.lines == ["x1 = 65 + 35", "answer = 5 * x1"] and c.run()[-1] == 500


# ----------------------------------------------------------------------------- the real files


def test_gsm8k_fidelity_on_train(data_dir):
    rows = [json.loads(line) for line in open(data_dir / "gsm8k" / "train.jsonl")]
    interp = Interpreter()
    steps = agree = answers = 0
    for r in rows:
        c = gsm8k_trace(r["answer"], r["question"])
        values = c.run(interp)
        for v, s in zip(values, c.stated):
            steps += 1
            agree += values_match(v, s, rel=1e-4)
        answers += values_match(values[-1], c.answer, rel=1e-9)
    assert agree / steps >= 0.995 and answers == len(rows)


def test_finqa_and_tatqa_fidelity(data_dir):
    records = [r for f in ("train_100.json", "dev_200.json") for r in json.load(open(data_dir / "finqa" / f))]
    ok = sum(finqa_match(finqa_trace(r["qa"]["program"], r["table"], answer=r["qa"]["exe_ans"]).run()[-1],
                         r["qa"]["exe_ans"]) for r in records)
    assert ok / len(records) >= 0.99
    qs = [q for d in json.load(open(data_dir / "tatqa" / "dev.json")) for q in d["questions"]
          if q["answer_type"] == "arithmetic"]
    ok = sum(tatqa_match(tatqa_trace(q["derivation"], q["answer"], q["scale"]).run()[-1], q["answer"], q["scale"])
             for q in qs)
    assert ok / len(qs) >= 0.99


def test_gsm8k_head_arithmetic_becomes_explicit_steps_the_verifier_accepts():
    from dca.verifier import Verifier

    question = "Joy can read 8 pages of a book in 20 minutes. How many hours will it take her to read 120 pages?"
    solution = ("In one hour, there are 3 sets of 20 minutes.\nSo, Joy can read 8 x 3 = <<8*3=24>>24 pages in an "
                "hour.\nIt will take her 120/24 = <<120/24=5>>5 hours to read 120 pages.\n#### 5")
    c = gsm8k_trace(solution, question)
    assert c.lines == ["x1 = 60 / 20", "x2 = 8 * x1", "answer = 120 / x2"] and c.run()[-1] == 5
    assert any("made explicit" in w for w in c.warnings)
    as_written = gsm8k_trace(solution, question, explicit=False)
    assert as_written.lines == ["x1 = 8 * 3", "answer = 120 / x1"]
    v = Verifier()
    assert all(s.verdict.ok for s in v.check_trace(question, c.lines))
    assert not all(s.verdict.ok for s in v.check_trace(question, as_written.lines))
    # a number given only by an annotation without its arithmetic, and an answer solved for
    soda = gsm8k_trace("He spent 2 - .5 = <<2-.5=1.5>>1.5\nHe bought 1.5 / .25 = <<6=6>>6 ounces\n#### 6",
                       "The soda costs $.25 an ounce. He brought $2 and leaves with $.50. How many ounces?")
    assert soda.lines == ["x1 = 2 - 0.5", "answer = x1 / 0.25"]
    # constants alone explain nothing: 1 + 2 is not a derivation of 3
    c3 = gsm8k_trace("They got 3 each.\n#### 3", "Ann shares 9 apples among friends. How many each?")
    assert c3.lines[-1] != "answer = 1 + 2"


def test_tatqa_which_year_answers_become_comparisons_that_give_the_year(data_dir):
    from dca.reasoning.tasks.tatqa import TATQA

    tatqa = TATQA(data_dir / "tatqa" / "dev.json")
    years = [p for split in ("train", "dev") for p in tatqa.problems(split)
             if p.meta["type"] != "arithmetic" and 1990 <= p.answer <= 2030 and p.answer.is_integer()
             and "which year" in p.question.lower()]
    compared = [p for p in years if p.gold and " if " in p.gold[0]]
    assert len(years) >= 40 and len(compared) / len(years) >= 0.8
    interp = Interpreter()
    assert all(interp.run_trace(p.gold)["answer"] == p.answer for p in compared)
