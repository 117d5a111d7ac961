from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
import torch

from dca.models import registry
from dca.models.registry import ModelError, ModelNotFound, load_causal_lm, resolve_model


@pytest.fixture
def dca_home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("DCA_HOME", str(tmp_path / "home"))
    registry.clear_loaded()
    yield tmp_path / "home"
    registry.clear_loaded()


def test_other_names_pass_through_unchanged():
    assert resolve_model("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct"
    assert resolve_model("/some/dir") == "/some/dir"


def test_unknown_recipe_and_missing_model_say_so_in_one_line(dca_home):
    with pytest.raises(KeyError, match="unknown dca model 'dca:nope'.*dca:tiny-policy"):
        resolve_model("dca:nope")
    with pytest.raises(ModelNotFound) as err:
        load_causal_lm("no-such-org/no-such-model")
    msg = str(err.value)
    assert msg == ("model 'no-such-org/no-such-model' not found: not a dca:… recipe, not a directory, "
                   "and the hub is offline")
    with pytest.raises(ModelNotFound, match="not a model directory"):
        load_causal_lm(str(dca_home / "absent-dir"))


def test_pickle_only_directory_is_refused(tmp_path, micro_models):
    import shutil

    bad = tmp_path / "pickled"
    shutil.copytree(micro_models["policy"], bad)
    (bad / "model.safetensors").unlink()
    torch.save({"w": torch.zeros(1)}, bad / "pytorch_model.bin")
    with pytest.raises(ModelError, match="only pickle weights .*pytorch_model.bin.*safetensors only"):
        load_causal_lm(str(bad))


def test_recipe_builds_once_atomically_under_concurrency_and_is_reused(dca_home, micro_models, monkeypatch):
    from safetensors.torch import load_file

    from dca.reasoning import sft

    calls = []
    real = sft.train_sft

    def counting(config, **kw):
        calls.append(config.out_dir)
        return real(config, **kw)

    monkeypatch.setattr(sft, "train_sft", counting)
    paths: list[str] = []
    threads = [threading.Thread(target=lambda: paths.append(resolve_model("dca:micro-policy", progress=False)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(set(paths)) == 1
    built = Path(paths[0])
    assert built == dca_home / "models" / "micro-policy"
    assert not (dca_home / "models" / ".micro-policy.build").exists()  # the work dir is cleaned up
    assert resolve_model("dca:micro-policy") == str(built)
    assert len(calls) == 1  # reused, not rebuilt
    # deterministic: the same recipe and seed give the same weights as the session's micro build
    a = load_file(str(built / "model.safetensors"))
    b = load_file(str(Path(micro_models["policy"]) / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)

    model, tok = load_causal_lm("dca:micro-policy")
    assert not model.training and load_causal_lm(str(built))[0] is model  # cached by resolved path
    assert torch.get_num_threads() == 2 or torch.get_num_threads() == int(__import__("os").environ.get(
        "DCA_TORCH_THREADS", "2"))


def test_a_model_built_from_an_older_recipe_is_rebuilt_and_served_until_then(dca_home, micro_models, monkeypatch,
                                                                              capsys):
    import json

    from dca.models.registry import outdated
    from dca.reasoning import sft

    built = dca_home / "models" / "micro-policy"
    shutil.copytree(micro_models["policy"], built)
    record = built / "dca_training.json"
    saved = json.loads(record.read_text())
    assert outdated("micro-policy", built) == []
    older = {**saved, "config": {**saved["config"], "steps": 7}}
    for source in older["config"]["data"]:
        source.pop("repeat")  # a setting an older record lacks is not a change
    record.write_text(json.dumps(older))
    assert outdated("micro-policy", built) == ["steps"]
    seen = []
    real = sft.train_sft

    def training(config, **kw):
        seen.append((built / "config.json").exists())  # the old model stays in place while the new one trains
        return real(config, **kw)

    monkeypatch.setattr(sft, "train_sft", training)
    assert resolve_model("dca:micro-policy", progress=False) == str(built)
    assert seen == [True]
    assert "its recipe changed (steps)" in capsys.readouterr().err
    assert json.loads(record.read_text())["config"]["steps"] == saved["config"]["steps"]
    assert outdated("micro-policy", built) == []
    resolve_model("dca:micro-policy", progress=False)
    assert seen == [True]  # now current: not rebuilt again


def test_a_first_use_build_leaves_the_callers_threads_and_random_streams(dca_home):
    """A GRPO run or benchmark that resolves a ``dca:`` model after seeding itself must go on with its
    own streams and threads, not the recipe's (seed 0, one thread), whether or not the model was built."""
    from helpers_models import assert_keeps_threads_and_random_streams

    assert_keeps_threads_and_random_streams(lambda: resolve_model("dca:micro-wording", progress=False))
    assert (dca_home / "models" / "micro-wording" / "config.json").exists()


def test_killed_build_leaves_no_model(dca_home, monkeypatch):
    from dca.reasoning import sft

    def killed(config, **kw):
        Path(config.out_dir).mkdir(parents=True, exist_ok=True)
        (Path(config.out_dir) / "checkpoint.pt").write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(sft, "train_sft", killed)
    with pytest.raises(KeyboardInterrupt):
        resolve_model("dca:micro-wording", progress=False)
    assert not (dca_home / "models" / "micro-wording").exists()
