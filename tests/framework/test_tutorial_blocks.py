"""docs/tutorial.md runs as written: every code block is executed in order, in a fresh folder.

Block kinds: ``python`` blocks run in one shared namespace (like a notebook), ``bash`` blocks in
bash with the virtual environment's ``dca`` on the PATH, ``yaml`` blocks must be valid pipeline
files, and a ``text`` block lists lines the previous block must print (a line ending in ``...``
only has to start a printed line). A comment on the line before a block adds a directive:
``file: PATH`` writes the block to PATH, ``skip: why`` leaves it out (package installation only),
``slow`` runs it only in the slow test (CLI runs that load models in fresh processes).
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "docs" / "tutorial.md"
_BLOCK = re.compile(r"(?:<!--\s*(?P<directive>[^>]*?)\s*-->\n)?^```(?P<lang>[\w-]*)\n(?P<body>.*?)^```$",
                    re.S | re.M)


@dataclass
class Block:
    lang: str
    body: str
    line: int
    directive: str = ""
    expect: list[str] | None = None


def blocks(text: str) -> list[Block]:
    out: list[Block] = []
    for m in _BLOCK.finditer(text):
        block = Block(m["lang"], m["body"], text.count("\n", 0, m.start("body")) + 1, (m["directive"] or "").strip())
        if block.lang == "text":
            assert out and out[-1].lang in ("python", "bash"), f"tutorial.md:{block.line}: output block after no code"
            out[-1].expect = [ln.strip() for ln in block.body.splitlines() if ln.strip()]
        else:
            out.append(block)
    return out


def _environment(tmp: Path, micro_models: dict[str, str]) -> dict[str, str]:
    """The micro models stand in the DCA_HOME cache, as if built on first use."""
    home = tmp / "dca-home"
    (home / "models").mkdir(parents=True)
    for role, name in (("policy", "micro-policy"), ("wording", "micro-wording")):
        (home / "models" / name).symlink_to(micro_models[role])
    return {"DCA_HOME": str(home), "DCA_TORCH_THREADS": "1",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def run_tutorial(tmp_path: Path, monkeypatch, micro_models: dict[str, str], *, slow: bool) -> list[str]:
    from dca.config import parse_config

    work = tmp_path / "work"
    work.mkdir()
    for key, value in _environment(tmp_path, micro_models).items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(work)
    namespace: dict = {"__name__": "__tutorial__"}
    ran = []
    for b in blocks(TUTORIAL.read_text()):
        where = f"tutorial.md:{b.line}"
        if b.directive.startswith("skip:") or (b.directive == "slow" and not slow):
            continue
        if b.directive.startswith("file:"):
            path = work / b.directive.removeprefix("file:").strip()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(b.body)
            if b.lang == "yaml":
                parse_config(b.body, file=where)
        elif b.lang == "yaml":
            parse_config(b.body, file=where)
        elif b.lang == "python":
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(compile(b.body, where, "exec"), namespace)
            _expect(b, out.getvalue(), where)
        elif b.lang == "bash":
            done = subprocess.run(["bash", "-euo", "pipefail", "-c", b.body], capture_output=True, text=True,
                                  timeout=600)
            assert done.returncode == 0, f"{where} exited {done.returncode}: {done.stderr[-1500:]}"
            _expect(b, done.stdout, where)
        else:
            pytest.fail(f"{where}: a {b.lang or 'plain'} block that is neither run nor written to a file")
        ran.append(where)
    return ran


def _expect(b: Block, printed: str, where: str) -> None:
    """Each expected line must be printed; one ending in ``...`` only has to start a printed line."""
    lines = [ln.strip() for ln in printed.splitlines()]
    for want in b.expect or []:
        if want.endswith("..."):
            ok = any(ln.startswith(want[:-3].rstrip()) for ln in lines)
        else:
            ok = any(want in ln for ln in lines)
        assert ok, f"{where} should print {want!r}; it printed:\n{printed}"


def test_tutorial_blocks_parse_and_every_block_is_accounted_for():
    found = blocks(TUTORIAL.read_text())
    assert sum(b.lang == "python" for b in found) >= 10
    assert [b.directive for b in found if b.directive.startswith("skip:")] == [
        "skip: installs packages (CI's set-up step runs it)"]
    assert all(b.lang in ("python", "bash", "yaml", "markdown", "csv") for b in found)


def test_tutorial_runs_as_written(tmp_path, monkeypatch, micro_models):
    ran = run_tutorial(tmp_path, monkeypatch, micro_models, slow=False)
    assert len(ran) >= 18
    assert (tmp_path / "work" / ".dca" / "index").is_dir()


@pytest.mark.slow
def test_tutorial_runs_as_written_including_the_command_line(tmp_path, monkeypatch, micro_models):
    ran = run_tutorial(tmp_path, monkeypatch, micro_models, slow=True)
    assert len(ran) == len([b for b in blocks(TUTORIAL.read_text()) if not b.directive.startswith("skip:")])
