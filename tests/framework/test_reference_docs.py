"""docs/config.md and docs/api.md are generated from the code: they must match it, and cover all of it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dca.config import PipelineConfig
from dca.docgen import TARGETS, render_api, render_config

ROOT = Path(__file__).resolve().parents[2]


def _fields(model, prefix=""):
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and hasattr(ann, "model_fields"):
            yield from _fields(ann, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", field


def test_config_reference_is_up_to_date():
    import agents.examples.custom_check  # noqa: F401  (a user's check must not leak into the reference)

    assert TARGETS["config"].read_text() == render_config(), "docs/config.md is stale: run `dca docs config`"


def test_api_reference_is_up_to_date():
    assert TARGETS["api"].read_text() == render_api(), "docs/api.md is stale: run `dca docs api`"


def test_every_yaml_field_is_documented_with_its_description_and_bounds():
    text = render_config()
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| `")}
    for path, field in _fields(PipelineConfig):
        row = rows[f"`{path}`"]
        assert (field.description or "") in row
    assert "| 1 to 100 |" in rows["`knowledge.top_k`"]
    assert "one of: `dense`, `bm25`, `hybrid`" in rows["`knowledge.mode`"]
    assert "`beam`" in rows["`logic.strategy`"] and "`grounded`" in rows["`verifier.checks`"]


def test_the_defaults_block_is_valid_config():
    import yaml

    text = render_config()
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert PipelineConfig.model_validate(yaml.safe_load(block)) == PipelineConfig()


def test_api_reference_covers_the_public_names():
    import dca

    text = render_api()
    for name in ("Agent", "Pipeline", "Result", "Event", "Step", "Evidence", "Verdict", "Compute", "Knowledge",
                 "Logic", "Wording", "ProposeRequest", "Proposal", "Verifier", "ConfigError", "tool"):
        assert f".{name}`" in text, name
        assert name in dca.__all__
    assert "async def astream(task: str | None, *, thread_id: str | None = None) -> AsyncIterator[Event]" in text
    assert " at 0x" not in text  # no memory addresses: the output is reproducible
    assert "| POST | `/stream` |" in text


def test_docs_command_checks_and_writes(tmp_path):
    stale = tmp_path / "config.md"
    stale.write_text("old\n")
    run = [sys.executable, "-m", "dca.cli", "docs", "config", "--out", str(stale)]
    checked = subprocess.run(run + ["--check"], capture_output=True, text=True, cwd=ROOT)
    assert checked.returncode == 1 and "is stale" in checked.stderr
    assert subprocess.run(run, capture_output=True, cwd=ROOT).returncode == 0
    assert stale.read_text() == render_config()
    assert subprocess.run(run + ["--check"], capture_output=True, cwd=ROOT).returncode == 0


def test_readme_links_the_tutorial_and_the_references():
    readme = ROOT / "README.md"
    assert readme.exists(), "README.md is missing"
    text = readme.read_text()
    for target in ("docs/tutorial.md", "docs/config.md", "docs/api.md"):
        assert target in text, f"README.md does not link {target}"
