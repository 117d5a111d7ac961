"""A writer killed with SIGKILL mid-run, then re-run, leaves exactly what a clean run leaves;
a second writer is refused with a clear error (or waits for the first, when asked to)."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from retrieval import Index, RetrievalError
from retrieval.manifest import WriteLock

REPO = Path(__file__).resolve().parents[2]
SETTINGS = dict(collection="crash", chunk_size=24, chunk_overlap=0)

WRITER = """
import sys
from retrieval import Index
idx = Index(sys.argv[1], "crash", chunk_size=24, chunk_overlap=0, batch_size=1)
print("ready", flush=True)
idx.add(sys.argv[2], progress=False)
print("finished", flush=True)
"""


def _rewrite(folder: Path, n: int, version: int) -> None:
    """``n`` files whose chunk count differs between versions (so stale chunks must be deleted)."""
    for old in folder.glob("*.txt"):
        old.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        if version == 2 and i % 10 == 3:
            continue  # deleted in version 2
        sentences = [f"Version {version} of record {i} mentions harbour {i * 7 % 31} and cargo {j}."
                     for j in range(1 + (i + version) % 4)]
        (folder / f"rec{i:03d}.txt").write_text(" ".join(sentences))
    if version == 2:
        for i in range(n, n + 8):
            (folder / f"rec{i:03d}.txt").write_text(f"A new record {i} about lighthouse {i}.")


def _contents(idx: Index) -> tuple[list[str], dict[str, str]]:
    got = idx._collection().get(include=["documents"])
    return got["ids"], dict(zip(got["ids"], got["documents"]))


def test_sigkill_mid_update_then_rerun_equals_clean_run(tmp_path):
    folder, store, clean = tmp_path / "docs", tmp_path / "store", tmp_path / "clean"
    n = 60
    _rewrite(folder, n, version=1)
    Index(store, **SETTINGS).add(folder, progress=False)
    _rewrite(folder, n, version=2)  # changes every file, deletes some, adds some

    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(store), str(folder)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        # Files commit one by one (batch_size=1); kill once some, not all, of the new versions have.
        deadline = time.time() + 240
        while time.time() < deadline and proc.poll() is None and _committed_since(store, folder) < 10:
            time.sleep(0.01)
        assert proc.poll() is None, proc.stderr.read()

        # while it writes, a second writer is refused, naming the other process
        with pytest.raises(RetrievalError, match=f"being written by another process \\(pid {proc.pid}"):
            Index(store, **SETTINGS).add(folder, progress=False)

        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    committed = _committed_since(store, folder)
    assert 0 < committed < len(list(folder.glob("*.txt"))), "the kill must land mid-run"

    rerun = Index(store, **SETTINGS).add(folder, progress=False)
    assert rerun.unchanged == committed
    reference = Index(clean, **SETTINGS)
    reference.add(folder, progress=False)

    ids, docs = _contents(Index(store, **SETTINGS))
    ref_ids, ref_docs = _contents(reference)
    assert len(ids) == len(set(ids))  # no duplicates
    assert docs == ref_docs  # no loss, nothing stale
    assert rerun.total_chunks == len(ref_ids)
    # BM25 reflects the same chunks after the crash
    bm = Index(store, **SETTINGS)._bm25_index()
    assert sorted(bm.ids) == sorted(ref_ids)


def _committed_since(store: Path, folder: Path) -> int:
    """Files whose committed manifest row matches their current (version 2) content."""
    import hashlib

    from retrieval.loaders import READER_VERSION

    db = store / "manifest.sqlite3"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
        rows = dict(con.execute("SELECT path, hash FROM files WHERE status='done'").fetchall())
    return sum(1 for f in folder.glob("*.txt")
               if rows.get(str(f.resolve())) == f"{READER_VERSION}:{hashlib.sha256(f.read_bytes()).hexdigest()}")


def test_second_writer_in_process_is_refused_or_waits(tmp_path, many_docs):
    folder = many_docs(tmp_path / "docs", 3)
    store = tmp_path / "store"
    store.mkdir()
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with WriteLock(store):
            held.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(5)
    try:
        with pytest.raises(RetrievalError, match="being written by another process"):
            Index(store, "locked").add(folder, progress=False)
        threading.Timer(1.0, release.set).start()
        start = time.time()
        report = Index(store, "locked", lock_timeout=30).add(folder, progress=False)  # serialises
        assert report.added == 3 and time.time() - start >= 0.9
    finally:
        release.set()
        t.join()
