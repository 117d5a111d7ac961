"""Do step errors compound? End-to-end success on N-step tasks (N = 1..20), verifier off and on.

Synthetic word problems of exactly N steps (dca.reasoning.tasks.synthetic) are run through the real
dca graph (``dca.Agent``: propose -> execute -> verify -> retry / backtrack). The logic ability is a
reference policy that writes the gold step, except that with probability ``p`` (0.05, 0.1) it makes
a step error of a kind the programmatic checks can see (an operand that appears nowhere) or cannot
see (another number of the problem, a swapped operator, an earlier result in place of the last).
A retried position draws afresh, as sampling again would. Without the verifier a chain of N steps
succeeds about (1-p)^N of the time; with it, visible errors are caught and resampled.

"Verifier off" runs the graph with only the structural checks (parses, executes), exactly what
``Agent(verifier=None)`` does, but with a step budget large enough for N = 20.

With ``--policy`` the logic is a trained policy instead (``dca.reasoning.policy.LMPolicy``, or a
search strategy around it with ``--strategy``), its errors its own; the rows are then verifier off,
verifier on, and verifier on with the learned step scorer as one more check (``--scorer``).

Run: ``.venv/bin/python bench/compounding.py [--tasks 60] [--logic module:Factory]``
or   ``.venv/bin/python bench/compounding.py --policy dca:chain-reasoner [--scorer DIR] [--strategy beam]``.
Writes bench/out/compounding.json and .png (``compounding_policy.*`` with ``--policy``).
"""
from __future__ import annotations

import argparse
import ast
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import dca  # noqa: E402
from dca.abilities import Proposal, ProposeRequest  # noqa: E402
from dca.reasoning.tasks.base import Problem  # noqa: E402
from dca.reasoning.tasks.corruptions import corrupt  # noqa: E402
from dca.reasoning.tasks.synthetic import Synthetic  # noqa: E402
from dca.types import Compute  # noqa: E402
from dca.verifier import FailurePolicy, Verifier  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
LENGTHS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20)
VISIBLE = ("ungrounded",)  # the grounding check sees these
INVISIBLE = ("misread", "operation", "stale")  # grounded and well-formed, but wrong
MIXES = {"visible errors": VISIBLE, "mixed (1/2 visible)": VISIBLE * 3 + INVISIBLE,
         "invisible errors": INVISIBLE}


class ReferencePolicy:
    """A logic ability that knows the gold trace and errs with probability ``p`` per proposal."""

    def __init__(self, problems: list[Problem], p: float, kinds: tuple[str, ...], seed: int = 0):
        self.by_task = {pr.question: pr for pr in problems}
        self.p, self.kinds, self.seed = p, kinds, seed

    def propose(self, request: ProposeRequest) -> list[Proposal]:
        problem = self.by_task[request.task]
        pos = len(request.steps)
        rng = random.Random(f"{self.seed}:{request.task}:{pos}:{request.seed}:{len(request.avoid)}")
        gold = problem.gold[min(pos, len(problem.gold) - 1)]
        line = gold
        for _ in range(20):
            line = self._maybe_wrong(problem, pos, request, rng) if rng.random() < self.p else gold
            if line not in request.avoid:
                break
        return [Proposal(lines=[line], compute=Compute(model_calls=1, policy_samples=1))]

    def _maybe_wrong(self, problem: Problem, pos: int, request: ProposeRequest, rng: random.Random) -> str:
        prefix = [s.text for s in request.steps]
        gold = problem.gold[min(pos, len(problem.gold) - 1)]
        kind = rng.choice(self.kinds)
        if kind == "stale":  # an earlier result (or the start) instead of the latest one
            tree = ast.parse(gold.partition(" = ")[2], mode="eval")
            names = [n for n in ast.walk(tree) if isinstance(n, ast.Name)]
            earlier = [s.target for s in request.steps[:-1]]
            if names and earlier:
                names[0].id = rng.choice(earlier)
                return f"{gold.partition(' = ')[0]} = {ast.unparse(tree)}"
            kind = "misread"
        c = corrupt(kind, prefix + [gold], problem.question, rng, k=pos)
        return c.lines[pos] if c is not None else gold


def run_one(problem: Problem, agent: dca.Agent) -> tuple[bool, int]:
    """Whether the run ends verified with the right answer, and how many step attempts it made."""
    result = agent.run(problem.question)
    ok = result.verified and Synthetic().score(problem, result.answer)
    return ok, len(result.attempts)


