"""Tables as facts: one fact per data row, with the column headers and the scale attached.

A retrieved number is useless without what it measures, so the row
``["Fixed Price", "$  1,452.4", "$  1,146.2"]`` under the headers ``2019`` / ``2018`` becomes
``"Fixed Price: 2019 = $1,452.4; 2018 = $1,146.2 (Years Ended September 30; in millions)"``.

Report tables come in many shapes (TAT-QA, FinQA, CSV, markdown): several header rows, headers
that span columns, empty header cells, a scale written as a caption ("( in thousands )", "€m",
"$'000"), section rows ("Assets") that label the rows under them. The header block is found
from the data: the rows above the first row holding a number that is not a year.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from dca.numbers import parse_number
from retrieval.facts import Fact

_WORD_SCALE = re.compile(r"(?i)(?:\bin\s*)?(thousand|million|billion)s?\b")
_THOUSAND_MARK = re.compile(r"(?i)(?:[$€£¥]|\bUSD|\bRMB)\s*[’'‘]?\s*000\b|[’'‘]\s*000\b|\(1,000\)")
_MILLION_MARK = re.compile(r"(?:[$€£¥]|\bUSD|\bRMB)\s*[mM]\b|^\s*M\s*$|\bMM\b|\$M\b")
_BILLION_MARK = re.compile(r"(?:[$€£¥])\s*bn?\b")
_CURRENCY = re.compile(r"(US\$|S\$|[$€£¥]|\bUSD\b|\bRMB\b|\bEUR\b|\bGBP\b)")
# words that may surround a scale marker without carrying meaning of their own
_FILLER = {"in", "of", "dollars", "dollar", "usd", "us", "u.s.", "u.s", "us$", "s$", "rmb", "nt",
           "eur", "gbp", "euros", "euro", "figures", "all"}
_SCALE_TEXT = {"thousand": "in thousands", "million": "in millions", "billion": "in billions"}


def clean_cell(text: object) -> str:
    """Normalise a cell or sentence as reports and FinQA's tokeniser write them.

    ``"$  1,452.4"`` -> ``"$1,452.4"``, ``"54.6% ( 54.6 % )"`` -> ``"54.6%"``,
    ``"( in thousands )"`` -> ``"(in thousands)"``, ``"2 0 1 8"`` -> ``"2018"``.
    """
    s = " ".join(str(text if text is not None else "").split())
    s = re.sub(r"(\d[\d,]*(?:\.\d+)?)%\s*\(\s*\1\s*%\s*\)", r"\1%", s)
    s = re.sub(r"-(\d[\d,]*(?:\.\d+)?)\s*\(\s*\1\s*\)", r"-\1", s)  # FinQA "-12034 ( 12034 )"
    s = re.sub(r"([$€£¥])\s+(?=[\d(.\-])", r"\1", s)
    s = re.sub(r"\(\s+([^()]*?)\s+\)", r"(\1)", s)
    s = re.sub(r"\(\s+([^()]*?)\)", r"(\1)", s)
    s = re.sub(r"\(([^()]*?)\s+\)", r"(\1)", s)
    s = re.sub(r"\b(\d) (\d) (\d) (\d)\b", r"\1\2\3\4", s)
    return s


def find_scale(text: str) -> tuple[str, str, str]:
    """``(scale, currency, rest)`` of a header or caption: ``"($ in millions)"`` -> ("million", "$", "").

    ``scale`` is "thousand" / "million" / "billion" or ""; ``rest`` is what the text says besides
    the scale (empty when the cell is only a scale marker).
    """
    s = text or ""
    scale, span = "", None
    for pattern, name in ((_WORD_SCALE, ""), (_THOUSAND_MARK, "thousand"), (_MILLION_MARK, "million"),
                          (_BILLION_MARK, "billion")):
        m = pattern.search(s)
        if m:
            scale, span = (name or m.group(1).lower()), m.span()
            break
    if not scale:
        return "", "", s
    cur = _CURRENCY.search(s)
    rest = s[: span[0]] + " " + s[span[1]:]
    rest = _CURRENCY.sub(" ", rest)
    words = [w for w in re.split(r"[\s(),:;’'‘]+", rest) if w and w.lower() not in _FILLER]
    return scale, (cur.group(1) if cur else ""), " ".join(words)


_CAPTION_SCALE = re.compile(
    r"(?i)\(\s*(?:[$€£¥]\s*|dollars\s+|u\.?s\.?\s+dollars\s+)?in\s+(thousands|millions|billions)\b"
    r"|(?:[$€£¥]|dollars)\s+in\s+(thousands|millions|billions)\b")


_DATA_LIKE = re.compile(r"[$€£¥]\s*\(?\d|\d\.\d|\d,\d{3}|\d\s*%")


def caption_scale(text: str) -> str:
    """The scale a caption line declares for the table under it ("( in thousands )", "$ in millions"), or ""."""
    m = _CAPTION_SCALE.search(text or "")
    return (m.group(1) or m.group(2)).lower().rstrip("s") if m else ""


def _is_value(cell: str) -> bool:
    """A data number: parses as a number and is not a year heading."""
    v = parse_number(cell)
    if v is None:
        return False
    return not (v.is_integer() and 1900 <= v <= 2100 and "," not in cell and "." not in cell)


def count_header_rows(rows: list[list[str]]) -> int:
    """How many leading rows are headers: those above the first row with a (non-year) number."""
    first = next((i for i, row in enumerate(rows) if any(_is_value(c) for c in row[1:])), None)
    if first is None:  # an all-text table: its first row names the columns
        return 1 if len(rows) > 1 else 0
    h = 0
    for i in range(first):
        if i > 0 and not any(rows[i][1:]):
            break  # a label with no values under the headers is a section row ("Assets")
        h = i + 1
    return h if h <= 4 else 1


@dataclass
class _Header:
    columns: list[str]
    captions: list[str] = field(default_factory=list)
    scale: str = ""
    currency: str = ""
    scale_in_text: bool = False


def _caption(cell: str) -> str:
    cell = cell.rstrip(":,").strip()
    return cell[1:-1].strip() if cell.startswith("(") and cell.endswith(")") else cell


def _read_header(header: list[list[str]], ncols: int) -> _Header:
    """Column labels from the header block; spanning cells and column-0 cells become captions."""
    parts: list[list[str]] = [[] for _ in range(ncols)]
    out = _Header(columns=[""] * ncols)

    def note_scale(cell: str) -> str:
        scale, cur, rest = find_scale(cell)
        if not scale:
            return cell
        if not out.scale:
            out.scale, out.currency = scale, cur
        if rest and not re.fullmatch(r"\d{4}", rest) and ncols > 2:
            out.scale_in_text = True  # may be one column's own unit: "Shares (in thousands)"
            return cell
        return rest  # a marker ("€m"), a year with one ("2019 €m"), or the only column's label

    for r, row in enumerate(header):
        cells = [note_scale(c) for c in row]
        if cells[0]:
            out.captions.append(_caption(cells[0]))
        data = cells[1:]
        filled = [j for j, c in enumerate(row[1:]) if c]
        if len(filled) == 1 and len(data) >= 2:
            if not data[filled[0]]:
                continue  # a lone scale marker
            out.captions.append(_caption(data[filled[0]]))
            continue
        if r < len(header) - 1:  # an upper header cell spans the empty cells to its right
            last = ""
            for j, c in enumerate(data):
                last = c or last
                data[j] = last
        for j, c in enumerate(data):
            if c and (not parts[j + 1] or parts[j + 1][-1] != c):
                parts[j + 1].append(c.rstrip(":,"))
    out.columns = [" ".join(p) for p in parts]
    return out


def _share_pairs(grid: list[list[str]], h: int, head: _Header) -> None:
    """Re-seat the headings of "amount | share %" column pairs that lost their empty cells.

    A report writes ``2013 | | 2012 |`` over ``$1295 | 55% | $705 | 44%``, each year spanning an
    amount and its percentage; extracted tables (FinQA's among them) drop the empty heading cells,
    leaving ``2013 | 2012 | |`` and 2012 over a 2013 share. Where the data columns alternate amount /
    percentage, two pairs or more, and the one header row names exactly one heading per pair, each
    heading goes over its amount and, with " %", over its share.
    """
    body = [row for row in grid[h:] if row[0] and any(row[1:])]
    ncols = len(grid[0])
    if h != 1 or len(body) < 2 or ncols < 5 or (ncols - 1) % 2:
        return

    def percent_column(j: int) -> bool | None:
        filled = [row[j] for row in body if row[j]]
        if not filled:
            return None
        share = sum("%" in c for c in filled) / len(filled)
        return True if share >= 0.8 else False if share == 0 else None

    kinds = [percent_column(j) for j in range(1, ncols)]
    if kinds != [False, True] * ((ncols - 1) // 2):
        return
    cells = grid[0][1:]
    named = [c for c in cells if c and not find_scale(c)[0]]
    if len(named) != (ncols - 1) // 2 or [i for i, c in enumerate(cells) if c in named] == \
            list(range(0, ncols - 1, 2)):
        return  # one heading per pair, not already over the amounts
    # what else the row says is a caption ("( in millions except percentages )"); a bare scale
    # marker is already the header's scale
    head.captions += [_caption(c) for c in cells if c and c not in named and find_scale(c)[2]]
    for k, name in enumerate(c.rstrip(":,") for c in named):
        head.columns[1 + 2 * k], head.columns[2 + 2 * k] = name, f"{name} %"


def _context(head: _Header) -> str:
    """What a row's fact ends with: the captions and the scale, ``" (Fiscal 2019; in millions)"``."""
    context = list(head.captions)
    if head.scale and not head.scale_in_text:
        context.append(f"{head.currency} {_SCALE_TEXT[head.scale]}".strip())
    return f" ({'; '.join(context)})" if context else ""


def _header_blocks(grid: list[list[str]], start: int) -> dict[int, list[int]]:
    """Rows from ``start`` on that head what follows rather than hold data (no row label, some
    text, no data number), by their first row. One alone with a single filled cell is a section
    title in column 1 ("Balance Sheet Data:"); two or more in a row are a new header block (a table
    that stacks a "Fiscal 2019" and a "Fiscal 2018" half, each under its own headers). Either must
    be followed by a labelled row with a data number; a lone row of several text cells (dates,
    "1:1") stays data."""
    like = [i for i in range(start, len(grid)) if not grid[i][0] and any(grid[i][1:])
            and not any(_is_value(c) for c in grid[i][1:])]
    runs: list[list[int]] = []
    for i in like:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])

    def heads_data(run: list[int]) -> bool:  # a labelled row with a data number comes next
        after = run[-1] + 1
        return after < len(grid) and bool(grid[after][0]) and any(_is_value(c) for c in grid[after][1:])

    return {run[0]: run for run in runs
            if heads_data(run) and (len(run) > 1 or sum(bool(c) for c in grid[run[0]][1:]) == 1)}


