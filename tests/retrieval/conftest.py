"""Shared fixtures for the retrieval tests: the real data folder and the offline MiniLM."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    return Path(os.environ.get("DCA_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def finqa_records() -> list[dict]:
    path = data_dir() / "finqa" / "train_100.json"
    if not path.exists():
        pytest.skip(f"FinQA data not found at {path} (set DCA_DATA)")
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def tatqa_docs() -> list[dict]:
    path = data_dir() / "tatqa" / "dev.json"
    if not path.exists():
        pytest.skip(f"TAT-QA data not found at {path} (set DCA_DATA)")
    return json.loads(path.read_text())


@pytest.fixture(scope="session", autouse=True)
def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
