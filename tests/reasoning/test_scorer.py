"""The step scorer: rollout labels, training, ranking and loading."""
from __future__ import annotations

import json

import pytest

from dca.reasoning.scorer import Labeled, StepScorer, _auc, evaluate_scorer, render_pair
from dca.types import Step


def test_labels_carry_values_in_unit_interval_and_every_source(scorer_run):
    labels = scorer_run["labels"]
    sources = {x.source for x in labels}
    assert {"gold", "corrupt"} <= sources
    assert sources & {"rollout", "final", "rejected"}  # the policy's own samples were labelled
    assert all(0.0 <= x.value <= 1.0 for x in labels)
    assert all(x.value == 1.0 for x in labels if x.source == "gold")
    assert all(x.value == 0.0 for x in labels if x.source in ("corrupt", "rejected"))


def test_trained_scorer_ranks_its_labels_better_than_chance(scorer_run):
    scorer = StepScorer.load(scorer_run["path"], threads=1)
    metrics = evaluate_scorer(scorer, scorer_run["labels"])
    assert metrics["n"] == len(scorer_run["labels"])
    assert metrics["auc"] > 0.6, metrics


def test_scores_are_probabilities_cached_and_batched(scorer_run):
    scorer = StepScorer.load(scorer_run["path"], threads=1)
    task = "Maya has 12 apples. Maya buys 5 more apples. How many apples does Maya have now?"
    one = scorer.score(task, [], "answer = 12 + 5")
    many = scorer.score_many(task, [["answer = 12 + 5"], ["x1 = 12 * 5", "answer = x1 - 1"]])
    assert 0.0 <= one <= 1.0 and many[0] == pytest.approx(one)
    assert all(0.0 <= v <= 1.0 for v in many)
    with pytest.raises(ValueError, match="2 tasks for 1 prefixes"):
        scorer.score_many([task, task], [["answer = 1"]])


def test_saved_scorer_records_its_run(scorer_run):
    from pathlib import Path

    summary = json.loads((Path(scorer_run["path"]) / "dca_scorer.json").read_text())
    assert summary["examples"] == scorer_run["result"].examples > 0
    assert (Path(scorer_run["path"]).parent / "metrics.jsonl").exists()
    assert summary["format"]["plan"] == "acts-on"


def test_a_scorer_trained_before_the_acts_on_rendering_reads_plan_steps_as_it_was_trained(scorer_run, tmp_path):
    import shutil

    from dca.reasoning.scorer import SCORER_FILE

    assert StepScorer.load(scorer_run["path"]).acts_on
    old = tmp_path / "old"
    shutil.copytree(scorer_run["path"], old)
    summary = json.loads((old / SCORER_FILE).read_text())
    del summary["format"]["plan"]
    (old / SCORER_FILE).write_text(json.dumps(summary))
    assert not StepScorer.load(str(old)).acts_on


def test_render_pair_runs_lines_and_shows_values():
    question, steps = render_pair("  What   is 2+3? ", ["x1 = 2 + 3", "answer = x1 * 2", "bad = ("])
    assert question == "What is 2+3?"
    assert steps.splitlines() == ["x1 = 2 + 3 => 5", "answer = x1 * 2 => 10", "bad = ( => ?"]
    _, shown = render_pair("q", [Step(text="x1 = 4", value=4.0)])
    assert shown == "x1 = 4 => 4"


def test_plan_steps_are_shown_beside_the_sentence_they_act_on():
    """A plan line's quote names the sentence the *next* step acts on; the scorer reads each step after
    the quote that introduced it, and only the last step's own quote, so a step's operation sits next
    to the sentence that decides whether it is right."""
    q = "Amara has 47 marbles. The marbles double. She gets 16 more. How many marbles does she have?"
    lines = ["x1 = 47 # next: The marbles double.", "x2 = x1 * 2 # next: She gets 16 more. How many marbles does she have?",
             "answer = x2 + 16"]
    _, shown = render_pair(q, lines[:2])
    assert shown.splitlines() == ["x1 = 47 => 47",
                                  "[The marbles double.] x2 = x1 * 2 => 94 # next: She gets 16 more. How many "
                                  "marbles does she have?"]
    _, shown = render_pair(q, lines)
    assert shown.splitlines()[1:] == ["[The marbles double.] x2 = x1 * 2 => 94",
                                      "[She gets 16 more. How many marbles does she have?] answer = x2 + 16 => 110"]
    # as a scorer trained before this rendering read them (its record has no "plan" format)
    _, old = render_pair(q, lines[:2], acts_on=False)
    assert old.splitlines()[1] == "x2 = x1 * 2 # next: She gets 16 more. How many marbles does she have? => 94"


def test_auc_matches_definition():
    assert _auc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert _auc([0.1], [0.9]) == 0.0
    assert _auc([0.5], [0.5]) == 0.5


class _Oracle:
    """Scores a prefix 1 when its last line is gold, else 0: a perfect ranker for the test labels."""

    def score_many(self, task, prefixes):
        return [1.0 if str(p[-1]).startswith("good") else 0.0 for p in prefixes]


