"""The store end to end on small real documents with the real MiniLM and a real Chroma folder."""
from __future__ import annotations

import argparse
import json

import pytest

from dca.abilities import Knowledge, check_ability
from retrieval import Index, RetrievalError
from retrieval.records import finqa_facts


@pytest.fixture(scope="module")
def store(tmp_path_factory, corpus):
    idx = Index(tmp_path_factory.mktemp("store"), "docs")
    report = idx.add(corpus, progress=False)
    return idx, report


def test_add_reports_and_counts(store, corpus):
    idx, report = store
    assert report.added == 7 and report.updated == 0 and report.unchanged == 0
    assert report.skipped == 1 and "photo.png" in next(iter(report.skip_reasons))
    assert report.total_chunks == idx.count() == report.chunks_added > 7
    assert sorted(p.rsplit("/", 1)[1] for p in idx.sources()) == [
        "entergy.md", "fruit.html", "manual.pdf", "memo.docx", "notes.txt", "planets.jsonl", "staff.csv"]
    assert "7 added" in report.summary() and "1 skipped" in report.summary()


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_each_mode_finds_the_table_row(store, mode):
    idx, _ = store
    hits = idx.search("Utility net revenue 2015", k=3, mode=mode)
    assert hits[0].text.startswith("Utility: 2015 = $5,829") or hits[0].metadata.get("kind") == "text"
    row = next(h for h in hits if h.metadata.get("kind") == "table_row")
    assert row.metadata["row"] == 1 and row.source.endswith("entergy.md")
    assert all(0.0 <= h.score <= 1.0 for h in hits)
    assert [h.score for h in hits] == sorted([h.score for h in hits], reverse=True)


def test_cited_sources_pages_and_filters(store):
    idx, _ = store
    hit = idx.search("how often must the pump seal be replaced", k=1)[0]
    assert hit.source.endswith("manual.pdf") and hit.metadata["page"] == 1 and "page 1" in hit.cite()
    for mode in ("dense", "bm25", "hybrid"):
        rows = idx.search("bananas", k=5, mode=mode, where={"kind": "table_row"})
        assert rows and all(h.metadata["kind"] == "table_row" for h in rows)
    assert idx.search("moons of Mars", k=1, where={"record_id": "p2"})[0].metadata["record_id"] == "p2"
    with pytest.raises(RetrievalError, match="where"):
        idx.search("x", where={"$bogus": 1}, mode="bm25")


def test_index_is_a_knowledge_ability(store):
    idx, _ = store
    check_ability("knowledge", idx)
    assert isinstance(idx, Knowledge)
    assert [e.id for e in idx.retrieve("comet over Lisbon", 2)] == [e.id for e in idx.search("comet over Lisbon", 2)]


def test_incremental_add_update_remove(tmp_path, many_docs):
    folder = many_docs(tmp_path / "docs", 6)
    idx = Index(tmp_path / "store", "inc")
    first = idx.add(folder, progress=False)
    assert (first.added, first.total_chunks) == (6, 6)
    again = idx.add(folder, progress=False)
    assert (again.added, again.updated, again.unchanged, again.chunks_added) == (0, 0, 6, 0)
    (folder / "doc001.txt").write_text("Completely new text about volcano monitoring in Iceland.")
    (folder / "doc002.txt").unlink()
    (folder / "doc009.txt").write_text("A brand new file about tide tables.")
    (folder / "doc003.txt").touch()  # new mtime, same content: unchanged
    third = idx.add(folder, progress=False)
    assert (third.added, third.updated, third.removed, third.unchanged) == (1, 1, 1, 4)
    assert idx.count() == third.total_chunks == 6
    assert idx.search("volcano Iceland", k=1)[0].source.endswith("doc001.txt")
    assert not any(h.source.endswith("doc002.txt") for h in idx.search("warehouse 2 district 2", k=6, mode="bm25"))
    assert idx.search("tide tables", k=1, mode="bm25")[0].source.endswith("doc009.txt")
    # a fresh Index on the same folder sees the same store (persistence)
    assert Index(tmp_path / "store", "inc").count() == 6


