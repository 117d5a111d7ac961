"""The docqa reasoner: a ``dca.abilities.Logic`` that writes step traces from program shapes.

For a question and its retrieved facts it
1. classifies the program shape (change, percent change, ratio, sum, average, comparison, ...)
   from the question's MiniLM embedding and a few cue words;
2. scores every number cell of the facts as an operand (MiniLM similarity of the question to the
   cell's row label, year and column matches, the fact's rank, ...);
3. fills each likely shape with the best operands, and ranks the filled traces with a learned
   trace ranker whose probability is the trace's confidence.

Traces are proposed best first; the graph executes and verifies each line, and on a failure asks
again with the rejected lines to avoid, which yields the next candidate. When the question names
a year that none of the facts read states, the first step is a lookup for it
(``x1 = lookup("net sales 2016")``): the graph asks the knowledge store, the facts it fetches
join the ones read, and the trace goes on from all of them (a second hop). ``TraceConfidence`` (the
verifier's ``step_scorer``) rejects a step whose trace the ranker is not confident in, so a
doubtful answer ends "unverified" rather than stated.
"""
from __future__ import annotations

import json
import math
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from itertools import permutations
from pathlib import Path
from typing import Any

from agents.docqa.cells import YEAR, Cell, fact_years, operand_cells, years_apart
from agents.docqa.shapes import NAMES, SHAPES, Shape
from dca.abilities import Proposal, ProposeRequest
from dca.types import Compute, Evidence, Step

OTHER = "other"
SHAPE_LABELS = NAMES + [OTHER]
_CUES = ("percent", "percentage", "%", "change", "increase", "decrease", "difference", "average", "mean", "total",
         "sum", "combined", "ratio", "portion", "proportion", "share", "greater", "more than", "higher", "exceed",
         "growth", "times", "multiple", "how much", "what was", "what is", "rate", "per", "compared", "from",
         "which year", "larger", "largest", "lower", "lowest", "less")
_RATIO_Q = re.compile(r"\bratio\b|\btimes\b", re.I)  # "the ratio of A to B", "A was how many times B"
_DIFFERENCE_Q = re.compile(r"\bdifference\b|\brange\b", re.I)  # "the range of X from 2013-2017" is max - min
# "in which year was X larger?", "which FY has a higher EBITDA?": the answer is a year (all 46 such
# training questions are answered by one)
_WHICH_YEAR = re.compile(r"\bwhich (?:fiscal )?(?:year|fy)s?\b|\bwhat year\b", re.I)
# "the change in the percentage of sales represented by gross profit": a difference of two
# percentages (percentage points), not a percentage change (all 4 such training questions subtract)
_POINTS_Q = re.compile(r"\bchange\s+in\s+(?:the\s+)?(?:percentages?|percent|proportion|portion)\b(?!\s+change)|"
                       r"\bpercentage\s+points?\b", re.I)
_PERCENT_Q = re.compile(r"\bpercent(age)?\b(?!\s+points?)|%|\bgrowth rate\b", re.I)
# "did X increase between 2008 and 2009?": a yes/no comparison of one thing in two years
_ROSE_Q = re.compile(r"\b(?:increase|increased|rise|rose|grow|grew|go up|went up)\b", re.I)
_FELL_Q = re.compile(r"\b(?:decrease|decreased|decline|declined|fall|fell|drop|dropped|go down|went down)\b", re.I)
_WORD = re.compile(r"[a-z]+")
_STOP = frozenset("the of in and a an to for on at by is was what were from as with how much many does did do "
                  "this that its it be are during year years total amount".split())
# words that name the operation, not what it is computed on: no fact states them
_OPERATION = frozenset("percentage percent percentual change changes ratio portion proportion share difference "
                       "increase increased decrease decreased growth grew average mean compared comparison between "
                       "net rate much many value sum combined greater higher lower more less than times per "
                       "five three two four period ended end".split())
_NAME = re.compile(r"\bx(\d+)\b")
LOOKUP_STEP = "x1 = lookup("  # how a trace's first step, a lookup, begins (``lookup_line``)
CELL_FEATURES = ("label_sim", "label_covered", "question_covered", "year_in_question", "other_year",
                 "column_words", "fact_rank", "is_table", "value_in_question", "percent_cell",
                 "percent_both", "total_both", "zero", "operand_reader", "bias")
