"""``dca serve``: run, stream (server-sent events), resume and inspect threads over real HTTP on 127.0.0.1."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from timed_abilities import ArithmeticPlan, CountingPlan, FlakyPlan, SayWording, SlowPlan

import dca
from agents.examples.scripted import Facts
from dca.serve import create_app, parse_sse, running_server

FACTS = ["Net revenue: 2015 = $5,829; 2014 = $5,735 (in millions)"]
TASK = "What was the change in net revenue from 2014 to 2015?"
ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def make_agent(logic, tmp_path=None, **kw) -> dca.Agent:
    return dca.Agent(logic=logic, knowledge=Facts(FACTS), wording=SayWording(),
                     checkpoint=(tmp_path / "runs.sqlite") if tmp_path else None, **kw)


def test_run_threads_and_errors(tmp_path):
    with running_server(create_app(make_agent(ArithmeticPlan(), tmp_path))) as url, httpx.Client(base_url=url) as http:
        assert http.get("/health").json()["status"] == "ok"
        r = http.post("/run", json={"task": "Add 12 and 30, then times 30.", "thread_id": "first"})
        assert r.status_code == 200
        body = r.json()
        assert body["status"] == "verified" and body["answer"] == (12 + 30) * 30 and body["thread_id"] == "first"
        assert [s["text"] for s in body["steps"]] == ["x1 = 12 + 30", "answer = x1 * 30"]
        kept = http.get("/threads/first").json()
        assert kept["answer"] == body["answer"] and kept["running"] is False
        assert http.get("/threads/nope").status_code == 404
        again = http.post("/run", json={"task": "Add 1 and 2.", "thread_id": "first"})
        assert again.status_code == 409 and "already exists" in again.json()["detail"]
        assert http.post("/run", json={"task": "   "}).status_code == 422
        assert http.post("/run", json={"question": "no task field"}).status_code == 422
        assert http.post("/resume/nope").status_code == 404
        health = http.get("/health").json()
        assert health["served"] == 1 and health["running"] == 0


def test_stream_sends_each_event_as_it_happens():
    delay = 0.25
    agent = make_agent(SlowPlan(["x1 = 5829 - 5735", "x2 = x1 + 5735", "answer = x2 - 5735"], delay=delay))
    with running_server(create_app(agent)) as url, httpx.Client(base_url=url, timeout=30) as http:
        start = time.perf_counter()
        arrivals = []
        with http.stream("POST", "/stream", json={"task": TASK, "thread_id": "live"}) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            lines = []
            for line in r.iter_lines():
                lines.append(line)
                if line.startswith("event: "):
                    arrivals.append((line[7:], time.perf_counter() - start))
        frames = list(parse_sse(lines))
    kinds = [f["event"] for f in frames]
    assert kinds[0] == "retrieved" and kinds[-1] == "done" and kinds.count("verified") == 3
    assert [f["data"]["kind"] for f in frames] == kinds
    assert [int(f["id"]) for f in frames] == list(range(1, len(kinds) + 1))
    result = frames[-1]["data"]["data"]["result"]
    assert result["answer"] == 94 and result["thread_id"] == "live"
    first_proposed = next(t for k, t in arrivals if k == "proposed")
    assert first_proposed < arrivals[-1][1] - 1.5 * delay  # not held back until the run ended


def test_a_client_that_disconnects_stops_its_run(tmp_path):
    plan = SlowPlan(["x1 = 5829 - 5735", "x2 = 5829 + 5735", "x3 = x2 - 5735", "answer = x3 - 5735"], delay=0.2)
    with running_server(create_app(make_agent(plan, tmp_path))) as url, httpx.Client(base_url=url) as http:
        with http.stream("POST", "/stream", json={"task": TASK, "thread_id": "gone"}) as r:
            for line in r.iter_lines():
                if line == "event: proposed":
                    break  # leaving the block closes the connection
        time.sleep(1.2)  # long enough for the three remaining proposals, had the run gone on
        assert plan.calls <= 2
        health = http.get("/health").json()
        assert health["running"] == 0 and health["failed"] == 0
        partial = http.get("/threads/gone").json()
        assert partial["status"] == "unverified" and len(partial["steps"]) <= 1
        assert http.post("/resume/gone").json()["answer"] == 94  # and it can be finished later


def test_resume_finishes_a_run_that_crashed(tmp_path):
    plan = FlakyPlan(["x1 = 5829 - 5735", "answer = x1 / 5735"], crash_at=1)
    with running_server(create_app(make_agent(plan, tmp_path))) as url, httpx.Client(base_url=url) as http:
        crashed = http.post("/run", json={"task": TASK, "thread_id": "t1"})
        assert crashed.status_code == 500 and crashed.json()["detail"] == "RuntimeError: reasoner process died"
        partial = http.get("/threads/t1").json()
        assert [s["text"] for s in partial["steps"]] == ["x1 = 5829 - 5735"] and partial["answer"] is None
        calls = plan.calls
        resumed = http.post("/resume/t1").json()
        assert resumed["status"] == "verified" and resumed["answer"] == pytest.approx(94 / 5735)
        assert plan.calls == calls + 1  # only the missing step was proposed again
        assert http.get("/health").json()["failed"] == 1


def test_concurrent_requests_give_the_answers_of_serial_runs(tmp_path):
    tasks = [f"Add {a} and {b}, then times the second." for a, b in zip(range(3, 35, 2), range(40, 8, -2))]
    serial = [make_agent(ArithmeticPlan()).run(t).answer for t in tasks]
    agent = make_agent(ArithmeticPlan(), tmp_path)
    with running_server(create_app(agent, max_concurrency=4)) as url:
        def ask(task: str) -> dict:
            with httpx.Client(base_url=url, timeout=60) as http:
                return http.post("/run", json={"task": task}).json()

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(ask, tasks))
    assert [a["answer"] for a in answers] == serial
    assert all(a["status"] == "verified" for a in answers)
    assert len({a["thread_id"] for a in answers}) == len(tasks)
    # every run was checkpointed in the one SQLite file, and reads back the same
    assert [agent.result(a["thread_id"]).answer for a in answers] == serial


def test_max_concurrency_bounds_the_runs_in_flight():
    plan = CountingPlan(["x1 = 5829 - 5735", "answer = x1"], delay=0.1)
    with running_server(create_app(make_agent(plan), max_concurrency=2)) as url:
        def ask(i: int) -> int:
            with httpx.Client(base_url=url, timeout=60) as http:
                return http.post("/run", json={"task": TASK}).status_code

        with ThreadPoolExecutor(6) as pool:
            codes = list(pool.map(ask, range(6)))
    assert codes == [200] * 6
    assert plan.most == 2  # runs overlapped, but never more than two at once


class LoadingPlan(SlowPlan):
    """A reasoner with a model to load, the way dca's LM abilities expose it."""

    loads = 0

    def load(self):
        self.loads += 1


