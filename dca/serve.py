"""``dca serve``: a pipeline over HTTP, built once at start-up with its models warm.

    POST /run                 {"task": "...", "thread_id": null}  -> the Result as JSON
    POST /stream              same body -> text/event-stream, one server-sent event per graph event
    POST /resume/{thread_id}  finish an interrupted run              -> the Result as JSON
    GET  /threads/{thread_id} the checkpointed result of a thread    -> the Result as JSON
    GET  /health              liveness, and what the server has done

The agent is CPU-bound, so runs execute in worker threads (at most ``serve.max_concurrency`` at
once) while the event loop keeps accepting requests. One ``dca.Agent`` serves every request: its
LangGraph checkpointer (SQLite opened with ``check_same_thread=False``) and its models are shared.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
from fastapi import FastAPI, HTTPException
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, field_validator

from dca.agent import Agent, RunNotFound
from dca.pipeline import Pipeline
from dca.types import Event


class RunRequest(BaseModel):
    """The body of ``POST /run`` and ``POST /stream``."""

    task: str = Field(..., min_length=1, description="the question or task")
    thread_id: str | None = Field(None, min_length=1, max_length=128,
                                  description="checkpoint the run under this id (default: a new one)")

    @field_validator("task")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("task must not be blank")
        return v


class _Server:
    """What the endpoints share: the agent, the run limiter and a few counters."""

    def __init__(self, agent: Agent, max_concurrency: int):
        self.agent = agent
        self.limiter = anyio.CapacityLimiter(max_concurrency)
        self.active: set[str] = set()
        self.served = 0
        self.failed = 0
        self.started = time.time()
        self.warmup_seconds = 0.0

    async def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` in a worker thread within the concurrency limit; a failure is a one-line 500."""
        try:
            return await anyio.to_thread.run_sync(fn, limiter=self.limiter)
        except RunNotFound as exc:
            raise HTTPException(404, str(exc)) from None
        except Exception as exc:
            raise HTTPException(500, _one_line(exc)) from exc

    @contextlib.contextmanager
    def claim(self, thread_id: str, *, new: bool) -> Iterator[None]:
        """Reserve a thread id for one request; a thread runs one request at a time."""
        if thread_id in self.active:
            raise HTTPException(409, f"thread {thread_id!r} is already running")
        self.active.add(thread_id)
        try:
            if new and self.agent.result(thread_id) is not None:
                raise HTTPException(409, f"thread {thread_id!r} already exists; POST /resume/{thread_id} "
                                         "to finish it, or use a new thread id")
            yield
            self.served += 1
        except HTTPException as exc:
            self.failed += exc.status_code >= 500
            raise
        except (GeneratorExit, asyncio.CancelledError):  # the client went away: not a failure
            raise
        except BaseException:
            self.failed += 1
            raise
        finally:
            self.active.discard(thread_id)


def create_app(target: Pipeline | Agent, *, max_concurrency: int | None = None,
               warmup: list[str] | None = None) -> FastAPI:
    """A FastAPI app serving ``target``. The agent (and its models) is built before the first
    request; each ``warmup`` task is run once at start-up so lazily loaded models are resident."""
    serve_cfg = target.config.serve if isinstance(target, Pipeline) else None
    limit = max_concurrency or (serve_cfg.max_concurrency if serve_cfg else 4)
    tasks = list(warmup if warmup is not None else (serve_cfg.warmup if serve_cfg else []))
    state: dict[str, _Server] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        start = time.perf_counter()
        agent = await anyio.to_thread.run_sync(_build, target)
        server = _Server(agent, limit)
        for task in tasks:
            await anyio.to_thread.run_sync(lambda t=task: agent.run(t, thread_id=f"warmup-{_new_thread()}"))
        server.warmup_seconds = time.perf_counter() - start
        state["server"] = server
        app.state.dca = server
        yield

    app = FastAPI(title="dca", version=_version(), lifespan=lifespan,
                  summary="Run a dca pipeline: verified steps over your documents.")

    def srv() -> _Server:
        return state["server"]

    @app.get("/health")
    async def health() -> dict[str, Any]:
        s = srv()
        return {"status": "ok", "name": s.agent.name, "running": len(s.active), "served": s.served,
                "failed": s.failed, "max_concurrency": int(s.limiter.total_tokens),
                "warmup_seconds": round(s.warmup_seconds, 3), "uptime": round(time.time() - s.started, 3)}

    @app.post("/run")
    async def run(body: RunRequest) -> dict[str, Any]:
        s = srv()
        tid = body.thread_id or _new_thread()
        with s.claim(tid, new=True):
            result = await s.call(lambda: s.agent.run(body.task, thread_id=tid))
        return result.to_dict()

    @app.post("/stream")
    async def stream(body: RunRequest) -> StreamingResponse:
        s = srv()
        tid = body.thread_id or _new_thread()
        if tid in s.active or s.agent.result(tid) is not None:
            raise HTTPException(409, f"thread {tid!r} is already running or exists; use a new thread id")

        async def events() -> AsyncIterator[str]:
            n = 0
            try:
                with s.claim(tid, new=False):
                    async with s.limiter:
                        async for ev in s.agent.astream(body.task, thread_id=tid):
                            n += 1
                            yield sse(ev, n)
            except HTTPException as exc:  # the response has started: failures become an event
                yield _sse_frame("error", {"detail": exc.detail}, n + 1)
            except Exception as exc:
                yield _sse_frame("error", {"detail": _one_line(exc)}, n + 1)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", "X-Thread-Id": tid})

    @app.post("/resume/{thread_id}")
    async def resume(thread_id: str) -> dict[str, Any]:
        s = srv()
        with s.claim(thread_id, new=False):
            result = await s.call(lambda: s.agent.resume(thread_id))
        return result.to_dict()

    @app.get("/threads/{thread_id}")
    async def thread(thread_id: str) -> dict[str, Any]:
        s = srv()
        result = await anyio.to_thread.run_sync(lambda: s.agent.result(thread_id))
        if result is None:
            raise HTTPException(404, f"no checkpointed run with thread id {thread_id!r}")
        return {**result.to_dict(), "running": thread_id in s.active}

    return app


