"""Reasoning benchmark: does RL help, does search turn compute into accuracy, and how far does it go.

    .venv/bin/python bench/reasoning.py            # quick: small problem sets, short GRPO run (~15-25 min)
    .venv/bin/python bench/reasoning.py --full     # the issue's sizes (hours on 2 shared cores)

Sections (``--sections`` picks some):
- rl: held-out greedy accuracy of the SFT policy vs SFT+GRPO, synthetic (held-out templates) and countdown;
- rl_recipe (asked for by name): the same for a GRPO recipe (``--rl-recipe``, default
  configs/train_rl_countdown.yaml: countdown with 4 numbers from ``dca:countdown-reasoner``);
- rl_ei (asked for by name): expert iteration from the step recipe's policy on its training problems
  (sample 8 traces each, fine-tune on the right ones), the simpler RL baseline GRPO is compared with;
- scaling: accuracy against policy samples (1..64) per search strategy, on the same problems;
- search4: the same on countdown with 4 numbers, for ``dca:countdown-reasoner`` sampling with the
  interpreter in the loop and ``dca:countdown-scorer``, trained on its rollouts
  (configs/train_scorer_countdown.yaml);
- countdown4: countdown with 4 numbers solved within 64 samples (exact check) and by majority vote, for
  whole traces from the policy alone and for stepwise sampling with the interpreter's values in the context;
- gsm8k: GSM8K dev (a fixed part of train.jsonl held out of training), greedy and best strategy;
- throughput: HF vs plain-torch training and generation speed (``bench/lm_throughput.py``).

The start policy is ``dca:tiny-reasoner`` (``--policy``); GRPO settings come from ``--rl-*`` flags and
each setting trains in its own resumable directory. ``--search-policy`` picks the policy the search
sections use (default: the GRPO result). Sections not run keep their last results in the JSON.
Baselines are measured in the same run (the SFT policy before GRPO; majority vote at equal samples).
Writes bench/out/reasoning.json, reasoning.txt, reasoning_rl.png, reasoning_rl_gain.png,
reasoning_scaling.png and reasoning_search4.png.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))

SIZES = {
    "quick": dict(quick=True, eval_n=40, rl_steps=40, scaling_n=16, budgets=[1, 4, 16], countdown_n=20, gsm8k_n=40,
                  scorer_problems=40, gsm8k_samples=8, search4_n=20),
    "full": dict(quick=False, eval_n=200, rl_steps=300, scaling_n=60, budgets=[1, 2, 4, 8, 16, 32, 64], countdown_n=100,
                 gsm8k_n=200, scorer_problems=400, gsm8k_samples=16, search4_n=100),
}
STRATEGIES = ["self_consistency", "best_of_n", "beam", "mcts", "rstar"]
CURVES = {"scaling": "synthetic + countdown-3", "search4": "countdown-4, stepwise policy"}  # sections with curves
ANCHORS = {"GPT-3 6B fine-tuned (Cobbe et al. 2021)": 0.217, "GPT-3 6B fine-tuned + verifier": 0.39}


def problems(family: str, split: str, n: int, **options):
    from dca.reasoning.tasks import get_family

    return list(get_family(family, **options).problems(split, n=n))


def rl_section(policy: str, size: dict, work: Path, threads: int, rl: dict) -> dict:
    """GRPO from the SFT policy; greedy accuracy before and after on held-out sets (``rl``: settings)."""
    from dca.reasoning.rl import RLConfig, train_rl
    from dca.reasoning.sft import DataSource

    tag = "-".join(f"{k}{v:g}" if isinstance(v, float) else f"{k}{v}" for k, v in sorted(rl.items()))
    config = RLConfig(
        policy=policy,
        data=[DataSource("synthetic", "train", n=2000, options={"min_steps": 1, "max_steps": 4}),
              DataSource("countdown", "train", n=2000)],
        dev=[DataSource("synthetic", "test", options={"min_steps": 1, "max_steps": 4}),
             DataSource("synthetic", "dev", options={"min_steps": 1, "max_steps": 4}),  # training wordings
             DataSource("countdown", "dev", options={"max_numbers": 3}),
             DataSource("countdown", "dev", options={"min_numbers": 4, "max_numbers": 4})],
        steps=size["rl_steps"], prompts_per_step=rl["prompts"], group=8, max_new_tokens=96,
        temperature=rl["temperature"],
        lr=rl["lr"], beta=rl["beta"], reward_correct=1.0, reward_valid=rl["reward_valid"],
        reward_format=rl["reward_format"], scale_rewards=rl["scale"], eval_n=size["eval_n"], threads=threads,
        out_dir=str(work / f"rl-{_slug(policy)}-{tag}"), resume=True, checkpoint_every=20)
    return _rl_report(train_rl(config), rl)


def rl_recipe_section(recipe: str, work: Path, threads: int) -> dict:
    """GRPO exactly as a YAML recipe says (``configs/train_rl_countdown.yaml``: countdown with 4
    numbers from ``dca:countdown-reasoner``), its run kept (resumable) under the bench's work folder."""
    from dca.reasoning.rl import load_rl_config, train_rl

    config = load_rl_config(ROOT / recipe)  # an absolute path stays itself
    config.out_dir = str(work / f"recipe-{Path(recipe).stem}")
    config.threads, config.resume = threads, True
    out = _rl_report(train_rl(config), {"recipe": recipe, "policy": config.policy, "lr": config.lr,
                                         "temperature": config.temperature, "beta": config.beta,
                                         "group": config.group, "prompts": config.prompts_per_step,
                                         "rollout": config.rollout, "steps": config.steps,
                                         "reward_progress": config.reward_progress})
    out["eval_n"] = config.eval_n
    return out


