"""Settings for short SFT runs on the micro preset, shared by the model tests."""
from __future__ import annotations


def tiny_sft_config(out_dir, **overrides):
    from dca.reasoning.sft import SFTConfig

    settings = dict(kind="policy", init="micro", vocab_size=300, steps=60, batch_tokens=1024, lr=1e-2,
                    min_lr=1e-3, warmup=5, eval_every=0, checkpoint_every=20, log_every=5, eval_n=0,
                    threads=1, out_dir=str(out_dir))
    settings.update(overrides)
    return SFTConfig(**settings)
