"""``dca.Agent``: build an agent from abilities, run it, stream its events, resume it.

    agent = dca.Agent(knowledge=retrieval.Index(".dca/index", "reports"),
                      logic=LMPolicy("dca:tiny-policy"), wording=TemplateWording())
    result = agent.run("What was the change in net revenue from 2014 to 2015?")

Runs are checkpointed by LangGraph (SQLite by default) under a thread id, so a run that was
killed can be resumed with ``agent.resume(thread_id)``.
"""
from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from dca.abilities import Knowledge, Logic, Wording, check_ability
from dca.config import recursion_budget
from dca.graph import Abilities, build_graph, cited_evidence
from dca.reasoning.steps import Interpreter
from dca.types import Compute, Event, Evidence, Result, Step
from dca.verifier import FailurePolicy, Verifier

_DEFAULT = object()


class RunNotFound(KeyError):
    """No checkpoint exists for the thread id asked to resume."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "run not found"


class Agent:
    """A dca agent: three abilities and a verifier, run as a LangGraph loop of verified steps.

    ``verifier`` defaults to ``Verifier()`` (all default checks); pass ``None`` to turn checking
    off (steps are then only required to parse and execute). ``policy`` (a ``FailurePolicy``)
    overrides the verifier's retry / backtrack / step budget. ``checkpoint`` is a SQLite path,
    ``None`` for in-memory checkpoints, or any LangGraph checkpointer.
    """

    def __init__(self, *, logic: Logic, knowledge: Knowledge | None = None, wording: Wording | None = None,
                 verifier: Verifier | None | Any = _DEFAULT, top_k: int = 5, tools: list[Any] | None = None,
                 checkpoint: str | Path | Any | None = None, trace_dir: str | Path | None = None,
                 seed: int | None = 0, name: str = "agent", recursion_limit: int | None = None,
                 telemetry: Any = None, policy: FailurePolicy | None = None):
        check_ability("logic", logic)
        if knowledge is not None:
            check_ability("knowledge", knowledge)
        if wording is not None:
            check_ability("wording", wording)
        self.name = name
        self.verifier: Verifier | None = Verifier() if verifier is _DEFAULT else verifier
        from dca.tools import as_function, registered_tools

        extra = {**registered_tools(), **{f.name: f for f in map(as_function, tools or [])}}
        interp = Interpreter().with_functions(extra) if extra else Interpreter()
        self.abilities = Abilities(logic=logic, knowledge=knowledge, wording=wording, verifier=self.verifier,
                                   interpreter=interp, top_k=top_k, seed=seed, failure_policy=policy)
        self.trace_dir = Path(trace_dir) if trace_dir else None
        self._checkpoint = checkpoint
        self._recursion_limit = recursion_limit
        self._graph = None
        self._saver = None
        self._lock = threading.Lock()
        # OpenTelemetry spans per graph node (dca.telemetry); None costs one `if` per run.
        self.telemetry = None
        if telemetry is not None:
            from dca.telemetry import Telemetry

            self.telemetry = Telemetry.of(telemetry)

    # ------------------------------------------------------------------ graph
    @property
    def graph(self):
        """The compiled LangGraph graph (built on first use)."""
        with self._lock:
            if self._graph is None:
                self._saver = _make_saver(self._checkpoint)
                self._graph = build_graph(self.abilities).compile(checkpointer=self._saver)
        return self._graph

    @property
    def policy(self) -> FailurePolicy:
        return self.abilities.policy

    def _config(self, thread_id: str) -> dict[str, Any]:
        limit = self._recursion_limit or recursion_budget(self.policy.attempt_budget)
        return {"configurable": {"thread_id": thread_id}, "recursion_limit": limit}

    # ------------------------------------------------------------------ running
    def run(self, task: str, *, thread_id: str | None = None) -> Result:
        """Run a task to the end and return its ``Result``."""
        return _final(self.stream(task, thread_id=thread_id))

    def stream(self, task: str | None, *, thread_id: str | None = None) -> Iterator[Event]:
        """Yield typed ``Event``s as the graph runs; the last one (``done``) carries the ``Result``."""
        if task is not None and (not isinstance(task, str) or not task.strip()):
            raise ValueError("task must be a non-empty string")
        thread_id = thread_id or uuid.uuid4().hex[:12]
        config = self._config(thread_id)
        graph = self.graph
        start = time.perf_counter()
        trace = _TraceWriter(self.trace_dir, thread_id) if self.trace_dir else None
        inputs = {"task": task, "attempts": [], "events": [], "compute": {}} if task is not None else None
        spans = self.telemetry.start_run(self.name, thread_id, task) if self.telemetry else None
        error: BaseException | None = None
        try:
            # "sync": each step's checkpoint is on disk before the next step starts, so a run killed
            # at any point resumes from its last finished step (LangGraph's default writes lazily)
            updates = graph.stream(inputs, config, stream_mode="updates", durability="sync")
            for update in (spans.nodes(updates) if spans else updates):
                for node, delta in update.items():
                    if not isinstance(delta, dict):
                        continue
                    for raw in delta.get("events", []):
                        ev = Event(kind=raw["kind"], node=raw["node"], data=raw.get("data", {}),
                                   elapsed=time.perf_counter() - start)
                        if trace:
                            trace.write(ev)
                        if ev.kind == "done":
                            result = self._result(thread_id, time.perf_counter() - start)
                            ev.data = {**ev.data, "result": result}
                            if trace:
                                trace.write_result(result)
                            if spans:
                                spans.result(result)
                        yield ev
        except BaseException as exc:
            error = exc
            raise
        finally:
            if trace:
                trace.close()
            if spans:
                spans.end(error)

    def resume(self, thread_id: str) -> Result:
        """Finish a run that was interrupted (or return the result of one that finished)."""
        state = self.graph.get_state(self._config(thread_id))
        if not state.values:
            raise RunNotFound(f"no checkpointed run with thread id {thread_id!r}")
        if not state.next:
            return self._result(thread_id, 0.0)
        return _final(self.stream(None, thread_id=thread_id))

    def result(self, thread_id: str) -> Result | None:
        """The current result of a thread (``None`` if it has no checkpoint)."""
        state = self.graph.get_state(self._config(thread_id))
        return self._result(thread_id, 0.0) if state.values else None

    async def arun(self, task: str, *, thread_id: str | None = None) -> Result:
        """``run`` for asyncio: the CPU-bound graph runs in a worker thread."""
        return await asyncio.to_thread(self.run, task, thread_id=thread_id)

    async def astream(self, task: str | None, *, thread_id: str | None = None) -> AsyncIterator[Event]:
        """``stream`` for asyncio: events are handed over from a worker thread as they happen.

        The consumer waits on an ``asyncio.Queue`` (no executor thread is held per stream), and
        leaving the ``async for`` early stops the run after its current node.
        """
        loop = asyncio.get_running_loop()
        q: asyncio.Queue = asyncio.Queue()
        stop = threading.Event()
        done = object()

        def hand_over(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(q.put_nowait, item)
            except RuntimeError:  # the event loop has closed: nobody is listening any more
                stop.set()

        def work() -> None:
            events = self.stream(task, thread_id=thread_id)
            try:
                for ev in events:
                    hand_over(ev)
                    if stop.is_set():
                        break
            except BaseException as exc:  # handed to the consumer, re-raised there
                hand_over(exc)
            finally:
                events.close()
                hand_over(done)

        threading.Thread(target=work, name=f"dca-{self.name}-stream", daemon=True).start()
        try:
            while (item := await q.get()) is not done:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()

    # ------------------------------------------------------------------ results
    def _result(self, thread_id: str, wall: float) -> Result:
        values = self.graph.get_state(self._config(thread_id)).values
        steps = [Step.from_dict(s) for s in values.get("steps", [])]
        evidence = [Evidence.from_dict(e) for e in values.get("evidence", [])]
        compute = Compute.from_dict(values.get("compute", {}))
        compute.wall_time += wall
        status = values.get("status", "unverified")
        return Result(
            task=values.get("task", ""),
            answer=values.get("answer") if status == "verified" else None,
            text=values.get("text", ""),
            status="verified" if status == "verified" else "unverified",
            reason=values.get("reason", "") if status != "running" else "the run has not finished",
            steps=steps,
            attempts=[Step.from_dict(s) for s in values.get("attempts", [])],
            evidence=cited_evidence(steps, evidence) if status == "verified" else evidence,
            compute=compute,
            thread_id=thread_id,
            wording_fallback=bool(values.get("wording_fallback", False)),
        )

    def close(self) -> None:
        conn = getattr(self._saver, "conn", None)
        if conn is not None:
            conn.close()
        self._graph = self._saver = None


def _make_saver(checkpoint: Any):
    """A LangGraph checkpointer: SQLite for a path, in-memory for None, or the object given."""
    if checkpoint is None:
        from langgraph.checkpoint.memory import InMemorySaver

        return InMemorySaver()
    if isinstance(checkpoint, (str, Path)):
        import sqlite3

        from langgraph.checkpoint.sqlite import SqliteSaver

        path = Path(checkpoint)
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a commit survives a killed process (what resume needs) without an fsync per
        # graph node, which made checkpointing 3x slower than the run itself.
        conn.execute("PRAGMA synchronous=NORMAL")
        saver = SqliteSaver(conn)
        saver.setup()
        return saver
    return checkpoint


class _TraceWriter:
    """Appends a run's events and final result to ``<trace_dir>/<thread_id>.jsonl``."""

    def __init__(self, directory: Path, thread_id: str):
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{thread_id}.jsonl"
        self._f = self.path.open("a", encoding="utf-8")

    def write(self, ev: Event) -> None:
        self._f.write(json.dumps({"type": "event", "kind": ev.kind, "node": ev.node,
                                  "elapsed": round(ev.elapsed, 6), "data": ev.data}, default=str) + "\n")
        self._f.flush()

    def write_result(self, result: Result) -> None:
        self._f.write(json.dumps({"type": "result", **result.to_dict()}, default=str) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def _final(events: Iterator[Event]) -> Result:
    """The ``Result`` a run's event stream ends with (its "done" event)."""
    result = None
    for event in events:
        if event.kind == "done":
            result = event.data["result"]
    assert result is not None
    return result
