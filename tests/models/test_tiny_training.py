"""The micro model: builds from a config, trains with falling loss, reproduces a trivial trace,
saves and loads through from_pretrained, resumes a killed run to the same weights."""
from __future__ import annotations

import json

import pytest
import torch
from helpers_models import tiny_sft_config

from dca.models.tiny import PRESETS, build_model, count_parameters
from dca.models.tokenizer import train_tokenizer


def test_micro_and_tiny_sizes():
    tok = train_tokenizer(["x1 = 1 + 2\n"] * 10, vocab_size=300)
    micro = build_model(tok, "micro")
    assert micro.config._attn_implementation == "sdpa"
    assert micro.config.vocab_size == len(tok)
    assert 50_000 < count_parameters(micro) < 500_000
    tiny = PRESETS["tiny"]
    tiny_params = tiny.layers * (4 * tiny.hidden ** 2 + 3 * tiny.hidden * tiny.intermediate) + 2048 * tiny.hidden
    assert 1_000_000 < tiny_params < 10_000_000


def test_sft_learns_a_trivial_trace_and_round_trips(tmp_path, arithmetic_pairs):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from dca.reasoning.policy import generate, trace_lines
    from dca.reasoning.sft import encode_prompt, train_sft

    # 80 steps reproduced one trace of eight on some CPUs (their kernels round differently); 160 give all eight
    cfg = tiny_sft_config(tmp_path / "run", steps=160)
    result = train_sft(cfg, examples=arithmetic_pairs * 4, progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert losses[-1] < 0.5 * losses[0]
    assert (tmp_path / "run" / "curve.png").stat().st_size > 1000
    assert (result.model_dir / "model.safetensors").exists()

    model = AutoModelForCausalLM.from_pretrained(str(result.model_dir))
    tok = AutoTokenizer.from_pretrained(str(result.model_dir))
    model.eval()
    for prompt, completion in arithmetic_pairs:
        out = generate(model, tok, [encode_prompt(prompt, tok)], until="trace", max_new_tokens=32)
        assert trace_lines(out[0][0][0]) == completion.strip().split("\n")

    # the reloaded model is the trained one: same logits
    x = torch.tensor([encode_prompt(prompt, tok)])
    again = AutoModelForCausalLM.from_pretrained(str(result.model_dir)).eval()
    with torch.no_grad():
        assert torch.equal(model(input_ids=x).logits, again(input_ids=x).logits)


def test_killed_run_resumes_to_the_same_weights(tmp_path, arithmetic_pairs):
    from safetensors.torch import load_file

    from dca.reasoning.sft import train_sft

    straight = train_sft(tiny_sft_config(tmp_path / "a", steps=16, checkpoint_every=4), examples=arithmetic_pairs,
                         progress=False)

    def kill(step: int, loss: float) -> None:
        if step == 9:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_sft(tiny_sft_config(tmp_path / "b", steps=16, checkpoint_every=4), examples=arithmetic_pairs,
                  progress=False, on_step=kill)
    assert not (tmp_path / "b" / "model").exists()
    resumed = train_sft(tiny_sft_config(tmp_path / "b", steps=16, checkpoint_every=4), examples=arithmetic_pairs,
                        progress=False)
    a = load_file(str(straight.model_dir / "model.safetensors"))
    b = load_file(str(resumed.model_dir / "model.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    steps_logged = [json.loads(x)["step"] for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert steps_logged == sorted(steps_logged)  # the resumed log has no duplicated steps
