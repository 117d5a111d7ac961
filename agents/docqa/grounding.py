"""Fact-level grounding: every operand of a step must be a number of a retrieved fact.

The verifier's ``grounded`` check accepts a number found anywhere in the task or the evidence
(and derived forms of percentages); report questions need more: each literal a step computes
with must be stated by one fact, after normalising scale ("$5.8 billion" is the 5,800 of a table
"in millions") and sign ("(1,234)" is -1234, written either way). The facts found are recorded on
the step, so the answer cites exactly them.
"""
from __future__ import annotations

import ast

from agents.docqa.cells import Cell, evidence_cells, same_number
from dca.reasoning.steps import format_value
from dca.types import Step, Verdict
from dca.verifier import CheckContext, names_verdict

# Numbers a step may write without a fact: identity, percent, and the count an average divides by.
FREE = (0.0, 1.0, 100.0)


def _summed_terms(ctx: CheckContext) -> set[int]:
    """How many terms the earlier steps add up (``x1 = a + b + c`` -> 3): an average divides by it."""
    counts = set()
    for s in ctx.steps:
        tree = ctx.verifier.tree_of(s)
        n, node = 1, tree
        while isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            n, node = n + 1, node.left
        if n > 1:
            counts.add(n)
    return counts


def citing_facts(x: float, cells: list[Cell]) -> list[str]:
    """The ids of the facts that state ``x`` (scale and sign normalised), those writing it as is first."""
    exact = [c.fact_id for c in cells if abs(abs(c.value) - abs(x)) <= 1e-9 * max(1.0, abs(x))]
    return list(dict.fromkeys(exact + [c.fact_id for c in cells if same_number(x, c)]))


def _heading_facts(x: float, tree: ast.AST, cells: list[Cell]) -> list[str]:
    """The facts whose column headings name year ``x``, when the step answers with it
    (``answer = 2019 if 592 > 519 else 2018``: the years are what the comparison picks between)."""
    if not isinstance(tree, ast.IfExp) or not float(x).is_integer():
        return []
    picks = [n.value for n in (tree.body, tree.orelse) if isinstance(n, ast.Constant)]
    if x not in picks:
        return []
    return list(dict.fromkeys(c.fact_id for c in cells if c.kind == "table" and int(x) in c.years))


class FactGrounded:
    """Check ``fact_grounded``: each literal operand is stated by a retrieved fact (or is an
    earlier step's value, 0, 1, 100, or the count of terms an earlier step summed); a year a
    comparison answers with must head a column of a retrieved table row."""

    name = "fact_grounded"

    def __call__(self, step: Step, ctx: CheckContext) -> Verdict:
        early = names_verdict(self.name, ctx)
        if early is not None:
            return early
        cells = evidence_cells(ctx.evidence)
        counts = _summed_terms(ctx)
        values = ctx.earlier_values()
        cited: list[str] = []
        for x in ctx.parsed.numbers:
            if abs(x) in FREE or any(abs(abs(x) - abs(v)) < 1e-9 for v in values):
                continue
            if float(x).is_integer() and int(abs(x)) in counts:
                continue
            found = citing_facts(x, cells) or _heading_facts(x, ctx.parsed.tree, cells)
            if not found:
                return Verdict.failed(self.name, f"operand {format_value(x)} is not stated by any retrieved fact")
            cited.extend(found[:1])
        for fid in cited:
            if fid not in step.evidence_ids:
                step.evidence_ids.append(fid)
        return Verdict.passed(self.name)
