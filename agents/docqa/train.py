"""Train the docqa reasoner's heads on training records (and synthetic questions), then calibrate.

    python -m agents.docqa.train            # builds $DCA_HOME/models/docqa-reasoner
    python -m agents.docqa.train --quick    # a small build, for trying things out

1. give each training question the facts retrieval would: its gold facts among look-alikes;
2. shape head: softmax regression from the question's MiniLM embedding and cue words to the
   program shape of its gold trace (plus synthetic questions over the same pages' tables); and
   a shape reader, MiniLM fine-tuned on the same questions, blended with it in the proportion
   that names the most out-of-fold shapes right;
3. operand head: logistic regression over cell features, positives the gold trace's operands;
   one feature is the logit of an operand reader, MiniLM fine-tuned on (question, cell) pairs
   (out-of-fold for the training questions, like the shape reader's probabilities);
4. trace ranker: a listwise softmax over each question's candidate traces plus an "abstain"
   option, positives the candidates whose value the dataset's scorer accepts; shape
   probabilities for it come from cross-validation so they are as (un)sure as on new questions;
5. the confidence thresholds: the lowest ranker probability at which out-of-fold training
   questions are still answered >= 90 % correctly, overall and per percent convention;
6. the fact reranker, a cross-encoder over (question, fact);
7. its fusion with the fact ranker: a logistic regression per percent convention over the fact
   features, both scores and both ranks, on out-of-fold reranker logits.
"""
from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

from agents.docqa.cells import Cell, operand_cells, same_number
from agents.docqa.knowledge import FACT_FEATURES, FUSION_FEATURES
from agents.docqa.models import FACT_RERANKER, OPERAND_READER, SHAPE_READER
from agents.docqa.reasoner import (
    CELL_FEATURES,
    OTHER,
    SHAPE_LABELS,
    TRACE_FEATURES,
    Featurizer,
    Heads,
    Question,
    blend,
    build_candidates,
    cell_text,
    rank,
    reader_logits,
    score_cells,
    softmax,
)
from agents.docqa.shapes import NAMES, canonical
from agents.docqa.synth import synth_questions
from dca.reasoning.tasks.base import Problem

TOP_FACTS = 4
TARGET_PRECISION = 0.9
# FinQA has 193 training questions to TAT-QA's 800: its questions weigh this much more in the
# shape head and the trace ranker, so its conventions (ratios, performance graphs) are learnt
FINQA_WEIGHT = 4.0
# the shape reader: out-of-fold probabilities from this many folds (each trains one reader, ~3 min)
READER_FOLDS = 3
READER_EPOCHS = 2.0
# the operand reader: each gold operand cell of a training question against this many other cells
# of its retrieved facts (drawn afresh for each of a FinQA question's FINQA_WEIGHT repeats)
OPERAND_NEGATIVES = 6
OPERAND_EPOCHS = 1.0


def percent_convention(problem: Problem) -> str:
    """How the dataset states a percentage answer: FinQA as a ratio, TAT-QA in percent."""
    return "ratio" if problem.family == "finqa" else "percent"


def correct(problem: Problem, value: Any) -> bool:
    from dca.reasoning.convert import finqa_match, tatqa_match

    if problem.family == "finqa":
        return finqa_match(value, problem.answer)
    return tatqa_match(value, problem.answer, problem.meta.get("scale", ""))


