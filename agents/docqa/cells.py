"""Retrieved facts as operand cells: every number a step may use, with what it measures.

A table-row fact ``"net revenue: 2015 = $5,829; 2014 = $5,735 (in millions)"`` gives two cells,
``5829`` described as "net revenue 2015" and ``5735`` as "net revenue 2014", both in millions;
a paragraph fact gives one cell per number, described by the words around it. The reasoner
chooses operands among these cells, so every operand it writes is grounded in a cited fact.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from dca.numbers import Number, find_numbers, parse_number
from dca.types import Evidence

SCALE_FACTORS = {"": 1.0, "thousand": 1e3, "million": 1e6, "billion": 1e9}
# a year as report pages write one (1950-2049)
YEAR = re.compile(r"\b(19[5-9]\d|20[0-4]\d)\b")
_MONTHS = r"january|february|march|april|may|june|july|august|september|october|november|december|" \
    r"jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
# how table headings write a date's year otherwise: "12/31/05" and "12/09" (month/day/year, month/year),
# "31-dec-2017", and "december 312012" or "dec . 282013", a day and year the page's text extraction ran
# together (FinQA: of its 184 column headings with a number but no four-digit year, 65 are such dates)
_DATE_YEAR = re.compile(r"\b(?:0?[1-9]|1[0-2])/(?:(?:0?[1-9]|[12]\d|3[01])/)?(\d{2}|(?:19|20)\d\d)\b|"
                        rf"\b\d{{1,2}}-(?:{_MONTHS})-(\d{{2}}|(?:19|20)\d\d)\b|"
                        rf"\b(?:{_MONTHS})\s*\.?\s*(?:[1-9]|[12]\d|3[01])((?:19|20)\d\d)\b", re.I)
_CONTEXT_WORDS = 8
# "december 31", "june 30 ,": the day of a date, not an amount (18 % of the numbers in the training
# pages' paragraphs; none of them a gold operand)
_MONTH_BEFORE = re.compile(rf"\b(?:{_MONTHS})\s*\.?\s*$", re.I)


@dataclass
class Cell:
    """One number in one fact: its value as written (sign applied), what it measures and its scale."""

    value: float
    text: str  # as written in the fact ("$5,829", "(1,234)", "12.5%")
    label: str  # the row label, or the words before the number in a paragraph
    column: str  # the column header ("2015"), or the words after the number
    fact_id: str
    rank: int  # the fact's position in the retrieved list (0 = best)
    kind: str  # "table" or "text"
    scale: str = ""  # "thousand" / "million" / "billion" or ""
    percent: bool = False
    row: int = -1  # the table row (cells of one row share it)
    index: int = 0  # the cell's position within its fact
    stated_year: int = 0  # a paragraph's "... $0.6 million and $0.8 million in 2015 and 2014, respectively"

    @property
    def description(self) -> str:
        return f"{self.label} {self.column}".strip()

    @property
    def year_like(self) -> bool:
        """A bare year ("2014") in a table: usually a heading, rarely an amount to compute with."""
        return self.kind == "table" and bool(YEAR.fullmatch(self.text.strip()))

    @property
    def years(self) -> list[int]:
        """The year(s) the cell is for: a "respectively" clause's, the column heading's, or, in a
        table whose rows are years ("2017: amount per share = $1.49; total amount = $0.3"), the
        row label's when it names one year (not a period, "2020 - 2024")."""
        if self.stated_year:
            return [self.stated_year]
        if self.kind == "table":
            column, label = table_years(self.column), table_years(self.label)
            return column or (label if len(label) == 1 or not self.column else [])
        return [int(y) for y in YEAR.findall(self.column or self.label)]


def table_years(text: str) -> list[int]:
    """The years a table heading or row label names, in order: four-digit years and the years of
    dates ("12/31/05" is 2005, "31-dec-2017" 2017). Paragraphs read only four-digit years ("3/10"
    in prose is rarely a date)."""
    found = [(m.start(), int(m.group(1))) for m in YEAR.finditer(text)]
    for m in _DATE_YEAR.finditer(text):
        y = next(g for g in m.groups() if g)
        # two digits: 1950-2027 ("6/30" and "12/31" are days, not 2030 and 2031; 28-49 fall below 1950)
        year = int(y) if len(y) == 4 else 2000 + int(y) if int(y) < 28 else 1900 + int(y)
        if 1950 <= year <= 2049 and not any(m.start() <= at < m.end() for at, _ in found):
            found.append((m.start(), year))
    return [y for _, y in sorted(found)]


def fact_years(fact: Evidence) -> set[int]:
    """The years a fact states: a table row's headings and label read as ``table_years``, a
    paragraph's four-digit years."""
    if fact.metadata.get("kind") == "table_row":
        return set(table_years(fact.text))
    return {int(y) for y in YEAR.findall(fact.text)}


def years_apart(a: Cell, b: Cell) -> bool:
    """Do ``a`` and ``b`` sit in columns of one year each, different years (2019 and 2018)?"""
    return len(a.years) == len(b.years) == 1 and a.years != b.years


def _split_row(text: str) -> tuple[str, list[str]]:
    """``"name: a = 1; b = 2 (caption)"`` -> ``("name", ["a = 1", "b = 2"])``."""
    name, sep, body = text.partition(": ")
    if not sep:
        return "", [text]
    body = body.strip()
    if body.endswith(")"):
        depth, cut = 0, -1
        for i in range(len(body) - 1, -1, -1):  # the trailing "(caption; in millions)" group
            depth += {")": 1, "(": -1}.get(body[i], 0)
            if depth == 0:
                cut = i
                break
        if cut > 0 and "=" not in body[cut:] and body[cut - 1] == " ":
            body = body[:cut].strip()
    return name.strip(), [s.strip() for s in body.split("; ") if s.strip()]