TRACE_FEATURES = ("shape_logp", "operand_mean", "operand_min", "same_row", "same_column", "same_fact",
                  "year_order", "part_of_whole", "mention_order", "equal_values", "ratio_result_large",
                  "result_zero", "percent_mismatch", "slots", "coverage", "years_covered", "whole_total",
                  "unit_ratio", "quoted_operands", "ratio_mention_order", "difference_sign") + \
    tuple(f"shape_{n}" for n in NAMES) + \
    tuple(f"ratio_page_shape_{n}" for n in NAMES)
# the lists a build records in its config.json, which the code loading it must have too
HEAD_LISTS = {"shapes": SHAPE_LABELS, "trace_features": list(TRACE_FEATURES), "cell_features": list(CELL_FEATURES)}


def words(text: str) -> set[str]:
    return {w for w in _WORD.findall((text or "").lower()) if w not in _STOP and len(w) > 1}


def cue_vector(question: str) -> list[float]:
    q = question.lower()
    return [1.0 if c in q else 0.0 for c in _CUES]


def asks_percent(question: str) -> bool:
    return bool(_PERCENT_Q.search(question))


@dataclass
class Question:
    text: str
    words: set[str]
    years: list[int]
    numbers: set[float]
    percent: bool

    @classmethod
    def of(cls, text: str) -> "Question":
        from dca.numbers import find_numbers

        nums = {round(abs(n.value), 6) for n in find_numbers(text) if not n.is_year}
        return cls(text, words(text), [int(y) for y in YEAR.findall(text)], nums, asks_percent(text))


def cell_features(q: Question, cell: Cell, label_sim: float, reader: float = 0.0) -> list[float]:
    lab = words(cell.label)
    col_years = cell.years if cell.kind == "table" or cell.stated_year else []
    col_words = words(YEAR.sub(" ", cell.column)) if cell.kind == "table" else set()
    return [
        label_sim,
        len(q.words & lab) / max(1, len(lab)),
        len(q.words & lab) / max(1, len(q.words)),
        1.0 if col_years and any(y in q.years for y in col_years) else 0.0,
        1.0 if col_years and q.years and not any(y in q.years for y in col_years) else 0.0,
        len(q.words & col_words) / max(1, len(col_words)) if col_words else 0.0,
        1.0 / (1 + cell.rank),
        1.0 if cell.kind == "table" else 0.0,
        1.0 if round(abs(cell.value), 6) in q.numbers else 0.0,
        1.0 if cell.percent else 0.0,
        1.0 if cell.percent and q.percent else 0.0,
        1.0 if "total" in cell.label.lower() and "total" in q.text.lower() else 0.0,
        1.0 if cell.value == 0 else 0.0,
        reader,
        1.0,
    ]


def _named(c: Cell) -> set[str]:
    """The words a cell's row label and column header name it by (years aside)."""
    return words(c.label) | words(YEAR.sub(" ", c.column))


def _stated_years_differ(a: Cell, b: Cell) -> bool:
    """Both are paragraph amounts a "respectively" clause gives years, and the years differ."""
    return bool(a.stated_year and b.stated_year and a.stated_year != b.stated_year)


def _mention_order(q: Question, a: Cell, b: Cell) -> float:
    """1 when the question names ``a`` before ``b``, -1 after, 0 when it cannot tell: by the words
    and years that tell the two apart ("receivables" and "liabilities" of "breast implant ...")."""
    # two amounts of one "respectively" clause are told apart by their years alone: the words around
    # each are the clause's, in no order the question follows
    by_year = _stated_years_differ(a, b)

    def said(c: Cell) -> set[str]:
        return {str(c.stated_year)} if by_year else _named(c) | {str(y) for y in c.years}

    text = q.text.lower()

    def first(own: set[str]) -> int:
        spots = [m.start() for w in own if (m := re.search(r"\b" + re.escape(w), text))]
        return min(spots) if spots else 10_000

    sa, sb = said(a), said(b)
    pa, pb = first(sa - sb), first(sb - sa)
    return 0.0 if pa == pb else (1.0 if pa < pb else -1.0)


