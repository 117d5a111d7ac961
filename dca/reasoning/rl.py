"""GRPO: reinforcement learning of the step policy against verifiable rewards.

A group of traces is sampled per problem; each is run by the step interpreter and judged by the
verifier and the task family's exact scorer. Four rewards, each weighted and logged on its own:

- ``correct``: the trace reaches the right answer (countdown: with each given number at most once);
- ``valid``: the share of its lines that pass the verifier's programmatic checks, in order;
- ``format``: every line parses in the step language, the last is ``answer = ...``, nothing follows;
- ``progress``: for families that can judge each step exactly (countdown: the target is still within
  reach after it), the share of the trace's first lines that keep the problem solvable. A step-level
  signal: two wrong traces differ when one of them went wrong later.

The loop is TRL's ``GRPOTrainer`` (group-normalised advantages, clipped ratio, optional KL to the
starting policy via ``beta``): a whole trace is one completion, and the interpreter runs inside the
reward functions, which receive each prompt's problem id as a dataset column. With
``rollout: stepwise`` (countdown) the interpreter is also in the generation loop: TRL's
``rollout_func`` samples each trace a line at a time, the interpreter writes every step's value into
it, and ``env_mask`` keeps those tokens out of the loss (``stepwise_rollout``). The same config
trains a real model on GPUs (TRL + accelerate); here it runs on CPU.

    dca train rl --config configs/train_rl.yaml       # or train_rl(RLConfig(...)) from Python
"""
from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from dca.reasoning.sft import DataSource, mix_problems, source_key

if TYPE_CHECKING:  # pragma: no cover
    from dca.reasoning.tasks.base import Problem

REWARDS = ("correct", "valid", "format", "progress")
ROLLOUTS = ("whole", "stepwise", "step")
INTERPRETED = ("stepwise", "step")  # rollouts with the interpreter in the generation loop (countdown)
STEPWISE = "stepwise"  # suffix of the dev keys measured with the interpreter in the loop
STEP_TOKENS = 48  # a stepwise line's token budget (LMPolicy's default), within max_new_tokens


