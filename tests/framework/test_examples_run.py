"""agents/examples/: each extension runs as a script, does what it claims, and is under 20 lines of code."""
from __future__ import annotations

import ast
import importlib
import io
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

import dca
from agents.examples.scripted import Facts, Plan
from dca.pipeline import Pipeline
from dca.verifier import FailurePolicy

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "agents" / "examples"
NAMES = ["custom_tool", "custom_check", "custom_ability", "custom_task_family"]


def code_lines(path: Path) -> int:
    """Lines holding code: no blank lines, comments or docstrings."""
    src = path.read_text()
    docs: set[int] = set()
    for node in ast.walk(ast.parse(src)):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            docs.update(range(body[0].lineno, body[0].end_lineno + 1))
    lines: set[int] = set()
    skip = (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER)
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type not in skip:
            lines.update(range(tok.start[0], tok.end[0] + 1))
    return len(lines - docs)


@pytest.mark.parametrize("name", NAMES)
def test_example_is_under_20_lines_of_code(name):
    assert code_lines(EXAMPLES / f"{name}.py") < 20


@pytest.mark.parametrize("name,expected", [
    ("custom_tool", ["bad x1 = cagr('4800', 5829, 3) -> type: cagr() argument 1 must be number, got str",
                     "ok  x1 = cagr(4800, 5829, 3) -> 6.68849", "The answer is 6.69"]),
    ("custom_check", ["bad answer = x1 * 100 -> 9400 % is not a plausible percentage",
                      "ok  answer = x1 / 5735 * 100 -> 1.63905"]),
    ("custom_ability", ["The answer is 1.639"]),
    ("custom_task_family", ["3 notebooks cost 57 dollars. How much do 30 cost? -> 570.0 verified True"]),
])
def test_example_runs_as_a_script(name, expected):
    out = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py")], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    for line in expected:
        assert line in out.stdout


def test_custom_tool_is_on_every_agents_allowlist_and_type_checked():
    example = importlib.import_module("agents.examples.custom_tool")
    other = dca.Agent(logic=Plan(["answer = cagr(100, 121, 2)"]), knowledge=Facts(["from 100 to 121 in 2 years"]))
    r = other.run("What was the compound annual growth rate from 100 to 121 over 2 years?")
    assert r.verified and r.answer == pytest.approx(10.0)
    bad = dca.Agent(logic=Plan(["answer = cagr(100, 121)"]), knowledge=Facts(["100 121"]),
                    verifier=dca.Verifier(policy=FailurePolicy(retries=1, backtracks=0))).run("cagr?")
    assert not bad.verified and "cagr() takes 3 argument(s), got 2" in bad.reason
    assert example.cagr(100, 121, 2) == pytest.approx(10.0)  # still a plain Python function


def test_custom_check_is_usable_by_name_from_a_pipeline_file():
    importlib.import_module("agents.examples.custom_check")
    pipe = Pipeline.from_text("""
knowledge: {kind: "agents.examples.scripted:Facts", options: {facts: ["Net revenue: 2015 = $5,829; 2014 = $5,735"]}}
logic: {kind: "agents.examples.scripted:Plan", options: {steps: ["x1 = 5829 - 5735", "answer = x1 * 100"]}}
wording: {kind: template}
verifier: {checks: [parses, executes, grounded, percent_range], retries: 1, backtracks: 0}
run: {checkpoint: null, trace_dir: null}
""")
    r = pipe.run("What was the percent change in net revenue?")
    assert not r.verified and "percent_range" in r.reason and "9400" in r.reason


def test_custom_ability_reads_and_cites_sql_rows():
    example = importlib.import_module("agents.examples.custom_ability")
    hits = example.SqlKnowledge(example.db).retrieve("net revenue 2014", k=1)
    assert hits[0].text == "net revenue 2014: 5735.0" and hits[0].score == 1.0
    r = example.agent.run("By what percent did net revenue change from 2014 to 2015?")
    assert r.verified and r.answer == pytest.approx((5829 - 5735) / 5735 * 100)
    assert sorted(e.id for e in r.evidence) == ["facts:1", "facts:2"]
    assert [s.evidence_ids for s in r.steps[:2]] == [["facts:1"], ["facts:2"]]


def test_custom_task_family_is_reproducible_and_its_gold_traces_verify():
    importlib.import_module("agents.examples.custom_task_family")
    from dca.reasoning.tasks.base import families, get_family

    assert "unit_price" in families()
    family = get_family("unit_price")
    train = list(family.problems("train", n=20))
    assert [p.question for p in train] == [p.question for p in family.problems("train", n=20)]
    assert {p.question for p in train}.isdisjoint(p.question for p in family.problems("dev", n=20))
    for p in train:
        r = dca.Agent(logic=Plan(p.gold)).run(p.question)
        assert r.verified and family.score(p, r.answer)
        assert not family.score(p, r.answer + 1)