def greater_order(q: Question, a: Cell, b: Cell) -> float:
    """Which way round a yes/no comparison ``A > B`` reads the question: 1 for ``a > b``, -1 for
    ``b > a``, 0 when it cannot tell. "Did X increase between 2008 and 2009?" puts the later year
    first (X 2009 > X 2008; "decrease", the earlier); otherwise what the question names first is
    ``A`` ("did JPMorgan outperform the S&P 500?", "more on advertising than on research"). All 8
    FinQA training comparisons read so."""
    rose, fell = bool(_ROSE_Q.search(q.text)), bool(_FELL_Q.search(q.text))
    if years_apart(a, b) and rose != fell:
        later = 1.0 if a.years[0] > b.years[0] else -1.0
        return later if rose else -later
    return _mention_order(q, a, b)


def trace_features(q: Question, shape: Shape, shape_logp: float, cells: list[Cell], logits: list[float],
                   value: Any, percent: str = "percent") -> list[float]:
    """The trace ranker's features (``TRACE_FEATURES``); shapes are one-hot twice, the second time
    only on "ratio" (FinQA-style) pages, whose questions favour other shapes."""
    a, b = cells[0], cells[-1]
    two = len(cells) >= 2
    year_order = 0.0
    if two and shape.order == "later" and a.years and b.years and a.years[0] != b.years[0]:
        year_order = 1.0 if a.years[0] > b.years[0] else -1.0
    part = 0.0
    if two and shape.order == "part" and abs(b.value) > 0:
        part = 1.0 if abs(a.value) <= abs(b.value) else -1.0
    mention = _mention_order(q, a, b) if two else 0.0
    num = isinstance(value, (int, float)) and not isinstance(value, bool)
    # "the ratio of A to B", "A was how many times B": the question states the order, so neither
    # part-of-whole nor a small result is evidence for one (FinQA's "ratio of receivables to
    # liabilities" is 18.6, and the priors put 7 / 130 first). Table cells, or paragraph numbers a
    # "respectively" clause gives years: a paragraph's number is otherwise labelled by the words
    # around it, which often name both operands ("$0.6 million and $0.8 million ... in 2015 and 2014")
    ratio_q = bool(_RATIO_Q.search(q.text))
    stated = two and ratio_q and shape.order == "part" and mention != 0 and \
        (a.kind == b.kind == "table" or _stated_years_differ(a, b))
    if stated:
        part = 0.0
    said = set().union(*(_named(c) for c in cells))
    years = {y for c in cells for y in c.years}
    whole = 0.0
    if two and (shape.order == "part" or shape.name == "share_of_sum"):
        a_total, b_total = ("total" in a.label.lower()), ("total" in b.label.lower())
        whole = 0.0 if a_total == b_total else (1.0 if b_total else -1.0)
    one_hot = [1.0 if shape.name == n else 0.0 for n in NAMES]
    return [
        shape_logp,
        sum(logits) / len(logits),
        min(logits),
        1.0 if two and a.row >= 0 and all(c.row == a.row and c.fact_id == a.fact_id for c in cells) else 0.0,
        1.0 if two and a.column and all(c.column == a.column for c in cells) else 0.0,
        1.0 if two and all(c.fact_id == a.fact_id for c in cells) else 0.0,
        year_order,
        part,
        mention,
        1.0 if two and len({c.value for c in cells}) < len(cells) else 0.0,
        1.0 if num and shape.percent_step and abs(value) > 10 and not stated else 0.0,
        1.0 if num and value == 0 else 0.0,
        1.0 if shape.percent_step != q.percent and shape.name in ("change_ratio", "divide") else 0.0,
        float(len(cells)),
        len(q.words & said) / max(1, len(q.words)),
        len(set(q.years) & years) / len(set(q.years)) if q.years else 0.0,
        whole,
        1.0 if num and shape.percent_step and 0 < abs(value) <= 1 and not stated else 0.0,
        float(sum(round(abs(c.value), 6) in q.numbers for c in cells)),
        mention if ratio_q else 0.0,  # a ratio's order is the question's, not part and whole
        # "the difference between A and B" is mostly stated positive (89 % of TAT-QA's training ones)
        float((value > 0) - (value < 0)) if num and shape.name == "subtract" and _DIFFERENCE_Q.search(q.text) else 0.0,
    ] + one_hot + [v if percent == "ratio" else 0.0 for v in one_hot]


