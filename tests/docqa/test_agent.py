"""The docqa reasoner and agent on a real FinQA page, with untrained heads (no model training here)."""
from __future__ import annotations

import json

import pytest

from dca.abilities import ProposeRequest


@pytest.fixture(scope="module")
def bonds(finqa_train):
    return next(p for p in finqa_train.problems("train") if p.gold == ["answer = 114400 / 329500"])


@pytest.fixture(scope="module")
def reasoner():
    from agents.docqa.reasoner import DocQAReasoner

    return DocQAReasoner(percent="ratio", use_heads=False)


def test_candidates_contain_the_gold_answer_and_are_grounded(bonds, reasoner):
    from agents.docqa.grounding import citing_facts
    from agents.docqa.cells import evidence_cells

    gold = [e for e in bonds.evidence if e.metadata.get("gold_key") in ("table_4", "table_5")]
    cands = reasoner.candidates(bonds.question, gold)
    assert any(abs(c.value - 114400 / 329500) < 1e-9 for c in cands if isinstance(c.value, float))
    cells = evidence_cells(gold)
    for c in cands[:20]:
        assert all(citing_facts(cell.value, cells) for cell in c.cells)
    assert [c.logit for c in cands] == sorted((c.logit for c in cands), reverse=True)


def test_percent_cells_are_ratios_where_percentages_are(finqa_train):
    from agents.docqa.cells import evidence_cells
    from agents.docqa.examples import gold_facts
    from agents.docqa.grounding import citing_facts
    from agents.docqa.reasoner import DocQAReasoner

    sysco = next(p for p in finqa_train.problems("train") if p.gold == ["answer = 0.62 - 0.61"])
    facts = [e for e in sysco.evidence if e.id in set(gold_facts(sysco))]
    assert any("62%" in e.text for e in facts)  # the page states the percentages as percentages

    def values(percent: str) -> list[float]:
        cands = DocQAReasoner(percent=percent, use_heads=False).candidates(sysco.question, facts)
        return [float(c.value) for c in cands if isinstance(c.value, (int, float)) and not isinstance(c.value, bool)]

    assert any(abs(v - 0.01) < 1e-9 for v in values("ratio"))  # FinQA's 62% - 61% is 0.01
    as_written = values("percent")
    assert any(abs(v - 1.0) < 1e-9 for v in as_written) and not any(abs(v - 0.01) < 1e-9 for v in as_written)
    assert citing_facts(0.62, evidence_cells(facts))  # 0.62 is grounded in the fact that says 62%


def test_propose_follows_the_verified_prefix_and_avoids_rejected_lines(bonds, reasoner):
    from dca.types import Step

    ev = bonds.evidence[:4]
    first = reasoner.propose(ProposeRequest(bonds.question, ev, []))[0]
    again = reasoner.propose(ProposeRequest(bonds.question, ev, [], avoid=[first.lines[0]]))[0]
    assert again.lines[0] != first.lines[0]
    two = next(c for c in reasoner.candidates(bonds.question, ev) if len(c.lines) == 2)
    nxt = reasoner.propose(ProposeRequest(bonds.question, ev, [Step(text=two.lines[0])]))
    assert nxt and nxt[0].lines == two.lines[1:]


def test_agent_states_only_fact_grounded_answers(bonds, reasoner):
    from agents.docqa.agent import AnswerWording, docqa_verifier
    from agents.docqa.knowledge import PageKnowledge
    from dca import Agent
    from dca.reasoning.steps import ANSWER

    agent = Agent(logic=reasoner, knowledge=PageKnowledge(bonds.evidence), wording=AnswerWording("ratio"),
                  verifier=docqa_verifier("ratio", 0.0), top_k=4, checkpoint=None)
    result = agent.run(bonds.question)
    assert result.status == "verified"
    answer_step = result.steps[-1]
    assert answer_step.target == ANSWER and answer_step.evidence_ids
    cited = {e.id for e in result.evidence}
    assert set(answer_step.evidence_ids) <= cited
    assert agent.verifier.check_wording(result.text, result.answer).ok


def test_ranker_and_threshold_fit_on_small_groups():
    import random

    from agents.docqa.train import _fit_ranker, threshold_for

    rng = random.Random(0)
    groups = []
    for _ in range(40):
        feats = [[rng.random(), rng.random()] for _ in range(5)]
        best = max(range(5), key=lambda i: feats[i][0])
        groups.append((feats, [int(i == best) for i in range(5)]))
    w, _ = _fit_ranker(groups, 2)
    assert w[0] > 0 and w[0] > abs(w[1])
    pairs = [(0.9, True)] * 9 + [(0.8, False)] + [(0.5, False)] * 2 + [(0.3, True)] * 5
    assert threshold_for(pairs, 0.9) == 0.8


