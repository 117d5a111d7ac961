"""Countdown trace styles for training a proposal distribution: solver-found solutions, stated
intermediate values, and sampling with the interpreter's values in the context."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from dca.reasoning.steps import Interpreter, format_value, parse_step
from dca.reasoning.tasks import get_family
from dca.reasoning.tasks.countdown import (Countdown, progress, reachable, solve_all, solve_forward, value_comment,
                                           with_values)

ROOT = Path(__file__).resolve().parents[2]


def test_solver_finds_only_valid_distinct_solutions_including_the_generators_own():
    fam = Countdown(4, 4)
    own_found = 0
    problems = list(fam.problems("train", n=40))
    for p in problems:
        found = solve_all(p.meta["numbers"], p.answer)
        assert found and len({tuple(s) for s in found}) == len(found)
        assert all(fam.score(p, s) for s in found), p.question
        assert all(s[-1].startswith("answer = ") for s in found)
        own_found += p.gold in found
    assert own_found >= 0.9 * len(problems)  # missed only when an earlier step already hits the target
    assert solve_all([2, 3], 7) == []
    assert solve_all([2, 3], 6) == [["answer = 3 * 2"]]


def test_reachable_agrees_with_the_solver():
    for p in Countdown(3, 4).problems("dev", n=40):
        assert reachable(p.meta["numbers"], p.answer)
    assert reachable([2, 3], 6) and reachable([2, 3], 5) and reachable([8, 2], 4)
    assert not reachable([2, 3], 7) and not reachable([2, 3], 9)
    assert not reachable([7, 2], 3.5)  # not a whole number: no move of the generator makes it
    assert reachable([3.5, 2, 5], 7) and not reachable([3.5, 2], 7)  # 3.5 cannot take part in a move


def test_progress_counts_the_first_lines_that_keep_the_target_within_reach():
    from dca.reasoning.tasks.base import Problem

    p = Problem(id="p", question="Make 24 out of 4, 6, 2, 9.", answer=24, family="countdown",
                meta={"numbers": [4, 6, 2, 9], "target": 24})
    assert progress(p, ["x1 = 4 * 6", "answer = x1"]) == 1.0
    assert progress(p, ["x1 = 9 - 6", "x2 = x1 * 2", "answer = x2 * 4"]) == 1.0
    assert progress(p, ["x1 = 9 - 6", "x2 = x1 + 2", "answer = x2 * 4"]) == 1 / 3  # 5 with 4 left: lost
    assert progress(p, ["x1 = 9 - 6", "x2 = x1 * 2", "answer = x2 + 4"]) == 2 / 3  # the last move misses
    assert progress(p, ["x1 = 9 + 4", "answer = x1 * 2"]) == 0.0  # 13 with 6 and 2 cannot make 24
    assert progress(p, ["x1 = 4 * 6", "answer = x1 - 4"]) == 0.5  # 4 is already used: the line does not count
    assert progress(p, ["x1 = 5 * 6", "answer = x1"]) == 0.0  # 5 is not given
    assert progress(p, ["x1 = (", "answer = x1"]) == 0.0 and progress(p, []) == 0.0
    twice = Problem(id="q", question="", answer=16, family="countdown", meta={"numbers": [4, 4, 3], "target": 16})
    assert progress(twice, ["answer = 4 * 4"]) == 1.0  # a number given twice may be used twice
    for q in Countdown(4, 4).problems("dev", n=20):  # every solution the solver finds scores 1
        assert all(progress(q, s) == 1.0 for s in solve_all(q.meta["numbers"], q.answer)[:10])


def test_several_solutions_per_instance_each_valid_and_counted_by_instance():
    fam = get_family("countdown", min_numbers=4, max_numbers=4, solutions=3)
    problems = list(fam.problems("train", n=20))
    questions = {p.question for p in problems}
    assert len(questions) == 20 and 20 < len(problems) <= 60
    for q in questions:
        golds = [tuple(p.gold) for p in problems if p.question == q]
        assert len(set(golds)) == len(golds) <= 3
    assert all(fam.score(p, p.gold) for p in problems)
    assert len({p.id for p in problems}) == len(problems)


def test_stated_values_match_the_interpreter_and_still_score():
    fam = Countdown(solutions=2, values=True)
    for p in fam.problems("train", n=30):
        env = Interpreter().run_trace(p.gold)
        for line in p.gold:
            step = parse_step(line)
            if step.target == "answer":
                assert step.stated is None
            else:
                assert step.stated == env[step.target]
        assert fam.score(p, p.gold)
    assert with_values(["x1 = 25 + 3", "answer = x1 * 7"]) == ["x1 = 25 + 3 # 28", "answer = x1 * 7"]
    assert with_values(["x1 = 25 + 3", "x2 = x1 - 7", "answer = x2 * 9"], [3, 7, 9, 25], 189, left=True) == [
        "x1 = 25 + 3 # 28 (+161) left 7 9 x1", "x2 = x1 - 7 # 21 (+168 *9) left 9 x2", "answer = x2 * 9"]


def test_needs_state_the_moves_that_finish_and_the_answer_line_takes_one():
    assert value_comment(57, 121) == "# 57 (+64)"
    assert value_comment(242, 121) == "# 242 (-121 /2)"
    assert value_comment(11, 121) == "# 11 (+110 *11)"
    assert value_comment(3.5, 121) == "# 3.5 (+117.5)"
    fam = Countdown(4, 4, solutions=3, needs=True)
    finished = 0
    problems = list(fam.problems("train", n=30))
    for p in problems:
        env = Interpreter().run_trace(p.gold)
        last = parse_step(p.gold[-1])
        for line in p.gold[:-1]:
            step = parse_step(line)
            assert line.endswith(value_comment(env[step.target], p.answer))
            assert line.split(" # ")[1].split(" (")[0] == format_value(env[step.target])
        # the answer combines an earlier step with one more operand: one of that step's stated moves
        names = [n for n in last.names if n in env]
        if len(names) == 1 and len(last.numbers) == 1:
            hint = next(ln for ln in p.gold if ln.startswith(names[0] + " ="))
            finished += any(f"{op}{int(last.numbers[0])}" in hint for op in "+-*/")
        assert fam.score(p, p.gold)
    assert finished >= 10


def test_default_problems_keep_the_one_forward_solution_without_comments():
    import random

    for p in Countdown().problems("dev", n=30):
        assert "#" not in "".join(p.gold)
        rng = random.Random(f"countdown:0:{p.id.rsplit('-', 1)[1]}")
        [rng.randint(1, 100) for _ in range(rng.randint(3, 4))]
        assert solve_forward(p.meta["numbers"], rng) == (p.answer, p.gold)
    with pytest.raises(ValueError, match="solutions"):
        Countdown(solutions=-1)


def test_sft_keeps_comments_only_when_asked():
    from dca.reasoning.sft import DataSource, SFTConfig, build_examples

    source = DataSource("countdown", "train", n=5, options={"values": True})
    on = SFTConfig(data=[source], max_numbers=20, refs=True, comments=True)
    off = SFTConfig(data=[source], max_numbers=20, refs=True)
    with_c, _ = build_examples(on.data, on)
    without, _ = build_examples(off.data, off)
    assert [p for p, _ in with_c] == [p for p, _ in without]
    for (_, c1), (_, c0) in zip(with_c, without):
        lines = c1.splitlines()
        assert all("#" in ln for ln in lines[:-1]) and "#" not in lines[-1]
        assert [ln.split(" #")[0] for ln in lines] == c0.splitlines()  # same refs form, comments kept
        assert "n" in c0  # numbers written as n1, n2, ...


def test_sampling_with_interpreter_values_gives_runnable_literal_traces(micro_models):
    from dca.reasoning.policy import LMPolicy
    from dca.reasoning.tasks.countdown import sample_with_values, trace_style

    policy = LMPolicy(micro_models["policy"], threads=1, max_new_tokens=24)
    p = next(Countdown(4, 4).problems("dev", n=1))
    traces = sample_with_values(policy, p, n=8, temperature=1.0, seed=3, max_steps=3)
    assert len(traces) == 8 and all(1 <= len(t) <= 3 for t in traces)
    assert traces == sample_with_values(policy, p, n=8, temperature=1.0, seed=3, max_steps=3)
    assert traces != sample_with_values(policy, p, n=8, temperature=1.0, seed=4, max_steps=3)
    for t in traces:
        assert all("#" not in ln for ln in t)
        Interpreter().run_trace(t[:-1])  # a sample goes on only while its lines run
    assert trace_style(policy) == {"needs": False, "left": False}  # the micro policy learned plain traces
    hinted = sample_with_values(policy, p, n=8, temperature=1.0, seed=3, max_steps=3,
                                style={"needs": True, "left": True})
    assert [t[0] for t in hinted] == [t[0] for t in traces]  # hints change the context only after a step


def test_refs_policies_read_comment_numbers_by_name_but_the_value_stays():
    from dca.reasoning.prompt import comment_refs
    from dca.reasoning.sft import DataSource, SFTConfig, build_examples

    listed = ["121", "29", "7", "35", "64"]
    assert comment_refs("# 64 (+57) left 64 x1", listed) == "# 64 (+57) left n5 x1"
    assert comment_refs("# 7.5 (+113.5) left 29 35", listed) == "# 7.5 (+113.5) left n2 n4"
    config = SFTConfig(max_numbers=20, refs=True, comments=True)
    source = DataSource("countdown", "train", n=3, options={"min_numbers": 4, "max_numbers": 4, "left": True})
    for _, completion in build_examples([source], config)[0]:
        for line in completion.splitlines()[:-1]:
            left = line.split(" left ")[1].split()
            assert all(item.startswith(("n", "x")) for item in left), line


def test_sources_of_one_family_and_split_are_counted_together_unless_options_tell_them_apart():
    from dca.reasoning.sft import DataSource, SFTConfig, build_examples

    config = SFTConfig(kind="policy", data=[DataSource("countdown", "train", n=5),
                                            DataSource("countdown", "train", n=3, seed=1)])
    examples, counts = build_examples(config.data, config)
    assert counts == {"countdown/train": 8} and len(examples) == 8
    three = DataSource("countdown", "train", n=2, options={"min_numbers": 3, "max_numbers": 3})
    _, counts = build_examples([config.data[0], three], config)
    assert counts == {"countdown/train": 5, "countdown/train[max_numbers=3,min_numbers=3]": 2}


def test_a_grpo_policy_keeps_the_trace_style_of_the_policy_it_started_from(tmp_path):
    """GRPO records its own data (no comment options) and the model it started from; stepwise
    sampling must still write the comments that start model was trained on."""
    from types import SimpleNamespace

    from dca.reasoning.tasks.countdown import trace_style

    sft, rl = tmp_path / "sft", tmp_path / "rl"
    sft.mkdir()
    rl.mkdir()
    options = {"min_numbers": 4, "max_numbers": 4, "needs": True, "left": True}
    (sft / "dca_training.json").write_text(json.dumps({"config": {"data": [{"family": "countdown", "options": options}]}}))
    (rl / "dca_training.json").write_text(json.dumps({"kind": "grpo", "start": str(sft), "config": {
        "data": [{"family": "countdown", "options": {"min_numbers": 4, "max_numbers": 4}}]}}))
    policy = lambda d: SimpleNamespace(_model_dir=lambda: str(d))  # noqa: E731
    assert trace_style(policy(sft)) == {"needs": True, "left": True}
    assert trace_style(policy(rl)) == {"needs": True, "left": True}


def test_a_long_garbage_collection_does_not_end_an_open_prefix():
    """Under load a collection during a re-run prefix outlasted the 100 ms step bound, the state
    ended and the step rollout got an empty move; the bound now leaves collections out."""
    import gc
    import sys
    import time

    from dca.reasoning.prompt import PromptFormat
    from dca.reasoning.steps import Interpreter
    from dca.reasoning.tasks import countdown

    problem = next(Countdown(4, 4).problems("dev", n=1))
    prefix = solve_all(problem.meta["numbers"], problem.answer)[0][:-1]
    assert prefix
    pauses = []

    def in_a_step() -> bool:
        frame = sys._getframe()
        while frame is not None and frame.f_code is not Interpreter._eval.__code__:
            frame = frame.f_back
        return frame is not None

    def slow_collection(phase, info):  # runs inside dca's own start..stop window of each collection
        if phase == "start" and len(pauses) < 4 and in_a_step():
            end = time.thread_time() + 0.15
            while time.thread_time() < end:
                pass
            pauses.append(0.15)

    threshold = gc.get_threshold()
    gc.callbacks.append(slow_collection)
    gc.set_threshold(1)  # every allocation collects, so the pauses fall inside the steps
    try:
        out = countdown._continue_from(problem, prefix, PromptFormat(), {"needs": True, "left": False})
    finally:
        gc.callbacks.remove(slow_collection)
        gc.set_threshold(*threshold)
    assert pauses  # each one alone outlasts the 100 ms bound
    assert out is not None
    text, state = out
    assert text.count("\n") >= len(prefix) and len(state.pool) == 4 - len(prefix)



def test_a_fine_tuned_policy_keeps_the_trace_style_of_the_policy_it_started_from(tmp_path):
    """Fine-tuning a countdown policy on given pairs (its own solved traces, say) records no countdown
    data of its own; stepwise sampling must still write the comments the start policy learned."""
    from dca.reasoning.sft import DataSource, train_sft
    from dca.reasoning.tasks.countdown import trace_style
    from helpers_models import tiny_sft_config

    options = {"min_numbers": 3, "max_numbers": 3, "needs": True, "left": True}
    base = train_sft(tiny_sft_config(tmp_path / "base", steps=4, comments=True,
                                     data=[DataSource("countdown", "train", n=40, options=options)]),
                     progress=False).model_dir
    pairs = [("Question: reach 10 with 4, 6.\nSteps:\n", "answer = 4 + 6\n")] * 8
    tuned = train_sft(tiny_sft_config(tmp_path / "tuned", init=str(base), steps=2, comments=True),
                      examples=pairs, dev_examples=[], progress=False).model_dir
    assert json.loads((tuned / "dca_training.json").read_text())["start"] == str(base)
    assert trace_style(str(base)) == trace_style(str(tuned)) == {"needs": True, "left": True}


def test_stopping_a_line_where_its_comment_starts_samples_the_same_lines_in_fewer_steps(tmp_path):
    """The interpreter replaces a policy's own comment; ending each line at its ``#`` (GRPO's rollouts)
    leaves the lines, their parts and the interpreter's comments as they were, and decodes less."""
    from dca.reasoning.policy import LMPolicy, generate
    from dca.reasoning.sft import DataSource, encode_prompt, train_sft
    from dca.reasoning.tasks.countdown import stepwise_prompt, stepwise_traces
    from helpers_models import tiny_sft_config

    options = {"min_numbers": 3, "max_numbers": 3, "needs": True, "left": True}
    model_dir = train_sft(tiny_sft_config(tmp_path / "p", steps=40, comments=True,
                                          data=[DataSource("countdown", "train", n=200, options=options)]),
                          progress=False).model_dir
    policy = LMPolicy(str(model_dir), threads=1)
    model, tokenizer = policy.load()
    style = {"needs": True, "left": True}
    problems = [p for p in Countdown(3, 3).problems("dev", n=4) for _ in range(4)]
    first = generate(model, tokenizer, [encode_prompt(stepwise_prompt(problems[0], [], policy.format, style), tokenizer)],
                     n=8, temperature=1.0, seed=0, until="line", max_new_tokens=48)[0]
    assert any(" #" in text for text, _, _ in first)  # the policy writes comments: the stop is exercised
    calls: list[int] = []
    hook = model.register_forward_pre_hook(lambda m, a, k: calls.append(1), with_kwargs=True)
    try:
        full = stepwise_traces(model, tokenizer, policy.format, problems, style=style, temperature=1.0, seed=5,
                               max_new_tokens=48)
        steps_full, calls[:] = len(calls), []
        cut = stepwise_traces(model, tokenizer, policy.format, problems, style=style, temperature=1.0, seed=5,
                              max_new_tokens=48, stop_at_comment=True)
    finally:
        hook.remove()
    assert [t.lines for t in cut] == [t.lines for t in full] and [t.parts for t in cut] == [t.parts for t in full]
    assert any(len(t.lines) > 1 for t in full)
    assert len(calls) <= steps_full  # a batch decodes until its longest line ends
    assert all(t.tokens <= f.tokens for t, f in zip(cut, full)) and sum(t.tokens for t in cut) < sum(f.tokens for f in full)
