"""docqa: numeric question answering over report pages (FinQA / TAT-QA style), on dca's public API.

``build_agent(source, ...)`` returns a ``dca.Agent``: a fact ranker over the source's facts, the
``DocQAReasoner`` (program shapes filled with operand cells, ranked by a trained trace ranker),
the verifier with fact-level grounding, units and a confidence gate, and ``AnswerWording``.
Models build on first use under ``$DCA_HOME/models/docqa-reasoner`` (``python -m agents.docqa.train``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from dca._lazy import lazy_exports

_EXPORTS = {
    "build_agent": "agents.docqa.agent",
    "docqa_verifier": "agents.docqa.agent",
    "AnswerWording": "agents.docqa.agent",
    "RerankedKnowledge": "agents.docqa.agent",
    "DocQAReasoner": "agents.docqa.reasoner",
    "TraceConfidence": "agents.docqa.reasoner",
    "PageKnowledge": "agents.docqa.knowledge",
    "FactGrounded": "agents.docqa.grounding",
    "ensure_models": "agents.docqa.models",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS, globals())

if TYPE_CHECKING:  # pragma: no cover
    from agents.docqa.agent import AnswerWording, RerankedKnowledge, build_agent, docqa_verifier  # noqa: F401
    from agents.docqa.grounding import FactGrounded  # noqa: F401
    from agents.docqa.knowledge import PageKnowledge  # noqa: F401
    from agents.docqa.models import ensure_models  # noqa: F401
    from agents.docqa.reasoner import DocQAReasoner, TraceConfidence  # noqa: F401