def test_wording_states_value_with_unit_and_scale():
    from agents.docqa.agent import AnswerWording
    from dca.types import Evidence, Step
    from dca.verifier import Verifier

    ev = [Evidence("r1", "net revenue: 2015 = $5,829; 2014 = $5,735 (in millions)",
                   metadata={"kind": "table_row", "scale": "million"})]
    step = Step(text="answer = 5829 - 5735", target="answer", expr="5829 - 5735", value=94, evidence_ids=["r1"])
    text = AnswerWording().word("what was the change in net revenue?", 94, [step], ev)
    assert "$94 million" in text and Verifier().check_wording(text, 94).ok
    pct = Step(text="answer = x1 / 5735 * 100", target="answer", expr="x1 / 5735 * 100", value=1.639)
    assert "1.639%" in AnswerWording().word("what was the percentage change?", 1.639, [pct], ev)
    ratio = AnswerWording("ratio").word("what was the percentage change?", 0.01639, [pct], ev)
    assert Verifier().check_wording(ratio, 0.01639).ok and "1.64%" in ratio


def test_pipeline_yaml_builds_the_docqa_abilities():
    from agents.docqa.agent import AnswerWording
    from agents.docqa.reasoner import DocQAReasoner
    from dca.pipeline import Pipeline

    from pathlib import Path

    pipe = Pipeline.from_yaml(Path(__file__).resolve().parents[2] / "configs" / "docqa.yaml")
    assert isinstance(pipe.build_logic(), DocQAReasoner)
    assert isinstance(pipe.build_wording(), AnswerWording)
    assert "step_scorer" in pipe.build_verifier().check_names


def test_ranker_weights_let_a_scarce_group_decide():
    from agents.docqa.train import _fit_ranker

    # 20 groups prefer feature 0, 5 prefer feature 1; weighting the 5 by 8 flips the ranker
    a = [([[1.0, 0.0], [0.0, 1.0]], [1, 0])] * 20
    b = [([[1.0, 0.0], [0.0, 1.0]], [0, 1])] * 5
    w_plain, _ = _fit_ranker(a + b, 2)
    w_heavy, _ = _fit_ranker(a + b, 2, weights=[1.0] * 20 + [8.0] * 5)
    assert w_plain[0] > w_plain[1] and w_heavy[1] > w_heavy[0]


def test_threshold_follows_the_percent_convention(tmp_path):
    from agents.docqa.reasoner import NAMES, TRACE_FEATURES, DocQAReasoner, Heads

    Heads([[0.0]] * (len(NAMES) + 1), [0.0] * (len(NAMES) + 1), [0.0], [0.0] * len(TRACE_FEATURES), 0.0, 0.5,
          {"thresholds": {"ratio": 0.95, "percent": 0.7}}).save(tmp_path)
    assert DocQAReasoner(tmp_path, percent="ratio").threshold == pytest.approx(0.95)
    assert DocQAReasoner(tmp_path, percent="percent").threshold == pytest.approx(0.7)
    Heads([[0.0]], [0.0], [0.0], [0.0], 0.0, 0.5).save(tmp_path / "old")
    assert DocQAReasoner(tmp_path / "old", percent="ratio").threshold == pytest.approx(0.5)


def test_heads_built_for_other_shapes_fail_to_load_with_the_field_and_the_rebuild_command(tmp_path):
    from agents.docqa.reasoner import NAMES, TRACE_FEATURES, Heads

    Heads([[0.0]] * (len(NAMES) + 1), [0.0] * (len(NAMES) + 1), [0.0], [0.0] * len(TRACE_FEATURES), 0.0,
          0.5).save(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["shapes"] = [s for s in cfg["shapes"] if s != "year_smaller"]
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"config.json: field 'shapes' lists \d+ entries.*new: year_smaller.*"
                                         r"--rebuild"):
        Heads.load(tmp_path)


def test_a_model_built_for_other_features_or_records_counts_as_not_built(tmp_path, monkeypatch):
    from agents.docqa.models import CELLS, READERS, REASONER, TRAINING_DATA, built, model_dir, synthetic_version
    from agents.docqa.knowledge import FACT_FEATURES, FUSION_FEATURES
    from agents.docqa.reasoner import NAMES, TRACE_FEATURES, Heads

    monkeypatch.setenv("DCA_HOME", str(tmp_path))
    assert not built(REASONER)
    heads = Heads([[0.0]] * (len(NAMES) + 1), [0.0] * (len(NAMES) + 1), [0.0], [0.0] * len(TRACE_FEATURES), 0.0,
                  0.5, {"fact_features": list(FACT_FEATURES), "fusion_features": list(FUSION_FEATURES)})
    heads.save(model_dir(REASONER))
    info = model_dir(REASONER) / "dca_build.json"
    record = {"seconds": 1.0, "training_data": TRAINING_DATA, "synthetic_templates": synthetic_version(), "cells": CELLS}
    info.write_text(json.dumps(record))
    assert not built(REASONER)  # built before the cross-encoders beside the heads
    loaded = Heads.load(model_dir(REASONER))
    assert (loaded.fact_reranker(), loaded.shape_reader(), loaded.operand_reader()) == (None, None, None)
    for sub in READERS:
        (model_dir(REASONER) / sub).mkdir()
        (model_dir(REASONER) / sub / "config.json").write_text("{}")
        assert built(REASONER) == (sub == READERS[-1])
    info.write_text(json.dumps({**record, "training_data": "older"}))  # built from the records of an older split
    assert not built(REASONER)
    info.write_text(json.dumps({**record, "synthetic_templates": "older"}))  # from other synthetic questions
    assert not built(REASONER)
    info.write_text(json.dumps({k: v for k, v in record.items() if k != "cells"}))  # cells read years otherwise
    assert not built(REASONER)
    info.write_text(json.dumps(record))
    assert built(REASONER)
    heads.config["fact_features"] = list(FACT_FEATURES[:-1])  # an older build, before a feature was added
    heads.save(model_dir(REASONER))
    assert not built(REASONER)
    heads.config["fact_features"] = list(FACT_FEATURES)
    heads.config.pop("fusion_features")  # an older build, fusing the reranker by rank
    heads.save(model_dir(REASONER))
    assert not built(REASONER)


