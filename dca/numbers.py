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


# --------------------------------------------------------------------------- numbers written in words

_UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * (i + 2) for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split())}
# words that state a multiple or a fraction: "twice" is 2, "a third" is 3 parts (1/3 each)
_MULTIPLES = {
    "twice": (2,), "double": (2,), "doubled": (2,), "doubles": (2,), "pair": (2,), "couple": (2,),
    "triple": (3,), "tripled": (3,), "triples": (3,), "thrice": (3,), "quadruple": (4,), "quadrupled": (4,),
    "half": (2, 0.5), "halves": (2, 0.5), "halved": (2, 0.5), "dozen": (12,), "dozens": (12,),
}
_ORDINALS = {w: i for i, w in enumerate(
    "_ _ _ third fourth fifth sixth seventh eighth ninth tenth".split()) if w != "_"}
_ORDINALS["quarter"] = 4
_WORD_RE = re.compile(r"[a-z]+")
_FRACTION_RE = re.compile(r"(?<![\d.,/])(\d+)\s*/\s*(\d+)(?![\d.,/])")
_ORDINAL_DIGITS_RE = re.compile(r"(?<![\d.,])(\d+)(?:st|nd|rd|th)\b")
_AND_A_HALF_RE = re.compile(r"(?<![\d.,])(\d+)\s+(?:and\s+a\s+half|1/2|½)")
_SCALED_RE = re.compile(r"(?<![\d.,])(\d[\d,]*(?:\.\d+)?)\s*(thousand|million|billion)\b", re.I)


def spelled_numbers(text: str) -> list[float]:
    """Values a text states without writing them as one plain number: number words ("twenty-five",
    "three hundred"), multiples and fractions ("twice" 2, "half" 2 and 0.5, "a third" 3 and 1/3,
    "dozen" 12, "one and a half" 1.5), digit fractions and ordinals ("3/4" 0.75, "4th" 4) and
    scaled numbers ("2.5 million" 2500000)."""
    t = (text or "").lower()
    out: list[float] = []
    words = _WORD_RE.findall(t.replace("-", " "))
    current: float | None = None
    previous: float | None = None
    for w in words + [""]:
        if w in _UNITS or w in _TENS:
            v = _UNITS.get(w, _TENS.get(w, 0))
            joins = current is not None and ((current >= 100 and current % 100 == 0) or
                                             (v < 10 and current % 10 == 0 and 20 <= current % 100 <= 90))
            if current is not None and not joins:
                out.append(float(current))
            current = current + v if joins else v
            continue
        if w == "hundred":  # "three hundred", or "a hundred"
            current = 100 if current is None else current * 100
            continue
        if w in ("thousand", "million", "billion") and current is not None:
            current *= SCALES[w]
            continue
        before = current if current is not None else previous  # "one and a half", "two thirds"
        if current is not None:
            out.append(float(current))
        current = None
        previous = before if w in ("and", "a", "an") else None
        if w in _MULTIPLES:
            out.extend(float(v) for v in _MULTIPLES[w])
            if w == "half" and before is not None:
                out.append(before + 0.5)
        base = w[:-1] if w.endswith("s") and w[:-1] in _ORDINALS else w
        if base in _ORDINALS:
            n = _ORDINALS[base]
            out.extend((float(n), 1.0 / n) + ((before / n,) if before else ()))
    for m in _FRACTION_RE.finditer(t):
        den = float(m.group(2))
        if den:
            out.append(float(m.group(1)) / den)
    for m in _ORDINAL_DIGITS_RE.finditer(t):  # "4th" is glued to letters, so find_numbers skips it
        out.append(float(m.group(1)))
    for m in _AND_A_HALF_RE.finditer(t):
        out.append(float(m.group(1)) + 0.5)
    for m in _SCALED_RE.finditer(t):
        out.append(float(m.group(1).replace(",", "")) * SCALES[m.group(2).lower()])
    return out
