"""Dev-split quality of dca's default language models, against trivial baselines in the same run.

- policy: greedy whole traces, run by the interpreter, scored exactly by each family's scorer.
  FinQA / TAT-QA facts are shown two ways: with the gold facts kept among the top ``max_facts``
  (as in training) and by lexical rank alone (a stand-in for the retriever). Baseline: a trace
  that answers with the question's last number.
- wording: the share of sentences that state the verified value (``Verifier.check_wording``),
  against ``TemplateWording``.

Run: ``.venv/bin/python bench/models_dev.py [--policy dca:tiny-policy] [--wording dca:tiny-wording] [--n 100]``.
Writes bench/out/models_dev.json and .png.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

OUT = Path(__file__).resolve().parent / "out"
FACT_FAMILIES = ("finqa", "tatqa")


def last_number_baseline(problems, family) -> float:
    from dca.numbers import find_numbers

    hits = 0
    for p in problems:
        nums = find_numbers(p.question)
        hits += bool(nums) and bool(family.score(p, nums[-1].value))
    return hits / max(1, len(problems))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--policy", default="dca:tiny-policy")
    ap.add_argument("--wording", default="dca:tiny-wording")
    ap.add_argument("--families", nargs="+", default=["gsm8k", "finqa", "tatqa", "synthetic", "countdown"])
    ap.add_argument("--n", type=int, default=100, help="dev problems per family")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--skip-wording", action="store_true")
    args = ap.parse_args()

    from dca.models.registry import load_causal_lm
    from dca.reasoning.policy import evaluate_policy
    from dca.reasoning.prompt import PromptFormat
    from dca.reasoning.tasks import get_family
    from dca.verifier import Verifier
    from dca.wording import TemplateWording, evaluate_wording, spoken_value

    model, tok = load_causal_lm(args.policy, threads=args.threads)
    fmt = PromptFormat()
    rows = []
    for name in args.families:
        family = get_family(name)
        problems = list(family.problems("dev", n=args.n))
        modes = [("gold facts", True), ("ranked facts", False)] if name in FACT_FAMILIES else [("", True)]
        for label, gold in modes:
            rep = evaluate_policy(model, tok, problems, fmt, gold_facts=gold)
            rows.append({"family": name, "facts": label, "n": rep["n"], "accuracy": rep["accuracy"],
                         "executed": rep["executed"], "tokens_per_s": rep["tokens_per_s"],
                         "baseline": last_number_baseline(problems, family),
                         "examples": [r for r in rep["results"][:3]]})

    print(f"policy {args.policy}: greedy, exact answer on dev splits (n <= {args.n} each)")
    print(f"{'family':<12}{'facts':<14}{'n':>5}{'accuracy':>10}{'executes':>10}{'baseline':>10}{'tok/s':>8}")
    for r in rows:
        print(f"{r['family']:<12}{r['facts']:<14}{r['n']:>5}{r['accuracy']:>10.1%}{r['executed']:>10.1%}"
              f"{r['baseline']:>10.1%}{r['tokens_per_s']:>8.0f}")
    print("baseline: 'answer = <the question's last number>'")

    wording_rows = []
    if not args.skip_wording:
        wmodel, wtok = load_causal_lm(args.wording, threads=args.threads)
        verifier = Verifier()
        for name in [f for f in args.families if f in ("gsm8k", "finqa", "tatqa")]:
            problems = list(get_family(name).problems("dev", n=args.n))
            t0 = time.perf_counter()
            rep = evaluate_wording(wmodel, wtok, problems, fmt)
            template = sum(verifier.check_wording(TemplateWording().word(p.question, p.answer, [], []), p.answer).ok
                           for p in problems if isinstance(p.answer, (int, float))) / max(1, rep["n"])
            wording_rows.append({"family": name, "n": rep["n"], "states_value": rep["accuracy"],
                                 "template": template, "seconds": time.perf_counter() - t0,
                                 "examples": [(p.question[-80:], spoken_value(p.answer), r["text"])
                                              for p, r in zip(problems, rep["results"][:3])]})
        print(f"\nwording {args.wording}: share of dev sentences that state the value")
        print(f"{'family':<12}{'n':>5}{'LM':>8}{'template':>10}")
        for r in wording_rows:
            print(f"{r['family']:<12}{r['n']:>5}{r['states_value']:>8.1%}{r['template']:>10.1%}")
            for q, v, text in r["examples"][:2]:
                print(f"    {v!s:>10} -> {text}")

    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "models_dev.json").write_text(json.dumps({"policy": args.policy, "wording": args.wording,
                                                     "policy_rows": rows, "wording_rows": wording_rows},
                                                    indent=2, default=str))
    from paired_bars import paired_bars

    paired_bars(OUT / "models_dev.png", [f"{r['family']}\n{r['facts']}" for r in rows], [r["accuracy"] for r in rows],
                [r["baseline"] for r in rows], first_label=f"{args.policy} (greedy)",
                second_label="last-number baseline", ylabel="exact-answer accuracy (dev)")
    print(f"\nwrote {OUT / 'models_dev.json'} and .png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
