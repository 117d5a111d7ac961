"""Give the reasoner a new step function: a typed Python function on the step language's allowlist.

After ``@dca.tool``, ``x1 = cagr(4800, 5829, 3)`` is a valid step for every agent in the process.
Arguments are checked against the signature, so a step that passes text where a number belongs
is rejected by the verifier and the reasoner is asked again.

    python agents/examples/custom_tool.py
"""
import dca
from agents.examples.scripted import Facts, Plan


@dca.tool
def cagr(start: float, end: float, years: int) -> float:
    """Compound annual growth rate from start to end over some years, in percent."""
    return ((end / start) ** (1 / years) - 1) * 100


agent = dca.Agent(
    knowledge=Facts(["Net revenue: 2012 = $4,800; 2015 = $5,829 (in millions)"]),
    logic=Plan([["x1 = cagr('4800', 5829, 3)", "x1 = cagr(4800, 5829, 3)"], "answer = round(x1, 2)"]),
)

if __name__ == "__main__":
    result = agent.run("What was the compound annual growth rate of net revenue from 2012 to 2015?")
    for step in result.attempts:
        print("ok " if step.ok else "bad", step.text, "->", step.value if step.ok else step.verdict.reason)
    print(result.text)