@dataclass
class RLConfig:
    """One GRPO run from a trained (SFT) policy."""

    policy: str = "dca:tiny-policy"  # the starting point: a model name, path or dca:<recipe>
    data: list[DataSource] = field(default_factory=list)
    dev: list[DataSource] = field(default_factory=list)
    steps: int = 200  # optimizer steps
    prompts_per_step: int = 4  # problems per step; each gets a group of ``group`` traces
    group: int = 8  # traces sampled per problem (GRPO's group)
    iterations: int = 1  # optimisation passes over each batch of samples (>1 makes the clipped ratio bite)
    max_new_tokens: int = 128
    rollout: str = "whole"  # whole: the policy writes the trace; stepwise: the interpreter writes each value
    # (countdown); step: each sample is one move from a state the policy reached (see ``step_rollout``)
    temperature: float = 1.0
    state_temperature: float | None = None  # rollout: step: the temperature of the trace whose states the
    # groups start from (None: ``temperature``; 0: the greedy path, the states greedy decoding visits)
    state_pool: int = 1  # rollout: step: sample groups from state_pool x prompts_per_step states and train on
    # prompts_per_step of them, those whose moves scored differently first (DAPO's dynamic sampling: a group
    # whose moves all score alike carries no advantage, yet costs a forward and backward pass)
    top_k: int = 0
    lr: float = 5e-5
    warmup: int = 0
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    # recompute activations in the backward pass instead of keeping them (TRL's default is on): worth it
    # for a large model on a GPU; on the tiny CPU policies it only adds a second forward pass
    gradient_checkpointing: bool = False
    # mixed precision: forward, backward and the rollouts' sampling under bfloat16 autocast, the weights
    # and the optimizer in fp32 (needs a CPU with bf16 instructions, e.g. AVX512-BF16 or AMX, to pay)
    bf16: bool = False
    beta: float = 0.0  # KL penalty to the starting policy (0: no reference model is kept)
    epsilon: float = 0.2  # clipping of the probability ratio
    loss_type: str = "dapo"  # TRL's loss aggregation: grpo | dapo | dr_grpo | bnpo
    scale_rewards: str = "group"  # advantages divided by the group's reward std ("none": only centred)
    reward_correct: float = 1.0
    reward_valid: float = 0.2
    reward_format: float = 0.1
    reward_progress: float = 0.0  # needs a family with a ``progress(problem, lines)`` method (countdown)
    seed: int = 0
    threads: int | None = None
    out_dir: str = "runs/rl"
    save_to: str | None = None  # where the final model goes (default: <out_dir>/model)
    resume: bool = True
    log_every: int = 1
    checkpoint_every: int = 50
    eval_n: int = 100  # dev problems per source scored greedily before and after training (0: none)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def reward_weights(self) -> list[float]:
        """The weight of each reward, in ``REWARDS`` order (TRL's ``reward_weights``)."""
        return [getattr(self, f"reward_{name}") for name in REWARDS]

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "config") -> "RLConfig":
        """Build from a mapping (a YAML file's content), naming the file and field on any error."""
        from dca.reasoning.sft import checked_fields

        values = checked_fields(cls, data, where, "RL", optional={"threads": int, "save_to": str,
                                                                  "state_temperature": float})
        for name in ("steps", "prompts_per_step", "group", "iterations", "max_new_tokens"):
            if values.get(name, 1) < 1:
                raise ValueError(f"{where}: field {name!r} must be >= 1, got {values[name]!r}")
        if values.get("group", 2) < 2:
            raise ValueError(f"{where}: field 'group' must be >= 2 (advantages compare traces within a group)")
        if values.get("loss_type", "dapo") not in ("grpo", "dapo", "dr_grpo", "bnpo"):
            raise ValueError(f"{where}: field 'loss_type' must be one of grpo, dapo, dr_grpo, bnpo, "
                             f"got {values['loss_type']!r}")
        if values.get("rollout", "whole") not in ROLLOUTS:
            raise ValueError(f"{where}: field 'rollout' must be one of {', '.join(ROLLOUTS)}, got {values['rollout']!r}")
        if values.get("rollout") in INTERPRETED:
            other = sorted({s.family for s in values.get("data", []) + values.get("dev", []) if s.family != "countdown"})
            if other:
                raise ValueError(f"{where}: field 'rollout': {values['rollout']} rollouts need countdown problems (the "
                                 f"interpreter writes their values and moves), not {', '.join(other)}")
        if values.get("scale_rewards", "group") not in ("group", "batch", "none"):
            raise ValueError(f"{where}: field 'scale_rewards' must be group, batch or none, "
                             f"got {values['scale_rewards']!r}")
        for name, default in (("state_temperature", None), ("state_pool", 1)):
            if values.get(name, default) != default and values.get("rollout") != "step":
                raise ValueError(f"{where}: field {name!r} applies only to rollout: step")
        if values.get("state_pool", 1) < 1:
            raise ValueError(f"{where}: field 'state_pool' must be >= 1, got {values['state_pool']!r}")
        if values.get("reward_progress", 0.0):
            from dca.reasoning.tasks import get_family

            other = sorted({s.family for s in values.get("data", []) if not hasattr(get_family(s.family), "progress")})
            if other:
                raise ValueError(f"{where}: field 'reward_progress': family {', '.join(other)} cannot judge a step's "
                                 f"progress (no progress() method); set it to 0 or train on countdown")
        return cls(**values)


def load_rl_config(path: str | Path) -> RLConfig:
    from dca.reasoning.sft import read_yaml_mapping

    return RLConfig.from_dict(read_yaml_mapping(path), where=str(path))


# --------------------------------------------------------------------------- rewards


@dataclass
class Judged:
    """A sampled trace as the verifier and the task family see it."""

    lines: list[str]
    correct: bool
    valid: float  # share of lines that passed their checks before the first failure
    formatted: bool
    progress: float = 0.0  # share of the first lines that keep the problem solvable (families with ``progress``)


