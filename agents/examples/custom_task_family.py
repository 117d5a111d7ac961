"""Add a task family: problems with gold step traces and an exact scorer, for training and evaluation.

Registered families are read by name wherever problems are needed (training recipes'
``tasks: [{family: unit_price}]``, ``dca eval --family unit_price``). Here every gold trace is
also run through a verifying agent, which is what makes it usable as training data.

    python agents/examples/custom_task_family.py
"""
import random

import dca
from agents.examples.scripted import Plan
from dca.reasoning.tasks.base import Problem, get_family, register_family


class UnitPrice:
    """'4 notebooks cost 36 dollars. How much do 7 cost?', with the two-step gold trace."""

    name = "unit_price"

    def problems(self, split: str = "train", n: int | None = None, seed: int = 0):
        rng = random.Random(f"{split}/{seed}")  # a separate, reproducible stream per split
        for i in range(n or 1000):
            items, price, wanted = rng.randint(2, 9), rng.randint(2, 40), rng.randint(11, 30)
            yield Problem(f"{split}-{i}", f"{items} notebooks cost {items * price} dollars. How much do {wanted} cost?",
                          wanted * price, gold=[f"x1 = {items * price} / {items}", f"answer = x1 * {wanted}"])

    def score(self, problem: Problem, answer) -> bool:
        return isinstance(answer, (int, float)) and abs(answer - problem.answer) < 1e-6


register_family("unit_price", UnitPrice)

if __name__ == "__main__":
    for problem in get_family("unit_price").problems("train", n=3):
        result = dca.Agent(logic=Plan(problem.gold)).run(problem.question)  # the verifier checks the gold trace
        print(problem.question, "->", result.answer, result.status, UnitPrice().score(problem, result.answer))
