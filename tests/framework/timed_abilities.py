"""Abilities with controllable timing and failures, for streaming, serving and resume tests.

They can be named in a pipeline YAML (``kind: timed_abilities:SlowPlan``) when this directory
is on the import path.
"""
from __future__ import annotations

import threading
import time

from agents.examples.scripted import Plan
from dca.abilities import Proposal, ProposeRequest


class SlowPlan(Plan):
    """``Plan`` that thinks for ``delay`` seconds before every proposal (a slow reasoner)."""

    def __init__(self, steps: list, delay: float = 0.2):
        super().__init__(steps)
        self.delay = delay
        self.calls = 0
        self._lock = threading.Lock()

    def propose(self, request: ProposeRequest) -> list[Proposal]:
        with self._lock:
            self.calls += 1
        time.sleep(self.delay)
        return super().propose(request)


class FlakyPlan(SlowPlan):
    """``SlowPlan`` that crashes the first time it is asked for step ``crash_at`` (a killed run)."""

    def __init__(self, steps: list, crash_at: int = 1, delay: float = 0.0):
        super().__init__(steps, delay)
        self.crash_at = crash_at
        self.crashed = False

    def propose(self, request: ProposeRequest) -> list[Proposal]:
        if len(request.steps) == self.crash_at and not self.crashed:
            self.crashed = True
            raise RuntimeError("reasoner process died")
        return super().propose(request)


class ArithmeticPlan:
    """Logic that reads two numbers from the task ("... 12 and 30 ...") and proposes their sum
    then their product; its answer depends on the task, so runs can be told apart."""

    def propose(self, request: ProposeRequest) -> list[Proposal]:
        from dca.numbers import find_numbers

        a, b = [n.value for n in find_numbers(request.task)][:2]
        lines = [f"x1 = {a:g} + {b:g}", f"answer = x1 * {b:g}"]
        return [Proposal(lines=lines[len(request.steps):])]


class SayWording:
    """Wording that states the answer in a fixed sentence."""

    def word(self, task, answer, steps, evidence) -> str:
        return f"The verified answer is {answer}."


class CountingPlan(SlowPlan):
    """``SlowPlan`` that records the most proposals it was ever asked for at the same time."""

    def __init__(self, steps: list, delay: float = 0.1):
        super().__init__(steps, delay)
        self.now = 0
        self.most = 0

    def propose(self, request: ProposeRequest) -> list[Proposal]:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)
        try:
            return super().propose(request)
        finally:
            with self._lock:
                self.now -= 1