class TraceJudge:
    """Runs completions through the interpreter and the verifier's programmatic checks and scores
    them with their problem's family. One judgement per (problem, completion), shared by the three
    reward functions."""

    def __init__(self, problems: Sequence["Problem"], fmt: Any, verifier: Any = None):
        from dca.reasoning.prompt import problem_facts, prompt_numbers
        from dca.reasoning.search import TraceChecker
        from dca.reasoning.tasks import get_family

        self.problems = {p.id: p for p in problems}
        self.fmt = fmt
        self.facts = {p.id: problem_facts(p, fmt) for p in problems}
        self.numbers = {p.id: prompt_numbers(p.question, self.facts[p.id], fmt) for p in problems}
        self.families = {f: get_family(f) for f in {p.family for p in problems}}
        self.checker = TraceChecker(verifier)
        self._cache: dict[tuple[str, str], Judged] = {}

    def prompt(self, problem: "Problem") -> str:
        from dca.reasoning.prompt import render_prompt

        return render_prompt(problem.question, self.facts[problem.id], (), self.fmt)

    def judge(self, pid: str, text: str, prefix: Sequence[str] = ()) -> Judged:
        """The completion ``text`` judged as the continuation of ``prefix`` (lines already run, in the
        step language as it runs: literal numbers, no comments)."""
        key = (pid, text, tuple(prefix))
        if key not in self._cache:
            if len(self._cache) > 50_000:
                self._cache.clear()
            self._cache[key] = self._judge(pid, text, prefix)
        return self._cache[key]

    def _judge(self, pid: str, text: str, prefix: Sequence[str] = ()) -> Judged:
        from dca.reasoning.policy import trace_lines
        from dca.reasoning.prompt import from_refs
        from dca.reasoning.scorer import trace_correct

        problem = self.problems[pid]
        raw = trace_lines(text)
        lines = list(prefix) + ([from_refs(ln, self.numbers[pid]) for ln in raw] if self.fmt.refs else raw)
        ends = bool(lines) and lines[-1].partition("=")[0].strip() == "answer"
        formatted = ends and len(raw) == len([ln for ln in text.split("\n") if ln.strip()]) and \
            all(_parses(ln) for ln in lines)
        done, passed, answer = [], 0, None
        for line in lines:
            step, _ = self.checker.step(problem.question, self.facts[pid], done, line)
            if step.verdict is None or not step.verdict.ok:
                break
            passed += 1
            done.append(step)
            answer = step.value if step.target == "answer" else answer
        valid = passed / len(lines) if lines else 0.0
        finished = ends and passed == len(lines)
        family = self.families[problem.family]
        correct = finished and trace_correct(family, problem, lines, answer)
        progress = family.progress(problem, lines) if hasattr(family, "progress") else 0.0
        return Judged(lines, bool(correct), valid, formatted, progress)

    def reward_functions(self) -> list[Callable[..., list[float]]]:
        """``correct``, ``valid``, ``format`` and ``progress`` as TRL reward functions (named, so TRL logs each)."""

        # ``prefix`` (a column the step rollout adds): the lines each completion continues
        def judged(completions: list[str], pid: list[str], prefix: list | None) -> list[Judged]:
            return [self.judge(i, c, prefix[k] if prefix else ()) for k, (c, i) in enumerate(zip(completions, pid))]

        def correct(completions: list[str], pid: list[str], prefix: list | None = None, **_: Any) -> list[float]:
            return [float(j.correct) for j in judged(completions, pid, prefix)]

        def valid(completions: list[str], pid: list[str], prefix: list | None = None, **_: Any) -> list[float]:
            return [j.valid for j in judged(completions, pid, prefix)]

        def format(completions: list[str], pid: list[str], prefix: list | None = None,  # noqa: A001
                   **_: Any) -> list[float]:
            return [float(j.formatted) for j in judged(completions, pid, prefix)]

        def progress(completions: list[str], pid: list[str], prefix: list | None = None, **_: Any) -> list[float]:
            return [j.progress for j in judged(completions, pid, prefix)]

        return [correct, valid, format, progress]


def _parses(line: str) -> bool:
    from dca.reasoning.steps import StepError, parse_step

    try:
        parse_step(line)
    except StepError:
        return False
    return True


# --------------------------------------------------------------------------- the run


@dataclass
class RLResult:
    model_dir: Path
    steps: int
    rewards: list[float]  # mean total reward per logged step
    before: dict[str, float]  # greedy dev accuracy per source before training
    after: dict[str, float]
    seconds: float