class _OrderReranker:
    """Stands in for the cross-encoder to pin the fusion: scores are given per fact text."""

    def __init__(self, scores: dict[str, float]):
        self.scores, self.calls = scores, 0

    def predict(self, pairs, **_):
        self.calls += 1
        return [self.scores[text] for _, text in pairs]


def test_the_fact_reranker_is_fused_by_rank_and_read_once_per_query(bonds):
    from agents.docqa.knowledge import PageKnowledge

    q = bonds.question
    order = [e.text for e in PageKnowledge(bonds.evidence).retrieve(q, len(bonds.evidence))]
    assert len(order) >= 6
    # the reranker agrees with the ranker except that it puts the ranker's first fact last, its second first
    read = {t: -i for i, t in enumerate(order)}
    read[order[0]], read[order[1]] = -len(order), 1.0
    reranker = _OrderReranker(read)
    fused = PageKnowledge(bonds.evidence, reranker=reranker)
    assert [e.text for e in fused.retrieve(q, 3)] == order[1:4]
    fused.retrieve(q, 5)
    assert reranker.calls == 1  # strategies and retries ask the same question again
    fused.retrieve("What were the total bonds in 2008?", 3)
    assert reranker.calls == 2


def test_learnt_fusion_weighs_the_ranker_and_the_reranker_as_its_weights_say(bonds):
    """With fusion weights the final order is the logistic regression's over FUSION_FEATURES: all
    weight on the reranker's rank gives the reranker's order, all on the ranker's logit the ranker's."""
    from agents.docqa.knowledge import FACT_FEATURES, FUSION_FEATURES, PageKnowledge

    q = bonds.question
    weights = [1.0 if f == "dense" else 0.0 for f in FACT_FEATURES]
    ranker = [e.text for e in PageKnowledge(bonds.evidence, weights=weights).retrieve(q, 6)]
    read = {e.text: float(i) for i, e in enumerate(bonds.evidence)}  # page order, last fact first
    by_read = sorted(read, key=lambda t: -read[t])[:6]
    assert by_read != ranker
    only = lambda name: [4.0 if f == name else 0.0 for f in FUSION_FEATURES]  # noqa: E731
    for name, want in (("reader_rank", by_read), ("ranker_logit", ranker)):
        know = PageKnowledge(bonds.evidence, weights=weights, reranker=_OrderReranker(read), fusion=only(name))
        assert [e.text for e in know.retrieve(q, 6)] == want
    # without the fact ranker's weights there are no features to fuse: reciprocal rank, as before
    plain = PageKnowledge(bonds.evidence, reranker=_OrderReranker(read), fusion=only("reader_rank"))
    rank_fused = PageKnowledge(bonds.evidence, reranker=_OrderReranker(read))
    assert [e.id for e in plain.retrieve(q, 6)] == [e.id for e in rank_fused.retrieve(q, 6)]


def test_fusion_trains_on_out_of_fold_reads_and_scores_gold_facts_above_the_rest(finqa_train, monkeypatch):
    import math

    from agents.docqa import train
    from agents.docqa.knowledge import FACT_FEATURES, FUSION_FEATURES
    from agents.docqa.reasoner import Featurizer, Heads

    problems = list(finqa_train.problems("train"))[:10]
    trained: list[int] = []
    fitted: list[tuple] = []
    real_reranker, real_fit = train.train_fact_reranker, train._fit_linear
    monkeypatch.setattr(train, "train_fact_reranker",
                        lambda ps, out, **kw: trained.append(len(ps)) or real_reranker(ps, out, **kw))
    monkeypatch.setattr(train, "_fit_linear", lambda x, y, c, **kw: fitted.append((x, y)) or real_fit(x, y, c, **kw))
    heads = Heads([[0.0]], [0.0], [0.0], [0.0], 0.0, 0.5,
                  fact_w=[1.0 if f == "dense" else 0.0 for f in FACT_FEATURES])
    fusion = train.train_fact_fusion(problems, Featurizer(), heads, quick=True, progress=False)
    # two rerankers, one per half of the pages, each reading the other half's questions
    assert len(trained) == 2 and sum(trained) == len(problems) and min(trained) > 0
    assert set(fusion) == {"ratio"} and len(fusion["ratio"]) == len(FUSION_FEATURES)
    (xs, ys), = fitted
    assert all(len(x) == len(FUSION_FEATURES) for x in xs) and 0 < sum(ys) < len(ys)
    # the intercept is carried by the bias feature: gold facts come out likelier than not, the rest not
    prob = [1 / (1 + math.exp(-sum(w * v for w, v in zip(fusion["ratio"], x)))) for x in xs]
    gold = [q for q, y in zip(prob, ys) if y]
    rest = [q for q, y in zip(prob, ys) if not y]
    assert sum(gold) / len(gold) > 0.5 > sum(rest) / len(rest)


