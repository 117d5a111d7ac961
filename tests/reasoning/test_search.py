"""Search strategies: the Logic contract, the compute budget, voting on executed answers, YAML."""
from __future__ import annotations

import pytest

from dca.abilities import Proposal, ProposeRequest, check_ability
from dca.reasoning.search import STRATEGIES, ScorerMissing, answer_key, make_strategy
from dca.reasoning.steps import Interpreter
from dca.types import Compute, Step

TASK = "Maya has 12 apples. Maya buys 5 more apples. Maya gives 3 apples to Leo. How many apples does Maya have now?"
COUNTDOWN = "Using 3, 5, 7 (each at most once) and + - * /, make 22."
GUIDED = {"best_of_n", "beam", "mcts"}


@pytest.fixture(scope="module")
def policy(micro_models):
    from dca.reasoning.policy import LMPolicy

    return LMPolicy(micro_models["policy"], threads=1, max_new_tokens=24, max_trace_tokens=96)


@pytest.fixture(scope="module")
def scorer(scorer_run):
    from dca.reasoning.scorer import StepScorer

    return StepScorer.load(scorer_run["path"], threads=1)


def _strategy(name, policy, scorer, samples, **kw):
    return make_strategy(name, policy, samples=samples, scorer=scorer if name in GUIDED else None, seed=1, **kw)


@pytest.mark.parametrize("name", sorted(STRATEGIES))
@pytest.mark.parametrize("samples", [1, 6])
def test_every_strategy_proposes_within_its_budget_and_reports_compute(name, samples, policy, scorer):
    strategy = _strategy(name, policy, scorer, samples)
    check_ability("logic", strategy)
    for task in (TASK, COUNTDOWN):
        props = strategy.propose(ProposeRequest(task=task, evidence=[], steps=[], seed=2))
        assert props and isinstance(props[0], Proposal)
        spent = props[0].compute
        assert 1 <= spent.policy_samples <= samples, (name, spent)
        assert spent.model_calls >= 1 and spent.tokens >= spent.policy_samples
        assert strategy.last is not None and strategy.last.spent.policy_samples == spent.policy_samples
        if name in GUIDED and name != "best_of_n" or name == "best_of_n" and strategy.last.candidates:
            assert spent.scorer_calls >= 0
        assert sum(p.compute.policy_samples for p in props[1:]) == 0  # compute is counted once


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_same_seed_same_proposal(name, policy, scorer):
    req = ProposeRequest(task=TASK, evidence=[], steps=[], seed=5)
    a = _strategy(name, policy, scorer, 4).propose(req)[0].lines
    b = _strategy(name, policy, scorer, 4).propose(req)[0].lines
    assert a == b


@pytest.mark.parametrize("name", ["self_consistency", "best_of_n", "beam", "mcts", "rstar"])
def test_large_budgets_are_spent_but_never_exceeded(name, policy, scorer):
    strategy = _strategy(name, policy, scorer, 12)
    spent = strategy.propose(ProposeRequest(task=COUNTDOWN, evidence=[], steps=[], seed=3))[0].compute
    assert spent.policy_samples <= 12
    if name in ("self_consistency", "best_of_n", "mcts"):
        assert spent.policy_samples == 12


def test_token_budget_stops_sampling(policy):
    strategy = make_strategy("beam", policy, samples=64, tokens=10, scorer=_LineScorer({}), seed=0)
    spent = strategy.propose(ProposeRequest(task=TASK, evidence=[], steps=[]))[0].compute
    assert spent.policy_samples < 64
    assert spent.tokens < 10 + 64 * 96  # the call that passed the limit was the last one


def test_guided_strategies_need_a_scorer(policy):
    for name in GUIDED:
        with pytest.raises(ScorerMissing, match="needs a step scorer"):
            make_strategy(name, policy, samples=4)


def test_unknown_strategy_and_option_name_what_is_known(policy):
    with pytest.raises(ValueError, match="did you mean 'beam'"):
        make_strategy("bean", policy)
    with pytest.raises(ValueError, match="options it takes: .*width"):
        make_strategy("beam", policy, scorer=_LineScorer({}), widht=3)


# ---------------------------------------------------------------- scripted policies (no model)


