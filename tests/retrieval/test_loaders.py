"""Every supported file type loads into facts with sources, places and stable ids."""
from __future__ import annotations

import pytest

from retrieval.errors import RetrievalError
from retrieval.loaders import Chunker, iter_files, load_file, split_markdown_tables
from retrieval.records import finqa_facts, tatqa_facts, write_finqa_page, write_tatqa_page


def _load(path):
    return load_file(path.resolve(), Chunker(128, 16))


def test_iter_files_skips_unsupported_with_reason(corpus):
    files, skipped = iter_files([corpus])
    assert {f.name for f in files} == {"entergy.md", "fruit.html", "notes.txt", "staff.csv", "planets.jsonl",
                                       "manual.pdf", "memo.docx"}
    assert skipped == [(str(corpus / "photo.png"), "unsupported", "unsupported file type .png")]
    with pytest.raises(RetrievalError, match="no such file"):
        iter_files([corpus / "missing"])


def test_markdown_tables_become_rows_and_text_is_chunked(corpus):
    facts = _load(corpus / "entergy.md")
    rows = [f for f in facts if f.kind == "table_row"]
    assert [f.text for f in rows] == ["Utility: 2015 = $5,829; 2014 = $5,735 (segment; in millions)",
                                      "Wholesale: 2015 = 1,203; 2014 = 1,100 (segment; in millions)"]
    assert rows[0].id.endswith("entergy.md#t0#row1") and rows[0].metadata["row"] == 1
    text = [f for f in facts if f.kind == "text"]
    assert any("Management expects" in f.text and f.metadata["heading"] == "/Entergy results/" for f in text)
    assert not any("|" in f.text for f in text)  # the table is not also chunked as prose
    assert all(f.metadata["source"] == str((corpus / "entergy.md").resolve()) for f in facts)


def test_html_csv_json_pdf_docx(corpus):
    html = _load(corpus / "fruit.html")
    assert "Bananas: 2019 = 1,234; 2018 = 1,100 ($ in thousands)" in [f.text.split(" — ", 1)[-1] for f in html]
    assert any("port opened" in f.text for f in html if f.kind == "text")
    csv_rows = _load(corpus / "staff.csv")
    assert [f.text for f in csv_rows] == ["Ada: age = 36; city = London (name)",
                                          "Grace: age = 85; city = Arlington (name)"]
    planets = _load(corpus / "planets.jsonl")
    assert [f.metadata["record_id"] for f in planets] == ["p1", "p2"]
    assert "Phobos" in planets[1].text and "title: Mars" in planets[1].text
    pdf = _load(corpus / "manual.pdf")
    assert [f.metadata["page"] for f in pdf] == [1, 2] and "three years" in pdf[1].text
    docx = _load(corpus / "memo.docx")
    assert "Svalbard" in " ".join(f.text for f in docx)


def test_ids_are_stable_across_loads(corpus):
    for name in ("entergy.md", "fruit.html", "manual.pdf"):
        a, b = _load(corpus / name), _load(corpus / name)
        assert [(f.id, f.text) for f in a] == [(f.id, f.text) for f in b]
        assert len({f.id for f in a}) == len(a)


def test_broken_files_raise_one_line_naming_the_file(tmp_path):
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.4 this is not really a pdf")
    with pytest.raises(RetrievalError, match="broken.pdf"):
        _load(bad)
    js = tmp_path / "bad.jsonl"
    js.write_text('{"a": 1}\n{oops\n')
    with pytest.raises(RetrievalError, match="line 2"):
        _load(js)


def test_split_markdown_tables_handles_escaped_pipes():
    blocks = split_markdown_tables("intro\n\n| a | b |\n|---|:---:|\n| x \\| y | 2 |\nafter")
    assert blocks[1] == ("table", [["a", "b"], ["x | y", "2"]])
    assert blocks[0][0] == "text" and blocks[2] == ("text", "after")


def test_written_pages_load_back_to_the_same_row_facts(tmp_path, finqa_records, tatqa_docs):
    for record in finqa_records[:40]:
        page = write_finqa_page(record, tmp_path / "finqa")
        want = [(f.metadata["row"], f.text) for f in finqa_facts(record) if f.kind == "table_row"]
        got = [(f.metadata["row"], f.text) for f in _load(page) if f.kind == "table_row"]
        assert got == want, page
    for doc in tatqa_docs[:40]:
        page = write_tatqa_page(doc, tmp_path / "tatqa")
        want = [(f.metadata["row"], f.text) for f in tatqa_facts(doc) if f.kind == "table_row"]
        got = [(f.metadata["row"], f.text) for f in _load(page) if f.kind == "table_row"]
        assert got == want, page
        assert doc["paragraphs"][0]["text"].split()[0] in page.read_text()


def test_pdf_writer_helper_is_a_real_pdf(tmp_path, pdf_writer):
    from pypdf import PdfReader

    path = pdf_writer(tmp_path / "x.pdf", ["alpha", "beta"])
    assert [p.extract_text().strip() for p in PdfReader(str(path)).pages] == ["alpha", "beta"]
