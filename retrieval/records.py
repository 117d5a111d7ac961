"""FinQA and TAT-QA records as facts, and as the ordinary documents a user would have.

``finqa_facts`` / ``tatqa_facts`` turn one record's page into paragraph and table-row facts that
keep the dataset's own evidence keys in ``metadata["gold_key"]``:

- FinQA: ``"table_<i>"`` (row ``i`` of ``record["table"]``, row 0 included) and ``"text_<i>"``
  (sentence ``i`` counting ``pre_text`` then ``post_text``), as in ``qa.gold_inds``.
- TAT-QA: ``"table_<i>"`` and ``"paragraph_<order>"`` (questions cite ``rel_paragraphs`` by order).

``write_finqa_page`` / ``write_tatqa_page`` write the same content as markdown, so indexing that
folder through the normal loaders gives the same row facts (tested).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from retrieval.errors import RetrievalError
from retrieval.facts import Fact
from retrieval.tables import caption_scale, clean_cell, table_to_facts


def _field(record: dict, name: str, kind: type, what: str) -> Any:
    value = record.get(name) if isinstance(record, dict) else None
    if not isinstance(value, kind):
        raise RetrievalError(f"{what}: field {name!r} missing or not a {kind.__name__}")
    return value


def _is_text(sentence: str) -> bool:
    return any(ch.isalnum() for ch in sentence)


def _finqa_parts(record: dict) -> tuple[str, list[str], list[str], list[list[str]]]:
    what = f"FinQA record {record.get('id', '?')!r}" if isinstance(record, dict) else "FinQA record"
    pre = _field(record, "pre_text", list, what)
    post = _field(record, "post_text", list, what)
    table = _field(record, "table", list, what)
    page = str(record.get("filename") or record.get("id") or "finqa-page")
    return page, pre, post, table


def finqa_facts(record: dict) -> list[Fact]:
    """A FinQA page's sentences (``text_<i>``) and table rows (``table_<i>``) as facts."""
    page, pre, post, table = _finqa_parts(record)
    prefix = f"finqa:{page}"
    facts: list[Fact] = []
    for i, sentence in enumerate(pre + post):
        text = clean_cell(sentence)
        if _is_text(text):
            facts.append(Fact(f"{prefix}#text{i}", text, {
                "kind": "paragraph", "paragraph": i, "source": page, "gold_key": f"text_{i}"}))
    captions = [s for s in pre if _is_text(s)]
    hint = caption_scale(captions[-1]) if captions else ""  # "... as follows ( in thousands ) ."
    rows = table_to_facts(table, source=page, scale_hint=hint, id_prefix=prefix)
    for fact in rows:
        fact.metadata["gold_key"] = f"table_{fact.metadata['row']}"
        if captions:  # the sentence introducing the table says what its rows measure
            fact.metadata["intro"] = clean_cell(captions[-1])[:300]
    return facts + rows


def _tatqa_parts(doc: dict) -> tuple[str, list[list[str]], list[dict]]:
    table = _field(doc, "table", dict, "TAT-QA document")
    uid = str(table.get("uid") or "tatqa-doc")
    rows = _field(table, "table", list, f"TAT-QA document {uid!r} table")
    paragraphs = sorted(_field(doc, "paragraphs", list, f"TAT-QA document {uid!r}"),
                        key=lambda p: int(p.get("order", 0)))
    return uid, rows, paragraphs


def tatqa_facts(doc: dict) -> list[Fact]:
    """A TAT-QA document's table rows (``table_<i>``) and paragraphs (``paragraph_<order>``)."""
    uid, rows, paragraphs = _tatqa_parts(doc)
    prefix = f"tatqa:{uid}"
    facts = table_to_facts(rows, source=uid, id_prefix=prefix)
    for fact in facts:
        fact.metadata["gold_key"] = f"table_{fact.metadata['row']}"
    for p in paragraphs:
        order = int(p.get("order", 0))
        text = clean_cell(p.get("text", ""))
        if _is_text(text):
            facts.append(Fact(f"{prefix}#p{order}", text, {
                "kind": "paragraph", "paragraph": order, "source": uid, "gold_key": f"paragraph_{order}"}))
    return facts


def markdown_table(rows: list[list[str]]) -> str:
    """Rows as a markdown table whose header line is ``rows[0]`` (the loaders read it back as row 0)."""
    width = max(len(r) for r in rows)

    def line(row: list[str]) -> str:
        cells = [" ".join(str(c).split()).replace("|", "\\|") for c in row] + [""] * (width - len(row))
        return "| " + " | ".join(cells) + " |"

    return "\n".join([line(rows[0]), "|" + "---|" * width] + [line(r) for r in rows[1:]])


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "page"


def write_finqa_page(record: dict, out_dir: str | Path) -> Path:
    """Write a FinQA page as markdown: pre-text sentences, the table, post-text sentences."""
    page, pre, post, table = _finqa_parts(record)
    out = Path(out_dir) / f"{_safe_name(page.removesuffix('.pdf'))}.md"
    blocks = [f"# {page}"] + [s for s in pre if _is_text(s)]
    if table:
        blocks.append(markdown_table(table))
    blocks += [s for s in post if _is_text(s)]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return out


def write_tatqa_page(doc: dict, out_dir: str | Path) -> Path:
    """Write a TAT-QA document as markdown: the table, then its paragraphs in order."""
    uid, rows, paragraphs = _tatqa_parts(doc)
    out = Path(out_dir) / f"{_safe_name(uid)}.md"
    blocks = [f"# Report excerpt {uid}"]
    if rows:
        blocks.append(markdown_table(rows))
    blocks += [" ".join(str(p.get("text", "")).split()) for p in paragraphs if _is_text(str(p.get("text", "")))]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return out
