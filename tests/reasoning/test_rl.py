"""GRPO on the micro policy: the reward rises, runs repeat with a seed, resume, and save a loadable policy."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from dca.reasoning.rl import RLConfig, TraceJudge, load_rl_config, metrics_of, source_key, train_rl
from dca.reasoning.sft import DataSource

DATA = [DataSource("synthetic", "train", n=64, options={"max_steps": 1}),
        DataSource("countdown", "train", n=64, options={"min_numbers": 2, "max_numbers": 2})]


def _config(policy, out, **kw):
    settings = dict(policy=policy, data=DATA, eval_n=0, steps=30, prompts_per_step=2, group=8, max_new_tokens=32,
                    lr=3e-4, temperature=0.8, reward_valid=0.5, reward_format=0.5, threads=1, seed=0,
                    out_dir=str(out), resume=False, checkpoint_every=100)
    settings.update(kw)
    return RLConfig(**settings)


def test_short_grpo_run_raises_the_mean_reward(micro_models, tmp_path):
    result = train_rl(_config(micro_models["policy"], tmp_path / "rl"), progress=False)
    rewards = result.rewards
    assert len(rewards) == 30
    first, last = sum(rewards[:10]) / 10, sum(rewards[-10:]) / 10
    assert last > first + 0.03, rewards
    rows = [r for r in metrics_of(tmp_path / "rl") if "reward" in r]
    assert {"correct", "valid", "format", "loss", "length"} <= set(rows[-1])
    # the share of groups without an advantage: some early on (a micro policy misses often), never all of them
    assert all(0 <= r["zero_std"] <= 1 for r in rows) and min(r["zero_std"] for r in rows) < 1
    assert (tmp_path / "rl" / "curve.png").stat().st_size > 0
    saved = json.loads((result.model_dir / "dca_training.json").read_text())
    assert saved["kind"] == "grpo" and saved["rewards"] == rewards
    from dca.abilities import ProposeRequest
    from dca.reasoning.policy import LMPolicy

    policy = LMPolicy(str(result.model_dir), threads=1, max_new_tokens=16)
    assert policy.format.refs  # the prompt format travels with the model
    assert policy.propose(ProposeRequest(task="Using 3, 5 make 8.", evidence=[], steps=[]))[0].lines


def test_same_seed_repeats_and_a_rerun_resumes(micro_models, tmp_path):
    quick = dict(steps=2, prompts_per_step=1, group=4, max_new_tokens=16, checkpoint_every=1)
    a = train_rl(_config(micro_models["policy"], tmp_path / "a", **quick), progress=False)
    b = train_rl(_config(micro_models["policy"], tmp_path / "b", **quick), progress=False)
    assert a.rewards == b.rewards
    assert (tmp_path / "a" / "trainer" / "checkpoint-2").is_dir()
    more = train_rl(_config(micro_models["policy"], tmp_path / "a", **{**quick, "steps": 3}, resume=True),
                    progress=False)
    steps = [r["step"] for r in metrics_of(tmp_path / "a") if "reward" in r]
    assert steps == [0, 1, 2]  # steps 0 and 1 kept from the first run, only step 2 trained again
    assert more.rewards[:2] == a.rewards
    weights = (more.model_dir / "model.safetensors").read_bytes()
    again = train_rl(_config(micro_models["policy"], tmp_path / "a", **{**quick, "steps": 3}, resume=True),
                     progress=False)  # finished: nothing is trained again
    assert again.rewards == more.rewards and again.model_dir == more.model_dir
    assert [r["step"] for r in metrics_of(tmp_path / "a") if "reward" in r] == [0, 1, 2]
    assert (again.model_dir / "model.safetensors").read_bytes() == weights


def test_judge_rewards_correct_valid_format_and_progress(micro_models):
    from dca.reasoning.prompt import PromptFormat
    from dca.reasoning.tasks import get_family

    problem = next(get_family("countdown", min_numbers=2, max_numbers=2).problems("train", n=1))
    judge = TraceJudge([problem], PromptFormat())
    gold = "\n".join(problem.gold) + "\n"
    right = judge.judge(problem.id, gold)
    assert right.correct and right.valid == 1.0 and right.formatted
    a, b = problem.meta["numbers"]
    wrong = judge.judge(problem.id, f"answer = {a} + {b} + {a}\n")  # a number used twice
    assert not wrong.correct
    broken = judge.judge(problem.id, "x1 = (\nanswer = x1\n")
    assert broken.valid == 0.0 and not broken.formatted and not broken.correct
    half = judge.judge(problem.id, f"x1 = {a} * 1\nanswer = x9\n")
    assert half.valid == 0.5 and half.formatted and not half.correct
    correct, valid, fmt, progress = judge.reward_functions()
    assert correct([gold, "junk"], pid=[problem.id] * 2) == [1.0, 0.0]
    assert fmt([gold], pid=[problem.id]) == [1.0] and valid(["junk"], pid=[problem.id]) == [0.0]
    assert progress([gold, "junk", f"answer = {a} + {b} + {a}\n"], pid=[problem.id] * 3) == [1.0, 0.0, 0.0]


def test_progress_reward_tells_apart_wrong_traces_that_fail_at_different_steps():
    from dca.reasoning.prompt import PromptFormat
    from dca.reasoning.tasks.base import Problem

    problem = Problem(id="p", question="Make 24 out of 4, 6, 2, 9.", answer=24, family="countdown",
                      meta={"numbers": [4, 6, 2, 9], "target": 24})
    judge = TraceJudge([problem], PromptFormat(refs=False))
    late = "x1 = 9 - 6\nx2 = x1 * 2\nanswer = x2 + 4\n"
    early = "x1 = 9 + 4\nanswer = x1 * 2\n"
    progress = judge.reward_functions()[-1]
    assert progress([late, early], pid=["p", "p"]) == [2 / 3, 0.0]
    assert not judge.judge("p", late).correct and not judge.judge("p", early).correct


TWO = [DataSource("countdown", "train", n=64, options={"min_numbers": 2, "max_numbers": 2})]


def test_stepwise_rollout_trains_only_the_tokens_the_policy_wrote(micro_models):
    """The interpreter writes each step's value into the completion; those tokens (and the line
    breaks) are masked out of the loss, the policy's own lines are not, and the ids are exactly the
    tokens the policy read while sampling."""
    from types import SimpleNamespace

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from dca.reasoning.prompt import load_format, prompt_numbers
    from dca.reasoning.rl import stepwise_rollout
    from dca.reasoning.prompt import comment_refs
    from dca.reasoning.sft import encode_prompt, source_problems
    from dca.reasoning.tasks.countdown import TraceState

    path = micro_models["policy"]
    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModelForCausalLM.from_pretrained(path)
    fmt = load_format(path)
    problems = source_problems(DataSource("countdown", "train", n=8, options={"min_numbers": 3, "max_numbers": 3}))
    judge = TraceJudge(problems, fmt)
    rollout = stepwise_rollout(judge, tokenizer, fmt, {"needs": True, "left": False},
                               RLConfig(rollout="stepwise", temperature=1.0, max_new_tokens=128))
    prompts = [judge.prompt(p) for p in problems for _ in range(4)]
    out = rollout(prompts, SimpleNamespace(model=model, state=SimpleNamespace(global_step=0)))
    assert len(out["completion_ids"]) == len(out["env_mask"]) == len(out["prompt_ids"]) == len(prompts)
    commented = 0
    for problem, prompt, pids, ids, mask in zip([p for p in problems for _ in range(4)], prompts, out["prompt_ids"],
                                                out["completion_ids"], out["env_mask"]):
        text = tokenizer.decode(ids)
        assert pids + ids == encode_prompt(prompt + text, tokenizer)
        assert len(mask) == len(ids) and mask[-1] == 0  # the closing line break is the interpreter's
        own = tokenizer.decode([t for t, k in zip(ids, mask) if k])
        assert "#" not in own and own.strip()
        state = TraceState(problem.meta["numbers"], problem.answer)
        numbers = prompt_numbers(problem.question, [], fmt)
        judged = judge.judge(problem.id, text)
        for literal, line in zip(judged.lines[:-1], text.splitlines()):  # steps that ran: values stated
            step, comment = line.split(" # ", 1)
            assert step in own and "# " + comment not in own
            expected = state.step(literal)
            assert "# " + comment == (comment_refs(expected, numbers) if fmt.refs else expected)
            commented += 1
    assert commented > 0


def test_step_rollout_samples_one_move_per_completion_from_a_shared_reachable_state(micro_models):
    """Each group shares one prompt: the problem and a prefix of a trace the policy sampled, cut where
    the target is still within reach; each completion is one move; the rewards read prefix + move."""
    from types import SimpleNamespace

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from dca.reasoning.prompt import load_format
    from dca.reasoning.rl import step_rollout
    from dca.reasoning.sft import encode_prompt, source_problems
    from dca.reasoning.tasks.countdown import progress, stepwise_prompt

    path = micro_models["policy"]
    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModelForCausalLM.from_pretrained(path)
    fmt = load_format(path)
    style = {"needs": True, "left": False}
    problems = source_problems(DataSource("countdown", "train", n=6, options={"min_numbers": 3, "max_numbers": 3}))
    judge = TraceJudge(problems, fmt)
    config = RLConfig(rollout="step", group=4, temperature=1.0, max_new_tokens=128)
    rollout = step_rollout(judge, tokenizer, fmt, style, config)
    prompts = [judge.prompt(p) for p in problems for _ in range(4)]
    for step in range(2):
        out = rollout(prompts, SimpleNamespace(model=model, state=SimpleNamespace(global_step=step)))
        assert len(out["completion_ids"]) == len(out["prefix"]) == len(out["prompt_ids"]) == len(prompts)
        for g, problem in enumerate(problems):
            rows = range(4 * g, 4 * g + 4)
            prefix = out["prefix"][4 * g]
            assert all(out["prefix"][r] == prefix and out["prompt_ids"][r] == out["prompt_ids"][4 * g] for r in rows)
            assert out["prompt_ids"][4 * g] == encode_prompt(stepwise_prompt(problem, prefix, fmt, style), tokenizer)
            assert progress(problem, prefix) == 1.0 or not prefix  # a state from which the target is reachable
            for r in rows:
                text = tokenizer.decode(out["completion_ids"][r])
                assert text.count("\n") == 1 and text.endswith("\n")  # one move
                judged = judge.judge(problem.id, text, prefix)
                assert judged.lines[:len(prefix)] == prefix and len(judged.lines) == len(prefix) + 1
        rewards = judge.reward_functions()[-1](
            [tokenizer.decode(ids) for ids in out["completion_ids"]], pid=[p.id for p in problems for _ in range(4)],
            prefix=out["prefix"])
        assert all(0.0 <= r <= 1.0 for r in rewards)


def test_open_prefix_cuts_only_where_the_target_is_still_within_reach():
    import random

    from dca.reasoning.rl import open_prefix
    from dca.reasoning.tasks.base import Problem

    p = Problem(id="p", question="", answer=24, family="countdown", meta={"numbers": [4, 6, 2, 9], "target": 24})
    rng = random.Random(0)
    right = ["x1 = 9 - 6", "x2 = x1 * 2", "answer = x2 * 4"]
    cuts = {len(open_prefix(p, right, rng)) for _ in range(200)}
    assert cuts == {0, 1, 2}  # never after the answer
    lost = ["x1 = 9 - 6", "x2 = x1 + 2", "answer = x2 * 4"]  # 5 with 4 left cannot make 24
    assert {len(open_prefix(p, lost, rng)) for _ in range(200)} == {0, 1}
    assert {len(open_prefix(p, ["x1 = 9 + 4", "answer = x1"], rng)) for _ in range(50)} == {0}
    assert open_prefix(p, [], rng) == [] and open_prefix(p, right, random.Random(3)) == \
        open_prefix(p, right, random.Random(3))


def test_stepwise_grpo_run_raises_the_mean_reward_and_reports_stepwise_greedy(micro_models, tmp_path):
    dev = [DataSource("countdown", "dev", options={"min_numbers": 2, "max_numbers": 2})]
    result = train_rl(_config(micro_models["policy"], tmp_path / "rl", data=TWO, dev=dev, eval_n=10,
                              rollout="stepwise"), progress=False)
    rewards = result.rewards
    first, last = sum(rewards[:10]) / 10, sum(rewards[-10:]) / 10
    assert last > first + 0.03, rewards
    assert set(result.before) == set(result.after) == {"countdown/dev", "countdown/dev stepwise"}
    rows = [r for r in metrics_of(tmp_path / "rl") if "reward" in r]
    assert rows[-1]["length"] > 0


@pytest.mark.parametrize("asked", [False, True])
def test_activation_checkpointing_and_bf16_are_off_unless_asked(micro_models, tmp_path, asked):
    # TRL turns checkpointing on by default; on a CPU-sized policy it only repeats the forward pass (7 % of
    # a step). bf16 is autocast only: the weights the run saves stay fp32.
    import torch
    from transformers import AutoModelForCausalLM

    kw = {"gradient_checkpointing": True, "bf16": True} if asked else {}
    result = train_rl(_config(micro_models["policy"], tmp_path / "rl", steps=1, checkpoint_every=1, rollout="step",
                              data=TWO, **kw), progress=False)
    saved = torch.load(next((tmp_path / "rl").rglob("training_args.bin")), weights_only=False)
    assert saved.gradient_checkpointing is asked and saved.bf16 is asked
    weights = AutoModelForCausalLM.from_pretrained(result.model_dir).parameters()
    assert {p.dtype for p in weights} == {torch.float32}


@pytest.mark.parametrize("text, error", [
    ("data: [countdown]\ngroup: 1\n", "'group' must be >= 2"),
    ("data: [countdown]\nlos_type: grpo\n", "unknown field 'los_type'"),
    ("data: [countdown]\nloss_type: ppo\n", "loss_type"),
    ("data: [countdown]\nrollout: tree\n", "field 'rollout' must be one of whole, stepwise"),
    ("data: [countdown, synthetic]\nrollout: stepwise\n",
     "'rollout': stepwise rollouts need countdown problems .* not synthetic"),
    ("data: [synthetic]\nreward_progress: 0.5\n", "'reward_progress': family synthetic cannot judge"),
    ("data: [countdown]\nrollout: step\nstate_temperature: hot\n", "'state_temperature' must be a number"),
    ("data: [countdown]\nstate_temperature: 0\n", "'state_temperature' applies only to rollout: step"),
    ("data: [countdown]\nstate_pool: 2\n", "'state_pool' applies only to rollout: step"),
    ("data: [countdown]\nrollout: step\nstate_pool: 0\n", "'state_pool' must be >= 1"),
    ("data: [countdown]\ngradient_checkpointing: maybe\n", "'gradient_checkpointing'"),
    ("data: [countdown]\nbf16: half\n", "'bf16'"),
])
def test_config_file_errors_name_the_field(tmp_path, text, error):
    bad = tmp_path / "rl.yaml"
    bad.write_text(text)
    with pytest.raises(ValueError, match=error):
        load_rl_config(bad)


def test_dev_sets_of_one_family_and_split_get_distinct_keys():
    three = DataSource("countdown", "dev", options={"max_numbers": 3})
    four = DataSource("countdown", "dev", options={"min_numbers": 4, "max_numbers": 4})
    taken = {source_key(three): 0.5}
    assert list(taken) == ["countdown/dev"]
    assert source_key(four, taken) == "countdown/dev[max_numbers=4,min_numbers=4]"
    assert source_key(DataSource("synthetic", "test"), taken) == "synthetic/test"


SHIPPED_RL = sorted(p.name for p in (Path(__file__).parents[2] / "configs").glob("train_rl*.yaml"))


def test_every_rl_recipe_is_shipped_and_checked():
    assert {"train_rl.yaml", "train_rl_countdown.yaml", "train_rl_countdown_stepwise.yaml",
            "train_rl_countdown_step.yaml", "train_rl_countdown3_step.yaml", "train_rl_countdown_small.yaml"} <= set(SHIPPED_RL)


@pytest.mark.parametrize("name", SHIPPED_RL)
def test_shipped_configs_parse(name):
    config = load_rl_config(Path(__file__).parents[2] / "configs" / name)
    assert config.data and config.group >= 2 and config.steps >= 1


def test_cli_entry_trains_from_a_yaml_file(micro_models, tmp_path, capsys):
    from dca.reasoning.rl import run_train_rl

    config = tmp_path / "rl.yaml"
    config.write_text(f"policy: {micro_models['policy']}\ndata: [{{family: countdown, n: 8}}]\nsteps: 1\n"
                      f"prompts_per_step: 1\ngroup: 2\nmax_new_tokens: 8\neval_n: 0\nthreads: 1\n"
                      f"out_dir: {tmp_path / 'run'}\n")
    assert run_train_rl(str(config)) == 0
    assert "saved" in capsys.readouterr().out
    assert (tmp_path / "run" / "model" / "config.json").exists()


def test_varied_groups_come_first_in_their_order():
    from dca.reasoning.rl import varied_groups_first

    rewards = [1, 1, 0, 0, 0, 1, 0.5, 0.5, 0, 1]  # groups of 2: alike, alike, varied, alike, varied
    assert varied_groups_first(rewards, 2, 3) == [2, 4, 0]
    assert varied_groups_first(rewards, 2, 5) == [2, 4, 0, 1, 3]
    assert varied_groups_first([0.2, 0.2 + 1e-12], 2, 1) == [0]  # float noise is not a difference


def test_step_rollout_with_a_state_pool_trains_on_the_groups_whose_moves_differ(micro_models):
    """state_pool 10: states for ten times the step's problems; the step's rows are as many groups as TRL
    asked for, each with its own problem id, prefix and prompt, the groups whose moves scored differently
    first. The micro policy's moves mostly score alike (~5 % of its groups differ), so without the pool a
    step rarely has a group to learn from."""
    from types import SimpleNamespace

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from dca.reasoning.prompt import load_format
    from dca.reasoning.rl import step_rollout
    from dca.reasoning.sft import encode_prompt, source_problems
    from dca.reasoning.tasks.countdown import stepwise_prompt

    path = micro_models["policy"]
    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModelForCausalLM.from_pretrained(path)
    fmt = load_format(path)
    style = {"needs": True, "left": False}
    problems = source_problems(DataSource("countdown", "train", n=40, options={"min_numbers": 3, "max_numbers": 3}))
    by_id = {p.id: p for p in problems}
    judge = TraceJudge(problems, fmt)
    fns = judge.reward_functions()
    group, heads = 4, problems[:2]
    prompts = [judge.prompt(p) for p in heads for _ in range(group)]

    def run(pool: int) -> tuple[int, int]:
        config = RLConfig(rollout="step", group=group, temperature=1.0, max_new_tokens=128, state_pool=pool,
                          reward_valid=0.0, reward_format=0.0, reward_progress=1.0)
        rollout = step_rollout(judge, tokenizer, fmt, style, config)
        drawn = varied = 0
        for step in range(6):
            out = rollout(prompts, SimpleNamespace(model=model, state=SimpleNamespace(global_step=step)))
            assert len(out["completion_ids"]) == len(out["pid"]) == len(out["prompt_ids"]) == len(prompts)
            texts = tokenizer.batch_decode(out["completion_ids"], skip_special_tokens=True)
            correct, progress = fns[0](texts, out["pid"], out["prefix"]), fns[3](texts, out["pid"], out["prefix"])
            kinds = []
            for g in range(len(heads)):
                rows = range(group * g, group * g + group)
                pid, prefix = out["pid"][group * g], out["prefix"][group * g]
                assert all(out["pid"][r] == pid and out["prefix"][r] == prefix for r in rows)
                assert out["prompt_ids"][group * g] == encode_prompt(stepwise_prompt(by_id[pid], prefix, fmt, style),
                                                                     tokenizer)
                kinds.append(len({correct[r] + progress[r] for r in rows}) > 1)
                drawn += pid not in {p.id for p in heads}
            assert kinds == sorted(kinds, reverse=True)  # varied groups first
            varied += sum(kinds)
        return drawn, varied

    alone = run(1)
    assert alone[0] == 0  # no pool: TRL's own problems
    drawn, varied = run(10)
    assert drawn > 0 and varied >= 3 and varied > alone[1]
