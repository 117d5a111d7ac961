"""Table rows become facts that keep their headers and scale; FinQA/TAT-QA keep their gold keys."""
from __future__ import annotations

import pytest

from dca.numbers import find_numbers
from retrieval.records import finqa_facts, tatqa_facts
from retrieval.tables import caption_scale, clean_cell, count_header_rows, find_scale, table_to_facts

TATQA_TABLE = [
    ["", "", "Years Ended September 30,", ""],
    ["", "2019", "2018", "2017"],
    ["Fixed Price", "$  1,452.4", "$  1,146.2", "$  1,036.9"],
    ["Other", "44.1", "56.7", "70.8"],
    ["Total sales", "$1,496.5", "$1,202.9", "$1,107.7"],
]


def test_row_keeps_headers_caption_and_scale_hint():
    facts = table_to_facts(TATQA_TABLE, scale_hint="in millions", source="r.pdf")
    assert [f.metadata["row"] for f in facts] == [2, 3, 4]
    assert facts[0].text == ("Fixed Price: 2019 = $1,452.4; 2018 = $1,146.2; 2017 = $1,036.9 "
                             "(Years Ended September 30; in millions)")
    assert facts[0].metadata["scale"] == "million"
    assert facts[0].metadata["kind"] == "table_row" and facts[0].metadata["source"] == "r.pdf"
    assert facts[0].metadata["columns"] == "2019 | 2018 | 2017"


def test_every_number_stays_next_to_its_column():
    fact = table_to_facts(TATQA_TABLE)[1]
    for part, year in zip(fact.text.split(": ", 1)[1].split("; "), ["2019", "2018", "2017"]):
        assert part.startswith(f"{year} = ")
        assert [n.value for n in find_numbers(part.split(" = ")[1])] != []


def test_scale_row_and_section_rows():
    rows = [
        ["", "", "Fiscal", ""],
        ["", "2019", "2018", "2017"],
        ["", "", "(in millions)", ""],
        ["Transportation Solutions:", "", "", ""],
        ["Automotive", "$ 5,686", "$ 6,092", "$  5,228"],
        ["Industrial Solutions:", "", "", ""],
        ["Energy", "712", "721", "634"],
    ]
    facts = table_to_facts(rows)
    assert count_header_rows([[clean_cell(c) for c in r] for r in rows]) == 3
    assert facts[0].text == "Transportation Solutions — Automotive: 2019 = $5,686; 2018 = $6,092; 2017 = $5,228 (Fiscal; in millions)"
    assert facts[1].metadata["section"] == "Industrial Solutions"
    assert facts[1].metadata["row"] == 6


def test_stacked_halves_each_keep_their_own_headers():
    rows = [  # a quarterly table whose second half repeats the headers for another year
        ["", "", "", "Fiscal 2019", ""],
        ["", "First", "Second", "Third", ""],
        ["", "Quarter", "Quarter", "Quarter", "Total"],
        ["Revenues", "$ 94,888", "$ 96,037", "$ 88,495", "$279,420"],
        ["", "", "", "Fiscal 2018", ""],
        ["", "First", "Second", "Third", ""],
        ["", "Quarter", "Quarter", "Quarter", "Total"],
        ["Revenues", "$88,081", "$89,767", "$93,669", "$271,517"],
        ["", "Balance Sheet Data:", "", "", ""],
        ["Working capital", "27,756", "57,035", "50,995", "47,105"],
        ["", "11/4/2024", "8/12/2023", "", ""],  # a row of dates is data, not a header
    ]
    facts = table_to_facts(rows)
    assert [f.metadata["row"] for f in facts] == [3, 7, 9, 10]
    assert "; Third Quarter = $88,495;" in facts[0].text and facts[0].text.endswith("(Fiscal 2019)")
    assert facts[1].text.startswith("Revenues: First Quarter = $88,081; Second Quarter = $89,767; "
                                    "Third Quarter = $93,669;") and facts[1].text.endswith("(Fiscal 2018)")
    assert facts[1].metadata["caption"] == "Fiscal 2018"
    assert facts[2].metadata["section"] == "Balance Sheet Data"
    assert facts[2].text.startswith("Balance Sheet Data — Working capital: First Quarter = 27,756")
    assert facts[3].text.startswith("Balance Sheet Data: First Quarter = 11/4/2024")