def test_fact_reranker_trains_beside_the_heads_and_loads_from_them(tmp_path, finqa_train):
    from agents.docqa.models import FACT_RERANKER
    from agents.docqa.reasoner import Heads
    from agents.docqa.train import train_fact_reranker

    problems = list(finqa_train.problems("train"))[:8]
    train_fact_reranker(problems, tmp_path / FACT_RERANKER, quick=True)
    heads = Heads([[0.0]], [0.0], [0.0], [0.0], 0.0, 0.5, {"fact_reranker": FACT_RERANKER})
    heads.save(tmp_path)
    reranker = Heads.load(tmp_path).fact_reranker()
    assert reranker is not None
    scores = reranker.predict([(problems[0].question, e.text) for e in problems[0].evidence[:3]])
    assert len(scores) == 3 and len({round(float(s), 6) for s in scores}) == 3


@pytest.mark.slow
def test_shape_reader_learns_the_shape_from_the_wording(tmp_path):
    """The fine-tuned question reader (bench/docqa_shapes.py) tells a change from an average on
    line items it never saw."""
    from sentence_transformers.cross_encoder import CrossEncoder

    from agents.docqa.reasoner import SHAPE_LABELS
    from agents.docqa.train import train_shape_reader

    items = ["revenue", "net income", "total assets", "operating expenses", "cash", "long-term debt",
             "inventory", "goodwill", "interest expense", "capital expenditures", "deferred taxes", "payroll"]
    seen, unseen = items[:10], items[10:]
    change = ["what was the change in {} from 2018 to 2019?", "by how much did {} increase in 2019?",
              "what is the difference in {} between 2019 and 2018?"]
    average = ["what was the average {} for 2018 and 2019?", "what is the mean {} over 2018 and 2019?",
               "what was the average value of {} in 2018 and 2019?"]
    data = [(t.format(i), "percent", SHAPE_LABELS.index(s)) for i in seen
            for s, ts in (("subtract", change), ("average", average)) for t in ts]
    out = train_shape_reader([q for q, _, _ in data], [c for _, c, _ in data], [y for _, _, y in data],
                             tmp_path / "reader", epochs=8)
    reader = CrossEncoder(str(out), device="cpu")
    probe = [(f"what was the change in {i} from 2020 to 2021?", "subtract") for i in unseen] + \
        [(f"what was the average {i} for 2020 and 2021?", "average") for i in unseen]
    logits = reader.predict([("percent", q) for q, _ in probe])
    assert [SHAPE_LABELS[int(row.argmax())] for row in logits] == [s for _, s in probe]

    # saved beside heads whose linear shape head knows nothing, it decides the reasoner's shapes
    # in proportion to shape_mix
    from agents.docqa.reasoner import TRACE_FEATURES, DocQAReasoner, Heads

    flat = [[0.0]] * len(SHAPE_LABELS)
    for mix in (0.0, 0.5):
        Heads(flat, [0.0] * len(SHAPE_LABELS), [0.0], [0.0] * len(TRACE_FEATURES), 0.0, 0.5,
              {"shape_reader": "reader", "shape_mix": mix}).save(tmp_path)
        probs = DocQAReasoner(tmp_path).shape_probs(probe[0][0])
        assert sum(probs) == pytest.approx(1.0)
        if mix == 0.0:
            assert max(probs) == pytest.approx(min(probs))
        else:
            assert SHAPE_LABELS[probs.index(max(probs))] == "subtract"
            assert max(probs) > 0.5 / len(SHAPE_LABELS) + 0.25


def test_operand_labels_mark_the_cells_the_gold_program_computes_with(bonds):
    from agents.docqa.cells import evidence_cells, same_number
    from agents.docqa.reasoner import cell_text
    from agents.docqa.train import operand_labels

    cells = evidence_cells(bonds.evidence)
    labels = operand_labels(bonds, cells)
    assert labels is not None and len(labels) == len(cells)
    marked = [c for c, y in zip(cells, labels) if y]
    assert {114400, 329500} <= {abs(c.value) for c in marked}
    assert all(any(same_number(v, c) for v in (114400, 329500)) for c in marked)  # at any scale
    assert len(marked) < len(cells) / 4
    gold = next(c for c in cells if abs(c.value) == 114400)
    assert "114,400" in cell_text(gold) or "114400" in cell_text(gold)
    assert gold.label in cell_text(gold)
    # a question whose operands are not among the cells has no labels to learn from
    assert operand_labels(bonds, [c for c, y in zip(cells, labels) if not y]) is None


