"""OpenTelemetry export for dca runs: one span per run, and under it one span per graph node.

    agent = dca.Agent(logic=..., telemetry={"exporter": "otlp", "endpoint": "http://localhost:4317"})

or in a pipeline YAML (``run.telemetry``). Each node span (``dca.retrieve``, ``dca.propose``,
``dca.execute``, ``dca.verify``, ``dca.word``, ``dca.finish``) carries the node's events as span
events and their fields as ``dca.*`` attributes (position, step text, value, check, reason, the
compute the node spent). Nothing here is imported, and nothing is measured, unless an exporter is
configured: the OpenTelemetry SDK loads on first use.
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from typing import Any

EXPORTERS = ("none", "console", "otlp", "memory")


class Telemetry:
    """An OpenTelemetry tracer provider with one exporter, private to the agents that use it.

    ``exporter`` is ``"console"``, ``"otlp"`` (gRPC, to ``endpoint``), ``"memory"`` (kept in
    process, see ``finished_spans``) or any OpenTelemetry ``SpanExporter`` object. The provider is
    not installed globally, so dca's spans never mix with an application's own set-up by accident.
    """

    def __init__(self, exporter: Any = "console", *, endpoint: str | None = None, service_name: str = "dca",
                 headers: Mapping[str, str] | None = None, insecure: bool = True):
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        self.exporter = _make_exporter(exporter, endpoint=endpoint, headers=headers, insecure=insecure)
        self.provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        # Network exporters batch in a background thread; local ones export as each span ends.
        processor = BatchSpanProcessor if exporter == "otlp" else SimpleSpanProcessor
        self.provider.add_span_processor(processor(self.exporter))
        from dca import __version__

        self.tracer = self.provider.get_tracer("dca", __version__)

    @classmethod
    def of(cls, spec: Any) -> "Telemetry | None":
        """A ``Telemetry`` from a config section, a dict, an exporter name or object; ``None`` for "none"."""
        if spec is None or isinstance(spec, Telemetry):
            return spec
        if hasattr(spec, "model_dump"):  # dca.config.TelemetryConfig
            spec = spec.model_dump()
        if isinstance(spec, str):
            spec = {"exporter": spec}
        if not isinstance(spec, Mapping):
            return cls(spec)  # an OpenTelemetry SpanExporter object
        opts = dict(spec)
        exporter = opts.pop("exporter", "console")
        if exporter == "none":
            return None
        return cls(exporter, **opts)

    def start_run(self, agent: str, thread_id: str, task: str | None) -> "RunSpans":
        """Open the span of one run (``task`` is ``None`` when a checkpointed run resumes)."""
        return RunSpans(self.tracer, agent, thread_id, task)

    def finished_spans(self) -> list[Any]:
        """Spans kept by the ``"memory"`` exporter (oldest first)."""
        get = getattr(self.exporter, "get_finished_spans", None)
        if get is None:
            raise TypeError(f"only the memory exporter keeps spans; this one is {type(self.exporter).__name__}")
        return list(get())

    def flush(self, timeout_ms: int = 5000) -> bool:
        return self.provider.force_flush(timeout_ms)

    def shutdown(self) -> None:
        self.provider.shutdown()


def _make_exporter(exporter: Any, *, endpoint: str | None, headers: Mapping[str, str] | None, insecure: bool):
    if exporter == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter(service_name=None)
    if exporter == "memory":
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        return InMemorySpanExporter()
    if exporter == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise ValueError("run.telemetry.exporter: 'otlp' needs the package "
                             "opentelemetry-exporter-otlp-proto-grpc (pip install it)") from None
        return OTLPSpanExporter(endpoint=endpoint, headers=dict(headers or {}) or None, insecure=insecure)
    if isinstance(exporter, str):
        raise ValueError(f"run.telemetry.exporter: unknown exporter {exporter!r}; "
                         f"expected one of {', '.join(EXPORTERS)}")
    if not callable(getattr(exporter, "export", None)):
        raise TypeError(f"a telemetry exporter needs export(spans); got {type(exporter).__name__}")
    return exporter


class RunSpans:
    """The spans of one run: the run span, and a child span for every node the graph executes."""

    def __init__(self, tracer: Any, agent: str, thread_id: str, task: str | None):
        from opentelemetry import trace

        self._trace = trace
        self.tracer = tracer
        self.thread_id = thread_id
        attrs = {"dca.agent": agent, "dca.thread_id": thread_id, "dca.resumed": task is None}
        if task is not None:
            attrs["dca.task"] = task
        self.run = tracer.start_span("dca.run", attributes=attrs)
        self._context = trace.set_span_in_context(self.run)
        self._finished = False

    def nodes(self, updates: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """Pass LangGraph ``updates`` through, timing each node from the moment it is asked for.

        LangGraph runs a node while its stream is being advanced, so the time between asking for
        the next update and receiving it is the node's own time (with its checkpoint write).
        """
        it = iter(updates)
        while True:
            start = time.time_ns()
            try:
                update = next(it)
            except StopIteration:
                return
            except BaseException as exc:
                self._node_failed(start, exc)
                raise
            end = time.time_ns()
            for node, delta in update.items():
                self._node_span(node, delta if isinstance(delta, dict) else {}, start, end)
            yield update

    def _node_span(self, node: str, delta: dict[str, Any], start: int, end: int) -> None:
        events = delta.get("events", [])
        attrs: dict[str, Any] = {"dca.node": node, "dca.thread_id": self.thread_id,
                                 "dca.events": [e["kind"] for e in events]}
        for key, value in (delta.get("compute") or {}).items():
            if value:
                attrs[f"dca.compute.{key}"] = value
        for ev in events:
            attrs.update(_attributes(ev.get("data", {})))
        span = self.tracer.start_span(f"dca.{node}", context=self._context, attributes=attrs, start_time=start)
        for ev in events:
            span.add_event(ev["kind"], _attributes(ev.get("data", {})), timestamp=end)
        span.end(end_time=end)

    def _node_failed(self, start: int, exc: BaseException) -> None:
        span = self.tracer.start_span("dca.node", context=self._context, start_time=start,
                                      attributes={"dca.thread_id": self.thread_id})
        span.record_exception(exc)
        span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        span.end()

    def result(self, result: Any) -> None:
        """Record the run's outcome on the run span."""
        attrs = {"dca.status": result.status, "dca.steps": len(result.steps), "dca.attempts": len(result.attempts)}
        attrs.update(_attributes({"answer": result.answer, "reason": result.reason}))
        for key, value in result.compute.to_dict().items():
            attrs[f"dca.compute.{key}"] = value
        self.run.set_attributes(attrs)
        self._finished = True

    def end(self, error: BaseException | None = None) -> None:
        if error is not None and not isinstance(error, GeneratorExit):
            self.run.record_exception(error)
            self.run.set_status(self._trace.Status(self._trace.StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        elif not self._finished:
            self.run.set_attribute("dca.status", "stopped")  # the consumer stopped reading before the end
        self.run.end()


def _attributes(data: Mapping[str, Any]) -> dict[str, Any]:
    """Event data as OpenTelemetry attributes (``dca.<key>``): scalars as they are, lists of
    scalars as homogeneous lists, anything else as JSON; ``None`` values are left out."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if value is None or key == "result":
            continue
        if isinstance(value, (bool, int, float, str)):
            out[f"dca.{key}"] = value
        elif isinstance(value, (list, tuple)) and all(isinstance(v, (bool, int, float, str)) for v in value):
            kinds = {type(v) for v in value}
            out[f"dca.{key}"] = list(value) if len(kinds) <= 1 else [str(v) for v in value]
        else:
            out[f"dca.{key}"] = json.dumps(value, default=str)
    return out
