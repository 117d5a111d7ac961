"""Search with a policy that samples countdown with the interpreter in the loop: questions read
back into instances, partial traces continued with their comments, and a scorer that reads the
same comments."""
from __future__ import annotations

import json

import pytest

from dca.abilities import ProposeRequest
from dca.reasoning.tasks.countdown import QUESTIONS, Countdown, as_problem, parse_question, stepwise_prompt
from dca.types import Step

STYLE = {"needs": True, "left": True}


def test_every_countdown_wording_is_read_back_into_its_numbers_and_target():
    for template in QUESTIONS:
        text = template.format(target=328, nums="70, 47, 27, 82")
        assert parse_question(text) == ([70, 47, 27, 82], 328)
        assert parse_question("  " + text.replace(" ", "\n  ", 2)) == ([70, 47, 27, 82], 328)  # spacing does not matter
    problems = list(Countdown(3, 4).problems("dev", n=50))
    assert all(as_problem(p.question).meta == {"numbers": p.meta["numbers"], "target": p.answer} for p in problems)
    assert parse_question("What is 3 + 4? Use the numbers 3, 4.") is None
    assert as_problem("Reach 10 from the numbers 3, 4 using + - * /") is None  # a wording cut short


@pytest.fixture(scope="module")
def stepwise_policy(micro_models):
    from dca.reasoning.policy import LMPolicy

    # the micro policy was trained on plain traces: cool sampling keeps enough of its lines runnable
    return LMPolicy(micro_models["policy"], threads=1, max_new_tokens=24, top_k=3, stepwise=True)


def test_a_prefix_is_shown_as_the_policy_read_it_when_it_wrote_it(stepwise_policy):
    from dca.reasoning.tasks.countdown import stepwise_traces

    model, tokenizer = stepwise_policy.load()
    fmt = stepwise_policy.format
    p = next(Countdown(4, 4).problems("dev", n=1))
    traces = stepwise_traces(model, tokenizer, fmt, [p] * 32, style=STYLE, seed=5, max_steps=3, temperature=0.6,
                             top_k=3)
    head = stepwise_prompt(p, [], fmt, STYLE)
    longer = [t for t in traces if len(t.lines) >= 2]
    assert longer, "the micro policy wrote no trace of two runnable lines"
    for t in longer:
        first = t.text[: t.text.index("\n") + 1]
        assert "#" in first  # the interpreter's comment
        assert stepwise_prompt(p, t.lines[:1], fmt, STYLE) == head + first
        assert t.tokens > 0 and t.mean_logprob < 0
    # continuing: only the new lines come back, and a finished prefix has nothing to continue
    ended = next(t for t in traces if t.lines[-1].startswith("answer"))
    more = stepwise_traces(model, tokenizer, fmt, [p, p], style=STYLE, seed=5, max_steps=1,
                           prefixes=[longer[0].lines[:1], ended.lines])
    assert len(more[0].lines) == 1 and more[0].tokens > 0
    assert more[0].text.startswith(more[0].parts[0][0]) and more[0].parts[0][1]  # the policy's line, not the prefix
    assert more[1].lines == [] and stepwise_prompt(p, ended.lines, fmt, STYLE) is None


def test_the_sampler_and_the_policy_sample_countdown_stepwise(stepwise_policy, micro_models):
    from dca.reasoning.policy import LMPolicy
    from dca.reasoning.search import Budget, Sampler
    from dca.reasoning.tasks.countdown import stepwise_traces, trace_style

    p = next(Countdown(4, 4).problems("dev", n=1))
    request = ProposeRequest(task=p.question, evidence=[], steps=[], max_steps=3)
    assert stepwise_policy.stepwise_problem(request).meta["numbers"] == p.meta["numbers"]
    assert stepwise_policy.stepwise_problem(ProposeRequest(task="What is 2 + 3?", evidence=[], steps=[])) is None
    plain = LMPolicy(micro_models["policy"], threads=1)  # trained on plain traces: stepwise is off by default
    assert plain.stepwise_problem(request) is None

    drawn = Sampler(stepwise_policy).draw([request], 8, 0.6, 7, True, Budget(16))[0]
    model, tokenizer = stepwise_policy.load()
    style = trace_style(stepwise_policy)  # the comments it was trained on: values only
    assert style == {"needs": False, "left": False}
    expected = stepwise_traces(model, tokenizer, stepwise_policy.format, [p] * 8, style=style, seed=7, max_steps=3,
                               max_new_tokens=24, temperature=0.6, top_k=3)
    assert [d.lines for d in drawn] == [t.lines or [""] for t in expected]
    assert any(len(d.lines) >= 2 for d in drawn)
    assert all("#" not in ln for d in drawn for ln in d.lines)

    # the prompt after a step carries the interpreter's comment for it; the plain policy's does not
    a, b = p.meta["numbers"][:2]
    step = Step(text=f"x1 = {a} + {b}", value=float(a + b))
    after = ProposeRequest(task=p.question, evidence=[], steps=[step], max_steps=3)
    shown = tokenizer.decode(stepwise_policy.prompt_ids(after), skip_special_tokens=True)
    assert shown == stepwise_prompt(p, [step.text], stepwise_policy.format, style)
    assert shown.endswith(f" # {a + b}\n")
    assert "#" not in tokenizer.decode(plain.prompt_ids(after), skip_special_tokens=True)
    lines = stepwise_policy.propose(ProposeRequest(task=p.question, evidence=[], steps=[step], n=2, seed=1))
    assert len(lines) == 2 and all(len(x.lines) == 1 for x in lines)


