"""dca: divide-and-conquer-of-ability agents.

A small LM supplies language, a RAG store over your documents supplies knowledge, a reasoner
trained with reinforcement learning supplies multi-step logic, and a verifier checks every step.
Heavy libraries (torch, transformers, sentence-transformers, llama-index) load lazily, so
``import dca`` stays fast.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dca._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "Agent": "dca.agent",
    "Pipeline": "dca.pipeline",
    "Result": "dca.types",
    "Step": "dca.types",
    "Evidence": "dca.types",
    "Event": "dca.types",
    "Compute": "dca.types",
    "Verdict": "dca.types",
    "Verifier": "dca.verifier",
    "Knowledge": "dca.abilities",
    "Logic": "dca.abilities",
    "Wording": "dca.abilities",
    "ProposeRequest": "dca.abilities",
    "Proposal": "dca.abilities",
    "ConfigError": "dca.config",
    "tool": "dca.tools",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)


if TYPE_CHECKING:  # pragma: no cover
    from dca.abilities import Knowledge, Logic, Proposal, ProposeRequest, Wording  # noqa: F401
    from dca.agent import Agent  # noqa: F401
    from dca.config import ConfigError  # noqa: F401
    from dca.pipeline import Pipeline  # noqa: F401
    from dca.tools import tool  # noqa: F401
    from dca.types import Compute, Event, Evidence, Result, Step, Verdict  # noqa: F401
    from dca.verifier import Verifier  # noqa: F401