def _restart(old: _Header, new: _Header) -> _Header:
    """The header under a new header block: its columns (the old one's where it names none) and
    captions; the scale the table declared stays unless the block declares its own."""
    new.columns = [n or o for n, o in zip(new.columns, old.columns)]
    if not new.scale:
        new.scale, new.currency, new.scale_in_text = old.scale, old.currency, old.scale_in_text
    return new


def table_to_facts(rows: list[list[str]], *, title: str = "", source: str = "", scale_hint: str = "",
                   header_rows: int | None = None, id_prefix: str = "") -> list[Fact]:
    """One ``Fact`` per data row: ``"label: column = value; ... (caption; in millions)"``.

    ``header_rows`` fixes the header block (default: detected). ``scale_hint`` is a caption found
    outside the table ("$ in millions"); a scale written in the table wins over it. Ids are
    ``"<id_prefix or source>#row<i>"`` with ``i`` the row's index in ``rows``.
    """
    if not rows:
        return []
    ncols = max(len(r) for r in rows)
    grid = [[clean_cell(c) for c in r] + [""] * (ncols - len(r)) for r in rows]
    h = count_header_rows(grid) if header_rows is None else max(0, min(header_rows, len(grid)))
    head = _read_header(grid[:h], ncols)
    _share_pairs(grid, h, head)
    if not head.scale and scale_hint:
        head.scale, head.currency, _ = find_scale(scale_hint)
    tail = _context(head)
    prefix = id_prefix or source or "table-" + hashlib.sha1(repr((title, rows)).encode()).hexdigest()[:12]
    lead = f"{clean_cell(title)} — " if title else ""

    facts: list[Fact] = []
    for i in range(h):  # data hiding in a header row ("2002 first quarter | high $ 17.84") stays findable
        if any(_DATA_LIKE.search(c) and not find_scale(c)[0] for c in grid[i][1:]):
            cells = "; ".join(c for c in grid[i][1:] if c)
            facts.append(Fact(f"{prefix}#row{i}", f"{lead}{grid[i][0] or 'header'}: {cells}", {
                "kind": "table_row", "row": i, "source": source, "scale": head.scale, "label": grid[i][0],
                "section": "", "columns": "", "caption": "", "title": title, "header": True}))
    section = ""
    blocks = _header_blocks(grid, h) if header_rows is None else {}  # a caller's fixed header is the header
    inside = {j for block in blocks.values() for j in block}
    for i in range(h, len(grid)):
        label, values = grid[i][0].rstrip(": "), grid[i][1:]
        if i in blocks:
            block = [grid[j] for j in blocks[i]]
            if len(block) == 1:  # a section title in column 1
                section = next(v for v in values if v).rstrip(": ")
                continue
            head = _restart(head, _read_header(block, ncols))
            tail, section = _context(head), ""
        if i in inside:
            continue
        if not any(values):
            section = label
            continue
        cells = [f"{head.columns[j + 1]} = {v}" if head.columns[j + 1] else v
                 for j, v in enumerate(values) if v]
        name = f"{section} — {label}" if section and label else (label or section or f"row {i}")
        text = f"{lead}{name}: {'; '.join(cells)}{tail}"
        facts.append(Fact(f"{prefix}#row{i}", text, {
            "kind": "table_row", "row": i, "source": source, "scale": head.scale, "label": label,
            "section": section, "columns": " | ".join(head.columns[1:]), "caption": "; ".join(head.captions),
            "title": title,
        }))
    return facts
