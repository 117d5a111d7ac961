from __future__ import annotations

import random
from pathlib import Path

import pytest

from dca.reasoning.prompt import PromptFormat, clip_fact, policy_example, rank_facts, render_prompt
from dca.reasoning.sft import BatchPlan, SFTConfig, collate, epoch_batches, load_sft_config
from dca.reasoning.tasks.base import Problem
from dca.types import Evidence

ROOT = Path(__file__).resolve().parents[2]


def test_prompt_format():
    facts = [Evidence(id="1", text="Net revenue: 2015 = 5,829; 2014 = 5,735")]
    text = render_prompt("What  was the\nchange?", facts, ["x1 = 5829 - 5735  # = 94"])
    assert text == ("Question: What was the change?\nFacts:\n[1] Net revenue: 2015 = 5,829; 2014 = 5,735\n"
                    "Steps:\nx1 = 5829 - 5735\n")
    assert render_prompt("Q?") == "Question: Q?\nSteps:\n"


@pytest.mark.parametrize("family,options,fmt", [
    ("synthetic", {"min_steps": 3, "max_steps": 8, "plan": True}, PromptFormat(comments=True, max_question_chars=1400)),
    ("countdown", {"needs": True, "left": True}, PromptFormat(comments=True)),
    ("countdown", {"needs": True, "left": True}, PromptFormat(comments=True, max_numbers=20, refs=True)),
    ("synthetic", {"min_steps": 3, "max_steps": 5}, PromptFormat(max_numbers=20, refs=True)),
])
def test_prompt_after_gold_steps_is_what_the_policy_was_trained_on(family, options, fmt):
    """Mid-trace prompts (the graph's, one step at a time) must continue the supervised text exactly:
    a policy trained to write comments reads its earlier steps with them, one trained without, without."""
    from dca.reasoning.tasks import get_family

    commented = 0
    for problem in get_family(family, **options).problems("train", n=20, seed=4):
        pair = policy_example(problem, fmt)
        assert pair is not None
        prompt, completion = pair
        lines = completion.splitlines(keepends=True)
        commented += "#" in completion
        for k in range(len(lines)):
            assert render_prompt(problem.question, (), problem.gold[:k], fmt) == prompt + "".join(lines[:k])
    assert (commented > 10) == fmt.comments


def test_long_fact_keeps_the_sentences_about_the_question():
    fact = "The company was founded in 1901. " * 5 + "Net revenue rose to 5,829 in 2015. " + "Unrelated words. " * 5
    clipped = clip_fact(fact, "What was net revenue in 2015?", 80)
    assert "5,829" in clipped and len(clipped) <= 80


def test_rank_keeps_required_facts_within_k():
    ev = [Evidence(id=str(i), text=f"revenue {i}") for i in range(6)] + [Evidence(id="gold", text="zzz 77")]
    top = rank_facts("revenue?", ev, must=["gold"], k=3)
    assert len(top) == 3 and "gold" in {e.id for e in top}


def test_policy_example_drops_ungrounded_traces():
    p = Problem(id="1", question="Jo has 5 apples and buys 7 more. How many?", answer=12,
                gold=["answer = 5 + 7"])
    assert policy_example(p) == ("Question: Jo has 5 apples and buys 7 more. How many?\nSteps:\n", "answer = 5 + 7\n")
    q = Problem(id="2", question="Jo has 5 apples and buys some. How many?", answer=12, gold=["answer = 5 + 737"])
    assert policy_example(q) is None  # 737 appears nowhere: the verifier would refuse the step
    assert policy_example(Problem(id="3", question="Q?", answer=1, gold=None)) is None


def test_batches_cover_every_example_within_the_token_budget():
    lengths = [5, 50, 7, 120, 33, 8, 64, 9, 100, 11] * 10
    batches = epoch_batches(lengths, 256, seed=0, epoch=0)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert all(max(lengths[i] for i in b) * len(b) <= 256 or len(b) == 1 for b in batches)
    assert batches == epoch_batches(lengths, 256, seed=0, epoch=0)
    assert batches != epoch_batches(lengths, 256, seed=0, epoch=1)


def test_a_run_longer_than_one_epoch_steps_through_epochs_of_different_sizes():
    """Each shuffle packs the windows differently, so epochs differ in their number of batches; a
    step past the first epoch must still land on a batch (it raised IndexError when the plan
    divided by the first epoch's count), and every epoch must show every example once."""
    lengths = [random.Random(i).randint(5, 120) for i in range(700)]
    plan = BatchPlan(lengths, 256, seed=0)
    sizes = [len(epoch_batches(lengths, 256, seed=0, epoch=e)) for e in range(6)]
    assert len(set(sizes)) > 1  # the case the plan has to handle
    steps = [plan[s] for s in range(sum(sizes))]
    start = 0
    for e, n in enumerate(sizes):
        assert steps[start:start + n] == epoch_batches(lengths, 256, seed=0, epoch=e)
        start += n
    resumed = BatchPlan(lengths, 256, seed=0)  # a resumed run finds the same batch for a late step
    assert resumed[sum(sizes) - 1] == steps[-1] and resumed.locate(sizes[0]) == (1, 0)