def structural(policy: FailurePolicy) -> Verifier:
    return Verifier(checks=["parses", "executes"], policy=policy)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", type=int, default=60, help="tasks per length N")
    ap.add_argument("--rates", type=float, nargs="+", default=[0.05, 0.1])
    ap.add_argument("--lengths", type=int, nargs="+", default=list(LENGTHS))
    ap.add_argument("--logic", default="", help="module:factory(problems, p) building another logic ability")
    ap.add_argument("--policy", default="", help="a trained policy (name or directory) as the logic, instead "
                                                  "of the reference policy with injected errors")
    ap.add_argument("--strategy", default="", help="with --policy: a search strategy around it (default: the "
                                                    "policy's own proposals)")
    ap.add_argument("--samples", type=int, default=4, help="with --strategy: policy samples per proposal")
    ap.add_argument("--scorer", default="", help="with --policy: a step scorer, added as a verifier check "
                                                  "(and given to a guided strategy)")
    ap.add_argument("--min-score", type=float, default=0.3, help="the step scorer check's threshold")
    ap.add_argument("--max-new-tokens", type=int, default=96,
                    help="with --policy: tokens per proposed line (a dca:chain-reasoner line quotes a sentence)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    policy = FailurePolicy(retries=3, temperatures=[0.0, 0.7, 1.0], backtracks=1, max_steps=max(args.lengths) + 2)
    if args.policy:
        return policy_main(args, policy)
    rows = []
    start = time.perf_counter()
    from rich.progress import Progress

    jobs = [(p, mix, on) for p in args.rates for mix in MIXES for on in (False, True)
            if not (mix != "visible errors" and not on)]  # with the verifier off every mix is the same
    with Progress() as bar:
        task_bar = bar.add_task("running N-step tasks", total=len(jobs) * len(args.lengths) * args.tasks)
        for n in args.lengths:
            problems = list(Synthetic(min_steps=n, max_steps=n).problems("dev", n=args.tasks, seed=args.seed + n))
            for p, mix, on in jobs:
                logic = _logic(args.logic, problems, p, MIXES[mix], args.seed)
                verifier = Verifier(policy=policy) if on else structural(policy)
                ok, attempts = run_all(problems, dca.Agent(logic=logic, verifier=verifier, seed=0), bar, task_bar)
                rows.append({"N": n, "p": p, "mix": mix if on else "any", "verifier": on,
                             "success": ok / len(problems), "attempts_per_step": attempts / (len(problems) * n),
                             "no_check_expected": (1 - p) ** n})
    elapsed = time.perf_counter() - start
    print_table(rows, args.rates, args.lengths)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "compounding.json").write_text(json.dumps({"rows": rows, "tasks_per_length": args.tasks,
                                                      "policy": policy.to_dict(), "seconds": elapsed}, indent=1))
    plot(rows, args.rates, OUT / "compounding.png")
    print(f"\n{elapsed:.0f} s; wrote {OUT / 'compounding.json'} and {OUT / 'compounding.png'}")


def run_all(problems: list[Problem], agent: dca.Agent, bar: Any, task_bar: Any) -> tuple[int, int]:
    """Right answers and step attempts over ``problems``."""
    ok = attempts = 0
    for pr in problems:
        good, tried = run_one(pr, agent)
        ok += good
        attempts += tried
        bar.advance(task_bar)
    return ok, attempts


