"""Task families: registry, deterministic and disjoint splits, gold traces that score, held-out wordings."""
from __future__ import annotations

import json
import re
import time

import pytest

from dca.reasoning.steps import Interpreter
from dca.reasoning.tasks import families, get_family
from dca.reasoning.tasks.synthetic import OPS, QUESTION, START, Synthetic


def _gold_answer(problem):
    return Interpreter().run_trace(problem.gold)["answer"]


def test_registry_names_and_unknown_family():
    assert {"gsm8k", "finqa", "tatqa", "synthetic", "countdown"} <= set(families())
    with pytest.raises(KeyError, match="did you mean 'gsm8k'"):
        get_family("gsm8")


def test_gsm8k_splits(data_dir):
    fam = get_family("gsm8k")
    start = time.process_time()  # CPU time: the machine may be shared
    dev = list(fam.problems("dev"))
    assert time.process_time() - start < 2.0
    train_ids = {p.id for p in fam.problems("train", n=2000)}
    assert 450 <= len(dev) <= 560 and not train_ids & {p.id for p in dev}
    assert [p.id for p in fam.problems("dev", n=5, seed=3)] == [p.id for p in fam.problems("dev", n=5, seed=3)]
    assert [p.id for p in fam.problems("dev", n=5, seed=3)] != [p.id for p in fam.problems("dev", n=5, seed=4)]
    for p in dev[:100]:
        assert fam.score(p, _gold_answer(p)) and p.meta["steps"] == len(p.gold) == len(p.meta["stated"])
    assert not fam.score(dev[0], dev[0].answer + 1) and not fam.score(dev[0], "72")
    with pytest.raises(ValueError, match="unknown split 'test'"):
        next(fam.problems("test"))


def test_finqa_pages_never_in_both_splits_and_evidence_has_gold_keys(data_dir):
    fam = get_family("finqa")
    train, dev = list(fam.problems("train")), list(fam.problems("dev"))
    # the training file, plus the dev file's pages the hash does not keep for dev
    assert (len(train), len(dev)) == (193, 107)
    assert not {p.meta["page"] for p in train} & {p.meta["page"] for p in dev}
    train_file = {r["id"] for r in json.load(open(data_dir / "finqa" / "train_100.json"))}
    assert train_file <= {p.id.removeprefix("finqa-") for p in train}
    for p in train + dev:
        keys = {e.metadata.get("gold_key") for e in p.evidence}
        assert set(p.meta["gold_keys"]) <= keys, p.id
        assert fam.score(p, _gold_answer(p)), p.id
    types = {p.meta["type"] for p in dev}
    assert types == {"arithmetic", "comparison", "table"}
    greater = next(p for p in dev if p.meta["type"] == "comparison")
    assert isinstance(greater.answer, bool) and not fam.score(greater, not greater.answer)


def test_tatqa_split_by_document_with_types_and_scales(data_dir):
    fam = get_family("tatqa")
    train, dev = list(fam.problems("train")), list(fam.problems("dev"))
    docs_train, docs_dev = {p.meta["document"] for p in train}, {p.meta["document"] for p in dev}
    assert not docs_train & docs_dev
    assert 0.2 <= len(docs_dev) / (len(docs_train) + len(docs_dev)) <= 0.4
    assert {p.meta["type"] for p in dev} == {"arithmetic", "span", "count"}
    for p in train + dev:
        assert p.gold is not None and fam.score(p, _gold_answer(p)), p.id
    pct = next(p for p in dev if p.meta["scale"] == "percent" and "/" in p.meta["derivation"])
    assert pct.gold[-1].endswith("* 100")
    assert fam.score(pct, _gold_answer(pct) / 100)  # a ratio given without a scale counts, as in TAT-QA
    arith = next(p for p in dev if p.meta["type"] == "arithmetic" and "table" in p.meta["answer_from"])
    assert any(k.startswith("table_") for k in arith.meta["gold_keys"])


def _template_regex(text: str) -> re.Pattern:
    parts = re.split(r"\{\w+\}", text)
    return re.compile(".+?".join(re.escape(p) for p in parts))


def test_synthetic_depth_gold_and_held_out_wordings():
    fam = Synthetic(min_steps=7, max_steps=7)
    for p in fam.problems("train", n=30):
        assert len(p.gold) == 7 and p.meta["steps"] == 7 and fam.score(p, _gold_answer(p))
        env = Interpreter().run_trace(p.gold)
        assert [env[line.split(" = ")[0]] for line in p.gold] == p.meta["stated"]
    held = [t for ts in [START, QUESTION, *OPS.values()] for t in ts if t.held_out]
    seen = [t for ts in [START, QUESTION, *OPS.values()] for t in ts if not t.held_out]
    test_text = " ".join(p.question for p in fam.problems("test", n=50))
    train_text = " ".join(p.question for p in Synthetic(1, 20).problems("train", n=300))
    assert not any(_template_regex(t.text[1:]).search(test_text) for t in seen if "{" in t.text[1:])
    assert not any(_template_regex(t.text[1:]).search(train_text) for t in held if "{" in t.text[1:])
    assert all(1 <= p.meta["steps"] <= 20 for p in Synthetic().problems("dev", n=50))
    train_q = {p.question for p in Synthetic(1, 3).problems("train", n=500)}
    assert not train_q & {p.question for p in Synthetic(1, 3).problems("dev", n=100)}
    assert len({p.meta["vocab"] for p in Synthetic().problems("train", n=300)}) >= 8


def test_synthetic_plan_comments_quote_the_sentence_the_next_step_acts_on():
    plain = list(Synthetic(min_steps=1, max_steps=9).problems("train", n=40, seed=3))
    planned = list(Synthetic(min_steps=1, max_steps=9, plan=True).problems("train", n=40, seed=3))
    for p, q in zip(plain, planned):
        assert q.question == p.question and q.answer == p.answer  # the same problems, only commented
        sentences = re.split(r"(?<=[.?])\s+", q.question)
        assert len(sentences) == len(q.gold) + 2  # start, one per step, question
        assert "#" not in q.gold[-1]
        for i, line in enumerate(q.gold[:-1]):
            code, _, comment = line.partition(" # next: ")
            assert code == p.gold[i]
            # step i + 1 acts on sentence i + 2; before the answer step the question follows it
            assert comment == " ".join(sentences[i + 2: i + 4 if i == len(q.gold) - 2 else i + 3])
        assert Interpreter().run_trace(q.gold)["answer"] == q.answer


def test_countdown_scores_traces_and_rejects_reused_or_foreign_numbers():
    fam = get_family("countdown")
    problems = list(fam.problems("dev", n=50))
    keys = {(tuple(sorted(p.meta["numbers"])), p.answer) for p in problems}
    assert not keys & {(tuple(sorted(p.meta["numbers"])), p.answer) for p in fam.problems("train", n=500)}
    for p in problems:
        assert 3 <= len(p.meta["numbers"]) <= 4 and fam.score(p, p.gold)
    p = next(q for q in problems if q.answer not in q.meta["numbers"])
    assert not fam.score(p, [f"answer = {p.answer}"])  # the target itself is not a given number
    a = p.meta["numbers"][0]
    assert not fam.score(p, [f"x1 = {a} + {a}", f"answer = x1 - x1 + {p.answer}"])
    assert fam.score(p, p.answer) and not fam.score(p, p.answer + 1)
