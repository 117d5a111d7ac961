"""Table rows to operand cells on real records: headers, scale and sign survive."""
from __future__ import annotations

from agents.docqa.cells import Cell, evidence_cells, same_number, table_cells
from dca.types import Evidence


def _problem(family, pid):
    return next(p for p in family.problems("train") if p.id == pid)


def test_finqa_row_cells_keep_label_column_and_scale(finqa_train):
    p = _problem(finqa_train, "finqa-ETR/2009/page_107.pdf-2")
    row4 = next(e for e in p.evidence if e.metadata.get("gold_key") == "table_4")
    cells = table_cells(row4)
    assert [(c.value, c.column, c.scale) for c in cells] == [(114400.0, "amount", "thousand")]
    assert "tranche a-3" in cells[0].label and cells[0].row == 4


def test_finqa_negative_cells_keep_their_sign(finqa_train):
    p = _problem(finqa_train, "finqa-C/2009/page_141.pdf-3")
    row = next(e for e in p.evidence if e.text.startswith("utilizations"))
    assert [(c.value, c.column) for c in table_cells(row)] == [(-119.0, "2009"), (-9.0, "2008")]


def test_every_gold_operand_of_real_records_is_a_cell(finqa_train):
    from agents.docqa.shapes import canonical

    found = total = 0
    for p in list(finqa_train.problems("train"))[:60]:
        can = canonical(p.gold or [])
        if not can:
            continue
        cells = evidence_cells(p.evidence)
        total += 1
        found += all(any(same_number(v, c) for c in cells) for v in can[1])
    assert total > 30 and found / total > 0.95


def test_tatqa_cells_parse_parentheses_and_thousands(tatqa_train):
    doc = tatqa_train.documents("train")[0]
    from retrieval.records import tatqa_facts

    from agents.docqa.knowledge import as_evidence

    cells = evidence_cells(as_evidence(tatqa_facts(doc)))
    raw = {c.text: c.value for c in cells}
    for text, value in raw.items():
        if text.startswith("(") and text.endswith(")"):
            assert value < 0
        if "," in text:
            assert abs(value) >= 1000


def test_same_number_normalises_scale_and_sign():
    cell = Cell(5800.0, "$5,800", "revenue", "2019", "f1", 0, "table", "million")
    assert same_number(5800, cell) and same_number(-5800, cell)
    assert same_number(5.8, cell)  # "$5.8 billion" is the table's 5,800 in millions
    assert not same_number(580, cell)
    pct = Cell(12.5, "12.5%", "margin", "2019", "f2", 0, "table", "", percent=True)
    assert same_number(0.125, pct) and not same_number(0.0125, pct)


def test_paragraph_cells_skip_years_and_read_scale():
    ev = Evidence("p", "in 2015 net revenue rose to $5.8 billion from 2014 .", metadata={"kind": "paragraph"})
    cells = evidence_cells([ev])
    assert [(c.value, c.scale) for c in cells] == [(5.8, "billion")]


def test_paragraph_cells_skip_the_days_and_months_of_dates():
    ev = Evidence("p", "as of december 31 , 2018 we had $2.2 billion left of the $2.5 billion program; 31 stores "
                       "and the market 30 index closed on 12/31/2006 and on sept . 30 2017.", metadata={"kind": "paragraph"})
    assert [c.value for c in evidence_cells([ev])] == [2.2, 2.5, 31.0, 30.0]


def test_no_gold_operand_of_real_records_is_a_date_part(finqa_train, tatqa_train):
    """The date filter drops many paragraph numbers ("december 31") and never the only statement of a
    number a gold program computes with."""
    from agents.docqa.cells import is_date_part
    from agents.docqa.shapes import canonical
    from dca.numbers import find_numbers

    dropped = 0
    for p in list(finqa_train.problems("train")) + list(tatqa_train.problems("train"))[:300]:
        can = canonical(p.gold or [])
        for e in p.evidence:
            if e.metadata.get("kind") == "table_row":
                continue
            for n in find_numbers(e.text):
                if not n.is_year and is_date_part(e.text, n):
                    dropped += 1
                    if can and n.value in can[1]:
                        assert any(same_number(n.value, c) for c in evidence_cells(p.evidence)), (p.id, n.text)
    assert dropped > 500


