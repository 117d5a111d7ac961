"""Serving load test: ``dca serve`` on 127.0.0.1 under concurrent clients, against in-process serial runs.

Run: ``.venv/bin/python bench/serve.py [--config my.yaml --tasks tasks.txt] [--requests 64]``.

The server is a separate ``dca serve`` process (its pipeline built once, models warm); clients are
asyncio tasks on one ``httpx.AsyncClient``, each sending its next request when the previous one
returns. The baseline is the same tasks run serially in this process through ``Pipeline.run``,
so the ratio says what HTTP, JSON and the thread pool cost or gain. Every HTTP answer (value and
sentence) is compared with the serial one for the same task. Writes bench/out/serve.json and .png.
"""
from __future__ import annotations

import argparse
import asyncio
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

# A pipeline with no model in it: what serving itself costs (graph, checkpoints, HTTP, threads).
SCRIPTED = """
name: scripted-lookups
knowledge:
  kind: agents.examples.scripted:Facts
  options:
    facts:
      - "Net revenue: 2015 = $5,829; 2014 = $5,735 (in millions)"
      - "Operating expenses: 2015 = $1,200; 2014 = $1,100 (in millions)"
      - "Employees: 2015 = 13,000; 2014 = 12,500"
logic:
  kind: agents.examples.scripted:Plan
  options:
    steps:
      - "x1 = lookup('net revenue 2015')"
      - "x2 = lookup('net revenue 2014')"
      - "x3 = x1 - x2"
      - "answer = x3 / x2 * 100"
wording: {kind: template}
run: {checkpoint: checkpoints.sqlite, trace_dir: traces}
serve: {max_concurrency: 4}
"""
SCRIPTED_TASKS = [f"By what percent did net revenue change from 2014 to 2015? (request {i})" for i in range(8)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summary(latencies: list[float], wall: float) -> dict[str, float]:
    return {"requests": len(latencies), "wall_s": wall, "throughput_rps": len(latencies) / wall,
            "p50_ms": 1000 * statistics.median(latencies), "p95_ms": 1000 * percentile(latencies, 0.95)}


def serial_baseline(config: Path, tasks: list[str], n: int) -> tuple[dict[str, float], dict[str, object]]:
    """Run ``n`` tasks one after another in this process (after one warm-up run)."""
    from dca.pipeline import Pipeline

    pipe = Pipeline.from_yaml(config)
    pipe.run(tasks[0])  # build the agent and load models, as the server does at start-up
    answers, latencies = {}, []
    start = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        result = pipe.run(tasks[i % len(tasks)])
        latencies.append(time.perf_counter() - t0)
        answers[tasks[i % len(tasks)]] = (result.answer, result.text)
    return summary(latencies, time.perf_counter() - start), answers


def start_server(config: Path, workdir: Path) -> tuple[subprocess.Popen, str, float]:
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "dca.cli", "serve", "--config", str(config), "--port", "0",
                             "--log-level", "warning"], stdout=subprocess.PIPE, text=True, cwd=workdir,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))})
    line = proc.stdout.readline()
    if "ready on " not in line:
        proc.kill()
        raise SystemExit(f"dca serve did not start: {line.strip() or 'no output'}")
    return proc, line.split("ready on ")[1].split()[0], time.perf_counter() - start


async def load(url: str, tasks: list[str], n: int, clients: int) -> tuple[dict[str, float], dict[str, object], int]:
    """``clients`` concurrent clients send ``n`` requests in all; returns the summary, answers, errors."""
    import httpx

    latencies: list[float] = []
    answers: dict[str, object] = {}
    errors = 0
    counter = iter(range(n))

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal errors
        for i in counter:
            task = tasks[i % len(tasks)]
            t0 = time.perf_counter()
            r = await http.post("/run", json={"task": task})
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 200:
                errors += 1
                continue
            body = r.json()
            answers.setdefault(task, (body["answer"], body["text"]))

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as http:
        start = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        wall = time.perf_counter() - start
    return summary(latencies, wall), answers, errors


