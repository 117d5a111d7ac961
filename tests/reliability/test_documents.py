"""Hostile and broken documents: each is skipped or repaired with a reason in the index report,
counted by kind, and everything else in the folder is indexed.

A writer killed with SIGKILL mid-run and re-run is covered by
tests/retrieval/test_crash_safety.py (the re-run store equals a clean run's, chunk for chunk).
"""
from __future__ import annotations

import os
import resource
from pathlib import Path

import pytest

import retrieval.index
from retrieval import Index
from retrieval.errors import SkippedFile
from retrieval.loaders import Chunker, load_file

GOOD = {
    "harbour.txt": "The harbour authority reported 1,204 ship arrivals in 2019, up from 1,100 in 2018.",
    "lighthouse.md": "# Lighthouses\n\nThe northern lighthouse was automated in 1987 and still guides ships.",
}


def _write_bad(folder: Path, outside: Path) -> None:
    (folder / "empty.txt").write_bytes(b"")
    (folder / "blank.md").write_text("  \n\n \t\n")
    (folder / "blob.txt").write_bytes(bytes(range(256)) * 64)  # binary with a text extension
    # valid UTF-8 text with two stray bytes: indexed, the bytes replaced and noted
    (folder / "mixed.txt").write_bytes("Caf\u00e9 owners in Lisbon sold 312 pastries.".encode() + b" \xff\xfe end.")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 9 0 R >>\ntrailer garbage")
    (folder / "not-a.pdf").write_text("plain text wearing a .pdf extension")
    outside.mkdir()
    (outside / "secret.txt").write_text("The vault code is 4711 and must never be indexed.")
    (folder / "escape.txt").symlink_to(outside / "secret.txt")
    (folder / "dangling.txt").symlink_to(folder / "does-not-exist.txt")
    (folder / "outside-dir").symlink_to(outside, target_is_directory=True)
    os.mkfifo(folder / "pipe.txt")  # reading a FIFO would block forever
    with open(folder / "huge.txt", "wb") as f:  # 200 MB by size (sparse: the test stays fast)
        f.seek(200 * 2**20 - 32)
        f.write(b"the end of a very large file.\n")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in GOOD.items():
        (docs / name).write_text(text)
    _write_bad(docs, tmp_path / "outside")
    return docs


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_seconds() -> float:  # CPU time, not wall time: the test machine may be busy
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def test_bad_documents_are_skipped_with_reasons_and_counted(tmp_path, folder):
    warm = tmp_path / "warm"  # load the embedder, Chroma and the splitter first, so the memory
    warm.mkdir()             # check below sees only what indexing the folder costs
    (warm / "a.txt").write_text(GOOD["harbour.txt"])
    Index(tmp_path / "warm-store", "warm").add(warm, progress=False)
    idx = Index(tmp_path / "store", "hostile")
    rss_before, start = _peak_rss_mb(), _cpu_seconds()
    report = idx.add(folder, progress=False)
    cpu, grown = _cpu_seconds() - start, _peak_rss_mb() - rss_before

    names = {Path(p).name: r for p, r in report.skip_reasons.items()}
    assert report.added == 3, report.summary()  # harbour, lighthouse, mixed
    assert sorted(Path(s).name for s in idx.sources()) == ["harbour.txt", "lighthouse.md", "mixed.txt"]
    assert report.skip_counts == {"empty": 2, "binary": 1, "unreadable": 3, "symlink": 3, "too large": 1}
    assert report.skipped == sum(report.skip_counts.values()) == len(report.skip_reasons) == 10
    assert names["empty.txt"] == "empty file" and names["blank.md"] == "only whitespace"
    assert "binary content in a .txt file" in names["blob.txt"]
    assert names["broken.pdf"].startswith("cannot read .pdf file (")
    assert names["not-a.pdf"] == "not a PDF (no %PDF header)"
    assert "outside the indexed folder" in names["escape.txt"] and "broken symlink" in names["dangling.txt"]
    assert names["outside-dir"] == "symlinked folder: not followed"
    assert names["pipe.txt"] == "not a regular file"
    assert names["huge.txt"].startswith("200 MB is over the 100 MB limit")
    assert all("\n" not in r for r in report.skip_reasons.values())  # one line each
    summary = report.summary()
    assert "10 skipped (1 binary, 2 empty, 3 symlink, 1 too large, 3 unreadable)" in summary
    assert "1 with notes" in summary

    (mixed_note,) = report.notes.values()
    assert mixed_note == "invalid UTF-8 at byte 42: 2 character(s) replaced with U+FFFD"
    hit = idx.search("pastries sold in Lisbon", k=1)[0]
    assert hit.source.endswith("mixed.txt") and "Caf\u00e9 owners" in hit.text
    assert not any("vault" in h.text for h in idx.search("vault code", k=5, mode="bm25"))
    assert cpu < 30 and grown < 100, (cpu, grown)  # the 200 MB file is never read into memory


