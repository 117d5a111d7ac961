"""The LangGraph graph that runs a task as a loop of small verified steps (DESIGN.md)::

    retrieve -> propose -> execute -> verify --ok--> (execute | propose | word) -> finish
                  ^                     |
                  +-- retry / backtrack-+ (fail)            budget spent -> finish ("unverified")

Nodes are plain functions from state to a partial update; the edges say the flow. The state is
JSON-native (dicts of ``dca.types`` values), so LangGraph's checkpointer stores it as is and a
killed run resumes from its last completed node.
"""
from __future__ import annotations

import operator
import time
from dataclasses import dataclass
from typing import Annotated, Any, Callable, TypedDict

from dca.abilities import Knowledge, Logic, ProposeRequest, Wording
from dca.reasoning.steps import ANSWER, Interpreter, ParsedStep, StepError, format_value, parse_step
from dca.types import Compute, Evidence, Step, Verdict
from dca.verifier import CheckContext, FailurePolicy, Verifier


def _add_compute(a: dict | None, b: dict | None) -> dict:
    return Compute.from_dict(a or {}).add(Compute.from_dict(b or {})).to_dict()


class RunState(TypedDict, total=False):
    task: str
    evidence: list[dict]  # every evidence chunk the run has seen (task retrieval + lookups)
    steps: list[dict]  # verified steps, in order
    attempts: Annotated[list[dict], operator.add]  # every executed step, accepted or not
    pending: list[str]  # proposed lines not yet executed
    current: dict | None  # the step between execute and verify
    tries: int  # failed tries at the current position
    backtracks: int
    avoid: dict[str, list[str]]  # position -> lines rejected there
    proposals: int  # propose calls so far (varies the sampling seed)
    status: str  # running | verified | unverified
    reason: str
    answer: Any
    text: str
    wording_fallback: bool
    compute: Annotated[dict, _add_compute]
    events: Annotated[list[dict], operator.add]


@dataclass
class Abilities:
    """Everything the nodes call: the three abilities, the verifier and the step interpreter."""

    logic: Logic
    knowledge: Knowledge | None = None
    wording: Wording | None = None
    verifier: Verifier | None = None
    interpreter: Interpreter | None = None
    top_k: int = 5
    lookup_k: int = 3
    seed: int | None = 0
    failure_policy: FailurePolicy | None = None

    def __post_init__(self) -> None:
        self.interpreter = self.interpreter or Interpreter()
        # With the verifier off, only what a step needs to exist at all is checked.
        self._structural = Verifier(checks=["parses", "executes"])

    @property
    def policy(self) -> FailurePolicy:
        if self.failure_policy is not None:
            return self.failure_policy
        return self.verifier.policy if self.verifier else self._structural.policy

    @property
    def active_verifier(self) -> Verifier:
        return self.verifier or self._structural


def _reads(line: str, name: str | None) -> bool:
    """Whether a step line reads ``name`` (an unparsable line counts as reading it)."""
    try:
        return name in parse_step(line).names
    except StepError:
        return True


def _event(kind: str, node: str, **data: Any) -> dict:
    return {"kind": kind, "node": node, "data": data, "elapsed": time.time()}


def _env(steps: list[dict]) -> dict[str, Any]:
    return {s["target"]: s["value"] for s in steps}