async def first_event(url: str, task: str) -> float:
    """Seconds from sending ``POST /stream`` to receiving its first server-sent event."""
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=600) as http:
        t0 = time.perf_counter()
        async with http.stream("POST", "/stream", json={"task": task}) as r:
            async for line in r.aiter_lines():
                if line.startswith("event: "):
                    return time.perf_counter() - t0
    raise RuntimeError("the stream ended without an event")


def plot(rows: list[dict], serial: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    xs = [r["clients"] for r in rows]
    a.plot(xs, [r["throughput_rps"] for r in rows], "o-", label="dca serve (HTTP)")
    a.axhline(serial["throughput_rps"], color="gray", ls="--", label="in-process serial")
    a.set(xlabel="concurrent clients", ylabel="runs / s", title="throughput")
    a.legend()
    b.plot(xs, [r["p50_ms"] for r in rows], "o-", label="p50")
    b.plot(xs, [r["p95_ms"] for r in rows], "s-", label="p95")
    b.axhline(serial["p50_ms"], color="gray", ls="--", label="serial p50")
    b.set(xlabel="concurrent clients", ylabel="latency (ms)", title="latency")
    b.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", help="pipeline YAML to serve (default: a scripted pipeline with no model)")
    ap.add_argument("--tasks", help="file of tasks, one per line (required with --config)")
    ap.add_argument("--requests", type=int, default=64, help="requests per concurrency level")
    ap.add_argument("--clients", default="1,4,8,16", help="concurrency levels, comma-separated")
    ap.add_argument("--name", default="serve", help="output name under bench/out/")
    args = ap.parse_args()

    OUT.mkdir(parents=True, exist_ok=True)
    work = OUT / f"{args.name}_work"
    work.mkdir(exist_ok=True)
    if args.config:
        if not args.tasks:
            ap.error("--config needs --tasks")
        config = Path(args.config).resolve()
        tasks = [t.strip() for t in Path(args.tasks).read_text().splitlines() if t.strip()]
    else:
        config = work / "scripted.yaml"
        config.write_text(SCRIPTED)
        tasks = SCRIPTED_TASKS
    os.chdir(work)  # the pipeline's relative checkpoint and trace paths land in the work dir

    serial, serial_answers = serial_baseline(config, tasks, args.requests)
    proc, url, startup = start_server(config, work)
    rows = []
    try:
        ttfe = asyncio.run(first_event(url, tasks[0]))
        for c in [int(x) for x in args.clients.split(",")]:
            stats, answers, errors = asyncio.run(load(url, tasks, args.requests, c))
            same = sum(answers.get(t) == serial_answers.get(t) for t in answers)
            rows.append({"clients": c, **stats, "errors": errors, "answers_equal_serial": f"{same}/{len(answers)}",
                         "throughput_ratio_vs_serial": stats["throughput_rps"] / serial["throughput_rps"],
                         "p95_ratio_vs_serial": stats["p95_ms"] / serial["p95_ms"]})
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    print(f"config: {config.name}; {args.requests} requests per level; server ready {startup:.2f} s after launch; "
          f"first SSE event after {1000 * ttfe:.1f} ms")
    print(f"{'':>22} {'runs/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'x serial':>9} {'errors':>7} {'same answers':>13}")
    print(f"{'in-process serial':>22} {serial['throughput_rps']:8.1f} {serial['p50_ms']:8.1f} {serial['p95_ms']:8.1f} "
          f"{1.0:9.2f} {0:7d} {'-':>13}")
    for r in rows:
        print(f"{'HTTP, ' + str(r['clients']) + ' clients':>22} {r['throughput_rps']:8.1f} {r['p50_ms']:8.1f} "
              f"{r['p95_ms']:8.1f} {r['throughput_ratio_vs_serial']:9.2f} {r['errors']:7d} "
              f"{r['answers_equal_serial']:>13}")
    report = {"config": str(config), "tasks": len(tasks), "server_startup_s": startup, "first_sse_event_s": ttfe,
              "serial": serial, "http": rows, "cpus": os.cpu_count()}
    (OUT / f"{args.name}.json").write_text(json.dumps(report, indent=2))
    plot(rows, serial, OUT / f"{args.name}.png", f"dca serve on 127.0.0.1 ({config.name})")
    print(f"wrote {OUT / (args.name + '.json')} and {OUT / (args.name + '.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
