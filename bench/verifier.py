"""How many step errors the verifier's programmatic checks catch on real GSM8K traces, and how often
they reject a correct one.

Every GSM8K train solution is converted into a gold trace (dca.reasoning.convert; arithmetic the
solution did in its head made explicit, and for contrast also as annotated). One error of each
kind is injected per solution (dca.reasoning.tasks.corruptions): a wrong stated result, an operand
replaced by a number the problem does not contain, an operator swapped, a step dropped (and, for
contrast, an operand replaced by a *different number from the problem*). Each corrupted trace is
executed and checked by several verifier configurations, including the structural baseline
(parses + executes: what a run gets with the verifier off), measured in the same run.

Recall counts a corrupted trace as caught when some step at or after the injected one is rejected;
it is computed over the solutions whose gold trace the configuration accepts (so a rejection is
the injected error's doing). False alarms are gold traces (with every stated value written as
``# = v``) the configuration rejects.

Run: ``.venv/bin/python bench/verifier.py [--limit N]``. Writes bench/out/verifier.json and .png.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dca.reasoning.convert import gsm8k_trace  # noqa: E402
from dca.reasoning.tasks import get_family  # noqa: E402
from dca.reasoning.tasks.corruptions import KINDS, corrupt  # noqa: E402
from dca.verifier import DEFAULT_CHECKS, Grounded, Verifier  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
STRUCTURAL = ("parses", "executes")
SMALL_INTS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 100)


def configurations() -> dict[str, Verifier]:
    return {
        "off (parses+executes)": Verifier(checks=list(STRUCTURAL)),
        "default": Verifier(),
        "default+plausible": Verifier(checks=list(DEFAULT_CHECKS) + ["plausible"]),
        "default, constants 0-12": Verifier(constants=SMALL_INTS),
        "default, derived": Verifier(checks=[c if c != "grounded" else Grounded(derived=True)
                                            for c in DEFAULT_CHECKS]),
    }


def first_failure(verifier: Verifier, task: str, lines: list[str]) -> tuple[int, str, str] | None:
    for step in verifier.check_trace(task, lines):
        if not step.verdict.ok:
            return step.index, step.verdict.check, step.verdict.reason
    return None


def other_families(n: int = 300) -> dict[str, dict]:
    """The default checks on the gold traces of the other families, with their evidence: how many a
    correct trace fails, by check, with a few examples."""
    v = Verifier()
    out = {}
    for name, splits in (("finqa", ("train", "dev")), ("tatqa", ("train", "dev")), ("synthetic", ("dev",)),
                         ("countdown", ("dev",))):
        fam = get_family(name)
        tried, by_check, examples = 0, Counter(), []
        for split in splits:
            for p in fam.problems(split, n=n if name in ("synthetic", "countdown") else None):
                if not p.gold:
                    continue
                tried += 1
                bad = next((s for s in v.check_trace(p.question, p.gold, p.evidence) if not s.verdict.ok), None)
                if bad is not None:
                    by_check[bad.verdict.check] += 1
                    if len(examples) < 10:
                        examples.append({"id": p.id, "question": p.question[:160], "line": bad.text,
                                         "reason": bad.verdict.reason})
        out[name] = {"gold_traces": tried, "rejected": sum(by_check.values()), "by_check": dict(by_check),
                     "examples": examples}
        print(f"{name:10s} gold traces {tried:5d}  rejected by the default checks {sum(by_check.values()):4d}  "
              f"{dict(by_check)}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=None, help="solutions to use (default: all of train.jsonl)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--families-only", action="store_true",
                    help="only check the FinQA / TAT-QA / synthetic / countdown gold traces "
                         "(writes bench/out/verifier_families.json)")
    args = ap.parse_args()
    if args.families_only:
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "verifier_families.json").write_text(json.dumps(other_families(), indent=1))
        print(f"wrote {OUT / 'verifier_families.json'}")
        return

    fam = get_family("gsm8k")
    problems = [p for split in ("train", "dev") for p in fam.problems(split)]
    problems.sort(key=lambda p: int(p.id.split("-")[1]))
    if args.limit:
        problems = problems[: args.limit]
    configs = configurations()
    from rich.progress import track

    gold_fail: dict[str, Counter] = {c: Counter() for c in configs}
    gold_fail_by_form: dict[str, Counter] = {c: Counter() for c in configs}
    forms = Counter()
    caught: dict[str, dict[str, Counter]] = {c: {k: Counter() for k in KINDS} for c in configs}
    tried: dict[str, Counter] = {c: Counter() for c in configs}
    misses: dict[str, list] = defaultdict(list)
    gold_examples: list[dict] = []
    start = time.perf_counter()
    as_written = Verifier()
    as_written_fail = 0
    for p in track(problems, description="checking GSM8K traces"):
        rng = random.Random(f"{args.seed}:{p.id}")
        stated = [f"{line}  # = {s:g}" for line, s in zip(p.gold, p.meta["stated"])]
        # the same solution converted without making its head arithmetic explicit
        raw = gsm8k_trace(p.meta["solution"], p.question, explicit=False)
        as_written_fail += first_failure(as_written, p.question, [f"{line}  # = {s:g}" for line, s in
                                                                  zip(raw.lines, raw.stated)]) is not None
        form = ("bare number step" if any(not any(op in ln.partition(" = ")[2] for op in "+-*/()")
                                          for ln in p.gold)
                else "conversion warning" if p.meta["warnings"] else "well-formed")
        forms[form] += 1
        corrupted = {k: corrupt(k, p.gold, p.question, rng) for k in KINDS}
        for name, v in configs.items():
            fail = first_failure(v, p.question, stated)
            if fail:
                gold_fail[name][fail[1]] += 1
                gold_fail_by_form[name][form] += 1
                if name == "default" and len(gold_examples) < 400:
                    gold_examples.append({"id": p.id, "form": form, "check": fail[1], "reason": fail[2],
                                          "line": stated[fail[0]]})
                continue
            for kind, c in corrupted.items():
                if c is None:
                    continue
                tried[name][kind] += 1
                got = first_failure(v, p.question, c.lines)
                if got and got[0] >= c.index:
                    caught[name][kind][got[1]] += 1
                elif name == "default" and len(misses[kind]) < 25:
                    misses[kind].append({"id": p.id, "note": c.note, "trace": c.lines})
    elapsed = time.perf_counter() - start

    n = len(problems)
    rows = []
    for name in configs:
        row = {"config": name, "gold_false_alarm": sum(gold_fail[name].values()) / n,
               "false_alarm_by_check": dict(gold_fail[name]),
               "false_alarm_by_form": {f: gold_fail_by_form[name][f] / forms[f] for f in forms}}
        for kind in KINDS:
            t = tried[name][kind]
            row[f"recall_{kind}"] = sum(caught[name][kind].values()) / t if t else None
            row[f"caught_by_{kind}"] = dict(caught[name][kind])
            row[f"n_{kind}"] = t
        rows.append(row)

    print(f"\nGSM8K train.jsonl: {n} solutions, {sum(len(p.gold) for p in problems)} gold steps, "
          f"{elapsed:.0f} s")
    print(f"gold trace forms: {dict(forms)}\n")
    head = f"{'configuration':28s} {'false alarms':>12s} " + " ".join(f"{k:>11s}" for k in KINDS)
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['config']:28s} {r['gold_false_alarm']:12.2%} " +
              " ".join(f"{r['recall_' + k]:11.1%}" if r["recall_" + k] is not None else f"{'-':>11s}"
                       for k in KINDS))
    print(f"\nfalse alarms of 'default' on the traces as annotated (head arithmetic not made explicit, "
          f"gsm8k_trace(explicit=False)): {as_written_fail / n:.2%}")
    print("false alarms of 'default' by gold-trace form: " +
          ", ".join(f"{f} {v:.2%} (of {forms[f]})" for f, v in rows[1]["false_alarm_by_form"].items()))
    print("recall is over solutions whose gold trace the configuration accepts; 'misread' (an operand "
          "replaced by another number of the problem) is what programmatic checks cannot see.")

    print("\ngold traces of the other families, their page as evidence:")
    families = other_families()
    OUT.mkdir(parents=True, exist_ok=True)
    report = {"other_families": families, "solutions": n, "forms": dict(forms), "seconds": elapsed, "rows": rows,
              "default_false_alarm_as_annotated": as_written_fail / n,
              "misses_default": misses, "gold_false_alarms_default": gold_examples}
    (OUT / "verifier.json").write_text(json.dumps(report, indent=1))
    plot(rows, OUT / "verifier.png")
    print(f"wrote {OUT / 'verifier.json'} and {OUT / 'verifier.png'}")


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(KINDS) + ["false alarms"]
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / len(rows)
    for i, r in enumerate(rows):
        vals = [r[f"recall_{k}"] or 0 for k in KINDS] + [r["gold_false_alarm"]]
        ax.bar([x + i * width for x in range(len(labels))], vals, width, label=r["config"])
    ax.set_xticks([x + width * (len(rows) - 1) / 2 for x in range(len(labels))], labels)
    ax.set_ylabel("recall (errors caught) / false-alarm rate")
    ax.set_ylim(0, 1.05)
    ax.axhline(0.9, color="grey", lw=0.5, ls="--")
    ax.set_title("dca verifier on GSM8K traces: one injected error per solution")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
