"""Settings for short SFT runs on the micro preset, and a check on nested builds, shared by the model tests."""
from __future__ import annotations


def tiny_sft_config(out_dir, **overrides):
    from dca.reasoning.sft import SFTConfig

    settings = dict(kind="policy", init="micro", vocab_size=300, steps=60, batch_tokens=1024, lr=1e-2,
                    min_lr=1e-3, warmup=5, eval_every=0, checkpoint_every=20, log_every=5, eval_n=0,
                    threads=1, out_dir=str(out_dir))
    settings.update(overrides)
    return SFTConfig(**settings)


def assert_keeps_threads_and_random_streams(run) -> None:
    """``run()`` (a nested build that sets its own threads and seeds) leaves the caller's torch thread
    count and its Python, NumPy and torch random streams where they were."""
    import random

    import numpy as np
    import torch

    def seed(n: int) -> None:
        random.seed(n)
        np.random.seed(n)
        torch.manual_seed(n)

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        seed(11)
        expected = random.random(), np.random.random(), torch.rand(3)
        seed(11)
        run()
        assert torch.get_num_threads() == 2
        assert (random.random(), np.random.random()) == expected[:2] and torch.equal(torch.rand(3), expected[2])
    finally:
        torch.set_num_threads(before)