class _Scripted:
    """A policy that writes fixed traces (``complete``) and next lines (``propose``): a user's own Logic."""

    def __init__(self, traces, lines=None):
        self.traces, self.lines = traces, lines or {}
        self.asked = 0

    def complete(self, request):
        self.asked += request.n
        done = len(request.steps)
        out = []
        for i in range(request.n):
            trace = self.traces[(self.asked - request.n + i) % len(self.traces)]
            out.append(Proposal(lines=trace[done:] or ["answer = 0"], score=-0.1 * i,
                                compute=Compute(model_calls=1 if i == 0 else 0, policy_samples=1, tokens=5)))
        return out

    def propose(self, request):
        prefix = tuple(s.text for s in request.steps)
        options = self.lines.get(prefix) or [t[len(prefix)] for t in self.traces if len(t) > len(prefix)]
        n = max(1, request.n)
        self.asked += n
        return [Proposal(lines=[options[i % len(options)]], score=-0.1 * i,
                         compute=Compute(model_calls=1 if i == 0 else 0, policy_samples=1, tokens=3))
                for i in range(n)]


class _LineScorer:
    """Values a prefix by its latest line that has a value (default 0.5)."""

    def __init__(self, values):
        self.values_by_line = values

    def score_many(self, task, prefixes):
        out = []
        for p in prefixes:
            texts = [s.text if isinstance(s, Step) else s for s in p]
            out.append(next((self.values_by_line[t] for t in reversed(texts) if t in self.values_by_line), 0.5))
        return out


def _answer(lines):
    return Interpreter().run_trace(lines).get("answer")


def test_self_consistency_votes_on_executed_values_not_strings():
    # 14 three ways (three different texts), 15 twice with one text: a string vote would pick 15.
    traces = [["answer = 12 + 2"], ["answer = 15"], ["x1 = 7 * 2", "answer = x1"], ["answer = 15"],
              ["answer = 28 / 2"], ["answer = 1 / 0"]]
    strategy = make_strategy("self_consistency", _Scripted(traces), samples=6, seed=0)
    props = strategy.propose(ProposeRequest(task="q", evidence=[], steps=[], n=2))
    assert _answer(props[0].lines) == 14
    assert strategy.last.votes[answer_key(14)] == 3 and strategy.last.votes[answer_key(15)] == 2
    assert answer_key(14) == answer_key(14.0000000001)
    assert all(_answer(p.lines) != float("inf") for p in props)
    assert strategy.last.pruned == 1  # the division by zero fails its check and never votes
    assert props[0].compute.policy_samples == 6


def test_votes_do_not_leak_between_proposals():
    policy = _Scripted([["answer = 3"]])
    strategy = make_strategy("mcts", policy, samples=4, scorer=_LineScorer({}), expand=1)
    strategy.propose(ProposeRequest(task="q", evidence=[], steps=[]))
    assert set(strategy.last.votes) == {answer_key(3)}
    policy.traces, policy.lines = [["answer = 1 / 0"]], {(): ["answer = 1 / 0"]}  # nothing passes now
    strategy.propose(ProposeRequest(task="q2", evidence=[], steps=[]))
    assert strategy.last.votes == {}


def test_best_of_n_keeps_the_trace_the_scorer_values_most():
    traces = [["answer = 5"], ["answer = 5"], ["answer = 7"]]
    scorer = _LineScorer({"answer = 7": 0.9, "answer = 5": 0.2})
    props = make_strategy("best_of_n", _Scripted(traces), samples=3, scorer=scorer).propose(
        ProposeRequest(task="q", evidence=[], steps=[]))
    assert props[0].lines == ["answer = 7"] and props[0].score == pytest.approx(0.9)
    voted = make_strategy("best_of_n", _Scripted(traces), samples=3, scorer=scorer, vote=True).propose(
        ProposeRequest(task="q", evidence=[], steps=[]))
    assert voted[0].lines == ["answer = 7"]  # 0.9 > 0.2 + 0.2


