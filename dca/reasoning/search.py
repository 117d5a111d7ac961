"""Inference-time search over a step policy: more samples, checked and ranked, for a better trace.

Every strategy is a ``dca.abilities.Logic`` (the graph runs it unchanged) that wraps a policy
(anything with ``propose``/``complete``, such as ``LMPolicy``) and spends at most a compute budget
per proposal, ``samples`` policy samples (one sample = one generated line or trace) and optionally
``tokens``. It searches from the verified prefix (``request.steps``), never re-proposes a line the
graph rejected there (``request.avoid``), and returns its chosen rest of the trace as one
``Proposal`` whose ``compute`` says what the search spent.

- ``greedy`` / ``sample``: one trace (temperature 0 / the sampling temperature).
- ``self_consistency``: sample traces, vote on their executed answers.
- ``best_of_n``: sample traces, keep the one the step scorer values most.
- ``beam``: step-level beam search, candidates ranked by the step scorer.
- ``mcts``: PUCT tree search; prior from the policy's log-probabilities, value from the scorer
  mixed with rollouts.
- ``rstar``: mutual consistency: a second sample (or policy) completes a cut-off candidate; a
  candidate counts only if both reach the same executed answer.

Candidates are executed by the step interpreter and checked by the verifier's programmatic checks
before they are voted on or scored (that costs no model call): a trace with a failing step never wins.

    >>> logic = make_strategy("beam", LMPolicy("dca:tiny-policy"), samples=16, scorer="dca:tiny-scorer")
    >>> dca.Agent(logic=logic).run("Maya has 12 apples. ...")
"""
from __future__ import annotations

import math
import random
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

from dca.abilities import Proposal, ProposeRequest
from dca.reasoning.steps import ANSWER, Interpreter, StepError, format_value
from dca.types import Compute, Evidence, Step, Value
from dca.verifier import CheckContext, Verifier

# --------------------------------------------------------------------------- budget


@dataclass
class Budget:
    """What one proposal may spend: ``samples`` policy samples (a hard limit) and, if set,
    ``tokens`` generated tokens (checked before each policy call, so the last call may pass it)."""

    samples: int
    tokens: int | None = None
    spent: Compute = field(default_factory=Compute)

    @property
    def left(self) -> int:
        """Samples that may still be drawn (0 once the token budget is used up)."""
        if self.tokens is not None and self.spent.tokens >= self.tokens:
            return 0
        return max(0, self.samples - self.spent.policy_samples)

    def charge(self, compute: Compute) -> None:
        self.spent.add(compute)


# --------------------------------------------------------------------------- sampling


@dataclass
class Draw:
    """One policy sample: the lines it wrote (literal numbers), their mean log-probability and length."""

    lines: list[str]
    logprob: float
    tokens: int