def evaluate_greedy(model: Any, tokenizer: Any, config: RLConfig, fmt: Any, style: dict[str, bool]) -> dict[str, float]:
    """Greedy accuracy per dev source (``evaluate_policy``: interpreter + exact family scorer); with
    stepwise rollouts also greedy with the interpreter in the loop (``<source> stepwise``)."""
    from dca.reasoning.policy import evaluate_policy
    from dca.reasoning.sft import source_problems
    from dca.reasoning.tasks import get_family
    from dca.reasoning.tasks.countdown import stepwise_traces

    if not config.eval_n or not config.dev:
        return {}
    out: dict[str, float] = {}
    with _sampling(model, bf16=False):  # in fp32, as the saved model is scored later
        for s in config.dev:
            problems = source_problems(DataSource(s.family, s.split, n=config.eval_n, seed=s.seed, options=s.options))
            key = source_key(s, out)
            out[key] = round(evaluate_policy(model, tokenizer, problems, fmt)["accuracy"], 4)
            if config.rollout in INTERPRETED:
                family = get_family(s.family)
                traces = stepwise_traces(model, tokenizer, fmt, problems, style=style, temperature=0.0,
                                         max_new_tokens=min(STEP_TOKENS, config.max_new_tokens), stop_at_comment=True)
                out[f"{key} {STEPWISE}"] = round(sum(family.score(p, t.lines) for p, t in zip(problems, traces))
                                                 / max(1, len(problems)), 4)
    return out


def stepwise_rollout(judge: TraceJudge, tokenizer: Any, fmt: Any, style: dict[str, bool],
                     config: RLConfig) -> Callable[[list[str], Any], dict[str, list]]:
    """GRPO's rollout with the interpreter in the loop, as a TRL ``rollout_func``: each completion is
    sampled a line at a time (``countdown.stepwise_traces``) and the interpreter writes each step's
    value and moves as its comment. ``env_mask`` marks those tokens 0, so the loss trains only the
    tokens the policy wrote; the reward functions read the whole completion, comments included."""
    from dca.reasoning.sft import encode_prompt
    from dca.reasoning.tasks.countdown import stepwise_traces

    by_prompt = {judge.prompt(p): p for p in judge.problems.values()}
    per_line = min(STEP_TOKENS, config.max_new_tokens)

    def rollout(prompts: list[str], trainer: Any) -> dict[str, list]:
        model = trainer.model
        with _sampling(model, config.bf16):  # a fresh seed per optimizer step: a resumed run samples what an unbroken one does
            traces = stepwise_traces(model, tokenizer, fmt, [by_prompt[p] for p in prompts], style=style,
                                     temperature=config.temperature, seed=config.seed * 100_003 + trainer.state.global_step,
                                     max_new_tokens=per_line, top_k=config.top_k or None, stop_at_comment=True)
        completion_ids, env_mask = [], []
        for trace in traces:
            ids, mask = _parts_ids(trace.parts, tokenizer)
            completion_ids.append(ids[: config.max_new_tokens])
            env_mask.append(mask[: config.max_new_tokens])
        return {"prompt_ids": [encode_prompt(p, tokenizer) for p in prompts], "completion_ids": completion_ids,
                # the sampling log-probabilities matter only to TRL's vLLM corrections: none to give
                "logprobs": [[None] * len(ids) for ids in completion_ids], "env_mask": env_mask}

    return rollout


