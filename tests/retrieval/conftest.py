"""Retrieval test fixtures: FinQA / TAT-QA records and small real documents of every supported type."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def finqa_records(data_dir: Path) -> list[dict]:
    path = data_dir / "finqa" / "train_100.json"
    if not path.exists():
        pytest.skip(f"FinQA data not found at {path} (set DCA_DATA)")
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def tatqa_docs(data_dir: Path) -> list[dict]:
    path = data_dir / "tatqa" / "dev.json"
    if not path.exists():
        pytest.skip(f"TAT-QA data not found at {path} (set DCA_DATA)")
    return json.loads(path.read_text())


MARKDOWN = """# Entergy results

Net revenue by segment (in millions):

| segment | 2015 | 2014 |
|---|---:|---:|
| Utility | $5,829 | $5,735 |
| Wholesale | 1,203 | 1,100 |

Management expects utility net revenue to keep growing as new rates take effect in 2016.

## Outlook

Capital spending is planned at $2.9 billion for the next year.
"""

HTML = """<html><head><title>Harbour fruit trade</title></head><body>
<h1>Harbour fruit trade</h1>
<p>Imports rose after the new port opened in 2018.</p>
<table>
<caption>Fruit imports ($ in thousands)</caption>
<tr><th></th><th>2019</th><th>2018</th></tr>
<tr><td>Bananas</td><td>1,234</td><td>1,100</td></tr>
<tr><td>Apples</td><td>845</td><td>790</td></tr>
</table>
</body></html>
"""


def write_pdf(path: Path, pages: list[str]) -> Path:
    """A minimal valid PDF with one line of text per page (Helvetica, no compression)."""
    objects: list[bytes] = []
    n = len(pages)
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(n))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {n} >>".encode())
    font_id = 3 + 2 * n
    for i, text in enumerate(pages):
        content_id = 4 + 2 * i
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content_id} 0 R "
                       f"/Resources << /Font << /F1 {font_id} 0 R >> >> >>".encode())
        safe = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream = f"BT /F1 12 Tf 72 720 Td ({safe}) Tj ET".encode()
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    path.write_bytes(bytes(out))
    return path


def write_docx(path: Path, paragraphs: list[str]) -> Path:
    """A minimal .docx (the three parts Word and docx2txt need)."""
    body = "".join(f"<w:p><w:r><w:t>{p}</w:t></w:r></w:p>" for p in paragraphs)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("[Content_Types].xml",
                   '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                   '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                   '<Default Extension="xml" ContentType="application/xml"/>'
                   '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>')
        z.writestr("_rels/.rels",
                   '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                   '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>')
        z.writestr("word/document.xml",
                   '<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
                   f"<w:body>{body}</w:body></w:document>")
    return path


def write_corpus(folder: Path) -> Path:
    """One document of each supported type, plus a file the store must skip."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "entergy.md").write_text(MARKDOWN)
    (folder / "fruit.html").write_text(HTML)
    (folder / "notes.txt").write_text("The observatory recorded a comet over Lisbon in March. "
                                      "Its tail was visible for eleven nights.\n")
    (folder / "staff.csv").write_text("name,age,city\nAda,36,London\nGrace,85,Arlington\n")
    (folder / "planets.jsonl").write_text(
        json.dumps({"_id": "p1", "title": "Jupiter", "text": "Jupiter is the largest planet of the solar system."})
        + "\n" + json.dumps({"_id": "p2", "title": "Mars", "text": "Mars has two small moons, Phobos and Deimos."}) + "\n")
    write_pdf(folder / "manual.pdf", ["Pump maintenance: replace the seal every 400 hours.",
                                      "Warranty: the pump is covered for three years."])
    write_docx(folder / "memo.docx", ["The board approved the glacier research budget.",
                                      "Field work starts in Svalbard in June."])
    (folder / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    return folder


def write_many(folder: Path, n: int) -> Path:
    """``n`` short text files, each about a different numbered topic."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"doc{i:03d}.txt").write_text(
            f"Document {i} describes warehouse {i} in district {i % 7}. "
            f"It stores {100 + i} crates of item {i * 13 % 97}.\n\nA second paragraph about shipment {i}.")
    return folder


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("docs"))


@pytest.fixture
def pdf_writer():
    return write_pdf


@pytest.fixture
def many_docs():
    return write_many
