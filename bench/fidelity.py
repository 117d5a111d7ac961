"""Do the converted gold traces reproduce the datasets' own values? (dca.reasoning.convert)

- GSM8K train: every step's computed value against the ``<<expr=value>>`` it came from, and the
  trace's answer against ``#### answer`` (also: is the answer computed by a step, or only restated).
- FinQA (train_100 + dev_200): the executed program against ``exe_ans`` by FinQA's rule (round to 5
  decimals), and each intermediate step against the dataset's ``steps[i].res``.
- TAT-QA dev: every arithmetic derivation against the answer by TAT-QA's rule (2 decimals, scale).

The baseline, measured in the same run, is the GSM8K converter reading annotations only (no prose
arithmetic, no head arithmetic made explicit). Every mismatch is listed in the JSON with its cause.

Run: ``.venv/bin/python bench/fidelity.py``. Writes bench/out/fidelity.json and .png.
"""
from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dca.data import data_file  # noqa: E402
from dca.reasoning.convert import (  # noqa: E402
    ConvertError, finqa_match, finqa_trace, gsm8k_trace, rounds_to, tatqa_match, tatqa_trace,
)
from dca.reasoning.steps import Interpreter, StepError, values_match  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"


def gsm8k(prose: bool) -> dict:
    rows = [json.loads(line) for line in open(data_file("gsm8k", "train.jsonl"), encoding="utf-8")]
    interp = Interpreter()
    steps = agree = answers = computed = recovered = explicit = 0
    mismatches, uncomputed = [], []
    causes = Counter()
    for i, r in enumerate(rows):
        c = gsm8k_trace(r["answer"], r["question"], prose=prose, explicit=prose)
        values = c.run(interp)
        for line, v, s in zip(c.lines, values, c.stated):
            steps += 1
            if values_match(v, s, rel=1e-4):
                agree += 1
            else:
                mismatches.append({"line": i + 1, "step": line, "computed": v, "stated": s})
        answers += values_match(values[-1], c.answer, rel=1e-9)
        recovered += sum("recovered from prose" in w for w in c.warnings)
        explicit += sum("made explicit" in w for w in c.warnings)
        if any("not computed" in w for w in c.warnings):
            cause = _why_uncomputed(r["answer"])
            causes[cause] += 1
            uncomputed.append({"line": i + 1, "cause": cause, "final_line": r["answer"].split("\n####")[0]
                               .splitlines()[-1][:200]})
        else:
            computed += 1
    return {"problems": len(rows), "steps": steps, "steps_reproduced": agree, "answers_reproduced": answers,
            "answers_computed_by_steps": computed, "steps_recovered_from_prose": recovered,
            "steps_made_explicit": explicit,
            "step_mismatches": mismatches, "answer_not_computed": uncomputed, "uncomputed_causes": dict(causes)}


def _why_uncomputed(solution: str) -> str:
    body = solution.split("####")[0].lower()
    if "<<" not in body:
        return "no calculator annotation at all"
    tail = body.strip().splitlines()[-1]
    if any(w in body for w in (" x = ", "let x", " = x", "combining like terms", "both sides", "let ")):
        return "algebra (solving an equation) in prose"
    if "%" in tail or "percent" in tail:
        return "last step written as a percentage in prose"
    if "=" in tail:
        return "last step computed in prose with words between the numbers"
    return "last step stated in words without a computation"


def finqa() -> dict:
    records = [r for f in ("train_100.json", "dev_200.json") for r in json.load(open(data_file("finqa", f)))]
    ok, inter, inter_ok = 0, 0, 0
    mismatches, step_mismatches = [], []
    for r in records:
        qa = r["qa"]
        try:
            c = finqa_trace(qa["program"], r["table"], answer=qa["exe_ans"],
                            step_values=[s["res"] for s in qa["steps"]])
            values = c.run()
        except (ConvertError, StepError) as exc:
            mismatches.append({"id": r["id"], "program": qa["program"], "cause": str(exc)})
            continue
        if finqa_match(values[-1], qa["exe_ans"]):
            ok += 1
        else:
            mismatches.append({"id": r["id"], "program": qa["program"], "computed": values[-1],
                               "exe_ans": qa["exe_ans"]})
        for line, v, s, st in zip(c.lines[:-1], values[:-1], c.stated[:-1], qa["steps"][:-1]):
            inter += 1
            if rounds_to(v, s):
                inter_ok += 1
            else:
                step_mismatches.append({"id": r["id"], "step": line, "computed": v, "dataset_res": st["res"],
                                        "cause": "the dataset's res is rounded differently or mistyped; "
                                                 "exe_ans agrees with the program"})
    return {"programs": len(records), "answers_reproduced": ok, "answer_mismatches": mismatches,
            "intermediate_steps": inter, "intermediate_agree": inter_ok, "intermediate_mismatches": step_mismatches}


