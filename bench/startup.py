"""Start-up costs: ``import dca``, ``dca --help``, ``dca ask`` cold and warm, and time to the first event.

Run: ``.venv/bin/python bench/startup.py [--config my.yaml --question "..."] [--repeat 3]``.

Cold numbers are fresh processes (the median of ``--repeat``); warm numbers are a second question
in the same process, after the pipeline (and its models) were built by the first. Everything is
also given as a ratio to a bare ``python -c pass`` measured in the same run. Without ``--config``
the benchmark indexes a small report with dca's default embedder and asks about it with dca's
trained tiny models when they are built here, else the micro ones (the table says which).
Writes bench/out/startup.json and bench/out/startup.png.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).resolve().parent / "out"
sys.path.insert(0, str(ROOT))
PY = sys.executable
DCA = str(Path(PY).with_name("dca"))

REPORT = """# Entergy annual report (excerpt)

Net revenue grew on higher retail sales and rate actions.

| item | 2015 | 2014 |
|---|---|---|
| net revenue | 5,829 | 5,735 |
| operating expenses | 1,200 | 1,100 |
"""
QUESTIONS = ["What was the change in net revenue from 2014 to 2015?",
             "What was the change in operating expenses from 2014 to 2015?"]


def pick_models() -> tuple[str, str]:
    """dca's trained tiny models if they are built here, else the micro ones (built now, ~30 s once),
    so no measured run includes training."""
    from dca.models.registry import recipe_dir, resolve_model

    if all((recipe_dir(name) / "config.json").exists() for name in ("tiny-policy", "tiny-wording")):
        policy, wording = "dca:tiny-policy", "dca:tiny-wording"
    else:
        policy, wording = "dca:micro-policy", "dca:micro-wording"
    for name in (policy, wording):
        resolve_model(name, progress=False)
    return policy, wording


def prepare(work: Path) -> tuple[Path, str]:
    """A folder of documents, its index, and a pipeline file over them."""
    from retrieval import Index

    docs = work / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    (docs / "report.md").write_text(REPORT)
    Index(work / "index", "reports").add(docs, progress=False)
    policy, wording = pick_models()
    cfg = work / "pipeline.yaml"
    cfg.write_text(f"name: startup\nknowledge: {{path: {work / 'index'}, collection: reports}}\n"
                   f"logic: {{kind: lm, model: {policy}}}\nwording: {{kind: lm, model: {wording}}}\n"
                   f"run: {{checkpoint: {work / 'runs.sqlite'}, trace_dir: null}}\n")
    which = f"{policy} + {wording}, torch threads {os.environ.get('DCA_TORCH_THREADS', '2 (default)')}"
    return cfg, which


def wall(cmd: list[str], repeat: int) -> float:
    """Median wall time of a command in fresh processes."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True, cwd=ROOT)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def ask_cold(cfg: Path, question: str, repeat: int) -> dict[str, float]:
    """``dca ask --stream`` in fresh processes: total, first event and first step event (median)."""
    rows = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.Popen([DCA, "ask", question, "--stream", "--config", str(cfg)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=ROOT)
        first = step = None
        for line in proc.stdout:
            words = line.split()
            now = time.perf_counter() - t0
            if first is None and len(words) > 1 and words[1] == "retrieved":
                first = now
            if step is None and len(words) > 1 and words[1] == "proposed":
                step = now
        proc.wait()
        total = time.perf_counter() - t0
        if first is None or step is None:
            raise SystemExit(f"dca ask printed no events: {proc.stderr.read().strip()[-400:]}")
        rows.append((total, first, step))
    return {"total": statistics.median(r[0] for r in rows), "first_event": statistics.median(r[1] for r in rows),
            "first_step_event": statistics.median(r[2] for r in rows)}


def ask_in_process(cfg: Path) -> dict[str, float]:
    """The first and a second question in one process (``Pipeline.stream``): what staying warm saves."""
    code = f"""
import json, sys, time
t0 = time.perf_counter()
from dca.pipeline import Pipeline
pipe = Pipeline.from_yaml({str(cfg)!r})
out = {{}}
for name, q in (("first", {QUESTIONS[0]!r}), ("second", {QUESTIONS[1]!r})):
    start = time.perf_counter() if name == "second" else t0
    first = step = None
    for ev in pipe.stream(q):
        now = time.perf_counter() - start
        first = first if first is not None else now
        if step is None and ev.kind == "proposed":
            step = now
    out[name] = {{"total": time.perf_counter() - start, "first_event": first, "first_step_event": step}}
print(json.dumps(out))
"""
    done = subprocess.run([PY, "-c", code], capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise SystemExit(done.stderr.strip()[-600:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def plot(rows: list[tuple[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1))
    names = [r[0] for r in rows][::-1]
    values = [r[1] for r in rows][::-1]
    ax.barh(names, values, color="#4c72b0")
    ax.axvline(0.5, color="red", ls="--", lw=1, label="0.5 s target (import dca, dca --help)")
    ax.set_xscale("log")
    ax.set_xlabel("seconds (log scale)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", help="pipeline YAML to ask with (default: a small report indexed here)")
    ap.add_argument("--question", help="question for --config")
    ap.add_argument("--repeat", type=int, default=3, help="fresh processes per cold measurement (median)")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)

    if args.config:
        cfg, which = Path(args.config).resolve(), "from --config"
        if args.question:
            QUESTIONS[0] = QUESTIONS[1] = args.question
    else:
        cfg, which = prepare(OUT / "startup_work")

    bare = wall([PY, "-c", "pass"], max(args.repeat, 5))
    imp = wall([PY, "-c", "import dca"], max(args.repeat, 5))
    helps = wall([DCA, "--help"], max(args.repeat, 5))
    cold = ask_cold(cfg, QUESTIONS[0], args.repeat)
    warm = ask_in_process(cfg)

    rows = [
        ("python -c pass (baseline)", bare),
        ("import dca", imp),
        ("dca --help", helps),
        ("dca ask, cold: first event", cold["first_event"]),
        ("dca ask, cold: first step event", cold["first_step_event"]),
        ("dca ask, cold: total", cold["total"]),
        ("in process, 1st question: first step event", warm["first"]["first_step_event"]),
        ("in process, 1st question: total", warm["first"]["total"]),
        ("in process, 2nd question (warm): first event", warm["second"]["first_event"]),
        ("in process, 2nd question (warm): first step event", warm["second"]["first_step_event"]),
        ("in process, 2nd question (warm): total", warm["second"]["total"]),
    ]
    print(f"models: {which}; pipeline: {cfg}")
    print(f"{'measurement':<52} {'seconds':>9} {'x bare python':>14}")
    for name, value in rows:
        print(f"{name:<52} {value:9.3f} {value / bare:14.1f}")
    verdict = "met" if imp < 0.5 and helps < 0.5 else "MISSED"
    print(f"target import dca and dca --help < 0.5 s: {verdict}; "
          f"warm question is {warm['first']['total'] / warm['second']['total']:.0f}x faster than the first")
    report = {"models": which, "config": str(cfg), "seconds": dict(rows), "cold_ask": cold, "in_process": warm,
              "ratio_to_bare_python": {k: v / bare for k, v in rows}, "target_0_5s": verdict}
    (OUT / "startup.json").write_text(json.dumps(report, indent=2))
    plot(rows, OUT / "startup.png")
    print(f"wrote {OUT / 'startup.json'} and {OUT / 'startup.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