def test_beam_follows_the_scorer_step_by_step():
    lines = {(): ["x1 = 2 + 2", "x1 = 3 + 3"], ("x1 = 3 + 3",): ["answer = x1 * 10"],
             ("x1 = 2 + 2",): ["answer = x1 * 10"]}
    policy = _Scripted([["x1 = 2 + 2", "answer = x1 * 10"]], lines)
    scorer = _LineScorer({"x1 = 3 + 3": 0.9, "x1 = 2 + 2": 0.1})
    strategy = make_strategy("beam", policy, samples=8, scorer=scorer, width=1, expand=2, lookahead=False)
    props = strategy.propose(ProposeRequest(task="q", evidence=[], steps=[]))
    assert props[0].lines == ["x1 = 3 + 3", "answer = x1 * 10"]
    assert props[0].compute.policy_samples <= 8 and props[0].compute.scorer_calls >= 2


def test_mcts_prefers_the_branch_with_higher_value():
    lines = {(): ["x1 = 2 + 2", "x1 = 3 + 3"], ("x1 = 3 + 3",): ["answer = x1 * 10"],
             ("x1 = 2 + 2",): ["answer = x1 * 10"]}
    policy = _Scripted([["x1 = 2 + 2", "answer = x1 * 10"], ["x1 = 3 + 3", "answer = x1 * 10"]], lines)
    scorer = _LineScorer({"x1 = 3 + 3": 0.9, "x1 = 2 + 2": 0.1})
    strategy = make_strategy("mcts", policy, samples=10, scorer=scorer, expand=2, select="value")
    props = strategy.propose(ProposeRequest(task="q", evidence=[], steps=[]))
    assert _answer(props[0].lines) == 60
    assert props[0].compute.policy_samples <= 10


def test_rstar_counts_only_mutually_consistent_answers():
    # the first policy's majority (9, twice) is not reproduced by the second policy; 8 is
    first = _Scripted([["x1 = 4", "answer = x1 + 5"], ["x1 = 4", "answer = x1 + 5"], ["x1 = 4", "answer = x1 * 2"]])
    second = _Scripted([["x1 = 4", "answer = x1 * 2"]])
    strategy = make_strategy("rstar", first, samples=6, second_policy=second, seed=0)
    props = strategy.propose(ProposeRequest(task="q", evidence=[], steps=[]))
    assert _answer(props[0].lines) == 8
    assert props[0].compute.policy_samples <= 6


def test_avoided_lines_never_win():
    traces = [["answer = 5"], ["answer = 5"], ["answer = 7"]]
    props = make_strategy("self_consistency", _Scripted(traces), samples=3).propose(
        ProposeRequest(task="q", evidence=[], steps=[], avoid=["answer = 5"]))
    assert props[0].lines == ["answer = 7"]


def test_search_continues_from_the_verified_prefix():
    prefix = [Step(text="x1 = 10", target="x1", value=10)]
    traces = [["x1 = 10", "answer = x1 + 1"]]
    props = make_strategy("self_consistency", _Scripted(traces), samples=2).propose(
        ProposeRequest(task="q", evidence=[], steps=prefix))
    assert props[0].lines == ["answer = x1 + 1"]


# ---------------------------------------------------------------- YAML pipelines


PIPELINE = """
name: search-{name}
knowledge: {{kind: none}}
logic:
  model: {model}
  strategy: {name}
  samples: 4
  max_new_tokens: 24
  seed: 3
  {scorer}
  options: {{threads: 1, max_trace_tokens: 96}}
wording: {{kind: template}}
verifier:
  retries: 1
  backtracks: 0
  max_steps: 4
"""


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_runs_from_a_yaml_pipeline(name, micro_models, scorer_run):
    import dca
    from dca.reasoning.search import SearchStrategy

    scorer = f"scorer: {scorer_run['path']}" if name in GUIDED else ""
    pipe = dca.Pipeline.from_text(PIPELINE.format(name=name, model=micro_models["policy"], scorer=scorer))
    logic = pipe.build_logic()
    if name not in ("greedy", "sample"):
        assert isinstance(logic, SearchStrategy) and logic.name == name and logic.samples == 4
    result = pipe.run(COUNTDOWN)
    assert result.status in ("verified", "unverified")
    assert result.compute.model_calls >= 1 and result.compute.policy_samples >= 1
    if name not in ("greedy", "sample"):
        assert result.compute.policy_samples <= 4 * max(1, result.compute.model_calls)