@pytest.mark.slow
def test_operand_reader_learns_which_cells_a_question_computes_with(tmp_path, finqa_train):
    """Trained on real FinQA questions with their facts, the reader puts a gold operand first far
    more often than chance, and the reasoner reads its logit as an operand feature."""
    import random

    from agents.docqa.cells import operand_cells
    from agents.docqa.reasoner import CELL_FEATURES, Featurizer, Heads, Question, reader_logits, score_cells
    from agents.docqa.train import operand_labels, train_operand_reader, training_evidence
    from retrieval.models import load_reranker

    rng = random.Random(0)
    problems, cell_lists = [], []
    for p in finqa_train.problems("train"):
        cells = operand_cells(training_evidence(p, rng))
        if operand_labels(p, cells) is not None and len(cells) >= 6:
            problems.append(p)
            cell_lists.append(cells)
        if len(problems) == 16:
            break
    out = train_operand_reader(problems, cell_lists, tmp_path / "operand-reader", epochs=4)
    reader = load_reranker(str(out))
    hits, chance = 0, 0.0
    for p, cells in zip(problems, cell_lists):
        labels = operand_labels(p, cells)
        logits = reader_logits(reader, p.question, cells)
        hits += labels[max(range(len(cells)), key=logits.__getitem__)]
        chance += sum(labels) / len(labels)
    assert hits / len(problems) >= 0.6 and hits > 2 * chance

    Heads([[0.0]], [0.0], [0.0] * len(CELL_FEATURES), [0.0], 0.0, 0.5,
          {"operand_reader": "operand-reader"}).save(tmp_path)
    heads = Heads.load(tmp_path)
    p, cells = problems[0], cell_lists[0]
    scored = score_cells(heads, Featurizer(), Question.of(p.question), cells)
    read = dict(zip([(c.index, c.fact_id) for c in cells], reader_logits(reader, p.question, cells)))
    col = CELL_FEATURES.index("operand_reader")
    assert all(f[col] == pytest.approx(read[(c.index, c.fact_id)], abs=1e-5) for c, f, _ in scored)


def test_the_reasoner_reads_reranked_facts_in_the_fact_rankers_order(bonds, reasoner):
    """The reranker chooses the facts; the reasoner's heads learnt the fact ranker's order, so the
    facts carry the ranker's score and the reasoner ranks its cells' facts by it."""
    from agents.docqa.knowledge import RANKER_SCORE, PageKnowledge

    q = bonds.question
    plain = PageKnowledge(bonds.evidence)
    order = [e.text for e in plain.retrieve(q, len(bonds.evidence))]
    read = {t: -i for i, t in enumerate(order)}
    read[order[0]], read[order[1]] = -len(order), 1.0  # the reranker demotes the ranker's first fact
    fused = PageKnowledge(bonds.evidence, reranker=_OrderReranker(read)).retrieve(q, 4)
    own = dict(zip((e.id for e in plain.facts), plain.scores(q)))
    assert all(e.metadata[RANKER_SCORE] == pytest.approx(own[e.id], abs=1e-6) for e in fused)
    assert RANKER_SCORE not in plain.retrieve(q, 4)[0].metadata  # no reranker: one order, nothing to add
    by_ranker = [e.id for e in sorted(fused, key=lambda e: -own[e.id])]
    assert by_ranker != [e.id for e in fused]
    cells = [c for cand in reasoner.candidates(q, fused) for c in cand.cells]
    assert cells and all(by_ranker[c.rank] == c.fact_id for c in cells)


def test_mention_order_reads_the_words_that_tell_two_operands_apart():
    """"The ratio of the breast implant receivables to the breast implant liabilities": both labels
    start "breast implant", so the order comes from "receivables" and "liabilities"."""
    from agents.docqa.cells import Cell
    from agents.docqa.reasoner import TRACE_FEATURES, Question, _mention_order, trace_features
    from agents.docqa.shapes import SHAPES

    receivables = Cell(130.0, "130", "breast implant receivables", "2005", "f1", 0, "table", row=1)
    liabilities = Cell(7.0, "$7", "breast implant liabilities", "2005", "f2", 1, "table", row=2)
    q = Question.of("in 2005 what was the ratio of the breast implant receivables to the breast implant liabilities")
    assert _mention_order(q, receivables, liabilities) == 1.0
    assert _mention_order(q, liabilities, receivables) == -1.0
    years = Question.of("what was the change in revenue from 2018 to 2019?")
    late, early = (Cell(5.0, "5", "revenue", y, "f", 0, "table", row=1) for y in ("2019", "2018"))
    assert _mention_order(years, early, late) == 1.0
    at = TRACE_FEATURES.index("ratio_mention_order")
    feats = trace_features(q, SHAPES["divide"], 0.0, [receivables, liabilities], [0.0, 0.0], 130 / 7)
    assert feats[at] == 1.0  # a ratio question: its own order feature
    share = Question.of("what portion of the breast implant liabilities is the breast implant receivables?")
    assert trace_features(share, SHAPES["divide"], 0.0, [receivables, liabilities], [0.0, 0.0], 130 / 7)[at] == 0.0



