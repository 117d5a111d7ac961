"""Pipeline YAML: every error is one line naming file, line, field and the expectation."""
from __future__ import annotations

import pytest

from dca.config import ConfigError, PipelineConfig, dotted_overrides, load_config, parse_config
from dca.pipeline import Pipeline


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as exc:
        parse_config(text, file="configs/x.yaml")
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize("text, expected", [
    ("knowledge:\n  top_k: 0\n", "configs/x.yaml:2 knowledge.top_k: must be >= 1, got 0"),
    ("logic:\n  model: m\n  stratgy: beam\n", "configs/x.yaml:3 logic.stratgy: unknown key 'stratgy'; did you mean 'strategy'?"),
    ("knowledge:\n  mode: fuzzy\n", "configs/x.yaml:2 knowledge.mode: must be one of 'dense', 'bm25' or 'hybrid', got 'fuzzy'"),
    ("verifier:\n  retries: many\n", "configs/x.yaml:2 verifier.retries: must be an integer, got 'many'"),
    ("logic:\n  strategy: bean\n", "configs/x.yaml:2 logic.strategy: unknown strategy 'bean'; did you mean 'beam'?"),
    ("verifier:\n  checks: [parses, grounde]\n", "configs/x.yaml:2 verifier.checks.1: unknown check 'grounde'; did you mean 'grounded'?"),
    ("logic:\n  kind: llm\n", "configs/x.yaml:2 logic.kind: unknown ability kind 'llm'; did you mean 'lm'?"),
    ("run:\n  max_graph_steps: 10\n", "configs/x.yaml:2 run.max_graph_steps: must be >= "),
    ("knowledge:\n  collection: ab\n", "configs/x.yaml:2 knowledge.collection: must have at least 3 characters"),
    ("knowledge: [1,\n", "configs/x.yaml:2: invalid YAML"),
    ("- 1\n", "configs/x.yaml:1: the top level must be a mapping"),
])
def test_errors_name_file_line_field_and_expectation(text, expected):
    assert error_of(text).startswith(expected)


def test_missing_file_and_defaults(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml: file not found"):
        load_config(tmp_path / "nope.yaml")
    cfg = parse_config("")
    assert isinstance(cfg, PipelineConfig) and cfg.logic.strategy == "greedy" and cfg.knowledge.top_k == 5


def test_overrides_are_validated_like_the_file():
    cfg = parse_config("logic:\n  strategy: greedy\n", overrides=dotted_overrides(["logic.strategy=beam", "knowledge.top_k=8"]))
    assert cfg.logic.strategy == "beam" and cfg.knowledge.top_k == 8
    with pytest.raises(ConfigError, match="knowledge.top_k: must be >= 1"):
        parse_config("", overrides=dotted_overrides(["knowledge.top_k=0"]))


def test_shipped_configs_validate():
    from pathlib import Path

    configs = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))
    pipelines = [c for c in configs if not c.name.startswith("train")]
    assert pipelines, "configs/ has no pipeline files"
    for path in pipelines:
        Pipeline.from_yaml(path)


def test_custom_kind_errors_name_the_field(tmp_path):
    pipe = Pipeline.from_text("wording:\n  kind: no_such_module_xyz:Thing\n", source="p.yaml")
    with pytest.raises(ConfigError, match="p.yaml wording.kind: cannot import module 'no_such_module_xyz'"):
        pipe.build_wording()


def test_checks_named_by_module_and_attribute_build_or_fail_on_one_line():
    ok = Pipeline.from_text("verifier:\n  checks: [parses, executes, 'agents.docqa.grounding:FactGrounded']\n",
                            source="p.yaml")
    assert ok.build_verifier().check_names == ["parses", "executes", "fact_grounded"]
    bad = Pipeline.from_text("verifier:\n  checks: [parses, 'no_such_module_xyz:Check']\n", source="p.yaml")
    with pytest.raises(ConfigError, match=r"p.yaml verifier.checks\[1\]: check 'no_such_module_xyz:Check': "
                                          r"cannot import module 'no_such_module_xyz'") as exc:
        bad.build_verifier()
    assert "\n" not in str(exc.value)
    opts = Pipeline.from_text("verifier:\n  checks: [grounded]\n  options: {grounded: {typo: 1}}\n", source="p.yaml")
    with pytest.raises(ConfigError, match="p.yaml verifier.options.grounded: check 'grounded' rejected the options"):
        opts.build_verifier()
