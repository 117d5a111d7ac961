"""Broken pipeline files: each is one line naming file, line, field and expectation, from
``dca.Pipeline.from_yaml`` (a ``ConfigError``) and from the ``dca`` command line (no traceback
unless ``--debug``)."""
from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from reliability_corpus import BROKEN_CONFIGS, BUILD_TIME_CONFIGS

from dca.cli import main
from dca.config import ConfigError
from dca.pipeline import Pipeline

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    """The corpus written out as files, with a pickle-only model directory and a stray file to point at."""
    root = tmp_path_factory.mktemp("broken")
    pickle_dir = root / "pickle-model"
    pickle_dir.mkdir()
    (pickle_dir / "config.json").write_text('{"model_type": "gpt2"}')
    (pickle_dir / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")
    model_file = root / "weights.safetensors"
    model_file.write_bytes(b"\x00" * 16)
    for i, (_, text, *_rest) in enumerate(BROKEN_CONFIGS + BUILD_TIME_CONFIGS):
        text = text.replace("{pickle_dir}", str(pickle_dir)).replace("{model_file}", str(model_file))
        (root / f"{i:02d}.yaml").write_text(text, encoding="utf-8")
    return root


def _expected_prefix(path: Path, line: int | None, field: str | None) -> str:
    where = str(path) + (f":{line}" if line else "")
    return f"{where} {field}: " if field else f"{where}: "


def test_the_corpus_is_large_enough():
    assert len(BROKEN_CONFIGS) >= 30
    assert len({name for name, *_ in BROKEN_CONFIGS}) == len(BROKEN_CONFIGS)


@pytest.mark.parametrize("i", range(len(BROKEN_CONFIGS)), ids=[c[0] for c in BROKEN_CONFIGS])
def test_from_yaml_raises_one_line_naming_file_line_field(corpus_dir, i):
    name, _, line, field, fragment = BROKEN_CONFIGS[i]
    path = corpus_dir / f"{i:02d}.yaml"
    with pytest.raises(ConfigError) as exc:
        Pipeline.from_yaml(path)
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg.startswith(_expected_prefix(path, line, field)), msg
    assert fragment in msg, msg
    exc_ = exc.value  # no chained traceback behind the one line
    assert exc_.__cause__ is None and (exc_.__context__ is None or exc_.__suppress_context__)


def _cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("i", range(len(BROKEN_CONFIGS) + len(BUILD_TIME_CONFIGS)),
                         ids=[c[0] for c in BROKEN_CONFIGS + BUILD_TIME_CONFIGS])
def test_cli_prints_exactly_one_line(corpus_dir, i):
    name, _, line, field, fragment = (BROKEN_CONFIGS + BUILD_TIME_CONFIGS)[i]
    path = corpus_dir / f"{i:02d}.yaml"
    code, out, err = _cli(["ask", "What is 2 + 2?", "--config", str(path)])
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("dca: error: " + _expected_prefix(path, line, field)), err
    assert fragment in err


@pytest.mark.parametrize("argv, fragment", [
    (["ask", "q", "--config", "no/such/pipeline.yaml"], "no/such/pipeline.yaml: file not found"),
    (["ask", "q", "--config", "."], ".: is a directory; expected a YAML file"),
    (["ask", "q", "--config", "configs/minimal.yaml", "--set", "knowledge.top_k=0"], "knowledge.top_k: must be >= 1"),
    (["ask", "q", "--config", "configs/minimal.yaml", "--set", "logic"], "must look like section.key=value"),
    (["ask", "--resume", "no-such-thread", "--config", "{empty}"], "no checkpointed run with thread id"),
])
def test_cli_other_user_errors_are_one_line(tmp_path, argv, fragment, monkeypatch):
    monkeypatch.chdir(ROOT)
    empty = tmp_path / "p.yaml"
    empty.write_text(f"logic:\n  kind: tests.helpers_abilities:ScriptedLogic\n  options: {{script: []}}\n"
                     f"knowledge:\n  kind: none\nwording:\n  kind: template\n"
                     f"run:\n  checkpoint: {tmp_path / 'runs.sqlite'}\n  trace_dir: null\n")
    code, out, err = _cli([a.replace("{empty}", str(empty)) for a in argv])
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert fragment in err


def test_invalid_utf8_file(tmp_path):
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("name: caf\xe9\n".encode("latin-1"))
    code, _, err = _cli(["ask", "q", "--config", str(bad)])
    assert code == 2 and err.strip() == f"dca: error: {bad}: not UTF-8 text (byte 9)"


def test_real_binary_one_line_and_traceback_only_with_debug(corpus_dir):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    i = next(i for i, c in enumerate(BROKEN_CONFIGS) if c[0] == "unknown logic key")
    path = corpus_dir / f"{i:02d}.yaml"
    dca = [sys.executable, "-m", "dca.cli"]
    plain = subprocess.run(dca + ["ask", "q", "--config", str(path)], capture_output=True, text=True, env=env, cwd=ROOT)
    assert plain.returncode == 2 and plain.stdout == ""
    assert plain.stderr == f"dca: error: {path}:3 logic.stratgy: unknown key 'stratgy'; did you mean 'strategy'?\n"
    debug = subprocess.run(dca + ["--debug", "ask", "q", "--config", str(path)], capture_output=True, text=True,
                           env=env, cwd=ROOT)
    assert debug.returncode != 0 and "Traceback (most recent call last)" in debug.stderr
    assert "ConfigError" in debug.stderr


class Aborted(BaseException):
    """Not an ``Exception``: what some libraries raise to unwind."""


class Exploding:
    def __init__(self):
        raise Aborted("unwound")


def test_even_a_base_exception_is_one_line(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("logic:\n  kind: test_configs:Exploding\nknowledge:\n  kind: none\n")
    code, out, err = _cli(["ask", "q", "--config", str(path)])
    assert code == 2 and err == "dca: error: Aborted (run with --debug for the traceback)\n"
    with pytest.raises(Aborted):
        _cli(["--debug", "ask", "q", "--config", str(path)])
