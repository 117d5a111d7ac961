"""FinQA questions over report pages, with gold traces from the dataset's programs and the page as evidence."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Iterator

from dca.reasoning.convert import ConvertError, finqa_match, finqa_trace
from dca.reasoning.tasks.base import Problem
from dca.reasoning.tasks.files import json_list
from dca.reasoning.tasks.splits import bucket, check_split, ordered
from dca.types import Evidence, Value

# The files are subsets of FinQA's own train and dev splits, whose pages do not overlap. With 100
# training questions the docqa heads could not learn FinQA's program shapes, so dca's "train" split
# also takes about half of the dev file's pages (chosen by a hash of the page, so every question on
# a page goes the same way); the other half stays dca's "dev". One page never sits in both splits
# (tests/tasks check it).
FILES = {"train": "train_100.json", "dev": "dev_200.json"}
DEV_KEEP = 0.5  # share of the dev file's pages that stay in dca's dev split


def page_of(record: dict) -> str:
    """The report page a record's question is asked about ("ADI/2011/page_61.pdf" of "...pdf-2")."""
    return str(record.get("filename") or str(record.get("id", "")).rsplit("-", 1)[0])


def kept_for_dev(record: dict) -> bool:
    return bucket(page_of(record), "finqa-dev") < DEV_KEEP


def facts_as_evidence(facts: list[Any]) -> list[Evidence]:
    """``retrieval`` facts as the ``Evidence`` a problem carries (same ids, text and metadata)."""
    return [Evidence(id=f.id, text=f.text, source=str(f.metadata.get("source", "")), metadata=dict(f.metadata))
            for f in facts]


def evidence_scale(evidence: list[Evidence], keys: list[str]) -> str:
    """The scale ("thousand", "million", ...) the gold evidence declares, or ""."""
    scales = Counter(e.metadata.get("scale") for e in evidence
                     if e.metadata.get("gold_key") in keys and e.metadata.get("scale"))
    return scales.most_common(1)[0][0] if scales else ""


class FinQA:
    """FinQA; "train" is the training file plus half of the dev file's pages, "dev" the other half
    (page-disjoint); scored by execution accuracy."""

    name = "finqa"
    splits = ("train", "dev")

    def __init__(self, data_dir: str | Path | None = None):
        if data_dir is None:
            from dca.data import data_file

            data_dir = data_file("finqa")
        self.dir = Path(data_dir)

    def records(self, split: str) -> list[dict]:
        check_split(self.name, split, self.splits)
        dev = [r for r in self._file("dev") if kept_for_dev(r) == (split == "dev")]
        return dev if split == "dev" else self._file("train") + dev

    def _file(self, split: str) -> list[dict]:
        path = self.dir / FILES[split]
        if not path.exists():
            raise FileNotFoundError(f"FinQA file {path} not found (set DCA_DATA to the data folder)")
        return json_list(str(path), "FinQA records")

    def problems(self, split: str = "train", n: int | None = None, seed: int = 0) -> Iterator[Problem]:
        for record in ordered(self.records(split), n, seed):
            yield self.problem(record, split)

    def problem(self, record: dict, split: str = "") -> Problem:
        from retrieval.records import finqa_facts

        qa = record.get("qa") or {}
        rid = record.get("id", "?")
        for key in ("question", "program", "exe_ans"):
            if key not in qa:
                raise ValueError(f"FinQA record {rid!r}: field qa.{key} missing")
        try:
            conv = finqa_trace(qa["program"], record.get("table"), answer=qa["exe_ans"],
                               step_values=[s.get("res") for s in qa.get("steps", [])])
            gold, warnings = conv.lines, conv.warnings
        except ConvertError as exc:
            gold, warnings = None, [str(exc)]
        answer = conv.answer if gold is not None else qa["exe_ans"]
        evidence = facts_as_evidence(finqa_facts(record))
        # a few gold_inds cite a sentence that is only "."; there is no fact to retrieve for those
        keys = [k for k, text in (qa.get("gold_inds") or {}).items() if any(ch.isalnum() for ch in str(text))]
        program = qa["program"]
        kind = "comparison" if "greater(" in program else "table" if "table_" in program else "arithmetic"
        return Problem(
            id=f"finqa-{rid}", question=qa["question"], answer=answer, gold=gold, evidence=evidence,
            family=self.name,
            meta={"split": split, "gold_keys": keys, "scale": evidence_scale(evidence, keys),
                  "steps": len(gold or []), "stated": conv.stated if gold else [], "program": program,
                  "type": kind, "warnings": warnings, "page": record.get("filename", "")},
        )

    def score(self, problem: Problem, answer: Value) -> bool:
        """FinQA's execution accuracy: the answer rounded to 5 decimals equals ``exe_ans``."""
        return finqa_match(answer, problem.answer)