def tatqa() -> dict:
    docs = json.load(open(data_file("tatqa", "dev.json")))
    qs = [q for d in docs for q in d["questions"] if q["answer_type"] == "arithmetic"]
    ok, mismatches, warned = 0, [], Counter()
    for q in qs:
        try:
            c = tatqa_trace(q["derivation"], q["answer"], q["scale"])
            v = c.run()[-1]
        except (ConvertError, StepError) as exc:
            mismatches.append({"uid": q["uid"], "derivation": q["derivation"], "cause": str(exc)})
            continue
        for w in c.warnings:
            warned[w] += 1
        if tatqa_match(v, q["answer"], q["scale"]):
            ok += 1
        else:
            mismatches.append({"uid": q["uid"], "derivation": q["derivation"], "answer": q["answer"],
                               "scale": q["scale"], "computed": v, "lines": c.lines})
    return {"derivations": len(qs), "answers_reproduced": ok, "mismatches": mismatches,
            "warnings": dict(warned)}


def main() -> None:
    start = time.perf_counter()
    g, base, f, t = gsm8k(prose=True), gsm8k(prose=False), finqa(), tatqa()
    elapsed = time.perf_counter() - start
    rows = [
        ("GSM8K steps reproduce their <<=value>>", g["steps_reproduced"], g["steps"]),
        ("GSM8K answers reproduce #### answer", g["answers_reproduced"], g["problems"]),
        ("GSM8K answers computed by a step", g["answers_computed_by_steps"], g["problems"]),
        ("  baseline (annotations only)", base["answers_computed_by_steps"], base["problems"]),
        ("FinQA programs reproduce exe_ans", f["answers_reproduced"], f["programs"]),
        ("FinQA intermediate steps match res", f["intermediate_agree"], f["intermediate_steps"]),
        ("TAT-QA derivations reproduce the answer", t["answers_reproduced"], t["derivations"]),
    ]
    print(f"{'check':44s} {'agree':>7s} {'of':>7s} {'rate':>8s}")
    for name, a, n in rows:
        print(f"{name:44s} {a:7d} {n:7d} {a / n:8.2%}")
    print(f"\nGSM8K steps recovered from prose: {g['steps_recovered_from_prose']}; made explicit (arithmetic "
          f"the solution did in its head): {g['steps_made_explicit']}; answers not computed, by cause: "
          f"{g['uncomputed_causes']}")
    print(f"FinQA answer mismatches: {len(f['answer_mismatches'])}; TAT-QA mismatches: {len(t['mismatches'])}; "
          f"GSM8K step mismatches: {len(g['step_mismatches'])}")
    print(f"TAT-QA conversions that needed a reading choice: {t['warnings']}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "fidelity.json").write_text(json.dumps({"gsm8k": g, "gsm8k_annotations_only": {
        k: v for k, v in base.items() if not isinstance(v, list)}, "finqa": f, "tatqa": t, "seconds": elapsed},
        indent=1))
    plot(rows, OUT / "fidelity.png")
    print(f"\n{elapsed:.0f} s; wrote {OUT / 'fidelity.json'} and {OUT / 'fidelity.png'}")


def plot(rows: list[tuple[str, int, int]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.5))
    names = [r[0].strip() for r in rows][::-1]
    rates = [r[1] / r[2] for r in rows][::-1]
    ax.barh(names, rates, color=["tab:grey" if "baseline" in n else "tab:blue" for n in names])
    ax.axvline(0.995, color="red", lw=0.8, ls="--")
    ax.set_xlim(0.9, 1.0)
    ax.set_xlabel("fraction reproducing the dataset's own value")
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
