"""Fine-tuning the embedder and training a reranker on (query, relevant passage) pairs.

Both use sentence-transformers' trainers. The embedder learns with
``MultipleNegativesRankingLoss``: every other passage in the batch is a negative, plus hard
negatives that BM25 ranks high for the query but that are not its passage. The reranker is a
``CrossEncoder`` started from the MiniLM weights (no pretrained reranker can be downloaded here)
and trained with binary cross-entropy on the positives and the same kind of hard negatives.
Both are saved in the Hugging Face layout, so ``Index(embedder=out)`` / ``Index(reranker=out)``
load them like any other model.
"""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrieval.errors import RetrievalError
from retrieval.models import DEFAULT_EMBEDDER, resolve_model

if TYPE_CHECKING:
    from retrieval.index import Index

_QUERY_KEYS = ("query", "question", "anchor")
_PASSAGE_KEYS = ("passage", "positive", "text", "document")


def read_pairs(path: str | Path, limit: int | None = None) -> list[tuple[str, str]]:
    """``(query, passage)`` pairs from a JSONL file of ``{"query": ..., "passage": ...}`` lines."""
    path = Path(path)
    if not path.exists():
        raise RetrievalError(f"{path}: no such pairs file")
    pairs: list[tuple[str, str]] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RetrievalError(f"{path}: line {n} is not valid JSON ({exc.msg})") from exc
        q = next((row[k] for k in _QUERY_KEYS if isinstance(row, dict) and isinstance(row.get(k), str)), None)
        p = next((row[k] for k in _PASSAGE_KEYS if isinstance(row, dict) and isinstance(row.get(k), str)), None)
        if not q or not p:
            raise RetrievalError(f"{path}: line {n} needs string fields 'query' and 'passage'")
        pairs.append((q, p))
        if limit and len(pairs) >= limit:
            break
    if not pairs:
        raise RetrievalError(f"{path}: no pairs")
    return pairs


def mine_negatives(pairs: list[tuple[str, str]], *, index: "Index | None" = None,
                   corpus: list[str] | None = None, n: int = 1, depth: int = 30, seed: int = 0) -> list[list[str]]:
    """Per pair, ``n`` passages BM25 ranks in the query's top ``depth`` that are none of its positives.

    The pool is the collection's chunks when an index is given, else ``corpus``, else the
    pairs' own passages.
    """
    from retrieval.bm25 import BM25Index

    if index is not None and index.count() > 0:
        bm = index._bm25_index()
    else:
        pool = list(dict.fromkeys(corpus or [p for _, p in pairs]))
        bm = BM25Index(Path("."))
        bm.build([str(i) for i in range(len(pool))], pool, [{} for _ in pool], 0)
    positives: dict[str, set[str]] = {}
    for q, p in pairs:
        positives.setdefault(q, set()).add(_norm(p))
    rng = random.Random(seed)
    out: list[list[str]] = []
    for q, _ in pairs:
        cands = [bm.texts[i] for i, _ in bm.search(q, depth + len(positives[q]))]
        cands = [c for c in cands if not _overlaps(_norm(c), positives[q])][:depth]
        out.append(rng.sample(cands, min(n, len(cands))) if n else [])
    return out


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _overlaps(text: str, positives: set[str]) -> bool:
    """A chunk of a positive passage (or a passage containing one) is not a negative."""
    return any(text in p or p in text for p in positives)


def _trainer_args(out: Path, epochs: float, batch_size: int, lr: float, seed: int, cross: bool,
                  batch_sampler: Any = None) -> Any:
    from dca.models.training import warmup_args

    kwargs = dict(output_dir=str(out / ".trainer"), num_train_epochs=epochs, per_device_train_batch_size=batch_size,
                  learning_rate=lr, seed=seed, save_strategy="no", report_to="none",
                  logging_steps=10, disable_tqdm=False, use_cpu=True, dataloader_num_workers=0, **warmup_args(0.1))
    if cross:
        from sentence_transformers.cross_encoder import CrossEncoderTrainingArguments

        return CrossEncoderTrainingArguments(**kwargs, **({"batch_sampler": batch_sampler} if batch_sampler else {}))
    from sentence_transformers.sentence_transformer.training_args import (
        BatchSamplers,
        SentenceTransformerTrainingArguments,
    )

    return SentenceTransformerTrainingArguments(batch_sampler=BatchSamplers.NO_DUPLICATES, **kwargs)