def test_a_yes_no_comparison_is_read_the_way_the_question_puts_it():
    """"Did X increase between 2008 and 2009?" compares X 2009 > X 2008 ("decrease": the other way);
    "did A outperform B?" compares A > B; the reversed comparison is not a candidate."""
    from agents.docqa.cells import Cell
    from agents.docqa.reasoner import Question, build_candidates, greater_order
    from agents.docqa.shapes import NAMES

    late, early = (Cell(v, str(v), "aaa/aaa share", y, "f", 0, "table", row=1, index=i)
                   for i, (v, y) in enumerate(((14.0, "2009"), (19.0, "2008"))))
    rose = Question.of("did the share of securities rated aaa/aaa increase between 2008 and 2009?")
    fell = Question.of("did the share of securities rated aaa/aaa decrease between 2008 and 2009?")
    assert greater_order(rose, late, early) == 1.0 and greater_order(rose, early, late) == -1.0
    assert greater_order(fell, early, late) == 1.0
    jpm = Cell(167.48, "167.48", "jpmorgan chase", "2012", "f1", 0, "table", row=1)
    spx = Cell(205.07, "205.07", "s&p 500", "2012", "f2", 1, "table", row=2)
    beat = Question.of("did jpmorgan chase outperform the s&p 500 over the five year period?")
    assert greater_order(beat, jpm, spx) == 1.0 and greater_order(beat, spx, jpm) == -1.0
    probs = [1.0 if n == "greater" else 0.0 for n in NAMES]
    lines = [c.lines for c in build_candidates(rose, probs, [(late, [], 1.0), (early, [], 0.5)], "ratio", top_shapes=1)]
    assert lines == [["answer = 14 > 19"]]
    lines = [c.lines for c in build_candidates(beat, probs, [(spx, [], 1.0), (jpm, [], 0.5)], "ratio", top_shapes=1)]
    assert lines == [["answer = 167.48 > 205.07"]]


def test_a_ratio_question_that_states_its_order_drops_the_part_of_whole_priors():
    """"The ratio of receivables (130) to liabilities (7)" is 18.6: with the order stated, neither
    "the part is the smaller" nor "a ratio is at most 1" may count for 7 / 130. A "portion" question
    keeps them, and so do paragraph numbers, whose labels name both operands."""
    from agents.docqa.cells import Cell
    from agents.docqa.reasoner import TRACE_FEATURES, Question, trace_features
    from agents.docqa.shapes import SHAPES

    receivables = Cell(130.0, "130", "breast implant receivables", "2005", "f1", 0, "table", row=1)
    liabilities = Cell(7.0, "$7", "breast implant liabilities", "2005", "f2", 1, "table", row=2)
    priors = [TRACE_FEATURES.index(n) for n in ("part_of_whole", "ratio_result_large", "unit_ratio")]

    def feats(question: str, a: Cell, b: Cell) -> list[float]:
        row = trace_features(Question.of(question), SHAPES["divide"], 0.0, [a, b], [0.0, 0.0], a.value / b.value)
        return [row[i] for i in priors]

    ratio = "in 2005 what was the ratio of the breast implant receivables to the breast implant liabilities"
    assert feats(ratio, receivables, liabilities) == [0.0, 0.0, 0.0]
    assert feats(ratio, liabilities, receivables) == [0.0, 0.0, 0.0]
    portion = "what portion of the breast implant liabilities is the breast implant receivables?"
    assert feats(portion, receivables, liabilities) == [-1.0, 1.0, 0.0]
    assert feats(portion, liabilities, receivables) == [1.0, 0.0, 1.0]
    said = [Cell(c.value, c.text, c.label, c.column, c.fact_id, c.rank, "text") for c in (receivables, liabilities)]
    assert feats(ratio, *said) == [-1.0, 1.0, 0.0]