def step_rollout(judge: TraceJudge, tokenizer: Any, fmt: Any, style: dict[str, bool],
                 config: RLConfig) -> Callable[[list[str], Any], dict[str, list]]:
    """GRPO over single moves, as a TRL ``rollout_func`` (``rollout: step``, countdown). For each problem
    the current policy first samples one trace with the interpreter in the loop; the trace is cut after
    a number of lines drawn uniformly among the cuts that still leave the target within reach
    (``countdown.reachable_lines``). The problem's group then shares that state: each sample is one next
    line from it, and the rewards read the prefix and the line (the extra ``prefix`` column). With
    ``reward_progress`` a move is rewarded for keeping the target reachable, so the advantage lands
    on the move that made the difference; whole-trace rollouts give every line of a trace the same
    advantage, and most of a 4-number trace's lines are right in wrong traces too.

    With ``state_pool`` > 1 the step's problems are joined by (state_pool - 1) times as many others drawn
    from the training problems, each gets its state and group, and the step trains on as many groups as
    TRL asked for: those whose moves scored differently first, TRL's own problems before the drawn ones.
    The rows carry their problem's id (the ``pid`` column), so the rewards are those of the kept problems."""
    import random

    from dca.reasoning.sft import encode_prompt
    from dca.reasoning.tasks.countdown import stepwise_prompt, stepwise_traces

    by_prompt = {judge.prompt(p): p for p in judge.problems.values()}
    pool = sorted(judge.problems)
    per_line = min(STEP_TOKENS, config.max_new_tokens)
    group = config.group

    def rollout(prompts: list[str], trainer: Any) -> dict[str, list]:
        heads = prompts[::group]
        if [p for p in heads for _ in range(group)] != list(prompts):
            raise RuntimeError("step rollout: expected each prompt repeated group times in a row (TRL's sampler)")
        problems = [by_prompt[p] for p in heads]
        model = trainer.model
        seed = config.seed * 100_003 + trainer.state.global_step
        rng = random.Random(seed)
        if config.state_pool > 1:
            problems += [judge.problems[i] for i in rng.sample(pool, min(len(pool), len(heads) * (config.state_pool - 1)))]
        with _sampling(model, config.bf16):
            paths = stepwise_traces(model, tokenizer, fmt, problems, style=style, seed=seed,
                                    temperature=config.temperature if config.state_temperature is None
                                    else config.state_temperature,
                                    max_new_tokens=per_line, top_k=config.top_k or None, stop_at_comment=True)
            prefixes = [open_prefix(problem, path.lines, rng) for problem, path in zip(problems, paths)]
            each = [p for p in problems for _ in range(group)]
            starts = [q for q in prefixes for _ in range(group)]
            moves = stepwise_traces(model, tokenizer, fmt, each, style=style, temperature=config.temperature,
                                    seed=seed + 50_021, max_steps=1, max_new_tokens=per_line,
                                    top_k=config.top_k or None, prefixes=starts, stop_at_comment=True)
        prompt_ids = [encode_prompt(stepwise_prompt(p, q, fmt, style) or "", tokenizer) for p, q in zip(problems, prefixes)]
        completion_ids, env_mask = [], []
        for move, start in zip(moves, starts):
            if not move.parts:  # its state could not be run again: TRL cannot score an empty completion
                raise RuntimeError(f"step rollout: the prefix {start} did not run again")
            ids, mask = _parts_ids(move.parts, tokenizer)
            completion_ids.append(ids[: config.max_new_tokens])
            env_mask.append(mask[: config.max_new_tokens])
        keep = list(range(len(problems)))
        if len(problems) > len(heads):
            texts = tokenizer.batch_decode(completion_ids, skip_special_tokens=True)
            pids = [p.id for p in each]
            scores = [fn(texts, pids, starts) for fn in judge.reward_functions()]
            weights = config.reward_weights
            keep = varied_groups_first([sum(w * s[r] for w, s in zip(weights, scores)) for r in range(len(texts))],
                                       group, len(heads))
        rows = [g * group + k for g in keep for k in range(group)]
        return {"prompt_ids": [prompt_ids[g] for g in keep for _ in range(group)],
                "completion_ids": [completion_ids[r] for r in rows],
                "logprobs": [[None] * len(completion_ids[r]) for r in rows], "env_mask": [env_mask[r] for r in rows],
                "prefix": [list(starts[r]) for r in rows], "pid": [each[r].id for r in rows]}

    return rollout


def varied_groups_first(rewards: Sequence[float], group: int, n: int) -> list[int]:
    """The indices of ``n`` groups (``rewards`` holds ``group`` in a row each): the groups whose rewards
    differ first, then the rest, each part in its given order."""
    count = len(rewards) // group
    alike = [len({round(x, 9) for x in rewards[g * group:(g + 1) * group]}) == 1 for g in range(count)]
    return sorted(range(count), key=lambda g: (alike[g], g))[:n]


@contextmanager
def _sampling(model: Any, bf16: bool) -> Iterator[None]:
    """Sampling from the policy mid-run: eval mode (train mode restored after), under bfloat16
    autocast when ``bf16`` (a rollout of a run that trains in it, so the samples come from the model
    the loss sees)."""
    import torch

    was_training = model.training
    model.eval()
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            yield
    finally:
        model.train(was_training)