@dataclass
class Candidate:
    """A filled shape: its step lines, operands, value and the ranker's probability."""

    lines: list[str]
    shape: str
    cells: list[Cell]
    features: list[float]
    value: Any = None
    score: float = 0.0
    logit: float = 0.0


@dataclass
class Heads:
    """The trained heads: linear layers over features (weights as plain lists of floats)."""

    shape_w: list[list[float]]
    shape_b: list[float]
    operand_w: list[float]
    trace_w: list[float]
    null_bias: float
    threshold: float
    config: dict[str, Any] = field(default_factory=dict)
    fact_w: list[float] = field(default_factory=list)
    fact_w_ratio: list[float] = field(default_factory=list)  # the fact ranker for "ratio" (FinQA-style) pages
    directory: str = ""  # where the heads were loaded from (the fact reranker sits beside them)

    def fact_weights(self, percent: str = "percent") -> list[float]:
        """The fact ranker's weights for pages of this percent convention."""
        return (self.fact_w_ratio or self.fact_w) if percent == "ratio" else self.fact_w

    def fact_fusion(self, percent: str = "percent") -> list[float] | None:
        """The learnt fusion of fact ranker and reranker for pages of this percent convention
        (``FUSION_FEATURES`` order), or ``None``: fuse by reciprocal rank (an older build)."""
        return (self.config.get("fact_fusion") or {}).get(percent)

    def fact_reranker(self) -> Any:
        """The cross-encoder over (question, fact) trained with these heads, or ``None`` (an older build)."""
        return self._beside("fact_reranker")

    def operand_reader(self) -> Any:
        """The fine-tuned cell reader (a ``CrossEncoder`` over (question, ``cell_text``), one logit:
        is this cell an operand?) trained with these heads, or ``None`` (an older build)."""
        return self._beside("operand_reader")

    def shape_reader(self) -> Any:
        """The fine-tuned question reader (a ``CrossEncoder`` over (percent convention, question),
        one logit per shape) trained with these heads, or ``None`` (an older build)."""
        return self._beside("shape_reader")

    def _beside(self, key: str) -> Any:
        """The (cached) ``CrossEncoder`` in the folder beside the heads that ``config[key]`` names."""
        name = self.config.get(key)
        if not name or not self.directory or not (Path(self.directory) / name / "config.json").exists():
            return None
        from retrieval.models import load_reranker

        return load_reranker(str(Path(self.directory) / name))

    @classmethod
    def load(cls, directory: str | Path) -> "Heads":
        from safetensors.numpy import load_file

        directory = Path(directory)
        cfg_path = directory / "config.json"
        if not cfg_path.exists():
            raise FileNotFoundError(f"docqa reasoner: {cfg_path} not found (build it with python -m agents.docqa.train)")
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
        for key, ours in HEAD_LISTS.items():
            if key in cfg and cfg[key] != ours:
                raise ValueError(f"docqa reasoner: {cfg_path}: field {key!r} lists {len(cfg[key])} entries, this "
                                 f"docqa has {len(ours)} ({_first_difference(cfg[key], ours)}); rebuild it with "
                                 f"python -m agents.docqa.train --out {directory} --rebuild")
        t = load_file(str(directory / "heads.safetensors"))
        return cls(t["shape_w"].tolist(), t["shape_b"].tolist(), t["operand_w"].tolist(), t["trace_w"].tolist(),
                   float(cfg["null_bias"]), float(cfg["threshold"]), cfg,
                   t["fact_w"].tolist() if "fact_w" in t else [],
                   t["fact_w_ratio"].tolist() if "fact_w_ratio" in t else [], str(directory))

    def save(self, directory: str | Path) -> None:
        import numpy as np
        from safetensors.numpy import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file({"shape_w": np.asarray(self.shape_w, dtype=np.float32),
                   "shape_b": np.asarray(self.shape_b, dtype=np.float32),
                   "operand_w": np.asarray(self.operand_w, dtype=np.float32),
                   "trace_w": np.asarray(self.trace_w, dtype=np.float32),
                   "fact_w": np.asarray(self.fact_w, dtype=np.float32),
                   "fact_w_ratio": np.asarray(self.fact_w_ratio, dtype=np.float32)},
                  str(directory / "heads.safetensors"))
        cfg = {**self.config, "null_bias": self.null_bias, "threshold": self.threshold, **HEAD_LISTS}
        (directory / "config.json").write_text(json.dumps(cfg, indent=1), encoding="utf-8")


