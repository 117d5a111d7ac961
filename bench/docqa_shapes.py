"""The docqa shape head, 5-fold cross-validated on the training questions: the frozen-MiniLM
linear head (MiniLM embedding + cue words + percent convention, logistic regression) against
MiniLM fine-tuned to read the question (``agents.docqa.train.train_shape_reader``) and their even
blend (the reasoner blends them in the proportion its own folds favour).

Same folds, same examples and weights as ``train_reasoner``: the real questions are split into
folds, the synthetic template questions always train. Reported: shape accuracy on the held-out
real questions, per dataset, and the seconds each spends. Training records only (no dev record
is read). A wrong shape is the largest loss bucket on FinQA dev (bench/docqa.py).

Run: ``.venv/bin/python bench/docqa_shapes.py [--folds 5] [--epochs 2]`` (~15 min for the
fine-tuned reader on 2 quiet cores). Writes bench/out/docqa_shapes.json and .png.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

OUT = Path(__file__).resolve().parent / "out"
LINEAR, READER, BLEND = "linear head (frozen MiniLM)", "fine-tuned reader", "even blend of the two"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=float, default=2.0, help="fine-tuning epochs of the reader")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(2)
    from agents.docqa.examples import train_problems
    from agents.docqa.reasoner import Featurizer, blend
    from agents.docqa.train import linear_shape_probs, reader_shape_probs, shape_data

    problems = train_problems()
    if not problems:
        sys.exit("bench/docqa_shapes.py: no FinQA/TAT-QA training records found (see ../shared/data)")
    questions, conventions, y, weights = shape_data(problems, random.Random(0))
    n = len(problems)
    families = [p.family for p in problems]
    probs: dict[str, list[list[float]]] = {}
    seconds: dict[str, float] = {}

    t = time.perf_counter()
    feat = Featurizer()
    x = [feat.question_vector(q, c) for q, c in zip(questions, conventions)]
    probs[LINEAR] = linear_shape_probs(x, y, weights, n, folds=args.folds)
    seconds[LINEAR] = time.perf_counter() - t
    t = time.perf_counter()
    probs[READER] = reader_shape_probs(questions, conventions, y, weights, n, folds=args.folds, epochs=args.epochs)
    seconds[READER] = time.perf_counter() - t
    # the reasoner's build picks the mix from its own folds; here the even blend is shown
    probs[BLEND] = [blend(a, b, 0.5) for a, b in zip(probs[LINEAR], probs[READER])]
    seconds[BLEND] = seconds[LINEAR] + seconds[READER]
    preds = {name: [max(range(len(p)), key=p.__getitem__) for p in rows] for name, rows in probs.items()}

    report: dict[str, Any] = {"folds": args.folds, "epochs": args.epochs, "real_questions": n,
                              "synthetic_questions": len(questions) - n, "results": {}}
    for name, p in preds.items():
        row = {"seconds": round(seconds[name], 1)}
        for fam in ("finqa", "tatqa", "all"):
            idx = [i for i in range(n) if fam in ("all", families[i])]
            row[fam] = {"n": len(idx), "accuracy": sum(p[i] == y[i] for i in idx) / max(1, len(idx))}
        report["results"][name] = row
    base = report["results"][LINEAR]
    print(f"\nshape accuracy, {args.folds}-fold CV on the training questions "
          f"({n} real, {len(questions) - n} synthetic always in training)")
    print(f"{'head':30} {'FinQA':>7} {'TAT-QA':>7} {'all':>7} {'vs linear (all)':>16} {'seconds':>8}")
    for name, row in report["results"].items():
        print(f"{name:30} {row['finqa']['accuracy']:>7.3f} {row['tatqa']['accuracy']:>7.3f} "
              f"{row['all']['accuracy']:>7.3f} {row['all']['accuracy'] / max(1e-9, base['all']['accuracy']):>15.2f}x "
              f"{row['seconds']:>8.0f}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "docqa_shapes.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    plot(report, OUT / "docqa_shapes.png")


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fams = ["finqa", "tatqa", "all"]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    width = 0.8 / len(report["results"])
    for j, (name, row) in enumerate(report["results"].items()):
        xs = [i + j * width for i in range(len(fams))]
        ax.bar(xs, [row[f]["accuracy"] for f in fams], width, label=name)
    ax.set_xticks([i + width * (len(report["results"]) - 1) / 2 for i in range(len(fams))])
    ax.set_xticklabels(["FinQA", "TAT-QA", "all"])
    ax.set_ylim(0, 1)
    ax.set_ylabel("shape accuracy (held-out folds)")
    ax.set_title("docqa shape head: frozen MiniLM + linear vs fine-tuned reader", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    main()