def open_prefix(problem: "Problem", lines: Sequence[str], rng: Any) -> list[str]:
    """The first k lines of a sampled countdown trace, k drawn uniformly among the cuts after which the
    target is still within reach and the trace not yet answered (k = 0: the question alone)."""
    from dca.reasoning.tasks.countdown import reachable_lines

    good = reachable_lines(problem, lines)
    return list(lines[:rng.randint(0, max(0, min(good, len(lines) - 1)))])


def _parts_ids(parts: Sequence[tuple[str, bool]], tokenizer: Any) -> tuple[list[int], list[int]]:
    """A completion's token ids and its ``env_mask`` (1: written by the policy, 0: by the interpreter)."""
    ids: list[int] = []
    mask: list[int] = []
    for text, own in parts:
        piece = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids += piece
        mask += [int(own)] * len(piece)
    return ids, mask


def train_rl(config: RLConfig, *, progress: bool = True) -> RLResult:
    """Run GRPO per ``config``; returns where the trained policy was saved and the reward curve.

    ``out_dir`` receives ``trainer/`` checkpoints (a rerun resumes from the last), ``metrics.jsonl``
    (rewards, loss, KL, lengths per step), ``curve.png`` and, unless ``save_to`` says otherwise,
    ``model/`` (``save_pretrained`` + tokenizer + prompt format + ``dca_training.json``).
    """
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback, TrainerCallback
    from transformers.trainer_utils import get_last_checkpoint
    from trl import GRPOConfig, GRPOTrainer

    from dca.models.registry import resolve_model
    from dca.models.training import RunLog, set_seed, set_threads
    from dca.reasoning.prompt import load_format
    from dca.reasoning.sft import _save

    t0 = time.perf_counter()
    set_threads(config.threads)
    set_seed(config.seed)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    work = out / "trainer"
    if not config.resume:
        shutil.rmtree(work, ignore_errors=True)
        (out / "metrics.jsonl").unlink(missing_ok=True)

    resume_from = get_last_checkpoint(str(work)) if config.resume and work.exists() else None
    start = int(resume_from.rsplit("-", 1)[-1]) if resume_from else 0
    final = Path(config.save_to) if config.save_to else out / "model"
    if start >= config.steps and (final / "dca_training.json").exists():
        # a finished run, told before any model or data is loaded: resuming TRL from its last
        # checkpoint would train one step more
        done = json.loads((final / "dca_training.json").read_text())
        return RLResult(model_dir=final, steps=config.steps, rewards=done.get("rewards", []),
                        before=done.get("before", {}), after=done.get("after", {}), seconds=done.get("seconds", 0.0))

    path = resolve_model(config.policy)
    local = Path(path).is_dir()
    fmt = load_format(path if local else None)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # fp32 weights: the optimizer's small updates vanish in bf16 (dca loads bf16 for inference only)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, use_safetensors=True,
                                                 local_files_only=local)

    problems = mix_problems(config.data)
    if not problems:
        raise ValueError(f"RL: the data mix gave no problems (sources: {', '.join(s.family for s in config.data)})")
    judge = TraceJudge(problems, fmt)
    dataset = Dataset.from_dict({"prompt": [judge.prompt(p) for p in problems], "pid": [p.id for p in problems]})

    from dca.reasoning.tasks.countdown import trace_style

    style = trace_style(path) if local else {}
    before = evaluate_greedy(model, tokenizer, config, fmt, style) if start == 0 else {}
    log = RunLog(out, config.steps, start=start, progress=progress, title=f"grpo ({Path(path).name})")
    if start == 0:
        log.log(-1, problems=len(problems), **{f"dev_{k}": v for k, v in before.items()})
    else:  # a resumed run reports the accuracy measured before its first step
        first = next((r for r in log.records if r.get("step") == -1), {})
        before = {k.removeprefix("dev_"): v for k, v in first.items() if k.startswith("dev_")}

    class _Log(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kw: Any) -> None:
            logs = logs or {}
            if "reward" not in logs:
                return
            row = {"reward": logs["reward"], "reward_std": logs.get("reward_std"), "loss": logs.get("loss"),
                   "kl": logs.get("kl"), "length": logs.get("completions/mean_length"),
                   "clip": logs.get("clip_ratio/region_mean"), "lr": logs.get("learning_rate"),
                   # the share of groups whose samples all scored alike: they carry no advantage
                   "zero_std": logs.get("frac_reward_zero_std")}
            row.update({k: logs.get(f"rewards/{k}/mean") for k in REWARDS})
            log.log(max(0, state.global_step - 1),
                    **{k: round(float(v), 5) for k, v in row.items() if v is not None})

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            log.advance(state.global_step - 1)

    per_step = config.prompts_per_step * config.group
    with _quiet_renames():
        args = GRPOConfig(
            output_dir=str(work), max_steps=config.steps, per_device_train_batch_size=per_step,
            gradient_accumulation_steps=1, num_generations=config.group, num_iterations=config.iterations,
            max_completion_length=config.max_new_tokens, temperature=config.temperature, top_k=config.top_k,
            learning_rate=config.lr, warmup_steps=config.warmup, weight_decay=config.weight_decay,
            lr_scheduler_type="constant_with_warmup", max_grad_norm=config.grad_clip, beta=config.beta,
            epsilon=config.epsilon, loss_type=config.loss_type, scale_rewards=config.scale_rewards,
            reward_weights=config.reward_weights, seed=config.seed, data_seed=config.seed,
            logging_steps=config.log_every, save_strategy="steps", save_steps=config.checkpoint_every,
            save_total_limit=1, report_to="none", disable_tqdm=True, use_cpu=True, bf16=config.bf16,
            dataloader_num_workers=0, shuffle_dataset=True, gradient_checkpointing=config.gradient_checkpointing)
        rollout = None
        if config.rollout in INTERPRETED:
            os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # rollout_func is marked experimental in TRL
            make = stepwise_rollout if config.rollout == "stepwise" else step_rollout
            rollout = make(judge, tokenizer, fmt, style, config)
        trainer = GRPOTrainer(model=model, reward_funcs=judge.reward_functions(), args=args, train_dataset=dataset,
                              processing_class=tokenizer, callbacks=[_Log()], rollout_func=rollout)
    trainer.remove_callback(PrinterCallback)  # the run log's progress bar shows the metrics instead
    try:
        with _quiet_renames():
            trainer.train(resume_from_checkpoint=resume_from)
    finally:
        log.close()
    log.plot(keys=("reward", *REWARDS), ylabel="mean reward per trace")

    model = trainer.model
    model.eval()
    after = evaluate_greedy(model, tokenizer, config, fmt, style)
    if after:
        log.log(config.steps, **{f"dev_{k}": v for k, v in after.items()})
    seconds = time.perf_counter() - t0
    rewards = [r["reward"] for r in log.records if "reward" in r]
    summary = {"config": config.to_dict(), "kind": "grpo", "start": str(path), "problems": len(problems),
               "before": before, "after": after, "rewards": rewards, "seconds": round(seconds, 1)}
    model_dir = _save(model, tokenizer, out, summary, fmt)
    if config.save_to:
        final = Path(config.save_to)
        shutil.rmtree(final, ignore_errors=True)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(model_dir, final)
        model_dir = final
    return RLResult(model_dir=model_dir, steps=config.steps, rewards=rewards, before=before, after=after,
                    seconds=seconds)


