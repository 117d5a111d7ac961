"""Add a check to the verifier: every step must pass it before the next step may build on it.

A check is an object with a ``name`` that returns a ``Verdict``. ``register_check`` also makes it
available to pipeline files by name (``verifier.checks: [parses, executes, percent_range]``).

    python agents/examples/custom_check.py
"""
import dca
from agents.examples.scripted import Facts, Plan
from dca.verifier import register_check


class PercentRange:
    """A percentage outside -100 % .. 1000 % is almost always a units slip (a forgotten division)."""

    name = "percent_range"

    def __call__(self, step: dca.Step, ctx) -> dca.Verdict:
        plausible = not isinstance(step.value, (int, float)) or -100 <= step.value <= 1000
        if step.target == "answer" and "percent" in ctx.task.lower() and not plausible:
            return dca.Verdict.failed(self.name, f"{step.value:g} % is not a plausible percentage")
        return dca.Verdict.passed(self.name)


register_check("percent_range", PercentRange)
agent = dca.Agent(
    knowledge=Facts(["Net revenue: 2015 = $5,829; 2014 = $5,735 (in millions)"]),
    logic=Plan(["x1 = 5829 - 5735", ["answer = x1 * 100", "answer = x1 / 5735 * 100"]]),
    verifier=dca.Verifier(checks=["parses", "executes", "grounded", "percent_range"]),
)

if __name__ == "__main__":
    for step in agent.run("What was the percent change in net revenue from 2014 to 2015?").attempts:
        print("ok " if step.ok else "bad", step.text, "->", step.value if step.ok else step.verdict.reason)