def test_a_store_indexed_by_another_reader_version_reads_its_files_again(tmp_path, many_docs, monkeypatch):
    """Content hashes cannot see that dca now reads a file differently: files indexed by another
    version of the readers are read again once (updated, not added), each when its folder is next
    added, then skipped again."""
    import retrieval.index as index_module

    folder, other = many_docs(tmp_path / "docs", 3), many_docs(tmp_path / "more", 2)
    idx = Index(tmp_path / "store", "ver")
    assert idx.add([folder, other], progress=False).added == 5
    monkeypatch.setattr(index_module, "READER_VERSION", "next")
    part = idx.add(folder, progress=False)
    assert (part.added, part.updated, part.unchanged) == (0, 3, 0)
    assert idx.add(folder, progress=False).unchanged == 3
    both = idx.add([folder, other], progress=False)
    assert (both.updated, both.unchanged) == (2, 3)
    again = idx.add([folder, other], progress=False)
    assert (again.added, again.updated, again.unchanged, again.chunks_added) == (0, 0, 5, 0)
    assert idx.count() == again.total_chunks == 5


def test_add_facts_keeps_gold_keys(tmp_path, finqa_records):
    idx = Index(tmp_path / "store", "finqa")
    record = finqa_records[0]
    facts = finqa_facts(record)
    report = idx.add_facts(facts, doc_id=record["id"])
    assert report.total_chunks == len(facts)
    hit = idx.search("tranche a-3 due june 2022 amount", k=1)[0]
    assert hit.metadata["gold_key"] == "table_4" and hit.id == f"{record['id']}::{hit.metadata['fact_id']}"
    assert idx.add_facts(facts, doc_id=record["id"]).unchanged == 1
    idx.add_facts(facts[:3], doc_id=record["id"])
    assert idx.count() == 3


def test_clear_errors_for_user_mistakes(tmp_path):
    with pytest.raises(RetrievalError, match="collection name 'ab'"):
        Index(tmp_path, "ab")
    with pytest.raises(RetrievalError, match="mode 'fuzzy'"):
        Index(tmp_path, "abc", mode="fuzzy")
    with pytest.raises(RetrievalError, match="no such file"):
        Index(tmp_path, "abc").add(tmp_path / "nothing-here")
    with pytest.raises(RetrievalError, match="embedder 'no/such-model'"):
        Index(tmp_path / "s2", "abc", embedder="no/such-model").add(tmp_path, progress=False)


def test_corrupt_file_is_skipped_and_the_rest_indexed(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "good.txt").write_text("Lighthouses guide ships along the rocky coast.")
    (folder / "bad.pdf").write_bytes(b"%PDF-1.4 garbage")
    report = Index(tmp_path / "store", "mixed").add(folder, progress=False)
    assert report.added == 1 and report.skipped == 1
    ((path, reason),) = report.skip_reasons.items()
    assert path.endswith("bad.pdf") and reason.startswith("cannot read .pdf file (PdfStreamError")


def test_cli_index_and_search(tmp_path, corpus, capsys):
    from retrieval.cli import register

    parser = argparse.ArgumentParser(prog="dca")
    register(parser.add_subparsers(dest="command"))
    store = str(tmp_path / "cli-store")
    args = parser.parse_args(["index", str(corpus), "--collection", "clidocs", "--store", store,
                              "--no-progress", "--json"])
    assert args.func(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["added"] == 7
    args = parser.parse_args(["search", "largest planet", "--collection", "clidocs", "--store", store, "-k", "1"])
    assert args.func(args) == 0
    assert "Jupiter" in capsys.readouterr().out
    args = parser.parse_args(["index", str(tmp_path / "absent"), "--collection", "clidocs", "--store", store])
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("dca: error: ") and "no such file" in err and "Traceback" not in err


def test_a_relative_store_path_opened_from_two_directories_is_two_stores(tmp_path, monkeypatch):
    """Chroma keeps one client per path string: the store resolves its path, so the same relative
    path after a chdir opens the new directory's store (it used to reach the first one's client)."""
    from retrieval import Fact

    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        monkeypatch.chdir(tmp_path / name)
        idx = Index(".dca/index", "docs", mode="bm25")
        idx.add_facts([Fact(f"{name}-1", f"net sales of the {name} report: 2019 = 5", {})], doc_id=name)
        hits = idx.search("net sales", k=5)
        assert [h.text for h in hits] == [f"net sales of the {name} report: 2019 = 5"]
        assert idx.path == tmp_path / name / ".dca" / "index"
