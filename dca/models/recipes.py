"""The recipes behind ``dca:<name>`` models: what each is trained on, for how long, from which seed.

``configs/train_policy.yaml``, ``configs/train_wording.yaml``, ``configs/train_reasoner.yaml``,
``configs/train_countdown.yaml``, ``configs/train_countdown_small.yaml`` and ``configs/train_chain.yaml``
state those recipes in the form
``dca train sft --config`` reads (tests keep them equal to the ones here).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # pragma: no cover
    from dca.reasoning.sft import SFTConfig


@dataclass(frozen=True)
class Recipe:
    name: str
    minutes: float  # expected build time on 2 CPU cores, for the first-use message
    config: Callable[[], "SFTConfig"]


def _tiny_policy() -> "SFTConfig":
    from dca.reasoning.sft import DataSource, SFTConfig

    return SFTConfig(
        kind="policy", init="tiny", seed=0,
        data=[DataSource("gsm8k", "train"), DataSource("finqa", "train", repeat=4),
              DataSource("tatqa", "train", repeat=2), DataSource("synthetic", "train", n=3000),
              DataSource("countdown", "train", n=1000)],
        dev=[DataSource("gsm8k", "dev"), DataSource("finqa", "dev"), DataSource("tatqa", "dev"),
             DataSource("synthetic", "dev"), DataSource("countdown", "dev")],
        max_numbers=40, refs=True,
        steps=1500, batch_tokens=1024, lr=1e-3, min_lr=1e-4, warmup=30, max_len=512,
        eval_every=250, checkpoint_every=100, eval_n=0, out_dir="runs/tiny-policy",
    )


def _tiny_wording() -> "SFTConfig":
    from dca.reasoning.sft import DataSource, SFTConfig

    return SFTConfig(
        kind="wording", init="tiny", seed=0,
        data=[DataSource("gsm8k", "train", n=3000), DataSource("finqa", "train", repeat=4),
              DataSource("tatqa", "train"), DataSource("synthetic", "train", n=1000),
              DataSource("countdown", "train", n=500)],
        dev=[DataSource("gsm8k", "dev"), DataSource("finqa", "dev"), DataSource("tatqa", "dev")],
        steps=600, batch_tokens=1024, lr=1e-3, min_lr=1e-4, warmup=30, max_len=256,
        eval_every=200, checkpoint_every=100, eval_n=0, out_dir="runs/tiny-wording",
    )


def _tiny_reasoner() -> "SFTConfig":
    from dca.reasoning.sft import DataSource, SFTConfig

    # the tiny shape spent on the families a 1M model can learn (generated problems, fresh ones in
    # every batch) instead of GSM8K/FinQA/TAT-QA text it cannot: the reasoning benchmark's start policy
    return SFTConfig(
        kind="policy", init="tiny", seed=0, threads=1,
        data=[DataSource("synthetic", "train", n=12000, options={"min_steps": 1, "max_steps": 6}),
              DataSource("countdown", "train", n=14000)],
        dev=[DataSource("synthetic", "test", options={"min_steps": 1, "max_steps": 4}),
             DataSource("countdown", "dev", options={"max_numbers": 3})],
        max_numbers=20, refs=True,
        steps=1200, batch_tokens=2048, lr=2e-3, min_lr=2e-4, warmup=30, max_len=384,
        eval_every=200, checkpoint_every=100, log_every=50, eval_n=100, out_dir="runs/tiny-reasoner",
    )


def _countdown_reasoner() -> "SFTConfig":
    from dca.reasoning.sft import DataSource, SFTConfig

    # countdown only: several solver-found solutions per instance (a proposal distribution over valid
    # solutions); every step states its value, the move that would finish from it and the operands
    # left, which sampling with the interpreter in the loop (countdown.sample_with_values) fills in
    four = {"min_numbers": 4, "max_numbers": 4}
    return SFTConfig(
        kind="policy", init="tiny", seed=0, threads=1,
        data=[DataSource("countdown", "train", n=30000, options={**four, "solutions": 4, "needs": True, "left": True}),
              DataSource("countdown", "train", n=4000, seed=1,
                         options={"min_numbers": 3, "max_numbers": 3, "solutions": 2, "needs": True, "left": True})],
        dev=[DataSource("countdown", "dev", options={**four, "solutions": 1, "needs": True, "left": True})],
        comments=True,  # numbers written as they are (no n1, n2, ...): the comments list them that way
        steps=3600, batch_tokens=4096, lr=2e-3, min_lr=2e-4, warmup=30, max_len=256,
        eval_every=1200, checkpoint_every=200, log_every=50, eval_n=100, out_dir="runs/countdown-reasoner",
    )


def _countdown_small() -> "SFTConfig":
    from dataclasses import replace

    # dca:countdown-reasoner's data on the wider ``small`` preset (hidden 256, 3.7 M parameters), the
    # start of the GRPO recipe configs/train_rl_countdown_small.yaml; at the tiny preset's lr 2e-3 it
    # had not learnt to copy the given numbers after 1,800 steps, at 1e-3 it has
    return replace(_countdown_reasoner(), init="small", threads=2, steps=1800, lr=1e-3, min_lr=1e-4,
                   eval_every=1800, out_dir="runs/countdown-small")


def _chain_reasoner() -> "SFTConfig":
    from dca.reasoning.sft import DataSource, SFTConfig

    # long synthetic chains only (1-12 steps): every step but the last quotes the sentence the next
    # step acts on (``Synthetic(plan=True)``), so the policy finds its place by copying the sentence
    # after the one it quoted last; the compounding benchmark's trained policy
    chains = {"min_steps": 1, "max_steps": 12, "plan": True}
    return SFTConfig(
        kind="policy", init="tiny", seed=0, threads=2,
        data=[DataSource("synthetic", "train", n=40000, options=chains)],
        dev=[DataSource("synthetic", "dev", options={**chains, "min_steps": 10, "max_steps": 10})],
        comments=True, max_question_chars=1400,
        steps=2400, batch_tokens=4096, lr=2e-3, min_lr=2e-4, warmup=30, max_len=640,
        eval_every=800, checkpoint_every=200, log_every=50, eval_n=100, out_dir="runs/chain-reasoner",
    )


def _micro_policy() -> "SFTConfig":
    from dca.reasoning.sft import DataSource, SFTConfig

    # generated families only (no data files), so tests run anywhere
    return SFTConfig(
        kind="policy", init="micro", seed=0, threads=1,  # tiny ops: a second thread only adds sync cost
        data=[DataSource("synthetic", "train", n=300, options={"max_steps": 3}),
              DataSource("countdown", "train", n=300)],
        max_numbers=20, refs=True,
        steps=40, batch_tokens=2048, lr=5e-3, min_lr=5e-4, warmup=5, max_len=256,
        eval_every=0, checkpoint_every=20, log_every=5, eval_n=0, out_dir="runs/micro-policy",
    )


def _micro_wording() -> "SFTConfig":
    from dca.reasoning.sft import DataSource, SFTConfig

    return SFTConfig(
        kind="wording", init="micro", seed=0, threads=1,
        data=[DataSource("synthetic", "train", n=300, options={"max_steps": 3}),
              DataSource("countdown", "train", n=300)],
        steps=40, batch_tokens=2048, lr=5e-3, min_lr=5e-4, warmup=5, max_len=192,
        eval_every=0, checkpoint_every=20, log_every=5, eval_n=0, out_dir="runs/micro-wording",
    )


RECIPES: dict[str, Recipe] = {
    "tiny-policy": Recipe("tiny-policy", 10, _tiny_policy),
    "tiny-wording": Recipe("tiny-wording", 3, _tiny_wording),
    "tiny-reasoner": Recipe("tiny-reasoner", 15, _tiny_reasoner),
    "countdown-reasoner": Recipe("countdown-reasoner", 30, _countdown_reasoner),
    "countdown-small": Recipe("countdown-small", 15, _countdown_small),
    "chain-reasoner": Recipe("chain-reasoner", 12, _chain_reasoner),
    "micro-policy": Recipe("micro-policy", 0.5, _micro_policy),
    "micro-wording": Recipe("micro-wording", 0.5, _micro_wording),
}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise KeyError(f"unknown dca model 'dca:{name}' (recipes: {', '.join('dca:' + r for r in RECIPES)})")
    return RECIPES[name]


def build_micro_models(directory: str | Path, progress: bool = False) -> dict[str, str]:
    """Train the micro policy and wording models into ``directory`` (seconds each); returns
    ``{"policy": path, "wording": path}`` of ``from_pretrained`` directories. For tests."""
    from dca.reasoning.sft import train_sft

    directory = Path(directory)
    out: dict[str, str] = {}
    for role, name in (("policy", "micro-policy"), ("wording", "micro-wording")):
        final = directory / name
        if not (final / "config.json").exists():
            config = get_recipe(name).config()
            config.out_dir = str(directory / f".{name}.build")
            result = train_sft(config, progress=progress)
            result.model_dir.rename(final)
        out[role] = str(final)
    return out
