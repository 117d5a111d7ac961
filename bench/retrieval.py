"""SciFact retrieval benchmark: dca's store against BM25, dense MiniLM and llama-index, in one run.

    .venv/bin/python bench/retrieval.py            # full run (tuned models cached under bench/out/)
    .venv/bin/python bench/retrieval.py --quick    # 600 documents, for a smoke run

Quality: nDCG@10 and Recall@100 on the SciFact train queries that have qrels; the embedder and
reranker are tuned on a fixed 60 % of them and every number is reported on the other 40 %.
Speed: indexing throughput (dca ``Index.add`` vs raw ``SentenceTransformer.encode`` on the same
chunks vs llama-index's default ingestion, all on the same files) and query latency p50/p95.
Writes bench/out/retrieval.json and bench/out/retrieval.png.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
for _k, _v in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
               "ANONYMIZED_TELEMETRY": "False", "LLAMA_INDEX_CACHE_DIR": str(REPO / "bench" / "out" / "llama_cache")}.items():
    os.environ.setdefault(_k, _v)


# --- data ---------------------------------------------------------------------------------------

def data_dir() -> Path:
    return Path(os.environ.get("DCA_DATA", REPO.parent / "shared" / "data")) / "scifact"


def load_scifact(folder: Path) -> tuple[list[dict], dict[str, str], dict[str, dict[str, int]]]:
    if not (folder / "corpus.jsonl").exists():
        sys.exit(f"SciFact not found at {folder} (set DCA_DATA to the folder holding scifact/)")
    corpus = [json.loads(line) for line in open(folder / "corpus.jsonl", encoding="utf-8")]
    queries = {q["_id"]: q["text"] for q in map(json.loads, open(folder / "queries.jsonl", encoding="utf-8"))}
    qrels: dict[str, dict[str, int]] = {}
    for i, line in enumerate(open(folder / "qrels_train.tsv", encoding="utf-8")):
        if i == 0 or not line.strip():
            continue
        q, d, s = line.rstrip("\n").split("\t")
        if int(s) > 0:
            qrels.setdefault(q, {})[d] = int(s)
    return corpus, queries, qrels


def split_queries(qrels: dict, tune_frac: float) -> tuple[list[str], list[str]]:
    """A fixed split by hashed query id: the tuning part and the reported part never overlap."""
    tune, report = [], []
    for q in sorted(qrels):
        bucket = int(hashlib.sha1(q.encode()).hexdigest(), 16) % 100
        (tune if bucket < tune_frac * 100 else report).append(q)
    return tune, report


def write_docs(corpus: list[dict], folder: Path) -> Path:
    """One .txt file per abstract (title, blank line, text): the documents a user would index."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {f"{d['_id']}.txt" for d in corpus}
    for stale in folder.glob("*.txt"):
        if stale.name not in wanted:
            stale.unlink()
    for d in corpus:
        path = folder / f"{d['_id']}.txt"
        text = f"{d['title']}\n\n{d['text']}".strip() + "\n"
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    return folder


# --- metrics ------------------------------------------------------------------------------------

def ndcg_at(ranked: list[str], rel: dict[str, int], k: int = 10) -> float:
    dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(rel.values(), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: list[str], rel: dict[str, int], k: int = 100) -> float:
    return len(set(ranked[:k]) & set(rel)) / len(rel) if rel else 0.0


def doc_ranking(evidence: list, key: Callable = lambda e: Path(e.source).stem) -> list[str]:
    """Chunk hits to document ids, best chunk first, each document once."""
    return list(dict.fromkeys(key(e) for e in evidence))


def evaluate(search: Callable[[str, int], list[str]], queries: dict, qrels: dict, qids: list[str]) -> dict:
    nd, rc = [], []
    for q in qids:
        ranked = search(queries[q], 100)
        nd.append(ndcg_at(ranked, qrels[q]))
        rc.append(recall_at(ranked, qrels[q]))
    return {"ndcg@10": round(statistics.fmean(nd), 4), "recall@100": round(statistics.fmean(rc), 4)}