def build_graph(ab: Abilities):
    """Build (uncompiled) the run graph over the given abilities."""
    from langgraph.graph import END, START, StateGraph

    def retrieve(state: RunState) -> dict:
        evidence: list[Evidence] = []
        if ab.knowledge is not None:
            evidence = list(ab.knowledge.retrieve(state["task"], ab.top_k))
        return {
            "evidence": [e.to_dict() for e in evidence],
            "steps": [], "pending": [], "current": None, "tries": 0, "backtracks": 0, "avoid": {},
            "proposals": 0, "status": "running", "reason": "",
            "compute": {"retrievals": 1 if ab.knowledge is not None else 0},
            "events": [_event("retrieved", "retrieve", ids=[e.id for e in evidence],
                              sources=[e.cite() for e in evidence], scores=[round(e.score, 4) for e in evidence])],
        }

    def propose(state: RunState) -> dict:
        steps = [Step.from_dict(s) for s in state.get("steps", [])]
        pos = len(steps)
        policy = ab.policy
        if pos >= policy.max_steps:
            return {"status": "unverified", "pending": [],
                    "reason": f"no answer after {policy.max_steps} verified steps",
                    "events": [_event("rejected", "propose", reason="step budget spent")]}
        tries = state.get("tries", 0)
        temperature = policy.temperature(tries)
        seed = None if ab.seed is None else ab.seed + state.get("proposals", 0)
        request = ProposeRequest(
            task=state["task"], evidence=[Evidence.from_dict(e) for e in state.get("evidence", [])],
            steps=steps, n=1, temperature=temperature, avoid=list(state.get("avoid", {}).get(str(pos), [])),
            max_steps=policy.max_steps, seed=seed,
        )
        proposals = ab.logic.propose(request) or []
        spent = Compute()
        for p in proposals:
            spent.add(p.compute)
        lines = [ln for ln in (proposals[0].lines if proposals else []) if ln.strip()] or [""]
        return {
            "pending": lines, "proposals": state.get("proposals", 0) + 1, "compute": spent.to_dict(),
            "events": [_event("proposed", "propose", position=pos, lines=lines, temperature=temperature, attempt=tries)],
        }

    def execute(state: RunState) -> dict:
        pending = list(state.get("pending", []))
        line, rest = (pending[0], pending[1:]) if pending else ("", [])
        steps = state.get("steps", [])
        step = Step(text=line.strip(), index=len(steps), attempt=state.get("tries", 0))
        evidence = [Evidence.from_dict(e) for e in state.get("evidence", [])]
        used_ids: list[str] = []
        lookups = 0

        def record(retrieved: list[Evidence], used: Evidence) -> None:
            nonlocal lookups
            lookups += 1
            by_id = {e.id: i for i, e in enumerate(evidence)}
            for e in retrieved:
                if e.id not in by_id:
                    by_id[e.id] = len(evidence)
                    evidence.append(e)
                elif e.score > evidence[by_id[e.id]].score:  # keep the best score any query gave it,
                    evidence[by_id[e.id]].score = e.score  # and the chunk as the task's retrieval found it
            used_ids.append(used.id)

        interp = ab.interpreter
        if ab.knowledge is not None:
            from dca.lookup import make_lookup

            interp = interp.with_functions({"lookup": make_lookup(ab.knowledge, k=ab.lookup_k, on_evidence=record)})
        try:
            if not step.text:
                raise StepError("parse", "the reasoner proposed no step")
            parsed = interp.parse(step.text)
            step.target, step.expr, step.kind, step.stated = parsed.target, parsed.expr, parsed.kind, parsed.stated
            if ab.verifier is not None and ab.verifier.rules:  # a step breaking a rule never runs
                why = ab.verifier.rule_violation(step.text, parsed)
                if why:
                    raise StepError("rule", why)
            step.value = interp.run(parsed, _env(steps))
        except StepError as exc:
            step.error = str(exc)
        step.evidence_ids = used_ids
        update: dict[str, Any] = {
            "current": step.to_dict(), "pending": rest,
            "events": [_event("executed", "execute", position=step.index, text=step.text,
                              value=step.value, error=step.error)],
        }
        if lookups:
            update["evidence"] = [e.to_dict() for e in evidence]
            update["compute"] = {"retrievals": lookups}
        return update

    def verify(state: RunState) -> dict:
        step = Step.from_dict(state["current"])
        steps = [Step.from_dict(s) for s in state.get("steps", [])]
        parsed: ParsedStep | None = None
        if step.text:
            try:
                parsed = ab.interpreter.parse(step.text)
            except StepError:
                parsed = None
        verifier = ab.active_verifier
        ctx = CheckContext(task=state["task"], evidence=[Evidence.from_dict(e) for e in state.get("evidence", [])],
                           steps=steps, env=_env(state.get("steps", [])), parsed=parsed, verifier=verifier)
        verdict = verifier.check_step(step, ctx)
        step.verdict = verdict
        pos = len(steps)
        out: dict[str, Any] = {"attempts": [step.to_dict()], "current": None}
        if step.score is not None:  # a learned step scorer ran on it
            out["compute"] = {"scorer_calls": 1}
        if verdict.ok:
            out["steps"] = [s.to_dict() for s in steps] + [step.to_dict()]
            out["tries"] = 0
            out["events"] = [_event("verified", "verify", position=pos, text=step.text, value=step.value)]
            if step.target == ANSWER:
                out.update(status="verified", answer=step.value, pending=[])
            return out
        policy = ab.policy
        avoid = {k: list(v) for k, v in state.get("avoid", {}).items()}
        avoid.setdefault(str(pos), []).append(step.text)
        tries = state.get("tries", 0) + 1
        events = [_event("rejected", "verify", position=pos, text=step.text, check=verdict.check, reason=verdict.reason)]
        out.update(pending=[], avoid=avoid)
        if tries < policy.retries:
            events.append(_event("retried", "verify", position=pos, attempt=tries,
                                 temperature=policy.temperature(tries)))
            out.update(tries=tries, events=events)
            return out
        backtracks = state.get("backtracks", 0)
        if backtracks < policy.backtracks and steps:
            undone = steps.pop()
            # a rejected line that never reads the undone step's name was judged on its own
            # operands: proposed one position earlier it would repeat that verdict, so it stays
            # avoided there (a lookup undone, its literal answer lines are not tried again)
            kept = [line for line in avoid.pop(str(pos), []) if not _reads(line, undone.target)]
            avoid.setdefault(str(pos - 1), []).extend([undone.text, *kept])
            events.append(_event("backtracked", "verify", position=pos - 1, undone=undone.text))
            out.update(steps=[s.to_dict() for s in steps], tries=0, backtracks=backtracks + 1,
                       avoid=avoid, events=events)
            return out
        out.update(status="unverified", tries=tries, events=events,
                   reason=f"step {pos + 1} failed {verdict.check}: {verdict.reason}")
        return out

    def word(state: RunState) -> dict:
        steps = [Step.from_dict(s) for s in state.get("steps", [])]
        evidence = cited_evidence(steps, [Evidence.from_dict(e) for e in state.get("evidence", [])])
        answer = state.get("answer")
        fallback, why = False, ""
        spent = Compute()
        if ab.wording is not None:
            text = ab.wording.word(state["task"], answer, steps, evidence)
            spent.model_calls += 1
            verdict = ab.active_verifier.check_wording(text, answer)
            if not verdict.ok:
                fallback, why = True, verdict.reason
        if ab.wording is None or fallback:
            from dca.wording import TemplateWording

            text = TemplateWording().word(state["task"], answer, steps, evidence)
        out: dict[str, Any] = {"text": text, "wording_fallback": fallback, "compute": spent.to_dict(),
                               "events": [_event("worded", "word", text=text, fallback=fallback, reason=why)]}
        broken = ab.active_verifier.check_wording(text, answer) if ab.active_verifier.rules else None
        if broken is not None and broken.check == "rules":  # even the plain sentence breaks a rule
            out.update(status="unverified", reason=f"the answer failed rules: {broken.reason}")
        return out

    def finish(state: RunState) -> dict:
        out: dict[str, Any] = {}
        if state.get("status") != "verified":
            out["text"] = f"No verified answer: {state.get('reason') or 'the run stopped'}."
            out["answer"] = None
        out["events"] = [_event("done", "finish", status=state.get("status"), answer=state.get("answer"),
                                reason=state.get("reason", ""))]
        return out

    def after_verify(state: RunState) -> str:
        status = state.get("status")
        if status == "verified":
            return "word"
        if status == "unverified":
            return "finish"
        return "execute" if state.get("pending") else "propose"

    def after_propose(state: RunState) -> str:
        return "finish" if state.get("status") == "unverified" else "execute"

    g = StateGraph(RunState)
    for name, fn in (("retrieve", retrieve), ("propose", propose), ("execute", execute),
                     ("verify", verify), ("word", word), ("finish", finish)):
        g.add_node(name, fn)
    g.add_edge(START, "retrieve")
    g.add_edge("retrieve", "propose")
    g.add_conditional_edges("propose", after_propose, ["execute", "finish"])
    g.add_edge("execute", "verify")
    g.add_conditional_edges("verify", after_verify, ["execute", "propose", "word", "finish"])
    g.add_edge("word", "finish")
    g.add_edge("finish", END)
    return g


def cited_evidence(steps: list[Step], evidence: list[Evidence]) -> list[Evidence]:
    """The evidence a trace relies on: chunks its lookups used, and chunks holding its operands."""
    from dca.numbers import in_pool, number_pool

    used_ids = {i for s in steps for i in s.evidence_ids}
    operands: list[float] = []
    interp = Interpreter()
    for s in steps:
        try:
            operands.extend(x for x in interp.parse(s.text).numbers if abs(x) not in (0, 1, 100))
        except StepError:
            pass
    out = []
    for e in evidence:
        if e.id in used_ids:
            out.append(e)
            continue
        pool = number_pool(e.text)
        if any(in_pool(x, pool) for x in operands):
            out.append(e)
    return out


def describe_step(step: Step) -> str:
    mark = "✓" if step.ok else "✗"
    value = format_value(step.value) if step.error is None else step.error
    return f"{mark} {step.text}  → {value}"


EventCallback = Callable[[dict], None]