def run_train_rl(config_path: str, resume: bool = True) -> int:
    """CLI entry (``dca train rl --config FILE [--fresh]``): train, print where the model went and the gain."""
    config = load_rl_config(config_path)
    config.resume = resume
    result = train_rl(config)
    first = sum(result.rewards[:5]) / max(1, len(result.rewards[:5]))
    last = sum(result.rewards[-5:]) / max(1, len(result.rewards[-5:]))
    print(f"saved {result.model_dir} ({result.steps} steps, {result.seconds / 60:.1f} min, "
          f"mean reward {first:.3f} -> {last:.3f})")
    for source, after in result.after.items():
        print(f"  dev {source}: {result.before.get(source, float('nan')):.1%} -> {after:.1%} (greedy)")
    return 0


@contextmanager
def _quiet_renames() -> Iterator[None]:
    """TRL calls transformers' ``gradient_checkpointing*`` names, which transformers 5 renamed; each
    call warns (twice per step), burying the progress bar."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*gradient_checkpointing.* is deprecated", category=FutureWarning)
        yield


def metrics_of(out_dir: str | Path) -> list[dict[str, Any]]:
    """The records of a run's ``metrics.jsonl`` (for benchmarks and tests)."""
    path = Path(out_dir) / "metrics.jsonl"
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()] if path.exists() else []