def rl_ei_section(work: Path, threads: int, eval_n: int, recipe: str = "configs/train_rl_countdown_step.yaml",
                  samples: int = 8, temperature: float = 1.0, steps: int = 300, lr: float = 1e-3) -> dict:
    """Expert iteration, the simplest RL with a verifiable reward and the baseline GRPO has to beat:
    from the recipe's start policy, sample ``samples`` traces per training problem of the recipe (the
    interpreter in the loop), keep one right trace per solved problem, fine-tune on them with dca's SFT,
    and measure greedy accuracy on the recipe's dev problems before and after, as GRPO is measured."""
    import dataclasses

    import torch
    from rich.progress import track
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from dca.models.registry import resolve_model
    from dca.reasoning.prompt import load_format, policy_example
    from dca.reasoning.rl import evaluate_greedy, load_rl_config
    from dca.reasoning.sft import SFTConfig, mix_problems, train_sft
    from dca.reasoning.tasks import get_family
    from dca.reasoning.tasks.countdown import stepwise_traces, trace_style, with_values

    config = load_rl_config(ROOT / recipe)
    config.eval_n = eval_n
    start = resolve_model(config.policy)
    fmt, style = load_format(start), trace_style(start)
    tokenizer = AutoTokenizer.from_pretrained(start, local_files_only=True)
    out = work / f"ei-{Path(recipe).stem}-k{samples}"
    kept_path = out / "kept.json"
    t0 = time.perf_counter()
    if kept_path.exists():  # resumable: the sampling is the long part
        kept = json.loads(kept_path.read_text())
    else:
        model = AutoModelForCausalLM.from_pretrained(start, dtype=torch.float32, local_files_only=True).eval()
        kept = {"pairs": [], "problems": 0, "solved": 0}
        problems = mix_problems(config.data)
        family = get_family(problems[0].family)
        for i in track(range(0, len(problems), 32), description=f"sampling {samples} traces per problem"):
            chunk = problems[i:i + 32]
            with torch.no_grad():
                traces = stepwise_traces(model, tokenizer, fmt, [p for p in chunk for _ in range(samples)], style=style,
                                         temperature=temperature, seed=i, max_new_tokens=48)
            for j, p in enumerate(chunk):
                right = next((t.lines for t in traces[j * samples:(j + 1) * samples] if family.score(p, t.lines)), None)
                if right is None:
                    continue
                kept["solved"] += 1
                gold = with_values(right, p.meta["numbers"], p.answer if style.get("needs") else None,
                                   bool(style.get("left")))
                pair = policy_example(dataclasses.replace(p, gold=gold), fmt)
                if pair is not None:
                    kept["pairs"].append(list(pair))
        kept["problems"] = len(problems)
        kept["sample_seconds"] = round(time.perf_counter() - t0, 1)
        out.mkdir(parents=True, exist_ok=True)
        kept_path.write_text(json.dumps(kept))
    sft = SFTConfig(init=start, comments=fmt.comments, steps=steps, batch_tokens=4096, lr=lr, min_lr=lr / 10,
                    warmup=10, max_len=256, eval_every=0, checkpoint_every=100, log_every=50, eval_n=0,
                    threads=threads, out_dir=str(out), seed=0)
    result = train_sft(sft, examples=[tuple(p) for p in kept["pairs"]], dev_examples=[])
    measured = {}
    for name, where in (("before", start), ("after", result.model_dir)):
        model = AutoModelForCausalLM.from_pretrained(where, dtype=torch.float32, local_files_only=True).eval()
        measured[name] = evaluate_greedy(model, tokenizer, config, fmt, style)
    before, after = measured["before"], measured["after"]
    return {"model": str(result.model_dir), "before": before, "after": after, "eval_n": eval_n,
            "gain_points": {k: round(100 * (after[k] - before[k]), 1) for k in after},
            "settings": {"recipe": recipe, "policy": config.policy, "samples": samples, "temperature": temperature,
                         "steps": steps, "lr": lr},
            "problems": kept["problems"], "solved": kept["solved"], "pairs": len(kept["pairs"]),
            "sample_minutes": round(kept.get("sample_seconds", 0) / 60, 1),
            "train_minutes": round(result.seconds / 60, 1)}


