"""GSM8K grade-school math (train.jsonl) with gold step traces converted from the calculator annotations."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from dca.reasoning.convert import ConvertError, gsm8k_trace
from dca.reasoning.tasks.base import Problem
from dca.reasoning.tasks.splits import bucket, check_split, exact_number, ordered
from dca.types import Value

DEV_FRACTION = 0.067  # about 500 of the 7,473 problems, chosen by a hash of the question


@lru_cache(maxsize=4)
def _load(path: str) -> tuple[list[dict], list[dict]]:
    train: list[dict] = []
    dev: list[dict] = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                row["question"], row["answer"]  # noqa: B018  (both fields are required)
            except (json.JSONDecodeError, KeyError, TypeError):
                raise ValueError(f"{path} line {i + 1}: expected JSON with 'question' and 'answer'") from None
            row["_index"] = i
            (dev if bucket(row["question"], "gsm8k-dev") < DEV_FRACTION else train).append(row)
    return train, dev


class GSM8K:
    """GSM8K problems; splits "train" and "dev" (a fixed ~500-problem part of train.jsonl)."""

    name = "gsm8k"
    splits = ("train", "dev")

    def __init__(self, path: str | Path | None = None):
        if path is None:
            from dca.data import data_file

            path = data_file("gsm8k", "train.jsonl")
        self.path = str(path)

    def problems(self, split: str = "train", n: int | None = None, seed: int = 0) -> Iterator[Problem]:
        check_split(self.name, split, self.splits)
        train, dev = _load(self.path)
        for row in ordered(train if split == "train" else dev, n, seed):
            yield self._problem(row, split)

    def _problem(self, row: dict, split: str) -> Problem:
        try:
            conv = gsm8k_trace(row["answer"], row["question"])
        except ConvertError as exc:
            raise ValueError(f"{self.path} line {row['_index'] + 1}: {exc}") from None
        return Problem(
            id=f"gsm8k-{row['_index']}", question=row["question"], answer=conv.answer, gold=conv.lines,
            family=self.name,
            meta={"split": split, "stated": conv.stated, "steps": len(conv.lines), "warnings": conv.warnings,
                  "gold_complete": not any("not computed" in w for w in conv.warnings),
                  "solution": row["answer"]},
        )

    def score(self, problem: Problem, answer: Value) -> bool:
        """Exact: the number equals the ``#### answer`` (float noise aside)."""
        return exact_number(answer, problem.answer)
