"""The docqa build repeats: its training examples do not depend on the interpreter's string-hash
seed, so a build repeated from the same code and records trains on the same examples, and a build
inside another run leaves that run's threads and random streams alone."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# builds three questions over one page with several gold facts each and prints their reranker examples
SCRIPT = """
import json
from dca.reasoning.tasks.base import Problem
from dca.types import Evidence
from agents.docqa.examples import retrieval_examples

page = [Evidence(id=f"f{i}", text=f"row {i}: revenue {2010 + i} = {100 + 7 * i} sales segment {i % 3}",
                 metadata={"gold_key": f"table_{i}"}) for i in range(12)]
problems = [Problem(id=f"q{k}", question=f"what was the change in revenue from {2011 + k} to {2014 + k}?",
                    answer=1.0, evidence=page, family="finqa",
                    meta={"page": "p", "gold_keys": [f"table_{k + j}" for j in (3, 0, 5, 1)]}) for k in range(3)]
out = retrieval_examples(problems, negatives=4, synthetic_per_page=0, seed=0)
print(json.dumps([(e.query, e.positive, e.negatives) for e in out]))
"""


def _examples(hash_seed: str) -> list:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    return json.loads(done.stdout)


def test_reranker_examples_are_the_same_under_any_hash_seed():
    runs = [_examples(s) for s in ("1", "2", "3", "4")]
    assert len(runs[0]) == 12  # four gold facts for each of three questions
    assert all(r == runs[0] for r in runs[1:])


def test_build_command_refuses_what_it_cannot_do_in_one_line(tmp_path):
    """A second seed must go elsewhere than the registry, and an existing folder is not replaced
    without --rebuild: both stop before any training, naming the option."""
    from agents.docqa.train import main

    with pytest.raises(SystemExit, match="--seed: .*--out DIR"):
        main(["--seed", "1"])
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "config.json").write_text("{}")
    with pytest.raises(SystemExit, match="kept: already exists; pass --rebuild"):
        main(["--out", str(tmp_path / "kept"), "--seed", "1"])
    assert (tmp_path / "kept" / "config.json").read_text() == "{}"


def test_a_build_inside_another_run_leaves_its_threads_and_random_streams(tmp_path):
    """The docqa model is built on first use, often in the middle of a benchmark or a demo that has
    seeded its own streams: the build's seeding and thread setting must not leak into that run."""
    import random

    import numpy as np
    import torch
    from helpers_models import assert_keeps_threads_and_random_streams

    from agents.docqa.models import _in_place

    def build(out: Path) -> None:  # what training does to a process's global state
        out.mkdir()
        torch.set_num_threads(1)
        random.seed(0)
        np.random.seed(0)
        torch.manual_seed(0)

    assert_keeps_threads_and_random_streams(lambda: _in_place(tmp_path / "model", build))
    assert json.loads((tmp_path / "model" / "dca_build.json").read_text())["seconds"] >= 0