def _rl_report(result, settings: dict) -> dict:
    """A GRPO run's greedy dev accuracy before and after, per dev set, with its reward curve."""
    before = {k: result.before.get(k, 0.0) for k in result.after}
    after = result.after
    return {"model": str(result.model_dir), "settings": settings, "before": before, "after": after,
            "gain_points": {k: round(100 * (after[k] - before[k]), 1) for k in after},
            "rewards": result.rewards, "minutes": round(result.seconds / 60, 1), "steps": result.steps}


def _slug(policy: str) -> str:
    """A directory name for a policy: its run directory's name for a path, the name for ``dca:<name>``."""
    return Path(policy).parent.name if "/" in policy else policy.replace(":", "-")


def train_bench_scorer(policy: str, size: dict, work: Path, threads: int) -> str:
    """A step scorer on the policy's own rollouts: a classification head on the policy's backbone
    (MiniLM in the full run), so the quick run stays within minutes."""
    from dca.reasoning.scorer import ScorerConfig, train_scorer
    from dca.reasoning.sft import DataSource

    n = size["scorer_problems"] // 2
    config = ScorerConfig(policy=policy, base=policy if size["quick"] else "minilm",
                          data=[DataSource("synthetic", "train", n=n, seed=7, options={"min_steps": 1, "max_steps": 4}),
                                DataSource("countdown", "train", n=n, seed=7, options={"max_numbers": 3})],
                          samples=8, rollouts=4, epochs=3 if size["quick"] else 1, batch_size=32,
                          lr=1e-3 if size["quick"] else 5e-5, max_length=192, threads=threads,
                          out_dir=str(work / f"scorer-{_slug(policy)}-{size['rl_steps']}"), resume=True,
                          eval_every=0, checkpoint_every=1000)
    return str(train_scorer(config).model_dir)


def solve_rate(strategy, items, spent: dict | None = None) -> float:
    """Share of problems whose proposed trace, run by the interpreter, the family scores right;
    ``spent`` (if given) gets the mean policy samples and generated tokens per problem."""
    from dca.abilities import ProposeRequest
    from dca.reasoning.prompt import problem_facts
    from dca.reasoning.scorer import trace_correct
    from dca.reasoning.steps import Interpreter, StepError
    from dca.reasoning.tasks import get_family

    right = samples = tokens = 0
    fams = {}
    for i, p in enumerate(items):
        fam = fams.setdefault(p.family, get_family(p.family))
        proposal = strategy.propose(ProposeRequest(task=p.question, evidence=problem_facts(p), steps=[], seed=i,
                                                   max_steps=12))[0]
        samples += proposal.compute.policy_samples
        tokens += proposal.compute.tokens
        try:
            answer = Interpreter().run_trace(proposal.lines).get("answer")
        except StepError:
            continue
        right += bool(answer is not None and trace_correct(fam, p, proposal.lines, answer))
    if spent is not None:
        spent.update(samples=round(samples / max(1, len(items)), 1), tokens=round(tokens / max(1, len(items)), 1))
    return right / max(1, len(items))