def test_collate_masks_prompt_and_padding():
    x, y = collate([([1, 5, 6, 7, 2], 3), ([1, 8, 2], 2)], pad_id=0)
    assert x.tolist() == [[1, 5, 6, 7, 2], [1, 8, 2, 0, 0]]
    assert y.tolist() == [[-100, -100, -100, 7, 2], [-100, -100, 2, -100, -100]]


def test_yaml_recipes_match_the_builtin_ones():
    from dca.models.recipes import get_recipe

    for name, file in (("tiny-policy", "train_policy.yaml"), ("tiny-wording", "train_wording.yaml"),
                       ("tiny-reasoner", "train_reasoner.yaml"), ("chain-reasoner", "train_chain.yaml"),
                       ("countdown-reasoner", "train_countdown.yaml"), ("countdown-small", "train_countdown_small.yaml")):
        from_yaml = load_sft_config(ROOT / "configs" / file)
        builtin = get_recipe(name).config()
        assert from_yaml == builtin, f"configs/{file} differs from the dca:{name} recipe"


def test_config_errors_name_the_file_and_field(tmp_path):
    bad = tmp_path / "x.yaml"
    bad.write_text("kind: policy\nstepz: 3\n")
    with pytest.raises(ValueError, match=r"x.yaml: unknown field 'stepz'"):
        load_sft_config(bad)
    bad.write_text("steps: many\n")
    with pytest.raises(ValueError, match=r"field 'steps' must be a number"):
        load_sft_config(bad)
    bad.write_text("data: [{family: gsm8k, splt: train}]\n")
    with pytest.raises(ValueError, match=r"data\[0\]: unknown field 'splt'"):
        load_sft_config(bad)
    with pytest.raises(ValueError, match="field 'kind' must be one of"):
        SFTConfig.from_dict({"kind": "rl"})


def test_numbers_line_lists_step_literals():
    from dca.reasoning.prompt import literals

    facts = [Evidence(id="1", text="Net revenue: 2015 = $5,829; 2014 = (5,735); margin 12.5%")]
    text = render_prompt("What was the change from 2014 to 2015?", facts, (), PromptFormat(max_numbers=4))
    assert "\nNumbers: 2014, 2015, 5829, -5735\nSteps:\n" in text
    assert literals(["a 1,000 b 1000 c 2.50"], 10) == ["1000", "2.5"]


def test_supervision_can_start_at_a_prompt_line():
    from dca.models.tokenizer import train_tokenizer
    from dca.reasoning.sft import encode_pair

    prompt = "Question: add 5 and 7\nNumbers: 5, 7\nSteps:\n"
    tok = train_tokenizer([prompt + "answer = 5 + 7\n"] * 5, vocab_size=300)
    ids, start = encode_pair(prompt, "answer = 5 + 7\n", tok)
    assert tok.decode(ids[start:], skip_special_tokens=True) == "answer = 5 + 7\n"
    ids2, start2 = encode_pair(prompt, "answer = 5 + 7\n", tok, supervise_from="Numbers:")
    assert ids2 == ids
    assert tok.decode(ids2[start2:], skip_special_tokens=True) == "Numbers: 5, 7\nSteps:\nanswer = 5 + 7\n"


def test_number_names_round_trip_and_stay_out_of_strings():
    from dca.reasoning.prompt import from_refs, to_refs

    nums = ["2014", "2015", "5829", "-5735", "12.5"]
    assert to_refs("x1 = 5829 - 5735 * 100", nums) == "x1 = n3 - 5735 * 100"  # 5735 is listed as -5735
    assert to_refs('x2 = lookup("5829 rev") + 2015', nums) == 'x2 = lookup("5829 rev") + n2'
    assert to_refs("answer = x1 / 12.50", nums) == "answer = x1 / n5"
    assert from_refs("x1 = n3 - n4 + n9 + n1x", nums) == "x1 = 5829 - (-5735) + n9 + n1x"
    text = render_prompt("Change from 2014 to 2015?", [Evidence(id="1", text="Revenue: 2015 = 5,829; 2014 = 5,735")],
                         ["x1 = 5829 - 5735"], PromptFormat(max_numbers=10, refs=True))
    assert text.endswith("Numbers: n1 = 2014, n2 = 2015, n3 = 5829, n4 = 5735\nSteps:\nx1 = n3 - n4\n")


def test_prompt_format_travels_with_the_model(tmp_path):
    from dca.reasoning.prompt import load_format, save_format

    save_format(PromptFormat(max_facts=3, max_numbers=20, refs=True), tmp_path)
    assert load_format(tmp_path) == PromptFormat(max_facts=3, max_numbers=20, refs=True)
    assert load_format(tmp_path, max_facts=7).max_facts == 7
    assert load_format(None) == PromptFormat()