def test_evaluate_scorer_reports_gold_above_corrupt():
    labels = [Labeled("t", ["good = 1"], 1.0, "gold"), Labeled("t", ["bad = 2"], 0.0, "corrupt")]
    metrics = evaluate_scorer(_Oracle(), labels)
    assert metrics["auc"] == 1.0 and metrics["gold_above_corrupt"] == 1.0


def test_config_errors_name_the_field(tmp_path):
    from dca.reasoning.scorer import load_scorer_config

    bad = tmp_path / "s.yaml"
    bad.write_text("data: [synthetic]\nsampels: 3\n")
    with pytest.raises(ValueError, match="unknown field 'sampels'"):
        load_scorer_config(bad)
    bad.write_text("data: [synthetic]\nepochs: many\n")
    with pytest.raises(ValueError, match="'epochs' must be a number"):
        load_scorer_config(bad)


@pytest.mark.parametrize("name", ["train_scorer.yaml", "train_scorer_countdown.yaml", "train_scorer_chain.yaml"])
def test_shipped_scorer_config_parses(name):
    from pathlib import Path

    from dca.reasoning.scorer import load_scorer_config

    config = load_scorer_config(Path(__file__).parents[2] / "configs" / name)
    assert config.data and config.samples >= 1
    assert config.comments == (name == "train_scorer_countdown.yaml")


def test_scorer_recipes_match_their_yaml():
    from pathlib import Path

    from dca.reasoning.scorer import SCORER_RECIPES, load_scorer_config

    configs = Path(__file__).parents[2] / "configs"
    for recipe, name in (("tiny-scorer", "train_scorer.yaml"), ("countdown-scorer", "train_scorer_countdown.yaml")):
        assert load_scorer_config(configs / name) == SCORER_RECIPES[recipe](), recipe


def test_pick_accuracy_sees_a_length_prior_that_auc_rewards():
    # gold traces are two lines, the policy's own finished traces one line: a scorer that only
    # values length separates the labels (AUC 1) yet ranks the policy's samples of a problem at random
    from dca.reasoning.scorer import pick_accuracy

    labels = [Labeled("t", ["x1 = 2", "answer = x1 + 1"], 1.0, "gold", "p"),
              Labeled("t", ["answer = 3"], 1.0, "final", "p"), Labeled("t", ["answer = 4"], 0.0, "final", "p"),
              Labeled("t", ["answer = 5"], 0.0, "final", "p")]
    by_length = [0.9 if len(x.lines) == 2 else 0.1 for x in labels]
    assert pick_accuracy(by_length, labels) == 0.5
    assert pick_accuracy([0.9, 0.8, 0.2, 0.1], labels) == 1.0
    assert pick_accuracy([0.9, 0.1, 0.8, 0.2], labels) == 0.0
    assert pick_accuracy([0.5], labels[:1]) is None  # no right/wrong pair of the policy's own traces



def test_a_pair_too_long_for_the_scorer_keeps_the_step_being_judged(scorer_run):
    """Truncation cuts the oldest steps, so the last step, the one scored, is always read."""
    from dca.reasoning.scorer import StepScorer, render_pair

    scorer = StepScorer.load(scorer_run["path"])
    steps = [f"x{i} = {i} + {i}" for i in range(1, 9)] + ["answer = 977 * 313"]
    question, shown = render_pair("How many marbles are left after all the trades described here?", steps)
    tok = scorer.model.tokenizer
    ids = tok(question, shown, truncation=True, max_length=scorer.model.max_length)["input_ids"]
    full = tok(question, shown)["input_ids"]
    assert len(full) > len(ids) == scorer.model.max_length  # the pair was cut
    tail = tok.decode(ids[-40:]).replace(" ", "")
    assert "answer=977*313=>305801" in tail, tail


def test_a_repeated_source_is_labelled_once_and_weighs_its_repeat(micro_models, tmp_path):
    from dca.reasoning.scorer import ScorerConfig, train_scorer
    from dca.reasoning.sft import DataSource

    config = ScorerConfig(policy=micro_models["policy"], base=micro_models["policy"],
                          data=[DataSource("synthetic", "train", n=2, options={"max_steps": 2}),
                                DataSource("countdown", "train", n=2, repeat=3)],
                          samples=2, rollouts=1, corruptions=1, epochs=1, batch_size=16, max_length=96, threads=1,
                          out_dir=str(tmp_path), checkpoint_every=1000, eval_every=0, log_every=5)
    result = train_scorer(config, dev_labels=[], progress=False)
    rows = [json.loads(line) for line in (tmp_path / "labels.jsonl").read_text().splitlines()]
    assert len(rows) == 4  # each problem is sampled once
    once = {r["problem"]: len(r["labels"]) for r in rows}
    assert all(n > 0 for n in once.values())
    weighed = sum(n * (3 if pid.startswith("countdown") else 1) for pid, n in once.items())
    assert result.counts["used"] == result.examples == weighed  # the countdown labels train three times