def test_stacked_halves_on_a_real_record(tatqa_docs):
    doc = next((d for d in tatqa_docs if d["table"]["uid"].startswith("073a0021")), None)
    if doc is None:
        pytest.skip("the TAT-QA record with a stacked quarterly table is not in this copy of the data")
    by_row = {f.metadata["row"]: f for f in table_to_facts(doc["table"]["table"])}
    assert "Third Quarter = $88,495" in by_row[3].text and by_row[3].text.endswith("(Fiscal 2019)")
    assert "Third Quarter = $93,669" in by_row[11].text and by_row[11].text.endswith("(Fiscal 2018)")
    assert not {8, 9, 10} & set(by_row)  # the second header block is no fact of its own


def test_spanning_upper_headers_fill_right():
    rows = [
        ["", "Domestic", "", "International", ""],
        ["", "2019", "2018", "2019", "2018"],
        ["Discount rate", "4.00%", "3.75%", "1.90%", "2.80%"],
    ]
    text = table_to_facts(rows)[0].text
    assert text == ("Discount rate: Domestic 2019 = 4.00%; Domestic 2018 = 3.75%; "
                    "International 2019 = 1.90%; International 2018 = 2.80%")


def test_currency_scale_markers_and_percent_subheaders():
    rows = [
        ["", "30 June 2019", "30 June 2018", "Change"],
        ["", "$’000", "$’000", "%"],
        ["Net profit/(loss) after tax", "(9,819)", "6,639", "(248%)"],
    ]
    fact = table_to_facts(rows)[0]
    assert fact.text == ("Net profit/(loss) after tax: 30 June 2019 = (9,819); 30 June 2018 = 6,639; "
                         "Change % = (248%) ($ in thousands)")
    assert fact.metadata["scale"] == "thousand"
    eur = table_to_facts([["", "2019 €m", "2018 €m"], ["Capital additions", "(7,227)", "(7,321)"]])[0]
    assert eur.text == "Capital additions: 2019 = (7,227); 2018 = (7,321) (€ in millions)"


def test_finqa_first_row_header_with_scale_caption():
    rows = [["", "amount ( in thousands )"], ["senior secured transition bonds series a:", ""],
            ["tranche a-3 ( 5.93% ( 5.93 % ) ) due june 2022", "114400"]]
    fact = table_to_facts(rows)[0]
    assert fact.text == "senior secured transition bonds series a — tranche a-3 (5.93%) due june 2022: amount = 114400 (in thousands)"
    assert fact.metadata["row"] == 2


def test_table_without_header_keeps_all_rows_and_ids_are_stable():
    rows = [["floating rate due december 15 2015", "$ 500"], ["floating rate due december 15 2016", "350"]]
    a, b = table_to_facts(rows), table_to_facts([list(r) for r in rows])
    assert [f.metadata["row"] for f in a] == [0, 1]
    assert a[0].text == "floating rate due december 15 2015: $500"
    assert [f.id for f in a] == [f.id for f in b] and len({f.id for f in a}) == 2
    assert table_to_facts(rows, source="x.csv")[1].id == "x.csv#row1"


def test_all_text_table_uses_first_row_as_header():
    facts = table_to_facts([["name", "role"], ["Ada", "engineer"], ["Grace", "admiral"]])
    assert [f.text for f in facts] == ["Ada: role = engineer (name)", "Grace: role = admiral (name)"]


def test_cell_cleaning_and_scale_parsing():
    assert clean_cell("-12034 ( 12034 )") == "-12034"
    assert clean_cell("$ ( 25.3 )") == "$(25.3)"
    assert clean_cell("2 0 1 8") == "2018"
    assert find_scale("($ in millions)") == ("million", "$", "")
    assert find_scale("RMB’Million")[0] == "million"
    assert find_scale("US$’000")[0] == "thousand"
    assert find_scale("Net sales (in thousands)") == ("thousand", "", "Net sales")
    assert find_scale("$58,000")[0] == ""
    assert caption_scale("as follows : amount ( in thousands ) .") == "thousand"
    assert caption_scale("revenue rose in 2019 .") == ""


