"""The values that flow through a dca run: evidence, steps, verdicts, compute and the result.

They are plain dataclasses with ``to_dict``/``from_dict`` so that the graph state stays
JSON-native (LangGraph checkpoints it with no custom serialiser).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

Number = int | float
Value = int | float | bool | str | None


class _Dict:
    """Mixin: dict round-trip that ignores unknown keys (forward compatible checkpoints)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class Evidence(_Dict):
    """A retrieved chunk: what the knowledge ability returns and what answers cite."""

    id: str
    text: str
    score: float = 0.0
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def cite(self) -> str:
        where = self.source or self.id
        for key in ("page", "row", "table_row", "paragraph"):
            if key in self.metadata and self.metadata[key] not in (None, ""):
                where += f" {key} {self.metadata[key]}"
        return where


@dataclass
class Verdict(_Dict):
    """The outcome of one check (or of the whole verifier) on a step, answer or sentence."""

    ok: bool
    check: str = ""
    reason: str = ""

    @classmethod
    def passed(cls, check: str = "") -> "Verdict":
        return cls(True, check, "")

    @classmethod
    def failed(cls, check: str, reason: str) -> "Verdict":
        return cls(False, check, reason)


StepKind = Literal["compute", "lookup", "answer"]


@dataclass
class Step(_Dict):
    """One line of a reasoning trace, e.g. ``x3 = x1 - x2``, with what happened to it.

    ``value`` is computed by the step interpreter, never written by the model; ``stated`` is a
    value the trace claims (``x1 = 16 - 3 - 4  # = 9``), checked against ``value``.
    """

    text: str
    target: str = ""
    expr: str = ""
    kind: StepKind = "compute"
    value: Value = None
    stated: float | None = None
    error: str | None = None
    evidence_ids: list[str] = field(default_factory=list)
    verdict: Verdict | None = None
    attempt: int = 0
    index: int = 0
    score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["verdict"] = self.verdict.to_dict() if self.verdict else None
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Step":
        data = dict(data)
        if isinstance(data.get("verdict"), dict):
            data["verdict"] = Verdict.from_dict(data["verdict"])
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @property
    def ok(self) -> bool:
        return bool(self.verdict and self.verdict.ok)


@dataclass
class Compute(_Dict):
    """What a run spent. Search strategies and the graph add to it."""

    model_calls: int = 0
    policy_samples: int = 0
    tokens: int = 0
    retrievals: int = 0
    scorer_calls: int = 0
    wall_time: float = 0.0

    def add(self, other: "Compute | dict[str, Any]") -> "Compute":
        o = other if isinstance(other, Compute) else Compute.from_dict(other)
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(o, f.name))
        return self


Status = Literal["verified", "unverified"]


@dataclass
class Result(_Dict):
    """What ``Agent.run`` returns: the verified answer, its wording, the trace and the cost."""

    task: str
    answer: Value
    text: str
    status: Status
    reason: str = ""
    steps: list[Step] = field(default_factory=list)
    attempts: list[Step] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    compute: Compute = field(default_factory=Compute)
    thread_id: str = ""
    wording_fallback: bool = False

    @property
    def verified(self) -> bool:
        return self.status == "verified"

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "answer": self.answer,
            "text": self.text,
            "status": self.status,
            "reason": self.reason,
            "steps": [s.to_dict() for s in self.steps],
            "attempts": [s.to_dict() for s in self.attempts],
            "evidence": [e.to_dict() for e in self.evidence],
            "compute": self.compute.to_dict(),
            "thread_id": self.thread_id,
            "wording_fallback": self.wording_fallback,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Result":
        return cls(
            task=data["task"],
            answer=data.get("answer"),
            text=data.get("text", ""),
            status=data.get("status", "unverified"),
            reason=data.get("reason", ""),
            steps=[Step.from_dict(s) for s in data.get("steps", [])],
            attempts=[Step.from_dict(s) for s in data.get("attempts", [])],
            evidence=[Evidence.from_dict(e) for e in data.get("evidence", [])],
            compute=Compute.from_dict(data.get("compute", {})),
            thread_id=data.get("thread_id", ""),
            wording_fallback=data.get("wording_fallback", False),
        )


EventKind = Literal[
    "retrieved", "proposed", "executed", "verified", "rejected",
    "retried", "backtracked", "worded", "done",
]


@dataclass
class Event(_Dict):
    """A typed event yielded by ``Agent.stream``: what the graph just did."""

    kind: EventKind
    node: str
    data: dict[str, Any] = field(default_factory=dict)
    elapsed: float = 0.0
