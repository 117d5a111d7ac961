"""The same store against a Chroma server: ``chroma run`` on 127.0.0.1, index and query through it."""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from retrieval import Index, RetrievalError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    exe = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    if not Path(exe).exists():
        pytest.skip("the chroma CLI is not installed")
    port = _free_port()
    data = tmp_path_factory.mktemp("chroma-server")
    proc = subprocess.Popen([exe, "run", "--path", str(data), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("chroma run did not start listening within 60 s")
    yield f"127.0.0.1:{port}"
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_index_and_query_through_a_chroma_server(tmp_path, corpus, chroma_server):
    idx = Index(tmp_path / "state", "served", server=chroma_server)
    report = idx.add(corpus, progress=False)
    assert report.added == 7 and idx.count() == report.total_chunks
    assert not (tmp_path / "state" / "chroma").exists()  # vectors live on the server, not locally
    for mode in ("dense", "bm25", "hybrid"):
        top = idx.search("largest planet of the solar system", k=1, mode=mode)[0]
        assert "Jupiter" in top.text and top.source.endswith("planets.jsonl")
    rows = idx.search("bananas", k=3, where={"kind": "table_row"})
    assert rows and all(r.metadata["kind"] == "table_row" for r in rows)
    # a second client sees the same collection, and re-adding changes nothing
    again = Index(tmp_path / "state", "served", server=chroma_server).add(corpus, progress=False)
    assert again.unchanged == 7 and again.total_chunks == report.total_chunks


def test_unreachable_server_is_a_clear_error(tmp_path):
    idx = Index(tmp_path, "served", server=f"127.0.0.1:{_free_port()}")
    with pytest.raises(RetrievalError, match="not reachable"):
        idx.count()
    with pytest.raises(RetrievalError, match="host:port"):
        Index(tmp_path, "served", server="nonsense").count()