def _first_difference(theirs: list[str], ours: list[str]) -> str:
    extra = [x for x in ours if x not in theirs]
    gone = [x for x in theirs if x not in ours]
    if extra:
        return f"new: {', '.join(extra[:3])}"
    return f"no longer: {', '.join(gone[:3])}" if gone else "in another order"


def _dot(w: list[float], x: list[float]) -> float:
    return sum(a * b for a, b in zip(w, x))


def softmax(xs: list[float]) -> list[float]:
    m = max(xs)
    e = [math.exp(x - m) for x in xs]
    s = sum(e)
    return [v / s for v in e]


class Featurizer:
    """Question and cell-label embeddings from the frozen MiniLM, cached per text."""

    def __init__(self, embedder: str = "all-MiniLM-L6-v2"):
        self.embedder = embedder
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> dict[str, Any]:
        from retrieval.models import embed, load_embedder

        with self._lock:
            todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
            if todo:
                for t, v in zip(todo, embed(load_embedder(self.embedder), todo)):
                    self._cache[t] = v
                while len(self._cache) > 20_000:
                    self._cache.popitem(last=False)
            return {t: self._cache[t] for t in texts}

    def question_vector(self, question: str, percent: str = "percent") -> list[float]:
        """MiniLM embedding, cue words, and the page's percent convention ("ratio" pages are
        FinQA-style reports, whose questions take other shapes than TAT-QA's)."""
        return [float(x) for x in self.embed([question])[question]] + cue_vector(question) + \
            [1.0 if percent == "ratio" else 0.0]


def shape_probs(heads: Heads, qvec: list[float]) -> list[float]:
    return softmax([_dot(w, qvec) + b for w, b in zip(heads.shape_w, heads.shape_b)])


def points_change(question: str, probs: list[float]) -> list[float]:
    """``probs`` (over ``SHAPE_LABELS``) with, for a question that asks the change in a percentage
    (``_POINTS_Q``), the probability of every shape that computes a percentage moved to ``subtract``."""
    if not _POINTS_Q.search(question):
        return probs
    moved = [p if not SHAPES[n].percent_step else 0.0 for n, p in zip(NAMES, probs)] + probs[len(NAMES):]
    moved[NAMES.index("subtract")] += sum(p for n, p in zip(NAMES, probs) if SHAPES[n].percent_step)
    return moved


def blend(linear: list[float], reader: list[float], mix: float) -> list[float]:
    """The shape distribution the reasoner uses: ``mix`` of the reader's, the rest the linear head's."""
    return [mix * r + (1 - mix) * l for l, r in zip(linear, reader)]


def cell_text(cell: Cell) -> str:
    """How the operand reader sees a cell: the row label, column and number as the fact states them
    ("net revenue; 2015 = $5,829"), or a paragraph number amid its words."""
    if cell.kind == "table":
        return f"{cell.label}; {cell.column} = {cell.text}" if cell.column else f"{cell.label}: {cell.text}"
    return f"{cell.label} {cell.text} {cell.column}".strip()


def reader_logits(reader: Any, question: str, cells: list[Cell]) -> list[float]:
    """The operand reader's logit for every cell (zeros without a reader)."""
    if reader is None or not cells:
        return [0.0] * len(cells)
    return [float(v) for v in reader.predict([(question, cell_text(c)) for c in cells], batch_size=64,
                                             show_progress_bar=False)]


def score_cells(heads: Heads | None, feat: Featurizer, q: Question, cells: list[Cell],
                reader: list[float] | None = None) -> list[tuple[Cell, list[float], float]]:
    """Every cell with its features and operand logit (best first). ``reader``: the operand
    reader's logits for ``cells`` (default: the heads' reader reads them now)."""
    emb = feat.embed([q.text] + [c.label or c.column for c in cells])
    qv = emb[q.text]
    if reader is None:
        reader = reader_logits(heads.operand_reader() if heads else None, q.text, cells)
    out = []
    for c, r in zip(cells, reader):
        sim = float(qv @ emb[c.label or c.column])
        f = cell_features(q, c, sim, r)
        out.append((c, f, _dot(heads.operand_w, f) if heads else sim))
    out.sort(key=lambda t: -t[2])
    return out


