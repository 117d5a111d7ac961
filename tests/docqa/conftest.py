"""Real FinQA / TAT-QA training records for the docqa tests (skipped when ../shared/data is absent)."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def finqa_train(data_dir):
    from dca.reasoning.tasks.finqa import FinQA

    return FinQA(data_dir / "finqa")


@pytest.fixture(scope="session")
def tatqa_train(data_dir):
    from dca.reasoning.tasks.tatqa import TATQA

    return TATQA(data_dir / "tatqa" / "dev.json")
