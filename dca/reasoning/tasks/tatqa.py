"""TAT-QA questions over report excerpts (a table and paragraphs) whose answer is one number."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from dca.numbers import find_numbers, parse_number
from dca.reasoning.convert import ConvertError, tatqa_match, tatqa_trace, year_answer, year_question_trace
from dca.reasoning.tasks.base import Problem
from dca.reasoning.tasks.files import json_list
from dca.reasoning.tasks.finqa import facts_as_evidence
from dca.reasoning.tasks.splits import bucket, check_split, ordered
from dca.types import Value

DEV_FRACTION = 0.3  # of the documents, chosen by a hash of the document uid


def single_number(answer: object) -> float | None:
    """The number a span/count answer consists of (``["$1,496.5"]`` -> 1496.5), else None."""
    if isinstance(answer, list):
        return single_number(answer[0]) if len(answer) == 1 else None
    if isinstance(answer, bool):
        return None
    if isinstance(answer, (int, float)):
        return float(answer)
    return parse_number(str(answer))


def _table_keys(table: list[list[str]], numbers: set[float]) -> list[str]:
    keys = []
    for i, row in enumerate(table):
        cells = {abs(v) for c in row if (v := parse_number(str(c))) is not None}
        if cells & numbers:
            keys.append(f"table_{i}")
    return keys


class TATQA:
    """TAT-QA (dev.json) split by document (~30 % "dev"); arithmetic questions plus one-number spans and counts."""

    name = "tatqa"
    splits = ("train", "dev")

    def __init__(self, path: str | Path | None = None):
        if path is None:
            from dca.data import data_file

            path = data_file("tatqa", "dev.json")
        self.path = str(path)

    def documents(self, split: str) -> list[dict]:
        check_split(self.name, split, self.splits)
        out = []
        for doc in json_list(self.path, "TAT-QA documents"):
            uid = str((doc.get("table") or {}).get("uid", ""))
            if not uid:
                raise ValueError(f"{self.path}: a document has no table.uid")
            if (bucket(uid, "tatqa-dev") < DEV_FRACTION) == (split == "dev"):
                out.append(doc)
        return out

    def problems(self, split: str = "train", n: int | None = None, seed: int = 0) -> Iterator[Problem]:
        items = [(doc, q) for doc in self.documents(split) for q in doc.get("questions", [])
                 if self.usable(q)]
        for doc, q in ordered(items, n, seed):
            yield self.problem(doc, q, split)

    @staticmethod
    def usable(q: dict) -> bool:
        kind = q.get("answer_type")
        if kind == "arithmetic":
            return single_number(q.get("answer")) is not None
        return kind in ("span", "count") and single_number(q.get("answer")) is not None

    def problem(self, doc: dict, q: dict, split: str = "") -> Problem:
        from retrieval.records import tatqa_facts

        kind = q["answer_type"]
        gold_value = single_number(q["answer"])
        scale = q.get("scale") or ""
        derivation = q.get("derivation", "") if kind == "arithmetic" else ""
        try:
            conv = tatqa_trace(derivation, gold_value, scale)
            gold, stated, warnings = conv.lines, conv.stated, conv.warnings
        except ConvertError as exc:
            gold, stated, warnings = None, [], [str(exc)]
        used = {abs(n.value) for n in find_numbers(derivation)} if derivation else {abs(gold_value)}
        if kind != "arithmetic" and year_answer(gold_value) is not None:
            try:  # "in which year was X larger?": a comparison of two cells whose columns are the years
                conv = year_question_trace(q["question"], gold_value, doc["table"]["table"], q.get("derivation", ""))
                gold, stated, warnings = conv.lines, conv.stated, conv.warnings
                used = {abs(n.value) for n in find_numbers(gold[0].partition(" if ")[2].partition(" else ")[0])}
            except ConvertError as exc:
                warnings = warnings + [str(exc)]
        keys = [f"paragraph_{p}" for p in q.get("rel_paragraphs", [])]
        if "table" in q.get("answer_from", ""):
            keys += _table_keys(doc["table"]["table"], used)
        return Problem(
            id=f"tatqa-{q.get('uid', '?')}", question=q["question"], answer=gold_value, gold=gold,
            evidence=facts_as_evidence(tatqa_facts(doc)), family=self.name,
            meta={"split": split, "type": kind, "scale": scale, "gold_keys": keys, "steps": len(gold or []),
                  "stated": stated, "derivation": q.get("derivation", ""), "answer_from": q.get("answer_from", ""),
                  "warnings": warnings, "document": doc["table"]["uid"]},
        )

    def score(self, problem: Problem, answer: Value) -> bool:
        """TAT-QA's numeric rule: equal at 2 decimals in the answer's scale (or to 4 decimals unscaled)."""
        return tatqa_match(answer, problem.answer, problem.meta.get("scale", ""))
