"""What the store holds, per file, and who may write: the crash-safety half of the index.

The manifest is a SQLite table (one row per indexed file: content hash, stat, chunk ids,
status). A file is marked ``pending`` with the union of its old and new chunk ids *before*
any of its chunks reach Chroma, and ``done`` with exactly its new ids *after* they are all
there. A run killed in between leaves a ``pending`` row, so the next run re-indexes that file
(chunk ids are deterministic, so Chroma upserts rather than duplicates) and deletes every id
the row lists that the file no longer produces. Writers take an exclusive ``flock``; the
kernel drops it when a process dies, even by SIGKILL.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from retrieval.errors import RetrievalError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    collection TEXT NOT NULL, path TEXT NOT NULL, hash TEXT NOT NULL, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, status TEXT NOT NULL, chunk_ids TEXT NOT NULL,
    PRIMARY KEY (collection, path));
CREATE TABLE IF NOT EXISTS state (collection TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (collection, key));
"""


@dataclass
class Entry:
    """One indexed file as the manifest last recorded it."""

    path: str
    hash: str
    size: int
    mtime_ns: int
    status: str
    chunk_ids: list[str]


class Manifest:
    """Per-collection file records in ``<store>/manifest.sqlite3`` (thread-safe, one connection)."""

    def __init__(self, store: Path, collection: str):
        self.collection = collection
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(store / "manifest.sqlite3"), timeout=30, check_same_thread=False,
                                   isolation_level=None)
        # WAL + NORMAL: a committed transaction survives a killed process (not a power cut).
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def entries(self) -> dict[str, Entry]:
        with self._lock:
            rows = self._db.execute(
                "SELECT path, hash, size, mtime_ns, status, chunk_ids FROM files WHERE collection=?",
                (self.collection,)).fetchall()
        return {r[0]: Entry(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows}

    def mark_pending(self, items: list[tuple[str, list[str]]]) -> None:
        """Before writing: record every id each file may leave in Chroma (old and new)."""
        with self._lock, self._db:
            for path, ids in items:
                row = self._db.execute("SELECT chunk_ids FROM files WHERE collection=? AND path=?",
                                       (self.collection, path)).fetchone()
                union = sorted(set(ids) | set(json.loads(row[0]) if row else []))
                self._db.execute(
                    "INSERT INTO files VALUES (?,?,?,?,?,?,?) ON CONFLICT(collection, path) DO UPDATE SET "
                    "status='pending', chunk_ids=excluded.chunk_ids",
                    (self.collection, path, "", 0, 0, "pending", json.dumps(union)))

    def commit(self, items: list[Entry]) -> None:
        """After writing: the files' chunks are all in Chroma and nothing else of theirs is."""
        with self._lock, self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?)",
                [(self.collection, e.path, e.hash, e.size, e.mtime_ns, "done", json.dumps(e.chunk_ids))
                 for e in items])

    def touch(self, items: list[Entry]) -> None:
        """A file whose stat changed but whose content did not: remember the new stat."""
        self.commit(items)

    def remove(self, paths: list[str]) -> None:
        with self._lock, self._db:
            self._db.executemany("DELETE FROM files WHERE collection=? AND path=?",
                                 [(self.collection, p) for p in paths])

    def drop(self) -> None:
        with self._lock, self._db:
            self._db.execute("DELETE FROM files WHERE collection=?", (self.collection,))
            self._db.execute("DELETE FROM state WHERE collection=?", (self.collection,))

    def get_state(self, key: str, default: str = "") -> str:
        with self._lock:
            row = self._db.execute("SELECT value FROM state WHERE collection=? AND key=?",
                                   (self.collection, key)).fetchone()
        return row[0] if row else default

    def set_state(self, key: str, value: str) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO state VALUES (?,?,?)", (self.collection, key, value))


class WriteLock:
    """An exclusive, crash-released lock on a store: a second writer gets a clear error."""

    def __init__(self, store: Path, timeout: float = 0.0):
        from filelock import FileLock

        self.store = store
        self.timeout = timeout
        self._lock = FileLock(str(store / "write.lock"))
        self._pid_file = store / "write.pid"

    def __enter__(self) -> "WriteLock":
        from filelock import Timeout

        try:
            self._lock.acquire(timeout=self.timeout)
        except Timeout:
            holder = self._pid_file.read_text().strip() if self._pid_file.exists() else "?"
            raise RetrievalError(
                f"store {self.store} is being written by another process (pid {holder}); "
                f"wait for it to finish or index into another --store") from None
        self._pid_file.write_text(f"{os.getpid()} {time.strftime('%Y-%m-%dT%H:%M:%S')}\n")
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()
