"""Load: 8 agent runs at once in one process (threads, and asyncio through ``Agent.arun``) give the
answers of the same runs one after another, and two processes querying one Chroma store get the
results one process gets. ``bench/reliability.py`` measures the throughput of the same set-ups."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers_abilities import FactsKnowledge
from reliability_corpus import LOAD_FACTS as FACTS
from reliability_corpus import LOAD_TASKS as TASKS

from dca.agent import Agent
from dca.verifier import FailurePolicy

ROOT = Path(__file__).resolve().parents[2]



def _outcome(result) -> tuple:
    return (result.status, result.answer, result.text, tuple(s.text for s in result.attempts),
            tuple(e.id for e in result.evidence))


@pytest.fixture(scope="module")
def agent(micro_models) -> Agent:
    from dca.reasoning.policy import LMPolicy
    from dca.wording import LMWording

    return Agent(logic=LMPolicy(micro_models["policy"]), knowledge=FactsKnowledge(FACTS),
                 wording=LMWording(micro_models["wording"]), policy=FailurePolicy(retries=2, backtracks=0, max_steps=3))


def test_eight_concurrent_runs_match_serial_runs(agent):
    with ThreadPoolExecutor(max_workers=1) as one:  # one after another (in a worker, like the others)
        serial = list(one.map(lambda it: _outcome(agent.run(it[1], thread_id=f"serial-{it[0]}")), enumerate(TASKS)))
    assert len({s[3] for s in serial}) > 1, "every task gave the same trace: the comparison would prove little"
    with ThreadPoolExecutor(max_workers=8) as pool:
        threaded = list(pool.map(lambda it: _outcome(agent.run(it[1], thread_id=f"thread-{it[0]}")),
                                 enumerate(TASKS)))
    assert threaded == serial

    async def gathered():
        return await asyncio.gather(*(agent.arun(t, thread_id=f"async-{i}") for i, t in enumerate(TASKS)))

    assert [_outcome(r) for r in asyncio.run(gathered())] == serial


QUERY = """
import json, sys
from retrieval import Index
path, mode, queries = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
index = Index(path, "loadtest", mode=mode)
rounds = []
for _ in range(3):
    rounds.append([[(e.id, e.score) for e in index.search(q, 4)] for q in queries])
print(json.dumps(rounds))
"""


def _two_processes(path: Path, mode: str, queries: list[str]) -> list:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", QUERY, str(path), mode, json.dumps(queries)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
        outs.append(json.loads(out))
    return outs


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> tuple[Path, list[str]]:
    from retrieval import Fact, Index

    path = tmp_path_factory.mktemp("store")
    index = Index(path, "loadtest")
    facts = [Fact(f"r{i}", text) for i, text in enumerate(FACTS)]
    index.add_facts(facts, doc_id="report")
    return path, list(TASKS)


def _serial(path: Path, mode: str, queries: list[str]) -> list:
    from retrieval import Index

    index = Index(path, "loadtest", mode=mode)
    return [[(e.id, e.score) for e in index.search(q, 4)] for q in queries]


def test_two_processes_query_one_store_bm25(store):
    path, queries = store
    expected = _serial(path, "bm25", queries)
    assert all(expected)
    for rounds in _two_processes(path, "bm25", queries):
        assert all([[tuple(h) for h in q] for q in r] == expected for r in rounds)


@pytest.mark.slow
def test_two_processes_query_one_store_hybrid(store):
    """Each process loads the embedder (about 10 s on 2 cores): hybrid search, dense included."""
    path, queries = store
    expected = _serial(path, "hybrid", queries)
    for rounds in _two_processes(path, "hybrid", queries):
        for r in rounds:
            got = [[tuple(h) for h in q] for q in r]
            assert [[cid for cid, _ in q] for q in got] == [[cid for cid, _ in q] for q in expected]
            assert all(abs(a[1] - b[1]) < 1e-4 for gq, eq in zip(got, expected) for a, b in zip(gq, eq))
