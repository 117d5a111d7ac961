"""SciFact retrieval benchmark: dca's store against BM25, dense MiniLM and llama-index, in one run.

    .venv/bin/python bench/retrieval.py              # full corpus (tuned models cached under bench/out/)
    .venv/bin/python bench/retrieval.py --docs 600   # a subset: every judged document of the chosen
                                                     # queries plus unjudged ones up to 600, for a quick run
    --skip-throughput / --skip-quality run one half; the JSON keeps the other half's last figures,
    each half with its own "run" record (what was run, when, the command).

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
    ap.add_argument("--docs", type=int, default=0, help="index only this many documents (0: the whole corpus)")
    ap.add_argument("--queries", type=int, default=0, help="tune/report on at most this many queries each (0: all)")
    ap.add_argument("--quick", action="store_true", help="same as --docs 300 --queries 60: a smoke run")
    ap.add_argument("--throughput-docs", type=int, default=200, help="documents in the throughput comparison")
    ap.add_argument("--rounds", type=int, default=4, help="interleaved rounds per throughput contender (best counts)")
    ap.add_argument("--int8-docs", type=int, default=0,
                    help="also an exact-search int8-vs-fp32 check on a corpus subset of this many documents "
                         "(0: skip it; the quality half measures int8 on the whole corpus)")
    ap.add_argument("--skip-throughput", action="store_true", help="keep the last throughput figures")
    ap.add_argument("--combined", action="store_true", help="also tuned embedder + tuned reranker together")
    ap.add_argument("--skip-quality", action="store_true", help="keep the last quality and latency figures")
    ap.add_argument("--merge", metavar="JSON", help="take the throughput and int8 sections of another run's JSON "
                                                     "(e.g. one run with --skip-quality --out DIR), then table and plot")
    ap.add_argument("--reranked-latency-queries", type=int, default=30,
                    help="latency queries for reranked systems (a cross-encoder pass is slow on 2 cores)")
    ap.add_argument("--fresh", action="store_true", help="rebuild the stores (and measure full indexing)")
    ap.add_argument("--retrain", action="store_true", help="retrain the embedder and reranker")
    ap.add_argument("--tune-frac", type=float, default=0.6)
    ap.add_argument("--latency-queries", type=int, default=100)
    ap.add_argument("--rerank-depth", type=int, default=20, help="candidates the reranker rescores")
    ap.add_argument("--rerank-length", type=int, default=160, help="reranker max tokens (query + passage)")
    ap.add_argument("--rerank-epochs", type=float, default=1.0, help="reranker training epochs")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from retrieval.models import load_embedder, resolve_model

    out = Path(args.out)
    work = out / "retrieval"
    work.mkdir(parents=True, exist_ok=True)
    corpus, queries, qrels = load_scifact(data_dir())
    full_size = len(corpus)
    tune_q, report_q = split_queries(qrels, args.tune_frac)
    if args.quick:
        args.docs, args.queries = args.docs or 300, args.queries or 60
        args.throughput_docs = min(args.throughput_docs, 100)
        args.latency_queries = min(args.latency_queries, 30)
    if args.queries:
        tune_q, report_q = tune_q[:args.queries], report_q[:args.queries // 2]
    if args.docs and args.docs < len(corpus):
        keep = {d for q in report_q + tune_q for d in qrels[q]}
        corpus = [d for d in corpus if d["_id"] in keep] + [d for d in corpus if d["_id"] not in keep][:max(0, args.docs - len(keep))]
    tag = ("quick" if args.quick else "full" if len(corpus) == full_size and not args.queries
           else f"d{len(corpus)}_q{len(report_q)}")
    docs = write_docs(corpus, work / f"scifact_docs_{tag}")
    base = resolve_model("all-MiniLM-L6-v2")
    model = load_embedder(base)
    json_path = out / "retrieval.json"
    sections = ("throughput", "int8_check", "quality_run", "systems", "tuning", "fusion", "store",
                "hybrid_p50_vs_llama_index")
    results: dict = {k: v for k, v in (json.loads(json_path.read_text()) if json_path.exists() else {}).items()
                     if k in sections}  # the other half's last figures; anything else is stale
    run = {"command": " ".join(["bench/retrieval.py"] + sys.argv[1:]), "when": time.strftime("%Y-%m-%d %H:%M"),
           "corpus_docs": len(corpus), "full_corpus_docs": full_size, "full_corpus": len(corpus) == full_size,
           "tune_queries": len(tune_q), "report_queries": len(report_q), "threads": args.threads,
           "load_average_at_start": round(os.getloadavg()[0], 2)}
    print(f"SciFact: {len(corpus)} abstracts, {len(tune_q)} tuning / {len(report_q)} reported queries")
    if args.merge:
        other = json.loads(Path(args.merge).read_text())
        for k in ("throughput", "int8_check"):  # the other run's half, whole: nothing stale of this one stays
            if k in other:
                results[k] = other[k]
            else:
                results.pop(k, None)
        args.skip_throughput = args.skip_quality = True
    if not args.skip_throughput:
        results["throughput"] = {"run": run, **throughput(args, corpus, docs, work, tag, model, base)}
        print(json.dumps(results["throughput"], indent=2))
        json_path.write_text(json.dumps(results, indent=2))
        results.pop("int8_check", None)
        if args.int8_docs:
            results["int8_check"] = {"run": run, **int8_check(args, corpus, queries, qrels, report_q, work, base)}
            print(json.dumps(results["int8_check"], indent=2))
            json_path.write_text(json.dumps(results, indent=2))
    if not args.skip_quality:
        for key in ("systems", "tuning", "fusion", "store", "hybrid_p50_vs_llama_index", "full_index"):
            results.pop(key, None)

        def publish(part: dict) -> None:
            results.update(part)
            json_path.write_text(json.dumps(results, indent=2))

        quality(args, corpus, queries, qrels, tune_q, report_q, docs, work, tag, base, run, publish)
    json_path.write_text(json.dumps(results, indent=2))
    if results.get("systems") and results.get("throughput"):
        plot(results, out / "retrieval.png")
    print_table(results)
    print(f"wrote {json_path}" + (f" and {out / 'retrieval.png'}" if results.get("systems") and results.get("throughput") else ""))
    return 0


def throughput(args, corpus: list[dict], docs: Path, work: Path, tag: str, model, base: str) -> dict:
    """Indexing throughput on the same files: raw ``SentenceTransformer.encode`` (its defaults) on the
    chunks dca makes, dca ``Index.add`` (fp32, and int8), raw int8 encode, llama-index's default ingestion.

    The machine is shared, so every contender runs ``--rounds`` times, interleaved, and its best
    round counts (the least disturbed one); every round's seconds are in the JSON.
    """
    from retrieval import Index
    from retrieval.loaders import Chunker, iter_files, load_file
    from retrieval.models import embed_with, int8_encoder, token_counter

    sub = work / f"throughput_docs_{tag}"
    shutil.rmtree(sub, ignore_errors=True)
    sub.mkdir()
    for d in corpus[: args.throughput_docs]:
        shutil.copy(docs / f"{d['_id']}.txt", sub)
    files, _ = iter_files([sub])
    chunker = Chunker(512, 64, tokenizer=token_counter(model))
    chunks = [f.text for path in files for f in load_file(path, chunker)]
    fast = int8_encoder(base)
    fast(["warm up"])

    def raw() -> tuple[float, int]:
        start = time.perf_counter()
        model.encode(chunks, normalize_embeddings=True, show_progress_bar=False)
        return time.perf_counter() - start, len(chunks)

    def raw_int8() -> tuple[float, int]:
        start = time.perf_counter()
        embed_with(fast, chunks)
        return time.perf_counter() - start, len(chunks)

    stores = work / f"tp_stores_{tag}"
    shutil.rmtree(stores, ignore_errors=True)

    def dca(int8: bool) -> Callable[[], tuple[float, int]]:
        def run() -> tuple[float, int]:
            # a fresh folder each time: Chroma keeps a client per path open for the whole process
            store = stores / f"{'int8' if int8 else 'fp32'}-{time.monotonic_ns()}"
            rep = Index(store, "throughput", int8=int8).add(sub, progress=False)
            return rep.seconds, rep.total_chunks
        return run

    contenders = {"raw_encode": raw, "dca_index": dca(False), "llama_index": lambda: llama_ingest(sub, base),
                  "raw_encode_int8": raw_int8, "dca_index_int8": dca(True)}
    times: dict[str, list[float]] = {k: [] for k in contenders}
    made: dict[str, int] = {}
    for r in range(args.rounds):
        for name, run in contenders.items():
            seconds, n = run()
            times[name].append(round(seconds, 2))
            made[name] = n
            print(f"round {r + 1}: {name:16s} {seconds:7.1f} s  {n} chunks", flush=True)
    best = {k: min(v) for k, v in times.items()}
    tp: dict = {"docs": len(files), "chunks": len(chunks), "rounds": args.rounds, "seconds": times}
    for name in contenders:
        tp[f"{name}_chunks_per_s"] = round(made[name] / best[name], 2)
        tp[f"{name}_docs_per_s"] = round(len(files) / best[name], 2)
    tp["llama_index_nodes"] = made["llama_index"]
    tp["dca_vs_raw_encode"] = round(tp["dca_index_chunks_per_s"] / tp["raw_encode_chunks_per_s"], 3)
    tp["dca_vs_llama_index_docs"] = round(tp["dca_index_docs_per_s"] / tp["llama_index_docs_per_s"], 3)
    tp["dca_int8_vs_raw_encode"] = round(tp["dca_index_int8_chunks_per_s"] / tp["raw_encode_chunks_per_s"], 3)
    tp["dca_int8_vs_raw_encode_int8"] = round(tp["dca_index_int8_chunks_per_s"] / tp["raw_encode_int8_chunks_per_s"], 3)
    tp["dca_int8_vs_llama_index_docs"] = round(tp["dca_index_int8_docs_per_s"] / tp["llama_index_docs_per_s"], 3)
    # paired: the two contenders of one round ran back to back, so a slow spell of the shared host
    # mostly hits both; the median of the per-round ratios is the steadier figure
    for a, b in (("dca_index_int8", "llama_index"), ("dca_index_int8", "raw_encode"), ("dca_index", "raw_encode")):
        per_round = [tb / ta for ta, tb in zip(times[a], times[b])]
        tp[f"paired_{a}_vs_{b}"] = {"median": round(statistics.median(per_round), 3),
                                    "rounds": [round(x, 3) for x in per_round]}
    return tp


def int8_check(args, corpus: list[dict], queries: dict, qrels: dict, report_q: list[str], work: Path,
               base: str) -> dict:
    """Does int8 change retrieval? Dense nDCG@10 / Recall@100 (exact cosine search) over the same chunks
    with the fp32 vectors of the full-corpus store and with int8 vectors, on a corpus subset that
    holds every judged document of the reported queries."""
    import numpy as np

    from retrieval import Index
    from retrieval.models import embed_with, int8_encoder, query_encoder

    store = work / "store_full"
    if not store.exists():
        return {"skipped": "run the full quality benchmark first (it builds bench/out/retrieval/store_full)"}
    keep = {d for q in report_q for d in qrels[q]}
    fillers = [d["_id"] for d in corpus if d["_id"] not in keep]
    chosen = {d["_id"] for d in corpus if d["_id"] in keep} | set(fillers[: max(0, args.int8_docs - len(keep))])
    col = Index(store, "scifact")._collection()
    got = col.get(include=["embeddings", "documents", "metadatas"])
    rows = [i for i, m in enumerate(got["metadatas"]) if Path(m["source"]).stem in chosen]
    docs_of = [Path(got["metadatas"][i]["source"]).stem for i in rows]
    fp32 = np.asarray([got["embeddings"][i] for i in rows], dtype=np.float32)
    start = time.perf_counter()
    int8 = embed_with(int8_encoder(base), [got["documents"][i] for i in rows])
    seconds = time.perf_counter() - start
    encode_query = query_encoder(base)
    qvecs = {q: encode_query([queries[q]])[0] for q in report_q}
    out: dict = {"docs": len(chosen), "chunks": len(rows), "int8_encode_chunks_per_s": round(len(rows) / seconds, 2),
                 "cosine_int8_vs_fp32": {"mean": round(float((fp32 * int8).sum(1).mean()), 4),
                                         "min": round(float((fp32 * int8).sum(1).min()), 4)}}
    for name, mat in (("fp32", fp32), ("int8", int8)):
        def search(text: str, k: int, mat=mat) -> list[str]:
            q = next(q for q in report_q if queries[q] == text)
            order = np.argsort(-(mat @ qvecs[q]))[: int(k * 1.5)]
            return list(dict.fromkeys(docs_of[i] for i in order))[:k]
        out[f"dense_{name}"] = evaluate(search, queries, qrels, report_q)
    return out


def quality(args, corpus: list[dict], queries: dict, qrels: dict, tune_q: list[str], report_q: list[str],
            docs: Path, work: Path, tag: str, base: str, run: dict, publish: Callable[[dict], None]) -> None:
    """nDCG@10, Recall@100 and latency of every system on the reported queries, in this run.

    Cheap systems first; each one is published (written to the JSON) as soon as it is measured, so
    a run cut short on a busy machine still leaves every figure it reached.
    """
    from retrieval import Index
    from retrieval.tuning import tune_embedder, tune_reranker

    results: dict = {"quality_run": run, "systems": {}, "tuning": {}, "fusion": {"kind": "weighted", "alpha": {}}}
    texts = [queries[q] for q in report_q[: args.latency_queries]]

    def measure(name: str, search: Callable, one: Callable, n_latency: int | None = None) -> None:
        quality = evaluate(search, queries, qrels, report_q)
        speed = latency(one, texts[:n_latency] if n_latency else texts)
        results["systems"][name] = {**quality, **speed}
        print(f"{name:40s} nDCG@10 {quality['ndcg@10']:.4f}  R@100 {quality['recall@100']:.4f}  "
              f"p50 {speed['p50_ms']:.1f} ms  p95 {speed['p95_ms']:.1f} ms", flush=True)
        sys_ = results["systems"]
        if "hybrid" in sys_ and "llama-index VectorStoreIndex (MiniLM)" in sys_:
            results["hybrid_p50_vs_llama_index"] = round(
                sys_["hybrid"]["p50_ms"] / sys_["llama-index VectorStoreIndex (MiniLM)"]["p50_ms"], 3)
        publish(results)

    def pick_alpha(index) -> float:
        """The hybrid fusion weight, chosen on the tuning queries."""
        best = (-1.0, 0.5)
        for alpha in (0.3, 0.4, 0.5, 0.6, 0.7):
            index.alpha = alpha
            score = evaluate(dca_search(index, "hybrid"), queries, qrels, tune_q[:200])["ndcg@10"]
            best = max(best, (score, alpha))
        index.alpha = best[1]
        return best[1]

    # 1. the store with MiniLM (incremental: a re-run reuses it unless --fresh)
    main_store = work / f"store_{tag}"
    if args.fresh:
        shutil.rmtree(main_store, ignore_errors=True)
    idx = Index(main_store, "scifact", int8=False)
    full = idx.add(docs, progress=True)
    results["store"] = {"chunks": full.total_chunks}
    if full.chunks_added:
        results["store"].update(seconds=round(full.seconds, 1), chunks_per_s=round(full.chunks_added / full.seconds, 2))
    print(full.summary(), flush=True)

    # 2. untuned systems
    results["fusion"]["alpha"]["minilm"] = pick_alpha(idx)
    llama = {k: llama_retriever(idx, base, k) for k in (10, 100)}
    measure("bm25", dca_search(idx, "bm25"), lambda q: idx.search(q, 10, mode="bm25"))
    measure("dense MiniLM", dca_search(idx, "dense"), lambda q: idx.search(q, 10, mode="dense"))
    measure("hybrid", dca_search(idx, "hybrid"), lambda q: idx.search(q, 10, mode="hybrid"))
    measure("llama-index VectorStoreIndex (MiniLM)", llama_search(llama), lambda q: llama[10].retrieve(q))
    del llama

    # 2b. the same documents indexed with the int8 encoder (queries stay fp32): what int8 costs
    int8_store = work / f"store_int8_{tag}"
    if args.fresh:
        shutil.rmtree(int8_store, ignore_errors=True)
    q8 = Index(int8_store, "scifact", int8=True)
    rep = q8.add(docs, progress=True)
    results["store"]["int8"] = {"chunks": rep.total_chunks}
    if rep.chunks_added:
        results["store"]["int8"].update(seconds=round(rep.seconds, 1),
                                        chunks_per_s=round(rep.chunks_added / rep.seconds, 2))
    results["fusion"]["alpha"]["minilm_int8"] = pick_alpha(q8)
    measure("dense MiniLM, int8 index", dca_search(q8, "dense"), lambda q: q8.search(q, 10, mode="dense"))
    measure("hybrid, int8 index", dca_search(q8, "hybrid"), lambda q: q8.search(q, 10, mode="hybrid"))

    # 3. tuned embedder (trained on the tuning queries only; cached), the store re-embedded with it
    pairs = training_pairs(corpus, queries, qrels, tune_q)
    results["tuning"]["pairs"] = len(pairs)
    emb_dir, rr_dir = work / f"embedder_{tag}", work / f"reranker_{tag}"
    if args.retrain or not (emb_dir / "config.json").exists():
        start = time.perf_counter()
        tune_embedder(pairs, emb_dir, index=idx, negatives=1, epochs=1, batch_size=32, max_seq_length=128)
        results["tuning"]["tune_embedder_s"] = round(time.perf_counter() - start, 1)
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
    results["fusion"]["alpha"]["tuned"] = pick_alpha(tuned)
    measure("hybrid + tuned embedder", dca_search(tuned, "hybrid"), lambda q: tuned.search(q, 10))

    # 4. tuned reranker over the MiniLM hybrid list, its interpolation weight chosen on the tuning queries
    if args.retrain or not (rr_dir / "config.json").exists():
        start = time.perf_counter()
        settings = dict(negatives=1, epochs=args.rerank_epochs, batch_size=16, lr=5e-5, head_lr=2e-3,
                        max_length=args.rerank_length)
        tune_reranker(pairs, rr_dir, index=idx, **settings)
        results["tuning"].update(reranker=settings, tune_reranker_s=round(time.perf_counter() - start, 1))
    rr = str(rr_dir.resolve())
    reranked_base = Index(main_store, "scifact", reranker=rr, alpha=idx.alpha, candidates=args.rerank_depth)
    reranked_base.rerank_weight = pick_rerank_weight(reranked_base, rr, queries, qrels, tune_q[:60], args.rerank_depth)
    results["fusion"].update(rerank_weight={"minilm": reranked_base.rerank_weight}, rerank_depth=args.rerank_depth)
    measure("hybrid + tuned reranker", dca_search(reranked_base, "hybrid", rerank=True),
            lambda q: reranked_base.search(q, 10), args.reranked_latency_queries)
    if args.combined:
        reranked = Index(tuned_store, "scifact", embedder=str(emb_dir.resolve()), reranker=rr, alpha=tuned.alpha,
                         candidates=args.rerank_depth)
        reranked.rerank_weight = pick_rerank_weight(reranked, rr, queries, qrels, tune_q[:60], args.rerank_depth)
        results["fusion"]["rerank_weight"]["tuned"] = reranked.rerank_weight
        measure("hybrid + tuned embedder + tuned reranker", dca_search(reranked, "hybrid", rerank=True),
                lambda q: reranked.search(q, 10), args.reranked_latency_queries)


def pick_rerank_weight(index, rr: str, queries: dict, qrels: dict, qids: list[str], depth: int) -> float:
    """How much of the cross-encoder's score to trust over the first stage's, chosen on ``qids``."""
    from retrieval.models import load_reranker

    ce_model, cached = load_reranker(rr), []
    for q in qids:
        hits = index._hits(queries[q], "hybrid", depth, None)[:depth]
        ce = ce_model.predict([(queries[q], h[2]) for h in hits], batch_size=32, show_progress_bar=False)
        cached.append((q, hits, ce))

    def ndcg_with(w: float) -> float:
        total = 0.0
        for q, hits, ce in cached:
            scores = [w * float(c) + (1 - w) * h[1] for c, h in zip(ce, hits)]
            order = [Path(h[3]["source"]).stem for _, h in sorted(zip(scores, hits), key=lambda t: -t[0])]
            total += ndcg_at(list(dict.fromkeys(order)), qrels[q])
        return total / len(cached)

    return max((ndcg_with(w), w) for w in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0))[1]


def print_table(results: dict) -> None:
    print("\n| system | nDCG@10 | Recall@100 | p50 ms | p95 ms |\n|---|---|---|---|---|")
    for name, r in results.get("systems", {}).items():
        print(f"| {name} | {r['ndcg@10']:.3f} | {r['recall@100']:.3f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} |")
    tp = results.get("throughput")
    if not tp:
        return
    print(f"\nindexing {tp['docs']} docs ({tp['chunks']} chunks), best of {tp.get('rounds', 1)} interleaved rounds\n"
          "| contender | chunks/s | docs/s |\n|---|---|---|")
    for name in ("raw_encode", "dca_index", "llama_index", "raw_encode_int8", "dca_index_int8"):
        if f"{name}_chunks_per_s" in tp:
            print(f"| {name} | {tp[f'{name}_chunks_per_s']} | {tp.get(f'{name}_docs_per_s', '')} |")
    print(", ".join(f"{k} {v}x" for k, v in tp.items() if "_vs_" in k and not k.startswith("paired_")))
    print("paired per-round ratios (median): " + ", ".join(
        f"{k[len('paired_'):]} {v['median']}x {v['rounds']}" for k, v in tp.items() if k.startswith("paired_")))
    check = results.get("int8_check", {})
    if "dense_int8" in check:
        print(f"int8 vs fp32 document vectors ({check['docs']} docs, {check['chunks']} chunks, exact dense search): "
              f"nDCG@10 {check['dense_fp32']['ndcg@10']} -> {check['dense_int8']['ndcg@10']}, Recall@100 "
              f"{check['dense_fp32']['recall@100']} -> {check['dense_int8']['recall@100']}, "
              f"cosine mean {check['cosine_int8_vs_fp32']['mean']} min {check['cosine_int8_vs_fp32']['min']}")


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
    axes[1].set_xscale("log")
    axes[1].set_xlabel("query latency p50 (ms, k=10, log scale)")
    tp = results["throughput"]
    keys = ["raw_encode", "dca_index", "llama_index", "raw_encode_int8", "dca_index_int8"]
    labels = ["raw encode", "dca", "llama-index", "raw int8", "dca int8"]
    shown = [(lab, tp[f"{k}_docs_per_s"]) for k, lab in zip(keys, labels) if f"{k}_docs_per_s" in tp]
    axes[2].bar([lab for lab, _ in shown], [v for _, v in shown],
                color=["gray", "tab:green", "tab:purple", "silver", "lightgreen"][: len(shown)])
    axes[2].set_ylabel("documents / s")
    axes[2].set_title(f"indexing {tp['docs']} docs")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    sys.exit(main())