def tune_embedder(pairs: list[tuple[str, str]], out: str | Path, *, base: str = DEFAULT_EMBEDDER,
                  index: "Index | None" = None, corpus: list[str] | None = None, negatives: int = 1,
                  epochs: float = 1.0, batch_size: int = 32, lr: float = 2e-5, seed: int = 0,
                  max_seq_length: int | None = None) -> Path:
    """Fine-tune ``base`` on ``pairs`` with in-batch and BM25 hard negatives; save it to ``out``."""
    import torch
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    if not pairs:
        raise RetrievalError("tune-embedder: no (query, passage) pairs")
    out = Path(out)
    torch.manual_seed(seed)
    model = SentenceTransformer(resolve_model(base), device="cpu")
    if max_seq_length:
        model.max_seq_length = max_seq_length
    columns: dict[str, list[str]] = {"anchor": [q for q, _ in pairs], "positive": [p for _, p in pairs]}
    if negatives:
        negs = mine_negatives(pairs, index=index, corpus=corpus, n=negatives, seed=seed)
        keep = [i for i, ns in enumerate(negs) if len(ns) == negatives]
        columns = {k: [v[i] for i in keep] for k, v in columns.items()}
        for j in range(negatives):
            columns[f"negative_{j}"] = [negs[i][j] for i in keep]
    trainer = SentenceTransformerTrainer(
        model=model, args=_trainer_args(out, epochs, batch_size, lr, seed, cross=False),
        train_dataset=Dataset.from_dict(columns), loss=MultipleNegativesRankingLoss(model))
    trainer.train()
    out.mkdir(parents=True, exist_ok=True)
    model.save(str(out))
    _clean(out)
    return out


def tune_reranker(pairs: list[tuple[str, str]], out: str | Path, *, base: str = DEFAULT_EMBEDDER,
                  index: "Index | None" = None, corpus: list[str] | None = None, negatives: int = 3,
                  epochs: float = 1.0, batch_size: int = 32, lr: float = 5e-5, head_lr: float = 2e-3,
                  seed: int = 0, max_length: int = 256, given_negatives: list[list[str]] | None = None,
                  group_by_length: bool = False) -> Path:
    """Train a ``CrossEncoder`` reranker from ``base``'s weights on positives and BM25 hard negatives
    (or, with ``given_negatives``, each pair's own negatives: e.g. the other facts of its page).
    ``group_by_length`` batches rows of similar length (``length_grouped``): less padding, faster.

    The scoring head (pooler and classifier) learns at ``head_lr``, the encoder at ``lr``. An
    embedder's ``[CLS]`` pooler was never trained (it pools by mean), so its output is small
    (norm ~1.4 for MiniLM) and the new classifier starts at logits ~0.03: with Adam's ~lr-sized
    steps at one shared 5e-5, a few hundred pairs stayed at chance (loss 0.69); 2e-3 on the head
    leaves the plateau in tens of steps.
    """
    if not pairs:
        raise RetrievalError("tune-reranker: no (query, passage) pairs")
    if given_negatives is not None and len(given_negatives) != len(pairs):
        raise RetrievalError(f"tune-reranker: {len(given_negatives)} negative lists for {len(pairs)} pairs")
    negs = given_negatives if given_negatives is not None else \
        mine_negatives(pairs, index=index, corpus=corpus, n=negatives, seed=seed)
    rows: dict[str, list[Any]] = {"query": [], "passage": [], "label": []}
    for (q, p), ns in zip(pairs, negs):
        for text, label in [(p, 1.0)] + [(n, 0.0) for n in ns]:
            rows["query"].append(q)
            rows["passage"].append(text)
            rows["label"].append(label)
    return train_cross_encoder(rows, out, base=base, epochs=epochs, batch_size=batch_size, lr=lr, head_lr=head_lr,
                               seed=seed, max_length=max_length,
                               pos_weight=max(1.0, sum(map(len, negs)) / len(negs)), what="tune-reranker",
                               group_by_length=group_by_length)


