"""Reliability figures: broken configs, hostile steps, and throughput under load (docs/reliability.md).

Run: ``.venv/bin/python bench/reliability.py [--queries 40]``.

- configs: every file of the broken-config corpus (tests/reliability/reliability_corpus.py) through
  ``Pipeline.from_yaml`` and through the ``dca`` command line: one-line errors, tracebacks.
- hostile steps: every line of the hostile corpus, evaluated or rejected 5 times; the slowest CPU time.
- load: 8 agent runs (micro models over a real ``retrieval.Index``) one after another, then in 8
  threads, then through ``asyncio.gather`` of ``Agent.arun``; and queries from one process vs
  two processes on one Chroma store. Throughput is given as a ratio to the serial run measured
  in the same invocation; any answer that differs from the serial one is counted as an error.

Writes bench/out/reliability.json and bench/out/reliability.png.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
OUT = Path(__file__).resolve().parent / "out"
sys.path.insert(0, str(ROOT))


def corpus():
    """The reliability corpora (tests/reliability/reliability_corpus.py): one source for tests and bench."""
    spec = importlib.util.spec_from_file_location("reliability_corpus",
                                                  ROOT / "tests" / "reliability" / "reliability_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # our own data module (the test corpus), not user input
    return module


CORPUS = corpus()
FACTS, TASKS = CORPUS.LOAD_FACTS, CORPUS.LOAD_TASKS


def bench_configs(work: Path) -> dict:
    from dca.cli import main
    from dca.config import ConfigError
    from dca.pipeline import Pipeline

    c = CORPUS
    pickle_dir = work / "pickle-model"
    pickle_dir.mkdir()
    (pickle_dir / "config.json").write_text("{}")
    (pickle_dir / "pytorch_model.bin").write_bytes(b"\x80\x04")
    (work / "w.safetensors").write_bytes(b"\x00")
    cases = c.BROKEN_CONFIGS + c.BUILD_TIME_CONFIGS
    one_line = tracebacks = named = 0
    for i, (_, text, line, field, fragment) in enumerate(cases):
        path = work / f"{i:02d}.yaml"
        path.write_text(text.replace("{pickle_dir}", str(pickle_dir)).replace("{model_file}", str(work / "w.safetensors")))
        if i < len(c.BROKEN_CONFIGS):
            where = f"{path}:{line}" if line else str(path)
            try:
                Pipeline.from_yaml(path)
            except ConfigError as exc:
                named += str(exc).startswith(f"{where} {field}: " if field else f"{where}: ") and fragment in str(exc)
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            main(["ask", "q", "--config", str(path)])
        text_err = err.getvalue()
        one_line += text_err.count("\n") == 1 and fragment in text_err
        tracebacks += "Traceback" in text_err
    return {"broken_configs": len(cases), "from_yaml_named": named, "from_yaml_cases": len(c.BROKEN_CONFIGS),
            "cli_one_line": one_line, "cli_tracebacks": tracebacks}


def bench_steps() -> dict:
    from dca.reasoning.steps import Interpreter, StepError

    lines = CORPUS.HOSTILE_STEPS
    interp = Interpreter()
    env = {"x1": 3.5, "x2": -2, "s": "abc"}
    worst, rejected, times = 0.0, 0, []
    for line in lines:
        for _ in range(5):
            t0 = time.process_time()
            try:
                interp.run(line, env)
                ok = True
            except StepError:
                ok = False
            spent = time.process_time() - t0
            times.append(spent)
            worst = max(worst, spent)
        rejected += not ok
    times.sort()
    return {"hostile_steps": len(lines), "rejected": rejected, "evaluated": len(lines) - rejected,
            "max_ms": round(worst * 1000, 3), "p50_ms": round(times[len(times) // 2] * 1000, 4)}


def _outcome(r) -> tuple:
    return (r.status, r.answer, tuple(s.text for s in r.attempts))


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def bench_agents(store: Path) -> dict:
    from dca.agent import Agent
    from dca.models.registry import resolve_model
    from dca.reasoning.policy import LMPolicy
    from dca.verifier import FailurePolicy
    from dca.wording import LMWording
    from retrieval import Index

    agent = Agent(logic=LMPolicy(resolve_model("dca:micro-policy", progress=False)),
                  wording=LMWording(resolve_model("dca:micro-wording", progress=False)),
                  knowledge=Index(store, "loadtest"), policy=FailurePolicy(retries=2, backtracks=0, max_steps=3))
    for i, t in enumerate(TASKS):  # every task once before timing: models, embedder, first-call costs
        agent.run(t, thread_id=f"warm{i}")

    def serial_pass(tag: str) -> tuple[list, float]:
        t0 = time.perf_counter()
        outcomes = [_outcome(agent.run(t, thread_id=f"{tag}{i}")) for i, t in enumerate(TASKS)]
        return outcomes, time.perf_counter() - t0

    # The serial baseline runs in one worker thread, like the concurrent runs: torch's intra-op
    # threads are set per thread, and on a busy machine the main thread's 2 OpenMP threads made
    # the micro models many times slower than a worker thread's one (measured below as well).
    with ThreadPoolExecutor(max_workers=1) as one:
        serial, t_before = one.submit(serial_pass, "s").result()
    main_thread, t_main = serial_pass("m")

    def threads():
        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(lambda it: agent.run(it[1], thread_id=f"t{it[0]}"), enumerate(TASKS)))

    async def gathered():
        return await asyncio.gather(*(agent.arun(t, thread_id=f"a{i}") for i, t in enumerate(TASKS)),
                                    return_exceptions=True)

    timed = {}
    for name, fn in (("threads", threads), ("asyncio", lambda: asyncio.run(gathered()))):
        t0 = time.perf_counter()
        try:
            results = fn()
        except Exception as exc:  # counted, not fatal: the figure is how often concurrency breaks
            results = [exc] * len(TASKS)
        timed[name] = (time.perf_counter() - t0, results)
    with ThreadPoolExecutor(max_workers=1) as one:
        again, t_after = one.submit(serial_pass, "z").result()
    t_serial = (t_before + t_after) / 2  # the machine is shared: the serial baseline brackets the others
    out = {"runs": len(TASKS), "serial_s": round(t_serial, 3), "serial_before_s": round(t_before, 3),
           "serial_after_s": round(t_after, 3), "serial_repeatable": again == serial == main_thread,
           "serial_main_thread_s": round(t_main, 3), "torch_threads_main": torch_threads()}
    for name, (spent, results) in timed.items():
        errors = sum(isinstance(r, BaseException) for r in results)
        differ = sum(not isinstance(r, BaseException) and _outcome(r) != s for r, s in zip(results, serial))
        out[name] = {"seconds": round(spent, 3), "throughput_ratio": round(t_serial / spent, 3),
                     "errors": errors, "different_answers": differ}
    return out


CHILD = """
import json, sys, time
from retrieval import Index
path, queries = sys.argv[1], json.loads(sys.argv[2])
index = Index(path, "loadtest")
index.search(queries[0], 4)
t0 = time.perf_counter()
hits = [[e.id for e in index.search(q, 4)] for q in queries]
print(json.dumps({"seconds": time.perf_counter() - t0, "hits": hits}))
"""


def bench_processes(store: Path, n: int) -> dict:
    from retrieval import Index

    queries = [TASKS[i % len(TASKS)] + f" (variant {i})" for i in range(n)]
    index = Index(store, "loadtest")
    index.search(queries[0], 4)
    t0 = time.perf_counter()
    serial = [[e.id for e in index.search(q, 4)] for q in queries + queries]  # both processes' work, in one
    t_serial = time.perf_counter() - t0
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, str(store), json.dumps(queries)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs, errors = [], 0
    for p in procs:
        out, err = p.communicate(timeout=600)
        if p.returncode != 0:
            errors += 1
            continue
        outs.append(json.loads(out))
    differ = sum(o["hits"] != serial[:n] for o in outs)
    slowest = max((o["seconds"] for o in outs), default=float("nan"))
    return {"queries_per_process": n, "serial_s": round(t_serial, 3), "two_processes_s": round(slowest, 3),
            "throughput_ratio": round(t_serial / slowest, 3), "errors": errors, "different_answers": differ}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    names = ["8 threads", "8 asyncio", "2 processes"]
    ratios = [result["agents"]["threads"]["throughput_ratio"], result["agents"]["asyncio"]["throughput_ratio"],
              result["store"]["throughput_ratio"]]
    a.bar(names, ratios, color=["tab:blue", "tab:orange", "tab:green"])
    a.axhline(1.0, color="grey", linestyle="--", label="serial, same run")
    a.set_ylabel("throughput / serial throughput")
    a.set_title("load (2 CPU cores)")
    a.legend()
    s = result["steps"]
    b.bar(["p50", "max"], [s["p50_ms"], s["max_ms"]], color="tab:red")
    b.axhline(100, color="grey", linestyle="--", label="limit: 100 ms")
    b.set_yscale("log")
    b.set_ylabel("CPU ms per hostile step")
    b.set_title(f"{s['hostile_steps']} hostile steps")
    b.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--queries", type=int, default=40, help="queries per process in the store test")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    from retrieval import Fact, Index

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        store = work / "store"
        Index(store, "loadtest").add_facts([Fact(f"r{i}", t) for i, t in enumerate(FACTS)], doc_id="report")
        (work / "configs").mkdir()
        result = {"configs": bench_configs(work / "configs"), "steps": bench_steps(),
                  "agents": bench_agents(store), "store": bench_processes(store, args.queries)}
    OUT.mkdir(exist_ok=True)
    (OUT / "reliability.json").write_text(json.dumps(result, indent=2))
    plot(result, OUT / "reliability.png")

    c, s, a, p = result["configs"], result["steps"], result["agents"], result["store"]
    rows = [
        ("broken configs (CLI one line / total)", f"{c['cli_one_line']} / {c['broken_configs']}",
         f"tracebacks {c['cli_tracebacks']}"),
        ("broken configs (from_yaml names file:line field)", f"{c['from_yaml_named']} / {c['from_yaml_cases']}", ""),
        ("hostile steps (rejected / total)", f"{s['rejected']} / {s['hostile_steps']}",
         f"max {s['max_ms']} ms, p50 {s['p50_ms']} ms CPU"),
        ("8 agent runs serial, one worker thread", f"{a['serial_s']} s",
         f"ratio 1.00 (mean of {a['serial_before_s']} s before, {a['serial_after_s']} s after)"),
        ("8 agent runs serial, main thread", f"{a['serial_main_thread_s']} s",
         f"torch threads {a['torch_threads_main']}; same answers {a['serial_repeatable']}"),
        ("8 agent runs in threads", f"{a['threads']['seconds']} s",
         f"ratio {a['threads']['throughput_ratio']:.2f}, errors {a['threads']['errors']}, "
         f"different {a['threads']['different_answers']}"),
        ("8 agent runs via asyncio", f"{a['asyncio']['seconds']} s",
         f"ratio {a['asyncio']['throughput_ratio']:.2f}, errors {a['asyncio']['errors']}, "
         f"different {a['asyncio']['different_answers']}"),
        (f"store queries: 1 process x {2 * p['queries_per_process']}", f"{p['serial_s']} s", "ratio 1.00"),
        (f"store queries: 2 processes x {p['queries_per_process']}", f"{p['two_processes_s']} s",
         f"ratio {p['throughput_ratio']:.2f}, errors {p['errors']}, different {p['different_answers']}"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>14}  notes")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>14}  {note}")
    print(f"wrote {OUT / 'reliability.json'} and {OUT / 'reliability.png'}")


if __name__ == "__main__":
    main()
