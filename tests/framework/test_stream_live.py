"""Streaming: events arrive while the run is going (not batched at the end), in Python, asyncio and the CLI."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from timed_abilities import SayWording, SlowPlan

import dca
from agents.examples.scripted import Facts, Plan

FACTS = ["Net revenue: 2015 = $5,829; 2014 = $5,735 (in millions)"]
TASK = "What was the percent change in net revenue from 2014 to 2015?"
STEPS = ["x1 = 5829 - 5735", "x2 = x1 / 5735", "answer = x2 * 100"]
ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def slow_agent(delay: float = 0.25, steps=STEPS, **kw) -> dca.Agent:
    return dca.Agent(logic=SlowPlan(steps, delay=delay), knowledge=Facts(FACTS), wording=SayWording(), **kw)


def test_stream_yields_each_event_when_its_node_finishes():
    delay = 0.25
    agent = slow_agent(delay)
    list(agent.stream(TASK))  # build the graph first: only the run itself is timed below
    start = time.perf_counter()
    arrivals = [(ev.kind, time.perf_counter() - start) for ev in agent.stream(TASK)]
    total = arrivals[-1][1]
    proposed = [t for kind, t in arrivals if kind == "proposed"]
    assert [k for k, _ in arrivals][0] == "retrieved" and arrivals[-1][0] == "done"
    assert len(proposed) == 3 and total >= 3 * delay
    assert arrivals[0][1] < delay / 2  # retrieved arrives before the first slow proposal, not at the end
    assert proposed[0] < total - 1.5 * delay  # the first step is seen while two proposals are still to come
    gaps = [b - a for a, b in zip(proposed, proposed[1:])]
    assert all(g >= 0.8 * delay for g in gaps)  # one proposal per node run, spaced by the reasoner's time


def test_events_are_typed_and_say_why_a_step_was_rejected():
    agent = dca.Agent(logic=Plan([["x1 = 9999 - 1", "x1 = 5829 - 5735"], "answer = x1 / 5735 * 100"]),
                      knowledge=Facts(FACTS), wording=SayWording())
    events = list(agent.stream(TASK))
    assert all(isinstance(e, dca.Event) for e in events)
    kinds = [e.kind for e in events]
    assert kinds == ["retrieved", "proposed", "executed", "rejected", "retried", "proposed", "executed", "verified",
                     "proposed", "executed", "verified", "worded", "done"]
    rejected = events[kinds.index("rejected")]
    assert rejected.data["check"] == "grounded" and "9999" in rejected.data["reason"]
    assert events[kinds.index("retried")].data["attempt"] == 1
    assert [e.elapsed for e in events] == sorted(e.elapsed for e in events)
    assert events[-1].data["result"].answer == pytest.approx(94 / 5735 * 100)


def test_astream_hands_over_events_without_blocking_the_event_loop():
    delay = 0.2
    agent = slow_agent(delay)

    async def go():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        t = asyncio.create_task(ticker())
        start = time.perf_counter()
        got = [(ev.kind, time.perf_counter() - start) async for ev in agent.astream(TASK)]
        t.cancel()
        return got, ticks

    got, ticks = asyncio.run(go())
    assert got[-1][0] == "done" and got[-1][1] >= 3 * delay
    first_proposed = next(t for k, t in got if k == "proposed")
    assert first_proposed < got[-1][1] - 1.5 * delay
    assert ticks >= 0.5 * got[-1][1] / 0.01  # the loop kept running while the graph worked


def test_leaving_astream_early_stops_the_run_and_it_can_be_resumed(tmp_path):
    plan = SlowPlan(STEPS, delay=0.1)
    agent = dca.Agent(logic=plan, knowledge=Facts(FACTS), wording=SayWording(), checkpoint=tmp_path / "runs.sqlite")

    async def first_step_only():
        async for ev in agent.astream(TASK, thread_id="t-early"):
            if ev.kind == "verified":
                break

    asyncio.run(first_step_only())
    time.sleep(0.5)  # time for two more proposals, if the run had gone on
    assert plan.calls <= 2
    partial = agent.result("t-early")
    assert partial is not None and partial.reason == "the run has not finished" and len(partial.steps) == 1
    done = agent.resume("t-early")
    assert done.verified and done.answer == pytest.approx(94 / 5735 * 100)


def test_arun_runs_concurrently_with_other_coroutines():
    delay = 0.2
    agent = slow_agent(delay)
    agent.run(TASK)  # build the graph once

    async def go():
        start = time.perf_counter()
        results = await asyncio.gather(*(agent.arun(TASK) for _ in range(4)))
        return results, time.perf_counter() - start

    results, wall = asyncio.run(go())
    assert all(r.verified and r.answer == pytest.approx(94 / 5735 * 100) for r in results)
    assert len({r.thread_id for r in results}) == 4
    assert wall < 4 * 3 * delay * 0.6  # four 0.6 s runs overlap (the reasoner sleeps outside the GIL)


def test_every_run_writes_a_jsonl_trace_with_events_timings_and_compute(tmp_path):
    r = slow_agent(0.0, trace_dir=tmp_path).run(TASK, thread_id="traced")
    lines = [json.loads(x) for x in (tmp_path / "traced.jsonl").read_text().splitlines()]
    events = [x for x in lines if x["type"] == "event"]
    assert [e["kind"] for e in events][0] == "retrieved" and events[-1]["kind"] == "done"
    assert [e["elapsed"] for e in events] == sorted(e["elapsed"] for e in events) and events[-1]["elapsed"] > 0
    final = lines[-1]
    assert final["type"] == "result" and final["answer"] == pytest.approx(r.answer)
    assert final["compute"]["model_calls"] >= 3 and final["compute"]["wall_time"] > 0


def _pipeline_yaml(tmp_path: Path, delay: float) -> Path:
    cfg = tmp_path / "slow.yaml"
    cfg.write_text(f"""
name: slow
knowledge: {{kind: "agents.examples.scripted:Facts", options: {{facts: {json.dumps(FACTS)}}}}}
logic: {{kind: "timed_abilities:SlowPlan", options: {{steps: {json.dumps(STEPS)}, delay: {delay}}}}}
wording: {{kind: "timed_abilities:SayWording"}}
run: {{checkpoint: null, trace_dir: null}}
""")
    return cfg


def test_cli_ask_stream_prints_events_live(tmp_path):
    delay = 0.6
    cfg = _pipeline_yaml(tmp_path, delay)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)])}
    env.pop("PYTHONUNBUFFERED", None)
    proc = subprocess.Popen([sys.executable, "-m", "dca.cli", "ask", TASK, "--stream", "--config", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    seen = []
    for line in proc.stdout:
        seen.append((time.perf_counter(), line.rstrip()))
    end = time.perf_counter()
    assert proc.wait(timeout=60) == 0, proc.stderr.read()
    kinds = [line.split()[1] for _, line in seen if line.split() and line.split()[0].endswith("s")
             and len(line.split()) > 1 and line.split()[1] in ("retrieved", "proposed", "verified")]
    assert kinds[:2] == ["retrieved", "proposed"]
    first_event = next(t for t, line in seen if "retrieved" in line)
    assert end - first_event >= 2 * delay  # printed while later proposals were still being made
    assert any("Answer:" in line and "1.639" in line for _, line in seen)
