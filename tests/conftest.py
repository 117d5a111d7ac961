"""Shared test set-up: offline hub, slow-test gating, small real abilities."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("DCA_DATA", ROOT.parent / "shared" / "data"))
sys.path.insert(0, str(Path(__file__).parent))


def run_slow() -> bool:
    """Slow tests (training to a quality bar, about 2 minutes together on 2 cores) run with DCA_SLOW=1,
    and in CI (CI=true), where they fit the time limit; DCA_SLOW=0 skips them anywhere."""
    flag = os.environ.get("DCA_SLOW")
    if flag is not None:
        return flag == "1"
    return os.environ.get("CI", "").lower() in ("1", "true")


def pytest_collection_modifyitems(config, items):
    if run_slow():
        return
    skip = pytest.mark.skip(reason="slow: trains to a quality bar; run with DCA_SLOW=1 (make test-all)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.exists():
        pytest.skip(f"real data not found at {DATA} (set DCA_DATA)")
    return DATA


@pytest.fixture(scope="session")
def micro_models(tmp_path_factory) -> dict[str, str]:
    """Micro policy and wording models trained once per test session (seconds), in the HF layout."""
    from dca.models.recipes import build_micro_models

    return build_micro_models(tmp_path_factory.getbasetemp() / "micro-models")