def operand_value(cell: Cell, percent: str = "percent") -> float:
    """The number a step computes with: a percent cell ("27.5%") is 0.275 where percentages are
    ratios (FinQA's convention: its programs read "27.5%" as 0.275), 27.5 elsewhere."""
    return cell.value / 100 if cell.percent and percent == "ratio" else cell.value


def build_candidates(q: Question, probs: list[float], scored: list[tuple[Cell, list[float], float]],
                     percent: str = "percent", top_shapes: int = 5, width: int = 6) -> list[Candidate]:
    """Fill the likeliest shapes with the best operand cells; every candidate is executed here."""
    from dca.reasoning.steps import Interpreter, StepError

    interp = Interpreter()
    ranked = sorted(range(len(NAMES)), key=lambda i: -probs[i])[:top_shapes]
    which_year = bool(_WHICH_YEAR.search(q.text))
    if which_year:  # a year shape is tried whatever its probability, and answers if it can
        ranked = [i for i, n in enumerate(NAMES) if SHAPES[n].years] + [i for i in ranked if not SHAPES[NAMES[i]].years]
    times100 = percent == "percent" and q.percent
    out: list[Candidate] = []
    seen: set[tuple[str, ...]] = set()
    for i in ranked:
        shape = SHAPES[NAMES[i]]
        logp = math.log(max(probs[i], 1e-9))
        for combo in _operand_sets(shape, scored, width, q):
            cells = [c for c, _, _ in combo]
            lines = shape.render([operand_value(c, percent) for c in cells], percent=times100,
                                 years=[c.years[0] for c in cells] if shape.years else None)
            key = tuple(lines)
            if key in seen:
                continue
            seen.add(key)
            try:
                value = interp.run_trace(lines).get("answer")
            except StepError:
                continue
            feats = trace_features(q, shape, logp, cells, [lg for _, _, lg in combo], value, percent)
            out.append(Candidate(lines, shape.name, cells, feats, value))
    if which_year and any(SHAPES[c.shape].years for c in out):
        out = [c for c in out if SHAPES[c.shape].years]
    return out


def _operand_sets(shape: Shape, scored: list[tuple[Cell, list[float], float]], width: int, q: Question) -> Any:
    """The operand tuples worth trying for ``shape``: orderings of the best cells, or whole table rows."""
    if shape.row:  # every number of the rows the best cells sit in
        rows: dict[str, list] = {}
        for item in scored:
            if item[0].kind == "table":
                rows.setdefault(item[0].fact_id, []).append(item)
        for fid in dict.fromkeys(c.fact_id for c, _, _ in scored[:width] if c.kind == "table"):
            row = sorted(rows[fid], key=lambda t: t[0].index)
            if len(row) >= (2 if shape.name in ("row_max", "row_min") else 3):
                yield row
        return
    pool = scored[: width if shape.slots <= 2 else 5]
    for combo in permutations(pool, shape.slots):
        cells = [c for c, _, _ in combo]
        if shape.slots == 3 and not (cells[0].index < cells[1].index < cells[2].index or
                                     cells[0].row < cells[1].row < cells[2].row):
            continue  # sums and averages of three: one order is enough
        if shape.slots == 4 and not (cells[0].fact_id == cells[1].fact_id != cells[2].fact_id == cells[3].fact_id
                                     and cells[0].column == cells[2].column):
            continue  # a gap between two rows' changes over the same columns
        if shape.name in ("add", "average", "multiply") and cells[0].index > cells[1].index and \
                cells[0].fact_id == cells[1].fact_id:
            continue
        if shape.name == "greater" and greater_order(q, cells[0], cells[1]) < 0:
            continue  # the question reads the comparison the other way round
        if shape.years and not (cells[0].fact_id == cells[1].fact_id and cells[0].index < cells[1].index and
                                years_apart(cells[0], cells[1])):
            continue  # two years' cells of one row, in one order (the other says the same)
        yield combo