class CountingFacts(Facts):
    searches = 0

    def retrieve(self, query, k=5):
        self.searches += 1
        return super().retrieve(query, k)


def test_models_load_and_warmup_tasks_run_before_the_first_request():
    plan, facts = LoadingPlan(["answer = 5829 - 5735"], delay=0.0), CountingFacts(FACTS)
    agent = dca.Agent(logic=plan, knowledge=facts, wording=SayWording())
    with running_server(create_app(agent, warmup=[TASK])) as url:
        assert plan.loads == 1 and facts.searches >= 1  # models loaded, store opened
        assert plan.calls == 1  # the warm-up task ran during start-up
        assert httpx.get(f"{url}/health").json()["warmup_seconds"] > 0
        for _ in range(2):
            assert httpx.post(f"{url}/run", json={"task": TASK}).json()["answer"] == 94
        assert plan.loads == 1 and plan.calls == 3  # one agent, loaded once, serves every request


def test_dca_serve_command(tmp_path):
    cfg = tmp_path / "serve.yaml"
    cfg.write_text("""
name: arithmetic
knowledge: {kind: none}
logic: {kind: "timed_abilities:ArithmeticPlan"}
wording: {kind: "timed_abilities:SayWording"}
run: {checkpoint: runs.sqlite, trace_dir: traces}
serve: {port: 0, max_concurrency: 2}
""")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)])}
    proc = subprocess.Popen([sys.executable, "-m", "dca.cli", "serve", "--config", str(cfg), "--log-level", "warning"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        line = proc.stdout.readline()
        assert "ready on http://127.0.0.1:" in line, proc.stderr.read() if proc.poll() is not None else line
        url = line.split("ready on ")[1].split()[0]
        r = httpx.post(f"{url}/run", json={"task": "Add 2 and 5."}, timeout=30).json()
        assert r["answer"] == 35 and r["status"] == "verified"
        assert (tmp_path / "traces" / f"{r['thread_id']}.jsonl").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