def policy_main(args: argparse.Namespace, policy: FailurePolicy) -> None:
    """End-to-end success of a trained policy on N-step tasks: verifier off, on, and on with the scorer."""
    import torch
    from rich.progress import Progress

    from dca.reasoning.policy import LMPolicy
    from dca.reasoning.search import make_strategy
    from dca.reasoning.scorer import StepScorer
    from dca.verifier import DEFAULT_CHECKS, StepScore

    torch.set_num_threads(args.threads)
    lm = LMPolicy(args.policy, threads=args.threads, max_new_tokens=args.max_new_tokens,
                  max_trace_tokens=640)
    scorer = StepScorer.load(args.scorer, threads=args.threads) if args.scorer else None
    logic = make_strategy(args.strategy, lm, samples=args.samples, scorer=scorer, seed=args.seed) \
        if args.strategy else lm
    series = [("off", lambda: structural(policy)), ("on", lambda: Verifier(policy=policy))]
    if scorer is not None:
        series.append(("on + scorer", lambda: Verifier(checks=[*DEFAULT_CHECKS, StepScore(scorer, args.min_score)],
                                                       policy=policy)))
    rows = []
    start = time.perf_counter()
    with Progress() as bar:
        task_bar = bar.add_task("running N-step tasks", total=len(series) * len(args.lengths) * args.tasks)
        for n in args.lengths:
            problems = list(Synthetic(min_steps=n, max_steps=n).problems("dev", n=args.tasks, seed=args.seed + n))
            for name, make in series:
                ok, attempts = run_all(problems, dca.Agent(logic=logic, verifier=make(), seed=0), bar, task_bar)
                rows.append({"N": n, "verifier": name, "success": ok / len(problems),
                             "attempts_per_step": attempts / (len(problems) * n)})
    elapsed = time.perf_counter() - start
    print(f"\n{args.policy} ({args.strategy or 'its own proposals'}): end-to-end success (attempts per step), "
          f"{args.tasks} tasks per N")
    print(f"{'N':>4s} " + " ".join(f"{name:>20s}" for name, _ in series))
    for n in args.lengths:
        cells = [next(r for r in rows if r["N"] == n and r["verifier"] == name) for name, _ in series]
        print(f"{n:>4d} " + " ".join(f"{r['success']:>11.2f} ({r['attempts_per_step']:.2f})" for r in cells))
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "compounding_policy.json"
    path.write_text(json.dumps({"rows": rows, "tasks_per_length": args.tasks, "policy": args.policy,
                                "strategy": args.strategy, "samples": args.samples, "scorer": args.scorer,
                                "min_score": args.min_score, "failure_policy": policy.to_dict(),
                                "seconds": elapsed}, indent=1))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, _ in series:
        mine = [r for r in rows if r["verifier"] == name]
        ax.plot([r["N"] for r in mine], [r["success"] for r in mine], marker="o", label=f"verifier {name}")
    ax.set_xlabel("steps N")
    ax.set_ylabel("end-to-end success")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{Path(args.policy).name}: success against task length")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path.with_suffix(".png"), dpi=120)
    print(f"\n{elapsed:.0f} s; wrote {path} and {path.with_suffix('.png')}")


def _logic(target: str, problems: list[Problem], p: float, kinds: tuple[str, ...], seed: int):
    if not target:
        return ReferencePolicy(problems, p, kinds, seed)
    from dca._lazy import import_attr

    return import_attr(target)(problems, p)


def print_table(rows: list[dict], rates: list[float], lengths: list[int]) -> None:
    for p in rates:
        print(f"\nper-step error p = {p}: end-to-end success (attempts per step)")
        series = [("off", "any", False)] + [(f"on, {m}", m, True) for m in MIXES]
        print(f"{'N':>4s} {'(1-p)^N':>8s} " + " ".join(f"{name:>26s}" for name, _, _ in series))
        for n in lengths:
            cells = []
            for _, mix, on in series:
                r = next(r for r in rows if r["N"] == n and r["p"] == p and r["verifier"] == on and
                         (r["mix"] == mix or not on))
                cells.append(f"{r['success']:>17.2f} ({r['attempts_per_step']:.2f})")
            print(f"{n:>4d} {(1 - p) ** n:>8.2f} " + " ".join(f"{c:>26s}" for c in cells))


def plot(rows: list[dict], rates: list[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    styles = {0.05: "-", 0.1: "--"}
    for p in rates:
        off = [r for r in rows if r["p"] == p and not r["verifier"]]
        ns = [r["N"] for r in off]
        axes[0].plot(ns, [(1 - p) ** n for n in ns], styles.get(p, ":"), color="grey", lw=1,
                     label=f"(1-p)^N, p={p}")
        axes[0].plot(ns, [r["success"] for r in off], styles.get(p, ":"), marker="o", color="black",
                     label=f"verifier off, p={p}")
        for mix, color in zip(MIXES, ("tab:green", "tab:orange", "tab:red")):
            on = [r for r in rows if r["p"] == p and r["verifier"] and r["mix"] == mix]
            axes[0].plot([r["N"] for r in on], [r["success"] for r in on], styles.get(p, ":"), marker=".",
                         color=color, label=f"verifier on, {mix}, p={p}")
            axes[1].plot([r["N"] for r in on], [r["attempts_per_step"] for r in on], styles.get(p, ":"),
                         marker=".", color=color, label=f"{mix}, p={p}")
    axes[0].set_xlabel("steps N")
    axes[0].set_ylabel("end-to-end success")
    axes[0].set_ylim(0, 1.02)
    axes[0].legend(fontsize=6)
    axes[0].set_title("success against task length")
    axes[1].set_xlabel("steps N")
    axes[1].set_ylabel("attempts per step (verifier on)")
    axes[1].legend(fontsize=6)
    axes[1].set_title("compute the verifier costs")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