def scaling_section(policy: str, scorer: str, size: dict) -> dict:
    from dca.reasoning.policy import LMPolicy

    n = size["scaling_n"] // 2
    items = problems("synthetic", "test", n, min_steps=1, max_steps=4) + problems("countdown", "dev", n, max_numbers=3)
    return strategy_curves(LMPolicy(policy, max_trace_tokens=96), items, scorer, size["budgets"])


def strategy_curves(lm, items, scorer: str, budgets: list[int], strategies: list[str] | None = None) -> dict:
    """Greedy, then each strategy (default: all) at every sample budget, on the same problems."""
    from rich.progress import track

    from dca.reasoning.search import make_strategy

    greedy = solve_rate(make_strategy("greedy", lm, samples=1), items)
    out: dict = {"policy": lm.model_name, "scorer": scorer, "problems": len(items), "greedy": greedy}
    runs = [(s, b) for s in strategies or STRATEGIES for b in budgets]
    for name, budget in track(runs, description="search strategies"):
        strategy = make_strategy(name, lm, samples=budget, scorer=scorer if name in ("best_of_n", "beam", "mcts")
                                 else None, seed=0)
        t0 = time.perf_counter()
        spent: dict = {}
        accuracy = solve_rate(strategy, items, spent)
        out.setdefault(name, {})[str(budget)] = {"accuracy": accuracy, "seconds": round(time.perf_counter() - t0, 1),
                                                 **spent}
    return out


def merge_curves(old: dict, new: dict) -> dict:
    """``new`` with the strategies and budgets it did not run kept from ``old``, if both measured the
    same policy, scorer and problems."""
    if not old or any(old.get(k) != new.get(k) for k in ("policy", "scorer", "problems", "greedy")):
        return new
    return {**old, **new, **{s: {**old.get(s, {}), **new.get(s, {})} for s in STRATEGIES if s in old or s in new}}


def search4_section(policy: str, scorer: str, size: dict, strategies: list[str] | None = None) -> dict:
    """Countdown with 4 numbers: accuracy against samples per strategy; the policy samples with the
    interpreter in the loop (as it was trained) and the scorer reads the same comments."""
    from dca.reasoning.policy import LMPolicy
    from dca.reasoning.tasks import get_family

    items = list(get_family("countdown", min_numbers=4, max_numbers=4).problems("dev", n=size["search4_n"]))
    return strategy_curves(LMPolicy(policy, max_trace_tokens=192), items, scorer, size["budgets"], strategies)