def train_cross_encoder(rows: dict[str, list[Any]], out: str | Path, *, num_labels: int = 1,
                        base: str = DEFAULT_EMBEDDER, epochs: float = 1.0, batch_size: int = 32, lr: float = 5e-5,
                        head_lr: float = 2e-3, seed: int = 0, max_length: int = 256, pos_weight: float = 1.0,
                        what: str = "cross-encoder", group_by_length: bool = False) -> Path:
    """Fine-tune a ``CrossEncoder`` from ``base``'s weights on ``rows`` (two text columns and
    ``label``): one logit with binary cross-entropy, or ``num_labels`` classes with cross-entropy
    (integer labels). The head learns at ``head_lr`` (see ``tune_reranker``). ``group_by_length``
    batches rows of similar token length (``length_grouped``). Saved to ``out``."""
    import torch
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss, CrossEntropyLoss

    from transformers.utils import logging as hf_logging

    out = Path(out)
    torch.manual_seed(seed)
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the classifier head is new on purpose: no "MISSING" load report
    try:
        model = CrossEncoder(resolve_model(base), num_labels=num_labels, max_length=max_length, device="cpu")
    finally:
        hf_logging.set_verbosity(level)
    data = Dataset.from_dict(rows).shuffle(seed=seed)
    loss = BinaryCrossEntropyLoss(model, pos_weight=torch.tensor(pos_weight)) if num_labels == 1 \
        else CrossEntropyLoss(model)
    head = [p for n, p in model.named_parameters() if ".classifier." in n or ".pooler." in n]
    if not head:
        raise RetrievalError(f"{what}: {base!r} has no pooler/classifier head to train")
    body = [p for n, p in model.named_parameters() if ".classifier." not in n and ".pooler." not in n]
    optimizer = torch.optim.AdamW([{"params": body, "lr": lr}, {"params": head, "lr": head_lr}], weight_decay=0.01)
    grouped = length_grouped(model.tokenizer, [k for k in rows if k != "label"], max_length) \
        if group_by_length else None
    trainer = CrossEncoderTrainer(model=model, args=_trainer_args(out, epochs, batch_size, lr, seed, cross=True,
                                                                  batch_sampler=grouped),
                                  train_dataset=data, loss=loss, optimizers=(optimizer, None))
    trainer.train()
    out.mkdir(parents=True, exist_ok=True)
    model.save(str(out))
    _clean(out)
    return out


def length_grouped(tokenizer: Any, columns: list[str], max_length: int) -> Any:
    """A batch-sampler factory for sentence-transformers' trainers that puts rows of similar token
    length in one batch (transformers' ``LengthGroupedSampler``: shuffled mega-batches of 50
    batches, each sorted by length), so a batch is padded to its own longest row instead of the
    longest of a random draw. For pointwise losses (no in-batch negatives) the order is the only
    change. On the docqa fact reranker's pairs it halves the tokens the model computes over
    (1.14M padded tokens per epoch at random, 0.54M grouped, 0.54M real)."""
    from sentence_transformers.base.sampler import DefaultBatchSampler
    from transformers.trainer_pt_utils import LengthGroupedSampler

    def make(dataset: Any, batch_size: int, drop_last: bool, valid_label_columns: list[str] | None = None,
             generator: Any = None, seed: int = 0) -> Any:
        texts = [list(dataset[c]) for c in columns]
        ids = tokenizer(*texts, truncation=True, max_length=max_length)["input_ids"]
        sampler = LengthGroupedSampler(batch_size, lengths=[len(x) for x in ids], generator=generator)
        return DefaultBatchSampler(sampler, batch_size=batch_size, drop_last=drop_last,
                                   valid_label_columns=valid_label_columns, generator=generator, seed=seed)

    return make


def _clean(out: Path) -> None:
    import shutil

    shutil.rmtree(out / ".trainer", ignore_errors=True)