def test_beam_search_runs_on_a_stepwise_policy_and_spends_its_budget(stepwise_policy, scorer_run):
    from dca.reasoning.search import make_strategy

    p = next(Countdown(4, 4).problems("dev", n=1))
    beam = make_strategy("beam", stepwise_policy, samples=12, scorer=scorer_run["path"], seed=0)
    out = beam.propose(ProposeRequest(task=p.question, evidence=[], steps=[], max_steps=4))
    assert out and out[0].lines and all("#" not in ln for ln in out[0].lines)
    assert 1 <= beam.last.spent.policy_samples <= 12


def test_the_scorer_reads_countdown_steps_with_the_interpreters_comments(tmp_path):
    from dca.reasoning.scorer import SCORER_FILE, StepScorer, render_pair

    q = "Using 29, 35, 7, 9 (each at most once) and + - * /, make 57."
    _, shown = render_pair(q, ["x1 = 29 + 35", "x2 = x1 - 7", "answer = x2 - 9"], comments=True)
    assert shown.splitlines() == ["x1 = 29 + 35 # 64 (-7) left 7 9 x1", "x2 = x1 - 7 # 57 left 9 x2",
                                  "answer = x2 - 9 # 48 (+9)"]
    _, right = render_pair(q, ["x1 = 29 + 35 # 1000", Step(text="answer = x1 - 7", value=57.0)], comments=True)
    assert right.splitlines()[-1] == "answer = x1 - 7 # 57"  # a comment the policy wrote is replaced
    _, bad = render_pair(q, ["x1 = 29 + ", "answer = x1"], comments=True)
    assert bad == "x1 = 29 + # ?"
    assert render_pair(q, ["x1 = 29 + 35"])[1] == "x1 = 29 + 35 => 64"  # without comments: as before
    assert render_pair("What is 2 + 3?", ["answer = 2 + 3"], comments=True)[1] == "answer = 2 + 3 => 5"
    (tmp_path / SCORER_FILE).write_text(json.dumps({"format": {"comments": True}}))
    assert StepScorer(None, path=str(tmp_path)).comments is True
    assert StepScorer(None).comments is False


def test_stepwise_sampling_is_on_for_policies_trained_on_the_comments_unless_turned_off(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from dca.reasoning.policy import LMPolicy
    from dca.reasoning.tasks.countdown import trained_with_comments

    def trained(name: str, options: dict) -> SimpleNamespace:
        d = tmp_path / name
        d.mkdir()
        (d / "dca_training.json").write_text(json.dumps({"config": {"data": [
            {"family": "countdown", "options": {"min_numbers": 4, **options}}]}}))
        return SimpleNamespace(_model_dir=lambda: str(d))

    assert trained_with_comments(trained("needs", {"needs": True, "left": True}))
    assert trained_with_comments(trained("values", {"values": True}))
    assert not trained_with_comments(trained("plain", {}))
    q = next(Countdown(4, 4).problems("dev", n=1)).question
    request = ProposeRequest(task=q, evidence=[], steps=[])
    for name, stepwise, on in (("needs", None, True), ("needs", False, False), ("plain", None, False),
                               ("plain", True, True)):
        policy = LMPolicy("unused", stepwise=stepwise)
        monkeypatch.setattr(policy, "_model_dir", lambda name=name: str(tmp_path / name))
        assert (policy.stepwise_problem(request) is not None) is on, (name, stepwise)