def test_a_respectively_clause_gives_each_amount_its_year():
    from agents.docqa.cells import text_cells

    def years(text: str) -> list[tuple[float, list[int]]]:
        return [(c.value, c.years) for c in text_cells(Evidence("p", text, metadata={"kind": "paragraph"}))]

    assert years("Depreciation was $2.5 million, $2.6 million and $2.4 million during fiscal 2019, 2018 and 2017, "
                 "respectively. Backlog was $5 million.") == [(2.5, [2019]), (2.6, [2018]), (2.4, [2017]), (5.0, [])]
    assert years("as of december 31 , 2016 and 2015 , the balances were $ 12.1 million and $ 10.4 million , "
                 "respectively .") == [(12.1, [2016]), (10.4, [2015])]
    # three amounts for two years: no pairing is certain, so none is made
    odd = text_cells(Evidence("p", "costs were $1 million, $2 million and $3 million in 2015 and 2014, respectively."))
    assert [c.stated_year for c in odd] == [0, 0, 0]


def test_respectively_years_agree_with_the_questions_of_real_records(finqa_train, tatqa_train):
    """Where a one-year training question computes with a single amount that a "respectively" clause
    states, the amount carries the question's year (the reasoner's year features read it)."""
    from agents.docqa.cells import YEAR, text_cells
    from agents.docqa.shapes import canonical

    agree, disagree = 0, []
    for p in list(finqa_train.problems("train")) + list(tatqa_train.problems("train")):
        can = canonical(p.gold or [])
        years = {int(y) for y in YEAR.findall(p.question)}
        if not can or len(can[1]) != 1 or len(years) != 1:
            continue
        for e in p.evidence:
            if e.metadata.get("kind") == "table_row":
                continue
            for c in text_cells(e):
                if c.stated_year and same_number(can[1][0], c):
                    agree += c.stated_year in years
                    if c.stated_year not in years:
                        disagree.append((p.id, c.text, c.stated_year))
    assert agree >= 10 and not disagree


def test_a_share_tables_base_row_is_not_an_operand():
    """"Net sales: 2019 = 100.0%; 2018 = 100.0%" says what the other rows are shares of: its cells are
    dropped, while a row with a 100 % beside other values and a $100 index base stay."""
    from agents.docqa.cells import operand_cells

    def row(i, text):
        return Evidence(id=f"r{i}", text=text, source="t", metadata={"kind": "table_row", "row": i})

    rows = [row(1, "Net sales: 2019 = 100.0%; 2018 = 100.0%"), row(2, "Cost of sales: 2019 = 61.2%; 2018 = 60.4%"),
            row(3, "OEM: 2019 = 100%; 2018 = 65%"), row(4, "december 31 2007: snap-on = $ 100.00; s&p 500 = $ 100.00"),
            row(5, "fiscal year: 2019 = 2019; 2018 = 2018")]
    assert [(c.fact_id, c.value) for c in operand_cells(rows)] == [
        ("r2", 61.2), ("r2", 60.4), ("r3", 100.0), ("r3", 65.0), ("r4", 100.0), ("r4", 100.0)]


def test_dropping_base_rows_loses_no_gold_operand_of_real_records(finqa_train, tatqa_train):
    """Over the real records, every gold operand stated by a cell is still stated by an operand cell,
    and base rows were dropped from some pages (so the rule is exercised)."""
    from agents.docqa.cells import operand_cells
    from agents.docqa.shapes import canonical

    dropped = 0
    for p in [p for fam in (finqa_train, tatqa_train) for split in ("train", "dev") for p in fam.problems(split)]:
        cells, kept = evidence_cells(p.evidence), operand_cells(p.evidence)
        dropped += sum(1 for c in cells if not c.year_like) - len(kept)
        can = canonical(p.gold or [])
        for v in (can[1] if can else []):
            if any(same_number(v, c) for c in cells if not c.year_like):
                assert any(same_number(v, c) for c in kept), (p.id, v)
    assert dropped > 0


