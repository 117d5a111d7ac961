"""SIGKILL in the middle of work, then run again: nothing lost, nothing done twice.

- ``dca train sft`` killed after a checkpoint: the re-run resumes and ends with exactly the weights
  and the per-step log of an uninterrupted run.
- ``dca ask`` (an agent with a SQLite checkpoint) killed while proposing a step: ``dca ask --resume``
  finishes the LangGraph thread with exactly the steps, attempts and evidence of an uninterrupted run.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from dca.cli import main

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join([str(HERE), str(HERE.parent), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": path, **extra}


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 120.0) -> None:
    """SIGKILL ``proc`` as soon as ``ready()`` holds; fail if it ends (or times out) first."""
    end = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"the process ended (code {proc.returncode}) before it could be killed mid-run")
        if time.monotonic() > end:
            proc.kill()
            pytest.fail("the process never reached the point to kill it at")
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


# --------------------------------------------------------------------------- training

RECIPE = {
    "kind": "policy", "init": "micro", "seed": 0, "threads": 1,
    "data": [{"family": "synthetic", "split": "train", "n": 60, "options": {"max_steps": 3}}],
    "max_numbers": 20, "refs": True, "steps": 40, "batch_tokens": 512, "lr": 0.005, "min_lr": 0.0005,
    "warmup": 2, "max_len": 256, "eval_every": 0, "checkpoint_every": 10, "log_every": 1, "eval_n": 0,
}


def _recipe(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**RECIPE, "out_dir": str(tmp_path / name)}))
    return path


def _weights(run: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(run / "model" / "model.safetensors"))


def test_training_killed_after_a_checkpoint_resumes_to_the_same_model(tmp_path):
    reference = _recipe(tmp_path, "reference")
    assert _cli(["train", "sft", "--config", str(reference)])[0] == 0

    crashed = _recipe(tmp_path, "crashed")
    run = tmp_path / "crashed"
    proc = subprocess.Popen([sys.executable, "-m", "dca.cli", "train", "sft", "--config", str(crashed)],
                            cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _kill_when(proc, lambda: (run / "checkpoint.pt").exists())
    assert not (run / "model").exists(), "the run finished before the kill"
    from dca.models.training import load_checkpoint

    killed_at = int(load_checkpoint(run / "checkpoint.pt")["step"])
    assert 0 < killed_at < RECIPE["steps"]

    code, out, err = _cli(["train", "sft", "--config", str(crashed)])  # the same command again
    assert code == 0, err
    ref_w, got_w = _weights(tmp_path / "reference"), _weights(run)
    assert ref_w.keys() == got_w.keys()
    for name in ref_w:
        assert (ref_w[name] == got_w[name]).all(), f"{name} differs after resuming from step {killed_at}"
    logged = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert logged == [-1] + list(range(RECIPE["steps"])), "a step was lost or logged twice"


# --------------------------------------------------------------------------- agent runs

SCRIPT = [["x1 = lookup('revenue 2019')"], ["x2 = lookup('revenue 2018')"], ["x3 = x1 - x2 + 1000000", "x3 = x1 - x2"],
          ["answer = x3 / x2 * 100"]]
FACTS = ["Revenue 2019: 1,452.4", "Revenue 2018: 1,300.0", "Operating costs 2019: 800.0"]
TASK = "By what percent did revenue change from 2018 to 2019?"


def _pipeline(tmp_path: Path) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump({
        "logic": {"kind": "stalling:StallingLogic", "options": {"script": SCRIPT, "stall_at": 2}},
        "knowledge": {"kind": "helpers_abilities:FactsKnowledge", "options": {"facts": FACTS}},
        "wording": {"kind": "template"},
        "run": {"checkpoint": str(tmp_path / "runs.sqlite"), "trace_dir": None},
    }))
    return path


def _essence(result: dict) -> dict:
    """What must match an uninterrupted run: the answer, every step and attempt, the evidence, the spend."""
    keep = ("text", "value", "error", "evidence_ids", "index", "attempt")
    return {
        "answer": result["answer"], "status": result["status"], "text": result["text"],
        "steps": [{k: s[k] for k in keep} | {"verdict": s["verdict"]} for s in result["steps"]],
        "attempts": [{k: s[k] for k in keep} | {"verdict": s["verdict"]} for s in result["attempts"]],
        "evidence": [e["id"] for e in result["evidence"]],
        "compute": {k: v for k, v in result["compute"].items() if k != "wall_time"},
    }


def test_agent_killed_mid_run_resumes_the_thread(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(HERE))
    config = _pipeline(tmp_path)
    marker = tmp_path / "stalled"
    proc = subprocess.Popen([sys.executable, "-m", "dca.cli", "ask", TASK, "--config", str(config), "--thread", "t1"],
                            cwd=ROOT, env=_env(DCA_STALL_MARKER=str(marker)), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _kill_when(proc, marker.exists)

    code, out, err = _cli(["ask", "--resume", "t1", "--config", str(config), "--json"])
    assert code == 0, err + out
    resumed = json.loads(out)
    code, out, err = _cli(["ask", TASK, "--config", str(config), "--thread", "t2", "--json"])  # never killed
    assert code == 0, err
    reference = json.loads(out)

    assert resumed["status"] == "verified" and resumed["answer"] == pytest.approx(11.723077, rel=1e-5)
    assert _essence(resumed) == _essence(reference)
    texts = [a["text"] for a in resumed["attempts"]]
    assert texts == ["x1 = lookup('revenue 2019')", "x2 = lookup('revenue 2018')", "x3 = x1 - x2 + 1000000",
                     "x3 = x1 - x2", "answer = x3 / x2 * 100"]  # the rejected one once, nothing twice
    code, out, _ = _cli(["ask", "--resume", "t1", "--config", str(config), "--json"])  # resuming again is a no-op
    assert code == 0 and _essence(json.loads(out)) == _essence(resumed)