def test_yaml_guided_strategy_without_scorer_names_the_field(micro_models):
    import dca
    from dca.config import ConfigError

    pipe = dca.Pipeline.from_text(PIPELINE.format(name="beam", model=micro_models["policy"], scorer=""))
    with pytest.raises(ConfigError, match="logic.scorer"):
        pipe.build_logic()


# ---------------------------------------------------------------- ranking by the scorer (best-of-N at 0 %)


def test_best_of_n_breaks_scorer_ties_by_the_vote_not_by_likelihood():
    # a saturated or uninformative scorer gives every trace the same value: the answer most samples
    # reach must win, not the single most likely trace
    traces = [["answer = 7"], ["answer = 5"], ["x1 = 2 + 3", "answer = x1"], ["answer = 5"]]
    strategy = make_strategy("best_of_n", _Scripted(traces), samples=4, scorer=_LineScorer({}))
    props = strategy.propose(ProposeRequest(task="q", evidence=[], steps=[]))
    assert _answer(props[0].lines) == 5


def test_beam_and_mcts_break_scorer_ties_by_the_vote():
    lines = {(): ["answer = 7", "answer = 5", "answer = 2 + 3"]}
    policy = _Scripted([["answer = 7"], ["answer = 5"], ["answer = 2 + 3"]], lines)
    beam = make_strategy("beam", policy, samples=3, scorer=_LineScorer({}), width=3, expand=3, lookahead=False)
    assert _answer(beam.propose(ProposeRequest(task="q", evidence=[], steps=[]))[0].lines) == 5
    mcts = make_strategy("mcts", policy, samples=3, scorer=_LineScorer({}), expand=3, select="value")
    assert _answer(mcts.propose(ProposeRequest(task="q", evidence=[], steps=[]))[0].lines) == 5


def test_best_of_n_scores_the_whole_finished_trace_after_the_prefix():
    # the value that ranks a trace is the one of its final line, with the verified prefix in front
    seen = []

    class _Recording(_LineScorer):
        def score_many(self, task, prefixes):
            seen.extend([[s.text for s in p] for p in prefixes])
            return super().score_many(task, prefixes)

    prefix = [Step(text="x1 = 10", target="x1", value=10)]
    traces = [["x1 = 10", "answer = x1 + 1"], ["x1 = 10", "answer = x1 + 2"]]
    scorer = _Recording({"answer = x1 + 2": 0.8, "answer = x1 + 1": 0.3})
    props = make_strategy("best_of_n", _Scripted(traces), samples=2, scorer=scorer).propose(
        ProposeRequest(task="q", evidence=[], steps=prefix))
    assert props[0].lines == ["answer = x1 + 2"] and props[0].score == pytest.approx(0.8)
    assert ["x1 = 10", "answer = x1 + 2"] in seen and ["x1 = 10", "answer = x1 + 1"] in seen


@pytest.mark.parametrize("samples", [1, 2, 3])
@pytest.mark.parametrize("name", ["beam", "mcts"])
def test_tree_strategies_answer_with_a_whole_trace_when_the_budget_is_too_small_to_grow_one(name, samples):
    """One sample cannot pay for a beam step and a whole trace; up to ``expand`` samples cannot pay for
    an MCTS expansion and its rollout: the budget goes on whole traces, so there is an answer."""
    traces = [["x1 = 2 + 3", "answer = x1 * 2"], ["x1 = 2 + 4", "answer = x1 * 2"]]
    scorer = _LineScorer({"answer = x1 * 2": 0.9})
    strategy = make_strategy(name, _Scripted(traces), samples=samples, scorer=scorer, seed=0, expand=3)
    props = strategy.propose(ProposeRequest(task="q", evidence=[], steps=[], max_steps=4))
    assert props[0].lines[-1] == "answer = x1 * 2" and props[0].lines in traces
    assert 1 <= strategy.last.spent.policy_samples <= samples


# ---------------------------------------------------------------- the decode loop behind every sample