def test_a_respectively_clause_orders_a_ratio_by_its_years():
    """"$2.7 million and $37.8 million ... 2016 and 2015, respectively": the two amounts differ only
    by year, so "the ratio ... for 2015 and 2016" reads 37.8 first, whatever words surround each
    number, and the part-of-whole priors stand aside as they do for a table's cells."""
    from agents.docqa.cells import text_cells
    from agents.docqa.reasoner import TRACE_FEATURES, Question, _mention_order, trace_features
    from agents.docqa.shapes import SHAPES
    from dca.types import Evidence

    clause = Evidence("p1", "the aggregate fair values of our outstanding fuel hedges as of december 31 , 2016 and "
                            "2015 were current liabilities of $2.7 million and $37.8 million , respectively .")
    recent, earlier = text_cells(clause)
    assert (recent.stated_year, earlier.stated_year) == (2016, 2015)
    q = Question.of("what was the ratio of the aggregate fair values of our outstanding fuel hedges for 2015 and 2016")
    assert _mention_order(q, earlier, recent) == 1.0 and _mention_order(q, recent, earlier) == -1.0
    at = {n: TRACE_FEATURES.index(n) for n in ("part_of_whole", "ratio_result_large", "ratio_mention_order")}
    row = trace_features(q, SHAPES["divide"], 0.0, [earlier, recent], [0.0, 0.0], 37.8 / 2.7, "ratio")
    assert {n: row[i] for n, i in at.items()} == {"part_of_whole": 0.0, "ratio_result_large": 0.0,
                                                  "ratio_mention_order": 1.0}
    swapped = trace_features(q, SHAPES["divide"], 0.0, [recent, earlier], [0.0, 0.0], 2.7 / 37.8, "ratio")
    assert swapped[at["ratio_mention_order"]] == -1.0


def test_a_difference_question_tells_the_ranker_the_sign_of_a_subtraction():
    """"The difference between A and B" is stated positive; a change keeps its sign."""
    from agents.docqa.cells import Cell
    from agents.docqa.reasoner import TRACE_FEATURES, Question, trace_features
    from agents.docqa.shapes import SHAPES

    at = TRACE_FEATURES.index("difference_sign")
    domestic = Cell(1.9, "1.9", "domestic discount rate", "2019", "f1", 0, "table", row=1)
    foreign = Cell(4.0, "4", "international discount rate", "2019", "f2", 1, "table", row=2)
    q = Question.of("What is the difference between the domestic and international discount rates in 2019?")

    def sign(question: Question, a: Cell, b: Cell, shape: str = "subtract") -> float:
        return trace_features(question, SHAPES[shape], 0.0, [a, b], [0.0, 0.0], a.value - b.value)[at]

    assert sign(q, foreign, domestic) == 1.0 and sign(q, domestic, foreign) == -1.0
    assert sign(q, foreign, foreign) == 0.0  # no sign to prefer
    assert sign(Question.of("What was the change in the discount rate from 2018 to 2019?"), domestic, foreign) == 0.0
    assert sign(q, domestic, foreign, "change_ratio") == 0.0  # only a plain subtraction
    spread = Question.of("What is the range of the discount rates in 2019?")  # a range is max - min
    assert sign(spread, foreign, domestic) == 1.0 and sign(spread, domestic, foreign) == -1.0


def test_a_year_no_fact_read_states_is_looked_up_and_the_trace_reads_what_the_lookup_fetched():
    """Two hops: the fact retrieved for the question gives 2019 (or 2016) only; the first step looks
    up the other year, and the traces that follow it compute with the fact the lookup fetched."""
    from agents.docqa.agent import AnswerWording, docqa_verifier
    from agents.docqa.knowledge import PageKnowledge
    from agents.docqa.reasoner import DocQAReasoner
    from dca import Agent
    from dca.lookup import LOOKUP
    from dca.types import Evidence

    def row(i: int, text: str) -> Evidence:
        return Evidence(id=f"f{i}", text=text, metadata={"kind": "table_row", "row": i, "scale": "million"})

    facts = [row(1, "net sales: 2019 = $ 120; 2018 = $ 100"), row(2, "net sales: 2017 = $ 90; 2016 = $ 80"),
             row(3, "employees: 2019 = 300; 2018 = 280"), row(4, "capital expenditures: 2019 = 12; 2018 = 15")]
    question = "what was the change in net sales from 2016 to 2019?"
    reasoner = DocQAReasoner(percent="ratio", use_heads=False, top_facts=1)
    agent = Agent(logic=reasoner, knowledge=PageKnowledge(facts), wording=AnswerWording("ratio"),
                  verifier=docqa_verifier("ratio", 0.0), top_k=1, checkpoint=None)
    result = agent.run(question)
    first = result.steps[0].text
    assert first.startswith("x1 = lookup(") and "sales" in first and "2016" in first
    assert {"f1", "f2"} <= {e.id for e in result.evidence}
    fetched = [e for e in result.evidence if LOOKUP in e.metadata]
    assert fetched and all(e.id != result.evidence[0].id for e in fetched)

    def gives_40(cands) -> list:
        return [c for c in cands if isinstance(c.value, (int, float)) and abs(c.value - 40.0) < 1e-9]

    assert not gives_40(reasoner.candidates(question, result.evidence))  # the task's one fact cannot give it
    after = gives_40(reasoner.candidates(question, result.evidence, prefix=[first]))
    assert after and all(c.lines[0] == first and "x1" not in " ".join(c.lines[1:]) for c in after)
    assert any({cell.fact_id for cell in c.cells} == {"f1", "f2"} for c in after)
    off = DocQAReasoner(percent="ratio", use_heads=False, top_facts=1, lookups=False)
    assert off.lookup(question, result.evidence[:1]) == ""