def test_size_limit_is_configurable_and_reads_are_bounded(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "report.txt").write_text("Quarterly revenue grew 4 percent. " * 200)  # ~6.8 kB
    skipped = Index(tmp_path / "small", "limits", max_file_mb=0.004).add(folder, progress=False)
    assert skipped.skip_counts == {"too large": 1} and "6.6 kB is over the 4.1 kB limit" in next(iter(skipped.skip_reasons.values()))
    assert Index(tmp_path / "none", "limits", max_file_mb=None).add(folder, progress=False).added == 1
    # a file that grew past the limit after it was listed is cut off at the limit, not read whole
    with pytest.raises(SkippedFile, match="over the") as exc:
        load_file(folder / "report.txt", Chunker(128, 16), max_bytes=1000)
    assert exc.value.kind == "too large"


def test_file_changing_while_read_is_left_for_the_next_run(tmp_path, folder, monkeypatch):
    real_load = retrieval.index.load_file
    target = folder / "harbour.txt"

    def load_while_someone_writes(path: Path, *args, **kwargs):
        facts = real_load(path, *args, **kwargs)
        if path.name == target.name:
            with open(target, "a") as f:  # another process appends between our read and our commit
                f.write(" Arrivals in 2020 fell to 640.")
        return facts

    monkeypatch.setattr(retrieval.index, "load_file", load_while_someone_writes)
    idx = Index(tmp_path / "store", "changing")
    first = idx.add(folder, progress=False)
    assert first.skip_counts["changed while read"] == 1
    assert first.skip_reasons[str(target.resolve())] == "changed while being read; indexed on the next run"
    assert str(target.resolve()) not in idx.sources()

    monkeypatch.setattr(retrieval.index, "load_file", real_load)
    second = idx.add(folder, progress=False)
    assert second.added == 1 and second.unchanged == 2 and "changed while read" not in second.skip_counts
    hit = idx.search("ship arrivals 2020", k=1, mode="bm25")[0]
    assert hit.source.endswith("harbour.txt") and "fell to 640" in hit.text


def test_a_file_that_turns_bad_loses_its_old_chunks(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in GOOD.items():
        (folder / name).write_text(text)
    idx = Index(tmp_path / "store", "turns-bad")
    before = idx.add(folder, progress=False).total_chunks
    (folder / "harbour.txt").write_bytes(b"\x00\x01\x02" * 100)  # overwritten with binary data
    report = idx.add(folder, progress=False)
    assert report.skip_counts == {"binary": 1} and report.removed == 1 and report.chunks_removed >= 1
    assert report.total_chunks == idx.count() == before - report.chunks_removed
    assert [Path(s).name for s in idx.sources()] == ["lighthouse.md"]
    assert not any(h.source.endswith("harbour.txt") for h in idx.search("harbour ship arrivals", k=5))
