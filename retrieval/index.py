"""``Index``: dca's RAG store. Load, chunk, embed, store in Chroma; search dense, BM25 or hybrid.

    idx = Index(".dca/index", "reports")
    idx.add("docs/")                       # incremental: unchanged files are skipped by hash
    for ev in idx.search("net revenue 2015", k=5):
        print(ev.score, ev.cite(), ev.text)

Writing is crash-safe (see ``retrieval.manifest``): chunk ids are deterministic, each file is
journalled before its chunks are written and committed after, and one writer at a time holds
the store's lock. An ``Index`` is a ``dca.abilities.Knowledge`` (``retrieve(query, k)``).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from retrieval.bm25 import BM25Index
from retrieval.errors import RetrievalError, SkippedFile
from dca.progress import ProgressBar
from retrieval.facts import Fact, flat_metadata
from retrieval.fusion import ranked, rrf, weighted
from retrieval.loaders import MAX_FILE_MB, READER_VERSION, Chunker, iter_files, load_file
from retrieval.manifest import Entry, Manifest, WriteLock
from retrieval.models import (DEFAULT_EMBEDDER, embed, embedding_dim, int8_by_default, int8_encoder,
                              load_embedder, load_reranker, query_encoder)

if TYPE_CHECKING:
    from dca.types import Evidence

MODES = ("dense", "bm25", "hybrid")
FUSIONS = ("rrf", "weighted")
# groups of chunks the int8 encoder works on while the next group is read and the last one written
_IN_FLIGHT = 2
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,510}[A-Za-z0-9]$")


@dataclass
class IndexReport:
    """What one ``Index.add`` did."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    skipped: int = 0
    skip_reasons: dict[str, str] = field(default_factory=dict)
    skip_counts: dict[str, int] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    chunks_added: int = 0
    chunks_removed: int = 0
    total_chunks: int = 0
    seconds: float = 0.0

    def skip(self, path: str, reason: str, kind: str = "unreadable") -> None:
        """A file left out: its reason, and one more in the count of its kind."""
        self.skipped += 1
        self.skip_reasons[path] = reason
        self.skip_counts[kind] = self.skip_counts.get(kind, 0) + 1

    def note(self, path: str, reason: str) -> None:
        """A file indexed with a repair worth knowing about (e.g. invalid UTF-8 replaced)."""
        self.notes[path] = reason if path not in self.notes else f"{self.notes[path]}; {reason}"

    def summary(self) -> str:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(self.skip_counts.items()))
        return (f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
                f"{self.removed} removed, {self.skipped} skipped{f' ({kinds})' if kinds else ''}"
                f"{f', {len(self.notes)} with notes' if self.notes else ''}; chunks +{self.chunks_added} "
                f"-{self.chunks_removed} = {self.total_chunks} in store; {self.seconds:.1f} s")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Unit:
    """One file (or one ``add_facts`` document) on its way into the store."""

    key: str
    entry: Entry
    facts: list[Fact]
    old_ids: list[str]
    is_new: bool