class Sampler:
    """Draws next lines or whole remaining traces for several prefixes in one call.

    For an LM policy (``LMPolicy``: it has ``draws``) the prompts go into one batched call and every
    sample is kept, duplicates included: a vote must count the policy's repeated answers, which
    ``LMPolicy.propose``/``complete`` deduplicate away.
    Any other policy is asked through ``propose``/``complete`` with ``n`` set.
    """

    def __init__(self, policy: Any):
        self.policy = policy
        self.lm = callable(getattr(policy, "draws", None))

    def draw(self, requests: Sequence[ProposeRequest], n: int, temperature: float, seed: int | None,
             whole: bool, budget: Budget) -> list[list[Draw]]:
        """``n`` samples per request (fewer when the budget runs short); charges the budget."""
        per = min(n, budget.left // max(1, len(requests)))
        if per < 1:
            return [[] for _ in requests]
        t0 = time.perf_counter()
        if self.lm:
            out = self._generate(requests, per, temperature, seed, whole)
            tokens = sum(d.tokens for ds in out for d in ds)
            budget.charge(Compute(model_calls=1, policy_samples=sum(len(ds) for ds in out), tokens=tokens,
                                  wall_time=time.perf_counter() - t0))
            return out
        out = []
        for i, req in enumerate(requests):
            asked = replace(req, n=per, temperature=temperature, seed=None if seed is None else seed + 7919 * i,
                            avoid=[])
            props = (self.policy.complete if whole else self.policy.propose)(asked) or []
            spent = Compute()
            for p in props:
                spent.add(p.compute)
            if not spent.policy_samples:  # a policy that does not count: one sample per proposal
                spent.policy_samples, spent.model_calls = len(props), max(spent.model_calls, 1)
            budget.charge(spent)
            k = max(1, len(props))
            out.append([Draw(list(p.lines), p.score if p.score is not None else 0.0, spent.tokens // k)
                        for p in props[:per]])
        return out

    def _generate(self, requests: Sequence[ProposeRequest], n: int, temperature: float, seed: int | None,
                  whole: bool) -> list[list[Draw]]:
        drawn = self.policy.draws(requests, n, temperature, seed, whole)
        return [[Draw(list(lines), float(logprob), int(k)) for lines, logprob, k in samples] for samples in drawn]


# --------------------------------------------------------------------------- checking candidates


class _Deferred(StepError):
    """A ``lookup`` the search cannot run (no knowledge store was given): checked later by the graph."""


def _deferred_lookup(query: str) -> float:
    raise _Deferred("deferred", "lookup runs in the graph, not during search")


class TraceChecker:
    """Executes candidate lines after a verified prefix and runs the verifier's programmatic checks.

    The learned ``step_scorer`` check is left out (search scores candidates itself). Results are
    cached by (task, prefix, line): beam search and MCTS revisit the same prefixes.
    """

    def __init__(self, verifier: Verifier | None = None, interpreter: Interpreter | None = None,
                 knowledge: Any = None, lookup_k: int = 3, cache_size: int = 50_000):
        base = verifier or Verifier(checks=["parses", "executes"])
        self.verifier = Verifier(checks=[c for c in base.checks if c.name != "step_scorer"],
                                 constants=base.constants, lookup_min_score=base.lookup_min_score,
                                 policy=base.policy, unit_factors=base.unit_factors)
        self.interpreter = interpreter or Interpreter()
        self.knowledge, self.lookup_k = knowledge, lookup_k
        self._cache: OrderedDict[tuple, tuple[Step, list[Evidence]]] = OrderedDict()
        self.cache_size = cache_size

    def step(self, task: str, evidence: list[Evidence], prefix: Sequence[Step], line: str) -> tuple[Step, list[Evidence]]:
        """``line`` executed after ``prefix`` with its verdict (``None`` when it needs a deferred lookup),
        and the evidence list grown by any lookup it made."""
        key = (task, len(evidence), tuple(s.text for s in prefix), line.strip())
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return Step.from_dict(hit[0].to_dict()), hit[1]
        step, grown = self._run(task, evidence, prefix, line)
        self._cache[key] = (step, grown)
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return Step.from_dict(step.to_dict()), grown

    def _run(self, task: str, evidence: list[Evidence], prefix: Sequence[Step], line: str) -> tuple[Step, list[Evidence]]:
        step = Step(text=line.strip(), index=len(prefix))
        grown = list(evidence)
        used: list[str] = []

        def record(retrieved: list[Evidence], chosen: Evidence) -> None:
            known = {e.id for e in grown}
            grown.extend(e for e in retrieved if e.id not in known)
            used.append(chosen.id)

        if self.knowledge is not None:
            from dca.lookup import make_lookup

            interp = self.interpreter.with_functions(
                {"lookup": make_lookup(self.knowledge, k=self.lookup_k, on_evidence=record)})
        else:
            from dca.reasoning.steps import Function

            interp = self.interpreter.with_functions(
                {"lookup": Function("lookup", _deferred_lookup, ("str",), timed=False)})
        parsed = None
        try:
            if not step.text:
                raise StepError("parse", "empty step")
            parsed = interp.parse(step.text)
            step.target, step.expr, step.kind, step.stated = parsed.target, parsed.expr, parsed.kind, parsed.stated
            step.value = interp.run(parsed, {s.target: s.value for s in prefix})
        except _Deferred:
            step.evidence_ids = used
            return step, grown  # verdict None: open, not failed
        except StepError as exc:
            step.error = str(exc)
        step.evidence_ids = used
        ctx = CheckContext(task=task, evidence=grown, steps=list(prefix),
                           env={s.target: s.value for s in prefix}, parsed=parsed, verifier=self.verifier)
        step.verdict = self.verifier.check_step(step, ctx)
        return step, grown


@dataclass
class Candidate:
    """A candidate rest of the trace, executed and checked."""

    lines: list[str]
    steps: list[Step]  # executed steps, up to and including the first failing or deferred one
    logprob: float = 0.0
    count: int = 1  # how many samples wrote exactly these lines
    value: float | None = None  # the scorer's value of the whole candidate

    @property
    def failed(self) -> bool:
        return any(s.verdict is not None and not s.verdict.ok for s in self.steps)

    @property
    def finished(self) -> bool:
        """Every line passed its checks and the last one assigns ``answer``."""
        return (not self.failed and len(self.steps) == len(self.lines) and bool(self.steps)
                and self.steps[-1].target == ANSWER and self.steps[-1].verdict is not None)

    @property
    def answer(self) -> Value:
        return self.steps[-1].value if self.finished else None

    @property
    def verified_lines(self) -> list[str]:
        """The leading lines that passed their checks."""
        out = []
        for s in self.steps:
            if s.verdict is None or not s.verdict.ok:
                break
            out.append(s.text)
        return out

    @property
    def key(self) -> str:
        """What votes compare: the executed answer (numbers to 6 significant digits), or, for a
        candidate whose value is not known yet (a deferred lookup), its text."""
        if self.finished:
            return answer_key(self.answer)
        return "lines:" + "\n".join(self.lines)


def answer_key(value: Value) -> str:
    """Answers that are the same value get the same key: 12, 12.0 and 12.0000001 vote together."""
    if isinstance(value, bool):
        return f"bool:{value}"
    if isinstance(value, (int, float)):
        return "num:" + format_value(float(value), digits=6)
    return f"text:{str(value).strip().lower()}"


# --------------------------------------------------------------------------- scorer access


class ScoreCache:
    """The scorer's value of step prefixes, batched and cached by (task, prefix). Counts what it asks."""

    def __init__(self, scorer: Any):
        self.scorer = scorer
        self._cache: OrderedDict[tuple[str, tuple[str, ...]], float] = OrderedDict()
        self.calls = 0

    def values(self, task: str, prefixes: Sequence[Sequence[Step]]) -> list[float]:
        keys = [(task, tuple(s.text for s in p)) for p in prefixes]
        todo = {k: p for k, p in zip(keys, prefixes) if k not in self._cache}
        if todo:
            items = list(todo.items())
            many = getattr(self.scorer, "score_many", None)
            if many is not None:
                got = many(task, [list(p) for _, p in items])
            else:
                fn = getattr(self.scorer, "score", self.scorer)
                got = [fn(task, list(p[:-1]), p[-1]) for _, p in items]
            self.calls += len(items)
            for (k, _), v in zip(items, got):
                self._cache[k] = float(v)
            while len(self._cache) > 100_000:
                self._cache.popitem(last=False)
        return [self._cache[k] for k in keys]


def load_scorer(scorer: Any) -> Any:
    """A scorer object from a name or path (``StepScorer.load``), or the object given."""
    if scorer is None or not isinstance(scorer, str):
        return scorer
    from dca.reasoning.scorer import StepScorer

    return StepScorer.load(scorer)


# --------------------------------------------------------------------------- strategies


class ScorerMissing(ValueError):
    """A strategy that ranks by the step scorer was built without one."""


@dataclass
class SearchReport:
    """What the last proposal's search did (for benchmarks and debugging)."""

    strategy: str
    spent: Compute
    candidates: int = 0  # distinct candidates considered
    pruned: int = 0  # of them, rejected by the programmatic checks
    chosen: list[str] = field(default_factory=list)
    score: float | None = None
    votes: dict[str, float] = field(default_factory=dict)


class SearchStrategy:
    """Base of the strategies: the ``Logic`` contract, the budget, the checker and the scorer.

    Subclasses implement ``search(request, budget) -> list[Candidate]`` (best first).
    """

    name = "search"
    needs_scorer = False

    def __init__(self, policy: Any, *, samples: int = 8, tokens: int | None = None, scorer: Any = None,
                 verifier: Verifier | None = None, seed: int | None = 0, temperature: float = 0.8,
                 knowledge: Any = None, interpreter: Interpreter | None = None):
        if not callable(getattr(policy, "propose", None)):
            raise TypeError(f"{self.name}: the policy {type(policy).__name__} has no propose(request) method")
        if not isinstance(samples, int) or samples < 1:
            raise ValueError(f"{self.name}: samples must be an integer >= 1, got {samples!r}")
        if tokens is not None and tokens < 1:
            raise ValueError(f"{self.name}: tokens must be >= 1 or None, got {tokens!r}")
        if not 0.0 <= float(temperature) <= 5.0:
            raise ValueError(f"{self.name}: temperature must be in 0..5, got {temperature!r}")
        self.policy = policy
        self.samples, self.tokens = samples, tokens
        self.seed, self.temperature = seed, float(temperature)
        self.scorer = load_scorer(scorer)
        if self.needs_scorer and self.scorer is None:
            raise ScorerMissing(f"strategy {self.name!r} needs a step scorer (logic.scorer: a model name or path, "
                             f"e.g. dca:tiny-scorer, or scorer= an object with score(task, steps, step))")
        self.values = ScoreCache(self.scorer) if self.scorer is not None else None
        self.sampler = Sampler(policy)
        self.checker = TraceChecker(verifier, interpreter, knowledge)
        self.last: SearchReport | None = None

    # ------------------------------------------------------------------ the Logic contract
    def propose(self, request: ProposeRequest) -> list[Proposal]:
        budget = Budget(self.samples, self.tokens)
        calls_before = self.values.calls if self.values else 0
        self._votes: dict[str, float] = {}
        ranked = self.search(request, budget)
        if self.values:
            budget.spent.scorer_calls += self.values.calls - calls_before
        chosen = self._choose(ranked, max(1, request.n))
        self.last = SearchReport(self.name, budget.spent, candidates=len(ranked),
                                 pruned=sum(c.failed for c in ranked), chosen=chosen[0].lines if chosen else [],
                                 score=chosen[0].score if chosen else None, votes=self._votes)
        if not chosen:
            return [Proposal(lines=[""], score=None, compute=budget.spent)]
        chosen[0].compute = budget.spent
        return chosen

    def search(self, request: ProposeRequest, budget: Budget) -> list[Candidate]:
        raise NotImplementedError

    def _choose(self, ranked: list[Candidate], n: int) -> list[Proposal]:
        """The best ``n`` candidates as proposals. A candidate that failed a check is cut to the lines
        that passed (the graph runs those, then asks again from there); one with none that passed
        goes as it is, so the graph records the rejection and asks again with it avoided."""
        out: list[Proposal] = []
        seen: set[tuple[str, ...]] = set()
        for c in ranked:
            lines = c.verified_lines if c.failed and c.verified_lines else c.lines
            if tuple(lines) in seen:
                continue
            seen.add(tuple(lines))
            score = c.value if c.value is not None else c.logprob
            out.append(Proposal(lines=list(lines), score=score))
            if len(out) >= n:
                break
        return out

    # ------------------------------------------------------------------ shared pieces
    def _seed(self, request: ProposeRequest, k: int) -> int | None:
        """A sampling seed for the ``k``-th policy call of this proposal."""
        if self.seed is None and request.seed is None:
            return None
        return (self.seed or 0) * 1_000_003 + (request.seed or 0) * 7919 + k

    def _at(self, request: ProposeRequest, steps: Sequence[Step]) -> ProposeRequest:
        """The request for continuing from ``steps`` (the verified prefix plus search steps)."""
        return replace(request, steps=list(steps), n=1, avoid=[])

    def candidates(self, request: ProposeRequest, draws: Sequence[Draw]) -> list[Candidate]:
        """Executed, checked, merged candidates from trace samples; lines the graph rejected at this
        position (``request.avoid``) count as failed."""
        avoid = {a.strip() for a in request.avoid}
        merged: dict[tuple[str, ...], Candidate] = {}
        for d in draws:
            key = tuple(d.lines)
            if key in merged:
                merged[key].count += 1
                merged[key].logprob = max(merged[key].logprob, d.logprob)
                continue
            steps = self.execute(request, d.lines)
            if d.lines and d.lines[0].strip() in avoid and steps:
                steps[0].verdict = _avoided()
            merged[key] = Candidate(lines=list(d.lines), steps=steps, logprob=d.logprob)
        return list(merged.values())

    def execute(self, request: ProposeRequest, lines: Sequence[str], prefix: Sequence[Step] | None = None) -> list[Step]:
        """``lines`` run after ``prefix`` (default: the verified steps), stopping at the first failure."""
        done = list(request.steps if prefix is None else prefix)
        evidence = list(request.evidence)
        out: list[Step] = []
        for line in lines:
            step, evidence = self.checker.step(request.task, evidence, done, line)
            out.append(step)
            if step.verdict is None or not step.verdict.ok or step.target == ANSWER:
                break
            done.append(step)
        return out

    def score_candidates(self, request: ProposeRequest, cands: Sequence[Candidate]) -> None:
        """Set ``value`` on every finished candidate: the scorer's value of its whole trace."""
        done = [c for c in cands if c.finished]
        if not done or self.values is None:
            return
        vals = self.values.values(request.task, [list(request.steps) + c.steps for c in done])
        for c, v in zip(done, vals):
            c.value = v

    def rank_by_value(self, cands: Sequence[Candidate]) -> list[Candidate]:
        """Finished candidates first, by the scorer's value; equal values (a saturated or uninformative
        scorer) are decided by how many samples reach the same answer, then by log-probability."""
        votes: dict[str, int] = {}
        for c in cands:
            if c.finished:
                votes[c.key] = votes.get(c.key, 0) + c.count
        return sorted(cands, key=lambda c: (c.failed, not c.finished, -(c.value or 0.0), -votes.get(c.key, 0),
                                            -c.logprob))

    def vote(self, cands: Sequence[Candidate], weight: Callable[[Candidate], float] | None = None) -> list[Candidate]:
        """Candidates ranked by the total weight (default: sample count) of their answer, then by
        their own weight and log-probability. Failed candidates come last."""
        weight = weight or (lambda c: float(c.count))
        totals: dict[str, float] = {}
        for c in cands:
            if not c.failed:
                totals[c.key] = totals.get(c.key, 0.0) + weight(c)
        self._votes = dict(sorted(totals.items(), key=lambda kv: -kv[1])[:8])
        return sorted(cands, key=lambda c: (c.failed, not c.finished, -totals.get(c.key, 0.0), -weight(c),
                                            -c.logprob, len(c.verified_lines) * -1))


def _avoided():
    from dca.types import Verdict

    return Verdict.failed("avoid", "the graph rejected this line here before")


class Greedy(SearchStrategy):
    """One trace at temperature 0 (at the graph's temperature on retries) through ``policy.complete``."""

    name = "greedy"

    def search(self, request: ProposeRequest, budget: Budget) -> list[Candidate]:
        return self._one(request, budget, request.temperature)

    def _one(self, request: ProposeRequest, budget: Budget, temperature: float) -> list[Candidate]:
        complete = getattr(self.policy, "complete", None)
        asked = replace(request, n=1, temperature=temperature, seed=self._seed(request, 0))
        t0 = time.perf_counter()
        props = (complete or self.policy.propose)(asked) or []
        spent = Compute()
        for p in props:
            spent.add(p.compute)
        spent.policy_samples = spent.policy_samples or len(props)
        spent.wall_time = spent.wall_time or time.perf_counter() - t0
        budget.charge(spent)
        draws = [Draw(list(p.lines), p.score or 0.0, 0) for p in props[:1]]
        return self.candidates(request, draws)


class Sample(Greedy):
    """One trace sampled at the strategy's temperature (or the graph's, if hotter)."""

    name = "sample"

    def search(self, request: ProposeRequest, budget: Budget) -> list[Candidate]:
        return self._one(request, budget, max(self.temperature, request.temperature))


class SelfConsistency(SearchStrategy):
    """Majority vote: ``samples`` traces, executed and checked; the answer most of the passing ones
    reach wins (votes are on executed values, not strings); its most likely trace is returned."""

    name = "self_consistency"

    def search(self, request: ProposeRequest, budget: Budget) -> list[Candidate]:
        draws = self.sampler.draw([request], budget.left, max(self.temperature, request.temperature),
                                  self._seed(request, 0), True, budget)[0]
        return self.vote(self.candidates(request, draws))


class BestOfN(SearchStrategy):
    """``samples`` traces; the passing one the step scorer values most wins. With ``vote: true``
    the scorer's values are summed per answer instead (a scorer-weighted majority vote)."""

    name = "best_of_n"
    needs_scorer = True

    def __init__(self, policy: Any, *, vote: bool = False, **kw: Any):
        super().__init__(policy, **kw)
        self.weighted = bool(vote)

    def search(self, request: ProposeRequest, budget: Budget) -> list[Candidate]:
        draws = self.sampler.draw([request], budget.left, max(self.temperature, request.temperature),
                                  self._seed(request, 0), True, budget)[0]
        cands = self.candidates(request, draws)
        self.score_candidates(request, cands)
        if self.weighted:
            return self.vote(cands, weight=lambda c: (c.value or 0.0) * c.count)
        return self.rank_by_value(cands)


class Beam(SearchStrategy):
    """Step-level beam search: from each of ``width`` prefixes the policy proposes ``expand`` next
    lines (one batched call), failing lines are dropped, and the ``width`` new prefixes the scorer
    values most go on; finished traces leave the beam. A greedy trace first gives a fallback answer
    and the expected depth, so the budget is spread over the steps still to come.

    ``width``/``expand`` default to a split of the per-step budget (``expand`` up to 4).
    ``step_temperature`` 0 proposes the policy's top distinct lines (LM beam search), else samples.
    """

    name = "beam"
    needs_scorer = True

    def __init__(self, policy: Any, *, width: int | None = None, expand: int | None = None,
                 step_temperature: float | None = None, lookahead: bool = True, **kw: Any):
        super().__init__(policy, **kw)
        self.width, self.expand = width, expand
        self.step_temperature = self.temperature if step_temperature is None else float(step_temperature)
        self.lookahead = lookahead

    def search(self, request: ProposeRequest, budget: Budget) -> list[Candidate]:
        finished: list[Candidate] = []
        depth_hint = 3
        calls = 0
        if self.lookahead and budget.left >= 1:  # with one sample, that greedy trace is the answer
            draws = self.sampler.draw([request], 1, 0.0, None, True, budget)[0]
            calls += 1
            for c in self.candidates(request, draws):
                depth_hint = max(1, len(c.lines))
                if c.finished:
                    finished.append(c)
        self.last_beams: list[list[list[str]]] = []
        beams: list[list[Step]] = [[]]  # search steps after the verified prefix
        beam_values: list[float] = [1.0]
        limit = max(1, request.max_steps - len(request.steps))
        depth = 0
        while beams and budget.left > 0 and depth < limit:
            per_step = max(1, budget.left // max(1, depth_hint - depth))
            expand = self.expand or min(4, per_step)
            width = self.width or max(1, per_step // expand)
            beams, beam_values = beams[:width], beam_values[:width]
            reqs = [self._at(request, list(request.steps) + b) for b in beams]
            draws = self.sampler.draw(reqs, expand, self.step_temperature, self._seed(request, 100 + calls), False,
                                      budget)
            calls += 1
            children: dict[tuple[str, ...], list[Step]] = {}
            for b, ds in zip(beams, draws):
                for d in ds:
                    line = d.lines[0] if d.lines else ""
                    if depth == 0 and line.strip() in {a.strip() for a in request.avoid}:
                        continue
                    key = tuple(s.text for s in b) + (line.strip(),)
                    if key in children:
                        continue
                    step = self.execute(request, [line], list(request.steps) + b)[-1:]
                    if step and step[0].verdict is not None and step[0].verdict.ok:
                        children[key] = b + step
            if not children:
                break
            kids = list(children.values())
            vals = self.values.values(request.task, [list(request.steps) + k for k in kids])
            order = sorted(range(len(kids)), key=lambda i: -vals[i])
            beams, beam_values = [], []
            for i in order:
                if kids[i][-1].target == ANSWER:
                    finished.append(Candidate(lines=[s.text for s in kids[i]], steps=kids[i], value=vals[i]))
                elif len(beams) < (self.width or width):
                    beams.append(kids[i])
                    beam_values.append(vals[i])
            self.last_beams.append([[s.text for s in b] for b in beams])
            depth += 1
        self.score_candidates(request, [c for c in finished if c.value is None])
        if finished:
            return self.rank_by_value(finished)
        return [Candidate(lines=[s.text for s in b], steps=b, value=v) for b, v in zip(beams, beam_values)]


@dataclass
class _Node:
    steps: list[Step]  # search steps after the verified prefix
    prior: float = 1.0
    visits: int = 0
    total: float = 0.0
    value: float = 0.0  # the scorer's value of this prefix
    children: list["_Node"] = field(default_factory=list)
    expanded: bool = False
    dead: bool = False  # no child passed its checks

    @property
    def terminal(self) -> bool:
        return bool(self.steps) and self.steps[-1].target == ANSWER

    @property
    def q(self) -> float:
        return self.total / self.visits if self.visits else self.value


class MCTS(SearchStrategy):
    """Monte-Carlo tree search over steps with PUCT selection.

    A node is a step prefix. Selection maximises ``Q + c_puct * P * sqrt(N_parent) / (1 + N)``,
    ``P`` the softmax of the policy's log-probabilities of the proposed lines (``prior_temperature``),
    ``Q`` the mean backed-up value. Expansion proposes ``expand`` next lines in one call and keeps
    the ones that pass the checks; the new leaf is valued as ``mix * scorer + (1 - mix) * rollout``,
    the rollout being one completion (``policy.complete``) whose finished trace is valued by the
    scorer (0 if it fails a check). Every finished trace found, in the tree or by a rollout, is
    kept; the answer with the highest summed value wins (``select: vote``), or the single best
    trace (``select: value``). Budget left when the tree closes early (every branch finished or
    failed) is spent on whole traces from the root, valued the same way, and so is a budget of at
    most ``expand`` samples, too small for one expansion and its rollout.
    """

    name = "mcts"
    needs_scorer = True

    def __init__(self, policy: Any, *, expand: int = 3, c_puct: float = 1.0, mix: float = 0.5,
                 prior_temperature: float = 1.0, select: str = "vote", **kw: Any):
        super().__init__(policy, **kw)
        if select not in ("vote", "value"):
            raise ValueError(f"mcts: select must be 'vote' or 'value', got {select!r}")
        if not 0.0 <= mix <= 1.0:
            raise ValueError(f"mcts: mix must be in 0..1, got {mix!r}")
        self.expand, self.c_puct, self.mix = int(expand), float(c_puct), float(mix)
        self.prior_temperature, self.select = float(prior_temperature), select

    def search(self, request: ProposeRequest, budget: Budget) -> list[Candidate]:
        root = _Node(steps=[])
        found: dict[tuple[str, ...], Candidate] = {}
        limit = max(1, request.max_steps - len(request.steps))
        calls = 0
        avoid = {a.strip() for a in request.avoid}
        # a budget too small for one expansion and a rollout goes on whole traces (below) instead
        passes = 4 * self.samples + 8 if budget.left > self.expand else 0
        for _ in range(passes):  # every pass spends samples or closes a branch
            if budget.left <= 0 or root.dead:
                break
            path = [root]
            node = root
            while node.expanded and node.children and not node.terminal:
                node = self._pick(node)
                path.append(node)
            if node.terminal or len(node.steps) >= limit or (node.expanded and not node.children):
                value = node.value if node.terminal else 0.0
                if not node.terminal:
                    node.dead = True
                self._backup(path, value)
                if all(c.terminal or c.dead for c in root.children) and root.expanded:
                    break
                continue
            calls += 1
            kids = self._expand(request, node, budget, calls, avoid if node is root else set())
            if not kids:
                node.dead = True
                self._backup(path, 0.0)
                continue
            for k in kids:  # every finished line the expansion found is a candidate, not only the one followed
                if k.terminal:
                    self._keep(found, k.steps, k.value)
            leaf = max(kids, key=lambda k: (k.prior, k.value))
            path.append(leaf)
            value = leaf.value
            if not leaf.terminal and budget.left > 0:
                calls += 1
                rolled = self._rollout(request, leaf, budget, calls)
                if rolled is not None:
                    self._keep(found, rolled.steps, rolled.value or 0.0)
                roll_value = rolled.value if rolled is not None and rolled.value is not None else 0.0
                value = self.mix * leaf.value + (1 - self.mix) * roll_value
            self._backup(path, value)
        if budget.left > 0:  # the tree closed early (every branch finished or failed), or never grew: whole traces
            calls += 1
            draws = self.sampler.draw([request], budget.left, max(self.temperature, request.temperature),
                                      self._seed(request, calls), True, budget)[0]
            extra = [c for c in self.candidates(request, draws) if c.finished]
            self.score_candidates(request, extra)
            for c in extra:
                for _ in range(c.count):
                    self._keep(found, c.steps, c.value or 0.0)
        cands = list(found.values())
        if not cands:  # nothing finished: the most visited path, for the graph to continue from
            node, steps = root, []
            while node.children:
                node = max(node.children, key=lambda c: (c.visits, c.q))
                steps = node.steps
            return [Candidate(lines=[s.text for s in steps], steps=steps, value=node.value)] if steps else []
        if self.select == "value":
            return self.rank_by_value(cands)
        return self.vote(cands, weight=lambda c: (c.value or 0.0) * c.count)

    def _pick(self, node: _Node) -> _Node:
        sqrt_n = math.sqrt(max(1, node.visits))
        live = [c for c in node.children if not c.dead] or node.children
        return max(live, key=lambda c: c.q + self.c_puct * c.prior * sqrt_n / (1 + c.visits))

    def _expand(self, request: ProposeRequest, node: _Node, budget: Budget, k: int, avoid: set[str]) -> list[_Node]:
        node.expanded = True
        req = self._at(request, list(request.steps) + node.steps)
        draws = self.sampler.draw([req], self.expand, max(self.temperature, 0.3), self._seed(request, k), False,
                                  budget)[0]
        best: dict[str, Draw] = {}
        for d in draws:
            line = (d.lines[0] if d.lines else "").strip()
            if line and line not in avoid and (line not in best or d.logprob > best[line].logprob):
                best[line] = d
        kids: list[_Node] = []
        scores: list[float] = []
        for line, d in best.items():
            step = self.execute(request, [line], list(request.steps) + node.steps)
            if step and step[-1].verdict is not None and step[-1].verdict.ok:
                kids.append(_Node(steps=node.steps + step[-1:]))
                scores.append(d.logprob * max(1, d.tokens) / self.prior_temperature)
        if not kids:
            return []
        top = max(scores)
        weights = [math.exp(s - top) for s in scores]
        total = sum(weights)
        values = self.values.values(request.task, [list(request.steps) + c.steps for c in kids])
        for c, w, v in zip(kids, weights, values):
            c.prior, c.value = w / total, v
        node.children = kids
        return kids

    def _rollout(self, request: ProposeRequest, leaf: _Node, budget: Budget, k: int) -> Candidate | None:
        req = self._at(request, list(request.steps) + leaf.steps)
        draws = self.sampler.draw([req], 1, self.temperature, self._seed(request, k), True, budget)[0]
        if not draws:
            return None
        rest = self.execute(request, draws[0].lines, list(request.steps) + leaf.steps)
        cand = Candidate(lines=[s.text for s in leaf.steps] + draws[0].lines, steps=leaf.steps + rest,
                         logprob=draws[0].logprob)
        if cand.finished:
            cand.value = self.values.values(request.task, [list(request.steps) + cand.steps])[0]
            return cand
        cand.value = 0.0
        return None if cand.failed else cand

    @staticmethod
    def _keep(found: dict[tuple[str, ...], Candidate], steps: list[Step], value: float) -> None:
        key = tuple(s.text for s in steps)
        if key in found:
            found[key].count += 1
        else:
            found[key] = Candidate(lines=list(key), steps=list(steps), value=value)

    @staticmethod
    def _backup(path: list[_Node], value: float) -> None:
        for n in path:
            n.visits += 1
            n.total += value


class RStar(SearchStrategy):
    """Mutual consistency (rStar): half the budget samples candidate traces; for each distinct
    passing candidate (most frequent first) the trace is cut at a random step and a second sample,
    from ``second_policy`` if given, completes it. A candidate counts only if the completion reaches
    the same executed answer; the answer with the most consistent samples wins. With none
    consistent, the plain majority vote decides."""

    name = "rstar"

    def __init__(self, policy: Any, *, second_policy: Any = None, share: float = 0.5, **kw: Any):
        super().__init__(policy, **kw)
        if isinstance(second_policy, str):
            from dca.reasoning.policy import LMPolicy

            second_policy = LMPolicy(second_policy)
        self.second = Sampler(second_policy) if second_policy is not None else self.sampler
        if not 0.0 < share < 1.0:
            raise ValueError(f"rstar: share must be between 0 and 1, got {share!r}")
        self.share = float(share)

    def search(self, request: ProposeRequest, budget: Budget) -> list[Candidate]:
        temperature = max(self.temperature, request.temperature)
        first = max(1, math.ceil(budget.left * self.share)) if budget.left > 1 else budget.left
        draws = self.sampler.draw([request], first, temperature, self._seed(request, 0), True, budget)[0]
        cands = self.candidates(request, draws)
        passing = sorted([c for c in cands if c.finished], key=lambda c: (-c.count, -c.logprob))
        rng = random.Random(self._seed(request, 1))
        checked = passing[: budget.left]
        consistent: set[int] = set()
        if checked:
            cuts = [rng.randint(0, len(c.steps) - 1) for c in checked]
            reqs = [self._at(request, list(request.steps) + c.steps[:cut]) for c, cut in zip(checked, cuts)]
            second = self.second.draw(reqs, 1, temperature, self._seed(request, 2), True, budget)
            for i, (c, cut, ds) in enumerate(zip(checked, cuts, second)):
                if not ds:
                    continue
                rest = self.execute(request, ds[0].lines, list(request.steps) + c.steps[:cut])
                other = Candidate(lines=ds[0].lines, steps=c.steps[:cut] + rest)
                if other.finished and other.key == c.key:
                    consistent.add(i)
        if consistent:
            agreed = {checked[i].key for i in consistent}
            return self.vote(cands, weight=lambda c: float(c.count) if c.key in agreed else 0.0)
        return self.vote(cands)


STRATEGIES: dict[str, type[SearchStrategy]] = {
    "greedy": Greedy,
    "sample": Sample,
    "self_consistency": SelfConsistency,
    "best_of_n": BestOfN,
    "beam": Beam,
    "mcts": MCTS,
    "rstar": RStar,
}


def make_strategy(name: str, policy: Any, *, samples: int = 8, scorer: Any = None, seed: int | None = 0,
                  verifier: Verifier | None = None, **options: Any) -> SearchStrategy:
    """Build the strategy ``name`` around ``policy``; ``options`` are the strategy's own settings
    (``temperature``, ``tokens``, ``knowledge``, and e.g. ``width``/``expand`` for beam)."""
    if name not in STRATEGIES:
        import difflib

        close = difflib.get_close_matches(name, list(STRATEGIES), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown search strategy {name!r}{hint} (known: {', '.join(STRATEGIES)})")
    cls = STRATEGIES[name]
    try:
        return cls(policy, samples=samples, scorer=scorer, seed=seed, verifier=verifier, **options)
    except TypeError as exc:
        import inspect

        known = sorted({p for c in cls.__mro__ if c is not object and "__init__" in vars(c)
                        for p in inspect.signature(c.__init__).parameters if p not in ("self", "policy", "kw")})
        raise ValueError(f"strategy {name!r}: {exc} (options it takes: {', '.join(known)})") from None


def split_options(options: dict[str, Any], policy_factory: Callable[..., Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``logic.options`` split into the policy's keyword arguments and the strategy's."""
    import inspect

    params = inspect.signature(policy_factory).parameters
    mine = {k: v for k, v in options.items() if k in params}
    return mine, {k: v for k, v in options.items() if k not in params}
