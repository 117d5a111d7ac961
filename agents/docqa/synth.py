"""Synthetic questions over the real tables of training pages, with their gold shape and operands.

Templates of the question types FinQA and TAT-QA ask (change, percent change, ratio, average,
sum, comparison, which year, a single value), in the wordings of their training questions, are filled with a
table row's label and two (or three) of its columns, so
the retriever and the reasoner see many more questions than the datasets' few hundred. Only
training records are used.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from agents.docqa.cells import Cell, table_cells, years_apart
from agents.docqa.shapes import SHAPES
from dca.types import Evidence

TEMPLATES: dict[str, tuple[str, ...]] = {
    "value": ("what was {L} in {c1}?", "what is the amount of {L} in {c1}?", "how much was {L} in {c1}?"),
    "subtract": ("what was the change in {L} from {c2} to {c1}?", "what is the difference in {L} between {c1} "
                 "and {c2}?", "by how much did {L} change from {c2} to {c1}?",
                 "what was the increase in {L} from {c2} to {c1}?", "what was the net change in {L} between {c2} and "
                 "{c1}?"),
    "change_ratio": ("what was the percentage change in {L} from {c2} to {c1}?", "what is the growth rate of {L} "
                     "from {c2} to {c1}?", "what was the percent increase in {L} between {c2} and {c1}?",
                     "what was the percentage change in the {L} between {c2} and {c1}?",
                     "what was the percent of the increase in {L} from {c2} to {c1}?",
                     "{L} changed by what percent between {c2} and {c1}?"),
    "average": ("what is the average {L} for {c1} and {c2}?", "what was the average of {L} in {c2} and {c1}?"),
    "add": ("what is the total {L} in {c1} and {c2}?", "what is the sum of {L} for {c2} and {c1}?",
            "what were the combined {L} in {c1} and {c2}?"),
    "greater": ("was {L} in {c1} greater than in {c2}?", "is {L} in {c1} higher than {c2}?",
                "did {L} increase between {c2} and {c1}?", "did {L} grow from {c2} to {c1}?"),
    "divide": ("what portion of {L2} is {L} in {c1}?", "what percentage of {L2} does {L} represent in {c1}?",
               "what is the ratio of {L} to {L2} in {c1}?", "in {c1}, {L} was how many times {L2}?",
               "what is {L} as a percentage of {L2} in {c1}?", "{L} represented how much of {L2} in {c1}?",
               "what percent of total {L2} was {L} in {c1}?"),
    "change_ratio_first": ("what was the percentage decrease in {L} from {c2} to {c1}?",
                           "by what percent did {L} decline from {c2} to {c1}?"),
    "change_gap": ("what is the difference between the percentage change in {L} and in {L2} from {c2} to {c1}?",
                   "how much higher was the growth rate of {L} than that of {L2} from {c2} to {c1}?"),
    "row_sum": ("what is the total of {L} for all years shown?", "what is the sum of {L} over the periods?"),
    "row_mean": ("what is the average {L} over the years presented?", "what was the mean {L} for the periods?"),
    "row_max": ("what was the highest {L} in the table?", "what is the maximum {L} during the period?"),
    "row_min": ("what was the lowest {L} in the table?", "what is the minimum {L} during these years?"),
    "year_larger": ("in which year was {L} larger?", "in which year was the amount of {L} higher?",
                    "which year had the greater {L}?", "in which year was {L} the largest?"),
    "year_smaller": ("in which year was {L} lower?", "which year has the lowest {L}?",
                     "in which year was {L} smaller?", "in which year was {L} less than in {c2}?"),
    # three year columns of one row: "from 2013 to 2015" spans three years
    "add3": ("what is the total {L} from {c3} to {c1}?", "what were total {L} for the three year period?",
             "for {c1}, {c2} and {c3}, what is the total {L}?"),
    "average3": ("what was the average {L} from {c3} to {c1}?", "what were average {L} between {c3} and {c1}?",
                 "what was the average {L} for the past three years?"),
    # performance graphs: rows of an index that starts at 100
    "less_base": ("what is the performance difference of {L} from {c2} to {c1}?",
                  "how much did an investment in {L} gain from {c2} to {c1}?"),
    "base_return": ("what was the percentage cumulative total return of {L} from {c2} to {c1}?",
                    "what is the roi of {L} from {c2} to {c1}?"),
    "return_gap": ("what was the difference in percentage cumulative total return between {L} and {L2} for the "
                   "period ending {c1}?", "by how much did {L} outperform {L2} in percentage return by {c1}?"),
}
ROW_SHAPES = ("row_sum", "row_mean", "row_max", "row_min")
THREE_SHAPES = ("add3", "average3")
BASE_SHAPES = ("less_base", "base_return", "return_gap")


@dataclass
class SynthQuestion:
    question: str
    shape: str
    operands: list[Cell]
    facts: list[str] = field(default_factory=list)  # ids of the facts the question is about


def _clean_label(label: str) -> str:
    return " ".join(label.replace("—", " ").lower().split()).strip(" :")


def synth_questions(evidence: list[Evidence], rng: random.Random, per_page: int = 6) -> list[SynthQuestion]:
    """Up to ``per_page`` questions over one page's table rows (rows with two or more numbers)."""
    rows = [(e, cells) for e in evidence if e.metadata.get("kind") == "table_row"
            and not e.metadata.get("header") and len(cells := table_cells(e)) >= 1]
    out: list[SynthQuestion] = []
    if not rows:
        return out
    for _ in range(per_page * 3):
        if len(out) >= per_page:
            break
        shape = rng.choice(list(TEMPLATES))
        ev, cells = rng.choice(rows)
        label = _clean_label(cells[0].label)
        if not label or len(label) > 80:
            continue
        if shape in ROW_SHAPES:
            if len(cells) >= 3:
                out.append(SynthQuestion(rng.choice(TEMPLATES[shape]).format(L=label), shape, list(cells), [ev.id]))
            continue
        if shape in THREE_SHAPES:
            years = [c for c in cells if c.years]
            # three columns of three years (a row labelled by its year gives every cell that one year)
            if len(years) >= 3 and len({c.years[0] for c in years[:3]}) == 3:
                a, b, c = sorted(years[:3], key=lambda x: -x.years[0])  # slot order: the latest year first
                text = rng.choice(TEMPLATES[shape]).format(L=label, c1=a.column, c2=b.column, c3=c.column)
                out.append(SynthQuestion(text, shape, [a, b, c], [ev.id]))
            continue
        if shape in BASE_SHAPES or shape == "change_gap":
            q = _two_rows(shape, rows, ev, cells, label, rng)
            if q:
                out.append(q)
            continue
        if shape == "divide":
            same = [(e2, c2) for e2, c2 in rows if e2.id != ev.id and c2 and c2[0].column == cells[0].column]
            if not same:
                continue
            ev2, cells2 = rng.choice(same)
            a, b = cells[0], cells2[0]
            text = rng.choice(TEMPLATES[shape]).format(L=label, L2=_clean_label(b.label), c1=a.column or "the year")
            out.append(SynthQuestion(text, shape, [a, b], [ev.id, ev2.id]))
            continue
        if shape == "value":
            a = rng.choice(cells)
            if not a.column:
                continue
            out.append(SynthQuestion(rng.choice(TEMPLATES[shape]).format(L=label, c1=a.column), shape, [a], [ev.id]))
            continue
        if len(cells) < 2 or not cells[0].column or not cells[1].column or cells[0].column == cells[1].column:
            continue
        a, b = cells[0], cells[1]
        if SHAPES[shape].years and not years_apart(a, b):
            continue
        if a.years and b.years and a.years[0] < b.years[0]:
            a, b = b, a  # slot A is the later year
        if shape == "change_ratio_first":  # a decrease stated from the earlier value: (earlier - later) / earlier
            out.append(SynthQuestion(rng.choice(TEMPLATES[shape]).format(L=label, c1=a.column, c2=b.column), shape,
                                     [b, a], [ev.id]))
            continue
        text = rng.choice(TEMPLATES[shape]).format(L=label, c1=a.column, c2=b.column)
        out.append(SynthQuestion(text, shape, [a, b], [ev.id]))
    return out


