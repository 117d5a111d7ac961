"""The store's CLI verbs: ``dca index``, ``dca search``, ``dca tune-embedder``, ``dca tune-reranker``.

``register(subparsers)`` adds them to dca's argparse parser; each handler returns an exit code
and prints a ``RetrievalError`` as one line, without a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

from retrieval.errors import RetrievalError

DEFAULT_STORE = ".dca/index"


def _store_args(p: argparse.ArgumentParser, collection_required: bool = True) -> None:
    p.add_argument("--collection", "-c", required=collection_required, default="docs",
                   help="collection name (3+ characters)")
    p.add_argument("--store", default=DEFAULT_STORE, help=f"store folder (default {DEFAULT_STORE})")
    p.add_argument("--server", default=None, metavar="HOST:PORT", help="use a Chroma server instead of the folder")
    p.add_argument("--embedder", default="all-MiniLM-L6-v2", help="sentence-transformers name or path")


def register(subparsers: Any) -> None:
    """Add ``index``, ``search``, ``tune-embedder`` and ``tune-reranker`` to ``subparsers``."""
    p = subparsers.add_parser("index", help="index a folder of documents into the RAG store",
                              description="Load, chunk, embed and store documents (.txt .md .html .pdf .docx "
                                          ".csv .json .jsonl). Re-running skips unchanged files, re-indexes "
                                          "changed ones and removes deleted ones.")
    p.add_argument("paths", nargs="+", metavar="PATH")
    _store_args(p)
    p.add_argument("--chunk-size", type=int, default=512, help="tokens per chunk (default 512)")
    p.add_argument("--chunk-overlap", type=int, default=64, help="tokens shared by neighbouring chunks (default 64)")
    p.add_argument("--max-file-mb", type=float, default=100.0,
                   help="skip files larger than this, unread (default 100; 0 for no limit)")
    p.add_argument("--int8", action=argparse.BooleanOptionalAction, default=None,
                   help="encode documents with the int8-quantised embedder (onnxruntime), or not (--no-int8); "
                        "default: int8 for the default embedder, fp32 for any other")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=_guard(_index))

    p = subparsers.add_parser("search", help="search the RAG store")
    p.add_argument("query")
    _store_args(p)
    p.add_argument("-k", type=int, default=5, help="how many results (default 5)")
    p.add_argument("--mode", choices=["dense", "bm25", "hybrid"], default="hybrid")
    p.add_argument("--where", default=None, help='Chroma metadata filter as JSON, e.g. \'{"kind": "table_row"}\'')
    p.add_argument("--reranker", default=None, help="cross-encoder path: rerank the candidates with it")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=_guard(_search))

    for verb, what in (("tune-embedder", "embedder"), ("tune-reranker", "reranker")):
        p = subparsers.add_parser(verb, help=f"fine-tune the {what} on (query, passage) pairs from your domain",
                                  description=f"Fine-tune the {what} on a JSONL file of "
                                              '{"query": ..., "passage": ...} lines, with hard negatives mined '
                                              "by BM25 from the collection (or from the passages themselves).")
        p.add_argument("pairs", help="JSONL file of {query, passage} pairs")
        p.add_argument("--out", required=True, help="folder to save the model in (Hugging Face layout)")
        _store_args(p, collection_required=False)
        p.add_argument("--base", default="all-MiniLM-L6-v2", help="model to start from")
        p.add_argument("--epochs", type=float, default=1.0)
        p.add_argument("--batch-size", type=int, default=32)
        p.add_argument("--lr", type=float, default=2e-5 if what == "embedder" else 5e-5)
        p.add_argument("--max-pairs", type=int, default=None, help="use at most this many pairs")
        p.add_argument("--negatives", type=int, default=1 if what == "embedder" else 3,
                       help="BM25 hard negatives per pair")
        p.add_argument("--seed", type=int, default=0)
        if what == "reranker":
            p.add_argument("--head-lr", type=float, default=2e-3,
                           help="learning rate of the new scoring head (pooler + classifier)")
            p.add_argument("--group-by-length", action="store_true",
                           help="batch pairs of similar length together: less padding, faster training")
        if what == "embedder":
            p.add_argument("--reembed", action="store_true",
                           help="re-embed the collection with the tuned model when done")
        p.set_defaults(func=_guard(_tune_embedder if what == "embedder" else _tune_reranker))


def _guard(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except RetrievalError as exc:
            print(f"dca: error: {exc}", file=sys.stderr)  # as every dca command says it
            return 2

    run.__doc__ = fn.__doc__
    return run


def _open(args: argparse.Namespace, **kw: Any) -> Any:
    from retrieval.index import Index

    return Index(args.store, args.collection, embedder=args.embedder, server=args.server, **kw)


def _index(args: argparse.Namespace) -> int:
    """dca index PATH...: add documents to the store."""
    idx = _open(args, chunk_size=args.chunk_size, chunk_overlap=args.chunk_overlap,
                max_file_mb=args.max_file_mb or None, int8=args.int8)
    report = idx.add([Path(p) for p in args.paths], progress=not args.no_progress)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.summary())
        for path, reason in report.skip_reasons.items():
            print(f"  skipped {path}: {reason}")
        for path, reason in report.notes.items():
            print(f"  note {path}: {reason}")
    return 0


def _search(args: argparse.Namespace) -> int:
    """dca search QUERY: the best chunks, with their sources."""
    where = None
    if args.where:
        try:
            where = json.loads(args.where)
        except json.JSONDecodeError as exc:
            raise RetrievalError(f"--where: not valid JSON ({exc.msg})") from exc
    idx = _open(args, mode=args.mode, reranker=args.reranker)
    hits = idx.search(args.query, args.k, where=where)
    if args.json:
        print(json.dumps([h.to_dict() for h in hits], indent=2, ensure_ascii=False))
        return 0
    for i, h in enumerate(hits, 1):
        text = " ".join(h.text.split())
        print(f"{i}. [{h.score:.3f}] {h.cite()}\n   {text[:300]}")
    if not hits:
        print("no results")
    return 0


def _tune_args(args: argparse.Namespace) -> dict[str, Any]:
    from retrieval.tuning import read_pairs

    pairs = read_pairs(args.pairs, limit=args.max_pairs)
    idx = _open(args) if Path(args.store).exists() or args.server else None
    return {"pairs": pairs, "index": idx}


def _tune_embedder(args: argparse.Namespace) -> int:
    """dca tune-embedder PAIRS --out DIR: fine-tune the embedder (in-batch + BM25 hard negatives)."""
    from retrieval.tuning import tune_embedder

    got = _tune_args(args)
    out = tune_embedder(got["pairs"], args.out, base=args.base, index=got["index"], negatives=args.negatives,
                        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    print(f"saved tuned embedder to {out}")
    if args.reembed:
        if got["index"] is None:
            raise RetrievalError(f"--reembed: no store at {args.store}")
        got["index"].reembed(str(out))
        print(f"re-embedded collection {args.collection!r} with {out}")
    return 0


def _tune_reranker(args: argparse.Namespace) -> int:
    """dca tune-reranker PAIRS --out DIR: train a cross-encoder reranker from the MiniLM weights."""
    from retrieval.tuning import tune_reranker

    got = _tune_args(args)
    out = tune_reranker(got["pairs"], args.out, base=args.base, index=got["index"], negatives=args.negatives,
                        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, head_lr=args.head_lr,
                        seed=args.seed, group_by_length=args.group_by_length)
    print(f"saved reranker to {out}; use it with --reranker {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the retrieval verbs on their own (``python -m retrieval.cli``)."""
    parser = argparse.ArgumentParser(prog="dca")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