def table_cells(ev: Evidence, rank: int = 0) -> list[Cell]:
    """The number cells of a table-row fact (``metadata["kind"] == "table_row"``)."""
    name, segments = _split_row(ev.text)
    scale = str(ev.metadata.get("scale") or "")
    row = int(ev.metadata.get("row", -1) or -1)
    out: list[Cell] = []
    for j, seg in enumerate(segments):
        column, eq, raw = seg.rpartition(" = ")
        if not eq:
            column, raw = "", seg
        value = parse_number(raw)
        if value is None:
            continue
        out.append(Cell(value, raw.strip(), name, column.strip(), ev.id, rank, "table", scale,
                        "%" in raw, row, j))
    return out


def text_cells(ev: Evidence, rank: int = 0) -> list[Cell]:
    """The numbers of a paragraph fact, each described by the words around it (years and the
    other parts of dates skipped); an amount a "respectively" clause ties to a year carries it."""
    text = ev.text
    numbers = find_numbers(text)
    year_of = respectively_years(text, numbers)
    out: list[Cell] = []
    for j, n in enumerate(numbers):
        if n.is_year or is_date_part(text, n):
            continue
        before = " ".join(text[: n.start].split()[-_CONTEXT_WORDS:])
        after = " ".join(text[n.end:].split()[:_CONTEXT_WORDS // 2])
        scale = next((s for s in ("thousand", "million", "billion") if after.lower().startswith(s)), "")
        out.append(Cell(n.value, n.text, before, after, ev.id, rank, "text", scale, n.percent, -1, j,
                        year_of.get(j, 0)))
    return out


_RESPECTIVELY = re.compile(r"\brespectively\b", re.I)
_SENTENCE_END = re.compile(r"\.\s+(?=[A-Z(])|;\s")


def respectively_years(text: str, numbers: list[Number]) -> dict[int, int]:
    """The year each amount of a "respectively" clause is stated for, by the amount's index in
    ``numbers``: "$2.5 million, $2.6 million and $2.4 million during fiscal 2019, 2018 and 2017,
    respectively" pairs the amounts with the years in order (the years may also come first: "for
    2016 and 2015 ... were $5 and $7, respectively"). A clause whose amounts are not a whole
    multiple of its years pairs nothing."""
    out: dict[int, int] = {}
    start = 0
    for m in _RESPECTIVELY.finditer(text):
        ends = [e.end() for e in _SENTENCE_END.finditer(text, start, m.start())]
        lo = ends[-1] if ends else start
        inside = [(j, n) for j, n in enumerate(numbers) if lo <= n.start < m.start()]
        years = [int(n.value) for _, n in inside if n.is_year]
        amounts = [j for j, n in inside if not n.is_year and not is_date_part(text, n)]
        if len(years) >= 2 and amounts and len(amounts) % len(years) == 0:
            for i, j in enumerate(amounts):
                out[j] = years[i % len(years)]
        start = m.end()
    return out


def is_date_part(text: str, n: Number) -> bool:
    """Is ``n`` the day or month of a date ("december 31", "12/31/2006") rather than an amount?"""
    if "/" in (text[n.start - 1:n.start] + text[n.end:n.end + 1]):
        return True
    whole_day = n.text.strip().isdigit() and 1 <= n.value <= 31
    return whole_day and bool(_MONTH_BEFORE.search(text[max(0, n.start - 12):n.start]))


def evidence_cells(evidence: list[Evidence]) -> list[Cell]:
    """Every number cell of the retrieved facts, best-ranked facts first."""
    out: list[Cell] = []
    for rank, ev in enumerate(evidence):
        is_row = ev.metadata.get("kind") == "table_row"
        out.extend(table_cells(ev, rank) if is_row else text_cells(ev, rank))
    return out


def operand_cells(evidence: list[Evidence]) -> list[Cell]:
    """The cells a step may compute with: every number of the facts except a bare year in a table
    and the cells of a share table's base row ("Net sales: 2019 = 100.0%; 2018 = 100.0%"), which
    says what the other rows are shares of and is never itself the share asked about (none of the
    TAT-QA dev questions over such tables computes with it; FinQA's $100 performance-graph bases
    are amounts, not percent cells, and stay)."""
    cells = evidence_cells(evidence)
    rows: dict[str, list[Cell]] = {}
    for c in cells:
        if c.kind == "table":
            rows.setdefault(c.fact_id, []).append(c)
    base = {fid for fid, row in rows.items() if len(row) >= 2 and all(c.percent and c.value == 100 for c in row)}
    return [c for c in cells if not c.year_like and c.fact_id not in base]


def normalised(value: float, scale: str) -> float:
    """A value in units (a cell's value times its scale), sign dropped: how grounding compares numbers."""
    return abs(float(value)) * SCALE_FACTORS.get(scale or "", 1.0)


def same_number(x: float, cell: Cell, rel: float = 1e-6) -> bool:
    """Does literal ``x`` state ``cell`` (as written, sign dropped, or at another scale)?"""
    a, b = abs(float(x)), abs(cell.value)
    if abs(a - b) <= rel * max(a, b, 1e-12):
        return True
    if cell.scale in ("thousand", "million", "billion"):
        units = normalised(cell.value, cell.scale)
        for f in (1.0, 1e3, 1e6, 1e9):
            if abs(a * f - units) <= rel * max(units, 1e-12):
                return True
    return cell.percent and abs(a * 100 - b) <= rel * max(b, 1e-12)
