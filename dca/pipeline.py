"""``dca.Pipeline``: an agent described by a YAML file (``configs/docqa.yaml``).

    pipe = dca.Pipeline.from_yaml("configs/docqa.yaml")
    result = pipe.run("What was the change in total sales from 2018 to 2019?")

The config names each ability by kind (a built-in one or ``package.module:ClassName``); the
pipeline builds them once, lazily, and hands them to a ``dca.Agent``.
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from dca.agent import Agent
from dca.config import ConfigError, PipelineConfig, load_config, parse_config
from dca.types import Event, Result
from dca.verifier import FailurePolicy, Verifier


class Pipeline:
    """A configured agent. Abilities (and their models) load on first use and are reused."""

    def __init__(self, config: PipelineConfig, *, source: str | None = None):
        self.config = config
        self.source = source
        self._agent: Agent | None = None

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: dict[str, Any] | None = None) -> "Pipeline":
        """Load and validate a pipeline file; raises ``ConfigError`` naming file, line and field."""
        return cls(load_config(path, overrides), source=str(path))

    @classmethod
    def from_text(cls, text: str, *, source: str | None = None) -> "Pipeline":
        return cls(parse_config(text, file=source), source=source)

    # ------------------------------------------------------------------ building
    def _error(self, field: str, message: str) -> ConfigError:
        return ConfigError(message, file=self.source, field=field)

    def build_knowledge(self):
        k = self.config.knowledge
        if k.kind == "none":
            return None
        if k.kind == "index":
            from retrieval import Index

            return Index(k.path, k.collection, embedder=k.embedder, mode=k.mode, server=k.server,
                         reranker=k.reranker, int8=k.int8)
        return self._custom("knowledge", k.kind, k.options)

    def build_logic(self):
        c = self.config.logic
        if c.kind == "lm":
            from dca.reasoning.policy import LMPolicy

            if c.strategy in ("greedy", "sample"):
                return LMPolicy(c.model, max_new_tokens=c.max_new_tokens, max_facts=c.max_facts, **c.options)
            from dca.reasoning.search import ScorerMissing, make_strategy, split_options

            # options LMPolicy takes go to it; the rest are the strategy's (width, expand, temperature, ...)
            mine, theirs = split_options(c.options, LMPolicy)
            policy = LMPolicy(c.model, max_new_tokens=c.max_new_tokens, max_facts=c.max_facts, **mine)
            try:
                return make_strategy(c.strategy, policy, samples=c.samples, scorer=c.scorer, seed=c.seed,
                                     verifier=self.build_verifier(), **theirs)
            except ScorerMissing as exc:
                raise self._error("logic.scorer", str(exc)) from None
            except ValueError as exc:
                raise self._error("logic.options", str(exc)) from None
        return self._custom("logic", c.kind, c.options)

    def build_wording(self):
        c = self.config.wording
        if c.kind == "none":
            return None
        if c.kind == "template":
            from dca.wording import TemplateWording

            return TemplateWording()
        if c.kind == "lm":
            from dca.wording import LMWording

            return LMWording(c.model, max_new_tokens=c.max_new_tokens, **c.options)
        return self._custom("wording", c.kind, c.options)

    def build_verifier(self) -> Verifier:
        v = self.config.verifier
        policy = FailurePolicy(retries=v.retries, temperatures=list(v.temperatures), backtracks=v.backtracks,
                               max_steps=v.max_steps)
        from dca.verifier import check_factory, make_check

        checks = []
        for i, name in enumerate(v.checks):
            try:
                factory = check_factory(name)
            except ValueError as exc:
                raise self._error(f"verifier.checks[{i}]", str(exc)) from None
            try:
                checks.append(make_check(name, v.options.get(name), factory))
            except ValueError as exc:
                raise self._error(f"verifier.options.{name}", str(exc)) from None
        return Verifier(checks=checks, constants=v.constants, lookup_min_score=v.lookup_min_score, policy=policy,
                        rules=v.rules)

    def _custom(self, section: str, kind: str, options: dict[str, Any]):
        from dca._lazy import import_attr

        try:
            factory = import_attr(kind)
        except ValueError as exc:
            raise self._error(f"{section}.kind", str(exc)) from None
        try:
            return factory(**options)
        except TypeError as exc:
            raise self._error(f"{section}.options", f"{kind} rejected the options: {exc}") from None

    @property
    def agent(self) -> Agent:
        """The agent, built on first use (models load here, once)."""
        if self._agent is None:
            run = self.config.run
            self._agent = Agent(
                logic=self.build_logic(), knowledge=self.build_knowledge(), wording=self.build_wording(),
                verifier=self.build_verifier(), top_k=self.config.knowledge.top_k,
                checkpoint=run.checkpoint, trace_dir=run.trace_dir, seed=self.config.logic.seed,
                name=self.config.name, recursion_limit=run.max_graph_steps,
                telemetry=run.telemetry,
            )
        return self._agent

    # ------------------------------------------------------------------ running
    def run(self, task: str, *, thread_id: str | None = None) -> Result:
        return self.agent.run(task, thread_id=thread_id)

    def stream(self, task: str, *, thread_id: str | None = None) -> Iterator[Event]:
        return self.agent.stream(task, thread_id=thread_id)

    def resume(self, thread_id: str) -> Result:
        return self.agent.resume(thread_id)

    async def arun(self, task: str, *, thread_id: str | None = None) -> Result:
        return await self.agent.arun(task, thread_id=thread_id)

    def astream(self, task: str, *, thread_id: str | None = None) -> AsyncIterator[Event]:
        return self.agent.astream(task, thread_id=thread_id)