def test_a_table_whose_rows_are_years_gives_its_cells_the_row_year():
    """"2017: amount per share = $1.49" is a 2017 amount, as a 2017 column's would be; a period
    ("2020 - 2024") is not one year; a column's year wins over the label's. The trace ranker then
    reads "from 2016 to 2017" as (2017 - 2016) / 2016."""
    from agents.docqa.reasoner import TRACE_FEATURES, Question, trace_features
    from agents.docqa.shapes import SHAPES

    def row(i, text):
        return Evidence(id=f"r{i}", text=text, source="t", metadata={"kind": "table_row", "row": i})

    rows = [row(1, "2016: amount per share = $1.16; total amount = $172"),
            row(2, "2017: amount per share = $1.49; total amount = $219"),
            row(3, "2020 - 2024: ground leases = 512"), row(4, "notes due 2019: 2018 = 300; 2017 = 250"),
            row(5, "december 31 2008: snap-on = $83.66; s&p 500 = $63.00")]
    cells = evidence_cells(rows)
    assert [c.years for c in cells] == [[2016], [2016], [2017], [2017], [], [2018], [2017], [2008], [2008]]
    q = Question.of("considering the years 2016-2017, what is the percentual increase in the amount per share?")
    at = TRACE_FEATURES.index("year_order")
    later_first = trace_features(q, SHAPES["change_ratio"], 0.0, [cells[2], cells[0]], [0.0, 0.0], 1.49 / 1.16 - 1)
    earlier_first = trace_features(q, SHAPES["change_ratio"], 0.0, [cells[0], cells[2]], [0.0, 0.0], 1.16 / 1.49 - 1)
    assert (later_first[at], earlier_first[at]) == (1.0, -1.0)


def test_dated_headings_give_their_cells_years():
    """"12/31/05", "12/09", "31-dec-2017" and a day run into its year ("december 312012") are
    years in table headings; a day without a year ("6/30", "12/31") and prose fractions are not."""
    from agents.docqa.cells import fact_years, table_years

    assert table_years("12/31/05") == [2005] and table_years("12/09") == [2009]
    assert table_years("31-dec-2017") == [2017] and table_years("december 312012") == [2012]
    assert table_years("three months ended dec . 282013") == [2013]
    assert table_years("2019 vs 12/31/18") == [2019, 2018]
    assert table_years("6/30") == table_years("balance at 12/31") == table_years("payments 1 - 3 years") == []
    row = Evidence(id="r1", text="ups: 12/31/05 = $100.00; 12/31/06 = $101.76", source="t",
                   metadata={"kind": "table_row", "row": 1})
    assert [c.years for c in table_cells(row)] == [[2005], [2006]] and fact_years(row) == {2005, 2006}
    prose = Evidence(id="t1", text="about 3/10 of the 2015 sales, invested on 11/17/11", source="t", metadata={})
    assert fact_years(prose) == {2015}


def test_gold_operands_under_dated_headings_of_real_records_have_their_year(finqa_train):
    """Performance-graph pages date their columns ("12/31/05", "12/07", "december 312008"): every
    gold operand under such a heading is a cell of one year, one the question can name ("the roi ...
    from 2007 to 2008" reads the "12/08" column; before, those cells had no year)."""
    from agents.docqa.cells import YEAR, table_years
    from agents.docqa.shapes import canonical

    operands = named = 0
    for p in finqa_train.problems("train"):
        dated = [e for e in p.evidence if e.metadata.get("kind") == "table_row" and not YEAR.search(e.text)
                 and table_years(e.text)]
        can = canonical(p.gold or [])
        if not dated or not can:
            continue
        asked = {int(y) for y in YEAR.findall(p.question)}
        for v in can[1]:
            hits = [c for c in evidence_cells(dated) if same_number(v, c) and any(ch.isdigit() for ch in c.column)]
            if hits:
                operands += 1
                assert any(len(c.years) == 1 for c in hits), (p.id, v)
                named += any(asked & set(c.years) for c in hits)
    assert operands >= 5 and named >= 1