def countdown4_section(policy: str, size: dict, modes: list[str], temperature: float = 1.0) -> dict:
    """Countdown with 4 numbers: any of 64 samples exactly right (the check is exact, so a verifier in
    the loop finds it), and majority vote over the same samples. Per sampling mode: ``whole`` traces
    written by the policy alone, or ``stepwise`` with the interpreter's value of each step written
    back into the context (``dca.reasoning.tasks.countdown.sample_with_values``)."""
    from dca.abilities import ProposeRequest
    from dca.reasoning.policy import LMPolicy
    from dca.reasoning.search import Budget, Sampler, TraceChecker, answer_key
    from dca.reasoning.tasks import get_family
    from dca.reasoning.tasks.countdown import sample_with_values

    fam = get_family("countdown", min_numbers=4, max_numbers=4)
    items = list(fam.problems("dev", n=size["countdown_n"]))
    # whole traces are the policy's alone (stepwise=False); stepwise mode samples through sample_with_values
    lm = LMPolicy(policy, max_trace_tokens=192, stepwise=False)  # room for traces that state values in comments
    sampler, checker = Sampler(lm), TraceChecker()
    out: dict = {"policy": policy, "problems": len(items), "temperature": temperature}
    for mode in modes:
        solved = voted = 0
        t0 = time.perf_counter()
        for i, p in enumerate(items):
            if mode == "stepwise":
                traces = sample_with_values(lm, p, 64, temperature, seed=i)
            else:
                traces = [d.lines for d in sampler.draw([ProposeRequest(task=p.question, evidence=[], steps=[])], 64,
                                                         temperature, i, True, Budget(64))[0]]
            votes: dict[str, list] = {}
            hit = False
            for lines in traces:
                ok = fam.score(p, lines)
                hit = hit or ok
                try:
                    done = []
                    for line in lines:
                        step, _ = checker.step(p.question, [], done, line)
                        if step.verdict is None or not step.verdict.ok:
                            raise ValueError
                        done.append(step)
                    votes.setdefault(answer_key(done[-1].value), []).append(ok)
                except (ValueError, IndexError):
                    continue
            solved += hit
            if votes:
                best = max(votes.values(), key=len)
                voted += any(best)
        key = "" if mode == "whole" else f"_{mode}"
        out[f"solved_within_64{key}"] = solved / max(1, len(items))
        out[f"majority_vote_64{key}"] = voted / max(1, len(items))
        out[f"seconds{key}"] = round(time.perf_counter() - t0, 1)
    return out


def gsm8k_section(policy: str, size: dict) -> dict:
    from dca.reasoning.policy import LMPolicy, evaluate_policy
    from dca.reasoning.search import make_strategy

    try:
        items = problems("gsm8k", "dev", size["gsm8k_n"])
    except Exception as exc:  # the data is not in the repo: report why instead of a number
        return {"skipped": str(exc).splitlines()[0]}
    lm = LMPolicy(policy, max_trace_tokens=192)
    model, tokenizer = lm.load()
    greedy = evaluate_policy(model, tokenizer, items, lm.format)["accuracy"]
    k = size["gsm8k_samples"]
    vote = solve_rate(make_strategy("self_consistency", lm, samples=k, seed=0), items)
    return {"policy": policy, "problems": len(items), "greedy": greedy, f"self_consistency@{k}": vote,
            "anchors": ANCHORS}


def throughput_section(threads: int) -> dict:
    env = {**os.environ, "DCA_TORCH_THREADS": str(threads)}
    subprocess.run([sys.executable, str(ROOT / "bench" / "lm_throughput.py"), "--quick", "--threads", str(threads)],
                   check=True, env=env)
    return json.loads((OUT / "lm_throughput.json").read_text())


def plot(report: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = {key: report[key] for key in ("rl", "rl_recipe") if report.get(key, {}).get("rewards")}
    if runs:
        fig, ax = plt.subplots(figsize=(7, 4))
        for key, run in runs.items():
            rewards = run["rewards"]
            smooth = [sum(rewards[max(0, i - 9):i + 1]) / len(rewards[max(0, i - 9):i + 1]) for i in range(len(rewards))]
            label = run.get("settings", {}).get("recipe") or f"rl section ({run.get('settings', {}).get('policy', '')})"
            ax.plot(range(len(rewards)), rewards, alpha=0.25)
            ax.plot(range(len(rewards)), smooth, color=ax.lines[-1].get_color(), label=f"{label} (10-step mean)")
        ax.set_xlabel("GRPO step")
        ax.set_ylabel("mean reward per sample")
        ax.set_title("GRPO from the SFT policy")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(OUT / "reasoning_rl.png", dpi=100)
        plt.close(fig)
    gains = {label: report[key] for key, label in (("rl_recipe", "GRPO (rl_recipe)"), ("rl_ei", "expert iteration"))
             if report.get(key, {}).get("after")}
    if gains:  # greedy accuracy from the same start policy, on the same dev problems
        fig, ax = plt.subplots(figsize=(7, 4))
        sets = sorted({k for run in gains.values() for k in run["after"]})
        width = 0.8 / (len(gains) + 1)
        first = next(iter(gains.values()))
        ax.bar([i for i in range(len(sets))], [first["before"].get(k, 0) for k in sets], width, label="SFT (start)")
        for j, (label, run) in enumerate(gains.items(), start=1):
            ax.bar([i + j * width for i in range(len(sets))], [run["after"].get(k, 0) for k in sets], width,
                   label=f"after {label}")
        ax.set_xticks([i + width * len(gains) / 2 for i in range(len(sets))], sets, fontsize=8)
        ax.set_ylabel("greedy accuracy")
        ax.set_title("RL from the same policy: GRPO vs expert iteration")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3, axis="y")
        fig.tight_layout()
        fig.savefig(OUT / "reasoning_rl_gain.png", dpi=100)
        plt.close(fig)
    for key, title in CURVES.items():
        sc = report.get(key)
        if not sc:
            continue
        fig, ax = plt.subplots(figsize=(7, 4))
        for name in STRATEGIES:
            if name in sc:
                xs = sorted(int(b) for b in sc[name])
                ax.plot(xs, [sc[name][str(x)]["accuracy"] for x in xs], marker="o", label=name)
        ax.axhline(sc["greedy"], color="grey", linestyle="--", label="greedy")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("policy samples per problem")
        ax.set_ylabel("accuracy")
        ax.set_title(f"{title}: accuracy vs compute ({sc['problems']} problems)")
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(OUT / f"reasoning_{key}.png", dpi=100)
        plt.close(fig)


