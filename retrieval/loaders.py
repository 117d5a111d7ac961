"""Files to facts: read a document, pull its tables out as row facts, chunk the rest.

Text is chunked by llama-index node parsers (``MarkdownNodeParser`` for headings, then
``SentenceSplitter`` to the configured size and overlap, counted in the embedder's tokens when
one is given). PDF and DOCX go through llama-index's file readers. Tables never go through the
text splitter: a markdown / HTML / CSV table becomes one fact per row with its headers attached
(``retrieval.tables``), so a number is never cut off from what it measures.

Every fact's id is ``"<source>#<place>"`` (``#c3``, ``#p2.c0``, ``#t0.row4``, ``#rec7.c0``): stable
across runs, so re-indexing a file upserts the same ids instead of adding duplicates.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from retrieval.errors import RetrievalError, SkippedFile
from retrieval.facts import Fact
from retrieval.records import finqa_facts, tatqa_facts
from retrieval.tables import caption_scale, table_to_facts

TEXT_TYPES = {".txt", ".text", ".md", ".markdown", ".html", ".htm", ".csv", ".tsv", ".json", ".jsonl"}
SUPPORTED = TEXT_TYPES | {".pdf", ".docx"}
MAX_FILE_MB = 100.0
# How files become facts, as a version: bumped when a change to the readers alters the facts of
# files already indexed. It is part of each file's hash in a store's manifest, so files indexed by
# another version are read again on the next ``Index.add`` (their content alone would call them
# unchanged).
# 2: "amount | share %" column pairs get their headings back (retrieval/tables.py).
READER_VERSION = "2"
_MAGIC = {".pdf": (b"%PDF", "a PDF (no %PDF header)"), ".docx": (b"PK", "a .docx (not a zip archive)")}
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f]")  # control characters other than \t \n \v \f \r
_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


@dataclass
class Chunker:
    """Splits text with llama-index's ``SentenceSplitter`` (built once, reused for every file)."""

    chunk_size: int = 512
    chunk_overlap: int = 64
    tokenizer: Callable[[str], list] | None = None
    _splitter: Any = field(default=None, init=False, repr=False)

    def split(self, text: str) -> list[str]:
        if not text.strip():
            return []
        if self._splitter is None:
            from llama_index.core.node_parser import SentenceSplitter

            overlap = min(self.chunk_overlap, max(0, self.chunk_size // 2))
            self._splitter = SentenceSplitter(chunk_size=self.chunk_size, chunk_overlap=overlap,
                                              tokenizer=self.tokenizer, include_prev_next_rel=False)
        return [c for c in self._splitter.split_text(text) if c.strip()]


def iter_files(paths: Iterable[str | Path], max_bytes: int | None = None
               ) -> tuple[list[Path], list[tuple[str, str, str]]]:
    """Supported files under ``paths`` (sorted, resolved) and ``(path, kind, reason)`` for the rest.

    Folders are walked without following symlinked folders; a symlinked file inside a folder is
    kept only if it resolves inside that folder. Files over ``max_bytes`` are left out unread.
    """
    files: set[Path] = set()
    skipped: list[tuple[str, str, str]] = []
    for p in paths:
        path = Path(p).expanduser()
        if not path.exists():
            raise RetrievalError(f"{path}: no such file or folder")
        if not path.is_dir():
            _consider(path, None, max_bytes, files, skipped)
            continue
        root = path.resolve()
        for folder, dirnames, filenames in os.walk(path):  # followlinks=False: no loops, no escapes
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for d in dirnames:
                if os.path.islink(os.path.join(folder, d)):
                    skipped.append((os.path.join(folder, d), "symlink", "symlinked folder: not followed"))
            for name in sorted(filenames):
                if not name.startswith("."):
                    _consider(Path(folder) / name, root, max_bytes, files, skipped)
    return sorted(files), sorted(skipped)


def _consider(f: Path, root: Path | None, max_bytes: int | None, files: set[Path],
              skipped: list[tuple[str, str, str]]) -> None:
    if f.suffix.lower() not in SUPPORTED:
        skipped.append((str(f), "unsupported", f"unsupported file type {f.suffix or '(none)'}"))
        return
    real = f.resolve()
    if f.is_symlink() and not real.exists():
        skipped.append((str(f), "symlink", f"broken symlink to {real}"))
        return
    if root is not None and real != root and root not in real.parents:
        skipped.append((str(f), "symlink", f"symlink to {real}, outside the indexed folder {root}"))
        return
    try:
        st = real.stat()
    except OSError as exc:
        skipped.append((str(f), "unreadable", f"cannot stat ({exc.strerror})"))
        return
    if not stat.S_ISREG(st.st_mode):  # a FIFO or device named like a document would block the read
        skipped.append((str(f), "unreadable", "not a regular file"))
    elif max_bytes is not None and st.st_size > max_bytes:
        skipped.append((str(f), "too large", _too_large(st.st_size, max_bytes)))
    else:
        files.add(real)


def _too_large(size: int, max_bytes: int) -> str:
    return (f"{_size(size)} is over the {_size(max_bytes)} limit "
            f"(raise it with Index(max_file_mb=...) or dca index --max-file-mb)")


def _size(n: int) -> str:
    value, unit = (n / 2**20, "MB") if n >= 2**20 else (n / 2**10, "kB")
    return f"{value:.1f}".rstrip("0").rstrip(".") + f" {unit}"


def load_file(path: Path, chunker: Chunker, *, max_bytes: int | None = None,
              notes: list[str] | None = None) -> list[Fact]:
    """All facts of one file (tables as rows, text as chunks).

    Raises ``SkippedFile`` (a ``RetrievalError``) naming the reason when the file is empty, binary,
    too large, unparsable or holds no text; ``notes`` collects what was repaired on the way
    (e.g. invalid UTF-8 bytes replaced).
    """
    suffix = path.suffix.lower()
    source = str(path)
    notes = notes if notes is not None else []
    try:
        data = _read_bytes(path, max_bytes)
        if not data.strip():
            raise SkippedFile("empty", "empty file" if not data else "only whitespace")
        if suffix in _MAGIC:
            magic, what = _MAGIC[suffix]
            if not data[:1024].lstrip().startswith(magic):
                raise SkippedFile("unreadable", f"not {what}")
            facts = _pdf(path, chunker) if suffix == ".pdf" else _docx(path, chunker)
        else:
            text = _decode(data, suffix, notes)
            if suffix in (".md", ".markdown"):
                facts = _markdown(text, source, chunker)
            elif suffix in (".html", ".htm"):
                facts = _html(text, source, chunker)
            elif suffix in (".csv", ".tsv"):
                facts = _csv(text, source, suffix)
            elif suffix in (".json", ".jsonl"):
                facts = _json(text, source, chunker, lines=suffix == ".jsonl")
            else:
                facts = _text_facts(text, source, chunker)
    except SkippedFile as exc:
        raise SkippedFile(exc.kind, exc.reason, path) from exc
    except RetrievalError as exc:
        raise SkippedFile("unreadable", str(exc).removeprefix(f"{source}: "), path) from exc
    except Exception as exc:  # a corrupt file must name itself, not crash the run
        inner = _unwrap(exc)
        first = str(inner).strip().splitlines()[0][:200] if str(inner).strip() else ""
        raise SkippedFile("unreadable", f"cannot read {suffix} file ({type(inner).__name__}: {first})", path) from exc
    if not facts:
        raise SkippedFile("no text", "no text found" + (" (a scanned PDF needs OCR first)" if suffix == ".pdf" else ""),
                          path)
    return _dedupe(facts)


def _unwrap(exc: BaseException) -> BaseException:
    """The parser's own error inside a retry wrapper (llama-index's PDFReader retries with tenacity)."""
    attempt = getattr(exc, "last_attempt", None)
    inner = attempt.exception() if attempt is not None and hasattr(attempt, "exception") else None
    return inner or exc


def _read_bytes(path: Path, max_bytes: int | None) -> bytes:
    """The file's bytes, read at most once past ``max_bytes`` (a file may grow after listing)."""
    with open(path, "rb") as f:
        data = f.read(max_bytes + 1) if max_bytes is not None else f.read()
    if max_bytes is not None and len(data) > max_bytes:
        raise SkippedFile("too large", _too_large(max(len(data), path.stat().st_size), max_bytes))
    return data


def _decode(data: bytes, suffix: str, notes: list[str]) -> str:
    """Text from bytes: UTF-8 (or UTF-16 with a BOM); a few bad bytes are replaced and noted, a
    file that is mostly not UTF-8 is read as Windows-1252; binary content is refused."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    if b"\x00" in data[:65536]:
        raise SkippedFile("binary", f"binary content in a {suffix} file (NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        text = data.decode("utf-8", errors="replace")
        bad = text.count("\ufffd")
        if bad <= max(16, len(data) // 1000):
            notes.append(f"invalid UTF-8 at byte {exc.start}: {bad} character(s) replaced with U+FFFD")
        else:
            text = data.decode("cp1252", errors="replace")
            notes.append(f"not UTF-8 (invalid byte at {exc.start}): read as Windows-1252")
    sample = text[:65536]
    control = len(_CONTROL.findall(sample))
    if control > 0.1 * len(sample):
        raise SkippedFile("binary", f"binary content in a {suffix} file ({control} control characters "
                                    f"in the first {len(sample)})")
    return text


def _dedupe(facts: list[Fact]) -> list[Fact]:
    seen: set[str] = set()
    return [f for f in facts if not (f.id in seen or seen.add(f.id))]


def _text_facts(text: str, source: str, chunker: Chunker, place: str = "", **meta: Any) -> list[Fact]:
    return [Fact(f"{source}#{place}c{i}", chunk, {"kind": "text", "source": source, "chunk": i, **meta})
            for i, chunk in enumerate(chunker.split(text))]


def split_markdown_tables(text: str) -> list[tuple[str, Any]]:
    """``[("text", str) | ("table", rows)]`` in document order; tables are pipe tables."""
    lines = text.splitlines()
    blocks: list[tuple[str, Any]] = []
    prose: list[str] = []
    i = 0
    while i < len(lines):
        if lines[i].lstrip().startswith("|") and i + 1 < len(lines) and _SEPARATOR.match(lines[i + 1]):
            j = i + 2
            while j < len(lines) and lines[j].lstrip().startswith("|"):
                j += 1
            if prose:
                blocks.append(("text", "\n".join(prose)))
                prose = []
            blocks.append(("table", [_pipe_cells(line) for k, line in enumerate(lines[i:j]) if k != 1]))
            i = j
        else:
            prose.append(lines[i])
            i += 1
    if prose:
        blocks.append(("text", "\n".join(prose)))
    return blocks


def _pipe_cells(line: str) -> list[str]:
    s = line.strip()
    s = s[1:] if s.startswith("|") else s
    s = s[:-1] if s.endswith("|") and not s.endswith("\\|") else s
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", s)]


def _markdown(text: str, source: str, chunker: Chunker) -> list[Fact]:
    from llama_index.core import Document
    from llama_index.core.node_parser import MarkdownNodeParser

    facts: list[Fact] = []
    prose: list[str] = []
    tables = 0
    last_paragraph = ""
    for kind, block in split_markdown_tables(text):
        if kind == "text":
            prose.append(block)
            paragraphs = [p for p in re.split(r"\n\s*\n", block) if p.strip()]
            last_paragraph = paragraphs[-1] if paragraphs else last_paragraph
            continue
        hint = caption_scale(last_paragraph)  # "( in thousands )" in the line above the table
        facts += table_to_facts(block, source=source, scale_hint=hint, id_prefix=f"{source}#t{tables}")
        tables += 1
        prose.append("")
    nodes = MarkdownNodeParser().get_nodes_from_documents([Document(text="\n".join(prose))])
    for s, node in enumerate(nodes):
        # llama-index's header_path lists the parent headings; the section's own heading is its first line
        heading = node.metadata.get("header_path", "") or "/"
        own = re.match(r"#+\s+(.+)", node.text.lstrip())
        if own:
            heading = f"{heading}{own.group(1).strip()}/"
        facts += _text_facts(node.text, source, chunker, place=f"s{s}.", heading=heading)
    return facts


def _html(text: str, source: str, chunker: Chunker) -> list[Fact]:
    # llama-index's HTML readers flatten tables into text; bs4 lets the rows keep their headers.
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    for tag in soup(["script", "style", "noscript"]):
        tag.decompose()
    facts: list[Fact] = []
    for t, table in enumerate(soup.find_all("table")):
        rows = []
        for tr in table.find_all("tr"):
            row: list[str] = []
            for cell in tr.find_all(["th", "td"]):
                row.append(cell.get_text(" ", strip=True))
                row += [""] * (int(cell.get("colspan", 1) or 1) - 1)
            rows.append(row)
        caption = table.find("caption")
        title = caption.get_text(" ", strip=True) if caption else ""
        if rows:
            facts += table_to_facts(rows, source=source, title=title, scale_hint=title, id_prefix=f"{source}#t{t}")
        table.decompose()
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    body = soup.get_text("\n")
    body = re.sub(r"\n\s*\n+", "\n\n", body)
    return facts + _text_facts(body, source, chunker, title=title)


def _csv(text: str, source: str, suffix: str) -> list[Fact]:
    # llama-index's CSVReader joins each row's cells without the header; a row fact needs both.
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|") if suffix == ".csv" else csv.excel_tab
    except csv.Error:
        dialect = csv.excel
    rows = [r for r in csv.reader(io.StringIO(text), dialect) if any(c.strip() for c in r)]
    return table_to_facts(rows, source=source, header_rows=1 if rows else 0, id_prefix=source)


def _json(text: str, source: str, chunker: Chunker, lines: bool) -> list[Fact]:
    # No llama-index JSON reader ships with the core stack; records are rendered as "key: value" text.
    if lines:
        records = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise RetrievalError(f"{source}: line {n} is not valid JSON ({exc.msg})") from exc
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RetrievalError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
        records = data if isinstance(data, list) else [data]
    facts: list[Fact] = []
    for i, record in enumerate(records):
        for fact in _record_facts(record, source, chunker, i):
            facts.append(fact)
    return facts


def _record_facts(record: Any, source: str, chunker: Chunker, i: int) -> list[Fact]:
    if isinstance(record, dict) and {"pre_text", "post_text", "table"} <= record.keys():
        facts = finqa_facts(record)
    elif isinstance(record, dict) and isinstance(record.get("table"), dict) and "paragraphs" in record:
        facts = tatqa_facts(record)
    else:
        rid = str(record.get("_id", record.get("id", ""))) if isinstance(record, dict) else ""
        return _text_facts(_render(record), source, chunker, place=f"rec{i}.", record=i, record_id=rid)
    out = []
    for f in facts:  # dataset facts keep their own ids (so gold keys match) under this file's source
        meta = {**f.metadata, "source": source, "record": i, "page": f.metadata.get("source", "")}
        out.append(Fact(f"{source}#{f.id}", f.text, meta))
    return out


def _render(record: Any) -> str:
    if not isinstance(record, dict):
        return record if isinstance(record, str) else json.dumps(record, ensure_ascii=False)
    lines = []
    for key, value in record.items():
        if isinstance(value, (dict, list)):
            value = json.dumps(value, ensure_ascii=False)
        if key in ("text", "body", "content", "abstract") and isinstance(value, str):
            lines.append(value)
        else:
            lines.append(f"{key}: {value}")
    return "\n".join(lines)


def _pdf(path: Path, chunker: Chunker) -> list[Fact]:
    from llama_index.readers.file import PDFReader

    facts: list[Fact] = []
    for p, doc in enumerate(PDFReader().load_data(file=path)):
        page = int(doc.metadata.get("page_label") or p + 1) if str(doc.metadata.get("page_label", "")).isdigit() else p + 1
        facts += _text_facts(doc.text, str(path), chunker, place=f"p{page}.", page=page)
    return facts


def _docx(path: Path, chunker: Chunker) -> list[Fact]:
    from llama_index.readers.file import DocxReader

    text = "\n\n".join(doc.text for doc in DocxReader().load_data(file=path))
    return _text_facts(text, str(path), chunker)
