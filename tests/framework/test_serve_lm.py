"""Concurrent runs on one agent with real (micro) language models give the answers of serial runs."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

import dca
from dca.serve import create_app, running_server
from dca.verifier import FailurePolicy, Verifier

TASKS = [f"A shop sold {a} apples on Monday and {b} on Tuesday. How many apples in all?"
         for a, b in [(12, 30), (7, 5), (40, 2), (3, 9), (21, 21), (8, 16), (15, 4), (6, 60)]]


class FirstTryFails:
    """Rejects every first try, so each step is also sampled at a temperature above zero."""

    name = "first_try_fails"

    def __call__(self, step, ctx):
        return dca.Verdict.failed(self.name, "first try") if step.attempt == 0 else dca.Verdict.passed(self.name)


def lm_agent(models: dict[str, str], *, sampled: bool) -> dca.Agent:
    from dca.reasoning.policy import LMPolicy
    from dca.wording import LMWording

    checks = ["parses", "executes"] + ([FirstTryFails()] if sampled else [])
    verifier = Verifier(checks=checks, policy=FailurePolicy(retries=3, temperatures=[0.0, 1.0], backtracks=0,
                                                            max_steps=3))
    return dca.Agent(logic=LMPolicy(models["policy"], max_new_tokens=24, threads=1),
                     wording=LMWording(models["wording"], threads=1), verifier=verifier)


def trace(result: dict) -> tuple:
    return result["answer"], result["text"], tuple(a["text"] for a in result["attempts"])


def serial_and_served(models: dict[str, str], *, sampled: bool) -> tuple[list, list]:
    serial = [trace(lm_agent(models, sampled=sampled).run(t).to_dict()) for t in TASKS]
    with running_server(create_app(lm_agent(models, sampled=sampled), max_concurrency=4)) as url:
        def ask(task: str) -> tuple:
            with httpx.Client(base_url=url, timeout=300) as http:
                return trace(http.post("/run", json={"task": task}).json())

        with ThreadPoolExecutor(4) as pool:
            served = list(pool.map(ask, TASKS))
    return serial, served


def test_greedy_runs_served_concurrently_match_serial_runs(micro_models):
    serial, served = serial_and_served(micro_models, sampled=False)
    assert served == serial


def test_sampled_runs_served_concurrently_match_serial_runs(micro_models):
    serial, served = serial_and_served(micro_models, sampled=True)
    assert all(len(t[2]) > 1 for t in serial)  # every run sampled at least once
    assert served == serial