def test_finqa_facts_cover_gold_evidence(finqa_records):
    covered = total = 0
    for record in finqa_records:
        facts = finqa_facts(record)
        assert len({f.id for f in facts}) == len(facts)
        keys = {f.metadata["gold_key"]: f for f in facts}
        for key, gold in record["qa"]["gold_inds"].items():
            if not any(ch.isalnum() for ch in gold):
                continue  # FinQA cites a few bare "." sentences; they carry nothing to find
            total += 1
            covered += key in keys
            if key.startswith("table_") and key in keys:
                # every number in the gold row is in our row fact
                row = record["table"][int(key.split("_")[1])]
                want = {abs(n.value) for c in row for n in find_numbers(clean_cell(c))}
                got = {abs(n.value) for n in find_numbers(keys[key].text)}
                assert want <= got, (key, row, keys[key].text)
    assert covered == total


def test_tatqa_facts_cover_rel_paragraphs(tatqa_docs):
    for doc in tatqa_docs[:60]:
        keys = {f.metadata["gold_key"] for f in tatqa_facts(doc)}
        for q in doc["questions"]:
            assert {f"paragraph_{p}" for p in q["rel_paragraphs"]} <= keys
        rows = doc["table"]["table"]
        assert sum(k.startswith("table_") for k in keys) >= len(rows) // 2


def test_unlabelled_text_rows_stay_data_unless_they_head_numbers():
    names = [["", "Name", "City"], ["", "Alice", "Paris"], ["", "Bob", "Berlin"]]
    assert [f.metadata["row"] for f in table_to_facts(names)] == [1, 2]  # an all-text table
    mixed = [["", "2019", "2018"], ["Revenue", "10", "9"], ["", "Alice", "Paris"], ["", "Bob", "Berlin"]]
    assert [f.metadata["row"] for f in table_to_facts(mixed)] == [1, 2, 3]  # nothing numeric follows them
    csv_like = [["id", "name", "city"], ["", "Alice", "Paris"], ["", "Bob", "Berlin"], ["7", "Carol", "Rome"]]
    assert [f.metadata["row"] for f in table_to_facts(csv_like, header_rows=1)] == [1, 2, 3]  # a fixed header


def test_amount_and_share_pairs_get_their_year_back():
    # the extracted header lost the empty cells each year spanned: 2012 sits over a 2013 share
    shifted = [["", "2013", "2012", "", "( in millions except percentages )"],
               ["cars", "$ 120", "60% ( 60 % )", "$ 90", "45% ( 45 % )"],
               ["boats", "80", "40% ( 40 % )", "110", "55% ( 55 % )"]]
    fact = table_to_facts(shifted)[0]
    assert fact.text == "cars: 2013 = $120; 2013 % = 60%; 2012 = $90; 2012 % = 45% (in millions except percentages)"
    assert fact.metadata["scale"] == "million"
    # headings already over their amounts, or columns that do not alternate, are left as they are
    seated = [["", "2013", "", "2012", ""]] + shifted[1:]
    assert table_to_facts(seated)[0].text.startswith("cars: 2013 = $120; 60%; 2012 = $90; 45%")
    plain = [["", "2013", "2012", "2011", "2010"], ["cars", "1", "2", "3", "4"], ["boats", "5", "6", "7", "8"]]
    assert table_to_facts(plain)[0].text == "cars: 2013 = 1; 2012 = 2; 2011 = 3; 2010 = 4"


def test_amount_and_share_pairs_on_a_real_record(data_dir):
    import json

    path = data_dir / "finqa" / "dev_200.json"
    if not path.exists():
        pytest.skip(f"FinQA data not found at {path} (set DCA_DATA)")
    record = next(r for r in json.loads(path.read_text()) if r["id"].startswith("AMAT/2013/page_18.pdf"))
    assert record["table"][0][1:3] == ["2013", "2012"]  # the record as extracted
    row = next(f for f in finqa_facts(record) if f.metadata.get("label") == "display")
    assert "2013 = 361; 2013 % = 15%; 2012 = 206; 2012 % = 13%" in row.text
