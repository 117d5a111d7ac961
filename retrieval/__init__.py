"""retrieval: dca's RAG store (the world-knowledge ability).

``Index`` loads documents (tables as one fact per row with their headers), embeds them with
sentence-transformers, stores them in Chroma and searches dense, BM25 or hybrid, optionally
reranked. Heavy libraries load on first use, so ``import retrieval`` stays fast.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dca._lazy import lazy_exports

_EXPORTS = {
    "Index": "retrieval.index",
    "IndexReport": "retrieval.index",
    "Fact": "retrieval.facts",
    "RetrievalError": "retrieval.errors",
    "table_to_facts": "retrieval.tables",
    "finqa_facts": "retrieval.records",
    "tatqa_facts": "retrieval.records",
    "write_finqa_page": "retrieval.records",
    "write_tatqa_page": "retrieval.records",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:  # pragma: no cover
    from retrieval.errors import RetrievalError  # noqa: F401
    from retrieval.facts import Fact  # noqa: F401
    from retrieval.index import Index, IndexReport  # noqa: F401
    from retrieval.records import finqa_facts, tatqa_facts, write_finqa_page, write_tatqa_page  # noqa: F401
    from retrieval.tables import table_to_facts  # noqa: F401
