"""Fixtures for the framework tests: micro models trained once per session (seconds)."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def micro_models(tmp_path_factory) -> dict[str, str]:
    from dca.models.recipes import build_micro_models

    return build_micro_models(tmp_path_factory.getbasetemp() / "framework-micro-models")