def latency(search: Callable[[str], object], texts: list[str], warmup: int = 5) -> dict:
    for t in texts[:warmup]:
        search(t)
    times = []
    for t in texts:
        start = time.perf_counter()
        search(t)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {"p50_ms": round(times[len(times) // 2], 2), "p95_ms": round(times[int(len(times) * 0.95) - 1], 2),
            "n": len(times)}


# --- the systems ----------------------------------------------------------------------------------

def dca_search(idx, mode: str, rerank: bool = False) -> Callable[[str, int], list[str]]:
    def run(q: str, k: int) -> list[str]:
        return doc_ranking(idx.search(q, int(k * 1.5), mode=mode, rerank=rerank))[:k]

    return run


def llama_embed_model(model_path: str):
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    return HuggingFaceEmbedding(model_name=model_path, device="cpu")


def llama_ingest(folder: Path, model_path: str) -> tuple[float, int]:
    """llama-index's default ingestion of the same files: SimpleDirectoryReader + VectorStoreIndex."""
    from llama_index.core import Settings, SimpleDirectoryReader, VectorStoreIndex

    Settings.llm = None
    embed_model = llama_embed_model(model_path)
    start = time.perf_counter()
    docs = SimpleDirectoryReader(str(folder)).load_data()
    index = VectorStoreIndex.from_documents(docs, embed_model=embed_model)
    seconds = time.perf_counter() - start
    return seconds, len(index.index_struct.nodes_dict)


def llama_retriever(idx, model_path: str, k: int):
    """llama-index's default ``VectorStoreIndex`` retriever over the same chunks and vectors as the
    dense run (so the comparison isolates the retriever, not the chunking)."""
    from llama_index.core import Settings, VectorStoreIndex
    from llama_index.core.schema import TextNode

    Settings.llm = None
    got = idx._collection().get(include=["documents", "metadatas", "embeddings"])
    nodes = [TextNode(id_=cid, text=doc, metadata={"source": meta.get("source", "")}, embedding=list(map(float, emb)))
             for cid, doc, meta, emb in zip(got["ids"], got["documents"], got["metadatas"], got["embeddings"])]
    index = VectorStoreIndex(nodes, embed_model=llama_embed_model(model_path))
    return index.as_retriever(similarity_top_k=k)


def llama_search(retrievers: dict) -> Callable[[str, int], list[str]]:
    def run(q: str, k: int) -> list[str]:
        hits = retrievers[k].retrieve(q)
        return list(dict.fromkeys(Path(h.node.metadata["source"]).stem for h in hits))[:k]

    return run


# --- tuning data ------------------------------------------------------------------------------

def training_pairs(corpus: list[dict], queries: dict, qrels: dict, qids: list[str]) -> list[tuple[str, str]]:
    by_id = {d["_id"]: f"{d['title']}\n\n{d['text']}".strip() for d in corpus}
    return [(queries[q], by_id[d]) for q in qids for d in sorted(qrels[q]) if d in by_id]


# --- main -------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "bench" / "out"))
    ap.add_argument("--quick", action="store_true", help="600 documents, 60 queries: a smoke run")
    ap.add_argument("--throughput-docs", type=int, default=500, help="documents in the throughput comparison")
    ap.add_argument("--fresh", action="store_true", help="rebuild the stores (and measure full indexing)")
    ap.add_argument("--retrain", action="store_true", help="retrain the embedder and reranker")
    ap.add_argument("--tune-frac", type=float, default=0.6)
    ap.add_argument("--latency-queries", type=int, default=100)
    ap.add_argument("--rerank-depth", type=int, default=20, help="candidates the reranker rescores")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from retrieval import Index
    from retrieval.loaders import Chunker, iter_files, load_file
    from retrieval.models import embed, load_embedder, resolve_model, token_counter
    from retrieval.tuning import tune_embedder, tune_reranker

    out = Path(args.out)
    work = out / "retrieval"
    work.mkdir(parents=True, exist_ok=True)
    corpus, queries, qrels = load_scifact(data_dir())
    tune_q, report_q = split_queries(qrels, args.tune_frac)
    if args.quick:
        tune_q, report_q = tune_q[:60], report_q[:30]
        keep = {d for q in report_q + tune_q for d in qrels[q]}
        corpus = [d for d in corpus if d["_id"] in keep] + [d for d in corpus if d["_id"] not in keep][:300 - len(keep)]
        args.throughput_docs = min(args.throughput_docs, 100)
        args.latency_queries = min(args.latency_queries, 30)
    tag = "quick" if args.quick else "full"
    docs = write_docs(corpus, work / f"scifact_docs_{tag}")
    base = resolve_model("all-MiniLM-L6-v2")
    model = load_embedder(base)
    results: dict = {"corpus_docs": len(corpus), "tune_queries": len(tune_q), "report_queries": len(report_q),
                     "threads": args.threads, "systems": {}, "throughput": {}}
    print(f"SciFact: {len(corpus)} abstracts, {len(tune_q)} tuning / {len(report_q)} reported queries")

    # 1. throughput on the same files: raw encode, dca Index.add, llama-index default ingestion
    sub = work / f"throughput_docs_{tag}"
    shutil.rmtree(sub, ignore_errors=True)
    sub.mkdir()
    for d in corpus[: args.throughput_docs]:
        shutil.copy(docs / f"{d['_id']}.txt", sub)
    files, _ = iter_files([sub])
    chunker = Chunker(512, 64, tokenizer=token_counter(model))
    chunks = [f.text for path in files for f in load_file(path, chunker)]

    def raw_encode() -> float:
        start = time.perf_counter()
        embed(model, chunks)
        return time.perf_counter() - start

    raw_a = raw_encode()
    store = work / f"tp_store_{tag}"
    shutil.rmtree(store, ignore_errors=True)
    rep = Index(store, "throughput").add(sub, progress=False)
    llama_s, llama_nodes = llama_ingest(sub, base)
    raw_b = raw_encode()
    raw_s = (raw_a + raw_b) / 2
    tp = {
        "docs": len(files), "chunks": len(chunks),
        "raw_encode_chunks_per_s": round(len(chunks) / raw_s, 2),
        "dca_index_chunks_per_s": round(rep.total_chunks / rep.seconds, 2),
        "llama_index_chunks_per_s": round(llama_nodes / llama_s, 2),
        "llama_index_docs_per_s": round(len(files) / llama_s, 2), "dca_docs_per_s": round(len(files) / rep.seconds, 2),
        "raw_encode_seconds": [round(raw_a, 2), round(raw_b, 2)], "dca_seconds": round(rep.seconds, 2),
        "llama_index_seconds": round(llama_s, 2), "llama_index_nodes": llama_nodes,
    }
    tp["dca_vs_raw_encode"] = round(tp["dca_index_chunks_per_s"] / tp["raw_encode_chunks_per_s"], 3)
    tp["dca_vs_llama_index_docs"] = round(tp["dca_docs_per_s"] / tp["llama_index_docs_per_s"], 3)
    results["throughput"] = tp
    print(json.dumps(tp, indent=2))

    # 2. the full store with MiniLM (incremental: a re-run reuses it unless --fresh)
    main_store = work / f"store_{tag}"
    if args.fresh:
        shutil.rmtree(main_store, ignore_errors=True)
    idx = Index(main_store, "scifact")
    full = idx.add(docs, progress=True)
    if full.chunks_added:
        results["full_index"] = {"chunks": full.total_chunks, "seconds": round(full.seconds, 1),
                                 "chunks_per_s": round(full.chunks_added / full.seconds, 2)}
    print(full.summary())

    # 3. tuned embedder and reranker (trained on the tuning queries only; cached)
    pairs = training_pairs(corpus, queries, qrels, tune_q)
    emb_dir, rr_dir = work / f"embedder_{tag}", work / f"reranker_{tag}"
    timings = {}
    if args.retrain or not (emb_dir / "config.json").exists():
        start = time.perf_counter()
        tune_embedder(pairs, emb_dir, index=idx, negatives=1, epochs=1, batch_size=32, max_seq_length=128)
        timings["tune_embedder_s"] = round(time.perf_counter() - start, 1)
    if args.retrain or not (rr_dir / "config.json").exists():
        start = time.perf_counter()
        tune_reranker(pairs, rr_dir, index=idx, negatives=2, epochs=1, batch_size=32, max_length=192)
        timings["tune_reranker_s"] = round(time.perf_counter() - start, 1)
    results["tuning"] = {"pairs": len(pairs), **timings}
    tuned_store = work / f"store_tuned_{tag}"
    if args.fresh or args.retrain or not tuned_store.exists():
        shutil.rmtree(tuned_store, ignore_errors=True)
        shutil.copytree(main_store, tuned_store)
    probe = Index(tuned_store, "scifact")
    if probe._collection().metadata.get("dca:embedder") != str(emb_dir.resolve()):
        start = time.perf_counter()
        probe.reembed(str(emb_dir.resolve()))
        results["tuning"]["reembed_s"] = round(time.perf_counter() - start, 1)
    tuned = Index(tuned_store, "scifact", embedder=str(emb_dir.resolve()))
    rr = str(rr_dir.resolve())
    reranked = Index(tuned_store, "scifact", embedder=str(emb_dir.resolve()), reranker=rr)
    reranked_base = Index(main_store, "scifact", reranker=rr)

    # 4. hybrid fusion weight and reranker interpolation chosen on the tuning queries
    def pick_alpha(index) -> float:
        best = (-1.0, 0.5)
        for alpha in (0.3, 0.4, 0.5, 0.6, 0.7):
            index.alpha = alpha
            score = evaluate(dca_search(index, "hybrid"), queries, qrels, tune_q[:200])["ndcg@10"]
            best = max(best, (score, alpha))
        index.alpha = best[1]
        return best[1]

    def pick_rerank_weight(index) -> float:
        from retrieval.models import load_reranker

        ce_model, cached = load_reranker(rr), []
        for q in tune_q[:100]:
            hits = index._hits(queries[q], "hybrid", args.rerank_depth, None)[: args.rerank_depth]
            ce = ce_model.predict([(queries[q], h[2]) for h in hits], batch_size=32, show_progress_bar=False)
            cached.append((q, hits, ce))
        def ndcg_with(w: float) -> float:
            total = 0.0
            for q, hits, ce in cached:
                scores = [w * float(c) + (1 - w) * h[1] for c, h in zip(ce, hits)]
                order = [Path(h[3]["source"]).stem for _, h in sorted(zip(scores, hits), key=lambda t: -t[0])]
                total += ndcg_at(list(dict.fromkeys(order)), qrels[q])
            return total / len(cached)

        return max((ndcg_with(w), w) for w in (0.2, 0.4, 0.6, 0.8, 1.0))[1]

    alphas = {"minilm": pick_alpha(idx), "tuned": pick_alpha(tuned)}
    reranked.alpha, reranked_base.alpha = alphas["tuned"], alphas["minilm"]
    for index in (reranked, reranked_base):
        index.candidates = args.rerank_depth
        index.rerank_weight = pick_rerank_weight(index)
    results["fusion"] = {"kind": "weighted", "alpha": alphas,
                         "rerank_weight": {"minilm": reranked_base.rerank_weight, "tuned": reranked.rerank_weight},
                         "rerank_depth": args.rerank_depth}
    print(json.dumps(results["fusion"]))

    # 5. quality and latency on the reported queries, every system in this run
    texts = [queries[q] for q in report_q[: args.latency_queries]]
    llama = {k: llama_retriever(idx, base, k) for k in (10, 100)}
    systems = {
        "bm25": (dca_search(idx, "bm25"), lambda q: idx.search(q, 10, mode="bm25")),
        "dense MiniLM": (dca_search(idx, "dense"), lambda q: idx.search(q, 10, mode="dense")),
        "hybrid": (dca_search(idx, "hybrid"), lambda q: idx.search(q, 10, mode="hybrid")),
        "hybrid + tuned embedder": (dca_search(tuned, "hybrid"), lambda q: tuned.search(q, 10)),
        "hybrid + tuned reranker": (dca_search(reranked_base, "hybrid", rerank=True),
                                    lambda q: reranked_base.search(q, 10)),
        "hybrid + tuned embedder + tuned reranker": (dca_search(reranked, "hybrid", rerank=True),
                                                     lambda q: reranked.search(q, 10)),
        "llama-index VectorStoreIndex (MiniLM)": (llama_search(llama), lambda q: llama[10].retrieve(q)),
    }
    for name, (search, one) in systems.items():
        quality = evaluate(search, queries, qrels, report_q)
        speed = latency(one, texts)
        results["systems"][name] = {**quality, **speed}
        print(f"{name:40s} nDCG@10 {quality['ndcg@10']:.4f}  R@100 {quality['recall@100']:.4f}  "
              f"p50 {speed['p50_ms']:.1f} ms  p95 {speed['p95_ms']:.1f} ms")
    li = results["systems"]["llama-index VectorStoreIndex (MiniLM)"]["p50_ms"]
    results["hybrid_p50_vs_llama_index"] = round(results["systems"]["hybrid"]["p50_ms"] / li, 3)

    (out / "retrieval.json").write_text(json.dumps(results, indent=2))
    plot(results, out / "retrieval.png")
    print_table(results)
    print(f"wrote {out / 'retrieval.json'} and {out / 'retrieval.png'}")
    return 0


def print_table(results: dict) -> None:
    print("\n| system | nDCG@10 | Recall@100 | p50 ms | p95 ms |\n|---|---|---|---|---|")
    for name, r in results["systems"].items():
        print(f"| {name} | {r['ndcg@10']:.3f} | {r['recall@100']:.3f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} |")
    tp = results["throughput"]
    print(f"\nindexing ({tp['docs']} docs, {tp['chunks']} chunks): raw encode {tp['raw_encode_chunks_per_s']} chunks/s, "
          f"dca {tp['dca_index_chunks_per_s']} ({tp['dca_vs_raw_encode']}x raw), llama-index "
          f"{tp['llama_index_chunks_per_s']} chunks/s; dca/llama-index docs/s {tp['dca_vs_llama_index_docs']}x")


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["systems"])
    fig, axes = plt.subplots(1, 3, figsize=(16, 5))
    nd = [results["systems"][n]["ndcg@10"] for n in names]
    axes[0].barh(names, nd, color="tab:blue")
    axes[0].axvline(0.75, color="red", linestyle="--", label="target 0.75")
    axes[0].set_xlabel("nDCG@10 (reported SciFact train queries)")
    axes[0].legend()
    p50 = [results["systems"][n]["p50_ms"] for n in names]
    axes[1].barh(names, p50, color="tab:orange")
    axes[1].set_yticklabels([])
    axes[1].set_xlabel("query latency p50 (ms, k=10)")
    tp = results["throughput"]
    labels = ["raw encode", "dca Index.add", "llama-index default"]
    vals = [tp["raw_encode_chunks_per_s"], tp["dca_index_chunks_per_s"], tp["llama_index_chunks_per_s"]]
    axes[2].bar(labels, vals, color=["gray", "tab:green", "tab:purple"])
    axes[2].set_ylabel("chunks / s")
    axes[2].set_title(f"indexing {tp['docs']} docs")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