def _fit_linear(x: list[list[float]], y: list[int], classes: int, *, c: float = 1.0,
                sample_weight: list[float] | None = None) -> tuple[Any, Any]:
    """Softmax regression (``classes`` > 1) or class-balanced logistic regression (``classes`` == 1),
    by scikit-learn's L-BFGS; returns ``(weight, bias)`` shaped like a ``torch.nn.Linear``'s."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    xa, ya = np.asarray(x, dtype=np.float64), np.asarray(y)
    model = LogisticRegression(C=c, max_iter=500, class_weight="balanced" if classes == 1 else None)
    model.fit(xa, ya, sample_weight=None if sample_weight is None else np.asarray(sample_weight))
    if classes == 1:
        return model.coef_, model.intercept_
    weight = np.zeros((classes, xa.shape[1]))
    bias = np.full(classes, -30.0)  # a shape never seen in training is never predicted
    for row, label in enumerate(model.classes_):
        weight[label], bias[label] = (model.coef_[row], model.intercept_[row]) if len(model.classes_) > 2 else \
            ((1 if row else -1) * model.coef_[0], (1 if row else -1) * model.intercept_[0])
    return weight, bias


def _fit_ranker(groups: list[tuple[list[list[float]], list[int]]], dim: int, l2: float = 1e-2,
                weights: list[float] | None = None) -> tuple[list[float], float]:
    """Listwise softmax over each question's candidates plus an abstain option (a learned bias),
    minimised with SciPy's L-BFGS. A question none of whose candidates is right teaches abstaining;
    ``weights`` weigh questions (the scarcer dataset counts more)."""
    import numpy as np
    from scipy.optimize import minimize

    weights = weights or [1.0] * len(groups)
    data = [(np.asarray(f, dtype=np.float64), np.asarray(lab, dtype=bool), wt)
            for (f, lab), wt in zip(groups, weights) if f]
    norm = sum(wt for _, _, wt in data) or 1.0

    def loss(theta: Any) -> tuple[float, Any]:
        w, null = theta[:-1], theta[-1]
        total, grad = 0.0, np.zeros_like(theta)
        for feats, labels, wt in data:
            logits = np.append(feats @ w, null)
            m = logits.max()
            p = np.exp(logits - m)
            p /= p.sum()
            target = np.append(labels, not labels.any())
            q = p * target
            q /= q.sum()
            total -= wt * np.log((p * target).sum() + 1e-300)
            d = wt * (p - q)  # gradient of -log(sum over targets) w.r.t. logits
            grad[:-1] += feats.T @ d[:-1]
            grad[-1] += d[-1]
        reg = l2 * (w @ w)
        grad = grad / norm
        grad[:-1] += 2 * l2 * w
        return total / norm + reg, grad

    res = minimize(loss, np.zeros(dim + 1), jac=True, method="L-BFGS-B", options={"maxiter": 300})
    return [float(v) for v in res.x[:-1]], float(res.x[-1])


def threshold_for(pairs: list[tuple[float, bool]], precision: float = TARGET_PRECISION) -> float:
    """The lowest confidence at which the answers at or above it are >= ``precision`` correct."""
    pairs = sorted(pairs, key=lambda t: -t[0])
    best, right = 1.0, 0
    for i, (conf, ok) in enumerate(pairs, 1):
        right += ok
        if right / i >= precision and i >= 5:
            best = conf
    return best


def training_evidence(problem: Problem, rng: random.Random, k: int = TOP_FACTS) -> list[Any]:
    """What retrieval would hand the reasoner, without running it (retrieval on every training
    question costs minutes): the gold facts plus the same-page facts sharing most words with the
    question, ordered by that overlap so the gold facts are not always first."""
    from agents.docqa.examples import gold_facts
    from dca.verifier import content_words

    gold = set(gold_facts(problem))
    q = content_words(problem.question)
    overlap = {e.id: len(q & content_words(e.text)) + rng.random() * 0.5 for e in problem.evidence}
    others = sorted((e for e in problem.evidence if e.id not in gold), key=lambda e: -overlap[e.id])
    chosen = [e for e in problem.evidence if e.id in gold][:k]
    chosen += others[: max(0, k - len(chosen))]
    return sorted(chosen, key=lambda e: -overlap[e.id])


def train_fact_ranker(problems: list[Problem], feat: Featurizer, progress: bool = True,
                      finqa_weight: float = 1.0) -> list[float]:
    """Logistic regression over ``FACT_FEATURES``: gold facts against the rest of their page
    (FinQA's questions weighing ``finqa_weight``)."""
    from rich.progress import track

    from agents.docqa.examples import gold_facts
    from agents.docqa.knowledge import PageKnowledge, fact_features

    xs, ys, wts = [], [], []
    for p in track(problems, description="docqa: fact ranker", disable=not progress):
        gold = set(gold_facts(p))
        if not gold:
            continue
        know = PageKnowledge(p.evidence, featurizer=feat)
        rows = fact_features(p.question, know.facts, know.dense(p.question))
        xs.extend(rows)
        ys.extend(int(e.id in gold) for e in know.facts)
        wts.extend([finqa_weight if p.family == "finqa" else 1.0] * len(rows))
    w, b = _fit_linear(xs, ys, 1, sample_weight=wts)
    weights = [float(v) for v in w[0]]
    weights[FACT_FEATURES.index("bias")] += float(b[0])  # the bias feature carries the intercept
    return weights


def train_fact_reranker(problems: list[Problem], out: str | Path, *, negatives: int = 4, seed: int = 0,
                        quick: bool = False) -> Path:
    """A ``CrossEncoder`` from MiniLM's weights that reads a question with one fact of its page:
    each gold fact against ``negatives`` other facts of the same page (half of them the ones
    sharing most words with the question). FinQA's questions are repeated ``FINQA_WEIGHT`` times,
    with other negatives each time, as in the other heads. 392 steps of 32 pairs, batched by
    length: ~7 min on 2 cores (more than twice that at random, where half of the tokens were
    padding). The synthetic template questions are not among its examples: with them recall@3 moved
    by less than two seeds differ (docs/docqa.md).
    """
    from agents.docqa.examples import retrieval_examples
    from retrieval.tuning import tune_reranker

    finqa = [p for p in problems if p.family == "finqa"]
    examples = retrieval_examples(problems, negatives=negatives, synthetic_per_page=0, seed=seed)
    for k in range(1, int(FINQA_WEIGHT)):
        examples += retrieval_examples(finqa, negatives=negatives, synthetic_per_page=0, seed=seed + k)
    if quick:
        examples = examples[:16]
    random.Random(seed).shuffle(examples)
    return tune_reranker([(e.query, e.positive) for e in examples], out, negatives=negatives, max_length=128,
                         given_negatives=[e.negatives for e in examples], seed=seed, group_by_length=True)


def train_fact_fusion(problems: list[Problem], feat: Featurizer, heads: Heads, *, seed: int = 0,
                      quick: bool = False, progress: bool = True) -> dict[str, list[float]]:
    """The learnt fusion of the fact ranker and the fact reranker, per percent convention: a logistic
    regression over ``FUSION_FEATURES`` (gold facts against the rest of their page), fitted on
    out-of-fold reranker logits. The reranker's logits on the questions it trained on are surer than
    at question time, so the pages are split in two by a hash of the page, a reranker is trained on
    each half and reads the other half's questions (14.7 min on 2 cores: ~7.5 training, ~7 reading).
    Each convention's fusion is fitted on its own pages' questions. Measured on the dev pages against
    reciprocal-rank fusion of the same rankings (three rerankers: two seeds and a listwise one),
    recall@3 TAT-QA 0.889-0.892 -> 0.916-0.934, FinQA 0.792-0.819 -> 0.798-0.813; fitted on
    in-sample reranker logits instead, 0.910-0.915 and 0.765-0.808 (docs/docqa.md)."""
    import tempfile
    import zlib

    from rich.progress import track

    from agents.docqa.examples import gold_facts, page_key
    from agents.docqa.knowledge import PageKnowledge
    from retrieval.models import load_reranker

    half = [zlib.crc32(page_key(p).encode()) % 2 for p in problems]
    xs: dict[str, list[list[float]]] = {}
    ys: dict[str, list[int]] = {}
    with tempfile.TemporaryDirectory(prefix="dca-fusion-") as tmp:
        readers = []
        for h in (0, 1):
            train_fact_reranker([p for p, g in zip(problems, half) if g != h], Path(tmp) / f"half{h}", seed=seed,
                                quick=quick)
            readers.append(load_reranker(str(Path(tmp) / f"half{h}")))
        for p, h in track(list(zip(problems, half)), description="docqa: fact fusion", disable=not progress):
            gold = set(gold_facts(p))
            if not gold:
                continue
            conv = percent_convention(p)
            know = PageKnowledge(p.evidence, weights=heads.fact_weights(conv), featurizer=feat, reranker=readers[h])
            xs.setdefault(conv, []).extend(know.fusion_rows(p.question))
            ys.setdefault(conv, []).extend(int(e.id in gold) for e in know.facts)
    out = {}
    for conv in xs:
        if len(set(ys[conv])) < 2:
            continue  # every fact gold, or none: nothing to fit (tiny quick builds)
        w, b = _fit_linear(xs[conv], ys[conv], 1)
        weights = [float(v) for v in w[0]]
        weights[FUSION_FEATURES.index("bias")] += float(b[0])  # the bias feature carries the intercept
        out[conv] = weights
    return out


def shape_data(problems: list[Problem], rng: random.Random, synthetic_per_page: int = 6,
               ) -> tuple[list[str], list[str], list[int], list[float]]:
    """The shape head's examples: questions, their pages' percent conventions, shape labels
    (``SHAPE_LABELS`` indices) and weights. The real questions come first, in ``problems``' order,
    then ``synthetic_per_page`` template questions over each page's tables."""
    labels = []
    for p in problems:
        can = canonical(p.gold or [])
        labels.append(SHAPE_LABELS.index(can[0] if can else OTHER))
    synth, synth_conv = [], []
    seen_pages: set[str] = set()
    for p in problems:
        key = str(p.meta.get("page") or p.meta.get("document"))
        if key not in seen_pages:
            seen_pages.add(key)
            made = synth_questions(p.evidence, rng, synthetic_per_page)
            synth.extend(made)
            synth_conv.extend([percent_convention(p)] * len(made))
    return ([p.question for p in problems] + [s.question for s in synth],
            [percent_convention(p) for p in problems] + synth_conv,
            labels + [SHAPE_LABELS.index(s.shape) for s in synth],
            [FINQA_WEIGHT if p.family == "finqa" else 1.0 for p in problems] + [1.0] * len(synth))


def train_shape_reader(questions: list[str], conventions: list[str], labels: list[int], out: str | Path, *,
                       weights: list[float] | None = None, epochs: float = 2.0, seed: int = 0) -> Path:
    """MiniLM fine-tuned to read a question with its page's percent convention and name its shape
    (a sentence-transformers ``CrossEncoder`` over (convention, question), one logit per shape).
    A weight of k repeats the question k times. bench/docqa_shapes.py measures it against the
    frozen-MiniLM linear head."""
    from retrieval.tuning import train_cross_encoder

    rows: dict[str, list[Any]] = {"convention": [], "question": [], "label": []}
    for i, (q, c, y) in enumerate(zip(questions, conventions, labels)):
        for _ in range(max(1, round(weights[i])) if weights else 1):
            rows["convention"].append(c)
            rows["question"].append(q)
            rows["label"].append(int(y))
    return train_cross_encoder(rows, out, num_labels=len(SHAPE_LABELS), epochs=epochs, max_length=64, seed=seed,
                               what="shape reader")


def _held_out(n_real: int, n_total: int, folds: int, k: int) -> tuple[list[int], list[int]]:
    """Fold ``k``: every question but the real ones with ``i % folds == k`` trains (the synthetic
    questions, after the first ``n_real``, always train); those real ones are held out."""
    return ([i for i in range(n_total) if i >= n_real or i % folds != k], list(range(k, n_real, folds)))


def linear_shape_probs(qvecs: list[list[float]], labels: list[int], weights: list[float], n_real: int, *,
                       folds: int = 5) -> list[list[float]]:
    """Out-of-fold shape probabilities of the linear head for the first ``n_real`` questions."""
    import numpy as np

    probs: list[list[float]] = [[] for _ in range(n_real)]
    for k in range(folds):
        train, held = _held_out(n_real, len(qvecs), folds, k)
        w, b = _fit_linear([qvecs[i] for i in train], [labels[i] for i in train], len(SHAPE_LABELS),
                           sample_weight=[weights[i] for i in train])
        for i in held:
            probs[i] = softmax((np.asarray(qvecs[i]) @ w.T + b).tolist())
    return probs


def _out_of_fold(n_real: int, n_total: int, folds: int, fit: Any, read: Any, what: str,
                 progress: bool = True) -> list[Any]:
    """Out-of-fold outputs of a fine-tuned reader for the first ``n_real`` examples: for fold ``k``,
    ``fit(k, train_indices, folder)`` trains a reader into ``folder`` and ``read(reader, held_indices)``
    gives its outputs for the held-out ones (see ``_held_out``)."""
    import tempfile

    from sentence_transformers import CrossEncoder

    out: list[Any] = [None] * n_real
    for k in range(folds):
        train, held = _held_out(n_real, n_total, folds, k)
        if progress:
            print(f"docqa: {what}, fold {k + 1}/{folds}", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            # not through retrieval's model cache: the folder is gone after the fold
            reader = CrossEncoder(str(fit(k, train, Path(tmp) / "reader")), device="cpu")
            for i, row in zip(held, read(reader, held)):
                out[i] = row
    return out


def reader_shape_probs(questions: list[str], conventions: list[str], labels: list[int], weights: list[float],
                       n_real: int, *, folds: int = 3, epochs: float = 2.0, seed: int = 0,
                       progress: bool = True) -> list[list[float]]:
    """Out-of-fold shape probabilities of the fine-tuned reader (one reader trained per fold)."""
    def fit(k: int, train: list[int], out: Path) -> Path:
        return train_shape_reader([questions[i] for i in train], [conventions[i] for i in train],
                                  [labels[i] for i in train], out, weights=[weights[i] for i in train],
                                  epochs=epochs, seed=seed + k)

    def read(reader: Any, held: list[int]) -> list[list[float]]:
        rows = reader.predict([(conventions[i], questions[i]) for i in held], batch_size=64, apply_softmax=True,
                              show_progress_bar=False)
        return [[float(v) for v in row] for row in rows]

    return _out_of_fold(n_real, len(questions), folds, fit, read, "shape reader", progress)


def operand_labels(problem: Problem, cells: list[Cell]) -> list[int] | None:
    """1 for the cells that state one of the gold trace's operands, else 0 (``None``: no gold
    trace of a known shape, or none of its operands among ``cells``)."""
    can = canonical(problem.gold or [])
    if not can:
        return None
    labels = [int(any(same_number(v, c) for v in can[1])) for c in cells]
    return labels if any(labels) else None


def train_operand_reader(problems: list[Problem], cell_lists: list[list[Cell]], out: str | Path, *,
                         negatives: int = OPERAND_NEGATIVES, epochs: float = OPERAND_EPOCHS,
                         seed: int = 0) -> Path:
    """MiniLM fine-tuned to read a question with one cell of its facts (``cell_text``) and say
    whether the gold trace computes with it: a ``CrossEncoder`` with one logit, each gold cell
    against ``negatives`` other cells of the same facts. FinQA's questions come ``FINQA_WEIGHT``
    times, with other negatives each time. Pairs are short, so they are batched by length."""
    from retrieval.tuning import train_cross_encoder

    rng = random.Random(seed)
    rows: dict[str, list[Any]] = {"question": [], "cell": [], "label": []}
    for p, cells in zip(problems, cell_lists):
        labels = operand_labels(p, cells)
        if labels is None:
            continue
        pos = [c for c, y in zip(cells, labels) if y]
        neg = [c for c, y in zip(cells, labels) if not y]
        for _ in range(int(FINQA_WEIGHT) if p.family == "finqa" else 1):
            for c, y in [(c, 1) for c in pos] + [(c, 0) for c in rng.sample(neg, min(negatives, len(neg)))]:
                rows["question"].append(p.question)
                rows["cell"].append(cell_text(c))
                rows["label"].append(float(y))
    return train_cross_encoder(rows, out, epochs=epochs, max_length=96, seed=seed, what="operand reader",
                               group_by_length=True)


def reader_operand_logits(problems: list[Problem], cell_lists: list[list[Cell]], *, folds: int = 3,
                          epochs: float = OPERAND_EPOCHS, seed: int = 0, progress: bool = True) -> list[list[float]]:
    """Out-of-fold operand-reader logits for every cell of every training question."""
    def fit(k: int, train: list[int], out: Path) -> Path:
        return train_operand_reader([problems[i] for i in train], [cell_lists[i] for i in train], out,
                                    epochs=epochs, seed=seed + k)

    def read(reader: Any, held: list[int]) -> list[list[float]]:
        return [reader_logits(reader, problems[i].question, cell_lists[i]) for i in held]

    n = len(problems)
    return _out_of_fold(n, n, folds, fit, read, "operand reader", progress)


def shape_accuracy(probs: list[list[float]], labels: list[int]) -> float:
    return sum(max(range(len(p)), key=p.__getitem__) == y for p, y in zip(probs, labels)) / max(1, len(labels))


def train_reasoner(problems: list[Problem], out: str | Path, *, quick: bool = False,
                   progress: bool = True, seed: int = 0) -> Path:
    """Train the heads, the shape and fact readers and the thresholds; save them to ``out``
    (safetensors + config.json, the readers in HF layout beside them)."""
    import torch
    from rich.progress import track

    torch.set_num_threads(2)
    rng = random.Random(seed)
    out = Path(out)
    if quick:
        problems = problems[:40] + [p for p in problems if p.family != "finqa"][:40]
    feat = Featurizer()

    # 1. the facts a question would be given: its gold facts among same-page look-alikes
    retrieved = [training_evidence(p, rng) for p in problems]

    # 2. shape head (real questions + synthetic questions over the same pages' tables)
    questions, conventions, y_shape, q_weight = shape_data(problems, rng, 2 if quick else 6)
    n_real = len(problems)
    labels = y_shape[:n_real]
    qvecs = [feat.question_vector(t, c) for t, c in zip(_batched(feat, questions), conventions)]
    folds = 5
    linear_probs = linear_shape_probs(qvecs, y_shape, q_weight, n_real, folds=folds)
    shape_w, shape_b = _fit_linear(qvecs, y_shape, len(SHAPE_LABELS), sample_weight=q_weight)
    # 2b. the shape reader (MiniLM fine-tuned on the same questions), blended with the linear head
    # in the proportion that names the most out-of-fold shapes right
    reader_epochs = 1.0 if quick else READER_EPOCHS
    read_probs = reader_shape_probs(questions, conventions, y_shape, q_weight, n_real, folds=READER_FOLDS,
                                    epochs=reader_epochs, seed=seed, progress=progress)
    train_shape_reader(questions, conventions, y_shape, out / SHAPE_READER, weights=q_weight,
                       epochs=reader_epochs, seed=seed)
    mix_acc = {m: shape_accuracy([blend(a, b, m) for a, b in zip(linear_probs, read_probs)], labels)
               for m in (0.0, 0.25, 0.5, 0.75, 1.0)}
    shape_mix = max(mix_acc, key=lambda m: (mix_acc[m], m))
    cv_probs = [blend(a, b, shape_mix) for a, b in zip(linear_probs, read_probs)]
    shape_acc = mix_acc[shape_mix]

    # 3. operand head over cell features, one of them the operand reader's (out-of-fold) logit
    cell_lists = [operand_cells(ev) for ev in retrieved]
    oof_logits = reader_operand_logits(problems, cell_lists, folds=READER_FOLDS, epochs=OPERAND_EPOCHS,
                                       seed=seed, progress=progress)
    train_operand_reader(problems, cell_lists, out / OPERAND_READER, seed=seed)
    xs, ys = [], []
    cell_sets = []
    for p, cells, logits in zip(problems, cell_lists, oof_logits):
        q = Question.of(p.question)
        scored = score_cells(None, feat, q, cells, reader=logits)
        cell_sets.append((q, scored))
        if not canonical(p.gold or []):
            continue
        labels = operand_labels(p, [c for c, _, _ in scored]) or [0] * len(scored)  # no gold cell: all 0
        xs.extend(f for _, f, _ in scored)
        ys.extend(labels)
    ow, ob = _fit_linear(xs, ys, 1)
    operand_w = [float(v) for v in ow[0].tolist()]
    operand_w[-1] += float(ob[0])  # the bias feature carries the intercept

    # one fact ranker for TAT-QA-style pages, one with FinQA's questions weighted for "ratio" pages
    fact_w = train_fact_ranker(problems, feat, progress)
    fact_w_ratio = train_fact_ranker(problems, feat, False, finqa_weight=FINQA_WEIGHT)

    # 4. trace ranker on candidates built with cross-validated shape probabilities
    heads = Heads([], [], operand_w, [], 0.0, 0.0)
    groups, conv = [], []
    for i, p in enumerate(track(problems, description="docqa: candidates", disable=not progress)):
        q, scored = cell_sets[i]
        rescored = sorted(((c, f, sum(a * b for a, b in zip(operand_w, f))) for c, f, _ in scored),
                          key=lambda t: -t[2])
        cands = build_candidates(q, cv_probs[i][: len(NAMES)], rescored, percent_convention(p))
        groups.append(([c.features for c in cands], [int(correct(p, c.value)) for c in cands]))
        conv.append(cands)
    # 5. confidence thresholds from out-of-fold ranker scores, per percent convention (FinQA-style
    # "ratio" pages and TAT-QA-style "percent" pages are not equally hard, so one threshold misfits both)
    order = list(range(n_real))
    rng.shuffle(order)
    pairs: dict[str, list[tuple[float, bool]]] = {"ratio": [], "percent": []}
    for k in range(folds):
        held = set(order[k::folds])
        kept = [i for i in range(n_real) if i not in held]
        w_fit, null_fit = _fit_ranker([groups[i] for i in kept], len(TRACE_FEATURES),
                                      weights=[q_weight[i] for i in kept])
        trial = Heads([], [], operand_w, w_fit, null_fit, 0.0)
        for i in held:
            ranked = rank(trial, conv[i])
            if ranked:
                pairs[percent_convention(problems[i])].append(
                    (ranked[0].score, bool(groups[i][1][conv[i].index(ranked[0])])))
    every = pairs["ratio"] + pairs["percent"]
    threshold = threshold_for(every)
    thresholds = {conv_name: threshold_for(p) for conv_name, p in pairs.items() if p}
    trace_w, null_bias = _fit_ranker(groups, len(TRACE_FEATURES), weights=q_weight[:n_real])
    oracle = sum(any(lab) for _, lab in groups) / max(1, n_real)
    held_acc = sum(ok for _, ok in every) / max(1, len(every))
    held_by = {conv_name: round(sum(ok for _, ok in p) / max(1, len(p)), 4) for conv_name, p in pairs.items()}

    heads = Heads(shape_w.tolist(), shape_b.tolist(), operand_w, trace_w, null_bias, threshold, {
        "embedder": feat.embedder, "top_facts": TOP_FACTS, "train_questions": n_real,
        "synthetic": len(questions) - n_real, "shape_cv_accuracy": round(shape_acc, 4),
        "shape_linear_cv_accuracy": round(mix_acc[0.0], 4), "shape_reader_cv_accuracy": round(mix_acc[1.0], 4),
        "shape_reader": SHAPE_READER, "operand_reader": OPERAND_READER, "shape_mix": shape_mix,
        "candidate_oracle": round(oracle, 4),
        "heldout_top1": round(held_acc, 4), "heldout_top1_by_convention": held_by, "thresholds": thresholds,
        "cell_features": list(CELL_FEATURES),
        "fact_features": list(FACT_FEATURES), "fact_reranker": FACT_RERANKER,
        "fusion_features": list(FUSION_FEATURES)}, fact_w, fact_w_ratio)
    # 6. the fact reranker (a cross-encoder), beside the heads
    train_fact_reranker(problems, out / FACT_RERANKER, seed=seed, quick=quick)
    # 7. how to fuse the reranker's reading with the fact ranker's, per convention
    heads.config["fact_fusion"] = train_fact_fusion(problems, feat, heads, seed=seed, quick=quick, progress=progress)
    heads.save(out)
    # the out-of-fold (top-1 confidence, right) pairs the thresholds come from, per convention, so a
    # gate can be studied without a rebuild
    (out / "oof_confidence.json").write_text(json.dumps(pairs), encoding="utf-8")
    if progress:
        print(f"docqa reasoner: shape cv acc {shape_acc:.3f}, oracle {oracle:.3f}, held-out top-1 {held_acc:.3f}, "
              f"threshold {threshold:.3f} {thresholds} {held_by}")
    return out


def _batched(feat: Featurizer, texts: list[str]) -> list[str]:
    for i in range(0, len(texts), 256):
        feat.embed(texts[i:i + 256])
    return texts


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Build the docqa heads under $DCA_HOME/models/docqa-reasoner.")
    ap.add_argument("--quick", action="store_true", help="a small build for trying things out")
    ap.add_argument("--rebuild", action="store_true", help="retrain even if built")
    ap.add_argument("--seed", type=int, default=0, help="training seed (default 0, the one first use builds with)")
    ap.add_argument("--out", type=Path, default=None, metavar="DIR",
                    help="build into DIR instead of the model registry (e.g. a second seed to compare)")
    args = ap.parse_args(argv)
    import shutil

    from agents.docqa.models import REASONER, build_into, ensure_models, model_dir

    if args.out is not None:
        if args.out.exists() and not args.rebuild:
            raise SystemExit(f"{args.out}: already exists; pass --rebuild to replace it")
        print(f"reasoner: {build_into(args.out, quick=args.quick, seed=args.seed)}")
        return
    if args.seed:
        raise SystemExit("--seed: a build with another seed goes elsewhere; pass --out DIR with it")
    if args.rebuild:
        shutil.rmtree(model_dir(REASONER), ignore_errors=True)
    paths = ensure_models(quick=args.quick)
    for name, path in paths.items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