def _check_name(collection: str) -> None:
    if not isinstance(collection, str) or not _NAME_RE.match(collection) or ".." in collection:
        raise RetrievalError(
            f"collection name {collection!r}: need 3-512 characters of letters, digits, '.', '_' or '-', "
            f"starting and ending with a letter or digit")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Index:
    """A persistent document store with dense, BM25 and hybrid search over Chroma.

    Beyond the core arguments: ``fusion`` ("weighted" or "rrf") and ``alpha`` (the dense list's
    weight) shape hybrid search; ``candidates`` is how deep each list (and the reranker) looks;
    ``rerank_weight`` < 1 mixes the first-stage score into the reranker's; ``lock_timeout`` makes a
    second writer wait that many seconds instead of failing; ``batch_size`` is chunks per group handed to the encoder;
    files over ``max_file_mb`` are skipped unread (``None``: no limit); ``int8=True`` encodes documents
    with an int8-quantised copy of the embedder in onnxruntime (faster; see ``models.int8_encoder``),
    ``False`` with the PyTorch fp32 model, ``None`` picks ``models.int8_by_default(embedder)``.
    """

    def __init__(self, path: str | Path = ".dca/index", collection: str = "docs", *,
                 embedder: str = DEFAULT_EMBEDDER, chunk_size: int = 512, chunk_overlap: int = 64,
                 server: str | None = None, mode: str = "hybrid", reranker: str | None = None,
                 fusion: str = "weighted", alpha: float = 0.5, candidates: int = 50, rerank_weight: float = 1.0,
                 lock_timeout: float = 0.0, batch_size: int = 128, max_file_mb: float | None = MAX_FILE_MB,
                 int8: bool | None = None):
        _check_name(collection)
        if mode not in MODES:
            raise RetrievalError(f"mode {mode!r}: expected one of {', '.join(MODES)}")
        if fusion not in FUSIONS:
            raise RetrievalError(f"fusion {fusion!r}: expected one of {', '.join(FUSIONS)}")
        if chunk_size < 16 or not 0 <= chunk_overlap < chunk_size:
            raise RetrievalError(f"chunk_size {chunk_size} / chunk_overlap {chunk_overlap}: "
                                 f"need chunk_size >= 16 and 0 <= chunk_overlap < chunk_size")
        # absolute: Chroma keeps one client per path string, so a relative path opened again after a
        # chdir would reach the first directory's client
        self.path = Path(path).expanduser().absolute()
        self.collection = collection
        self.embedder = embedder
        self.chunk_size, self.chunk_overlap = chunk_size, chunk_overlap
        self.server = server
        self.mode = mode
        self.reranker = reranker
        self.fusion, self.alpha, self.candidates = fusion, alpha, candidates
        self.rerank_weight = rerank_weight
        self.lock_timeout = lock_timeout
        self.batch_size = max(1, batch_size)
        self.int8 = int8
        if max_file_mb is not None and not max_file_mb > 0:
            raise RetrievalError(f"max_file_mb {max_file_mb}: expected a positive number of megabytes or None")
        self.max_bytes = int(max_file_mb * 2**20) if max_file_mb is not None else None
        self._client: Any = None
        self._col: Any = None
        self._manifest: Manifest | None = None
        self._bm25: BM25Index | None = None
        self._filter_cache: dict[str, Any] = {}
        self._count: int | None = None

    def __repr__(self) -> str:
        where = self.server or str(self.path)
        return f"Index({where!r}, {self.collection!r}, embedder={self.embedder!r}, mode={self.mode!r})"

    # --- plumbing ----------------------------------------------------------------------------

    def _state_dir(self) -> Path:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RetrievalError(f"store {self.path}: cannot create ({exc.strerror})") from exc
        return self.path

    def _scope(self) -> str:
        return f"{self.server}/{self.collection}" if self.server else self.collection

    def _manifest_db(self) -> Manifest:
        if self._manifest is None:
            self._manifest = Manifest(self._state_dir(), self._scope())
        return self._manifest

    def _chroma(self) -> Any:
        if self._client is None:
            import chromadb
            from chromadb.config import Settings

            settings = Settings(anonymized_telemetry=False)
            if self.server:
                host, _, port = self.server.rpartition(":")
                if not host or not port.isdigit():
                    raise RetrievalError(f"server {self.server!r}: expected host:port")
                try:
                    self._client = chromadb.HttpClient(host=host, port=int(port), settings=settings)
                    self._client.heartbeat()
                except Exception as exc:
                    self._client = None
                    raise RetrievalError(f"Chroma server {self.server}: not reachable ({type(exc).__name__})") from exc
            else:
                self._client = chromadb.PersistentClient(path=str(self._state_dir() / "chroma"), settings=settings)
        return self._client

    def _collection(self) -> Any:
        if self._col is None:
            client = self._chroma()
            self._finish_reembed(client)
            self._col = client.get_or_create_collection(
                self.collection, configuration={"hnsw": {"space": "cosine"}}, embedding_function=None)
            meta = self._col.metadata or {}
            stored = meta.get("dca:embedder")
            if stored and self.int8 is None:  # keep the store's document encoder (stores before int8: fp32)
                self.int8 = bool(meta.get("dca:int8", False))
            if stored and stored != self.embedder:
                if self.embedder == DEFAULT_EMBEDDER:  # not chosen by the caller: use what the store holds
                    self.embedder = stored
                else:
                    raise RetrievalError(
                        f"collection {self.collection!r} is embedded with {stored!r}, not {self.embedder!r}; "
                        f"open it with embedder={stored!r} or call reembed({self.embedder!r})")
        return self._col

    def _bm25_dir(self) -> Path:
        return self._state_dir() / "bm25" / re.sub(r"[^A-Za-z0-9._-]", "_", self._scope())

    def _model(self) -> Any:
        return load_embedder(self.embedder)

    def _chunker(self) -> Chunker:
        from retrieval.models import token_counter

        return Chunker(self.chunk_size, self.chunk_overlap, tokenizer=token_counter(self._model()))

    def _generation(self) -> int:
        return int(self._manifest_db().get_state("generation", "0"))

    def _bump_generation(self) -> int:
        gen = self._generation() + 1
        self._manifest_db().set_state("generation", str(gen))
        self._filter_cache.clear()
        self._count = None
        return gen

    # --- reading -----------------------------------------------------------------------------

    def count(self) -> int:
        """How many chunks the collection holds."""
        return int(self._collection().count())

    def sources(self) -> list[str]:
        """The files (and ``add_facts`` documents) the collection holds, sorted."""
        return sorted(k.removeprefix("facts:") for k in self._manifest_db().entries())

    def _all_chunks(self, include: list[str]) -> Iterator[dict[str, Any]]:
        col = self._collection()
        offset, page = 0, 5000
        while True:
            got = col.get(include=include, limit=page, offset=offset)
            if not got["ids"]:
                return
            yield got
            offset += len(got["ids"])

    def _bm25_index(self) -> BM25Index:
        """The BM25 index for the current generation: loaded, or rebuilt from Chroma if stale."""
        gen = self._generation()
        if self._bm25 is not None and self._bm25.generation == gen:
            return self._bm25
        bm = BM25Index(self._bm25_dir())
        if not (bm.saved_generation() == gen and bm.load()):
            self._rebuild_bm25(bm, gen)
        self._bm25 = bm
        return bm

    def _rebuild_bm25(self, bm: BM25Index, gen: int) -> None:
        ids, texts, metas = [], [], []
        for page in self._all_chunks(["documents", "metadatas"]):
            ids += page["ids"]
            texts += page["documents"]
            metas += [m or {} for m in page["metadatas"]]
        bm.build(ids, texts, metas, gen)
        try:
            bm.save()
        except OSError:
            pass  # a read-only store still searches, from memory

    def search(self, query: str, k: int = 5, *, mode: str | None = None, where: dict | None = None,
               rerank: bool | None = None) -> list["Evidence"]:
        """The ``k`` best chunks for ``query``; ``where`` is a Chroma metadata filter."""
        from dca.types import Evidence

        mode = mode or self.mode
        if mode not in MODES:
            raise RetrievalError(f"mode {mode!r}: expected one of {', '.join(MODES)}")
        if not isinstance(query, str) or not query.strip() or k <= 0:
            return []
        rerank = (self.reranker is not None) if rerank is None else rerank
        if rerank and not self.reranker:
            raise RetrievalError("rerank=True needs a reranker: Index(..., reranker='path/to/cross-encoder')")
        depth = max(k, self.candidates) if (rerank or mode == "hybrid") else k
        hits = self._hits(query, mode, depth, where)
        if rerank:  # the cross-encoder rescores the top candidates; the rest keep their order below
            head = self._rerank(query, hits[:self.candidates])
            floor = min((h[1] for h in head), default=0.0)
            tail = hits[self.candidates:]
            top = tail[0][1] if tail and tail[0][1] > 0 else 1.0
            hits = head + [(h[0], floor * 0.999 * max(h[1], 0.0) / top, h[2], h[3]) for h in tail]
        return [Evidence(id=cid, text=text, score=round(float(score), 6), source=str(meta.get("source", "")),
                         metadata=dict(meta)) for cid, score, text, meta, *_ in hits[:k]]

    def retrieve(self, query: str, k: int = 5) -> list["Evidence"]:
        """``search`` with the index's defaults: an ``Index`` is a ``dca.abilities.Knowledge``."""
        return self.search(query, k)

    def _hits(self, query: str, mode: str, depth: int, where: dict | None) -> list[tuple[str, float, str, dict]]:
        """``(id, score in [0,1], text, metadata)`` best first."""
        if mode == "dense":
            return self._dense(query, depth, where)
        if mode == "bm25":
            return self._sparse(query, depth, where)
        dense = self._dense(query, depth, where)
        sparse = self._sparse(query, depth, where)
        info = {h[0]: h for h in sparse}
        info.update({h[0]: h for h in dense})
        if self.fusion == "rrf":
            fused = rrf([[h[0] for h in dense], [h[0] for h in sparse]], [self.alpha, 1 - self.alpha])
        else:
            fused = weighted([{h[0]: h[1] for h in dense}, {h[0]: h[4] for h in sparse}],
                             [self.alpha, 1 - self.alpha])
        return [(cid, s, info[cid][2], info[cid][3]) for cid, s in ranked(fused)]

    def _embed_query(self, query: str) -> Any:
        fast = query_encoder(self.embedder)
        return fast([query]) if fast is not None else embed(self._model(), [query])

    def _dense(self, query: str, n: int, where: dict | None) -> list[tuple]:
        col = self._collection()
        if self._count is None:
            self._count = col.count()
        n = min(n, self._count)
        if n <= 0:
            return []
        try:
            got = col.query(query_embeddings=self._embed_query(query), n_results=n, where=where or None,
                            include=["distances"])
        except Exception as exc:
            if type(exc).__module__.startswith("chromadb") or isinstance(exc, ValueError):
                raise RetrievalError(f"where {json.dumps(where)}: {str(exc).splitlines()[0]}") from exc
            raise
        # Texts and metadata come from the in-memory chunk table the BM25 index keeps (same
        # generation as Chroma): asking Chroma to ship them doubles the query time.
        bm = self._bm25_index()
        ids, dists = got["ids"][0], got["distances"][0]
        missing = [cid for cid in ids if bm.chunk(cid) is None]
        extra = {}
        if missing:
            more = col.get(ids=missing, include=["documents", "metadatas"])
            extra = {cid: (doc or "", meta or {}) for cid, doc, meta in zip(more["ids"], more["documents"],
                                                                             more["metadatas"])}
        out = []
        for cid, d in zip(ids, dists):
            text, meta = bm.chunk(cid) or extra.get(cid, ("", {}))
            out.append((cid, max(0.0, 1.0 - d), text, meta))
        return out

    def _sparse(self, query: str, n: int, where: dict | None) -> list[tuple]:
        """BM25 hits; each tuple carries the raw score last (for weighted fusion)."""
        bm = self._bm25_index()
        mask = None
        if where:
            key = json.dumps(where, sort_keys=True)
            if key not in self._filter_cache:
                try:
                    ids = self._collection().get(where=where, include=[])["ids"]
                except Exception as exc:
                    raise RetrievalError(f"where {key}: {str(exc).splitlines()[0]}") from exc
                self._filter_cache[key] = bm.mask(set(ids))
            mask = self._filter_cache[key]
        return [(bm.ids[i], s / (s + 10.0), bm.texts[i], bm.metadatas[i], s) for i, s in bm.search(query, n, mask)]

    def _rerank(self, query: str, hits: list[tuple]) -> list[tuple]:
        if not hits:
            return hits
        model = load_reranker(self.reranker)
        ce = model.predict([(query, h[2]) for h in hits], batch_size=32, show_progress_bar=False)
        w = self.rerank_weight  # 1.0: the cross-encoder alone; less keeps part of the first-stage score
        scores = [w * float(c) + (1 - w) * h[1] for c, h in zip(ce, hits)]
        order = sorted(range(len(hits)), key=lambda i: -scores[i])
        return [(hits[i][0], scores[i], hits[i][2], hits[i][3]) for i in order]

    # --- writing -----------------------------------------------------------------------------

    def add(self, paths: str | Path | list, *, progress: bool = True) -> IndexReport:
        """Index files and folders: new and changed files (by content hash) are (re)indexed, files
        gone from a given folder are removed, unchanged ones are skipped."""
        start = time.perf_counter()
        report = IndexReport()
        roots = [Path(p).expanduser() for p in (paths if isinstance(paths, (list, tuple)) else [paths])]
        files, left_out = iter_files(roots, self.max_bytes)
        for path, kind, reason in left_out:
            report.skip(path, reason, kind)
        with WriteLock(self._state_dir(), self.lock_timeout):
            self._check_embedder_for_write()
            manifest = self._manifest_db()
            entries = manifest.entries()
            todo: list[tuple[Path, Entry, Entry | None]] = []
            touched: list[Entry] = []
            readable = []
            for f in files:
                key = str(f)
                try:
                    st = f.stat()
                    old = entries.get(key)
                    if old and old.status == "done" and old.size == st.st_size and old.mtime_ns == st.st_mtime_ns \
                            and old.hash.startswith(f"{READER_VERSION}:"):
                        report.unchanged += 1
                        readable.append(f)
                        continue
                    # the readers' version is part of a file's hash: one indexed by another version is
                    # read again (content hashes alone cannot see that dca now reads it differently)
                    digest = f"{READER_VERSION}:{_sha256(f)}"
                except OSError as exc:  # gone or unreadable since it was listed
                    report.skip(key, f"cannot read ({exc.strerror})", "unreadable")
                    continue
                readable.append(f)
                new = Entry(key, digest, st.st_size, st.st_mtime_ns, "done", [])
                if old and old.status == "done" and old.hash == digest:
                    report.unchanged += 1
                    touched.append(Entry(key, digest, st.st_size, st.st_mtime_ns, "done", old.chunk_ids))
                    continue
                todo.append((f, new, old))
            if touched:
                manifest.touch(touched)
            present = {str(f) for f in readable}
            gone = [e for k, e in entries.items() if k not in present and not k.startswith("facts:")
                    and any(_under(k, r) for r in roots)]
            if not todo and not gone:
                report.total_chunks = self.count()
                report.seconds = time.perf_counter() - start
                return report
            self._bump_generation()  # the BM25 index is stale from here until it is rebuilt
            if gone:
                ids = [cid for e in gone for cid in e.chunk_ids]
                self._delete(ids)
                manifest.remove([e.path for e in gone])
                report.removed += len(gone)
                report.chunks_removed += len(ids)
            chunker = self._chunker()
            dropped: list[Entry] = []
            units = self._load_units(todo, chunker, report, dropped)
            self._write(units, report, progress=progress, total=len(todo))
            if dropped:  # indexed before, unreadable now: the store follows the folder
                ids = [cid for e in dropped for cid in e.chunk_ids]
                self._delete(ids)
                manifest.remove([e.path for e in dropped])
                report.removed += len(dropped)
                report.chunks_removed += len(ids)
            self._finish_write(report)
        report.seconds = time.perf_counter() - start
        return report

    def add_facts(self, facts: list[Fact], *, doc_id: str) -> IndexReport:
        """Store ready-made facts as one document ``doc_id`` (replacing what it held before).

        Chunk ids are ``"<doc_id>::<fact.id>"``; the fact's own id is kept as ``metadata["fact_id"]``.
        """
        start = time.perf_counter()
        report = IndexReport()
        if not doc_id:
            raise RetrievalError("add_facts: doc_id must be a non-empty string")
        key = f"facts:{doc_id}"
        stored: list[Fact] = []
        seen: set[str] = set()
        for f in facts:
            if not isinstance(f, Fact) or not isinstance(f.text, str):
                raise RetrievalError(f"add_facts {doc_id!r}: expected Fact objects, got {type(f).__name__}")
            cid = f"{doc_id}::{f.id}"
            if cid in seen or not f.text.strip():
                continue
            seen.add(cid)
            meta = {"source": doc_id, **f.metadata, "fact_id": f.id, "doc_id": doc_id}
            stored.append(Fact(cid, f.text, meta))
        digest = hashlib.sha256(json.dumps([(f.id, f.text, f.metadata) for f in stored], sort_keys=True,
                                           default=str).encode()).hexdigest()
        with WriteLock(self._state_dir(), self.lock_timeout):
            self._check_embedder_for_write()
            old = self._manifest_db().entries().get(key)
            if old and old.status == "done" and old.hash == digest:
                report.unchanged = 1
            else:
                self._bump_generation()
                unit = _Unit(key, Entry(key, digest, 0, 0, "done", [f.id for f in stored]), stored,
                             old.chunk_ids if old else [], old is None or not old.hash)
                self._write(iter([unit]), report, progress=False, total=1)
                self._finish_write(report)
        report.total_chunks = self.count()
        report.seconds = time.perf_counter() - start
        return report

    def remove(self, sources: list[str]) -> int:
        """Drop files / ``add_facts`` documents from the store; returns the chunks removed."""
        with WriteLock(self._state_dir(), self.lock_timeout):
            entries = self._manifest_db().entries()
            keys = [k for s in sources for k in (str(Path(s).expanduser().resolve()), f"facts:{s}", s) if k in entries]
            if not keys:
                return 0
            self._bump_generation()
            ids = [cid for k in keys for cid in entries[k].chunk_ids]
            self._delete(ids)
            self._manifest_db().remove(keys)
            self._finish_write(IndexReport())
            return len(ids)

    def _check_embedder_for_write(self) -> None:
        """A new store records its embedder and whether documents are encoded in int8, so later
        writes (``int8=None``) keep using the same encoder rather than mixing two in one store."""
        col = self._collection()
        if not (col.metadata or {}).get("dca:embedder"):
            self.int8 = self._int8_encoder() is not None
            col.modify(metadata={"dca:embedder": self.embedder, "dca:dim": embedding_dim(self._model()),
                                 "dca:int8": self.int8})

    def _delete(self, ids: list[str]) -> None:
        col = self._collection()
        for i in range(0, len(ids), 5000):
            col.delete(ids=ids[i:i + 5000])

    def _load_units(self, todo: list[tuple[Path, Entry, Entry | None]], chunker: Chunker,
                    report: IndexReport, dropped: list[Entry]) -> Iterator[_Unit]:
        """Read and chunk files one by one; a file that cannot be indexed is skipped with its reason
        (and its earlier chunks listed in ``dropped``), one that changed while read is left for the
        next run (keeping its earlier chunks)."""
        for path, new, old in todo:
            notes: list[str] = []
            skip: SkippedFile | None = None
            try:
                facts = load_file(path, chunker, max_bytes=self.max_bytes, notes=notes)
                st = path.stat()
                if (st.st_size, st.st_mtime_ns) != (new.size, new.mtime_ns):
                    skip = SkippedFile("changed while read", "changed while being read; indexed on the next run")
            except OSError as err:  # vanished or lost permission after it was listed
                skip = SkippedFile("unreadable", f"cannot read ({err.strerror})")
            except SkippedFile as err:
                skip = err
            if skip is not None:
                report.skip(str(path), skip.reason, skip.kind)
                if old is not None and skip.kind != "changed while read":
                    dropped.append(old)
                continue
            for n in notes:
                report.note(str(path), n)
            new.chunk_ids = [f.id for f in facts]
            yield _Unit(str(path), new, facts, old.chunk_ids if old else [], old is None or not old.hash)

    def _write(self, units: Iterable[_Unit], report: IndexReport, *, progress: bool, total: int) -> None:
        """Embed facts in groups of ``batch_size``, upsert them, and commit every file whose chunks
        are all stored.

        With the int8 encoder the groups are encoded by its worker threads while this thread reads,
        chunks and upserts: up to ``_IN_FLIGHT`` groups are being encoded at any time, and they are
        written in the order they were read, so a file is committed only after everything before
        it. (fp32: ``SentenceTransformer.encode`` runs on this thread, group by group.)
        """
        model = self._model()
        fast = self._int8_encoder()
        if fast is not None:
            start: Any = fast.submit
        else:
            def start(texts: list[str]) -> Callable[[], Any]:
                vectors = embed(model, texts)
                return lambda: vectors
        col = self._collection()
        manifest = self._manifest_db()
        facts: list[Fact] = []
        done: list[_Unit] = []
        encoding: deque[tuple[list[Fact], list[_Unit], Callable[[], Any]]] = deque()
        bar = ProgressBar(total, "indexing", enabled=progress)

        def hand_over() -> None:
            encoding.append((facts[:], done[:], start([f.text for f in facts])))
            facts.clear()
            done.clear()

        def write_oldest() -> None:
            part, units_done, vectors = encoding.popleft()
            embeddings = vectors()
            for i in range(0, len(part), 5000):
                chunk = part[i:i + 5000]
                col.upsert(ids=[f.id for f in chunk], embeddings=embeddings[i:i + 5000],
                           documents=[f.text for f in chunk], metadatas=[flat_metadata(f.metadata) for f in chunk])
            stale = [cid for u in units_done for cid in set(u.old_ids) - set(u.entry.chunk_ids)]
            if stale:
                self._delete(stale)
            manifest.commit([u.entry for u in units_done])
            for u in units_done:
                report.chunks_removed += len(set(u.old_ids) - set(u.entry.chunk_ids))
                report.chunks_added += len(set(u.entry.chunk_ids) - set(u.old_ids))
                report.added += u.is_new
                report.updated += not u.is_new
            bar.advance(len(units_done))

        with bar:
            for unit in units:
                manifest.mark_pending([(unit.key, unit.entry.chunk_ids)])
                for fact in unit.facts:
                    facts.append(fact)
                    if len(facts) >= self.batch_size:
                        hand_over()
                        while len(encoding) > _IN_FLIGHT:
                            write_oldest()
                done.append(unit)
            if facts or done:
                hand_over()
            while encoding:
                write_oldest()

    def _int8_encoder(self) -> Any:
        """The int8 document encoder when this index uses one, else ``None`` (fp32 PyTorch).

        Asked for (``int8=True``) and unavailable is an error; by default it falls back to fp32.
        """
        if self.int8 is False or (self.int8 is None and not int8_by_default(self.embedder)):
            return None
        try:
            return int8_encoder(self.embedder)
        except Exception as exc:  # noqa: BLE001 (export or quantisation failed: say so, or use fp32)
            if self.int8:
                raise RetrievalError(f"int8 encoder for {self.embedder!r}: {type(exc).__name__}: "
                                     f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc
            logging.getLogger(__name__).warning("int8 encoder unavailable (%s); indexing in fp32", exc)
            return None

    def _finish_write(self, report: IndexReport) -> None:
        """Rebuild BM25 from what Chroma now holds and save it under a new generation (a reader
        that rebuilt mid-write saved under the old one, so its partial index is never reused)."""
        gen = self._bump_generation()
        bm = BM25Index(self._bm25_dir())
        self._rebuild_bm25(bm, gen)
        self._bm25 = bm
        report.total_chunks = len(bm)

    def reembed(self, embedder: str) -> None:
        """Re-embed every chunk with another embedder (e.g. one from ``dca tune-embedder``).

        The new vectors go into a fresh collection that replaces the old one only when complete,
        so a crash leaves either the old store or the new one, never a mix.
        """
        with WriteLock(self._state_dir(), self.lock_timeout):
            col = self._collection()
            model = load_embedder(embedder)
            client = self._chroma()
            tmp_name = f"{self.collection}-reembed"
            try:
                client.delete_collection(tmp_name)
            except Exception:  # noqa: BLE001 (absent is fine)
                pass
            tmp = client.create_collection(
                tmp_name, configuration={"hnsw": {"space": "cosine"}}, embedding_function=None,
                metadata={"dca:embedder": embedder, "dca:dim": embedding_dim(model), "dca:int8": False,
                          "dca:replaces": self.collection})
            for page in self._all_chunks(["documents", "metadatas"]):
                vectors = embed(model, page["documents"])
                tmp.upsert(ids=page["ids"], embeddings=vectors, documents=page["documents"],
                           metadatas=[m or {} for m in page["metadatas"]])
            if tmp.count() != col.count():
                raise RetrievalError(f"reembed {self.collection!r}: copied {tmp.count()} of {col.count()} chunks")
            self.embedder, self.int8 = embedder, False  # re-embedding writes fp32 vectors
            self._col = None
            self._finish_reembed(client)
            self._finish_write(IndexReport())

    def _finish_reembed(self, client: Any) -> None:
        """Complete a re-embedding whose new collection is full but not yet renamed."""
        tmp_name = f"{self.collection}-reembed"
        try:
            tmp = client.get_collection(tmp_name)
        except Exception:  # noqa: BLE001 (no re-embedding in progress)
            return
        if (tmp.metadata or {}).get("dca:replaces") != self.collection:
            return
        try:
            old_count = client.get_collection(self.collection).count()
        except Exception:  # noqa: BLE001
            old_count = None
        if old_count is not None and tmp.count() != old_count:
            client.delete_collection(tmp_name)  # an unfinished copy: the old collection is intact
            return
        if old_count is not None:
            client.delete_collection(self.collection)
        meta = {k: v for k, v in (tmp.metadata or {}).items() if k != "dca:replaces"}
        tmp.modify(name=self.collection, metadata=meta)

    def drop(self) -> None:
        """Delete the collection, its manifest rows and its BM25 index."""
        import shutil

        with WriteLock(self._state_dir(), self.lock_timeout):
            try:
                self._chroma().delete_collection(self.collection)
            except Exception:  # noqa: BLE001 (already absent)
                pass
            self._col = None
            self._manifest_db().drop()
            shutil.rmtree(self._bm25_dir(), ignore_errors=True)
            self._bm25 = None
            self._count = None


def _under(path: str, root: Path) -> bool:
    r = str(root.resolve())
    return path == r or path.startswith(r.rstrip(os.sep) + os.sep)


