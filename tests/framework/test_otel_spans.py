"""OpenTelemetry: one span per graph node under one span per run, with attributes that say what happened."""
from __future__ import annotations

import threading
from concurrent import futures

import pytest
from timed_abilities import FlakyPlan, SayWording, SlowPlan

import dca
from agents.examples.scripted import Facts, Plan
from dca.config import ConfigError
from dca.pipeline import Pipeline

FACTS = ["Net revenue: 2015 = $5,829; 2014 = $5,735 (in millions)"]
TASK = "What was the change in net revenue from 2014 to 2015?"


def traced(logic, telemetry="memory", **kw) -> dca.Agent:
    return dca.Agent(logic=logic, knowledge=Facts(FACTS), wording=SayWording(), telemetry=telemetry, **kw)


def test_one_span_per_node_under_the_run_span():
    agent = traced(Plan([["x1 = 9999 - 1", "x1 = 5829 - 5735"], "answer = x1"]))
    events = list(agent.stream(TASK, thread_id="t-spans"))
    spans = agent.telemetry.finished_spans()
    run = [s for s in spans if s.name == "dca.run"]
    nodes = [s for s in spans if s.name != "dca.run"]
    assert len(run) == 1
    assert [s.name for s in nodes] == ["dca.retrieve", "dca.propose", "dca.execute", "dca.verify", "dca.propose",
                                      "dca.execute", "dca.verify", "dca.propose", "dca.execute", "dca.verify",
                                      "dca.word", "dca.finish"]
    # every graph event is recorded on the span of the node that emitted it
    assert sum(len(s.events) for s in nodes) == len(events)
    assert all(s.parent.span_id == run[0].context.span_id for s in nodes)
    assert all(s.context.trace_id == run[0].context.trace_id for s in nodes)
    assert all(run[0].start_time <= s.start_time <= s.end_time <= run[0].end_time for s in nodes)
    rejected = nodes[3].attributes
    assert rejected["dca.events"] == ("rejected", "retried") and rejected["dca.check"] == "grounded"
    assert "9999" in rejected["dca.reason"] and rejected["dca.thread_id"] == "t-spans"
    assert nodes[1].attributes["dca.compute.model_calls"] == 1
    assert nodes[5].attributes["dca.value"] == 94
    r = run[0].attributes
    assert r["dca.status"] == "verified" and r["dca.answer"] == 94 and r["dca.task"] == TASK
    assert r["dca.attempts"] == 3 and r["dca.compute.retrievals"] == 1


def test_node_spans_measure_the_nodes_own_time():
    delay = 0.15
    agent = traced(SlowPlan(["x1 = 5829 - 5735", "answer = x1"], delay=delay))
    for _ in agent.stream(TASK):
        pass
    nodes = [s for s in agent.telemetry.finished_spans() if s.name != "dca.run"]
    seconds = {}
    for s in nodes:
        seconds.setdefault(s.name, []).append((s.end_time - s.start_time) / 1e9)
    assert all(delay <= t < delay + 0.5 for t in seconds["dca.propose"])
    assert max(seconds["dca.execute"]) < delay  # a slow reasoner does not inflate its neighbours


def test_a_failing_node_marks_the_run_span_as_an_error_and_the_resume_gets_its_own_run_span():
    agent = traced(FlakyPlan(["x1 = 5829 - 5735", "answer = x1"], crash_at=1))
    with pytest.raises(RuntimeError, match="reasoner process died"):
        agent.run(TASK, thread_id="t-crash")
    spans = agent.telemetry.finished_spans()
    run = next(s for s in spans if s.name == "dca.run")
    assert run.status.status_code.name == "ERROR" and "reasoner process died" in run.status.description
    failed = [s for s in spans if s.status.status_code.name == "ERROR" and s.name != "dca.run"]
    assert len(failed) == 1 and failed[0].events[0].name == "exception"
    assert agent.resume("t-crash").answer == 94
    runs = [s for s in agent.telemetry.finished_spans() if s.name == "dca.run"]
    assert len(runs) == 2 and runs[1].attributes["dca.resumed"] is True
    assert runs[1].attributes["dca.status"] == "verified" and "dca.task" not in runs[1].attributes


def test_pipeline_yaml_configures_the_exporter(tmp_path):
    text = """
knowledge: {kind: "agents.examples.scripted:Facts", options: {facts: ["Net revenue: 2015 = $5,829; 2014 = $5,735"]}}
logic: {kind: "agents.examples.scripted:Plan", options: {steps: ["x1 = 5829 - 5735", "answer = x1"]}}
wording: {kind: "timed_abilities:SayWording"}
run: {checkpoint: null, trace_dir: null, telemetry: {exporter: memory, service_name: reports-qa}}
"""
    pipe = Pipeline.from_text(text, source="qa.yaml")
    assert pipe.run(TASK).answer == 94
    spans = pipe.agent.telemetry.finished_spans()
    assert len([s for s in spans if s.name == "dca.run"]) == 1 and len(spans) == 1 + 2 * 3 + 3
    assert spans[0].resource.attributes["service.name"] == "reports-qa"
    quiet = Pipeline.from_text(text.replace("exporter: memory", "exporter: none"))
    assert quiet.agent.telemetry is None  # no exporter: no provider, no spans, one `if` per run
    with pytest.raises(ConfigError, match=r"qa.yaml:5 run.telemetry.exporter: must be one of"):
        Pipeline.from_text(text.replace("exporter: memory", "exporter: zipkin"), source="qa.yaml")


class _Collector:
    """An OTLP/gRPC trace collector on 127.0.0.1 that keeps what it receives."""

    def __init__(self):
        import grpc
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

        self.spans: list = []
        self.received = threading.Event()
        collector = self

        class Service(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request, context):
                for resource_spans in request.resource_spans:
                    for scope in resource_spans.scope_spans:
                        collector.spans.extend(scope.spans)
                collector.received.set()
                return trace_service_pb2.ExportTraceServiceResponse()

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Service(), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()


def test_otlp_exporter_sends_the_spans_to_a_collector():
    collector = _Collector()
    try:
        agent = traced(Plan(["answer = 5829 - 5735"]),
                       telemetry={"exporter": "otlp", "endpoint": f"http://127.0.0.1:{collector.port}"})
        assert agent.run(TASK).answer == 94
        assert agent.telemetry.flush(10_000)
        assert collector.received.wait(10)
        names = sorted(s.name for s in collector.spans)
        assert names == sorted(["dca.run", "dca.retrieve", "dca.propose", "dca.execute", "dca.verify",
                                "dca.word", "dca.finish"])
        agent.telemetry.shutdown()
    finally:
        collector.server.stop(0)
