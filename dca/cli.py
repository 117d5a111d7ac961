"""The ``dca`` command line: index | ask | run | train | eval | demo (and tune-embedder, models).

Only argparse is imported up front so ``dca --help`` is instant; each verb imports what it needs.
Errors are one line (``dca: error: ...``); ``--debug`` shows the traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

DEFAULT_CONFIG = "configs/docqa.yaml"


def _offline_env() -> None:
    # No model or dataset may come from a hub at run time: fail at once instead of retrying.
    for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(key, "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


# --------------------------------------------------------------------------- ask / run


def _load_pipeline(args: argparse.Namespace):
    from dca.config import dotted_overrides
    from dca.pipeline import Pipeline

    overrides = dotted_overrides(args.set or [])
    return Pipeline.from_yaml(args.config, overrides)


def _print_result(result, console) -> None:
    from rich.markup import escape

    from dca.reasoning.steps import format_value

    mark = "[green]verified[/green]" if result.verified else "[red]unverified[/red]"
    console.print(f"[bold]Answer:[/bold] {escape(result.text)}  ({mark})")
    if result.attempts:
        console.print("[bold]Steps:[/bold]")
        for s in result.attempts:
            ok = s.verdict is not None and s.verdict.ok
            sym = "[green]✓[/green]" if ok else "[red]✗[/red]"
            value = format_value(s.value) if s.error is None else s.error
            line = f"  {sym} {escape(s.text or '(no step)')}  → {escape(str(value))}"
            if not ok and s.verdict is not None and s.verdict.reason:
                line += f"  [dim]({escape(s.verdict.check)}: {escape(s.verdict.reason)})[/dim]"
            console.print(line)
    if result.evidence:
        console.print("[bold]Sources:[/bold]")
        for i, e in enumerate(result.evidence, 1):
            text = e.text if len(e.text) < 160 else e.text[:157] + "..."
            console.print(f"  [{i}] {escape(e.cite())}: {escape(text)}")
    c = result.compute
    console.print(f"[dim]compute: {c.model_calls} model calls, {c.policy_samples} samples, {c.tokens} tokens, "
                  f"{c.retrievals} retrievals, {c.wall_time:.2f} s · thread {result.thread_id}[/dim]")


def cmd_ask(args: argparse.Namespace) -> int:
    from rich.console import Console

    console = Console(highlight=False)
    pipe = _load_pipeline(args)
    if args.resume:
        result = pipe.resume(args.resume)
    elif args.stream:
        result = None
        for ev in pipe.stream(args.question, thread_id=args.thread):
            if ev.kind == "done":
                result = ev.data["result"]
                continue
            if not args.json:
                console.print(f"[dim]{ev.elapsed:6.2f}s[/dim] {ev.kind:<11} " + _event_text(ev))
    else:
        result = pipe.run(args.question, thread_id=args.thread)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        _print_result(result, console)
    return 0 if result.verified else 1


def _event_text(ev) -> str:
    from rich.markup import escape

    d = ev.data
    if ev.kind == "retrieved":
        return f"{len(d.get('ids', []))} chunks"
    if ev.kind == "proposed":
        return escape(" | ".join(d.get("lines", [])))
    if ev.kind == "executed":
        return escape(f"{d.get('text')} → {d.get('error') or d.get('value')}")
    if ev.kind in ("verified",):
        return escape(str(d.get("text")))
    if ev.kind == "rejected":
        return escape(f"{d.get('text', '')} ({d.get('check', '')}: {d.get('reason', '')})")
    if ev.kind == "retried":
        return f"attempt {d.get('attempt')} at temperature {d.get('temperature')}"
    if ev.kind == "backtracked":
        return escape(f"undo {d.get('undone')}")
    if ev.kind == "worded":
        return escape(str(d.get("text")))
    return escape(json.dumps({k: v for k, v in d.items() if k != "result"}, default=str))


def _read_tasks(path: str) -> list[dict[str, Any]]:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{path}: file not found")
    tasks = []
    for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        if p.suffix == ".jsonl":
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{i}: invalid JSON ({exc.msg})") from None
            task = row.get("task") or row.get("question") if isinstance(row, dict) else None
            if not isinstance(task, str) or not task.strip():
                raise ValueError(f"{path}:{i}: expected an object with a 'task' (or 'question') string")
            tasks.append({**row, "task": task})
        else:
            tasks.append({"task": line.strip()})
    return tasks


def cmd_run(args: argparse.Namespace) -> int:
    from dca.progress import ProgressBar

    pipe = _load_pipeline(args)
    tasks = _read_tasks(args.tasks)
    out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout
    verified = 0
    try:
        with ProgressBar(len(tasks), "running", enabled=args.out is not None) as bar:
            for row in tasks:
                result = pipe.run(row["task"])
                verified += result.verified
                out.write(json.dumps({"id": row.get("id"), **result.to_dict()}, default=str) + "\n")
                out.flush()
                bar.advance()
    finally:
        if args.out:
            out.close()
    print(f"{verified}/{len(tasks)} verified" + (f"; results in {args.out}" if args.out else ""), file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- train / eval / demo / models


def cmd_train(args: argparse.Namespace) -> int:
    if args.what == "sft":
        from dca.reasoning.sft import run_train_sft

        return run_train_sft(args.config, resume=not args.fresh)
    if args.what == "rl":
        from dca.reasoning.rl import run_train_rl

        return run_train_rl(args.config, resume=not args.fresh)
    from dca.reasoning.scorer import run_train_scorer

    return run_train_scorer(args.config, resume=not args.fresh)


def cmd_eval(args: argparse.Namespace) -> int:
    from dca.evaluate import run_eval

    return run_eval(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from dca.demo import run_demo

    return run_demo(args)


def cmd_serve(args: argparse.Namespace) -> int:
    from dca.serve import run_server

    return run_server(_load_pipeline(args), host=args.host, port=args.port, max_concurrency=args.max_concurrency,
                      log_level=args.log_level)


def cmd_docs(args: argparse.Namespace) -> int:
    from dca.docgen import write_docs

    return write_docs(args.target, out=args.out, check=args.check)


def cmd_models(args: argparse.Namespace) -> int:
    from dca.models.registry import resolve_model

    for name in args.names:
        print(f"{name} -> {resolve_model(name)}")
    return 0


# --------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="dca", description="dca: agents that divide abilities and verify every step.")
    p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    p.add_argument("--version", action="version", version="dca 0.1.0")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def config_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--config", "-c", default=DEFAULT_CONFIG, help=f"pipeline YAML (default {DEFAULT_CONFIG})")
        sp.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a config field, e.g. --set logic.strategy=beam (repeatable)")

    _register_retrieval(sub)

    ask = sub.add_parser("ask", help="answer one question with verified steps")
    ask.add_argument("question", nargs="?", default=None, help="the question (omit with --resume)")
    config_args(ask)
    ask.add_argument("--json", action="store_true", help="print the Result as JSON")
    ask.add_argument("--stream", action="store_true", help="show the graph's events as they happen")
    ask.add_argument("--thread", help="thread id to checkpoint the run under")
    ask.add_argument("--resume", metavar="THREAD", help="resume an interrupted run by thread id")
    ask.set_defaults(func=cmd_ask)

    run = sub.add_parser("run", help="run a pipeline over a file of tasks (.txt lines or .jsonl)")
    run.add_argument("tasks", help="tasks file")
    config_args(run)
    run.add_argument("--out", help="write results as JSONL here (default: stdout)")
    run.set_defaults(func=cmd_run)

    train = sub.add_parser("train", help="train the reasoner: sft | rl | scorer")
    train.add_argument("what", choices=["sft", "rl", "scorer"])
    train.add_argument("--config", "-c", required=True, help="training recipe YAML")
    train.add_argument("--fresh", action="store_true", help="ignore existing checkpoints and start over")
    train.set_defaults(func=cmd_train)

    ev = sub.add_parser("eval", help="evaluate a pipeline on a task family")
    config_args(ev)
    ev.add_argument("--family", required=True, help="task family (gsm8k, finqa, tatqa, synthetic, countdown, ...)")
    ev.add_argument("--split", default="dev")
    ev.add_argument("-n", type=int, default=50, help="number of problems")
    ev.add_argument("--out", help="write per-problem results as JSONL")
    ev.set_defaults(func=cmd_eval)

    demo = sub.add_parser("demo", help="index real report pages and answer real questions with verified steps")
    demo.add_argument("--questions", type=int, default=8, help="how many questions to ask")
    demo.add_argument("--workdir", default=".dca/demo", help="where the demo writes documents and its store")
    demo.add_argument("--json", action="store_true", help="also write the results as JSON to the workdir")
    demo.add_argument("--reasoner", choices=["docqa", "lm"], default="docqa",
                      help="docqa: the report-QA agent (agents/docqa); lm: a causal LM policy and wording model")
    demo.add_argument("--policy", default="dca:tiny-policy", help="with --reasoner lm: policy model name or path")
    demo.add_argument("--wording", default="dca:tiny-wording", help="with --reasoner lm: wording model name or path")
    demo.set_defaults(func=cmd_demo)

    models = sub.add_parser("models", help="build (if needed) and locate models, e.g. dca:tiny-policy")
    models.add_argument("names", nargs="+")
    models.set_defaults(func=cmd_models)
    _register_serve(sub, config_args)
    _register_docs(sub)
    return p


def _register_serve(sub, config_args: Callable[[argparse.ArgumentParser], None]) -> None:
    serve = sub.add_parser("serve", help="serve a pipeline over HTTP (run, stream events, resume threads)")
    config_args(serve)
    serve.add_argument("--host", help="address to listen on (default: serve.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="TCP port, 0 for any free one (default: serve.port, 8000)")
    serve.add_argument("--max-concurrency", type=int, help="runs executed at once (default: serve.max_concurrency)")
    serve.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    serve.set_defaults(func=cmd_serve)


def _register_docs(sub) -> None:
    docs = sub.add_parser("docs", help="generate the reference docs from the code (config | api | all)")
    docs.add_argument("target", choices=["config", "api", "all"], help="which reference to generate")
    docs.add_argument("--check", action="store_true", help="only check the file is up to date (exit 1 if stale)")
    docs.add_argument("--out", help="write here instead of docs/<target>.md")
    docs.set_defaults(func=cmd_docs)


def _register_retrieval(sub) -> None:
    """The retrieval package adds its verbs (index, tune-embedder, ...)."""
    try:
        from retrieval.cli import register
    except ImportError:  # retrieval is part of this distribution; absent only in a broken install
        return
    register(sub)


def main(argv: list[str] | None = None) -> int:
    _offline_env()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    if args.command == "ask" and not args.question and not args.resume:
        parser.error("ask needs a QUESTION (or --resume THREAD)")
    return _guarded(args.func, args)


def _guarded(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        print("dca: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # every error is one line unless --debug
        if args.debug:
            raise
        print(f"dca: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except SystemExit:
        raise
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("dca: interrupted", file=sys.stderr)
        return 130
    except BaseException as exc:  # e.g. a RecursionError's or a library's own BaseException subclass
        if args.debug:
            raise
        print(f"dca: error: {type(exc).__name__} (run with --debug for the traceback)", file=sys.stderr)
        return 2


def one_line(exc: BaseException) -> str:
    """An exception as a single line; internal errors name their type and point at --debug."""
    from dca.config import ConfigError, with_line

    if isinstance(exc, ConfigError):
        exc = with_line(exc)
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, KeyError) and msg.startswith(("'", '"')):
        msg = msg.strip("'\"")
    expected = (ConfigError, ValueError, FileNotFoundError, PermissionError, KeyError, TypeError, OSError)
    if isinstance(exc, expected) and msg:
        return msg
    return f"{type(exc).__name__}: {msg or 'unexpected failure'} (run with --debug for the traceback)"


if __name__ == "__main__":
    sys.exit(main())