def _build(target: Pipeline | Agent) -> Agent:
    """The agent with its abilities, models and compiled graph, built once before serving."""
    agent = target.agent if isinstance(target, Pipeline) else target
    _ = agent.graph
    warm(agent)
    return agent


def warm(agent: Agent) -> None:
    """Load what abilities load lazily, before the first request pays for it: ``load()`` on the
    logic and wording abilities that have one (dca's LM abilities do), and one retrieval (which
    opens the store and loads the embedder). A store that cannot answer yet only logs a warning."""
    ab = agent.abilities
    for ability in (ab.logic, ab.wording):
        load = getattr(ability, "load", None)
        if callable(load):
            load()
    if ab.knowledge is not None:
        try:
            ab.knowledge.retrieve("warm-up", 1)
        except Exception as exc:  # an empty or missing store: requests will report it themselves
            logging.getLogger("dca.serve").warning("knowledge store not warmed: %s", _one_line(exc))


def sse(event: Event, n: int) -> str:
    """A graph event as one server-sent event: ``event: <kind>`` and its JSON (with the Result on ``done``)."""
    data = dict(event.data)
    if "result" in data:
        data["result"] = data["result"].to_dict()
    return _sse_frame(event.kind, {"kind": event.kind, "node": event.node, "elapsed": round(event.elapsed, 6),
                                   "data": data}, n)


def _sse_frame(kind: str, payload: dict[str, Any], n: int) -> str:
    return f"id: {n}\nevent: {kind}\ndata: {json.dumps(payload, default=str)}\n\n"


def parse_sse(lines: list[str] | Iterator[str]) -> Iterator[dict[str, Any]]:
    """Read server-sent events back into ``{"event", "id", "data"}`` dicts (for clients and tests)."""
    frame: dict[str, Any] = {}
    for line in lines:
        if not line:
            if frame:
                yield frame
            frame = {}
            continue
        key, _, value = line.partition(": ")
        frame[key] = json.loads(value) if key == "data" else value
    if frame:
        yield frame


def _one_line(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {msg[0] if msg else 'unexpected failure'}"


def _new_thread() -> str:
    return uuid.uuid4().hex[:12]


def _version() -> str:
    from dca import __version__

    return __version__


# --------------------------------------------------------------------------- running a server


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (``port=0`` picks a free port; read it back from ``getsockname()``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port} ({exc.strerror})") from None
    sock.listen(2048)
    return sock


@contextlib.contextmanager
def running_server(app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a background thread; yields the base URL, stops on exit."""
    import uvicorn

    sock = bind(host, port)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="dca-serve", daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the dca server stopped during start-up (see the log above)")
            time.sleep(0.01)
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def run_server(pipeline: Pipeline, *, host: str | None = None, port: int | None = None,
               max_concurrency: int | None = None, log_level: str = "info") -> int:
    """Build ``pipeline`` (models load now), then serve it until interrupted. Prints the URL first."""
    import uvicorn

    cfg = pipeline.config.serve
    host = host or cfg.host
    sock = bind(host, cfg.port if port is None else port)
    url = f"http://{host}:{sock.getsockname()[1]}"
    app = create_app(pipeline, max_concurrency=max_concurrency)
    server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, lifespan="on"))

    async def announce() -> None:
        while not server.started:
            await asyncio.sleep(0.02)
        s = app.state.dca
        print(f"dca serve: {s.agent.name} ready on {url} (built in {s.warmup_seconds:.2f} s; "
              f"{s.limiter.total_tokens:.0f} concurrent runs)", flush=True)

    async def main() -> None:
        watcher = asyncio.create_task(announce())
        try:
            await server.serve(sockets=[sock])
        finally:
            watcher.cancel()

    try:
        asyncio.run(main())
    finally:
        sock.close()
    return 0
