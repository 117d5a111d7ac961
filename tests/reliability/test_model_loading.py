"""Model loading: safetensors only. A pickle checkpoint is refused with a clear error (by the
policy, by the command line), and every ``torch.load`` in the code passes ``weights_only=True``."""
from __future__ import annotations

import ast
import contextlib
import io
import os
import shutil
from pathlib import Path

import pytest

from dca.cli import main

ROOT = Path(__file__).resolve().parents[2]
SENTINEL = Path("/tmp/dca-unpickled-sentinel")


class _Payload:
    """Unpickling this runs a shell command: what a hostile checkpoint does."""

    def __reduce__(self):
        return (os.system, (f"touch {SENTINEL}",))


@pytest.fixture
def pickle_model(tmp_path, micro_models) -> Path:
    """The micro policy re-saved the old way: config, tokenizer and ``pytorch_model.bin`` (a pickle)."""
    import torch
    from safetensors.torch import load_file

    src = Path(micro_models["policy"])
    out = tmp_path / "pickled-policy"
    shutil.copytree(src, out, ignore=shutil.ignore_patterns("*.safetensors"))
    state = load_file(str(src / "model.safetensors"))
    torch.save({**state, "payload": _Payload()}, out / "pytorch_model.bin")
    return out


def test_lm_policy_refuses_a_pickle_checkpoint(pickle_model):
    from dca.models.registry import ModelError
    from dca.reasoning.policy import LMPolicy

    with pytest.raises(ModelError) as exc:
        LMPolicy(str(pickle_model)).load()
    msg = str(exc.value)
    assert "\n" not in msg and "pytorch_model.bin" in msg and "safetensors only" in msg
    assert not SENTINEL.exists()


def test_the_cli_refuses_a_pickle_checkpoint_in_one_line(pickle_model, tmp_path):
    config = tmp_path / "p.yaml"
    config.write_text(f"logic:\n  model: {pickle_model}\nknowledge:\n  kind: none\nwording:\n  kind: template\n")
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["ask", "What is 2 + 2?", "--config", str(config)])
    assert code == 2
    assert err.getvalue().count("\n") == 1 and "Traceback" not in err.getvalue()
    assert err.getvalue().startswith(f"dca: error: {config}:2 logic.model: model directory {pickle_model} has only "
                                     f"pickle weights (pytorch_model.bin)")
    assert not SENTINEL.exists()


def test_a_hostile_training_checkpoint_is_not_unpickled(tmp_path):
    import torch

    from dca.models.training import load_checkpoint

    path = tmp_path / "checkpoint.pt"
    torch.save({"step": 3, "payload": _Payload()}, path)
    with pytest.raises(Exception) as exc:
        load_checkpoint(path)
    assert "weights_only" in str(exc.value) or "Unpickl" in type(exc.value).__name__
    assert not SENTINEL.exists()


def _torch_loads(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load" \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch":
            yield node


def test_every_torch_load_passes_weights_only_true():
    files = [p for d in ("dca", "retrieval", "agents", "bench", "scripts") for p in (ROOT / d).rglob("*.py")]
    assert len(files) > 20
    calls, unsafe = 0, []
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for call in _torch_loads(tree):
            calls += 1
            flag = next((k.value for k in call.keywords if k.arg == "weights_only"), None)
            if not (isinstance(flag, ast.Constant) and flag.value is True):
                unsafe.append(f"{path.relative_to(ROOT)}:{call.lineno}")
        for node in ast.walk(tree):  # nor any other way of unpickling
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id in ("pickle", "cPickle", "dill", "joblib") and node.attr in ("load", "loads"):
                unsafe.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value.id}.{node.attr}")
    assert calls >= 1 and not unsafe, f"unsafe loads: {unsafe}"


def test_the_scan_finds_an_unsafe_load():
    bad = ast.parse("import torch\nstate = torch.load('x.pt')\nok = torch.load('y.pt', weights_only=True)\n")
    found = list(_torch_loads(bad))
    assert [c.lineno for c in found] == [2, 3]
    assert not any(k.arg == "weights_only" for k in found[0].keywords)