@pytest.mark.parametrize("until", ["line", "trace"])
def test_decode_loop_writes_what_model_generate_writes(policy, until):
    from dca.reasoning.policy import generate

    model, tokenizer = policy.load()
    prompts = [policy.prompt_ids(ProposeRequest(task=t, evidence=[], steps=[])) for t in (TASK, COUNTDOWN)]
    ours = generate(model, tokenizer, prompts, until=until, max_new_tokens=64)
    theirs = generate(model, tokenizer, prompts, until=until, max_new_tokens=64, decoder="generate")
    assert [[(t, k) for t, _, k in row] for row in ours] == [[(t, k) for t, _, k in row] for row in theirs]
    for a, b in zip(ours, theirs):
        assert a[0][1] == pytest.approx(b[0][1], abs=1e-3)  # mean log-probability of the same tokens
    if until == "trace":
        for row in ours:
            lines = [ln for ln in row[0][0].split("\n") if ln.strip()]
            assert sum(ln.strip().startswith("answer") for ln in lines) <= 1  # it stops after the answer line


def test_decode_loop_samples_repeat_with_a_seed_and_respect_padding(policy):
    from dca.reasoning.policy import generate

    model, tokenizer = policy.load()
    short = policy.prompt_ids(ProposeRequest(task=COUNTDOWN, evidence=[], steps=[]))
    long = policy.prompt_ids(ProposeRequest(task=TASK, evidence=[], steps=[]))
    a = generate(model, tokenizer, [short, long], n=3, temperature=1.0, seed=4, until="trace", max_new_tokens=48)
    b = generate(model, tokenizer, [short, long], n=3, temperature=1.0, seed=4, until="trace", max_new_tokens=48)
    assert a == b and [len(r) for r in a] == [3, 3]
    # a left-padded prompt continues exactly as it does alone (greedy)
    batched = generate(model, tokenizer, [short, long], until="trace", max_new_tokens=48)
    alone = generate(model, tokenizer, [short], until="trace", max_new_tokens=48)
    assert batched[0][0][0] == alone[0][0][0]
    with pytest.raises(ValueError, match="decoder must be"):
        generate(model, tokenizer, [short], decoder="fast")


def test_decode_loop_reads_a_shared_prompt_once_and_continues_it_as_if_read_per_row(policy):
    """n samples of one prompt (or a GRPO group's repeated state) prefill once; each row then goes on
    from a copy of that cache exactly as a row that read the prompt itself."""
    import torch

    from dca.reasoning.policy import _length, decode, generate, newline_token_ids

    model, tokenizer = policy.load()
    short = policy.prompt_ids(ProposeRequest(task=COUNTDOWN, evidence=[], steps=[]))
    long = policy.prompt_ids(ProposeRequest(task=TASK, evidence=[], steps=[]))
    batches: list[int] = []
    hook = model.register_forward_pre_hook(lambda m, a, k: batches.append(k["input_ids"].shape[0]), with_kwargs=True)
    try:
        shared = generate(model, tokenizer, [short, long, short], until="trace", max_new_tokens=48)
        greedy_batches, batches[:] = list(batches), []
        sampled = generate(model, tokenizer, [long], n=5, temperature=1.0, seed=2, until="line", max_new_tokens=24)
    finally:
        hook.remove()
    assert greedy_batches[0] == 2 and set(greedy_batches[1:]) == {3}  # two distinct prompts read, three rows
    assert batches[0] == 1 and set(batches[1:]) == {5}
    alone = [generate(model, tokenizer, [p], until="trace", max_new_tokens=48)[0][0] for p in (short, long, short)]
    assert [(t, k) for t, _, k in (row[0] for row in shared)] == [(t, k) for t, _, k in alone]
    for row, one in zip(shared, alone):
        assert row[0][1] == pytest.approx(one[1], abs=1e-4)
    # the rows sampled from the copied cache are those sampled from five copies of the prompt
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    ids = torch.tensor([long] * 5)
    stops = [eos, *newline_token_ids(tokenizer)]
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(2)
        seqs, _ = decode(model, ids, torch.ones_like(ids), temperature=1.0, top_k=None, max_new_tokens=24,
                         stops=stops, pad=pad, suppress=stops)
    copies = [row[:_length(row, stops, pad)] for row in seqs.tolist()]
    assert [text for text, _, _ in sampled[0]] == tokenizer.batch_decode(copies, skip_special_tokens=True)