def _two_rows(shape: str, rows: list, ev: Evidence, cells: list[Cell], label: str,
              rng: random.Random) -> SynthQuestion | None:
    """Questions over a row and, for gaps, a second row with the same columns: changes between two
    columns, or returns of an index (performance graphs start at 100; few training pages have one, so
    any row stands in for the wording the shape classifier learns, not for the operands)."""
    if len(cells) < 2:
        return None
    first, last = cells[0], cells[-1]
    if shape in ("less_base", "base_return"):
        text = rng.choice(TEMPLATES[shape]).format(L=label, c1=last.column, c2=first.column)
        return SynthQuestion(text, shape, [last], [ev.id])
    other = [(e2, c2) for e2, c2 in rows if e2.id != ev.id and len(c2) == len(cells)]
    if not other:
        return None
    ev2, cells2 = rng.choice(other)
    label2 = _clean_label(cells2[0].label)
    if shape == "return_gap":
        text = rng.choice(TEMPLATES[shape]).format(L=label, L2=label2, c1=last.column)
        return SynthQuestion(text, shape, [last, cells2[-1]], [ev.id, ev2.id])
    a, b = (first, last) if not (first.years and last.years and first.years[0] < last.years[0]) else (last, first)
    c, d = (cells2[0], cells2[-1]) if a is first else (cells2[-1], cells2[0])
    text = rng.choice(TEMPLATES[shape]).format(L=label, L2=label2, c1=a.column, c2=b.column)  # from b to a
    return SynthQuestion(text, shape, [a, b, c, d], [ev.id, ev2.id])
