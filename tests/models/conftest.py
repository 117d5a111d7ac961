"""Fixtures for the model tests (the micro models come from tests/conftest.py)."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def arithmetic_pairs() -> list[tuple[str, str]]:
    """A trivial task: one two-step trace per question, for learning to reproduce a trace."""
    pairs = []
    for a, b in [(12, 30), (7, 5), (40, 2), (3, 9), (21, 21), (8, 16), (15, 4), (6, 60)]:
        pairs.append((f"Question: what is {a} plus {b}, doubled?\nSteps:\n", f"x1 = {a} + {b}\nanswer = x1 * 2\n"))
    return pairs


def tiny_sft_config(out_dir, **overrides):
    from dca.reasoning.sft import SFTConfig

    settings = dict(kind="policy", init="micro", vocab_size=300, steps=60, batch_tokens=1024, lr=1e-2,
                    min_lr=1e-3, warmup=5, eval_every=0, checkpoint_every=20, log_every=5, eval_n=0,
                    threads=1, out_dir=str(out_dir))
    settings.update(overrides)
    return SFTConfig(**settings)
