"""Fixtures for the reasoning tests: a step scorer trained briefly on the micro policy's rollouts."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def scorer_run(micro_models, tmp_path_factory) -> dict:
    """Labels from the micro policy's rollouts and a scorer (a classification head on the micro
    policy's backbone) trained on them for a few seconds: ``{"labels", "path", "result"}``."""
    from dca.reasoning.policy import LMPolicy
    from dca.reasoning.scorer import ScorerConfig, label_problems, train_scorer
    from dca.reasoning.sft import DataSource, mix_problems

    out = tmp_path_factory.mktemp("scorer")
    config = ScorerConfig(policy=micro_models["policy"], base=micro_models["policy"],
                          data=[DataSource("synthetic", "train", n=10, options={"max_steps": 3}),
                                DataSource("countdown", "train", n=10)],
                          samples=4, rollouts=2, epochs=3, batch_size=16, lr=2e-3, max_length=128, threads=1,
                          out_dir=str(out), checkpoint_every=1000, eval_every=0, log_every=5)
    labels = label_problems(mix_problems(config.data), LMPolicy(micro_models["policy"], threads=1),
                            out / "labels.jsonl", samples=4, rollouts=2, temperature=1.0, seed=0, corruptions=2,
                            gold=True, progress=False)
    result = train_scorer(config, labels=labels, dev_labels=[], progress=False)
    return {"labels": labels, "path": str(result.model_dir), "result": result}