def rank(heads: Heads | None, candidates: list[Candidate]) -> list[Candidate]:
    """Scores candidates with the trace ranker (softmax with an abstain option) and sorts them."""
    if not candidates:
        return []
    logits = [_dot(heads.trace_w, c.features) if heads else c.features[0] + c.features[1] for c in candidates]
    probs = softmax(logits + [heads.null_bias if heads else -1e9])
    for c, lg, p in zip(candidates, logits, probs):
        c.logit, c.score = lg, p
    return sorted(candidates, key=lambda c: -c.logit)


# Confidence of the traces reasoners proposed, by (task, line): what ``TraceConfidence`` reads.
_CONFIDENCE: OrderedDict[tuple[str, str], float] = OrderedDict()
_CONF_LOCK = threading.Lock()


def _remember(task: str, cands: list[Candidate]) -> None:
    with _CONF_LOCK:
        for c in cands:
            for line in c.lines:
                key = (task, line)
                _CONFIDENCE[key] = max(_CONFIDENCE.get(key, 0.0), c.score) if line != c.lines[-1] else c.score
        while len(_CONFIDENCE) > 50_000:
            _CONFIDENCE.popitem(last=False)


class TraceConfidence:
    """A step scorer for the verifier's ``step_scorer`` check: the reasoner's confidence in the
    trace a step belongs to (1.0 for steps the docqa reasoner did not propose)."""

    def score(self, task: str, steps: list[Step], step: Step) -> float:
        with _CONF_LOCK:
            return _CONFIDENCE.get((task, step.text), 1.0)


def lookup_query(question: str, facts: list[Evidence]) -> str:
    """A query for what the question asks about in a year that none of ``facts`` states: its
    content words (in its order, without the words that name the operation) and those years;
    "" when the facts state every year it names.

    Only a missing year triggers a lookup: looking up every content word no fact read states fired
    on 118 of FinQA's 193 training questions (and 78 of its 107 dev ones) and changed one answer;
    docs/docqa.md has the figures."""
    stated = set().union(*map(fact_years, facts))
    missing = [y for y in dict.fromkeys(YEAR.findall(question)) if int(y) not in stated]
    if not missing:
        return ""
    content = words(question)
    named = [w for w in dict.fromkeys(_WORD.findall(question.lower())) if w in content and w not in _OPERATION]
    return " ".join(named + missing)


def lookup_line(query: str) -> str:
    """The first step of a trace that looks up ``query`` (its value is the number the store's best
    fact gives for it; the facts it fetches are what the next steps may use)."""
    return f"{LOOKUP_STEP}{json.dumps(query)})"


def _shifted(lines: list[str], by: int) -> list[str]:
    """A trace's step names moved up by ``by`` (``x1`` -> ``x2``), to follow ``by`` earlier steps."""
    return [_NAME.sub(lambda m: f"x{int(m.group(1)) + by}", line) for line in lines] if by else list(lines)