def test_a_which_year_question_gets_comparisons_of_two_years_cells_of_one_row(tatqa_train):
    from agents.docqa.cells import operand_cells
    from agents.docqa.grounding import FactGrounded
    from agents.docqa.reasoner import NAMES, Featurizer, Question, build_candidates, score_cells
    from dca.verifier import Verifier

    p = next(p for p in tatqa_train.problems("train") if p.gold and " if " in p.gold[0] and " > " in p.gold[0])
    row = [e for e in p.evidence if e.metadata.get("gold_key") in p.meta["gold_keys"]
           and e.metadata.get("kind") == "table_row"]
    q = Question.of(p.question)
    scored = score_cells(None, Featurizer(), q, operand_cells(row))
    probs = [0.5 if n in ("year_larger", "year_smaller") else 0.0 for n in NAMES]
    cands = build_candidates(q, probs, scored, "percent", top_shapes=2)
    years = [c for c in cands if c.shape in ("year_larger", "year_smaller")]
    assert len(years) == len(cands)
    assert years and any(c.shape == "year_larger" and c.value == p.answer for c in years)
    for c in years:
        a, b = c.cells
        assert a.fact_id == b.fact_id and a.years != b.years
        assert c.value in (a.years[0], b.years[0])
    right = next(c for c in years if c.value == p.answer)
    checked = Verifier(checks=["parses", "executes", FactGrounded()]).check_trace(p.question, right.lines, row)
    assert checked[-1].verdict.ok and checked[-1].evidence_ids == [row[0].id]


def test_a_which_year_question_is_answered_by_a_year_whatever_the_shape_head_says():
    """"Which FY has a higher EBITDA?" read by the shape head as the yes/no comparison "greater":
    the year shapes are still tried, and only they answer."""
    from agents.docqa.cells import operand_cells
    from agents.docqa.reasoner import NAMES, Featurizer, Question, build_candidates, score_cells
    from dca.types import Evidence

    row = [Evidence(id="r1", text="EBITDA: 30 June 2019 = 63,954; 30 June 2018 = 79,046; Change % = -19% "
                    "($ in thousands)", source="t", metadata={"kind": "table_row", "label": "EBITDA", "scale": "thousand",
                                                              "columns": "30 June 2019 | 30 June 2018 | Change %"})]
    cells = operand_cells(row)
    assert [c.years for c in cells] == [[2019], [2018], []]
    probs = [0.9 if n == "greater" else 0.1 if n in ("subtract", "change_ratio") else 0.0 for n in NAMES]
    for question, answer in (("Which FY has a higher EBITDA?", 2018), ("In which year was EBITDA lower?", 2019)):
        q = Question.of(question)
        cands = build_candidates(q, probs, score_cells(None, Featurizer(), q, cells), "percent", top_shapes=2)
        assert cands and {c.shape for c in cands} <= {"year_larger", "year_smaller"}
        assert answer in {c.value for c in cands}
    q = Question.of("Was EBITDA higher in 2019 than in 2018?")  # not a which-year question: the head decides
    cands = build_candidates(q, probs, score_cells(None, Featurizer(), q, cells), "percent", top_shapes=2)
    assert {c.shape for c in cands} == {"greater", "subtract"}


def test_the_change_in_a_percentage_is_a_difference_of_percentages():
    """"The change in percentage of sales represented by gross profit" (40.0 % of sales in 2019,
    50.9 % in 2018) is -10.9 points: the shape head's percentage change (-21 %) and every other
    shape that computes a percentage give their probability to ``subtract``; "the percentage
    change in ..." keeps the head's reading."""
    from agents.docqa.reasoner import NAMES, SHAPE_LABELS, points_change

    probs = [0.0] * len(SHAPE_LABELS)
    probs[NAMES.index("change_ratio")], probs[NAMES.index("subtract")] = 0.6, 0.25
    probs[NAMES.index("divide")], probs[NAMES.index("value")], probs[-1] = 0.05, 0.05, 0.05
    points = points_change("What was the change in percentage of sales represented by gross profit between 2018 "
                           "and 2019?", probs)
    assert points[NAMES.index("subtract")] == pytest.approx(0.9)
    assert points[NAMES.index("change_ratio")] == points[NAMES.index("divide")] == 0.0
    assert points[NAMES.index("value")] == points[-1] == 0.05 and sum(points) == pytest.approx(1.0)
    assert points_change("what is the change in percentage points in debt-to-capital ratio from 2008 to 2009?",
                         probs)[NAMES.index("subtract")] == pytest.approx(0.9)
    for question in ("What was the percentage change in gross profit between 2018 and 2019?",
                     "What was the change in the percentage change of sales?", "What was the change in sales?"):
        assert points_change(question, probs) == probs
