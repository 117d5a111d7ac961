"""Numbers as reports write them: "$ 1,452.4", "(123)", "5.2%", "3.1 million", "-".

Used by table-to-fact conversion, the verifier's grounding check and lookup value extraction, so
that "5,829" in a document and ``5829`` in a step are recognised as the same number.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

SCALES = {
    "thousand": 1e3, "thousands": 1e3, "k": 1e3,
    "million": 1e6, "millions": 1e6, "mn": 1e6, "mm": 1e6, "m": 1e6,
    "billion": 1e9, "billions": 1e9, "bn": 1e9, "b": 1e9,
    "percent": 1.0, "%": 1.0,
}

# A number with optional sign, currency, thousands separators, decimals, percent, and
# accounting-style parentheses for negatives.
_NUM_RE = re.compile(
    r"(?P<open>\()?\s*(?P<sign>[-−–])?\s*(?P<cur>[$€£¥])?\s*(?P<sign2>[-−–])?"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?P<pct>\s*%)?\s*(?P<close>\))?"
)


@dataclass(frozen=True)
class Number:
    """A number found in text: its value as written (sign applied), and where it was."""

    value: float
    text: str
    start: int
    end: int
    percent: bool = False

    @property
    def is_year(self) -> bool:
        return (not self.percent and self.value.is_integer() and 1900 <= self.value <= 2100
                and "," not in self.text and "." not in self.text)


def parse_number(text: str) -> float | None:
    """The value of a cell or token like "$ 1,452.4", "(123)", "12.5%", "-"; None if not a number.

    Percent signs are dropped (``"12.5%" -> 12.5``): whether a value is a ratio or a percentage
    is decided by the question, not the cell.
    """
    if text is None:
        return None
    s = str(text).strip().replace("\u2212", "-").replace("\u2013", "-")
    if not s or s in {"-", "—", "–", "n/a", "N/A", "nm", "NM"}:
        return None
    s = re.sub(r"^([$€£¥])\s*\(", r"(\1", s)  # "$ (25.3)" -> "($25.3)"
    m = _NUM_RE.fullmatch(s.strip())
    if not m:
        # tolerate trailing footnote markers and words: "1,234 (a)" / "$ 5 million"
        m = _NUM_RE.match(s)
        if not m or m.start() != 0:
            return None
        rest = s[m.end():].strip().lower()
        if rest and rest.split()[0].strip(".,;") not in SCALES and not re.fullmatch(r"\(?[a-z0-9]\)?\*?", rest):
            return None
    return _value(m)


def _value(m: re.Match) -> float:
    v = float(m.group("num").replace(",", ""))
    negative = bool(m.group("sign") or m.group("sign2"))
    if m.group("open") and m.group("close"):
        negative = True
    return -v if negative else v


def find_numbers(text: str) -> list[Number]:
    """Every number in a text, in order, with accounting negatives and percents recognised."""
    out: list[Number] = []
    for m in _NUM_RE.finditer(text or ""):
        num = m.group("num")
        # a digit run glued to letters ("q4", "10-k", "co2") is a name, not a quantity
        before = text[m.start("num") - 1] if m.start("num") > 0 else " "
        after = text[m.end("num")] if m.end("num") < len(text) else " "
        if before.isalpha() or (after.isalpha() and after.lower() not in "kmb"):
            continue
        paren = bool(m.group("open") and m.group("close"))
        v = float(num.replace(",", ""))
        neg = bool(m.group("sign") or m.group("sign2")) or paren
        # "2014-2015": the dash is a range, not a sign
        if m.group("sign") and m.start() > 0 and text[m.start() - 1].isdigit():
            neg = paren
        out.append(Number(-v if neg else v, m.group(0).strip(), m.start(), m.end(), bool(m.group("pct"))))
    return out


def number_pool(texts: list[str] | str, include_abs: bool = True) -> set[float]:
    """The set of values a text mentions (and their absolute values), for grounding checks."""
    if isinstance(texts, str):
        texts = [texts]
    pool: set[float] = set()
    for t in texts:
        for n in find_numbers(t):
            pool.add(round(n.value, 9))
            if include_abs:
                pool.add(round(abs(n.value), 9))
    return pool


def in_pool(x: float, pool: set[float] | list[float], rel_tol: float = 1e-6, scales: bool = False) -> bool:
    """Is ``x`` one of the numbers in ``pool`` (optionally up to a ×100 / ×1000 scale change)?"""
    if x is None or isinstance(x, bool):
        return False
    factors = (1.0, 100.0, 0.01, 1e3, 1e-3, 1e6, 1e-6) if scales else (1.0,)
    for p in pool:
        for f in factors:
            if math.isclose(abs(x), abs(p) * f, rel_tol=rel_tol, abs_tol=1e-9):
                return True
    return False


def scale_of(text: str) -> float:
    """The scale a header or caption declares: "( in millions )" -> 1e6, else 1."""
    t = (text or "").lower()
    for word, f in (("billion", 1e9), ("million", 1e6), ("thousand", 1e3)):
        if word in t:
            return f
    return 1.0