class DocQAReasoner:
    """``dca.abilities.Logic`` for numeric questions over report facts (see the module docstring).

    ``model`` is the heads directory (default: built on first use); ``percent`` says how a
    percentage answer is stated: "percent" (23.4, TAT-QA's and readers' habit) or "ratio"
    (0.234, FinQA's); ``top_facts`` how many retrieved facts operands may come from; ``lookups``:
    look up, as a first step, what the question names and those facts do not state.
    """

    def __init__(self, model: str | Path | None = None, *, percent: str = "percent", top_facts: int = 4,
                 embedder: str = "all-MiniLM-L6-v2", use_heads: bool = True, lookups: bool = True):
        if percent not in ("percent", "ratio"):
            raise ValueError(f"DocQAReasoner: percent must be 'percent' or 'ratio', got {percent!r}")
        self.percent = percent
        self.top_facts = top_facts
        self.lookups = lookups
        self.featurizer = Featurizer(embedder)
        self._model = model
        self._use_heads = use_heads
        self._heads: Heads | None = None
        self._cache: OrderedDict[tuple, list[Candidate]] = OrderedDict()

    @property
    def heads(self) -> Heads | None:
        if not self._use_heads:
            return None
        if self._heads is None:
            path = self._model
            if path is None:
                from agents.docqa.models import ensure_models

                path = ensure_models()["reasoner"]
            self._heads = Heads.load(path)
        return self._heads

    @property
    def threshold(self) -> float:
        """The confidence gate for this reasoner's percent convention (calibrated on training questions)."""
        if not self.heads:
            return 0.0
        return float(self.heads.config.get("thresholds", {}).get(self.percent, self.heads.threshold))

    def shape_probs(self, task: str) -> list[float]:
        """The probability of each of ``SHAPE_LABELS`` for this question: the linear head's, blended
        with the shape reader's as the build chose, a change in a percentage read as a difference
        (``points_change``); every shape alike without trained heads."""
        heads = self.heads
        if not heads:
            return [1.0 / len(SHAPE_LABELS)] * len(SHAPE_LABELS)
        probs = shape_probs(heads, self.featurizer.question_vector(task, self.percent))
        mix = float(heads.config.get("shape_mix", 0.0))
        reader = heads.shape_reader() if mix > 0 else None
        if reader is not None:
            read = reader.predict([(self.percent, task)], apply_softmax=True, show_progress_bar=False)[0]
            probs = blend(probs, [float(v) for v in read], mix)
        return points_change(task, probs)

    def facts_read(self, evidence: list[Evidence], looked_up: bool = False) -> list[Evidence]:
        """The facts operands come from: the task's best ``top_facts`` and, after a lookup step, the
        facts it fetched (``metadata["lookup"]``), after them.

        The operand scorer and trace ranker learnt the fact ranker's order (a cell's fact rank is
        one of their features), so facts that carry the ranker's score (``PageKnowledge`` with a
        reranker) are put back in that order once the reranker has chosen them (TAT-QA dev best-trace
        accuracy 0.645 against 0.625 in the fused order, same facts; FinQA 0.260 either way)."""
        from agents.docqa.knowledge import RANKER_SCORE
        from dca.lookup import LOOKUP

        facts = evidence[: self.top_facts]
        if facts and all(RANKER_SCORE in e.metadata for e in facts):
            facts = sorted(facts, key=lambda e: -float(e.metadata[RANKER_SCORE]))
        if looked_up:
            read = {e.id for e in facts}
            facts = facts + [e for e in evidence[self.top_facts:] if LOOKUP in e.metadata and e.id not in read]
        return facts

    def candidates(self, task: str, evidence: list[Evidence], prefix: list[str] | None = None) -> list[Candidate]:
        """All candidate traces for a question, best first (cached per question and evidence).
        ``prefix``: the lookup step already taken; the traces follow it and read what it fetched."""
        prefix = list(prefix or [])
        facts = self.facts_read(evidence, looked_up=bool(prefix))
        key = (task, tuple(e.id for e in facts), tuple(prefix))
        if key in self._cache:
            return self._cache[key]
        q = Question.of(task)
        heads = self.heads
        cells = operand_cells(facts)
        scored = score_cells(heads, self.featurizer, q, cells)
        out = rank(heads, build_candidates(q, self.shape_probs(task)[: len(NAMES)], scored, self.percent))
        for c in out:
            c.lines = prefix + _shifted(c.lines, len(prefix))
        self._cache[key] = out
        if len(self._cache) > 256:
            self._cache.popitem(last=False)
        _remember(task, out)
        return out

    def lookup(self, task: str, evidence: list[Evidence]) -> str:
        """The lookup step this question starts with ("" for none): what it names that the facts
        read do not state (``lookup_query``)."""
        query = lookup_query(task, self.facts_read(evidence)) if self.lookups else ""
        return lookup_line(query) if query else ""

    def propose(self, request: ProposeRequest) -> list[Proposal]:
        done = [s.text for s in request.steps]
        pos = len(done)
        avoid = set(request.avoid)
        if pos == 0 and (first := self.lookup(request.task, request.evidence)) and first not in avoid:
            return [Proposal(lines=[first], score=1.0, compute=Compute(model_calls=1))]
        prefix = done[:1] if done and done[0].startswith(LOOKUP_STEP) else []
        out: list[Proposal] = []
        for c in self.candidates(request.task, request.evidence, prefix):
            if c.lines[:pos] != done or len(c.lines) <= pos or c.lines[pos] in avoid:
                continue
            out.append(Proposal(lines=c.lines[pos:], score=c.score, compute=Compute(model_calls=1 if not out else 0)))
            if len(out) >= max(1, request.n):
                break
        return out