def _gain_rows(rl: dict, trained: str = "SFT+GRPO") -> list[str]:
    """Greedy accuracy per dev set before and after a GRPO run (``_rl_report``) or expert iteration."""
    rows = [f"{'set':<44}{'SFT':>8}{trained:>10}{'points':>8}"]
    for k, after in rl["after"].items():
        rows.append(f"{k:<44}{rl['before'].get(k, 0):>8.1%}{after:>10.1%}{rl['gain_points'][k]:>+8.1f}")
    return rows


def _curve_rows(sc: dict, budgets: list[int], cell) -> list[str]:
    """One row per strategy measured: ``cell`` of its result at each budget."""
    return [f"{s:<18}" + "".join(cell(sc[s][str(b)]) for b in budgets) for s in STRATEGIES if s in sc]


def table(report: dict) -> str:
    rows = [f"# reasoning benchmark ({report['mode']}, policy {report['policy']})"]
    if "rl" in report:
        rl = report["rl"]
        rows.append(f"\nRL (GRPO {rl['steps']} steps, {rl['minutes']} min, {rl.get('settings', {})}): greedy accuracy")
        rows.extend(_gain_rows(rl))
    if "rl_recipe" in report:
        rr = report["rl_recipe"]
        rows.append(f"\nRL recipe {rr['settings'].get('recipe')} (GRPO {rr['steps']} steps, {rr['minutes']} min, "
                    f"from {rr['settings'].get('policy')}): greedy accuracy on {rr.get('eval_n', '?')} dev problems")
        rows.extend(_gain_rows(rr))
    if "rl_ei" in report:
        ei = report["rl_ei"]
        st = ei["settings"]
        rows.append(f"\nexpert iteration from {st['policy']} ({st['samples']} samples per problem at T {st['temperature']:g}: "
                    f"{ei['solved']} of {ei['problems']} training problems solved, {ei['sample_minutes']} min; "
                    f"fine-tuned on one right trace each, {st['steps']} steps at lr {st['lr']:g}, {ei['train_minutes']} min): "
                    f"greedy accuracy on {ei['eval_n']} dev problems")
        rows.extend(_gain_rows(ei, "SFT+EI"))
    for key, title in CURVES.items():
        if key in report:
            sc = report[key]
            budgets = sorted({int(b) for s in STRATEGIES if s in sc for b in sc[s]})
            rows.append(f"\n{title}: accuracy vs samples ({sc['problems']} problems, {sc.get('policy')}, "
                        f"scorer {sc.get('scorer')}; greedy {sc['greedy']:.1%})")
            rows.append(f"{'strategy':<18}" + "".join(f"{b:>8}" for b in budgets))
            rows.extend(_curve_rows(sc, budgets, lambda cell: f"{cell['accuracy']:>8.1%}"))
            if any("tokens" in sc[s][str(b)] for s in STRATEGIES if s in sc for b in budgets):
                rows.append("generated tokens per problem (what each budget of samples bought)")
                rows.extend(_curve_rows(sc, budgets, lambda cell: f"{cell.get('tokens', 0):>8.0f}"))
    if "countdown4" in report:
        c = report["countdown4"]
        rows.append(f"\ncountdown-4 ({c['problems']} problems, {c.get('policy')}, temperature {c.get('temperature', 1.0):g})")
        rows.append(f"{'sampling':<44}{'solved@64':>10}{'vote@64':>10}")
        for key, name in (("", "whole traces (policy alone)"), ("_stepwise", "stepwise, interpreter values in context")):
            if f"solved_within_64{key}" in c:
                rows.append(f"{name:<44}{c[f'solved_within_64{key}']:>10.1%}{c[f'majority_vote_64{key}']:>10.1%}")
    if "gsm8k" in report:
        g = report["gsm8k"]
        if "skipped" in g:
            rows.append(f"\nGSM8K skipped: {g['skipped']}")
        else:
            best = {k: v for k, v in g.items() if k.startswith("self_consistency")}
            rows.append(f"\nGSM8K dev ({g['problems']} problems, {g.get('policy')}): greedy {g['greedy']:.1%}, "
                        + ", ".join(f"{k} {v:.1%}" for k, v in best.items())
                        + "; anchors: " + ", ".join(f"{k} {v:.1%}" for k, v in ANCHORS.items()))
    if "throughput" in report:
        rows.append("\nthroughput HF / plain torch (same shape, same run):")
        for r in report["throughput"].get("rows", report["throughput"] if isinstance(report["throughput"], list) else []):
            if isinstance(r, dict) and "what" in r:
                rows.append(f"  {r['what']:<28} HF {r['hf']:.0f}  plain {r['plain']:.0f}  ratio {r['ratio']:.2f}")
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full", action="store_true", help="the issue's sizes (default: quick)")
    ap.add_argument("--policy", default="dca:tiny-reasoner", help="the SFT policy to start from")
    ap.add_argument("--sections", default="rl,scaling,countdown4,gsm8k,throughput",
                    help="comma-separated; also rl_recipe (~25 min on 2 cores), rl_ei (~10 min) and search4, "
                         "not in the default")
    ap.add_argument("--rl-recipe", default="configs/train_rl_countdown.yaml", help="the rl_recipe section's YAML")
    ap.add_argument("--rl-steps", type=int, help="GRPO steps (default: 40 quick, 300 full); a rerun resumes")
    ap.add_argument("--eval-n", type=int, help="held-out problems per set for greedy accuracy (default: 40 quick)")
    ap.add_argument("--countdown-n", type=int, help="countdown-4 problems for the 64-sample check (default: 20 quick)")
    ap.add_argument("--countdown-policy", help="policy for the countdown4 section (default: the search policy)")
    ap.add_argument("--countdown-temperature", type=float, default=1.0, help="sampling temperature of the 64 samples")
    ap.add_argument("--countdown-modes", default="whole,stepwise",
                    help="countdown4 sampling: whole (policy alone), stepwise (interpreter values in context)")
    ap.add_argument("--search-policy", help="policy for the search sections (default: the GRPO result)")
    ap.add_argument("--rl-lr", type=float, default=1e-4)
    ap.add_argument("--rl-temperature", type=float, default=0.7)
    ap.add_argument("--rl-beta", type=float, default=0.04, help="KL penalty to the SFT policy")
    ap.add_argument("--rl-valid", type=float, default=0.1, help="weight of the valid-lines reward (correct: 1)")
    ap.add_argument("--rl-format", type=float, default=0.05, help="weight of the format reward")
    ap.add_argument("--rl-scale", default="none", choices=["none", "group", "batch"],
                    help="divide advantages by the group's reward std (group) or only centre them (none)")
    ap.add_argument("--rl-prompts", type=int, default=8, help="problems per GRPO step (8 traces each)")
    ap.add_argument("--scorer", help="a trained step scorer for the scaling section (default: train one here)")
    ap.add_argument("--scaling-n", type=int, help="problems for the scaling section (default: 16 quick, 60 full)")
    ap.add_argument("--budgets", type=int, nargs="+", help="sample budgets for the scaling and search4 sections")
    ap.add_argument("--search4-policy", default="dca:countdown-reasoner", help="policy for the search4 section")
    ap.add_argument("--search4-scorer", default="dca:countdown-scorer",
                    help="the scorer for search4 (default: dca:countdown-scorer, built on first use, ~11 min)")
    ap.add_argument("--strategies", help=f"comma-separated strategies for search4 (default: all of {','.join(STRATEGIES)}; "
                                         "budgets and strategies not run keep their last results)")
    ap.add_argument("--search4-n", type=int, help="countdown-4 problems for search4 (default: 20 quick, 100 full)")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("DCA_TORCH_THREADS", "2")))
    ap.add_argument("--work", default=str(OUT / "reasoning-work"), help="training runs (resumable)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    mode = "full" if args.full else "quick"
    size = dict(SIZES[mode])
    if args.rl_steps:
        size["rl_steps"] = args.rl_steps
    if args.eval_n:
        size["eval_n"] = args.eval_n
    if args.scaling_n:
        size["scaling_n"] = args.scaling_n
    if args.budgets:
        size["budgets"] = args.budgets
    if args.countdown_n:
        size["countdown_n"] = args.countdown_n
    if args.search4_n:
        size["search4_n"] = args.search4_n
    rl = {"lr": args.rl_lr, "temperature": args.rl_temperature, "beta": args.rl_beta,
          "reward_valid": args.rl_valid, "reward_format": args.rl_format, "scale": args.rl_scale,
          "prompts": args.rl_prompts}
    sections = set(args.sections.split(","))
    strategies = args.strategies.split(",") if args.strategies else None
    if strategies and not set(strategies) <= set(STRATEGIES):
        ap.error(f"--strategies: expected some of {','.join(STRATEGIES)}, got {args.strategies!r}")
    if not set(args.countdown_modes.split(",")) <= {"whole", "stepwise"}:
        ap.error(f"--countdown-modes: expected whole and/or stepwise, got {args.countdown_modes!r}")
    work = Path(args.work) / mode
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "reasoning.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    # sections not run this time keep their last results from a run of the same mode and policy
    keep = old if old.get("mode") == mode and old.get("policy") == args.policy else {}
    report: dict = {**keep, "mode": mode, "policy": args.policy, "sizes": size}
    t0 = time.perf_counter()

    def save() -> None:
        report["seconds"] = round(time.perf_counter() - t0, 1)
        path.write_text(json.dumps(report, indent=2))

    trained = report.get("rl", {}).get("model", args.policy)
    if "rl" in sections:
        report["rl"] = rl_section(args.policy, size, work, args.threads, rl)
        trained = report["rl"]["model"]
        save()
    if "rl_recipe" in sections:
        report["rl_recipe"] = rl_recipe_section(args.rl_recipe, work, args.threads)
        save()
    if "rl_ei" in sections:
        report["rl_ei"] = rl_ei_section(work, args.threads, size["eval_n"])
        save()
    trained = args.search_policy or trained
    report["searched_policy"] = trained
    if "countdown4" in sections:
        report["countdown4"] = countdown4_section(args.countdown_policy or trained, size,
                                                  args.countdown_modes.split(","), args.countdown_temperature)
        save()
    if "gsm8k" in sections:
        report["gsm8k"] = gsm8k_section(trained, size)
        save()
    if "throughput" in sections:
        report["throughput"] = throughput_section(args.threads)
        save()
    if "scaling" in sections:
        scorer = args.scorer or train_bench_scorer(trained, size, work, args.threads)
        report["scorer"] = scorer
        report["scaling"] = scaling_section(trained, scorer, size)
        save()
    if "search4" in sections:
        report["search4"] = merge_curves(report.get("search4", {}),
                                         search4_section(args.search4_policy, args.search4_scorer, size, strategies))
        save()
    plot(report)
    text = table(report)
    print(text)
    (OUT / "reasoning.txt").write_text(text + "\n")
    print(f"\nwrote {path} and its PNGs (reasoning_rl, reasoning_rl_gain, reasoning_scaling, reasoning_search4) in {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
